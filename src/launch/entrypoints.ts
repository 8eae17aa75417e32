import { deregisterIfTagged, describeTasks, stopTask } from '../aws/ecs';
import { createSecretsManagerClient } from '../aws/secrets';
import {
  describeExecution,
  executionArnFor,
  runningExecutionNames,
  startLaunchExecution,
  stopExecution,
} from '../aws/sfn';
import {
  type CredentialSource,
  type LauncherConfig,
  parseRunNowToken,
  requireStateMachineArn,
} from '../config';
import { loggerOver } from '../log';
import {
  recordLaunchFailure,
  recordPoll,
  recordPrepared,
  recordReportEvent,
  recordRunNow,
  recordRunTaskLateness,
} from '../metrics';
import type { ContainerCredential } from '../render/job-configuration';
import type { AwsClients, Runtime } from '../runtime';
import type { Telemetry } from '../telemetry';
import { type AwsCache, createAwsCache } from './aws-cache';
import { type CrashInput, reportLaunchFailure } from './crash';
import { runNowTokenReader } from './credential';
import { diagnoseStoppedTask } from './diagnosis';
import { type PollSettings, type PollSummary, poll } from './poll';
import { type PreparedLaunch, type PrepareInput, prepareLaunch } from './prepare';
import { type ReconcileAws, reconcile } from './reconcile';
import { type ReportAction, reportTaskStateChange, type TaskStateChange } from './report';
import { handleRunNow, type RunNowOutcome, type RunNowRequest, type RunNowResponse } from './run-now';

/**
 * One function per Lambda: what the handler calls once it has validated its event. Each records its
 * metrics (src/metrics.ts) in the runtime's Metrics; whoever invokes it flushes them (a Lambda's middleware,
 * or the local stack after each call).
 */

/** The AWS clients each function uses: its handler builds these and no others. */
export type PollClients = Pick<AwsClients, 'sfn' | 'ecs'>;
export type PrepareClients = Pick<AwsClients, 'ecs' | 'ec2'>;
export type ReportClients = Pick<AwsClients, 'ecs'>;
export type CrashClients = Record<never, never>;
export type RunNowClients = Pick<AwsClients, 'sfn'>;

/** The AWS calls of the reconciliation sweep, against the launch state machine and ECS. */
export function reconcileAws(rt: Runtime<PollClients>, stateMachineArn: string): ReconcileAws {
  const { sfn, ecs } = rt.aws;
  return {
    runningExecutions: () => runningExecutionNames(sfn, stateMachineArn),
    describeExecution: describeLaunchExecution(sfn, stateMachineArn),
    startExecution: (input) => startLaunchExecution(sfn, stateMachineArn, input),
    stopExecution: (name, cause) => stopExecution(sfn, executionArnFor(stateMachineArn, name), cause),
    describeTasks: (cluster, arns) => describeTasks(ecs, cluster, arns),
    stopTask: (cluster, arn, reason) => stopTask(ecs, cluster, arn, reason),
  };
}

/** The launch execution of a flow run, by the run's id (its execution's name). */
function describeLaunchExecution(sfn: RunNowClients['sfn'], stateMachineArn: string) {
  return (name: string) => describeExecution(sfn, executionArnFor(stateMachineArn, name));
}

/**
 * One poll: cancel and sweep (src/launch/reconcile.ts), then claim and start. `aws` replaces the sweep's AWS
 * calls (the local executor overlays what it runs itself).
 */
