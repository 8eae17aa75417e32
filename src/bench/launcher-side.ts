import { randomBytes } from 'node:crypto';
import { runTask } from '../aws/ecs';
import { createSfnClient, createStateMachine, executionArnFor, stopExecution } from '../aws/sfn';
import { parseConfig } from '../config';
import { runCrash, runNowServer, runPoll, runPrepare, runReport } from '../launch/entrypoints';
import { parseCrashEvent, parsePrepareEvent, parseTaskStateChangeEvent } from '../launch/events';
import type { ReconcileAws } from '../launch/reconcile';
import { applyRunNowAutomation, removeRunNowAutomation } from '../launch/run-now-automation';
import { loadLaunchDefinition, localFunctionArns } from '../local/definition';
import { taskStateChangeEvent } from '../local/ecs-events';
import { type ExecutionResult, LocalLaunchMachine } from '../local/launch-machine';
import { startRunNowListener } from '../local/run-now-listener';
import type { EcsTaskApi } from '../local/run-task-sync';
import { createRuntime, type Runtime } from '../runtime';
import { BENCH_AWS, type RunningSide, type Side, type SideContext, type SideUsage } from './side';

/** At most `limit` calls of the returned wrapper run at once; the rest wait in order. */
export function limiter(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active += 1;
    try {
      return await fn();
    } finally {
      active -= 1;
      waiting.shift()?.();
    }
  };
}

/**
 * The launcher as deployed, in this process: the poll function on a fixed-rate timer (EventBridge's
 * schedule), each execution it starts run through the deployed definition (src/local), and Prepare's and
 * the report function's code, all against the counting proxies. RunTask goes through them too: Step
 * Functions makes that call on AWS, but it is the launch being measured. What else AWS does by itself is
 * not the launcher's and goes to moto uncounted: bookkeeping of the executions, and the `.sync` wait for
 * the task, which here ends at once (the task is reported stopped with exit code 0 without asking moto)
 * because the benchmark measures launching, not running.
 */
const DEFAULT_CONCURRENCY = parseConfig({
  PREFECT_API_URL: 'http://127.0.0.1/api',
  LAUNCHER_WORK_POOL: 'p',
}).concurrency;

export interface LauncherSideOptions {
  prepareConcurrency: number;
  startLeadSeconds: number;
  /** Set up run now: the pool's automation calls the entry point (in this process, on loopback). */
  runNow?: boolean;
}

export function launcherSide(options: LauncherSideOptions): Side {
  return {
    name: options.runNow ? 'launcher-run-now' : 'launcher',
    describe: ({ pollSeconds, lookaheadSeconds }) => ({
      LAUNCHER_POLL_INTERVAL_SECONDS: pollSeconds,
      LAUNCHER_LOOKAHEAD_SECONDS: lookaheadSeconds,
      LAUNCHER_START_LEAD_SECONDS: options.startLeadSeconds,
      LAUNCHER_CONCURRENCY: `${DEFAULT_CONCURRENCY} (default)`,
      'Prepare invocations at once (stand-in for Lambda concurrency)': options.prepareConcurrency,
      'run now': options.runNow ? "on: the pool's automation calls the entry point" : 'off',
    }),
    startLeadSeconds: options.startLeadSeconds,
    start: (context) => startLauncher(context, options),
  };
}

