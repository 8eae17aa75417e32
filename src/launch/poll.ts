import type { ExecutionFacts } from '../aws/sfn';
import { ConfigError } from '../errors';
import type { Logger } from '../log';
import type { PrefectClient } from '../prefect/client';
import { isLateClaim, pendingState, scheduledState } from '../prefect/states';
import { type FlowRun, LogLevel, type OrchestrationResult, type WorkPool } from '../prefect/types';
import { mapLimit } from './concurrency';
import { restoreDisplacedFinalState } from './displaced-final';
import { claimMessage, type ReconcileSummary } from './reconcile';
import { type LaunchSnapshot, type PollReads, snapshotOf } from './snapshot';
import { startAtOf, startLeadOf } from './start-lead';

/**
 * One poll: heartbeat the pool, take the runs due within the look-ahead window, claim each with the
 * worker's Scheduled → Pending lock and start one launch execution per claimed run.
 * Wire behaviour: ../shared/reference/prefect-ecs-worker.md §1.2–§1.5.
 */

/** The Prefect calls a poll makes. */
export type PollPrefect = Pick<
  PrefectClient,
  | 'readWorkPool'
  | 'heartbeatWorker'
  | 'getScheduledFlowRuns'
  | 'setFlowRunState'
  | 'readFlowRun'
  | 'readFlowRunStates'
  | 'filterDeployments'
  | 'filterFlows'
  | 'createFlowRunLogs'
>;

export interface PollSettings {
  workPool: string;
  workQueues: string[];
  workerName: string;
  lookaheadSeconds: number;
  /** LAUNCHER_START_LEAD_SECONDS: the poll claims this much further ahead too. */
  startLeadSeconds: number;
  /** How often the schedule invokes the poll; the heartbeat tells Prefect when to expect the next one. */
  pollIntervalSeconds: number;
  concurrency: number;
}

export interface PollDeps {
  prefect: PollPrefect;
  startExecution(input: {
    flowRunId: string;
    scheduledStartTime: string;
    startAt: string;
    snapshot?: LaunchSnapshot;
  }): Promise<{ alreadyStarted: boolean }>;
  /** The run's launch execution, asked when StartExecution failed: it may have been created all the same. */
  describeExecution?(flowRunId: string): Promise<ExecutionFacts>;
  settings: PollSettings;
  /** Cancels this pool's Cancelling runs and sweeps its launches (src/launch/reconcile.ts), before claiming. */
  reconcile?: () => Promise<ReconcileSummary>;
  log: Logger;
  now?: () => Date;
  /**
   * A run-now call (src/launch/run-now.ts) rather than the schedule: no heartbeat and no sweep, and when a
   * flow run is named, only that one, if the server offers it as due.
   */
  runNow?: { flowRunId: string | undefined };
}

export type RunOutcome =
  | 'started'
  | 'already-started'
  | 'not-claimed'
  | 'late-claim'
  | 'returned-to-scheduled'
  | 'moved-on'
  | 'stranded-pending'
  | 'claim-failed';

export interface PollSummary {
  due: number;
  outcomes: Record<RunOutcome, number>;
  /** Absent when the poll does not reconcile, or when reconciling failed (logged; claiming goes on). */
  reconciled?: ReconcileSummary;
}

