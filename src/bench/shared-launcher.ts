import { describeTask, describeTasks, listTaskArns, runTask, stopTask } from '../aws/ecs';
import {
  createSfnClient,
  createStateMachine,
  executionArnFor,
  listExecutions,
  stopExecution,
} from '../aws/sfn';
import { runCrash, runPoll, runPrepare, runReport } from '../launch/entrypoints';
import { parseCrashEvent, parsePrepareEvent, parseTaskStateChangeEvent } from '../launch/events';
import type { PollSummary } from '../launch/poll';
import { loadLaunchDefinition, localFunctionArns } from '../local/definition';
import { watchOtherTasks, withTaskStateChangeEvents } from '../local/ecs-events';
import { LocalExecutor } from '../local/executor';
import { LocalLaunchMachine } from '../local/launch-machine';
import { createRuntime } from '../runtime';
import { BENCH_AWS } from './side';

/**
 * The launcher as deployed, for the shared-pool scenario: `pollers` poll functions on fixed-rate timers,
 * fired 200 ms apart so that their polls overlap as concurrent invocations of the poll function do, each with its
 * own runtime (a Lambda container of its own); Step Functions played by the local executor, which runs every
 * execution moto records through the deployed definition, with RunTask and DescribeTasks against moto (the
 * flow containers end the tasks, src/bench/flow-containers.ts); and the ECS events of its tasks, and of the
 * worker's tasks in `cluster` (serverless.yml's two report rules), delivered to the report function's code
 * without waiting, as EventBridge invokes it asynchronously.
 */
