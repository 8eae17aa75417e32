import type { Task } from '@aws-sdk/client-ecs';
import type { ExecutionFacts } from '../aws/sfn';
import type { Logger } from '../log';
import type { PrefectClient } from '../prefect/client';
import { cancelledState, crashedState, isLateClaim, newestClaim } from '../prefect/states';
import { type FlowRun, LogLevel, type State, type StateType } from '../prefect/types';
import { mapLimit } from './concurrency';
import { diagnoseStoppedTask } from './diagnosis';
import { restoreDisplacedFinalState } from './displaced-final';

/**
 * What each poll does besides claiming: it cancels this pool's CANCELLING runs and sweeps its PENDING and
 * RUNNING runs for launches that went wrong without anyone telling Prefect (a lost ECS event, a Lambda that
 * died between two calls). Facts are gathered in batches (one ListExecutions, one DescribeTasks per 100
 * tasks of a cluster); each run's fate is then decided by the pure `decideRun`, and carried out.
 *
 * Cancellation follows the worker's `_cancel_run` (../shared/reference/prefect-ecs-worker.md §5) and does
 * more: a run that never started running is cancelled at once, its execution and task stopped; a running
 * run is left to the engine in its container (which sees the Cancelling state, kills the flow and proposes
 * Cancelled) for `cancelGraceSeconds`, after which its task is stopped and the run forced to Cancelled, so
 * no task keeps billing after a cancel.
 */

/** The message of the launcher's claim (Scheduled → Pending): how a sweep knows a claim is its own. */
export function claimMessage(workerName: string): string {
  return `Claimed by ${workerName}; its launch execution starts next.`;
}

/** The label Prepare puts on every run it launches (the worker sets the same). */
export const WORKER_NAME_LABEL = 'prefect.worker.name';

/** `<cluster>::<taskArn>`, the infrastructure pid; null for anything else. */
export function parseInfrastructurePid(pid: string | null): { cluster: string; taskArn: string } | null {
  const at = pid?.indexOf('::') ?? -1;
  if (!pid || at <= 0 || at + 2 >= pid.length) return null;
  return { cluster: pid.slice(0, at), taskArn: pid.slice(at + 2) };
}

/** What the sweep knows of one run; `execution` and `task` are absent when they were not needed. */
export interface RunFacts {
  run: FlowRun;
  execution?: ExecutionFacts;
  task?: Task | 'MISSING';
}

export interface ReconcileSettings {
  workerName: string;
  /** How old evidence must be before the sweep acts on it, so it never races the normal path. */
  settleSeconds: number;
  /** How long a running run may stay Cancelling before its task is stopped. */
  cancelGraceSeconds: number;
}

export type RunDecision =
  | { kind: 'none' }
  | { kind: 'resume' }
  | { kind: 'crash'; message: string; explanation?: string; stopExecution: boolean }
  | { kind: 'cancel'; message: string; stopExecution: boolean; stopTask: boolean }
  | { kind: 'stop-task'; reason: string };

const ACTIVE: readonly StateType[] = ['PENDING', 'RUNNING'];

function stateType(run: FlowRun): StateType | null {
  return run.state?.type ?? run.state_type;
}

function stateName(run: FlowRun): string {
  return run.state?.name ?? run.state_name ?? stateType(run) ?? 'unknown';
}

/**
 * A run this launcher claimed or launched: its label, its claim (the current state, or `claimedInHistory`
 * when the run moved on from it), or an execution of ours named after it.
 */
export function isOwnRun(
  run: FlowRun,
  workerName: string,
  execution?: ExecutionFacts,
  claimedInHistory = false,
): boolean {
  if (run.labels?.[WORKER_NAME_LABEL] === workerName) return true;
  if (run.state_name === 'Pending' && run.state?.message === claimMessage(workerName)) return true;
  return claimedInHistory || Boolean(execution && execution.status !== 'MISSING');
}

