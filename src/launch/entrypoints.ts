import { startLaunchExecution } from '../aws/sfn';
import { type CredentialSource, requireStateMachineArn } from '../config';
import type { ContainerCredential } from '../render/job-configuration';
import type { Runtime } from '../runtime';
import { type CrashInput, reportLaunchFailure } from './crash';
import { type PollSummary, poll } from './poll';
import { type PreparedLaunch, prepareLaunch } from './prepare';
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

/**
 * How the flow's container gets the Prefect credential: a secret ARN stays an ARN (an ECS secret, never a
 * plain value in RunTask overrides, which Step Functions history and ECS events show); a plain value (local
 * use) goes as an environment variable, as the worker does.
 */
export function containerCredential(source: CredentialSource): ContainerCredential {
  switch (source.kind) {
    case 'apiKeySecret':
      return { kind: 'apiKeySecret', arn: source.secretArn };
    case 'authStringSecret':
      return { kind: 'authStringSecret', arn: source.secretArn };
    default:
      return source;
  }
}

export function runPrepare(rt: Runtime, input: { flowRunId: string }): Promise<PreparedLaunch> {
  return prepareLaunch(
    {
      prefect: rt.prefect,
      ecs: rt.aws.ecs,
      ec2: rt.aws.ec2,
      settings: {
        workPool: rt.config.workPool,
        workerName: rt.config.workerName,
        apiUrl: rt.config.prefect.apiUrl,
        containerCredential: containerCredential(rt.config.prefect.credential),
        defaultCluster: rt.config.cluster,
        jobDefaults: rt.config.jobDefaults,
        region: rt.region,
      },
      log: rt.log.child({ function: 'prepare', flowRunId: input.flowRunId }),
    },
    input.flowRunId,
  );
}
