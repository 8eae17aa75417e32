import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ECSClient, Task } from '@aws-sdk/client-ecs';
import { describeTasks, listTaskArns } from '../../src/aws/ecs';
import { connectPrefect } from '../../src/cli/connect';
import { main as cli } from '../../src/cli/main';
import { parseInfrastructurePid } from '../../src/launch/reconcile';
import type { PrefectClient } from '../../src/prefect/client';
import type { FlowRun, StateType } from '../../src/prefect/types';
import { taskGroupFor } from '../../src/render/render-job';
import type { JsonObject } from '../../src/render/types';

/**
 * The acceptance scenarios: four flow runs of one `ecs` pool served by a deployed launcher, each followed
 * through Prefect to its final state, then a look at ECS for any of their tasks still running. The same
 * code runs against a real account (test/acceptance/main.ts deploys a stage) and against the local stack
 * (`npm start`'s launcher, test/integration/acceptance.test.ts), so CI keeps it working.
 */

/** Where the scenarios run: a Prefect API with a launcher serving `pool`, and the ECS cluster it uses. */
export interface AcceptanceTarget {
  prefect: PrefectClient;
  pool: string;
  ecs: ECSClient;
  cluster: string;
  /** Longest wait for one run to reach its final state (a poll period, the image pull, the flow). */
  runTimeoutMs: number;
  /** Longest wait, once every run is final, for their tasks to be STOPPED. */
  stopTimeoutMs: number;
  /** Interval between two reads of a run or the cluster. */
  pollMs: number;
  print(line: string): void;
}

export interface ScenarioResult {
  name: string;
  expected: string;
  got: string;
  /** The final state's message, or what was found. */
  detail: string;
  seconds: number;
  problems: string[];
  flowRunId?: string;
  deploymentId?: string;
}

const root = path.resolve(__dirname, '..', '..');
const FINAL: readonly StateType[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED'];
/** An image reference no registry serves. */
export const UNPULLABLE_IMAGE = 'prefecthq/prefect:does-not-exist';
/** What Prefect's ECS worker guide's flow (examples/flows/my_flow.py) logs. */
const SAMPLE_LOG = 'Hello from ECS!!';

/** A flow file the flow container writes into its working directory before loading the flow. */
interface FlowSource {
  file: string;
  entrypoint: string;
  source: string;
}

const SAMPLE: FlowSource = {
  file: 'my_flow.py',
  entrypoint: 'my_flow.py:my_flow',
  source: readFileSync(path.join(root, 'examples', 'flows', 'my_flow.py'), 'utf8'),
};
/** Logs a line, then sleeps for ten minutes: long enough to be cancelled while it runs. */
const SLEEPER: FlowSource = {
  file: 'sleeps.py',
  entrypoint: 'sleeps.py:sleeps',
  source: readFileSync(path.join(root, 'test', 'fixtures', 'flows', 'sleeps.py'), 'utf8'),
};

/**
 * The deployment's pull step: the container has no checkout, so the engine writes the flow's file into its
 * working directory with the image's own Python before it imports the entrypoint. It needs no repository or
 * bucket the account would have to provide, and runs the same in a local task.
 */
function writeFlowStep(flow: FlowSource): JsonObject {
  const b64 = Buffer.from(flow.source).toString('base64');
  return {
    'prefect.deployments.steps.run_shell_script': {
      script: `python -c "import base64, pathlib; pathlib.Path('${flow.file}').write_bytes(base64.b64decode('${b64}'))"`,
      stream_output: false,
    },
  };
}

interface Scenario {
  name: string;
  key: string;
  flow: FlowSource;
  jobVariables: JsonObject;
  expected: StateType;
  /** What the user does to the run once it exists (the cancel); returns what went wrong. */
  act?(target: AcceptanceTarget, run: FlowRun): Promise<string[]>;
  /** A line the flow logs. */
  log?: string;
  /** Problems with the final run and its task (when it has one). */
  check(run: FlowRun, task: Task | undefined): string[];
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'sample flow on Fargate',
    key: 'fargate',
    flow: SAMPLE,
    jobVariables: {},
    expected: 'COMPLETED',
    log: SAMPLE_LOG,
    check: (_run, task) =>
      taskProblems(
        task,
        (t) => t.launchType === 'FARGATE' && !t.capacityProviderName?.endsWith('SPOT'),
        'launch type FARGATE',
      ),
  },
  {
    name: 'sample flow on Fargate Spot',
    key: 'spot',
    flow: SAMPLE,
    jobVariables: { launch_type: 'FARGATE_SPOT' },
    expected: 'COMPLETED',
    log: SAMPLE_LOG,
    check: (_run, task) =>
      taskProblems(task, (t) => t.capacityProviderName === 'FARGATE_SPOT', 'capacity provider FARGATE_SPOT'),
  },
  {
    name: 'image that cannot be pulled',
    key: 'unpullable',
    flow: SAMPLE,
    jobVariables: { image: UNPULLABLE_IMAGE },
    expected: 'CRASHED',
    check: (run) => {
      const message = run.state?.message ?? '';
      return /CannotPullContainerError/.test(message) && message.includes(UNPULLABLE_IMAGE)
        ? []
        : [`the message does not name CannotPullContainerError and ${UNPULLABLE_IMAGE}`];
    },
  },
  {
    name: 'run cancelled while running',
    key: 'cancel',
    flow: SLEEPER,
    jobVariables: {},
    expected: 'CANCELLED',
    // What the UI's Cancel button does, once the flow runs.
    act: async (target, run) => {
      const running = await waitForRun(target, run.id, (r) => r.state_type === 'RUNNING' || isFinal(r));
      if (running.state_type !== 'RUNNING') return [`never Running (${running.state_type}) to be cancelled`];
      const result = await target.prefect.setFlowRunState(run.id, { type: 'CANCELLING', name: 'Cancelling' });
      return result.status === 'ACCEPT' ? [] : [`Prefect did not accept Cancelling: ${result.status}`];
    },
    // Its task is the one that was stopped; whether it is STOPPED yet is the last check's to say.
    check: (_run, task) => (task ? [] : [NO_TASK]),
  },
];