export async function poll(deps: PollDeps): Promise<PollSummary> {
  const { prefect, settings, log } = deps;
  const now = deps.now ?? (() => new Date());

  const pool = await prefect.readWorkPool(settings.workPool);
  if (!pool) {
    throw new ConfigError(
      `work pool ${JSON.stringify(settings.workPool)} does not exist; create it (prefect work-pool create ${settings.workPool} --type ecs, or prefect-ecs-launcher pool create ${settings.workPool}) or fix LAUNCHER_WORK_POOL`,
    );
  }
  if (pool.type !== 'ecs') {
    throw new ConfigError(
      `work pool ${JSON.stringify(settings.workPool)} is of type ${JSON.stringify(pool.type)}; the launcher serves only 'ecs' pools`,
    );
  }
  if (!deps.runNow) {
    await prefect.heartbeatWorker(settings.workPool, {
      name: settings.workerName,
      heartbeatIntervalSeconds: settings.pollIntervalSeconds,
    });
  }

  let reconciled: ReconcileSummary | undefined;
  if (deps.reconcile && !deps.runNow) {
    try {
      reconciled = await deps.reconcile();
    } catch (error) {
      log.error('reconciliation failed; claiming goes on and the next poll reconciles again', { error });
    }
  }

  // The server applies paused pools/queues and pool/queue concurrency limits to this answer, so never
  // claim anything it did not return.
  // A run goes out its start lead before its time, so it is claimed that much earlier too.
  const scheduledBefore = new Date(
    now().getTime() + (settings.lookaheadSeconds + settings.startLeadSeconds) * 1000,
  );
  const offered = await prefect.getScheduledFlowRuns(settings.workPool, {
    workQueueNames: settings.workQueues,
    scheduledBefore,
  });
  const only = deps.runNow?.flowRunId;
  const due = only ? offered.filter((d) => d.flow_run.id === only) : offered;

  const reads = due.length
    ? await readForLaunch(
        deps,
        pool,
        due.map((d) => d.flow_run),
        now(),
      )
    : undefined;
  const started: LogLine[] = [];
  const outcomes = await mapLimit(due, settings.concurrency, ({ flow_run }) =>
    launchOne(deps, flow_run, now(), log.child({ flowRunId: flow_run.id }), reads, started),
  );
  await writeLaunchLogs(deps, started);
  const summary: PollSummary = {
    due: due.length,
    outcomes: {
      started: 0,
      'already-started': 0,
      'not-claimed': 0,
      'late-claim': 0,
      'returned-to-scheduled': 0,
      'moved-on': 0,
      'stranded-pending': 0,
      'claim-failed': 0,
    },
    ...(reconciled ? { reconciled } : {}),
  };
  for (const o of outcomes) summary.outcomes[o] += 1;
  log.info(deps.runNow ? 'run-now claim finished' : 'poll finished', {
    workPool: settings.workPool,
    ...summary,
  });
  return summary;
}

type LogLine = Parameters<PollPrefect['createFlowRunLogs']>[0][number];

/**
 * The deployments and flows of the due runs, one filter call each for the whole poll rather than two reads
 * per run in Prepare. Should they fail, the runs are still launched: Prepare then reads for itself.
 */
async function readForLaunch(
  deps: PollDeps,
  workPool: WorkPool,
  runs: FlowRun[],
  now: Date,
): Promise<PollReads | undefined> {
  const deploymentIds = runs.flatMap((r) => (r.deployment_id ? [r.deployment_id] : []));
  try {
    const [deployments, flows] = await Promise.all([
      deploymentIds.length ? deps.prefect.filterDeployments(deploymentIds) : [],
      deps.prefect.filterFlows(runs.map((r) => r.flow_id)),
    ]);
    return {
      readAt: now,
      workPool,
      deployments: new Map(deployments.map((d) => [d.id, d])),
      flows: new Map(flows.map((f) => [f.id, f])),
    };
  } catch (error) {
    deps.log.warn("could not read the due runs' deployments and flows; each Prepare reads its own", {
      error,
    });
    return undefined;
  }
}

/**
 * One `POST /logs/` for every run this poll started, instead of one per run: the flow run's log says who
 * claimed it and when its task starts. A failure loses only these lines.
 */
async function writeLaunchLogs(deps: PollDeps, lines: LogLine[]): Promise<void> {
  if (!lines.length) return;
  try {
    await deps.prefect.createFlowRunLogs(lines);
  } catch (error) {
    deps.log.warn("could not write the launch lines to the flow runs' logs", { error, runs: lines.length });
  }
}

