import type { Task } from '@aws-sdk/client-ecs';
import { PrefectApiError } from '../errors';
import type { Logger } from '../log';
import type { PrefectClient } from '../prefect/client';
import { cancelledState, crashedState } from '../prefect/states';
import { LogLevel, type StateType } from '../prefect/types';
import { diagnoseStoppedTask } from './diagnosis';
import { restoreDisplacedFinalState } from './displaced-final';

/**
 * "ECS Task State Change" events → Prefect. Events come at least once and in any order
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_cwet_handling.html), so every action
 * is decided from the flow run's current state and never moves it backwards: a stale PENDING after RUNNING
 * does nothing, a second STOPPED finds the run already final.
 */

/** The `detail` of an ECS Task State Change event (camelCase, as ECS's API). */
export type TaskStateChange = Task & { clusterArn: string; taskArn: string; lastStatus: string };

const GROUP_PREFIX = 'prefect-flow-run:';

/** The flow run a task belongs to, from the task group the launcher set; null for anyone else's task. */
export function flowRunIdOfTask(task: Pick<Task, 'group'>): string | null {
  const id = task.group?.startsWith(GROUP_PREFIX) ? task.group.slice(GROUP_PREFIX.length) : '';
  return /^[0-9a-f-]{36}$/i.test(id) ? id : null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The flow run of a task prefect-aws's worker started: the `PREFECT__FLOW_RUN_ID` it sets in the task's
 * container overrides (../shared/reference/prefect-ecs-worker.md §4.5), which the event's `detail` carries as
 * DescribeTasks does (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html).
 * Null for the launcher's own tasks (their group says) and for tasks without it.
 */
export function flowRunIdOfWorkerTask(task: Pick<Task, 'group' | 'overrides'>): string | null {
  if (flowRunIdOfTask(task)) return null;
  for (const container of task.overrides?.containerOverrides ?? []) {
    const id = container.environment?.find((e) => e.name === 'PREFECT__FLOW_RUN_ID')?.value;
    if (id && UUID.test(id)) return id;
  }
  return null;
}

/** The infrastructure pid, as the worker writes it: `<cluster>::<taskArn>` (ARNs contain `:`). */
export function infrastructurePid(task: Pick<TaskStateChange, 'clusterArn' | 'taskArn'>): string {
  return `${task.clusterArn}::${task.taskArn}`;
}

export type ReportAction =
  | 'ignored'
  | 'task-stopped'
  | 'relaunch-stopped'
  | 'pid-set'
  | 'crashed'
  | 'cancelled'
  | 'left-to-engine'
  | 'run-moved-on';

export type ReportPrefect = Pick<
  PrefectClient,
  'readFlowRun' | 'readFlowRunStates' | 'updateFlowRun' | 'setFlowRunState' | 'createFlowRunLogs'
>;

/** The ECS calls the reporter makes (src/aws/ecs.ts provides them). */
export interface ReportEcs {
  stopTask(cluster: string, taskArn: string, reason: string): Promise<void>;
  /** Deregisters the revision when it carries the auto-deregistration tag; returns whether it did. */
  deregisterIfTagged(taskDefinitionArn: string): Promise<boolean>;
}

export interface ReportDeps {
  prefect: ReportPrefect;
  ecs: ReportEcs;
  log: Logger;
  /** The launcher's work pool: the worker's tasks of other pools are left alone. */
  workPool: string;
  /** Told each started task's RunTask lateness (src/metrics.ts records it). */
  observe?: { runTaskLateness(seconds: number): void };
}

/**
 * Seconds from the task's creation (RunTask) to RUNNING: image pull, ENI and start, what a start lead
 * (src/launch/start-lead.ts) should cover. Undefined before RUNNING or without both times.
 */
export function provisioningSeconds(task: Pick<Task, 'createdAt' | 'startedAt'>): number | undefined {
  if (!task.createdAt || !task.startedAt) return undefined;
  const seconds = (new Date(task.startedAt).getTime() - new Date(task.createdAt).getTime()) / 1000;
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/**
 * Seconds from the run's scheduled time to the task's creation, i.e. to the RunTask call: the lateness
 * `npm run bench` measures (below zero when a start lead sent it early). Undefined without both times.
 */
export function runTaskLatenessSeconds(
  task: Pick<Task, 'createdAt'>,
  run: { expected_start_time?: string | null },
): number | undefined {
  if (!task.createdAt || !run.expected_start_time) return undefined;
  const seconds = (new Date(task.createdAt).getTime() - new Date(run.expected_start_time).getTime()) / 1000;
  return Number.isFinite(seconds) ? seconds : undefined;
}

const FINAL: readonly StateType[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED'];

export async function reportTaskStateChange(deps: ReportDeps, task: TaskStateChange): Promise<ReportAction> {
  const flowRunId = flowRunIdOfTask(task);
  if (!flowRunId) {
    const workerRunId = flowRunIdOfWorkerTask(task);
    return workerRunId ? guardWorkerTask(deps, task, workerRunId) : 'ignored';
  }
  const { prefect } = deps;
  const log = deps.log.child({ flowRunId, taskArn: task.taskArn, lastStatus: task.lastStatus });
  if (task.lastStatus === 'STOPPED' && task.taskDefinitionArn) {
    // prefect-aws's observer does the same on STOPPED (spec §6, deregister_task_definition); only revisions
    // the launcher registered for one run carry the tag, and it never reuses them (src/aws/ecs.ts).
    if (await deps.ecs.deregisterIfTagged(task.taskDefinitionArn)) {
      log.info('task definition deregistered', { taskDefinitionArn: task.taskDefinitionArn });
    }
  }
  const run = await prefect.readFlowRun(flowRunId);
  if (task.lastStatus === 'RUNNING') {
    // One line per started task, for choosing a start lead (docs/deploy.md shows the Logs Insights query),
    // whatever the run's state: a short flow may have ended before its task's RUNNING event arrives.
    const provisioned = provisioningSeconds(task);
    const lateness = runTaskLatenessSeconds(task, run);
    if (provisioned !== undefined) {
      log.info('task running', { provisioningSeconds: provisioned, runTaskLatenessSeconds: lateness });
    }
    if (lateness !== undefined) deps.observe?.runTaskLateness(lateness);
  }
  // A run the launcher moved back from its final state (a retry that failed half-way, or another event's).
  if (await restoreDisplacedFinalState(prefect, log, flowRunId, run.state, { seenNow: true })) {
    return 'run-moved-on';
  }
  const type = run.state?.type ?? run.state_type;
  if (type === 'CANCELLED' && task.lastStatus !== 'STOPPED' && task.desiredStatus !== 'STOPPED') {
    // A task that started after its run was cancelled (the cancel raced the RunTask call): nobody wants it.
    await deps.ecs.stopTask(task.clusterArn, task.taskArn, 'Flow run was cancelled (prefect-ecs-launcher)');
    log.warn('stopped a task whose flow run is cancelled');
    return 'task-stopped';
  }
  if (!type || FINAL.includes(type) || type === 'SCHEDULED' || type === 'PAUSED') {
    log.info('event ignored: the run has moved on', { state: type });
    return 'run-moved-on';
  }
  const pid = infrastructurePid(task);
  let action: ReportAction = 'left-to-engine';
  if (run.infrastructure_pid !== pid) {
    await prefect.updateFlowRun(flowRunId, { infrastructure_pid: pid });
    action = 'pid-set';
  }

  // No InfrastructurePending on a task's early events, unlike prefect-aws's observer: the server accepts it
  // over COMPLETED, FAILED and CRASHED, so one decided from a read the flow's end overtook reopens the
  // ended run (docs/reliability.md). The pid above already says the task exists.
  if (task.lastStatus === 'STOPPED')
    return reportStopped(prefect, log, flowRunId, type, run.state ?? null, task);
  return action;
}

async function reportStopped(
  prefect: ReportPrefect,
  log: Logger,
  flowRunId: string,
  type: StateType,
  current: Parameters<typeof cancelledState>[2],
  task: TaskStateChange,
): Promise<ReportAction> {
  const diagnosis = diagnoseStoppedTask(task);
  if (type === 'CANCELLING') {
    // The engine did not finish the cancellation before the task stopped: end it as the user asked.
    const message = `Flow run cancelled; its ECS task stopped (${task.stoppedReason ?? 'no reason given'}).`;
    await prefect.setFlowRunState(flowRunId, cancelledState(flowRunId, message, current), { force: true });
    return 'cancelled';
  }
  if (!diagnosis.crashed) {
    // Exit 0 on a run that is not final: the engine reports the outcome; the sweep catches a silent engine.
    log.info('task stopped cleanly; the engine reports the outcome');
    return 'left-to-engine';
  }
  await prefect.createFlowRunLogs([
    {
      flowRunId,
      level: diagnosis.severity === 'warning' ? LogLevel.WARNING : LogLevel.ERROR,
      message: diagnosis.explanation,
    },
  ]);
  const result = await prefect.setFlowRunState(flowRunId, crashedState(flowRunId, diagnosis.message), {
    force: false,
  });
  log.warn('flow run crashed', { stateMessage: diagnosis.message, status: result.status });
  if (result.status !== 'ACCEPT') return 'run-moved-on';
  // Accepted over a late claim (or an older launcher's InfrastructurePending) that had displaced the flow's
  // end: that end stands.
  return (await restoreDisplacedFinalState(prefect, log, flowRunId, result.state))
    ? 'run-moved-on'
    : 'crashed';
}

/**
 * A task of prefect-aws's worker, on the launcher's pool while both serve it (docs/deploy.md, migrating).
 * The worker reads a run while it is Scheduled and claims it later; when the launcher's task has run the
 * flow to its end in between, the server still grants that late claim (a PENDING over COMPLETED without a
 * persisted result, FAILED or CRASHED: ../shared/reference/prefect-orchestration.md §3) and the worker
 * launches the run again, so the flow would run twice. Its task is stopped before the flow's container
 * starts (ECS reports PROVISIONING and PENDING first), and the run gets its end back: the worker's observer
 * then leaves the final run alone. Any other worker task is the worker's to report.
 */
async function guardWorkerTask(
  deps: ReportDeps,
  task: TaskStateChange,
  flowRunId: string,
): Promise<ReportAction> {
  // A run of another workspace (the worker of another pool, in the same cluster) is not found here.
  const run = await deps.prefect.readFlowRun(flowRunId).catch((error: unknown) => {
    if (error instanceof PrefectApiError && error.status === 404) return null;
    throw error;
  });
  if (run?.work_pool_name !== deps.workPool) return 'ignored';
  const log = deps.log.child({
    flowRunId,
    taskArn: task.taskArn,
    lastStatus: task.lastStatus,
    startedBy: 'worker',
  });
  const live = task.lastStatus !== 'STOPPED' && task.desiredStatus !== 'STOPPED';
  const restored = await restoreDisplacedFinalState(deps.prefect, log, flowRunId, run.state, {
    seenNow: true,
    // The worker follows its claim with "Submitting" (prefect ≥ 3.6.22) before RunTask, and the flow may
    // have started: any Pending or Running run is looked at.
    anyActive: true,
    // Stopped first: a retry after a failed restore finds the run still reopened and decides again.
    beforeRestore: async (end) => {
      if (!live) return;
      await deps.ecs.stopTask(task.clusterArn, task.taskArn, RELAUNCH_STOP_REASON);
      log.warn("stopped the worker's second launch of a flow run that had ended", {
        end: end.name ?? end.type,
      });
    },
  });
  if (!restored) return 'ignored';
  return live ? 'relaunch-stopped' : 'run-moved-on';
}

/** StopTask's reason, shown in the console and in the task's STOPPED event. */
export const RELAUNCH_STOP_REASON =
  'Flow run had already ended: a late claim launched it again (prefect-ecs-launcher)';
