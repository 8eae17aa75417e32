import middy from '@middy/core';
import { createSfnClient } from '../src/aws/sfn';
import { runNowService } from '../src/launch/entrypoints';
import { parseRunNowEvent } from '../src/launch/events';
import { telemetryMiddlewares } from '../src/middleware';
import { sharedRuntime } from '../src/runtime';
import { createTelemetry } from '../src/telemetry';

const telemetry = createTelemetry();
const serve = runNowService(sharedRuntime({ sfn: createSfnClient }, telemetry), telemetry);

/** Function URL ← the pool's Prefect automation: claim and start a hand-started run at once. */
export const handler = middy()
  .use(telemetryMiddlewares(telemetry))
  .handler((event: unknown) => serve(parseRunNowEvent(event)));
