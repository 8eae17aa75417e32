import middy from '@middy/core';
import { createEc2Client } from '../src/aws/ec2';
import { createEcsClient } from '../src/aws/ecs';
import { runPrepare } from '../src/launch/entrypoints';
import { parsePrepareEvent } from '../src/launch/events';
import { sharedRuntime } from '../src/runtime';

const runtime = sharedRuntime({ ecs: createEcsClient, ec2: createEc2Client });

/** The launch state machine's Prepare state → the RunTask request for one flow run. */
export const handler = middy().handler(async (event: unknown) => {
  const input = parsePrepareEvent(event);
  return runPrepare(await runtime(), input);
});
