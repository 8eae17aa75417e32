import middy from '@middy/core';
import { type CrashClients, runCrash } from '../src/launch/entrypoints';
import { parseCrashEvent } from '../src/launch/events';
import { telemetryMiddlewares } from '../src/middleware';
import { sharedRuntime } from '../src/runtime';
import { createTelemetry } from '../src/telemetry';

const telemetry = createTelemetry();
/** Prefect only: no AWS client. */
const runtime = sharedRuntime<CrashClients>({}, telemetry);

/** The launch state machine's Crash state → report the failure to Prefect. */
export const handler = middy()
  .use(telemetryMiddlewares(telemetry))
  .handler(async (event: unknown) => {
    const input = parseCrashEvent(event);
    return runCrash(await runtime(), input);
  });
