import middy from '@middy/core';
import { createEcsClient } from '../src/aws/ecs';
import { createSfnClient } from '../src/aws/sfn';
import { runPoll } from '../src/launch/entrypoints';
import { parsePollEvent } from '../src/launch/events';
import { telemetryMiddlewares } from '../src/middleware';
import { sharedRuntime } from '../src/runtime';
import { createTelemetry } from '../src/telemetry';

const telemetry = createTelemetry();
const runtime = sharedRuntime({ sfn: createSfnClient, ecs: createEcsClient }, telemetry);

/** EventBridge schedule → one poll of the work pool. */
export const handler = middy()
  .use(telemetryMiddlewares(telemetry))
  .handler(async (event: unknown) => {
    parsePollEvent(event);
    return runPoll(await runtime());
  });