async function startLauncher(context: SideContext, options: LauncherSideOptions): Promise<RunningSide> {
  const { prepareConcurrency, startLeadSeconds } = options;
  const sfn = createSfnClient({ ...BENCH_AWS, endpoint: context.motoUrl });
  const stateMachineArn = await createStateMachine(
    sfn,
    `bench-${context.pool}`,
    loadLaunchDefinition(localFunctionArns()),
    'arn:aws:iam::123456789012:role/prefect-ecs-launcher-states',
  );
  const rt = await createRuntime(
    {
      PREFECT_API_URL: context.prefectApiUrl,
      LAUNCHER_WORK_POOL: context.pool,
      LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
      LAUNCHER_POLL_INTERVAL_SECONDS: String(context.pollSeconds),
      LAUNCHER_LOOKAHEAD_SECONDS: String(context.lookaheadSeconds),
      LAUNCHER_START_LEAD_SECONDS: String(startLeadSeconds),
    },
    { ...BENCH_AWS, endpoint: context.awsEndpoint },
  );

  const problems: string[] = [];
  const note = (what: string, err: unknown) => {
    const line = `${what}: ${(err as Error).message ?? String(err)}`;
    if (!problems.includes(line)) {
      problems.push(line);
      context.log(`  launcher: ${line}`);
    }
  };
  const reports = new Set<Promise<unknown>>();
  // Each function invocation's duration, as Lambda would bill it (measured here, in-process).
  const usage: SideUsage = {
    busyPolls: { count: 0, totalMs: 0 },
    prepare: { count: 0, totalMs: 0 },
    report: { count: 0, totalMs: 0 },
    transitions: 0,
    idlePollsMs: [],
  };
  const timed = async <T>(fn: 'prepare' | 'report', call: () => Promise<T>) => {
    const began = performance.now();
    try {
      return await call();
    } finally {
      usage[fn].count += 1;
      usage[fn].totalMs += performance.now() - began;
    }
  };
  const ecs: EcsTaskApi = {
    runTask: async (request) => {
      const out = await runTask(rt.aws.ecs, request);
      const task = out.tasks?.[0];
      if (task) {
        // The PENDING event EventBridge sends the report function once the task exists; asynchronous on
        // AWS, so it never delays the execution.
        const event = taskStateChangeEvent({ ...task, lastStatus: 'PENDING' }, rt.region);
        const report = timed('report', () => runReport(rt, parseTaskStateChangeEvent(event))).catch((err) =>
          note('report', err),
        );
        reports.add(report);
        void report.finally(() => reports.delete(report));
      }
      return out;
    },
    describeTask: async (_cluster, taskArn) => ({
      taskArn,
      lastStatus: 'STOPPED',
      stopCode: 'EssentialContainerExited',
      containers: [{ name: 'prefect', lastStatus: 'STOPPED', exitCode: 0 }],
    }),
  };
  const limit = limiter(prepareConcurrency);
  const machine = new LocalLaunchMachine({
    prepare: (input) => limit(() => timed('prepare', () => runPrepare(rt, parsePrepareEvent(input)))),
    crash: (input) => runCrash(rt, parseCrashEvent(input)),
    ecs,
  });

  // Step Functions runs an execution as soon as StartExecution succeeds: so does this, from the poll's own
  // SFN client, with no polling of moto. Its end is told to moto (StopExecution, uncounted), so that moto no
  // longer lists it as running, and kept for the sweep's DescribeExecution.
  const executions = new Set<Promise<void>>();
  const ended = new Map<string, { status: ExecutionResult['status']; stopDate: Date }>();
  rt.aws.sfn.middlewareStack.add(
    (next, handlerContext) => async (args) => {
      const result = await next(args);
      const { name, input } = args.input as { name?: string; input?: string };
      if (handlerContext.commandName === 'StartExecutionCommand' && name && input) {
        const execution = machine
          .start(name, JSON.parse(input))
          .result.then(async ({ status, error, transitions }) => {
            ended.set(name, { status, stopDate: new Date() });
            usage.transitions += transitions;
            if (status === 'FAILED') note('execution', new Error(error));
            await stopExecution(sfn, executionArnFor(stateMachineArn, name), `ended locally: ${status}`);
          })
          .catch((err: unknown) => note('execution', err));
        executions.add(execution);
        void execution.finally(() => executions.delete(execution));
      }
      return result;
    },
    { step: 'initialize', name: 'benchRunsStartedExecutions' },
  );
  const withLocalExecutions = (base: ReconcileAws): ReconcileAws => ({
    ...base,
    describeExecution: async (name) => ended.get(name) ?? base.describeExecution(name),
  });

  const polls = new Set<Promise<void>>();
  const facts: Record<string, number> = { polls: 0, 'polls running at once (most)': 0 };
  // Fixed rate, overlapping when a poll outlasts the interval, as EventBridge invokes the poll function.
  const firePoll = () => {
    const began = performance.now();
    const poll = runPoll(rt, { aws: withLocalExecutions })
      .then((summary) => {
        const ms = performance.now() - began;
        if (summary.due === 0) usage.idlePollsMs.push(ms);
        else {
          usage.busyPolls.count += 1;
          usage.busyPolls.totalMs += ms;
        }
        for (const [outcome, count] of Object.entries(summary.outcomes)) {
          facts[`poll outcome: ${outcome}`] = (facts[`poll outcome: ${outcome}`] ?? 0) + count;
        }
      })
      .catch((err: unknown) => note('poll', err));
    polls.add(poll);
    facts.polls = (facts.polls ?? 0) + 1;
    facts['polls running at once (most)'] = Math.max(facts['polls running at once (most)'] ?? 0, polls.size);
    void poll.finally(() => polls.delete(poll));
  };
  firePoll();
  const pollTimer = setInterval(firePoll, context.pollSeconds * 1000);
  const runNow = options.runNow ? await startRunNow(rt, facts, (err) => note('run now', err)) : undefined;

  return {
    failure: () => undefined,
    problems: () => [...problems],
    facts: () => ({ ...facts }),
    usage: () => structuredClone(usage),
    stop: async () => {
      clearInterval(pollTimer);
      await runNow?.();
      await Promise.all(polls);
      // Every launch has happened (the scenario waited for it), so the executions end at once.
      await Promise.all(executions);
      await Promise.all(reports);
    },
  };
}

/**
 * The run-now entry point as `npm start` serves it (src/local/run-now-listener.ts), and the pool's automation
 * on the benchmark's Prefect server calling it. Returns what undoes both.
 */
async function startRunNow(
  rt: Runtime,
  facts: Record<string, number>,
  note: (err: unknown) => void,
): Promise<() => Promise<void>> {
  const token = randomBytes(32).toString('hex');
  const serve = runNowServer({ token: async () => token, runtime: async () => rt, telemetry: rt.telemetry });
  const listener = await startRunNowListener(async (request) => {
    const response = await serve(request);
    if (response.statusCode === 200) {
      const { started } = JSON.parse(response.body) as { started: number };
      facts['run-now calls'] = (facts['run-now calls'] ?? 0) + 1;
      facts['run-now started'] = (facts['run-now started'] ?? 0) + started;
    }
    return response;
  }, note);
  const pool = await rt.prefect.readWorkPool(rt.config.workPool);
  if (!pool) throw new Error(`no work pool ${rt.config.workPool}`);
  await applyRunNowAutomation(rt.prefect, pool, { url: listener.url, token });
  return async () => {
    await removeRunNowAutomation(rt.prefect, pool.name);
    await listener.stop();
  };
}
