import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LOAD_TEST_PREFECT_ENV, startLocalStack } from '../local/stack';
import { holdMotoTasksRunning } from '../local/task-runner';
import { type Bill, launcherBill, PRICES, workerBill } from './bill';
import { type BundleResult, measureBundles } from './bundles';
import { renderSvg, runNowSpec, scheduledSpec } from './chart';
import { launcherSide } from './launcher-side';
import { type RunNowResult, runNowScenario } from './run-now';
import { runScenario, type ScenarioResult } from './scenario';
import type { Side } from './side';
import { formatTable, percentile, seconds } from './stats';
import { workerSide } from './worker-side';

/**
 * `npm run bench`: the launcher against prefect-aws's resident ECS worker on the local stack (a real Prefect
 * server and moto), N scheduled runs each, one side after the other on fresh pools. Prints the table and
 * writes benchmarks.json and benchmarks.svg (docs/ unless --out). Method and discussion: docs/benchmarks.md.
 */

const root = path.resolve(__dirname, '..', '..');
const USAGE =
  'usage: npm run bench -- [--scenario scheduled|run-now] [--sizes 10,100,1000] [--window S] [--poll S] [--lookahead S] [--lead S] [--prepare-concurrency K] [--start-lead L] [--sides launcher,worker] [--database postgres|sqlite] [--out DIR]';

