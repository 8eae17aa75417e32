import { randomBytes } from 'node:crypto';
import { createCluster, createEcsClient, describeTasks } from '../aws/ecs';
import { parseInfrastructurePid } from '../launch/reconcile';
import { type FaultProxy, type ProxyRecord, startProxy } from '../local/proxy';
import { arrangePool, benchPrefect, readRuns, readStateHistories, scheduleRuns } from './arrange';
import { BENCH_AWS, type RunningSide, type Side, type SideUsage } from './side';
import {
  flowRunIdOfRunTask,
  isWebSocketRoute,
  type LatenessSummary,
  summarizeLateness,
  tally,
  templateRoute,
} from './stats';

export interface ScenarioSettings {
  runs: number;
  /** The runs are due evenly over this many seconds. */
  windowSeconds: number;
  pollSeconds: number;
  lookaheadSeconds: number;
  /**
   * Seconds allowed for creating the runs before the first becomes visible to a poll (its scheduled time
   * minus the look-ahead); by default 3 s plus 8 ms per run.
   */
  leadSeconds?: number;
}

export interface CallCounts {
  total: number;
  perRun: number;
  /** By `METHOD /route` (Prefect) or action (AWS), names templated. */
  by: Record<string, number>;
  /** Answers with an error status or none (e.g. the SQLite server's 503s, retried by the clients). */
  errors: Record<string, number>;
}

export interface ScenarioResult {
  side: string;
  runs: number;
  windowSeconds: number;
  /** From the first run's scheduled time to the last RunTask call. */
  allLaunchedSeconds: number;
  /** The last RunTask call after the last run's scheduled time (negative: before it). */
  lastBehindSeconds: number;
  lateness: LatenessSummary;
  prefect: CallCounts;
  aws: CallCounts;
  /** WebSocket handshakes (the worker's channel and events stream), which the counting proxy cannot carry. */
  websocketAttempts: number;
  /** Prefect state transitions per run, and each run's sequence of states. */
  transitions: { perRun: number; sequences: Record<string, number> };
  /** Step Functions state transitions per run (the launcher's executions; 0 for the worker). */
  stepFunctionsTransitionsPerRun: number;
  /** The launcher's invocations and transitions (src/bench/bill.ts); absent for the worker. */
  usage?: SideUsage;
  problems: string[];
  /** What the side told of its own work (the launcher's poll outcomes). */
  facts: Record<string, number>;
  /** Wall-clock seconds the scenario took, setup and checks included. */
  elapsedSeconds: number;
}

