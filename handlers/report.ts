import middy from '@middy/core';
import { createEcsClient } from '../src/aws/ecs';
import { runReport } from '../src/launch/entrypoints';
import { parseTaskStateChangeEvent } from '../src/launch/events';
import { telemetryMiddlewares } from '../src/middleware';
import { sharedRuntime } from '../src/runtime';
import { createTelemetry } from '../src/telemetry';

const telemetry = createTelemetry();
const runtime = sharedRuntime({ ecs: createEcsClient }, telemetry);

/** EventBridge "ECS Task State Change" (the launcher's cluster) → Prefect states and infrastructure pid. */
export const handler = middy()
  .use(telemetryMiddlewares(telemetry))
  .handler(async (event: unknown) => {
    const task = parseTaskStateChangeEvent(event);
    return runReport(await runtime(), task);
  });
