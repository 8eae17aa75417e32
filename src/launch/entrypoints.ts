import { deregisterIfTagged, describeTasks, stopTask } from '../aws/ecs';
import {
  describeExecution,
  executionArnFor,
  runningExecutionNames,
  startLaunchExecution,
  stopExecution,
} from '../aws/sfn';
import { type CredentialSource, requireStateMachineArn } from '../config';
import type { ContainerCredential } from '../render/job-configuration';
import type { AwsClients, Runtime } from '../runtime';
import { type AwsCache, createAwsCache } from './aws-cache';
import { type CrashInput, reportLaunchFailure } from './crash';
import { type PollSummary, poll } from './poll';
import { type PreparedLaunch, type PrepareInput, prepareLaunch } from './prepare';
import { type ReconcileAws, reconcile } from './reconcile';
import { reportTaskStateChange, type TaskStateChange } from './report';

/** One function per Lambda: what the handler calls once it has validated its event. */

/** The AWS clients each function uses: its handler builds these and no others. */
export type PollClients = Pick<AwsClients, 'sfn' | 'ecs'>;
export type PrepareClients = Pick<AwsClients, 'ecs' | 'ec2'>;
export type ReportClients = Pick<AwsClients, 'ecs'>;
export type CrashClients = Record<never, never>;

/** The AWS calls of the reconciliation sweep, against the launch state machine and ECS. */
export function reconcileAws(rt: Runtime<PollClients>, stateMachineArn: string): ReconcileAws {
  const { sfn, ecs } = rt.aws;
  return {
    runningExecutions: () => runningExecutionNames(sfn, stateMachineArn),
    describeExecution: (name) => describeExecution(sfn, executionArnFor(stateMachineArn, name)),
    startExecution: (input) => startLaunchExecution(sfn, stateMachineArn, input),
    stopExecution: (name, cause) => stopExecution(sfn, executionArnFor(stateMachineArn, name), cause),
    describeTasks: (cluster, arns) => describeTasks(ecs, cluster, arns),
    stopTask: (cluster, arn, reason) => stopTask(ecs, cluster, arn, reason),
  };
}

/**
 * One poll: cancel and sweep (src/launch/reconcile.ts), then claim and start. `aws` replaces the sweep's AWS
 * calls (the local executor overlays what it runs itself).
 */
export function runPoll(
  rt: Runtime<PollClients>,
  options: { now?: () => Date; aws?: (base: ReconcileAws) => ReconcileAws } = {},
): Promise<PollSummary> {
  const stateMachineArn = requireStateMachineArn(rt.config);
  const now = options.now ?? (() => new Date());
  const base = reconcileAws(rt, stateMachineArn);
  const aws = options.aws ? options.aws(base) : base;
  const log = rt.log.child({ function: 'poll' });
  return poll({
    prefect: rt.prefect,
    startExecution: (input) => startLaunchExecution(rt.aws.sfn, stateMachineArn, input),
    describeExecution: (flowRunId) => aws.describeExecution(flowRunId),
    settings: {
      workPool: rt.config.workPool,
      workQueues: rt.config.workQueues,
      workerName: rt.config.workerName,
      lookaheadSeconds: rt.config.lookaheadSeconds,
      startLeadSeconds: rt.config.startLeadSeconds,
      pollIntervalSeconds: rt.config.pollIntervalSeconds,
      concurrency: rt.config.concurrency,
    },
    reconcile: () =>
      reconcile({
        prefect: rt.prefect,
        aws,
        settings: {
          workPool: rt.config.workPool,
          workerName: rt.config.workerName,
          concurrency: rt.config.concurrency,
          settleSeconds: rt.config.sweepSettleSeconds,
          cancelGraceSeconds: rt.config.cancelGraceSeconds,
        },
        log: log.child({ step: 'reconcile' }),
        now: now(),
      }),
    log,
    now,
  });
}

export function runCrash(rt: Runtime<CrashClients>, input: CrashInput) {
  return reportLaunchFailure(
    { prefect: rt.prefect, log: rt.log.child({ function: 'crash', flowRunId: input.flowRunId }) },
    input,
  );
}

export function runReport(rt: Runtime<ReportClients>, task: TaskStateChange) {
  const { ecs } = rt.aws;
  return reportTaskStateChange(
    {
      prefect: rt.prefect,
      ecs: {
        stopTask: (cluster, arn, reason) => stopTask(ecs, cluster, arn, reason),
        deregisterIfTagged: (arn) => deregisterIfTagged(ecs, arn),
      },
      log: rt.log.child({ function: 'report' }),
    },
    task,
  );
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

/** One cache per runtime, i.e. per warm Prepare function (or per local stack). */
const awsCaches = new WeakMap<Runtime<PrepareClients>, AwsCache>();

function awsCacheOf(rt: Runtime<PrepareClients>): AwsCache {
  let cache = awsCaches.get(rt);
  if (!cache) {
    cache = createAwsCache(rt.config.awsCacheSeconds);
    awsCaches.set(rt, cache);
  }
  return cache;
}

export function runPrepare(rt: Runtime<PrepareClients>, input: PrepareInput): Promise<PreparedLaunch> {
  return prepareLaunch(
    {
      prefect: rt.prefect,
      ecs: rt.aws.ecs,
      ec2: rt.aws.ec2,
      cache: awsCacheOf(rt),
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
    input,
  );
}
