import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { ECSClient } from '@aws-sdk/client-ecs';
import { createCluster, createEcsClient, describeTasks, listTaskArns } from '../aws/ecs';
import { claimMessage } from '../launch/reconcile';
import { RELAUNCH_STOP_REASON } from '../launch/report';
import { type FaultProxy, startProxy } from '../local/proxy';
import { LOAD_TEST_PREFECT_ENV, startLocalStack } from '../local/stack';
import { holdMotoTasksRunning } from '../local/task-runner';
import type { PrefectHttp } from '../prefect/http';
import { isLateClaim } from '../prefect/states';
import type { FlowRun } from '../prefect/types';
import { arrangePool, benchPrefect, readRuns, readStateHistories, scheduleRuns } from './arrange';
import { flowRunIdOfAnyTask, playFlowContainers } from './flow-containers';
import { type SharedLauncher, startSharedLauncher } from './shared-launcher';
import type { RunningSide } from './side';
import { formatTable, tally } from './stats';
import { workerSide } from './worker-side';

/**
 * `npm run test:migration`: the migration docs/deploy.md describes, on the local stack. prefect-aws's real
 * ECS worker and the launcher (two overlapping pollers) serve one pool while its scheduled runs come due;
 * every task either side starts is played by a flow container (src/bench/flow-containers.ts) that runs its
 * flow to Completed. Judged from moto and the Prefect server: how many ECS tasks each run got, which side
 * claimed it, and whether it ended in a final state. Then the reverse migration: more runs come due, the
 * launcher stops polling part-way (its executions finish, or are stopped as removing the stack stops them)
 * and the worker alone goes on.
 */

export const FINAL = ['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED'];

export interface SharedPoolOptions {
  runs: number;
  windowSeconds: number;
  /** Runs of the reverse migration (0: none), due over `reverseWindowSeconds`. */
  reverseRuns: number;
  reverseWindowSeconds: number;
  /**
   * How the launcher stops in the reverse migration: `drain` stops its polls and lets its executions finish
   * (the procedure docs/deploy.md gives); `abort` also stops every execution, as deleting its stack does, then
   * puts the runs that leaves stranded back to Scheduled, as the recovery there does.
   */
  reverse: 'drain' | 'abort';
  pollers: number;
  /** Both sides' poll interval (the launcher's schedule, the worker's PREFECT_WORKER_QUERY_SECONDS). */
  pollSeconds: number;
  /** The launcher's LAUNCHER_LOOKAHEAD_SECONDS. */
  lookaheadSeconds: number;
  /** The worker's PREFECT_WORKER_PREFETCH_SECONDS. */
  workerLookaheadSeconds: number;
  /**
   * Holds each claim of the worker's this long on its way to the server (a proxy in front of its Prefect API),
   * as a loaded worker or server does: a claim that lags its read past the run's launch and end by the
   * launcher is the late claim that launches the run again, which the report function then stops.
   */
  workerClaimDelaySeconds: number;
  /** The launcher's LAUNCHER_SWEEP_SETTLE_SECONDS. */
  settleSeconds: number;
  /** From a task's start to its engine's Running proposal (on Fargate, image pull and ENI: 30 s and more). */
  provisionSeconds: number;
  /** How long each flow runs. */
  flowSeconds: number;
  /** Seconds after the last run's time by which every run must be final. */
  finalWithinSeconds: number;
}

export const DEFAULT_SHARED_POOL: SharedPoolOptions = {
  runs: 200,
  windowSeconds: 60,
  reverseRuns: 50,
  reverseWindowSeconds: 30,
  reverse: 'drain',
  pollers: 2,
  pollSeconds: 5,
  // As the defaults are: the launcher's look-ahead (90 s) exceeds its poll interval (60 s) plus the worker's
  // (PREFECT_WORKER_PREFETCH_SECONDS, 10 s) by 20 s, so that each run scheduled ahead of time is claimed by
  // a poll of the launcher before the worker can read it (docs/deploy.md). Here 5 + 10 + 20.
  lookaheadSeconds: 35,
  workerLookaheadSeconds: 10,
  workerClaimDelaySeconds: 0,
  settleSeconds: 30,
  provisionSeconds: 0,
  flowSeconds: 2,
  finalWithinSeconds: 180,
};