async function launchOne(
  deps: PollDeps,
  run: FlowRun,
  now: Date,
  log: Logger,
  reads: PollReads | undefined,
  started: LogLine[],
): Promise<RunOutcome> {
  const scheduledStartTime =
    toRfc3339(run.next_scheduled_start_time ?? run.expected_start_time) ?? now.toISOString();
  let claim: OrchestrationResult;
  try {
    claim = await deps.prefect.setFlowRunState(
      run.id,
      pendingState(run.id, claimMessage(deps.settings.workerName)),
      { force: false },
    );
  } catch (error) {
    // Nothing changed on the server, so the run stays Scheduled for the next poll.
    log.warn('claim failed; the next poll retries', { error });
    return 'claim-failed';
  }
  if (claim.status !== 'ACCEPT' || claim.state?.type !== 'PENDING') {
    // ABORT: another poller (or worker) claimed it. REJECT: the server kept it (e.g. deployment
    // concurrency limit reached → AwaitingConcurrencySlot) and will offer it again.
    log.info('not claimed', {
      status: claim.status,
      state: claim.state?.name,
      reason: claim.details?.reason,
    });
    return 'not-claimed';
  }
  if (isLateClaim(claim.state)) {
    // Accepted over the run's end (a poll that read it Scheduled was overtaken by its launch and end): the
    // run has had its launch, so no execution; it gets its end back. Should that fail, the sweep restores it.
    try {
      await restoreDisplacedFinalState(deps.prefect, log, run.id, claim.state, { seenNow: true });
    } catch (error) {
      log.error(
        'a late claim reopened an ended flow run, and restoring its end failed; the sweep restores it',
        {
          error,
        },
      );
    }
    return 'late-claim';
  }

  const snapshot = reads && snapshotOf(run, claim.state, reads);
  const deployment = run.deployment_id ? reads?.deployments.get(run.deployment_id) : undefined;
  const lead = startLeadOf(run.job_variables, deployment?.job_variables, deps.settings.startLeadSeconds);
  const startAt = startAtOf(scheduledStartTime, lead.seconds);
  try {
    const { alreadyStarted } = await deps.startExecution({
      flowRunId: run.id,
      scheduledStartTime,
      startAt,
      ...(snapshot ? { snapshot } : {}),
    });
    log.info(alreadyStarted ? 'execution already existed' : 'launch execution started', {
      scheduledStartTime,
      startAt,
      snapshot: Boolean(snapshot),
    });
    if (alreadyStarted) return 'already-started';
    if (lead.problem) {
      started.push({
        flowRunId: run.id,
        level: LogLevel.WARNING,
        message: `prefect-ecs-launcher: ${lead.problem}.`,
      });
    }
    const when = lead.seconds
      ? `${startAt} (its start lead, ${lead.seconds} s, before its scheduled time ${scheduledStartTime})`
      : startAt;
    started.push({
      flowRunId: run.id,
      level: LogLevel.INFO,
      message: `${deps.settings.workerName} (prefect-ecs-launcher) claimed this flow run and started its launch execution; its ECS task starts at ${when}, or at once if that time has passed.`,
    });
    return 'started';
  } catch (error) {
    // A StartExecution whose answer was lost (a timeout, a reset connection) may have created the execution,
    // which launches the run: back to Scheduled, it would be claimed and launched again, by a worker on the
    // same pool as well as by this launcher.
    // https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
    if (await startedAnyway(deps, run.id, log)) return 'already-started';
    return returnToScheduled(deps, run, scheduledStartTime, error, log);
  }
}

/** Whether the run's execution exists although StartExecution failed; false when that cannot be told. */
async function startedAnyway(deps: PollDeps, flowRunId: string, log: Logger): Promise<boolean> {
  if (!deps.describeExecution) return false;
  try {
    const { status } = await deps.describeExecution(flowRunId);
    if (status === 'MISSING') return false;
    log.warn('StartExecution failed, yet the launch execution exists; it launches the run', { status });
    return true;
  } catch (error) {
    log.warn('could not tell whether the launch execution exists; returning the run to Scheduled', { error });
    return false;
  }
}

/** A claimed run whose execution could not be started goes back to Scheduled, at its original time. */
async function returnToScheduled(
  deps: PollDeps,
  run: FlowRun,
  scheduledTime: string,
  error: unknown,
  log: Logger,
): Promise<RunOutcome> {
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  log.error('could not start the launch execution; returning the run to Scheduled', { error });
  try {
    const result = await deps.prefect.setFlowRunState(
      run.id,
      scheduledState(run.id, new Date(scheduledTime), {
        message: `prefect-ecs-launcher could not start its Step Functions execution (${reason}); the next poll will try again.`,
      }),
      // Not forced: the orchestration rules then release a deployment concurrency slot the claim took.
      { force: false },
    );
    if (result.status === 'ACCEPT') return 'returned-to-scheduled';
    log.warn('the run moved on before it could be returned to Scheduled', {
      status: result.status,
      state: result.state?.name,
    });
    return 'moved-on';
  } catch (resetError) {
    log.error('could not return the run to Scheduled; the reconciliation sweep will end it', {
      error: resetError,
    });
    return 'stranded-pending';
  }
}

function toRfc3339(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