/** Whether the run's newest claim in its history is this launcher's. */
export function claimedBy(history: readonly State[], workerName: string): boolean {
  return newestClaim(history)?.message === claimMessage(workerName);
}

/** A run from a server without flow-run labels (Prefect before 3.1), whose runs carry no `labels` at all. */
function unlabelled(run: FlowRun): boolean {
  return run.labels === undefined;
}

function ageSeconds(since: string | Date | undefined, now: Date): number {
  const time = since === undefined ? Number.NaN : new Date(since).getTime();
  return Number.isNaN(time) ? Number.POSITIVE_INFINITY : (now.getTime() - time) / 1000;
}

function taskAlive(task: RunFacts['task']): boolean {
  return Boolean(task && task !== 'MISSING' && task.lastStatus !== 'STOPPED');
}

/** What to do with one run, from what is known of it. Pure. */
export function decideRun(facts: RunFacts, settings: ReconcileSettings, now: Date): RunDecision {
  const { run, execution, task } = facts;
  const type = stateType(run);
  const pid = parseInfrastructurePid(run.infrastructure_pid);

  if (type === 'CANCELLED') {
    // The server's cancellation-timeout service (or a user forcing Cancelled) may end a run whose task still
    // runs; nobody else would ever stop it.
    return pid && taskAlive(task)
      ? { kind: 'stop-task', reason: 'Flow run was cancelled (prefect-ecs-launcher)' }
      : { kind: 'none' };
  }

  if (type === 'CANCELLING') {
    const executionRunning = execution?.status === 'RUNNING';
    const alive = taskAlive(task);
    if (!run.start_time) {
      const stopped = [executionRunning && 'its launch execution', alive && 'its ECS task'].filter(Boolean);
      return {
        kind: 'cancel',
        stopExecution: executionRunning,
        stopTask: alive,
        message: `Flow run cancelled by prefect-ecs-launcher before it started running${
          stopped.length ? `; ${stopped.join(' and ')} ${stopped.length > 1 ? 'were' : 'was'} stopped` : ''
        }.`,
      };
    }
    const waited = ageSeconds(run.state?.timestamp, now);
    if (waited < settings.cancelGraceSeconds) return { kind: 'none' };
    return {
      kind: 'cancel',
      stopExecution: executionRunning,
      stopTask: alive,
      message: `Flow run was still Cancelling ${Math.round(waited)} s after the cancel request (the grace period is ${settings.cancelGraceSeconds} s); prefect-ecs-launcher ${
        alive ? 'stopped its ECS task' : 'found its ECS task already stopped'
      } and marked it Cancelled.`,
    };
  }

  if (!type || !ACTIVE.includes(type)) return { kind: 'none' };
  const state = stateName(run);
  // A crashed run's execution has nothing left to do; stopping it also stops any task it started.
  const executionRunning = execution?.status === 'RUNNING';

  if (pid && task) {
    if (task === 'MISSING') {
      return {
        kind: 'crash',
        message: `prefect-ecs-launcher found no ECS task ${pid.taskArn} in cluster ${pid.cluster} while the flow run was still ${state}; ECS keeps a stopped task visible for about an hour, so it stopped long before and its stop event was lost.`,
        stopExecution: executionRunning,
      };
    }
    if (task.lastStatus !== 'STOPPED') return { kind: 'none' };
    if (ageSeconds(task.stoppedAt ?? task.stoppingAt, now) < settings.settleSeconds) return { kind: 'none' };
    const diagnosis = diagnoseStoppedTask(task);
    const found = diagnosis.crashed
      ? diagnosis.message
      : 'its flow container exited with code 0, but the flow run never reported a final state.';
    return {
      kind: 'crash',
      message: `prefect-ecs-launcher found the flow run's ECS task stopped while the run was still ${state}: ${found}`,
      ...(diagnosis.crashed ? { explanation: diagnosis.explanation } : {}),
      stopExecution: executionRunning,
    };
  }

  // No task known: the execution tells where the launch is.
  if (!execution || execution.status === 'RUNNING') return { kind: 'none' };
  if (execution.status === 'MISSING') {
    // Claimed, but the poll died before it started the execution: start it now (the name makes it safe).
    const claimedAt = run.state?.timestamp;
    return type === 'PENDING' && ageSeconds(claimedAt, now) >= settings.settleSeconds
      ? { kind: 'resume' }
      : { kind: 'none' };
  }
  if (ageSeconds(execution.stopDate ?? run.state?.timestamp, now) < settings.settleSeconds) {
    return { kind: 'none' };
  }
  const ended = execution.status.toLowerCase().replace('_', ' ');
  return {
    kind: 'crash',
    message: `prefect-ecs-launcher found the flow run's launch execution ${ended}${executionCause(execution)} while the run was still ${state}; see execution ${run.id} of the launch state machine in Step Functions.`,
    stopExecution: false,
  };
}