export interface PhaseResult {
  phase: 'shared' | 'reverse';
  runs: number;
  /** Runs by how many ECS tasks they got: "0", "1", "2+". */
  tasksPerRun: Record<string, number>;
  /** Tasks by the side that started them (the launcher's carry its task group). */
  tasksBy: Record<'launcher' | 'worker', number>;
  /** Of the worker's tasks, those the report function stopped as relaunches of an ended run. */
  relaunchesStopped: number;
  /** Runs with more than one task besides those relaunches: a run launched twice. */
  launchedTwice: number;
  /** Accepted claims from Scheduled by side, from the runs' state histories. */
  claimsBy: Record<'launcher' | 'worker', number>;
  /**
   * Claims the server accepted over a run's final state (a poll that read the run Scheduled, overtaken by its
   * launch and end), by side: the launcher restores the end and launches nothing; the worker launches again.
   */
  lateClaimsBy: Record<'launcher' | 'worker', number>;
  /** Runs whose flow started more than once: more than one Running state in their history. */
  ranTwice: number;
  notFinal: number;
  finalStates: Record<string, number>;
  /** From the first run's scheduled time until every run was final (or the deadline). */
  seconds: number;
  /** Runs not final, and runs with more than one task, a few of each with their states. */
  problems: string[];
  /** Reverse migration: executions running when the launcher stopped polling, and those stopped. */
  executionsAtStop?: number;
  executionsAborted?: number;
  /** Abort: runs left Pending with the launcher's claim, put back to Scheduled as docs/deploy.md says. */
  released?: number;
}

