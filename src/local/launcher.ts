import { describeTask, runTask, stopTask } from '../aws/ecs';
import { runCrash, runPrepare, runReport } from '../launch/entrypoints';
import { parseCrashEvent, parsePrepareEvent, parseTaskStateChangeEvent } from '../launch/events';
import type { Runtime } from '../runtime';
import { withTaskStateChangeEvents } from './ecs-events';
import { LocalLaunchMachine } from './launch-machine';

/**
 * The launch state machine bound offline to the launcher's own code: Prepare and Crash call what the
 * prepare and crash handlers call (after the same event validation), RunTask runs against moto's ECS, and
 * the ECS events AWS would send go to the report handler's code.
 */
export function localLaunchMachine(
  rt: Runtime,
  options: {
    retryIntervalMs?: number;
    pollIntervalMs?: number;
    ecs?: Parameters<typeof withTaskStateChangeEvents>[0];
  } = {},
): LocalLaunchMachine {
  const ecs = options.ecs ?? {
    runTask: (request) => runTask(rt.aws.ecs, request),
    describeTask: (cluster, taskArn) => describeTask(rt.aws.ecs, cluster, taskArn),
    stopTask: (cluster, taskArn, reason) => stopTask(rt.aws.ecs, cluster, taskArn, reason),
  };
  return new LocalLaunchMachine(
    {
      prepare: (input) => invoked(rt, () => runPrepare(rt, parsePrepareEvent(input))),
      crash: (input) => invoked(rt, () => runCrash(rt, parseCrashEvent(input))),
      ecs: withTaskStateChangeEvents(ecs, (event) =>
        invoked(rt, () => runReport(rt, parseTaskStateChangeEvent(event))),
      ),
    },
    options,
  );
}

/**
 * One function's invocation offline: its metrics are flushed as EMF when it ends, as the Lambda's metrics
 * middleware (src/middleware.ts) does. Executions run side by side here, so a flush may carry another
 * invocation's metrics too; every one has the same dimensions.
 */
export async function invoked<T>(
  rt: Pick<Runtime<unknown>, 'telemetry'>,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } finally {
    const { metrics } = rt.telemetry;
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
