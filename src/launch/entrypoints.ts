import { startLaunchExecution } from '../aws/sfn';
import { requireStateMachineArn } from '../config';
import type { Runtime } from '../runtime';
import { type CrashInput, reportLaunchFailure } from './crash';
import { type PollSummary, poll } from './poll';
import { reportTaskStateChange, type TaskStateChange } from './report';

/** One function per Lambda: what the handler calls once it has validated its event. */

export function runPoll(rt: Runtime, now?: () => Date): Promise<PollSummary> {
  const stateMachineArn = requireStateMachineArn(rt.config);
  return poll({
    prefect: rt.prefect,
    startExecution: (input) => startLaunchExecution(rt.aws.sfn, stateMachineArn, input),
    settings: {
      workPool: rt.config.workPool,
      workQueues: rt.config.workQueues,
      workerName: rt.config.workerName,
      lookaheadSeconds: rt.config.lookaheadSeconds,
      pollIntervalSeconds: rt.config.pollIntervalSeconds,
      concurrency: rt.config.concurrency,
    },
    log: rt.log.child({ function: 'poll' }),
    ...(now ? { now } : {}),
  });
}

export function runCrash(rt: Runtime, input: CrashInput) {
  return reportLaunchFailure(
    { prefect: rt.prefect, log: rt.log.child({ function: 'crash', flowRunId: input.flowRunId }) },
    input,
  );
}

export function runReport(rt: Runtime, task: TaskStateChange) {
  return reportTaskStateChange({ prefect: rt.prefect, log: rt.log.child({ function: 'report' }) }, task);
}