export async function runPoll(
  rt: Runtime<PollClients>,
  options: { now?: () => Date; aws?: (base: ReconcileAws) => ReconcileAws } = {},
): Promise<PollSummary> {
  const stateMachineArn = requireStateMachineArn(rt.config);
  const now = options.now ?? (() => new Date());
  const base = reconcileAws(rt, stateMachineArn);
  const aws = options.aws ? options.aws(base) : base;
  const log = rt.log.child({ function: 'poll' });
  const summary = await poll({
    prefect: rt.prefect,
    startExecution: (input) => startLaunchExecution(rt.aws.sfn, stateMachineArn, input),
    describeExecution: (flowRunId) => aws.describeExecution(flowRunId),
    settings: pollSettings(rt.config),
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
  recordPoll(rt.telemetry.metrics, summary);
  return summary;
}

function pollSettings(config: LauncherConfig): PollSettings {
  return {
    workPool: config.workPool,
    workQueues: config.workQueues,
    workerName: config.workerName,
    lookaheadSeconds: config.lookaheadSeconds,
    startLeadSeconds: config.startLeadSeconds,
    pollIntervalSeconds: config.pollIntervalSeconds,
    concurrency: config.concurrency,
  };
}

/**
 * The run-now function: a caller without the token is refused before the runtime (and so the Prefect
 * credential and any client) is even built. The token comes from LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN.
 */
export function runNowService(
  runtime: () => Promise<Runtime<RunNowClients>>,
  telemetry: Telemetry,
  env: Record<string, string | undefined> = process.env,
): (request: RunNowRequest) => Promise<RunNowResponse> {
  let token: (() => Promise<string>) | undefined;
  return runNowServer({
    token: () => {
      token ??= runNowTokenReader(parseRunNowToken(env), () =>
        createSecretsManagerClient(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
      );
      return token();
    },
    runtime,
    telemetry,
  });
}

/**
 * The entry point behind the function URL and its local stand-ins (`npm start`, the bench): the request
 * checked (src/launch/run-now.ts), the claim made, its metrics recorded. `afterClaim` lets the local stack
 * pick up the execution at once.
 */
export function runNowServer(options: {
  token: () => Promise<string>;
  runtime: () => Promise<Runtime<RunNowClients>>;
  telemetry: Telemetry;
  afterClaim?: () => Promise<unknown>;
}): (request: RunNowRequest) => Promise<RunNowResponse> {
  const log = loggerOver(options.telemetry.logger, { function: 'run-now' });
  return async (request) => {
    let started = 0;
    const response = await handleRunNow(
      {
        token: options.token,
        claim: async (id) => {
          const outcome = await runRunNow(await options.runtime(), id);
          started = outcome.started;
          await options.afterClaim?.();
          return outcome;
        },
        log,
      },
      request,
    );
    recordRunNow(options.telemetry.metrics, response.statusCode, started);
    return response;
  };
}

/** A run-now call: the poll's claim-and-start path for one named run, or every due run of the pool. */
export async function runRunNow(
  rt: Runtime<RunNowClients>,
  flowRunId: string | undefined,
  options: { now?: () => Date } = {},
): Promise<RunNowOutcome> {
  const stateMachineArn = requireStateMachineArn(rt.config);
  const summary = await poll({
    prefect: rt.prefect,
    startExecution: (input) => startLaunchExecution(rt.aws.sfn, stateMachineArn, input),
    describeExecution: describeLaunchExecution(rt.aws.sfn, stateMachineArn),
    settings: pollSettings(rt.config),
    log: rt.log.child({ function: 'run-now', ...(flowRunId ? { flowRunId } : {}) }),
    runNow: { flowRunId },
    ...(options.now ? { now: options.now } : {}),
  });
  return { due: summary.due, started: summary.outcomes.started };
}

export async function runCrash(rt: Runtime<CrashClients>, input: CrashInput) {
  const result = await reportLaunchFailure(
    { prefect: rt.prefect, log: rt.log.child({ function: 'crash', flowRunId: input.flowRunId }) },
    input,
  );
  recordLaunchFailure(rt.telemetry.metrics, input, result.action);
  return result;
}

export async function runReport(rt: Runtime<ReportClients>, task: TaskStateChange): Promise<ReportAction> {
  const { ecs } = rt.aws;
  const { metrics } = rt.telemetry;
  const action = await reportTaskStateChange(
    {
      prefect: rt.prefect,
      ecs: {
        stopTask: (cluster, arn, reason) => stopTask(ecs, cluster, arn, reason),
        deregisterIfTagged: (arn) => deregisterIfTagged(ecs, arn),
      },
      log: rt.log.child({ function: 'report' }),
      workPool: rt.config.workPool,
      observe: { runTaskLateness: (seconds) => recordRunTaskLateness(metrics, seconds) },
    },
    task,
  );
  recordReportEvent(metrics, task.lastStatus, action, () => diagnoseStoppedTask(task).category);
  return action;
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

export async function runPrepare(rt: Runtime<PrepareClients>, input: PrepareInput): Promise<PreparedLaunch> {
  const prepared = await prepareLaunch(
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
  recordPrepared(rt.telemetry.metrics);
  return prepared;
}
