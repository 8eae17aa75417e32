/**
 * What `prefect-ecs-launcher status` tells: the deployed stack (with --stage), the pool, the launcher's
 * heartbeat, and the pool's runs of the last hour by what the launcher is doing with them. Pure: built from
 * what CloudFormation, Prefect and Step Functions answered (src/cli/status.ts reads them) and printed for a
 * person or as JSON.
 */
import type { StackFacts } from '../aws/cloudformation';
import { parseInfrastructurePid } from '../launch/reconcile';
import type { FlowRun, WorkerHeartbeatView, WorkPool, WorkQueueInfo } from '../prefect/types';

export interface ExecutionView {
  name: string;
  status: string;
  stopDate?: string;
}

/** The deployed stack as the report shows it: where, how it stands, which version with which settings. */
export interface StackSection {
  name: string;
  region: string;
  status: string;
  statusReason: string | null;
  lastUpdated: string | null;
  /** The stack's LauncherVersion output (package.json's version when deployed); null before it existed. */
  version: string | null;
  stateMachineArn: string | null;
  /** Every parameter of the stack by name: settings and ARNs, never a credential (serverless.yml). */
  settings: Record<string, string>;
}

/** A URL's `user:password@`, which a PrefectApiUrl parameter could hold, never reaches the report. */
function withoutUserInfo(value: string): string {
  return value.replace(/^(https?:\/\/)[^/@\s]*@/i, '$1***@');
}

export function stackSection(stack: StackFacts, region: string): StackSection {
  return {
    name: stack.name,
    region,
    status: stack.status,
    statusReason: stack.statusReason ?? null,
    lastUpdated: stack.lastUpdated?.toISOString() ?? null,
    version: stack.outputs.LauncherVersion ?? null,
    stateMachineArn: stack.outputs.LaunchStateMachineArn ?? null,
    settings: Object.fromEntries(
      Object.entries(stack.parameters)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([key, value]) => [key, withoutUserInfo(value)]),
    ),
  };
}

export interface StatusInputs {
  /** The deployed stack, with --stage. */
  stack?: StackSection;
  pool: WorkPool;
  workerName: string;
  workers: WorkerHeartbeatView[];
  queues: WorkQueueInfo[];
  /** The pool's runs expected to start within the window, newest first. */
  runs: FlowRun[];
  /** The launch state machine's executions (running, and failed within the window); absent without its ARN. */
  executions?: ExecutionView[];
  now: Date;
  sinceMinutes: number;
}

export interface RunLine {
  id: string;
  name: string;
  state: string;
  expectedStart: string | null;
  /** The ECS task, from the run's infrastructure pid. */
  task?: string;
  /** The launch execution, when Step Functions was asked and has one by the run's id. */
  execution?: string;
  message?: string;
}

export interface StatusReport {
  stack: StackSection | null;
  pool: { name: string; status: string | null; paused: boolean; concurrencyLimit: number | null };
  launcher: { name: string; status: string | null; lastHeartbeat: string | null; secondsAgo: number | null };
  queues: { name: string; paused: boolean; concurrencyLimit: number | null; status: string | null }[];
  window: { sinceMinutes: number; runs: number; truncated: boolean };
  runs: {
    waitingForTheirSecond: RunLine[];
    launching: RunLine[];
    running: RunLine[];
    crashed: RunLine[];
    cancelling: RunLine[];
    counts: Record<string, number>;
  };
  executions: { running: number; failed: ExecutionView[] } | null;
}

/** How many runs one status reads at most (the filter's page size on Prefect's servers). */
export const STATUS_RUN_LIMIT = 200;

function lineOf(run: FlowRun, executions: Map<string, ExecutionView> | undefined): RunLine {
  const pid = parseInfrastructurePid(run.infrastructure_pid);
  const execution = executions?.get(run.id);
  const message = run.state?.message ?? undefined;
  return {
    id: run.id,
    name: run.name,
    state: run.state?.name ?? run.state_name ?? run.state_type ?? 'unknown',
    expectedStart: run.expected_start_time,
    ...(pid ? { task: pid.taskArn } : {}),
    ...(execution ? { execution: `${execution.name} (${execution.status})` } : {}),
    ...(message ? { message } : {}),
  };
}

