import { randomBytes } from 'node:crypto';
import { createCluster, createEcsClient } from '../aws/ecs';
import { arrangePool, benchPrefect, createDeployment, startRunByHand } from './arrange';
import { startCountedSide, waitFor } from './scenario';
import { BENCH_AWS, type RunningSide, type Side } from './side';
import { flowRunIdOfRunTask, type LatenessSummary, summarizeLateness, tally } from './stats';

/**
 * The "run now" scenario: runs started by hand (created Scheduled for now, one at a time over the window,
 * as users click "Run"), and how long each waits from its creation to its RunTask. The launcher with run
 * now is called by the pool's Prefect automation; without it, and the worker, find the run at their next
 * poll. Each side polls at its real rate: the launcher once a minute (EventBridge's shortest schedule,
 * serverless.yml), the worker every 10 s (PREFECT_WORKER_QUERY_SECONDS' default), unless told otherwise.
 */

export interface RunNowSettings {
  runs: number;
  windowSeconds: number;
  pollSeconds: number;
  lookaheadSeconds: number;
}

export interface RunNowResult {
  side: string;
  runs: number;
  pollSeconds: number;
  /** Seconds from each run's creation to its first RunTask. */
  delay: LatenessSummary;
  /** How many RunTask calls each run got: `{ "1": 50 }` when every run was launched once. */
  runTasksPerRun: Record<string, number>;
  problems: string[];
  facts: Record<string, number>;
  elapsedSeconds: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runNowScenario(
  stack: { prefectApiUrl: string; motoUrl: string },
  side: Side,
  settings: RunNowSettings,
  log: (line: string) => void,
): Promise<RunNowResult> {
  const began = Date.now();
  const { runs } = settings;
  const pool = `bench-${side.name}-now-${randomBytes(3).toString('hex')}`;
  const cluster = pool;
  const prefect = benchPrefect(stack.prefectApiUrl);
  await createCluster(createEcsClient({ ...BENCH_AWS, endpoint: stack.motoUrl }), cluster);
  const { flowId } = await arrangePool(prefect, pool);
  const deployment = await createDeployment(prefect, { pool, cluster, flowId });

  const counted = await startCountedSide(stack, side, { pool, cluster, ...settings }, log);
  const { awsProxy } = counted;
  let running: RunningSide | undefined = counted.running;
  try {
    // The first poll has found nothing; the runs start at a random point of the poll interval, as a user's
    // click does.
    await sleep(Math.random() * settings.pollSeconds * 1000);
    log(`  ${side.name}: ${runs} runs started by hand over ${settings.windowSeconds} s`);
    const created = new Map<string, number>();
    const spacing = (settings.windowSeconds * 1000) / runs;
    for (let i = 0; i < runs; i++) {
      const run = await startRunByHand(prefect, deployment.id);
      created.set(run.id, run.at);
      await sleep(spacing);
    }

    const runTasks = (): Map<string, number[]> => {
      const at = new Map<string, number[]>();
      for (const r of awsProxy.records()) {
        if (r.action !== 'RunTask' || r.status !== 200 || !r.body) continue;
        const id = flowRunIdOfRunTask(r.body);
        if (id && created.has(id)) at.set(id, [...(at.get(id) ?? []), r.time]);
      }
      return at;
    };
    const deadline = Date.now() + (settings.pollSeconds * 2 + 60) * 1000;
    await waitFor(
      running,
      () => runTasks().size >= runs,
      deadline - Date.now(),
      () => `${side.name} launched ${runTasks().size} of ${runs} runs started by hand`,
    );
    // Time for a second, wrong launch of any run to show.
    await sleep(3_000);
    const launched = runTasks();
    const problems = running.problems();
    const facts = running.facts();
    await running.stop();
    running = undefined;
    const delays = [...created].map(([id, at]) => ((launched.get(id)?.[0] as number) - at) / 1000);
    return {
      side: side.name,
      runs,
      pollSeconds: settings.pollSeconds,
      delay: summarizeLateness(delays),
      runTasksPerRun: tally([...created.keys()].map((id) => String(launched.get(id)?.length ?? 0))),
      problems,
      facts,
      elapsedSeconds: (Date.now() - began) / 1000,
    };
  } finally {
    await running?.stop();
    await counted.prefectProxy.close();
    await awsProxy.close();
  }
}