export interface SharedLauncher {
  workerName: string;
  /** Polls finished, and the most that ran at once. */
  facts(): { polls: number; overlapping: number; outcomes: Record<string, number> };
  problems(): string[];
  /** Names of the executions still running (in moto). */
  runningExecutions(): Promise<string[]>;
  /** Stops the poll schedule and waits for the polls under way: no more claims, nor sweeps. */
  stopPolling(): Promise<void>;
  /** StopExecution on every running execution, as deleting the state machine does at its next transition. */
  abortExecutions(): Promise<number>;
  /** Stops everything that is left, waiting up to `graceMs` for executions. */
  stop(graceMs?: number): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startSharedLauncher(context: {
  pool: string;
  cluster: string;
  prefectApiUrl: string;
  motoUrl: string;
  pollers: number;
  pollSeconds: number;
  lookaheadSeconds: number;
  settleSeconds: number;
}): Promise<SharedLauncher> {
  const aws = { ...BENCH_AWS, endpoint: context.motoUrl };
  const sfn = createSfnClient(aws);
  const stateMachineArn = await createStateMachine(
    sfn,
    `migration-${context.pool}`,
    loadLaunchDefinition(localFunctionArns()),
    'arn:aws:iam::123456789012:role/prefect-ecs-launcher-states',
  );
  const env = {
    PREFECT_API_URL: context.prefectApiUrl,
    LAUNCHER_WORK_POOL: context.pool,
    LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
    LAUNCHER_POLL_INTERVAL_SECONDS: String(context.pollSeconds),
    LAUNCHER_LOOKAHEAD_SECONDS: String(context.lookaheadSeconds),
    LAUNCHER_SWEEP_SETTLE_SECONDS: String(context.settleSeconds),
  };
  const problems: string[] = [];
  const note = (what: string) => (err: unknown) => {
    const line = `${what}: ${(err as Error).message ?? String(err)}`;
    if (!problems.includes(line)) problems.push(line);
  };

  const functions = await createRuntime(env, aws);
  const facts = { polls: 0, overlapping: 0, outcomes: {} as Record<string, number> };
  const reports = new Set<Promise<unknown>>();
  const deliver = async (event: Parameters<typeof parseTaskStateChangeEvent>[0]) => {
    const report = runReport(functions, parseTaskStateChangeEvent(event)).then((action) => {
      if (action !== 'ignored')
        facts.outcomes[`report: ${action}`] = (facts.outcomes[`report: ${action}`] ?? 0) + 1;
    }, note('report'));
    reports.add(report);
    void report.finally(() => reports.delete(report));
  };
  const machine = new LocalLaunchMachine(
    {
      prepare: (input) => runPrepare(functions, parsePrepareEvent(input)),
      crash: (input) => runCrash(functions, parseCrashEvent(input)),
      ecs: withTaskStateChangeEvents(
        {
          runTask: (request) => runTask(functions.aws.ecs, request),
          describeTask: (cluster, taskArn) => describeTask(functions.aws.ecs, cluster, taskArn),
          stopTask: (cluster, taskArn, reason) => stopTask(functions.aws.ecs, cluster, taskArn, reason),
        },
        deliver,
      ),
    },
    { pollIntervalMs: 500 },
  );
  const others = watchOtherTasks({
    running: () => listTaskArns(functions.aws.ecs, context.cluster, 'RUNNING'),
    describe: async (arns) =>
      [...(await describeTasks(functions.aws.ecs, context.cluster, arns)).values()].filter(
        (task) => task !== 'MISSING',
      ),
    deliver,
    everyMs: 250,
    onError: note('task events'),
  });
  // Step Functions has no limit on running executions; each one waiting here is a timer.
  const executor = new LocalExecutor(sfn, stateMachineArn, machine, 1000);
  let executing = true;
  const executorLoop = (async () => {
    while (executing) {
      await executor.pickUp().catch(note('executor'));
      await sleep(250);
    }
  })();

  const polls = new Set<Promise<void>>();
  const tally = (summary: PollSummary) => {
    for (const [outcome, n] of Object.entries(summary.outcomes)) {
      facts.outcomes[`claim: ${outcome}`] = (facts.outcomes[`claim: ${outcome}`] ?? 0) + n;
    }
    for (const [outcome, n] of Object.entries(summary.reconciled ?? {})) {
      if (outcome !== 'runs' && n)
        facts.outcomes[`sweep: ${outcome}`] = (facts.outcomes[`sweep: ${outcome}`] ?? 0) + n;
    }
  };
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < context.pollers; i++) {
    const rt = await createRuntime(env, aws);
    const fire = () => {
      const poll = runPoll(rt, { aws: (base) => executor.reconcileAws(base) })
        .then(tally, note('poll'))
        .finally(() => {
          facts.polls += 1;
        });
      polls.add(poll);
      facts.overlapping = Math.max(facts.overlapping, polls.size);
      void poll.finally(() => polls.delete(poll));
    };
    // Nearly together, so that their polls overlap and race for the same runs.
    const offset = i * 200;
    timers.push(
      setTimeout(() => {
        fire();
        timers.push(setInterval(fire, context.pollSeconds * 1000));
      }, offset),
    );
  }
  let polling = true;
  const stopPolling = async () => {
    polling = false;
    for (const timer of timers) clearInterval(timer);
    while (polls.size) await Promise.all([...polls]);
  };

  return {
    workerName: functions.config.workerName,
    facts: () => structuredClone(facts),
    problems: () => [...problems],
    runningExecutions: async () =>
      (await listExecutions(sfn, stateMachineArn, 'RUNNING')).flatMap((e) => (e.name ? [e.name] : [])),
    stopPolling,
    abortExecutions: async () => {
      const running = await listExecutions(sfn, stateMachineArn, 'RUNNING');
      for (const e of running) {
        if (e.name) {
          await stopExecution(sfn, executionArnFor(stateMachineArn, e.name), 'state machine deleted');
        }
      }
      // The executor sees them stopped in moto and aborts its runs, which stop their tasks.
      return running.length;
    },
    stop: async (graceMs = 10_000) => {
      if (polling) await stopPolling();
      executing = false;
      await executorLoop;
      await executor.stop(graceMs);
      await others.stop();
      while (reports.size) await Promise.all([...reports]);
    },
  };
}
