import middy from '@middy/core';
import { createEcsClient } from '../src/aws/ecs';
import { runReport } from '../src/launch/entrypoints';
import { parseTaskStateChangeEvent } from '../src/launch/events';
import { sharedRuntime } from '../src/runtime';

const runtime = sharedRuntime({ ecs: createEcsClient });

/** EventBridge "ECS Task State Change" (the launcher's cluster) → Prefect states and infrastructure pid. */
export const handler = middy().handler(async (event: unknown) => {
  const task = parseTaskStateChangeEvent(event);
  return runReport(await runtime(), task);
});