interface Stack {
  prefectApiUrl: string;
  motoUrl: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One side launching `runs` scheduled runs of a fresh pool: counting proxies in front of Prefect and moto,
 * the side started and seen polling, the runs created (due from `leadSeconds` + look-ahead on, over `windowSeconds`),
 * then everything waited for until each run's RunTask reached moto. Calls are counted from the moment the
 * first run became visible to a poll (its scheduled time minus the look-ahead) to a few seconds after the
 * last launch. Fails when the side launched fewer runs than scheduled, or a launched run's task is not in
 * moto, or a run did not end up Pending with its task as infrastructure pid.
 */
export async function runScenario(
  stack: Stack,
  side: Side,
  settings: ScenarioSettings,
  log: (line: string) => void,
): Promise<ScenarioResult> {
  const began = Date.now();
  const { runs } = settings;
  const suffix = randomBytes(3).toString('hex');
  const pool = `bench-${side.name}-${runs}-${suffix}`;
  const cluster = pool;
  const prefect = benchPrefect(stack.prefectApiUrl);
  const ecs = createEcsClient({ ...BENCH_AWS, endpoint: stack.motoUrl });
  await createCluster(ecs, cluster);
  const { flowId } = await arrangePool(prefect, pool);

  const counted = await startCountedSide(stack, side, { pool, cluster, ...settings }, log);
  const { prefectProxy, awsProxy } = counted;
  let running: RunningSide | undefined = counted.running;
  try {
    const lead = settings.leadSeconds ?? 3 + runs * 0.008;
    // A side with a start lead claims that much further ahead.
    const ahead = settings.lookaheadSeconds + (side.startLeadSeconds ?? 0);
    const first = new Date(Math.ceil((Date.now() + (lead + ahead) * 1000) / 1000) * 1000);
    const planned = await scheduleRuns(
      prefect,
      { pool, cluster, flowId },
      first,
      runs,
      settings.windowSeconds,
    );
    const created = Date.now();
    // Nothing may be visible to a poll before every run exists.
    const visible = first.getTime() - ahead * 1000;
    if (created > visible) {
      throw new Error(
        `creating ${runs} runs took until ${((created - visible) / 1000).toFixed(1)} s after the first became visible to a poll; raise --lead (${lead.toFixed(1)} s)`,
      );
    }
    const ids = planned.map((r) => r.id);
    const scheduled = new Map(planned.map((r) => [r.id, r.scheduled]));
    const last = Math.max(...scheduled.values());
    log(`  ${side.name}: ${runs} runs due from ${first.toISOString()} over ${settings.windowSeconds} s`);

    // The first successful RunTask of each run, read from the records as they come.
    const at = new Map<string, number>();
    let seen = 0;
    const launched = () => {
      const records = awsProxy.records();
      for (; seen < records.length; seen++) {
        const r = records[seen] as ProxyRecord;
        if (r.action !== 'RunTask') continue;
        // Not answered yet: look again next time.
        if (r.durationMs === undefined) break;
        if (r.status !== 200 || !r.body) continue;
        const id = flowRunIdOfRunTask(r.body);
        if (id && scheduled.has(id) && !at.has(id)) at.set(id, r.time);
      }
      return at.size;
    };
    const deadline = last - Date.now() + 180_000 + runs * 200;
    await waitFor(
      running,
      () => launched() >= runs,
      deadline,
      () =>
        `${side.name} launched ${launched()} of ${runs} runs within ${Math.round(deadline / 1000)} s after they were created`,
    );
    // Calls that follow a launch (the worker's infrastructure pid, the launcher's report) belong to it.
    await sleep(3_000);
    const countTo = Date.now();
    const problems = running.problems();
    const facts = running.facts();
    await running.stop();
    // Read after stop: the last executions have ended and counted their transitions.
    const usage = running.usage?.();
    running = undefined;

    const lateness = ids.map((id) => ((at.get(id) as number) - (scheduled.get(id) as number)) / 1000);
    const lastLaunch = Math.max(...at.values());
    const countFrom = first.getTime() - ahead * 1000;
    const names = { pool };
    const prefectRecords = prefectProxy
      .records()
      .filter((r) => r.time >= countFrom && r.time <= countTo)
      .map((r) => ({ ...r, route: templateRoute(r.route, names) }));
    const websocket = prefectRecords.filter((r) => isWebSocketRoute(r.route));
    const http = prefectRecords.filter((r) => !isWebSocketRoute(r.route));
    const awsRecords = awsProxy
      .records()
      .filter((r) => r.time >= countFrom && r.time <= countTo)
      .map((r) => ({ ...r, route: r.action ?? r.route }));

    const histories = await readStateHistories(prefect, ids);
    const sequences = [...histories.values()].map((states) =>
      states.map((s) => s.name ?? s.type).join(' > '),
    );
    const transitions = [...histories.values()].reduce((sum, states) => sum + states.length - 1, 0) / runs;
    await verifyLaunched(prefect, ecs, cluster, ids, histories);

    return {
      side: side.name,
      runs,
      windowSeconds: settings.windowSeconds,
      allLaunchedSeconds: (lastLaunch - first.getTime()) / 1000,
      lastBehindSeconds: (lastLaunch - last) / 1000,
      lateness: summarizeLateness(lateness),
      prefect: counts(http, runs),
      aws: counts(awsRecords, runs),
      websocketAttempts: websocket.length,
      transitions: { perRun: transitions, sequences: tally(sequences) },
      stepFunctionsTransitionsPerRun: (usage?.transitions ?? 0) / runs,
      ...(usage ? { usage } : {}),
      problems,
      facts,
      elapsedSeconds: (Date.now() - began) / 1000,
    };
  } finally {
    await running?.stop();
    await prefectProxy.close();
    await awsProxy.close();
  }
}

/**
 * Counting proxies in front of Prefect and moto, and the side started behind them on `target.pool`, once it
 * has polled the pool. On failure nothing of it is left running. The caller stops the side and closes the
 * proxies.
 */
export async function startCountedSide(
  stack: Stack,
  side: Side,
  target: { pool: string; cluster: string; pollSeconds: number; lookaheadSeconds: number },
  log: (line: string) => void,
): Promise<{ running: RunningSide; prefectProxy: FaultProxy; awsProxy: FaultProxy }> {
  const prefectProxy = await startProxy(stack.prefectApiUrl);
  const awsProxy = await startProxy(stack.motoUrl, { recordBodies: true });
  let running: RunningSide | undefined;
  try {
    running = await side.start({
      pool: target.pool,
      cluster: target.cluster,
      prefectApiUrl: prefectProxy.url,
      awsEndpoint: awsProxy.url,
      motoUrl: stack.motoUrl,
      pollSeconds: target.pollSeconds,
      lookaheadSeconds: target.lookaheadSeconds,
      log,
    });
    const polled = (r: ProxyRecord) =>
      r.route === `POST /work_pools/${target.pool}/get_scheduled_flow_runs` && r.status === 200;
    await waitFor(
      running,
      () => prefectProxy.records().some(polled),
      120_000,
      `${side.name} never polled ${target.pool}`,
    );
    return { running, prefectProxy, awsProxy };
  } catch (error) {
    await running?.stop();
    await prefectProxy.close();
    await awsProxy.close();
    throw error;
  }
}

function counts(records: { route: string; status: number | null }[], runs: number): CallCounts {
  return {
    total: records.length,
    perRun: records.length / runs,
    by: tally(records.map((r) => r.route)),
    errors: tally(
      records.filter((r) => r.status === null || r.status >= 400).map((r) => `${r.route} ${r.status}`),
    ),
  };
}

/** Polls `done` every 250 ms; throws when the side fails or `timeoutMs` passes. */
export async function waitFor(
  side: RunningSide,
  done: () => boolean,
  timeoutMs: number,
  timeoutMessage: string | (() => string),
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done()) {
    const failure = side.failure();
    if (failure) throw new Error(failure);
    if (Date.now() > until) {
      throw new Error(typeof timeoutMessage === 'string' ? timeoutMessage : timeoutMessage());
    }
    await sleep(250);
  }
}