export interface SharedPoolResult {
  date: string;
  /** Prefect, prefect-aws, moto, Python and the server's database, as the local stack reports them. */
  versions: Record<string, string | null>;
  options: SharedPoolOptions;
  phases: PhaseResult[];
  launcher: { polls: number; overlapping: number; outcomes: Record<string, number>; problems: string[] };
  worker: { problems: string[] };
  containers: Record<string, number>;
  /** The first errors the flow containers met (a proposal or StopTask that failed). */
  containerErrors: string[];
  elapsedSeconds: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Stack {
  prefectApiUrl: string;
  motoUrl: string;
  versions?: Record<string, string | null>;
}

export async function sharedPool(
  stack: Stack,
  options: SharedPoolOptions,
  log: (line: string) => void,
): Promise<SharedPoolResult> {
  const began = Date.now();
  const pool = `migration-${randomBytes(3).toString('hex')}`;
  const cluster = pool;
  const prefect = benchPrefect(stack.prefectApiUrl);
  const ecs = createEcsClient({ endpoint: stack.motoUrl, region: 'us-east-1', credentials: BENCH_KEYS });
  await createCluster(ecs, cluster);
  const { flowId } = await arrangePool(prefect, pool);
  // moto advances a task one status per DescribeTasks unless held; held, a task lives until it is stopped.
  await holdMotoTasksRunning(stack.motoUrl);

  const containerErrors: string[] = [];
  const containers = playFlowContainers({
    ecs,
    prefect,
    cluster,
    provisionMs: options.provisionSeconds * 1000,
    runMs: options.flowSeconds * 1000,
    onError: (error) => containerErrors.push((error as Error).message),
  });
  let worker: RunningSide | undefined;
  let launcher: SharedLauncher | undefined;
  let workerProxy: FaultProxy | undefined;
  const phases: PhaseResult[] = [];
  try {
    launcher = await startSharedLauncher({
      pool,
      cluster,
      prefectApiUrl: stack.prefectApiUrl,
      motoUrl: stack.motoUrl,
      pollers: options.pollers,
      pollSeconds: options.pollSeconds,
      lookaheadSeconds: options.lookaheadSeconds,
      settleSeconds: options.settleSeconds,
    });
    if (options.workerClaimDelaySeconds > 0) {
      workerProxy = await startProxy(stack.prefectApiUrl, {
        rules: [
          {
            name: 'claim held',
            method: 'POST',
            path: '/flow_runs/{id}/set_state',
            body: isClaim,
            fault: { kind: 'delay', ms: options.workerClaimDelaySeconds * 1000 },
          },
        ],
      });
    }
    worker = await workerSide().start({
      pool,
      cluster,
      prefectApiUrl: workerProxy?.url ?? stack.prefectApiUrl,
      awsEndpoint: stack.motoUrl,
      motoUrl: stack.motoUrl,
      pollSeconds: options.pollSeconds,
      lookaheadSeconds: options.workerLookaheadSeconds,
      log,
    });
    await waitForWorkers(prefect, pool, [launcher.workerName, `bench ${pool}`], worker);
    log(`  the worker and ${options.pollers} launcher pollers are online on pool ${pool}`);

    const judge = judgeWith(prefect, ecs, cluster, launcher.workerName);
    const shared = await dueRuns(
      prefect,
      { pool, cluster, flowId },
      options.runs,
      options.windowSeconds,
      options,
    );
    log(
      `  ${options.runs} runs due from ${new Date(shared.first).toISOString()} over ${options.windowSeconds} s`,
    );
    const sharedEnd = await waitFinal(
      prefect,
      shared.ids,
      shared.last + options.finalWithinSeconds * 1000,
      worker,
    );
    phases.push({
      phase: 'shared',
      ...(await judge(shared.ids)),
      seconds: (sharedEnd - shared.first) / 1000,
    });
    log(`  shared pool: ${summaryLine(phases[0] as PhaseResult)}`);

    if (options.reverseRuns > 0) {
      const { data: reverseFlow } = await prefect.request<{ id: string }>('POST', '/flows/', {
        body: { name: 'migration-reverse-flow' },
      });
      const reverse = await dueRuns(
        prefect,
        { pool, cluster, flowId: reverseFlow.id },
        options.reverseRuns,
        options.reverseWindowSeconds,
        options,
      );
      log(
        `  reverse migration: ${options.reverseRuns} runs due from ${new Date(reverse.first).toISOString()} over ${options.reverseWindowSeconds} s; the launcher stops (${options.reverse}) once its look-ahead reaches ${Math.round(options.reverseWindowSeconds * 0.4)} s in`,
      );
      // Its last poll (within a poll interval before this) has claimed the runs due in the first 40% of the
      // window, and at most a poll interval more; the worker takes the rest.
      const stopAt =
        reverse.first +
        (options.reverseWindowSeconds * 0.4 - options.lookaheadSeconds + options.pollSeconds) * 1000;
      await sleep(Math.max(0, stopAt - Date.now()));
      await launcher.stopPolling();
      const executionsAtStop = (await launcher.runningExecutions()).length;
      const executionsAborted = options.reverse === 'abort' ? await launcher.abortExecutions() : 0;
      let released: number | undefined;
      if (options.reverse === 'abort') {
        // The stack is gone: nothing of the launcher runs any more, and what it had claimed is stranded.
        await launcher.stop(0);
        released = await releaseStranded(prefect, reverse.ids, launcher.workerName);
        log(
          `  reverse migration: ${released} runs stranded Pending by the stopped executions, put back to Scheduled`,
        );
      }
      const reverseEnd = await waitFinal(
        prefect,
        reverse.ids,
        reverse.last + options.finalWithinSeconds * 1000,
        worker,
      );
      phases.push({
        phase: 'reverse',
        ...(await judge(reverse.ids)),
        seconds: (reverseEnd - reverse.first) / 1000,
        executionsAtStop,
        executionsAborted,
        ...(released === undefined ? {} : { released }),
      });
      log(`  reverse migration: ${summaryLine(phases[1] as PhaseResult)}`);
    }
  } finally {
    await launcher?.stop();
    await worker?.stop();
    await workerProxy?.close();
    await containers.stop();
  }
  return {
    date: new Date(began).toISOString(),
    versions: stack.versions ?? {},
    options,
    phases,
    launcher: {
      ...(launcher?.facts() ?? { polls: 0, overlapping: 0, outcomes: {} }),
      problems: launcher?.problems() ?? [],
    },
    worker: { problems: worker?.problems() ?? [] },
    containers: { ...containers.counts },
    containerErrors: containerErrors.slice(0, 5),
    elapsedSeconds: (Date.now() - began) / 1000,
  };
}

/** A claim, as the worker proposes it: PENDING named "Pending" (its "Submitting" that follows is not held). */
function isClaim(body: string): boolean {
  try {
    const state = (JSON.parse(body) as { state?: { type?: string; name?: string } }).state;
    return state?.type === 'PENDING' && state.name === 'Pending';
  } catch {
    return false;
  }
}

const BENCH_KEYS = { accessKeyId: 'bench', secretAccessKey: 'bench' };

/** Until the pool's worker list holds every name given (each side has sent its first heartbeat). */
async function waitForWorkers(
  prefect: PrefectHttp,
  pool: string,
  names: readonly string[],
  worker: RunningSide,
): Promise<void> {
  const until = Date.now() + 120_000;
  for (;;) {
    const { data } = await prefect.request<{ name: string }[]>('POST', `/work_pools/${pool}/workers/filter`, {
      body: {},
    });
    if (names.every((name) => data.some((w) => w.name === name))) return;
    const failure = worker.failure();
    if (failure) throw new Error(failure);
    if (Date.now() > until) {
      throw new Error(
        `not every side came online on ${pool} within 120 s (seen: ${data.map((w) => w.name).join(', ')})`,
      );
    }
    await sleep(500);
  }
}

/**
 * The recovery docs/deploy.md gives after the launcher's stack was removed at once: each run still Pending
 * with the launcher's claim goes back to Scheduled at its time (forced, as the snippet there does), for the
 * worker to launch. Its task, if it had one, was stopped with its execution before the flow started.
 */
async function releaseStranded(
  prefect: PrefectHttp,
  ids: readonly string[],
  launcherName: string,
): Promise<number> {
  let released = 0;
  for (const run of await readRuns(prefect, ids)) {
    if (run.state?.name !== 'Pending' || run.state.message !== claimMessage(launcherName)) continue;
    await prefect.request('POST', `/flow_runs/${run.id}/set_state`, {
      body: {
        state: {
          type: 'SCHEDULED',
          name: 'Scheduled',
          state_details: { scheduled_time: run.expected_start_time },
        },
        force: true,
      },
    });
    released += 1;
  }
  return released;
}

/**
 * `runs` scheduled runs, due over `windowSeconds` from a few seconds past both sides' look-aheads on: each
 * comes into sight of a poll as a run that a deployment's schedule created long before does.
 */
async function dueRuns(
  prefect: PrefectHttp,
  target: { pool: string; cluster: string; flowId: string },
  runs: number,
  windowSeconds: number,
  options: SharedPoolOptions,
): Promise<{ ids: string[]; first: number; last: number }> {
  const lead = 3 + runs * 0.008;
  const sight = Math.max(options.lookaheadSeconds, options.workerLookaheadSeconds);
  const first = new Date(Math.ceil((Date.now() + (lead + sight) * 1000) / 1000) * 1000);
  const planned = await scheduleRuns(prefect, target, first, runs, windowSeconds);
  return {
    ids: planned.map((r) => r.id),
    first: first.getTime(),
    last: Math.max(...planned.map((r) => r.scheduled)),
  };
}

/** Waits until every run is final, or `deadline` (ms) passes; returns when it stopped waiting. */
async function waitFinal(
  prefect: PrefectHttp,
  ids: readonly string[],
  deadline: number,
  worker: RunningSide,
): Promise<number> {
  for (;;) {
    const { data: open } = await prefect.request<number>('POST', '/flow_runs/count', {
      body: { flow_runs: { id: { any_: ids }, state: { type: { not_any_: FINAL } } } },
    });
    const now = Date.now();
    if (open === 0 || now > deadline) return now;
    const failure = worker.failure();
    if (failure) throw new Error(failure);
    await sleep(1000);
  }
}

/** Tasks per run from moto, claims from each run's state history, final states from the server. */
function judgeWith(prefect: PrefectHttp, ecs: ECSClient, cluster: string, launcherName: string) {
  return async (ids: readonly string[]): Promise<Omit<PhaseResult, 'phase' | 'seconds'>> => {
    const arns = [
      ...(await listTaskArns(ecs, cluster, 'RUNNING')),
      ...(await listTaskArns(ecs, cluster, 'STOPPED')),
    ];
    const tasksOf = new Map<string, number>();
    const launchesOf = new Map<string, number>();
    const tasksBy = { launcher: 0, worker: 0 };
    let relaunchesStopped = 0;
    const wanted = new Set(ids);
    for (const task of (await describeTasks(ecs, cluster, arns)).values()) {
      if (task === 'MISSING') continue;
      const id = flowRunIdOfAnyTask(task);
      if (!id || !wanted.has(id)) continue;
      tasksOf.set(id, (tasksOf.get(id) ?? 0) + 1);
      tasksBy[task.group?.startsWith('prefect-flow-run:') ? 'launcher' : 'worker'] += 1;
      if (task.stoppedReason === RELAUNCH_STOP_REASON) relaunchesStopped += 1;
      else launchesOf.set(id, (launchesOf.get(id) ?? 0) + 1);
    }
    const runs: FlowRun[] = await readRuns(prefect, ids);
    const histories = await readStateHistories(prefect, ids);
    const claimsBy = { launcher: 0, worker: 0 };
    const lateClaimsBy = { launcher: 0, worker: 0 };
    for (const states of histories.values()) {
      for (const s of states) {
        // The claim itself; the worker's Submitting that follows it is a Pending state too.
        if (s.type !== 'PENDING' || s.name !== 'Pending') continue;
        const side = s.message === claimMessage(launcherName) ? 'launcher' : 'worker';
        (isLateClaim(s) ? lateClaimsBy : claimsBy)[side] += 1;
      }
    }
    const ranTwice = [...histories.values()].filter(
      (states) => states.filter((s) => s.type === 'RUNNING').length > 1,
    ).length;
    const histogram = { '0': 0, '1': 0, '2+': 0 };
    for (const id of ids) {
      const n = tasksOf.get(id) ?? 0;
      histogram[n === 0 ? '0' : n === 1 ? '1' : '2+'] += 1;
    }
    const notFinal = runs.filter((r) => !FINAL.includes(r.state_type ?? ''));
    const doubled = ids.filter((id) => (tasksOf.get(id) ?? 0) > 1);
    const story = (id: string) => {
      const run = runs.find((r) => r.id === id);
      const states = (histories.get(id) ?? []).map((s) => `${s.name}${s.message ? ` (${s.message})` : ''}`);
      return `${id} ${run?.state_name} with ${tasksOf.get(id) ?? 0} task(s): ${states.join(' > ')}`;
    };
    return {
      runs: ids.length,
      tasksPerRun: histogram,
      tasksBy,
      relaunchesStopped,
      launchedTwice: ids.filter((id) => (launchesOf.get(id) ?? 0) > 1).length,
      claimsBy,
      lateClaimsBy,
      ranTwice,
      notFinal: notFinal.length,
      finalStates: tally(runs.map((r) => r.state_type ?? 'unknown')),
      problems: [
        ...notFinal.slice(0, 5).map((r) => `not final: ${story(r.id)}`),
        ...doubled.slice(0, 5).map((id) => `more than one task: ${story(id)}`),
      ],
    };
  };
}

function summaryLine(p: PhaseResult): string {
  const stop =
    p.executionsAtStop === undefined
      ? ''
      : `, ${p.executionsAtStop} launch executions running when the launcher stopped polling, ${p.executionsAborted} of them stopped${p.released === undefined ? '' : `, ${p.released} runs stranded and put back to Scheduled`}`;
  return `${p.runs} runs, tasks per run ${JSON.stringify(p.tasksPerRun)}, tasks by ${JSON.stringify(p.tasksBy)}, late claims ${JSON.stringify(p.lateClaimsBy)}, relaunches stopped ${p.relaunchesStopped}, flow ran twice ${p.ranTwice}, not final ${p.notFinal}, ${p.seconds.toFixed(0)} s${stop}`;
}

export function sharedPoolTable(result: SharedPoolResult): string {
  return formatTable([
    [
      'phase',
      'runs',
      '0 tasks',
      '1 task',
      '2+ tasks',
      'launcher tasks',
      'worker tasks',
      'claims L/W',
      'late claims L/W',
      'relaunches stopped',
      'flow ran twice',
      'not final',
      'until final (s)',
    ],
    ...result.phases.map((p) => [
      p.phase,
      String(p.runs),
      String(p.tasksPerRun['0']),
      String(p.tasksPerRun['1']),
      String(p.tasksPerRun['2+']),
      String(p.tasksBy.launcher),
      String(p.tasksBy.worker),
      `${p.claimsBy.launcher}/${p.claimsBy.worker}`,
      `${p.lateClaimsBy.launcher}/${p.lateClaimsBy.worker}`,
      String(p.relaunchesStopped),
      String(p.ranTwice),
      String(p.notFinal),
      p.seconds.toFixed(0),
    ]),
  ]);
}

/**
 * What the scenario requires: one launch for every run (a relaunch the report function stopped before its
 * flow began is counted, not failed), every flow started once, every run final. Empty when it passed.
 */
export function failures(result: SharedPoolResult): string[] {
  return result.phases.flatMap((p) => [
    ...(p.launchedTwice ? [`${p.phase}: ${p.launchedTwice} runs launched more than once`] : []),
    ...(p.tasksPerRun['0'] ? [`${p.phase}: ${p.tasksPerRun['0']} runs without an ECS task`] : []),
    ...(p.ranTwice ? [`${p.phase}: ${p.ranTwice} runs whose flow started more than once`] : []),
    ...(p.notFinal ? [`${p.phase}: ${p.notFinal} runs not in a final state`] : []),
  ]);
}

/**
 * Whether every run scheduled ahead is claimed by a poll of the launcher before it comes within the worker's
 * look-ahead: polls `pollSeconds` apart each claim up to `lookaheadSeconds` ahead.
 */
function launcherSeesFirst(options: SharedPoolOptions): boolean {
  return options.lookaheadSeconds > options.pollSeconds + options.workerLookaheadSeconds;
}

const USAGE =
  'usage: npm run test:migration -- [--runs 200] [--window S] [--reverse-runs 50] [--reverse drain|abort] [--lookahead S] [--worker-lookahead S] [--provision S] [--worker-claim-delay S] [--flow S] [--database postgres|sqlite] [--out FILE]';

async function main(): Promise<void> {
  process.env.LAUNCHER_LOG_LEVEL ??= 'error';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      runs: { type: 'string' },
      window: { type: 'string' },
      'reverse-runs': { type: 'string' },
      reverse: { type: 'string' },
      lookahead: { type: 'string' },
      'worker-lookahead': { type: 'string' },
      provision: { type: 'string' },
      'worker-claim-delay': { type: 'string' },
      flow: { type: 'string' },
      database: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const count = (raw: string | undefined, fallback: number) => {
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number, got ${raw}\n${USAGE}`);
    return n;
  };
  const database = values.database ?? 'postgres';
  if (database !== 'postgres' && database !== 'sqlite') throw new Error(USAGE);
  const reverse = values.reverse ?? 'drain';
  if (reverse !== 'drain' && reverse !== 'abort') throw new Error(USAGE);
  const options: SharedPoolOptions = {
    ...DEFAULT_SHARED_POOL,
    runs: count(values.runs, DEFAULT_SHARED_POOL.runs),
    windowSeconds: count(values.window, DEFAULT_SHARED_POOL.windowSeconds),
    reverseRuns: count(values['reverse-runs'], DEFAULT_SHARED_POOL.reverseRuns),
    reverse,
    lookaheadSeconds: count(values.lookahead, DEFAULT_SHARED_POOL.lookaheadSeconds),
    workerLookaheadSeconds: count(values['worker-lookahead'], DEFAULT_SHARED_POOL.workerLookaheadSeconds),
    provisionSeconds: count(values.provision, DEFAULT_SHARED_POOL.provisionSeconds),
    workerClaimDelaySeconds: count(values['worker-claim-delay'], DEFAULT_SHARED_POOL.workerClaimDelaySeconds),
    flowSeconds: count(values.flow, DEFAULT_SHARED_POOL.flowSeconds),
  };
  const print = (line: string) => process.stdout.write(`${line}\n`);
  print(
    `look-ahead: launcher ${options.lookaheadSeconds} s, polling every ${options.pollSeconds} s; worker ${options.workerLookaheadSeconds} s${options.workerClaimDelaySeconds ? `, each of its claims held ${options.workerClaimDelaySeconds} s` : ''}`,
  );
  if (!launcherSeesFirst(options)) {
    print(
      "  the launcher's look-ahead does not exceed its poll interval plus the worker's: both sides can read a run while it is Scheduled, and a claim of the worker's that lags its read can launch a run the launcher already ran (docs/deploy.md)",
    );
  }
  print(`starting a Prefect server on ${database === 'postgres' ? 'PostgreSQL' : 'SQLite'} and moto…`);
  const stack = await startLocalStack({ env: LOAD_TEST_PREFECT_ENV, postgres: database === 'postgres' });
  let result: SharedPoolResult;
  try {
    result = await sharedPool(stack, options, print);
  } finally {
    await stack.stop();
  }
  print('');
  print(
    `${result.date}; ${Object.entries(result.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  print(sharedPoolTable(result));
  for (const p of result.phases) print(`${p.phase}: ${summaryLine(p)}`);
  print(`launcher: ${JSON.stringify(result.launcher)}`);
  print(`worker: ${JSON.stringify(result.worker)}`);
  print(`flow containers: ${JSON.stringify(result.containers)} ${result.containerErrors.join('; ')}`);
  for (const p of result.phases) for (const line of p.problems) print(`${p.phase}: ${line}`);
  if (values.out) {
    fs.writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
  }
  const failed = failures(result);
  print(failed.length ? `FAILED: ${failed.join('; ')}` : `passed in ${result.elapsedSeconds.toFixed(0)} s`);
  process.exit(failed.length ? 1 : 0);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`npm run test:migration: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
