import middy from '@middy/core';
import { createSfnClient } from '../src/aws/sfn';
import { runNowService } from '../src/launch/entrypoints';
import { parseRunNowEvent } from '../src/launch/events';
import { sharedRuntime } from '../src/runtime';

const serve = runNowService(sharedRuntime({ sfn: createSfnClient }));

/** Function URL ← the pool's Prefect automation: claim and start a hand-started run at once. */
export const handler = middy().handler((event: unknown) => serve(parseRunNowEvent(event)));
