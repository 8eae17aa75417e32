import middy from '@middy/core';
import { createEc2Client } from '../src/aws/ec2';
import { createEcsClient } from '../src/aws/ecs';
import { runPrepare } from '../src/launch/entrypoints';
import { parsePrepareEvent } from '../src/launch/events';
import { telemetryMiddlewares } from '../src/middleware';
import { sharedRuntime } from '../src/runtime';
import { createTelemetry } from '../src/telemetry';

const telemetry = createTelemetry();
const runtime = sharedRuntime({ ecs: createEcsClient, ec2: createEc2Client }, telemetry);

/** The launch state machine's Prepare state → the RunTask request for one flow run. */
export const handler = middy()
  .use(telemetryMiddlewares(telemetry))
  .handler(async (event: unknown) => {
    const input = parsePrepareEvent(event);
    return runPrepare(await runtime(), input);
  });