export interface BenchOptions {
  /**
   * `scheduled`: runs due at set times (benchmarks.json). `run-now`: runs started by hand, creation →
   * RunTask, the launcher with and without run now against the worker (benchmarks-run-now.json).
   */
  scenario: 'scheduled' | 'run-now';
  sizes: number[];
  windowSeconds: number;
  pollSeconds: number;
  lookaheadSeconds: number;
  leadSeconds: number | undefined;
  prepareConcurrency: number;
  /** The launcher's start lead (LAUNCHER_START_LEAD_SECONDS); lateness is still measured against the scheduled time. */
  startLeadSeconds: number;
  sides: string[];
  /** The Prefect server's database: PostgreSQL (production-like, the default) or SQLite in memory. */
  database: 'postgres' | 'sqlite';
  out: string;
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number\n${USAGE}`);
  return value;
}

export function parseBenchArgs(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      sizes: { type: 'string' },
      window: { type: 'string' },
      poll: { type: 'string' },
      lookahead: { type: 'string' },
      lead: { type: 'string' },
      'prepare-concurrency': { type: 'string' },
      'start-lead': { type: 'string' },
      scenario: { type: 'string' },
      sides: { type: 'string' },
      database: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const scenario = values.scenario ?? 'scheduled';
  if (scenario !== 'scheduled' && scenario !== 'run-now') {
    throw new Error(`--scenario must be scheduled or run-now, got ${scenario}\n${USAGE}`);
  }
  const runNow = scenario === 'run-now';
  const sizes = (values.sizes ?? (runNow ? '50' : '10,100,1000'))
    .split(',')
    .map((s) => positive('sizes', s.trim(), 0));
  const sides = (values.sides ?? (runNow ? 'launcher-run-now,launcher,worker' : 'launcher,worker'))
    .split(',')
    .map((s) => s.trim());
  for (const side of sides) {
    if (!['launcher', 'worker', ...(runNow ? ['launcher-run-now'] : [])].includes(side)) {
      throw new Error(`unknown side ${side} for the ${scenario} scenario\n${USAGE}`);
    }
  }
  const database = values.database ?? 'postgres';
  if (database !== 'postgres' && database !== 'sqlite') {
    throw new Error(`--database must be postgres or sqlite, got ${database}\n${USAGE}`);
  }
  return {
    scenario,
    sizes: sizes.map(Math.round),
    windowSeconds: positive('window', values.window, runNow ? 50 : 30),
    pollSeconds: positive('poll', values.poll, 10),
    lookaheadSeconds: positive('lookahead', values.lookahead, 10),
    leadSeconds: values.lead === undefined ? undefined : positive('lead', values.lead, 0),
    prepareConcurrency: Math.round(positive('prepare-concurrency', values['prepare-concurrency'], 32)),
    startLeadSeconds:
      values['start-lead'] === undefined ? 0 : Math.round(positive('start-lead', values['start-lead'], 0)),
    sides,
    database,
    out: path.resolve(values.out ?? path.join(root, 'docs')),
  };
}

export function resultsTable(results: readonly ScenarioResult[]): string {
  const rows = [
    [
      'side',
      'runs',
      'all launched (s)',
      'late p50',
      'p95',
      'max',
      'earliest',
      'early',
      'Prefect/run',
      'AWS/run',
      'states/run',
      'SFN transitions/run',
    ],
    ...results.map((r) => [
      r.side,
      String(r.runs),
      seconds(r.allLaunchedSeconds),
      seconds(r.lateness.p50),
      seconds(r.lateness.p95),
      seconds(r.lateness.max),
      seconds(r.lateness.min),
      `${r.lateness.early}/${r.runs}`,
      r.prefect.perRun.toFixed(1),
      r.aws.perRun.toFixed(1),
      r.transitions.perRun.toFixed(1),
      r.stepFunctionsTransitionsPerRun.toFixed(1),
    ]),
  ];
  return formatTable(rows);
}

/** Each side's estimated bill per N (src/bench/bill.ts); the launcher's from what this N measured. */
export function billOf(result: ScenarioResult, bundles: readonly BundleResult[], pollsPerHour: number): Bill {
  if (!result.usage) return workerBill();
  const { usage } = result;
  const idle = usage.idlePollsMs.length ? percentile(usage.idlePollsMs, 50) : 0;
  return launcherBill({
    runs: result.runs,
    memoryMb: Math.max(...bundles.map((b) => b.memoryMb)),
    busyPolls: usage.busyPolls,
    prepare: usage.prepare,
    report: usage.report,
    transitions: usage.transitions,
    idlePollMs: idle,
    pollsPerHour,
  });
}

export function billTable(results: readonly ScenarioResult[], bills: readonly Bill[]): string {
  const usd = (n: number) => `$${n.toFixed(n < 1 ? 4 : 2)}`;
  return formatTable([
    ['side', 'runs', 'per 1,000 runs', 'per idle month'],
    ...results.map((r, i) => [
      r.side,
      String(r.runs),
      usd(bills[i]?.per1000Runs ?? 0),
      usd(bills[i]?.idleMonth ?? 0),
    ]),
  ]);
}

export function bundlesTable(bundles: readonly BundleResult[]): string {
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  return formatTable([
    ['function', 'zip', 'js', 'cold import (median)'],
    ...bundles.map((b) => [b.handler, kib(b.zipBytes), kib(b.jsBytes), `${b.coldImportMs.toFixed(0)} ms`]),
  ]);
}

export async function bench(options: BenchOptions, print: (line: string) => void): Promise<void> {
  if (options.scenario === 'run-now') return benchRunNow(options, print);
  const started = Date.now();
  const sides: Side[] = options.sides.map((name) =>
    name === 'launcher'
      ? launcherSide({
          prepareConcurrency: options.prepareConcurrency,
          startLeadSeconds: options.startLeadSeconds,
        })
      : workerSide(),
  );
  // Before the servers start, so that the import times are not measured under their load.
  print('packaging and measuring the Lambda functions…');
  const bundles = await measureBundles();

  print(
    `starting a Prefect server on ${options.database === 'postgres' ? 'PostgreSQL' : 'SQLite'} and moto…`,
  );
  const stack = await startLocalStack({
    env: LOAD_TEST_PREFECT_ENV,
    postgres: options.database === 'postgres',
  });
  const results: ScenarioResult[] = [];
  try {
    // moto advances a task one status per DescribeTasks; held RUNNING, no launched task stops during the
    // benchmark, so the launcher's sweep finds nothing to act on, as with healthy tasks on AWS.
    await holdMotoTasksRunning(stack.motoUrl);
    for (const runs of options.sizes) {
      for (const side of sides) {
        print(`${side.name}, ${runs} runs…`);
        const result = await runScenario(
          stack,
          side,
          {
            runs,
            windowSeconds: options.windowSeconds,
            pollSeconds: options.pollSeconds,
            lookaheadSeconds: options.lookaheadSeconds,
            ...(options.leadSeconds === undefined ? {} : { leadSeconds: options.leadSeconds }),
          },
          print,
        );
        results.push(result);
        print(
          `  ${side.name}: all ${runs} launched ${seconds(result.allLaunchedSeconds)} s after the first was due; p95 lateness ${seconds(result.lateness.p95)} s (${result.elapsedSeconds.toFixed(0)} s)`,
        );
      }
    }
  } finally {
    await stack.stop();
  }

  // The deployed schedule polls once a minute (serverless.yml scheduleRate).
  const bills = results.map((r) => billOf(r, bundles, 60));
  const cpus = os.cpus();
  const report = {
    date: new Date().toISOString(),
    machine: {
      nproc: cpus.length,
      cpu: cpus[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      os: `${os.type()} ${os.release()}`,
      node: process.version,
      ...stack.versions,
    },
    settings: {
      ...options,
      out: undefined,
      sides: Object.fromEntries(
        sides.map((s) => [
          s.name,
          s.describe({ pollSeconds: options.pollSeconds, lookaheadSeconds: options.lookaheadSeconds }),
        ]),
      ),
    },
    elapsedSeconds: Math.round((Date.now() - started) / 1000),
    bundles,
    results,
    prices: PRICES,
    bills: results.map((r, i) => ({ side: r.side, runs: r.runs, ...bills[i] })),
  };
  fs.mkdirSync(options.out, { recursive: true });
  fs.writeFileSync(path.join(options.out, 'benchmarks.json'), `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(path.join(options.out, 'benchmarks.svg'), await renderSvg(scheduledSpec(results)));