/**
 * Every run left Scheduled for Pending and names its task as infrastructure pid, and every such task exists
 * in moto's cluster: a launch the proxy saw really happened, for both sides alike.
 */
async function verifyLaunched(
  prefect: ReturnType<typeof benchPrefect>,
  ecs: ReturnType<typeof createEcsClient>,
  cluster: string,
  ids: readonly string[],
  histories: Map<string, { type: string }[]>,
): Promise<void> {
  const notPending = ids.filter((id) => histories.get(id)?.at(-1)?.type !== 'PENDING');
  if (notPending.length) {
    throw new Error(
      `${notPending.length} of ${ids.length} runs are not Pending after launch, e.g. ${notPending[0]}`,
    );
  }
  const runs = await readRuns(prefect, ids);
  const arns = runs.map((r) => parseInfrastructurePid(r.infrastructure_pid)?.taskArn);
  const missingPid = arns.filter((arn) => !arn).length;
  if (missingPid || runs.length !== ids.length) {
    throw new Error(
      `${missingPid + ids.length - runs.length} of ${ids.length} runs have no infrastructure pid`,
    );
  }
  const tasks = await describeTasks(ecs, cluster, arns as string[]);
  const missing = (arns as string[]).filter((arn) => {
    const task = tasks.get(arn);
    return !task || task === 'MISSING';
  });
  if (missing.length) {
    throw new Error(`${missing.length} of ${ids.length} launched tasks are not in moto's cluster ${cluster}`);
  }
}
