import { DescribeTasksCommand, ECSClient, ListTasksCommand, type Task } from '@aws-sdk/client-ecs';
import { SFNClient } from '@aws-sdk/client-sfn';
import { listExecutions } from '../../src/aws/sfn';
import { LOAD_TEST_PREFECT_ENV, type RunningStack, startLocalStack } from '../../src/local/stack';
import { awsTestConfig, prefectRaw } from '../harness/env';
import { awsFaults, prefectFaults } from '../harness/reliability/faults';
import { add, FINAL, type FlowRunView, runsOf, sleep, World } from '../harness/reliability/world';

/**
 * The launcher under faults: hundreds of scheduled runs launched by several overlapping pollers while the
 * proxies in front of Prefect and moto fail, throttle, reset, hang and slow down requests, ECS cannot place
 * tasks, ECS events are lost, duplicated and reordered, polls and prepares die mid-way, and a user cancels
 * runs. Then the faults stop, and a bounded number of further polls must leave every run in a definite
 * state. Judged from Prefect's and moto's state: no run has more than one ECS task, no run is left Pending
 * or Running, every Crashed run says why, and no run ends otherwise than its flow did. docs/reliability.md
 * explains each fault and records the figures.
 */

const RUNS = Number(process.env.RELIABILITY_RUNS ?? 500);
const POLLERS = 8;
/** A new seed each time, so that every run of `npm test` tries other interleavings; printed, to replay one. */
const SEED = Number(process.env.RELIABILITY_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Polls (of each poller) allowed after the faults stop until every run is final. */
const CLEAN_POLLS = 15;
/** Runs not yet final, at most: new ones are created as others end. */
const IN_FLIGHT = 60;
/**
 * Faults stay on until every run is created and every run but the doomed ones is final, at most this long:
 * 7 minutes per 500 runs.
 */
const FAULTS_AT_MOST_MS = 420_000 * Math.max(1, RUNS / 500);
/** The whole test, at most: the faults, then the clean polls and the judgement. */
jest.setTimeout(FAULTS_AT_MOST_MS + 300_000);

type StateView = {
  type: string;
  name: string;
  timestamp: string;
  message: string | null;
  state_details: { scheduled_time?: string | null };
};

const byTime = (a: StateView, b: StateView) => a.timestamp.localeCompare(b.timestamp);

async function tasksOf(ecs: ECSClient, cluster: string): Promise<Task[]> {
  const arns = new Set<string>();
  for (const desiredStatus of ['RUNNING', 'STOPPED'] as const) {
    let nextToken: string | undefined;
    do {
      const page = await ecs.send(new ListTasksCommand({ cluster, desiredStatus, nextToken }));
      for (const arn of page.taskArns ?? []) arns.add(arn);
      nextToken = page.nextToken;
    } while (nextToken);
  }
  const list = [...arns];
  const tasks: Task[] = [];
  for (let i = 0; i < list.length; i += 100) {
    const out = await ecs.send(new DescribeTasksCommand({ cluster, tasks: list.slice(i, i + 100) }));
    tasks.push(...(out.tasks ?? []));
  }
  return tasks;
}

/** What a Crashed run's message says caused it; undefined when it names no cause. */
function crashCause(message: string): string | undefined {
  const launch = /^Failed to submit flow run to infrastructure: ([\w.]+): (.+)$/s.exec(message);
  if (launch) {
    if (/capacity provider error: RESOURCE:MEMORY/.test(message))
      return 'RunTask found no capacity (RESOURCE:MEMORY)';
    if (/^PrefectApiError$/.test(launch[1] ?? '')) {
      const status = /failed: (\d{3})/.exec(message)?.[1] ?? '?';
      return `launch failed: Prefect answered ${status} after the client's retries`;
    }
    return `launch failed: ${launch[1]}`;
  }
  if (/^The following containers stopped with a non-zero exit code: \['prefect'\]/.test(message))
    return 'flow container exited non-zero';
  const sweep = /^prefect-ecs-launcher found (.+?)(?: while|;)/.exec(message);
  if (sweep) return `sweep: ${sweep[1]}`;
  return undefined;
}

/**
 * How a run that went wrong got there, from its state history: the state that followed its flow's own final
 * state. Timestamps are taken when the server receives a proposal, so a proposal that waited for the
 * database lock can carry an earlier one than a state committed before it; a crash message saying what the
 * run "was still" in names the state that really followed.
 */
function wrongTurn(history: StateView[], finalMessage: string): string {
  const sorted = [...history].sort((a, b) => a.timestamp.localeCompare(b.timestamp));
  const still = /while the (?:flow )?run was still (\w+)/.exec(finalMessage)?.[1];
  const culprit = still
    ? sorted.filter((h) => h.name === still).at(-1)
    : sorted.find((h, i) => i > 0 && FINAL.includes(sorted[i - 1]?.type ?? '') && !FINAL.includes(h.type));
  const flow = sorted.filter((h) => h.type === 'COMPLETED' || h.type === 'FAILED').at(-1);
  if (!culprit) return 'no state followed the final one';
  return `${flow?.name ?? '?'} followed by ${culprit.name} (${(culprit.message ?? 'no message').replace(/[0-9a-f-]{36}|pool-[0-9a-f]{8}/g, '…')})`;
}

function table(title: string, counts: Record<string, number>): string {
  const rows = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  return [`${title}:`, ...rows.map(([k, v]) => `  ${String(v).padStart(6)}  ${k}`)].join('\n');
}

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

describe('reliability: the launcher under faults', () => {
  let world: World | undefined;
  let stack: RunningStack | undefined;
  const shared = { prefect: process.env.TEST_PREFECT_API_URL, moto: process.env.TEST_MOTO_URL };
  beforeAll(async () => {
    // Its own Prefect server and moto, sized for load (LOAD_TEST_PREFECT_ENV), so that neither slows the
    // other test files down, nor they it.
    stack = await startLocalStack({ env: LOAD_TEST_PREFECT_ENV });
    process.env.TEST_PREFECT_API_URL = stack.prefectApiUrl;
    process.env.TEST_MOTO_URL = stack.motoUrl;
  }, 120_000);
  afterAll(async () => {
    // Also when the test failed: no poller, execution or user may outlive it.
    await world?.close();
    await stack?.stop();
    process.env.TEST_PREFECT_API_URL = shared.prefect;
    process.env.TEST_MOTO_URL = shared.moto;
  });

  it(`${RUNS} scheduled runs, ${POLLERS} overlapping pollers, every fault (seed ${SEED}): at most one ECS task per run, every run ends in a definite state`, async () => {
    process.stdout.write(`reliability suite: seed ${SEED} (replay with RELIABILITY_SEED=${SEED})\n`);
    const began = Date.now();
    world = await World.create({
      runs: RUNS,
      pollers: POLLERS,
      seed: SEED,
      inFlight: IN_FLIGHT,
    });
    const w = world;
    const arranged = Date.now();
    const verbose = Boolean(process.env.RELIABILITY_VERBOSE);

    // Faults on, until every run is created and every run but the doomed ones is final (or for a bounded time).
    w.start();
    const faultsUntil = Date.now() + FAULTS_AT_MOST_MS;
    for (;;) {
      await sleep(2000);
      const open = w.allArrived ? await w.countOpen(w.doomed.startExecution) : -1;
      if (verbose) {
        process.stdout.write(`${seconds(Date.now() - arranged)} polls ${w.polls.join(',')} open ${open}\n`);
        if (open > 0 && open <= 3) process.stdout.write(`${await w.describeOpen()}\n`);
      }
      if (w.failure) throw w.failure;
      if (open === 0 || Date.now() > faultsUntil) break;
    }
    const faultsEnded = Date.now();

    // Faults off: a bounded number of further polls must end every run.
    w.faults(false);
    w.phase = 'clean';
    const pollsAtClean = [...w.polls];
    const cleanPolls = () => Math.min(...w.polls.map((n, i) => n - (pollsAtClean[i] ?? 0)));
    for (;;) {
      const open = await w.countOpen();
      if (verbose)
        process.stdout.write(
          `${seconds(Date.now() - arranged)} polls ${w.polls.join(',')} open ${open} (no faults)\n`,
        );
      if (open === 0 || cleanPolls() >= CLEAN_POLLS) break;
      await sleep(1000);
    }
    const cleanPollsUsed = Math.max(...w.polls.map((n, i) => n - (pollsAtClean[i] ?? 0)));
    await w.stop();
    const ended = Date.now();

    // ---- Judgement, from Prefect's and moto's state ----
    const motoEcs = new ECSClient(awsTestConfig());
    const runs: FlowRunView[] = await runsOf(w.deploymentId);
    const tasks = await tasksOf(motoEcs, w.cluster);
    const executions = await listExecutions(new SFNClient(awsTestConfig()), w.stateMachineArn);
    const tasksPerRun = new Map<string, number>();
    for (const t of tasks) {
      const id = t.group?.replace('prefect-flow-run:', '') ?? '';
      tasksPerRun.set(id, (tasksPerRun.get(id) ?? 0) + 1);
    }

    const finalStates: Record<string, number> = {};
    const crashCauses: Record<string, number> = {};
    const problems: string[] = [];
    const wentWrong = new Map<string, FlowRunView>();
    for (const run of runs) {
      add(finalStates, run.state_type);
      const tasksOfRun = tasksPerRun.get(run.id) ?? 0;
      if (tasksOfRun > 1) problems.push(`${run.id}: ${tasksOfRun} ECS tasks`);
      if (!FINAL.includes(run.state_type)) problems.push(`${run.id}: stranded ${run.state_name}`);
      const engine = w.containers.engineOf(run.id);
      // A cancel the user asked for may overtake the engine's own end: the user's wish stands.
      if (
        engine?.final?.status === 'ACCEPT' &&
        engine.final.type !== run.state_type &&
        !w.cancelled.has(run.id)
      ) {
        wentWrong.set(run.id, run);
        problems.push(`${run.id}: its flow ended ${engine.final.type}, yet the run ended ${run.state_type}`);
      }
      if (
        (run.state_type === 'COMPLETED' || run.state_type === 'FAILED') &&
        engine?.final?.status !== 'ACCEPT'
      )
        problems.push(`${run.id}: ${run.state_type} without its flow saying so`);
      if (run.state_type === 'CANCELLED' && !w.cancelled.has(run.id))
        problems.push(`${run.id}: Cancelled, but nobody cancelled it`);
      if (run.state_type === 'CRASHED') {
        const cause = crashCause(run.state?.message ?? '');
        if (cause) add(crashCauses, cause);
        else
          problems.push(`${run.id}: Crashed without naming a cause: ${JSON.stringify(run.state?.message)}`);
      }
    }
    // How each run that went wrong got there; two stories of each kind in full.
    const wrongTurns: Record<string, number> = {};
    const stories: string[] = [];
    const told = new Map<string, number>();
    for (const line of problems) {
      const id = line.slice(0, 36);
      const history = await prefectRaw<StateView[]>('GET', `/flow_run_states/?flow_run_id=${id}`);
      const run = wentWrong.get(id);
      if (run) add(wrongTurns, wrongTurn(history, run.state?.message ?? ''));
      const kind = line.slice(38).replace(/[0-9a-f-]{36}/g, '');
      if ((told.get(kind) ?? 0) < 2) {
        told.set(kind, (told.get(kind) ?? 0) + 1);
        const states = [...history].sort((a, b) => a.timestamp.localeCompare(b.timestamp));
        stories.push(
          [line, ...states.map((h) => `    ${h.timestamp} ${h.name}: ${h.message ?? ''}`)].join('\n'),
        );
      }
    }
    // Runs a late proposal moved back from their end, whose end the launcher then put back.
    let restored = 0;
    for (let i = 0; i < runs.length; i += 25) {
      const histories = await Promise.all(
        runs
          .slice(i, i + 25)
          .map((run) => prefectRaw<StateView[]>('GET', `/flow_run_states/?flow_run_id=${run.id}`)),
      );
      for (const history of histories) {
        // After the claim from Scheduled: a late claim (one without the scheduled time the server copies
        // from Scheduled) and the run's end twice (the flow's, and the restored copy).
        const late = (h: StateView) => h.name === 'Pending' && !h.state_details.scheduled_time;
        const claimedAt =
          history
            .filter((h) => h.name === 'Pending' && !late(h))
            .sort(byTime)
            .at(-1)?.timestamp ?? '';
        const since = history.filter((h) => h.timestamp > claimedAt);
        if (history.some(late) && since.filter((h) => FINAL.includes(h.type)).length >= 2) restored += 1;
      }
    }
    const duplicateTasks = [...tasksPerRun.values()].filter((n) => n > 1).length;
    const stranded = runs.filter((r) => !FINAL.includes(r.state_type)).length;

    const pollOutcomes: Record<string, number> = {};
    for (const s of w.summaries) {
      for (const [k, v] of Object.entries(s.outcomes)) add(pollOutcomes, `claim: ${k}`, v);
      for (const [k, v] of Object.entries(s.reconciled ?? {}))
        if (k !== 'runs') add(pollOutcomes, `sweep: ${k}`, v);
    }
    const injected: Record<string, number> = {};
    for (const [k, v] of Object.entries(w.prefectProxy.counts().faults)) add(injected, k, v);
    for (const [k, v] of Object.entries(w.awsProxy.counts().faults)) add(injected, k, v);
    add(injected, 'ECS event lost', w.bus.counts.lost);
    add(injected, 'ECS event duplicated', w.bus.counts.duplicated);
    add(injected, 'ECS event delayed', w.bus.counts.delayed);
    add(injected, 'ECS event delivered after a later one', w.bus.counts.reordered);
    for (const [k, v] of Object.entries(w.kills)) add(injected, k, v);
    for (const [name, fn] of Object.entries(w.functions))
      add(injected, `${name} Lambda timed out (or killed)`, fn.timedOut);
    add(injected, 'run cancelled by the user', w.cancelled.size);

    const totalPolls = w.polls.reduce((a, b) => a + b, 0);
    process.stdout.write(
      [
        '',
        `reliability figures (seed ${SEED}):`,
        `  runs ${runs.length}, pollers ${POLLERS}, polls ${totalPolls} (${w.summaries.length} finished; ${cleanPollsUsed} per poller after the faults stopped, at most ${CLEAN_POLLS} allowed)`,
        `  ECS tasks ${tasks.length}, runs with more than one task ${duplicateTasks}, runs not in a final state ${stranded}, launch executions ${executions.length}`,
        `  runs whose flow ended otherwise ${wentWrong.size}`,
        `  runs a late claim moved back from their end, and whose end the launcher restored: ${restored}`,
        `  requests through the proxies: Prefect ${w.prefectProxy.counts().requests}, AWS ${w.awsProxy.counts().requests}`,
        `  ECS events sent ${w.bus.counts.sent}, delivered ${w.bus.counts.delivered}; report invocations that failed and were retried ${w.bus.counts.reportErrors}, events dropped after three failures ${w.bus.counts.reportGaveUp}`,
        `  tasks started ${w.containers.counts.runTasks}, of which stopped from outside (a cancel, or an aborted execution) ${w.containers.counts.stoppedByLauncher}`,
        `  time: arrange ${seconds(arranged - began)}, with faults ${seconds(faultsEnded - arranged)}, without ${seconds(ended - faultsEnded)}, total ${seconds(Date.now() - began)}`,
        table('faults injected', injected),
        table('final states', finalStates),
        table('crash causes', crashCauses),
        table('poll outcomes (finished polls)', pollOutcomes),
        ...(problems.length
          ? [table('runs whose flow ended otherwise, by what followed', wrongTurns), ...stories]
          : []),
        '',
      ].join('\n'),
    );

    expect(runs).toHaveLength(RUNS);
    expect(duplicateTasks).toBe(0);
    expect(stranded).toBe(0);
    expect(new Set(executions.map((e) => e.name)).size).toBe(executions.length);
    expect(problems).toEqual([]);
    // Every kind of fault was injected.
    const kinds = [
      ...[...prefectFaults(), ...awsFaults(w.doomed)].map((rule) => rule.name ?? ''),
      'ECS event lost',
      'ECS event duplicated',
      'ECS event delivered after a later one',
      'poll killed after a claim',
      'prepare killed mid-way (Lambda timed out)',
      'run cancelled by the user',
    ];
    expect(kinds.filter((kind) => !((injected[kind] ?? 0) > 0))).toEqual([]);
  });
});
