import {
  DEFAULT_SHARED_POOL,
  failures,
  type PhaseResult,
  type SharedPoolOptions,
  type SharedPoolResult,
  sharedPool,
  sharedPoolTable,
} from '../../src/bench/shared-pool';
import { LOAD_TEST_PREFECT_ENV, type RunningStack, startLocalStack } from '../../src/local/stack';

/**
 * The migration of docs/deploy.md, small: prefect-aws's real ECS worker and two overlapping launcher pollers
 * serve one pool (20 runs), then the launcher stops polling part-way through 10 more runs (due over 20 s)
 * and the worker alone goes on. Every run gets exactly one ECS task, whichever side claimed it, and ends
 * final. Then, with the worker's claims held on their way to the server, its late claims launch ended runs
 * again, and the report function stops each such task before its flow starts.
 * `npm run test:migration` runs the same scenario with 200 runs on PostgreSQL.
 */

jest.setTimeout(240_000);

/**
 * Runs the scenario with these options, prints its table and, when it failed, its progress and the states of
 * the runs that went wrong, to tell what happened; returns the result and its failures.
 */
async function runScenario(
  stack: RunningStack,
  options: Partial<SharedPoolOptions>,
): Promise<{ result: SharedPoolResult; failed: string[] }> {
  const lines: string[] = [];
  const result = await sharedPool(stack, { ...DEFAULT_SHARED_POOL, ...options }, (line) => lines.push(line));
  process.stdout.write(`${sharedPoolTable(result)}\n`);
  const failed = failures(result);
  if (failed.length)
    process.stdout.write(`${[...lines, ...result.phases.flatMap((p) => p.problems)].join('\n')}\n`);
  return { result, failed };
}

describe('shared pool: the worker and the launcher, then the worker alone', () => {
  let stack: RunningStack | undefined;
  beforeAll(async () => {
    // Its own servers: the scenario holds moto's tasks RUNNING (a moto-wide setting) and loads the server.
    stack = await startLocalStack({ env: LOAD_TEST_PREFECT_ENV });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('20 runs shared, 10 more while the launcher drains: one ECS task per run, every run final', async () => {
    const { result, failed } = await runScenario(stack as RunningStack, {
      runs: 20,
      windowSeconds: 5,
      reverseRuns: 10,
      reverseWindowSeconds: 20,
      // Scaled from the defaults as in `npm run test:migration`: the launcher's look-ahead exceeds its poll
      // interval plus the worker's by 10 s.
      lookaheadSeconds: 20,
      workerLookaheadSeconds: 5,
      // A few seconds before each flow starts, as on ECS: a worker claim that lags its read by more than a
      // run's whole life launches the run again (Prefect's, not the launcher's; docs/deploy.md), and a
      // loaded CI machine must not make that the test's subject.
      provisionSeconds: 3,
      flowSeconds: 1,
      finalWithinSeconds: 90,
    });
    expect(failed).toEqual([]);
    for (const phase of result.phases) {
      expect(phase.tasksPerRun).toEqual({ '0': 0, '1': phase.runs, '2+': 0 });
      expect(phase.tasksBy.launcher + phase.tasksBy.worker).toBe(phase.runs);
      expect(phase.ranTwice).toBe(0);
      expect(phase.notFinal).toBe(0);
    }
    expect(result.phases.map((p) => p.phase)).toEqual(['shared', 'reverse']);
    // The launcher stopped polling with runs it had not claimed yet: the worker took them.
    const reverse = result.phases[1] as PhaseResult;
    expect(reverse.tasksBy.launcher).toBeGreaterThan(0);
    expect(reverse.tasksBy.worker).toBeGreaterThan(0);
    expect(result.launcher.problems).toEqual([]);
  });

  it("the worker's claims held 15 s: each late claim's relaunch is stopped before its flow starts", async () => {
    const { result, failed } = await runScenario(stack as RunningStack, {
      runs: 20,
      windowSeconds: 10,
      reverseRuns: 0,
      // Both read each run while it is Scheduled, and the worker's claim reaches the server after the
      // launcher's task has run the flow (3 s provisioning, 1 s flow): the late claims of docs/deploy.md.
      lookaheadSeconds: 10,
      workerLookaheadSeconds: 10,
      workerClaimDelaySeconds: 15,
      provisionSeconds: 3,
      flowSeconds: 1,
      finalWithinSeconds: 90,
    });
    expect(failed).toEqual([]);
    const [shared] = result.phases as [PhaseResult];
    expect(shared.lateClaimsBy.worker).toBeGreaterThan(0);
    expect(shared.relaunchesStopped).toBe(shared.lateClaimsBy.worker);
    expect(shared).toMatchObject({ launchedTwice: 0, ranTwice: 0, notFinal: 0 });
    expect(result.launcher.outcomes['report: relaunch-stopped']).toBe(shared.relaunchesStopped);
    expect(result.launcher.problems).toEqual([]);
  });
});