/**
 * Why an execution failed, when no state of it could say so: Step Functions' terminal errors
 * (States.Runtime, States.DataLimitExceeded) end an execution without running its Catch, so the Crash state
 * never reports them. https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 */
function executionCause(execution: ExecutionFacts): string {
  if (!execution.error) return '';
  const cause = execution.cause ? `: ${execution.cause.slice(0, 500)}` : '';
  return ` with ${execution.error}${cause}`;
}

/** The AWS side of the sweep, as src/aws provides it (tests may wrap it). */
export interface ReconcileAws {
  /** Names of the launch state machine's RUNNING executions. */
  runningExecutions(): Promise<Set<string>>;
  describeExecution(name: string): Promise<ExecutionFacts>;
  startExecution(input: { flowRunId: string; scheduledStartTime: string; startAt: string }): Promise<unknown>;
  stopExecution(name: string, cause: string): Promise<void>;
  describeTasks(cluster: string, taskArns: string[]): Promise<Map<string, Task | 'MISSING'>>;
  stopTask(cluster: string, taskArn: string, reason: string): Promise<void>;
}

export type ReconcilePrefect = Pick<
  PrefectClient,
  'filterFlowRuns' | 'setFlowRunState' | 'createFlowRunLogs' | 'readFlowRun' | 'readFlowRunStates'
>;

export interface ReconcileDeps {
  prefect: ReconcilePrefect;
  aws: ReconcileAws;
  settings: ReconcileSettings & {
    workPool: string;
    concurrency: number;
    /** Most runs one sweep looks at (it pages through them 200 at a time). */
    maxRuns?: number;
    /** At most this many DescribeExecution calls per sweep; the rest wait for the next one. */
    maxDescribes?: number;
  };
  log: Logger;
  now: Date;
}

export type ReconcileOutcome = 'resumed' | 'crashed' | 'restored' | 'cancelled' | 'task-stopped' | 'failed';
export type ReconcileSummary = { runs: number } & Record<ReconcileOutcome, number>;

/** Cancelled runs are looked at for this long after they ended, for tasks that still run. */
const CANCELLED_LOOKBACK_MS = 3_600_000;

export async function reconcile(deps: ReconcileDeps): Promise<ReconcileSummary> {
  const { settings, now } = deps;
  const facts = await gatherFacts(deps);
  const summary: ReconcileSummary = {
    runs: facts.length,
    resumed: 0,
    crashed: 0,
    restored: 0,
    cancelled: 0,
    'task-stopped': 0,
    failed: 0,
  };
  const outcomes = await mapLimit(facts, settings.concurrency, async (f) => {
    const decision = decideRun(f, settings, now);
    if (decision.kind === 'none') return null;
    return act(deps, f, decision, deps.log.child({ flowRunId: f.run.id, decision: decision.kind }));
  });
  for (const outcome of outcomes) if (outcome) summary[outcome] += 1;
  return summary;
}

