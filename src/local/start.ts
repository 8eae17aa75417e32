import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createCluster } from '../aws/ecs';
import { createStateMachine } from '../aws/sfn';
import { ConfigError } from '../errors';
import { runNowServer, runPoll } from '../launch/entrypoints';
import { applyRunNowAutomation, removeRunNowAutomation } from '../launch/run-now-automation';
import type { PrefectClient } from '../prefect/client';
import type { FlowRun, StateType, WorkPool } from '../prefect/types';
import defaultBaseJobTemplate from '../render/default-base-job-template.json';
import type { JsonObject } from '../render/types';
import { createRuntime, type Runtime } from '../runtime';
import { loadLaunchDefinition, localFunctionArns } from './definition';
import { LocalExecutor } from './executor';
import type { ExecutionResult } from './launch-machine';
import { invoked, localLaunchMachine } from './launcher';
import { divertLauncherOutput } from './launcher-output';
import { startRunNowListener } from './run-now-listener';
import { startLocalMoto, startLocalStack } from './stack';
import { holdMotoTasksRunning, LocalTaskRunner } from './task-runner';

/**
 * `npm start`: the launcher's whole launch path on this machine with no AWS account. A real Prefect server
 * (with its UI) and moto; an `ecs` work pool with the default base job template; the sample flow deployed
 * and run once; then the poll on a timer, the deployed state machine executed locally, and each ECS task
 * moto starts run as a local process (`LocalTaskRunner`).
 */

export interface StartOptions {
  /** A Prefect API to use instead of starting a server (moto is still started). */
  apiUrl?: string;
  pool: string;
  /** Deploy and run the sample flow. */
  sample: boolean;
  /** Exit once the sample run is final: 0 when Completed, else 1. */
  once: boolean;
  /** Keep the local server's PREFECT_HOME under .local/ across restarts. */
  keep: boolean;
  /**
   * Set up the run-now automation: by default on the embedded server only, since another server may not
   * reach this machine's loopback (`--run-now` asks for it with --api-url too).
   */
  runNow: boolean;
  /** Where the launcher's log lines and EMF metrics go (the terminal shows the run summary). */
  log: string;
  /**
   * The virtualenv whose `prefect` runs each flow in its local task; by default the project's. Another one
   * matches flows to an older server (`npm run test:servers`), as a user's flow images match theirs.
   */
  flowVenv?: string;
}

const root = path.resolve(__dirname, '..', '..');
const POLL_SECONDS = 5;
const LOOKAHEAD_SECONDS = 10;
const FINAL: readonly StateType[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED'];
const USAGE =
  'usage: npm start -- [--api-url URL] [--pool NAME] [--no-sample] [--once] [--keep] [--run-now | --no-run-now] [--log FILE] [--flow-venv DIR]';
const DEFAULT_LOG = path.join('.local', 'launcher.log');

export function parseStartArgs(argv: string[]): StartOptions {
  let values: ReturnType<typeof parse>['values'];
  try {
    ({ values } = parse(argv));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n${USAGE}`);
  }
  const options: StartOptions = {
    pool: values.pool ?? 'local-ecs',
    sample: !values['no-sample'],
    once: Boolean(values.once),
    keep: Boolean(values.keep),
    runNow: Boolean(values['run-now']) || (!values['no-run-now'] && !values['api-url']),
    log: values.log ?? DEFAULT_LOG,
    ...(values['flow-venv'] ? { flowVenv: path.resolve(values['flow-venv']) } : {}),
    ...(values['api-url'] ? { apiUrl: values['api-url'] } : {}),
  };
  if (options.once && !options.sample) throw new ConfigError(`--once waits for the sample run\n${USAGE}`);
  if (values['run-now'] && values['no-run-now']) {
    throw new ConfigError(`--run-now and --no-run-now contradict each other\n${USAGE}`);
  }
  if (options.keep && options.apiUrl) {
    throw new ConfigError(
      `--keep keeps the local Prefect server's state; with --api-url there is none\n${USAGE}`,
    );
  }
  return options;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    options: {
      'api-url': { type: 'string' },
      pool: { type: 'string' },
      'no-sample': { type: 'boolean' },
      once: { type: 'boolean' },
      keep: { type: 'boolean' },
      'run-now': { type: 'boolean' },
      'no-run-now': { type: 'boolean' },
      log: { type: 'string' },
      'flow-venv': { type: 'string' },
    },
  });
}

