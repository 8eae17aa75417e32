import middy from '@middy/core';
import { runPoll } from '../src/launch/entrypoints';
import { parsePollEvent } from '../src/launch/events';
import { sharedRuntime } from '../src/runtime';

/** EventBridge schedule → one poll of the work pool. */
export const handler = middy().handler(async (event: unknown) => {
  parsePollEvent(event);
  return runPoll(await sharedRuntime());
});