async function gatherFacts(deps: ReconcileDeps): Promise<RunFacts[]> {
  const { prefect, aws, settings, now } = deps;
  const maxRuns = settings.maxRuns ?? 1000;
  const pool = { name: { any_: [settings.workPool] } };
  const page = async (flowRuns: Parameters<PrefectClient['filterFlowRuns']>[0]['flow_runs']) => {
    const runs: FlowRun[] = [];
    for (let offset = 0; runs.length < maxRuns; offset += 200) {
      const batch = await prefect.filterFlowRuns({
        work_pools: pool,
        flow_runs: flowRuns ?? null,
        sort: 'EXPECTED_START_TIME_ASC',
        limit: 200,
        offset,
      });
      runs.push(...batch);
      if (batch.length < 200) break;
    }
    if (runs.length >= maxRuns) {
      deps.log.warn('more runs to reconcile than one sweep looks at; the next sweeps take the rest', {
        maxRuns,
      });
    }
    return runs;
  };
  const active = await page({ state: { type: { any_: ['PENDING', 'RUNNING', 'CANCELLING'] } } });
  const cancelled = (
    await page({
      state: { type: { any_: ['CANCELLED'] } },
      end_time: { after_: new Date(now.getTime() - CANCELLED_LOOKBACK_MS).toISOString() },
    })
  ).filter(
    (r) => r.infrastructure_pid && (r.labels?.[WORKER_NAME_LABEL] === settings.workerName || unlabelled(r)),
  );
  // A Pending or Running run whose state is younger than settleSeconds is left to a later sweep: its task
  // started after that state and its execution stopped after it, so every decision of decideRun on it
  // would wait for evidence at least that old. Skipping it spares AWS calls in a burst of fresh launches.
  const settled = active.filter(
    (run) =>
      stateType(run) === 'CANCELLING' || ageSeconds(run.state?.timestamp, now) >= settings.settleSeconds,
  );
  if (!settled.length && !cancelled.length) return [];

  // Cancelled runs need only their task; the rest need to know which executions run.
  const running = settled.length ? await aws.runningExecutions() : new Set<string>();
  // An execution that is not running is described only where it decides something: runs without a known
  // task, and Cancelling runs (whose ownership it may prove).
  const runs = [...settled, ...cancelled];
  const toDescribe = runs
    .filter((run) => {
      const type = stateType(run);
      if (running.has(run.id)) return false;
      // Without labels only an execution of ours proves a run is ours.
      if (unlabelled(run)) return true;
      return (
        type !== 'CANCELLED' && (type === 'CANCELLING' || !parseInfrastructurePid(run.infrastructure_pid))
      );
    })
    .slice(0, settings.maxDescribes ?? 50);
  const described = new Map<string, ExecutionFacts>();
  await mapLimit(toDescribe, settings.concurrency, async (run) => {
    described.set(run.id, await aws.describeExecution(run.id));
  });
  const executionOf = (run: FlowRun): ExecutionFacts | undefined =>
    running.has(run.id) ? { status: 'RUNNING' } : described.get(run.id);
  // A run cancelled between its claim and its execution (the poll died in between) has no label nor
  // execution, and its claim is no longer its state: its history says whose claim it was.
  const claimedInHistory = new Set<string>();
  const unproven = runs
    .filter(
      (run) =>
        stateType(run) === 'CANCELLING' &&
        described.has(run.id) &&
        !isOwnRun(run, settings.workerName, executionOf(run)),
    )
    .slice(0, settings.maxDescribes ?? 50);
  await mapLimit(unproven, settings.concurrency, async (run) => {
    if (claimedBy(await prefect.readFlowRunStates(run.id), settings.workerName)) claimedInHistory.add(run.id);
  });
  const facts: RunFacts[] = [];
  for (const run of runs) {
    const execution = executionOf(run);
    if (isOwnRun(run, settings.workerName, execution, claimedInHistory.has(run.id)))
      facts.push({ run, ...(execution ? { execution } : {}) });
  }

  // The tasks, one DescribeTasks per 100 of a cluster.
  const byCluster = new Map<string, string[]>();
  for (const { run } of facts) {
    const pid = parseInfrastructurePid(run.infrastructure_pid);
    if (!pid) continue;
    const arns = byCluster.get(pid.cluster) ?? [];
    arns.push(pid.taskArn);
    byCluster.set(pid.cluster, arns);
  }
  const tasks = new Map<string, Task | 'MISSING'>();
  for (const [cluster, arns] of byCluster) {
    for (const [arn, task] of await aws.describeTasks(cluster, arns)) tasks.set(arn, task);
  }
  for (const f of facts) {
    const pid = parseInfrastructurePid(f.run.infrastructure_pid);
    const task = pid && tasks.get(pid.taskArn);
    if (task) f.task = task;
  }
  return facts;
}