/**
 * Runs until SIGINT/SIGTERM (then 0), or with `once` until the sample run is final. Everything it started
 * is stopped before it returns: task processes first (SIGTERM, as ECS StopTask), then the servers.
 */
export async function startLocal(options: StartOptions, print: (line: string) => void): Promise<number> {
  const cleanup: (() => Promise<void>)[] = [];
  let stopping = false;
  let onSignal!: () => void;
  const signalled = new Promise<number>((resolve) => {
    onSignal = () => {
      if (!stopping) print('stopping…');
      stopping = true;
      resolve(0);
    };
  });
  // Handled until everything is stopped: a Ctrl-C arrives twice under npm (from the terminal and
  // forwarded by npm), and a second one must not kill the process before its tasks and servers.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await Promise.race([run(options, print, cleanup), signalled]);
  } finally {
    for (const step of cleanup.reverse()) {
      await step().catch((err: unknown) => print(`while stopping: ${(err as Error).message}`));
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function run(
  options: StartOptions,
  print: (line: string) => void,
  cleanup: (() => Promise<void>)[],
): Promise<number> {
  print(`starting ${options.apiUrl ? 'moto' : 'a Prefect server and moto'} on this machine…`);
  let apiUrl: string;
  let motoUrl: string;
  if (options.apiUrl) {
    const moto = await startLocalMoto();
    cleanup.push(moto.stop);
    ({ motoUrl } = moto);
    apiUrl = options.apiUrl;
    print(`  Prefect API  ${apiUrl}`);
  } else {
    const home = options.keep ? path.join(root, '.local', 'prefect') : undefined;
    const stack = await startLocalStack({ ui: true, ...(home ? { home } : {}) });
    cleanup.push(stack.stop);
    ({ motoUrl, prefectApiUrl: apiUrl } = stack);
    print(`  Prefect UI   ${apiUrl.replace(/\/api$/, '')}${home ? `  (state kept in ${home})` : ''}`);
    // What a second terminal's PREFECT_API_URL must be for .venv/bin/prefect to reach this server.
    print(`  Prefect API  ${apiUrl}`);
  }

  const rt = await launcherRuntime(apiUrl, motoUrl, options.pool);
  print(`  moto         ${motoUrl}  (ECS cluster "default", the launch state machine)`);
  const pool = await rt.prefect.createWorkPool({
    name: options.pool,
    type: 'ecs',
    base_job_template: defaultBaseJobTemplate as unknown as JsonObject,
  });
  if (pool.type !== 'ecs') {
    throw new ConfigError(`work pool ${pool.name} is of type ${pool.type}; pick an ecs pool with --pool`);
  }
  print(`  work pool    ${pool.name} (ecs)`);
  print(`  launcher log ${options.log}  (its JSON log lines and EMF metrics)`);

  const binDir = path.join(options.flowVenv ?? path.join(root, '.venv'), 'bin');
  if (!fs.existsSync(path.join(binDir, 'prefect'))) {
    throw new ConfigError(`--flow-venv ${options.flowVenv}: there is no ${path.join(binDir, 'prefect')}`);
  }
  const runner = new LocalTaskRunner(rt.aws.ecs, { binDir, print });
  const executor = new LocalExecutor(
    rt.aws.sfn,
    rt.config.stateMachineArn as string,
    localLaunchMachine(rt, { ecs: runner.api() }),
  );
  const watcher = new RunWatcher(rt.prefect, pool.name, print);
  await watcher.look(false);

  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  cleanup.push(async () => {
    closed = true;
    clearTimeout(timer);
    await runner.stopAll();
    // Their tasks have stopped, so the executions end as on AWS (a run not yet started is Crashed).
    await executor.stop(3_000);
  });

  if (options.runNow) {
    const url = await startRunNow(rt, pool, executor, cleanup, print);
    print(`  run now      ${url}: Prefect's automation calls it when a run is started by hand`);
  }

  const sample = options.sample ? await triggerSample(rt.prefect, pool.name) : undefined;
  if (sample) print(`  sample       deployment my-flow/${pool.name}, run ${sample.name} triggered`);
  print(`  polling every ${POLL_SECONDS} s, ${LOOKAHEAD_SECONDS} s ahead; Ctrl-C stops everything`);

  return new Promise<number>((resolve, reject) => {
    let lastPoll = 0;
    const tick = async () => {
      if (closed) return;
      if (Date.now() - lastPoll >= POLL_SECONDS * 1000) {
        lastPoll = Date.now();
        try {
          await invoked(rt, () => runPoll(rt, { aws: (base) => executor.reconcileAws(base) }));
          await executor.pickUp();
        } catch (err) {
          print(`poll failed: ${(err as Error).message}`);
        }
      }
      const runs = await watcher.look(true).catch((err: unknown) => {
        print(`cannot read flow runs: ${(err as Error).message}`);
        return [];
      });
      const done =
        sample && runs.find((r) => r.id === sample.id && r.state_type && FINAL.includes(r.state_type));
      if (options.once && done) {
        const execution = await waitForExecution(executor, done.id);
        print(`  launch       ${done.name}: execution ${execution?.status ?? 'still running'}`);
        resolve(done.state_type === 'COMPLETED' ? 0 : 1);
        return;
      }
      if (!closed) timer = setTimeout(() => tick().catch(reject), 1000);
    };
    tick().catch(reject);
  });
}

/**
 * Run now on the local stack: the entry point's loopback stand-in with a fresh token, and the pool's
 * automation on the local server pointing at it (removed again on the way out).
 */
async function startRunNow(
  rt: Runtime,
  pool: WorkPool,
  executor: LocalExecutor,
  cleanup: (() => Promise<void>)[],
  print: (line: string) => void,
): Promise<string> {
  const token = randomBytes(32).toString('hex');
  const serve = runNowServer({
    token: async () => token,
    runtime: async () => rt,
    telemetry: rt.telemetry,
    afterClaim: () => executor.pickUp(),
  });
  const listener = await startRunNowListener(
    (request) => invoked(rt, () => serve(request)),
    (error) => print(`run now failed: ${error.message}`),
  );
  cleanup.push(listener.stop);
  await applyRunNowAutomation(rt.prefect, pool, { url: listener.url, token });
  cleanup.push(async () => {
    await removeRunNowAutomation(rt.prefect, pool.name);
  });
  return listener.url;
}

/** The launcher's runtime as the Lambdas build it, pointed at moto, with the launch state machine in moto. */
async function launcherRuntime(apiUrl: string, motoUrl: string, pool: string): Promise<Runtime> {
  // moto maps non-numeric access keys to its one account (../shared/reference/test-infra.md §1.1).
  const aws = {
    endpoint: motoUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  };
  const rt = await createRuntime(
    {
      PREFECT_API_URL: apiUrl,
      // Someone else's Prefect may need its credential; the local server has none.
      PREFECT_API_KEY: process.env.PREFECT_API_KEY,
      PREFECT_API_AUTH_STRING: process.env.PREFECT_API_AUTH_STRING,
      LAUNCHER_WORK_POOL: pool,
      LAUNCHER_POLL_INTERVAL_SECONDS: String(POLL_SECONDS),
      LAUNCHER_LOOKAHEAD_SECONDS: String(LOOKAHEAD_SECONDS),
      // Cancellation and the sweep can be tuned as in a deployment.
      LAUNCHER_CANCEL_GRACE_SECONDS: process.env.LAUNCHER_CANCEL_GRACE_SECONDS,
      LAUNCHER_SWEEP_SETTLE_SECONDS: process.env.LAUNCHER_SWEEP_SETTLE_SECONDS,
    },
    aws,
  );
  await holdMotoTasksRunning(motoUrl);
  // ECS's own default for jobs that name no cluster; every AWS account has it.
  await createCluster(rt.aws.ecs, 'default');
  const stateMachineArn = await createStateMachine(
    rt.aws.sfn,
    'prefect-ecs-launcher-launch',
    loadLaunchDefinition(localFunctionArns()),
    'arn:aws:iam::123456789012:role/prefect-ecs-launcher-states',
  );
  return { ...rt, config: { ...rt.config, stateMachineArn } };
}

/**
 * Prefect's ECS worker guide's flow (examples/flows/my_flow.py), deployed so that `prefect flow-run execute`
 * copies its code from this checkout (a `path` and no pull steps), and one run of it for now. The
 * deployment is named after the pool, so samples of different pools on one server stay apart.
 */
async function triggerSample(prefect: PrefectClient, pool: string): Promise<FlowRun> {
  const flow = await prefect.createFlow('my-flow');
  const deployment = await prefect.createDeployment({
    name: pool,
    flow_id: flow.id,
    work_pool_name: pool,
    path: path.join(root, 'examples', 'flows'),
    entrypoint: 'my_flow.py:my_flow',
    pull_steps: [],
    enforce_parameter_schema: false,
  });
  return prefect.createFlowRunFromDeployment(deployment.id);
}

/** The sample's execution ends shortly after its task stopped; wait for it so nothing is cut off. */
async function waitForExecution(executor: LocalExecutor, name: string): Promise<ExecutionResult | undefined> {
  for (let waited = 0; waited < 15_000 && !executor.results().has(name); waited += 200) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return executor.results().get(name);
}

/** The terminal's live summary: one line per state a flow run of the pool enters. */
class RunWatcher {
  /** Per run: its state when last read, the states printed, and no state older than `since` is printed. */
  private readonly seen = new Map<string, { stateId: string | null; printed: Set<string>; since: number }>();

  constructor(
    private readonly prefect: PrefectClient,
    private readonly pool: string,
    private readonly print: (line: string) => void,
  ) {}

  /** Reads the pool's recent runs and prints their new states; `report: false` only remembers them. */
  async look(report: boolean): Promise<FlowRun[]> {
    const runs = await this.prefect.filterFlowRuns({
      work_pools: { name: { any_: [this.pool] } },
      flow_runs: { expected_start_time: { before_: new Date(Date.now() + 3_600_000).toISOString() } },
      sort: 'EXPECTED_START_TIME_DESC',
      limit: 50,
    });
    for (const run of runs) {
      const seen = this.seen.get(run.id);
      if (seen?.stateId === run.state_id) continue;
      const entry = seen ?? { stateId: null, printed: new Set<string>(), since: 0 };
      entry.stateId = run.state_id;
      this.seen.set(run.id, entry);
      if (!report) {
        // Already there when the launcher started: only what happens from now on is news.
        if (run.state_id) entry.printed.add(run.state_id);
        entry.since = run.state ? Date.parse(run.state.timestamp) : Date.now();
        continue;
      }
      // The run's history, so states that came and went between two looks are shown too.
      for (const state of await this.prefect.readFlowRunStates(run.id)) {
        if (entry.printed.has(state.id) || Date.parse(state.timestamp) < entry.since) continue;
        entry.printed.add(state.id);
        const time = new Date(state.timestamp).toLocaleTimeString('en-GB');
        const failed =
          ['FAILED', 'CRASHED'].includes(state.type) && state.message ? `: ${state.message}` : '';
        this.print(`${time}  ${run.name}  ${state.name ?? state.type}${failed}`);
      }
    }
    return runs;
  }
}

async function main(): Promise<void> {
  // The pinned AWS SDK works on Node 20; its notice concerns SDK releases after January 2027.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let code: number;
  let options: StartOptions;
  try {
    options = parseStartArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`npm start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  // The launcher's log lines and metrics would drown the summary: they go to a file.
  const output = divertLauncherOutput(path.resolve(root, options.log));
  try {
    code = await startLocal(options, output.print);
  } catch (err) {
    process.stderr.write(`npm start: ${(err as Error).message}\n`);
    code = 1;
  }
  await output.close();
  process.exit(code);
}

if (require.main === module) void main();