export function statusReport(inputs: StatusInputs): StatusReport {
  const { pool, now } = inputs;
  const own = inputs.workers.find((w) => w.name === inputs.workerName);
  const last = own?.last_heartbeat_time ?? null;
  const executions = inputs.executions && new Map(inputs.executions.map((e) => [e.name, e]));
  const by = (predicate: (run: FlowRun, type: string) => boolean) =>
    inputs.runs
      .filter((run) => predicate(run, run.state?.type ?? run.state_type ?? ''))
      .map((run) => lineOf(run, executions));
  const counts: Record<string, number> = {};
  for (const run of inputs.runs) {
    const name = run.state?.name ?? run.state_name ?? 'unknown';
    counts[name] = (counts[name] ?? 0) + 1;
  }
  const future = (run: FlowRun) =>
    run.expected_start_time !== null && new Date(run.expected_start_time) > now;
  return {
    stack: inputs.stack ?? null,
    pool: {
      name: pool.name,
      status: pool.status ?? null,
      paused: pool.is_paused,
      concurrencyLimit: pool.concurrency_limit,
    },
    launcher: {
      name: inputs.workerName,
      status: own?.status ?? null,
      lastHeartbeat: last,
      secondsAgo: last ? Math.round((now.getTime() - new Date(last).getTime()) / 1000) : null,
    },
    queues: inputs.queues.map((q) => ({
      name: q.name,
      paused: q.is_paused ?? false,
      concurrencyLimit: q.concurrency_limit ?? null,
      status: q.status ?? null,
    })),
    window: {
      sinceMinutes: inputs.sinceMinutes,
      runs: inputs.runs.length,
      truncated: inputs.runs.length >= STATUS_RUN_LIMIT,
    },
    runs: {
      waitingForTheirSecond: by((run, type) => type === 'PENDING' && future(run)),
      launching: by((run, type) => type === 'PENDING' && !future(run)),
      running: by((_, type) => type === 'RUNNING'),
      crashed: by((_, type) => type === 'CRASHED'),
      cancelling: by((_, type) => type === 'CANCELLING'),
      counts,
    },
    executions: inputs.executions
      ? {
          running: inputs.executions.filter((e) => e.status === 'RUNNING').length,
          failed: inputs.executions.filter((e) => e.status === 'FAILED'),
        }
      : null,
  };
}

function section(title: string, lines: RunLine[]): string[] {
  if (!lines.length) return [];
  return [
    `${title} (${lines.length}):`,
    ...lines.map((l) =>
      [
        `  ${l.id} ${l.name} [${l.state}] due ${l.expectedStart ?? '?'}`,
        l.task ? `task ${l.task}` : '',
        l.execution ? `execution ${l.execution}` : '',
        l.message ? `: ${l.message}` : '',
      ]
        .filter(Boolean)
        .join(' '),
    ),
  ];
}

function stackLines(stack: StackSection): string[] {
  return [
    `stack ${stack.name} in ${stack.region}: ${stack.status}${stack.statusReason ? ` (${stack.statusReason})` : ''}, last updated ${stack.lastUpdated ?? '?'}, launcher version ${stack.version ?? 'unknown (no LauncherVersion output)'}`,
    ...(Object.keys(stack.settings).length
      ? [
          'settings:',
          ...Object.entries(stack.settings).map(
            ([key, value]) => `  ${key} ${value === '' ? '(empty)' : value}`,
          ),
        ]
      : ['settings: none (the stack has no parameters)']),
  ];
}

/** Why executions were not listed, for the person reading. */
function executionsNotAsked(stack: StackSection | null): string {
  return stack
    ? `launch executions: not asked (stack ${stack.name} has no LaunchStateMachineArn output)`
    : 'launch executions: not asked (set LAUNCHER_STATE_MACHINE_ARN or --stage)';
}

/** The report for a person: a few lines, the problems last. */
export function formatStatus(report: StatusReport): string {
  const { pool, launcher, runs } = report;
  const heartbeat =
    launcher.lastHeartbeat === null
      ? 'never (is the poll function deployed and its schedule enabled?)'
      : `${launcher.lastHeartbeat} (${launcher.secondsAgo} s ago)`;
  const counts = Object.entries(runs.counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([state, n]) => `${state} ${n}`)
    .join(', ');
  const lines = [
    ...(report.stack ? stackLines(report.stack) : []),
    `work pool ${pool.name}: ${pool.status ?? 'unknown'}${pool.paused ? ', paused' : ''}${pool.concurrencyLimit === null ? '' : `, concurrency limit ${pool.concurrencyLimit}`}`,
    `launcher ${launcher.name}: ${launcher.status ?? 'not seen'}, last heartbeat ${heartbeat}`,
    `queues: ${report.queues.map((q) => `${q.name}${q.paused ? ' (paused)' : ''}`).join(', ') || 'none'}`,
    `runs expected in the last ${report.window.sinceMinutes} min or later: ${report.window.runs}${report.window.truncated ? ` (the newest ${STATUS_RUN_LIMIT})` : ''}${counts ? ` (${counts})` : ''}`,
    ...(report.executions
      ? [
          `launch executions: ${report.executions.running} running, ${report.executions.failed.length} failed in the window`,
        ]
      : [executionsNotAsked(report.stack)]),
    ...section('waiting for their second', runs.waitingForTheirSecond),
    ...section('launching', runs.launching),
    ...section('running', runs.running),
    ...section('cancelling', runs.cancelling),
    ...section('crashed', runs.crashed),
    ...(report.executions?.failed.length
      ? [
          'failed launch executions:',
          ...report.executions.failed.map((e) => `  ${e.name} stopped ${e.stopDate ?? '?'}`),
        ]
      : []),
  ];
  return `${lines.join('\n')}\n`;
}