async function act(
  deps: ReconcileDeps,
  facts: RunFacts,
  decision: Exclude<RunDecision, { kind: 'none' }>,
  log: Logger,
): Promise<ReconcileOutcome | null> {
  const { prefect, aws } = deps;
  const { run } = facts;
  const pid = parseInfrastructurePid(run.infrastructure_pid);
  try {
    switch (decision.kind) {
      case 'resume': {
        // A late claim (whose poll died before it could restore the run's end) gets that end, not a launch.
        if (run.state && isLateClaim(run.state)) {
          return (await restoreDisplacedFinalState(prefect, log, run.id, run.state)) ? 'restored' : null;
        }
        const scheduled = new Date(run.next_scheduled_start_time ?? run.expected_start_time ?? deps.now);
        // Resumed late as it is (its claim settled long ago), it goes at its scheduled time, without a lead.
        await aws.startExecution({
          flowRunId: run.id,
          scheduledStartTime: scheduled.toISOString(),
          startAt: scheduled.toISOString(),
        });
        log.warn('claimed run had no launch execution; started it');
        return 'resumed';
      }
      case 'stop-task': {
        if (pid) await aws.stopTask(pid.cluster, pid.taskArn, decision.reason);
        log.warn('stopped the task of a cancelled run', { taskArn: pid?.taskArn });
        return 'task-stopped';
      }
      case 'cancel': {
        // Cancelled first: the task's STOPPED event then finds the run final and leaves this message alone,
        // and should a stop below fail, the next sweep stops what still runs of a Cancelled run. Then the
        // execution, so it cannot start a task after the task was stopped.
        await prefect.setFlowRunState(run.id, cancelledState(run.id, decision.message, run.state), {
          force: true,
        });
        if (decision.stopExecution) await aws.stopExecution(run.id, decision.message);
        if (decision.stopTask && pid) await aws.stopTask(pid.cluster, pid.taskArn, decision.message);
        log.info('flow run cancelled', { stateMessage: decision.message });
        return 'cancelled';
      }
      case 'crash': {
        // A finished run that a late proposal reopened: its own end stands. Its history is read only here,
        // before a crash, which is rare.
        if (await restoreDisplacedFinalState(prefect, log, run.id, run.state, { anyActive: true })) {
          return 'restored';
        }
        await prefect.createFlowRunLogs([
          { flowRunId: run.id, level: LogLevel.ERROR, message: decision.explanation ?? decision.message },
        ]);
        const result = await prefect.setFlowRunState(run.id, crashedState(run.id, decision.message), {
          force: false,
        });
        log.warn('flow run crashed', { stateMessage: decision.message, status: result.status });
        // Not accepted: the run reached a state of its own meanwhile, which stands.
        if (result.status !== 'ACCEPT') return null;
        // Accepted over a late claim (or an older launcher's InfrastructurePending) that had displaced the
        // flow's end after the look above: that end stands.
        if (await restoreDisplacedFinalState(prefect, log, run.id, result.state)) return 'restored';
        if (decision.stopExecution) await aws.stopExecution(run.id, decision.message);
        return 'crashed';
      }
    }
  } catch (error) {
    // One run's trouble must not stop the sweep of the others; the next sweep tries again.
    log.error('reconciliation step failed; the next poll tries again', { error });
    return 'failed';
  }
}
