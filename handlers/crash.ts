import middy from '@middy/core';
import { runCrash } from '../src/launch/entrypoints';
import { parseCrashEvent } from '../src/launch/events';
import { sharedRuntime } from '../src/runtime';

/** The launch state machine's Crash state → report the failure to Prefect. */
export const handler = middy().handler(async (event: unknown) => {
  const input = parseCrashEvent(event);
  return runCrash(await sharedRuntime(), input);
});