  print('');
  print(resultsTable(results));
  print('');
  print(bundlesTable(bundles));
  print('');
  print(
    `estimated AWS bill, USD (${PRICES.region} on-demand prices of ${PRICES.readOn}; src/bench/bill.ts):`,
  );
  print(billTable(results, bills));
  for (const r of results.filter((r) => r.problems.length)) {
    print(`\n${r.side}, ${r.runs} runs, went on after: ${r.problems.join('; ')}`);
  }
  print(
    `\n${report.elapsedSeconds} s in all; results in ${path.relative(process.cwd(), options.out) || '.'}/benchmarks.{json,svg}`,
  );
}

export function runNowTable(results: readonly RunNowResult[]): string {
  return formatTable([
    ['side', 'poll (s)', 'runs', 'creation → RunTask p50 (s)', 'p95', 'max', 'RunTask calls per run'],
    ...results.map((r) => [
      r.side,
      String(r.pollSeconds),
      String(r.runs),
      seconds(r.delay.p50),
      seconds(r.delay.p95),
      seconds(r.delay.max),
      Object.entries(r.runTasksPerRun)
        .map(([calls, count]) => `${calls}: ${count}`)
        .join(', '),
    ]),
  ]);
}

/**
 * The run-now scenario (src/bench/run-now.ts) on a server whose automations work: the load-test settings,
 * except that the triggers service, which evaluates automations, runs.
 */
async function benchRunNow(options: BenchOptions, print: (line: string) => void): Promise<void> {
  const started = Date.now();
  print(
    `starting a Prefect server on ${options.database === 'postgres' ? 'PostgreSQL' : 'SQLite'} (automations on) and moto…`,
  );
  const stack = await startLocalStack({
    env: { ...LOAD_TEST_PREFECT_ENV, PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED: 'true' },
    postgres: options.database === 'postgres',
  });
  // The deployed schedule's rate for the launcher; the worker's --poll (its default, 10 s, unless given).
  const pollOf = (side: string) => (side === 'worker' ? options.pollSeconds : LAUNCHER_SCHEDULE_SECONDS);
  const results: RunNowResult[] = [];
  try {
    await holdMotoTasksRunning(stack.motoUrl);
    for (const runs of options.sizes) {
      for (const name of options.sides) {
        const side =
          name === 'worker'
            ? workerSide()
            : launcherSide({
                prepareConcurrency: options.prepareConcurrency,
                startLeadSeconds: 0,
                runNow: name === 'launcher-run-now',
              });
        print(`${side.name}, ${runs} runs started by hand…`);
        const result = await runNowScenario(
          stack,
          side,
          {
            runs,
            windowSeconds: options.windowSeconds,
            pollSeconds: pollOf(name),
            lookaheadSeconds: options.lookaheadSeconds,
          },
          print,
        );
        results.push(result);
        print(
          `  ${side.name}: creation → RunTask p95 ${seconds(result.delay.p95)} s, max ${seconds(result.delay.max)} s (${result.elapsedSeconds.toFixed(0)} s)`,
        );
      }
    }
  } finally {
    await stack.stop();
  }
  const report = {
    date: new Date().toISOString(),
    scenario: 'run-now',
    machine: { nproc: os.cpus().length, node: process.version, ...stack.versions },
    settings: { ...options, out: undefined, launcherPollSeconds: LAUNCHER_SCHEDULE_SECONDS },
    elapsedSeconds: Math.round((Date.now() - started) / 1000),
    results,
  };
  fs.mkdirSync(options.out, { recursive: true });
  fs.writeFileSync(path.join(options.out, 'benchmarks-run-now.json'), `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(path.join(options.out, 'benchmarks-run-now.svg'), await renderSvg(runNowSpec(results)));
  print('');
  print(runNowTable(results));
  for (const r of results.filter((r) => r.problems.length)) {
    print(`\n${r.side}, ${r.runs} runs, went on after: ${r.problems.join('; ')}`);
  }
  print(
    `\n${report.elapsedSeconds} s in all; results in ${path.relative(process.cwd(), options.out) || '.'}/benchmarks-run-now.{json,svg}`,
  );
}

/** serverless.yml's scheduleRate, rate(1 minute): EventBridge's shortest. */
const LAUNCHER_SCHEDULE_SECONDS = 60;

async function main(): Promise<void> {
  // The launcher's JSON log lines and EMF metrics would drown the output; errors still show.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  // The pinned AWS SDK works on Node 20; its notice concerns SDK releases after January 2027.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let code = 0;
  try {
    await bench(parseBenchArgs(process.argv.slice(2)), (line) => process.stdout.write(`${line}\n`));
  } catch (err) {
    process.stderr.write(`npm run bench: ${(err as Error).message}\n`);
    code = 1;
  }
  process.exit(code);
}

if (require.main === module) void main();