const NO_TASK = "no ECS task found through the run's infrastructure_pid";

function taskProblems(task: Task | undefined, ok: (task: Task) => boolean, what: string): string[] {
  if (!task) return [NO_TASK];
  if (ok(task)) return [];
  const shown = `launch type ${task.launchType ?? '-'}, capacity provider ${task.capacityProviderName ?? '-'}, ${task.lastStatus}`;
  return [`its ECS task is not ${what} (${shown})`];
}

function isFinal(run: FlowRun): boolean {
  return FINAL.includes(run.state_type as StateType);
}

async function waitForRun(
  target: AcceptanceTarget,
  id: string,
  done: (run: FlowRun) => boolean,
): Promise<FlowRun> {
  const deadline = Date.now() + target.runTimeoutMs;
  for (;;) {
    const run = await target.prefect.readFlowRun(id);
    if (done(run) || Date.now() >= deadline) return run;
    await sleep(target.pollMs);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Whether the run's log has the line, read until it has or `stopTimeoutMs` passed: the engine sends its last
 * batch of log lines as its process exits, which may be after Prefect shows the run final.
 */
async function logged(target: AcceptanceTarget, id: string, line: string): Promise<boolean> {
  const deadline = Date.now() + target.stopTimeoutMs;
  for (;;) {
    const logs = await target.prefect.readLogs({ logs: { flow_run_id: { any_: [id] } } });
    if (logs.some((l) => l.message === line)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(target.pollMs);
  }
}

/** The run's task, through the infrastructure_pid the report function set on its first ECS event. */
async function taskOf(target: AcceptanceTarget, run: FlowRun): Promise<Task | undefined> {
  const pid = parseInfrastructurePid(run.infrastructure_pid);
  if (!pid) return undefined;
  const found = (await describeTasks(target.ecs, pid.cluster, [pid.taskArn])).get(pid.taskArn);
  return found === 'MISSING' ? undefined : found;
}

async function runScenario(
  target: AcceptanceTarget,
  scenario: Scenario,
  arranged: { deploymentId: string; run: FlowRun },
): Promise<ScenarioResult> {
  const started = Date.now();
  const result: ScenarioResult = {
    name: scenario.name,
    expected: scenario.expected,
    got: '-',
    detail: '',
    seconds: 0,
    problems: [],
    flowRunId: arranged.run.id,
    deploymentId: arranged.deploymentId,
  };
  try {
    result.problems.push(...((await scenario.act?.(target, arranged.run)) ?? []));
    const run = await waitForRun(target, arranged.run.id, isFinal);
    result.got = run.state_type ?? '-';
    result.detail = run.state?.message ?? '';
    if (!isFinal(run)) {
      result.problems.push(`not final after ${Math.round(target.runTimeoutMs / 1000)} s`);
    } else if (run.state_type !== scenario.expected) {
      result.problems.push(`ended ${run.state_type}, not ${scenario.expected}`);
    }
    result.problems.push(...scenario.check(run, await taskOf(target, run)));
    if (scenario.log && !(await logged(target, run.id, scenario.log))) {
      result.problems.push(`the flow's log has no line ${JSON.stringify(scenario.log)}`);
    }
  } catch (err) {
    result.problems.push(`failed: ${(err as Error).message}`);
  }
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

/**
 * Whether any task of the runs is still running: every task the cluster lists as desired RUNNING, and every
 * task the runs name, must be in none of the runs' task groups and STOPPED. Waits up to `stopTimeoutMs`,
 * as a stopping Fargate task takes a while to get there.
 */
async function leftRunning(target: AcceptanceTarget, results: ScenarioResult[]): Promise<ScenarioResult> {
  const started = Date.now();
  const ids = results.flatMap((r) => (r.flowRunId ? [r.flowRunId] : []));
  const groups = new Set(ids.map(taskGroupFor));
  const result: ScenarioResult = {
    name: 'no task left running',
    expected: 'all STOPPED',
    got: '-',
    detail: '',
    seconds: 0,
    problems: [],
  };
  try {
    const deadline = Date.now() + target.stopTimeoutMs;
    for (;;) {
      const runs = await Promise.all(ids.map((id) => target.prefect.readFlowRun(id)));
      const named = runs.flatMap((r) => {
        const pid = parseInfrastructurePid(r.infrastructure_pid);
        return pid ? [pid.taskArn] : [];
      });
      const listed = await listTaskArns(target.ecs, target.cluster, 'RUNNING');
      const tasks = await describeTasks(target.ecs, target.cluster, [...new Set([...listed, ...named])]);
      const live = [...tasks.values()].filter(
        (t): t is Task =>
          t !== 'MISSING' &&
          groups.has(t.group ?? '') &&
          (t.lastStatus !== 'STOPPED' || t.desiredStatus !== 'STOPPED'),
      );
      const counted = [...tasks.values()].filter((t) => t !== 'MISSING' && groups.has(t.group ?? '')).length;
      result.got = `${counted - live.length} of ${counted} STOPPED`;
      if (live.length === 0 || Date.now() >= deadline) {
        result.problems.push(...live.map((t) => `${t.taskArn} (${t.group}) is ${t.lastStatus}`));
        break;
      }
      await sleep(target.pollMs);
    }
  } catch (err) {
    result.problems.push(`failed: ${(err as Error).message}`);
  }
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

/**
 * Deploys one flow per scenario to the target's pool and starts one run of each (writes one at a time), then
 * follows the runs concurrently, then checks that none of their tasks is left running. Prints the table and
 * returns every row; a row with problems is a failure.
 */
export async function runAcceptance(target: AcceptanceTarget): Promise<ScenarioResult[]> {
  const arranged: { deploymentId: string; run: FlowRun }[] = [];
  for (const scenario of SCENARIOS) {
    const flow = await target.prefect.createFlow(`acceptance-${scenario.flow.entrypoint.split(':')[1]}`);
    const deployment = await target.prefect.createDeployment({
      name: `${target.pool}-${scenario.key}`,
      flow_id: flow.id,
      work_pool_name: target.pool,
      entrypoint: scenario.flow.entrypoint,
      pull_steps: [writeFlowStep(scenario.flow)],
      job_variables: scenario.jobVariables,
      enforce_parameter_schema: false,
    });
    const run = await target.prefect.createFlowRunFromDeployment(deployment.id);
    target.print(`  ${scenario.name}: flow run ${run.name} (${run.id})`);
    arranged.push({ deploymentId: deployment.id, run });
  }
  const results = await Promise.all(
    SCENARIOS.map((scenario, i) => runScenario(target, scenario, arranged[i] as (typeof arranged)[number])),
  );
  results.push(await leftRunning(target, results));
  target.print(formatTable(results));
  return results;
}

/** One row per scenario: its name, the expected and actual outcome, PASS or FAIL, the time, and why. */
export function formatTable(results: readonly ScenarioResult[]): string {
  const rows = results.map((r) => [
    r.name,
    r.expected,
    r.got,
    r.problems.length ? 'FAIL' : 'PASS',
    `${r.seconds.toFixed(0)} s`,
    [...r.problems, r.detail].filter(Boolean).join('; '),
  ]);
  const header = ['scenario', 'expected', 'got', 'result', 'time', 'problems; message'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  const failed = results.filter((r) => r.problems.length).length;
  return [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    failed ? `${failed} of ${results.length} checks failed` : `all ${results.length} checks passed`,
  ].join('\n');
}

/**
 * Creates the `ecs` pool with prefect-ecs-launcher's CLI, as a user does (docs/deploy.md step 1), or
 * brings an existing one's base job template up to date. `env` holds the Prefect settings the CLI reads.
 */
export async function registerPool(
  pool: string,
  env: Record<string, string | undefined>,
  print: (line: string) => void,
): Promise<'create' | 'update'> {
  const { prefect } = await connectPrefect(env);
  const action = (await prefect.readWorkPool(pool)) ? 'update' : 'create';
  const out = { write: (text: string) => print(`  ${text.trimEnd()}`) };
  const status = await cli(['pool', action, pool], { stdout: out, stderr: out, env, cwd: root });
  if (status !== 0) throw new Error(`prefect-ecs-launcher pool ${action} ${pool} exited with ${status}`);
  return action;
}
