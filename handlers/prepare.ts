import middy from '@middy/core';
import { runPrepare } from '../src/launch/entrypoints';
import { parsePrepareEvent } from '../src/launch/events';
import { sharedRuntime } from '../src/runtime';

/** The launch state machine's Prepare state → the RunTask request for one flow run. */
export const handler = middy().handler(async (event: unknown) => {
  const input = parsePrepareEvent(event);
  return runPrepare(await sharedRuntime(), input);
});
