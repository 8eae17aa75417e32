import middy from '@middy/core';
import { createEcsClient } from '../src/aws/ecs';
import { createSfnClient } from '../src/aws/sfn';
import { runPoll } from '../src/launch/entrypoints';
import { parsePollEvent } from '../src/launch/events';
import { sharedRuntime } from '../src/runtime';

const runtime = sharedRuntime({ sfn: createSfnClient, ecs: createEcsClient });

/** EventBridge schedule → one poll of the work pool. */
export const handler = middy().handler(async (event: unknown) => {
  parsePollEvent(event);
  return runPoll(await runtime());
});
