import middy from '@middy/core';
import { type CrashClients, runCrash } from '../src/launch/entrypoints';
import { parseCrashEvent } from '../src/launch/events';
import { sharedRuntime } from '../src/runtime';

/** Prefect only: no AWS client. */
const runtime = sharedRuntime<CrashClients>({});

/** The launch state machine's Crash state → report the failure to Prefect. */
export const handler = middy().handler(async (event: unknown) => {
  const input = parseCrashEvent(event);
  return runCrash(await runtime(), input);
});
