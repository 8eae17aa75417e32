import { ECSClient } from '@aws-sdk/client-ecs';
import { SFNClient } from '@aws-sdk/client-sfn';
import { runCrash, runPoll, runPrepare, runReport } from '../../../src/launch/entrypoints';
import { parseCrashEvent, parsePrepareEvent, parseTaskStateChangeEvent } from '../../../src/launch/events';
import type { PollSummary } from '../../../src/launch/poll';
import { withTaskStateChangeEvents } from '../../../src/local/ecs-events';
import { LocalExecutor } from '../../../src/local/executor';
import { LocalLaunchMachine } from '../../../src/local/launch-machine';
import { type FaultProxy, startProxy } from '../../../src/local/proxy';
import defaultTemplate from '../../../src/render/default-base-job-template.json';
import { arrangeDeployment, awsTestConfig, prefectRaw, stackUrls } from '../env';
import { createCluster, createLaunchStateMachine } from '../launcher';
import { type Outcome, PlayedContainers } from './containers';
import { FaultyEventBus, NO_EVENT_FAULTS } from './events';
import { awsFaults, prefectFaults } from './faults';
import { deadline, type LambdaContainer, LambdaFunction, lambdaContainer, type OutgoingCall } from './lambda';

/**
 * A launcher deployment in miniature, run under faults: the pool, cluster and launch state machine; the
 * scheduled runs and what happens to each; proxies in front of Prefect and moto for every launcher call;
 * several pollers, each a Lambda container polling again a moment after its last poll; Step Functions
 * (the local executor) running each execution with its Lambda states bound to the launcher's code; the flow
 * containers played; ECS events on a faulty bus; and a user who cancels runs.
 *
 * The launcher's clock is compressed so that hundreds of runs fit in minutes, in the deployed proportions:
 * polls seconds apart (60 s deployed), the poll Lambda's timeout (55 s) and, longer than it, the sweep's
 * settle time (120 s by default), so that a claim is resumed only once the poll that made it is surely over.
 * Prefect calls time out after 1 s (30 s deployed).
 */
export const CLOCK = {
  pollGapMs: [3_000, 6_000] as const,
  /** Every Lambda's timeout: 55 s (poll) and 60 s (the others) deployed. */
  lambdaTimeoutMs: 15_000,
  settleSeconds: 16,
  lookaheadSeconds: 5,
  /** The Prefect client's backoff: from 250 ms, at most 15 s (1 s and 60 s deployed). */
  backoff: { backoffBaseMs: 250, maxDelayMs: 15_000 },
};

export const FINAL = ['COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'];

export interface WorldOptions {
  runs: number;
  pollers: number;
  seed: number;
  /**
   * Runs are created, due at once, whenever fewer than this many are not yet final: the load follows what
   * the test server can take, rather than burying it (and every poll and Lambda with it) in a backlog.
   */
  inFlight: number;
}

export interface RunPlan {
  outcome: Outcome;
  /** Describes the task stays RUNNING before the engine finishes. */
  runFor: number;
  /** Exit code after the engine reported Failed. */
  failExit: number;
  /** Whether the engine ends a cancelled run itself, as Prefect's does, or leaves it to the launcher. */
  honoursCancel: boolean;
}

/** mulberry32: a small seeded generator, so that a run of the suite can be replayed with its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function add(into: Record<string, number>, key: string, n = 1): void {
  into[key] = (into[key] ?? 0) + n;
}

export interface FlowRunView {
  id: string;
  state_type: string;
  state_name: string;
  state: { message: string | null } | null;
}

export async function runsOf(deploymentId: string): Promise<FlowRunView[]> {
  const runs: FlowRunView[] = [];
  for (let offset = 0; ; offset += 200) {
    const page = await prefectRaw<FlowRunView[]>('POST', '/flow_runs/filter', {
      deployments: { id: { any_: [deploymentId] } },
      sort: 'ID_DESC',
      limit: 200,
      offset,
    });
    runs.push(...page);
    if (page.length < 200) return runs;
  }
}

type Phase = 'faults' | 'clean' | 'stopped';
type Role = 'doomed start' | 'doomed capacity' | 'kill after claim' | 'kill prepare' | 'cancel';

/** What `World.create` builds before the world can plan its runs. */
interface Parts {
  options: WorldOptions;
  random: () => number;
  deploymentId: string;
  cluster: string;
  stateMachineArn: string;
  prefectProxy: FaultProxy;
  awsProxy: FaultProxy;
  env: Record<string, string>;
}

export class World {
  readonly options: WorldOptions;
  readonly random: () => number;
  readonly deploymentId: string;
  readonly cluster: string;
  readonly stateMachineArn: string;
  /** The runs created so far, in order. */
  readonly runIds: string[] = [];
  /** Every call of the launcher to Prefect, and to AWS (moto), goes through these. */
  readonly prefectProxy: FaultProxy;
  readonly awsProxy: FaultProxy;
  readonly plan = new Map<string, RunPlan>();
  /** Runs whose StartExecution always fails, and runs ECS can never place, while faults are on. */
  readonly doomed = { startExecution: new Set<string>(), capacity: new Set<string>() };
  /** Runs whose claiming poll dies before it starts their execution; runs whose Prepare dies mid-way. */
  readonly killAfterClaim = new Set<string>();
  readonly killPrepare = new Set<string>();
  /** Runs the user cancelled (the server took the Cancelling proposal). */
  readonly cancelled = new Set<string>();
  readonly kills: Record<string, number> = {};
  readonly summaries: PollSummary[] = [];
  readonly polls: number[];
  phase: Phase = 'faults';
  /** Why the suite's own run creator gave up, if it did: the suite cannot go on then. */
  failure: unknown;

  /** The Lambda functions Step Functions and EventBridge invoke. */
  readonly functions: { prepare: LambdaFunction; crash: LambdaFunction; report: LambdaFunction };
  readonly containers: PlayedContainers;
  readonly bus: FaultyEventBus;
  readonly executor: LocalExecutor;

  private readonly env: Record<string, string>;
  /** The special fate of some runs, by creation index. */
  private readonly roles: Map<number, Set<Role>>;
  private readonly pendingCancels: { id: string; at: number }[] = [];
  private arriving?: Promise<void>;
  private executing?: Promise<void>;
  private polling?: Promise<unknown>;
  private cancelling?: Promise<void>;
  private readonly killedClaims = new Set<string>();
  private readonly killedPrepares = new Set<string>();

  static async create(options: WorldOptions): Promise<World> {
    const random = seeded(options.seed);
    const { prefectApiUrl, motoUrl } = stackUrls();
    const cluster = await createCluster();
    const { pool, deploymentId } = await arrangeDeployment({
      baseJobTemplate: defaultTemplate,
      jobVariables: { cluster, image: 'prefecthq/prefect:3-latest' },
    });
    const stateMachineArn = await createLaunchStateMachine();
    const prefectProxy = await startProxy(prefectApiUrl, { random });
    const awsProxy = await startProxy(motoUrl, { random });
    const env = {
      PREFECT_API_URL: prefectProxy.url,
      LAUNCHER_WORK_POOL: pool,
      LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
      LAUNCHER_CONCURRENCY: '8',
      LAUNCHER_HTTP_TIMEOUT_SECONDS: '1',
      LAUNCHER_LOOKAHEAD_SECONDS: String(CLOCK.lookaheadSeconds),
      LAUNCHER_SWEEP_SETTLE_SECONDS: String(CLOCK.settleSeconds),
      LAUNCHER_CANCEL_GRACE_SECONDS: '1',
    };
    return new World({
      options,
      random,
      deploymentId,
      cluster,
      stateMachineArn,
      prefectProxy,
      awsProxy,
      env,
    });
  }

  private constructor(parts: Parts) {
    this.options = parts.options;
    this.random = parts.random;
    this.deploymentId = parts.deploymentId;
    this.cluster = parts.cluster;
    this.stateMachineArn = parts.stateMachineArn;
    this.prefectProxy = parts.prefectProxy;
    this.awsProxy = parts.awsProxy;
    this.env = parts.env;
    this.polls = new Array<number>(parts.options.pollers).fill(0);
    this.roles = this.assignRoles();

    const fn = (killWhen?: (call: OutgoingCall) => boolean) =>
      new LambdaFunction(() => this.container(killWhen), CLOCK.lambdaTimeoutMs, 60);
    this.functions = {
      // For the runs picked, the invocation dies after rendering and registering, before it labels the run.
      prepare: fn((call) => {
        const id = /\/flow_runs\/([0-9a-f-]{36})\/labels$/.exec(
          call.service === 'prefect' ? call.url : '',
        )?.[1];
        if (this.phase !== 'faults' || !id || !this.killPrepare.has(id) || this.killedPrepares.has(id))
          return false;
        this.killedPrepares.add(id);
        add(this.kills, 'prepare killed mid-way (Lambda timed out)');
        return true;
      }),
      crash: fn(),
      report: fn(),
    };
    // RunTask is Step Functions' own call, through the proxy so that RunTask faults reach the launch.
    this.containers = new PlayedContainers(
      new ECSClient({ ...awsTestConfig(), endpoint: this.awsProxy.url }),
      new ECSClient(awsTestConfig()),
      (id) => this.plan.get(id) ?? { outcome: 'complete', runFor: 0, failExit: 0, honoursCancel: true },
    );
    this.bus = new FaultyEventBus(
      (event) => this.functions.report.invoke((rt) => runReport(rt, parseTaskStateChangeEvent(event))),
      this.random,
    );
    const machine = new LocalLaunchMachine(
      {
        prepare: (input) => this.functions.prepare.invoke((rt) => runPrepare(rt, parsePrepareEvent(input))),
        crash: (input) => this.functions.crash.invoke((rt) => runCrash(rt, parseCrashEvent(input))),
        ecs: withTaskStateChangeEvents(this.containers.api, this.bus.send),
      },
      { retryIntervalMs: 20, pollIntervalMs: 50 },
    );
    this.executor = new LocalExecutor(new SFNClient(awsTestConfig()), this.stateMachineArn, machine, 64);
  }

  /** A cold start of one of the launcher's Lambda functions, its calls going through the proxies. */
  private container(killWhen?: (call: OutgoingCall) => boolean): Promise<LambdaContainer> {
    return lambdaContainer(
      this.env,
      { ...awsTestConfig(), endpoint: this.awsProxy.url },
      { backoff: CLOCK.backoff, ...(killWhen ? { killWhen } : {}) },
    );
  }

  /** Which runs, by creation index, meet the faults aimed at single runs, and which the user cancels. */
  private assignRoles(): Map<number, Set<Role>> {
    const roles = new Map<number, Set<Role>>();
    const n = this.options.runs;
    const give = (count: number, role: Role, exclusive: boolean) => {
      for (let given = 0; given < count; ) {
        const i = Math.floor(this.random() * n);
        const mine = roles.get(i) ?? new Set<Role>();
        if (exclusive && [...mine].some((r) => r !== 'cancel')) continue;
        if (mine.has(role)) continue;
        mine.add(role);
        roles.set(i, mine);
        given += 1;
      }
    };
    give(8, 'doomed start', true);
    give(6, 'doomed capacity', true);
    give(6, 'kill after claim', true);
    give(4, 'kill prepare', true);
    give(Math.round(n * 0.05), 'cancel', false);
    return roles;
  }

  /** What happens to a run: its container's outcome, and the faults aimed at it alone. */
  private planRun(id: string, index: number): void {
    const outcomes: Outcome[] = [
      'complete',
      'complete',
      'complete',
      'complete',
      'fail',
      'exit-1',
      'silent',
      'no-start',
    ];
    this.plan.set(id, {
      outcome: outcomes[Math.floor(this.random() * outcomes.length)] ?? 'complete',
      // A few long flows, so that cancellations reach running tasks.
      runFor: this.random() < 0.1 ? 20 + Math.floor(this.random() * 20) : Math.floor(this.random() * 5),
      failExit: this.random() < 0.5 ? 0 : 1,
      honoursCancel: this.random() < 0.5,
    });
    const roles = this.roles.get(index) ?? new Set<Role>();
    if (roles.has('doomed start')) this.doomed.startExecution.add(id);
    if (roles.has('doomed capacity')) this.doomed.capacity.add(id);
    if (roles.has('kill after claim')) this.killAfterClaim.add(id);
    if (roles.has('kill prepare')) this.killPrepare.add(id);
    if (roles.has('cancel')) this.pendingCancels.push({ id, at: Date.now() + 1000 + this.random() * 15_000 });
  }

  /** Whether every run has been created. */
  get allArrived(): boolean {
    return this.runIds.length >= this.options.runs;
  }

  /**
   * Creates the runs, due now (a few seconds late, some of them), whenever fewer than `inFlight` are open.
   * One at a time, with an idempotency key: the test server's SQLite answers concurrent writers with 503.
   */
  private async arrive(): Promise<void> {
    while (!this.allArrived && this.phase !== 'stopped') {
      const room = this.options.inFlight - (await this.countOpen());
      if (room <= 0) {
        await sleep(500);
        continue;
      }
      for (let i = 0; i < Math.min(room, 10) && !this.allArrived; i++) {
        const index = this.runIds.length;
        const run = await prefectRaw<{ id: string }>(
          'POST',
          `/deployments/${this.deploymentId}/create_flow_run`,
          {
            state: {
              type: 'SCHEDULED',
              state_details: { scheduled_time: new Date(Date.now() - this.random() * 5000).toISOString() },
            },
            idempotency_key: `reliability-${this.deploymentId}-${index}`,
          },
        );
        this.planRun(run.id, index);
        this.runIds.push(run.id);
      }
    }
  }

  /** Faults on or off, at the proxies and on the event bus. */
  faults(on: boolean): void {
    this.prefectProxy.setRules(on ? prefectFaults() : []);
    this.awsProxy.setRules(on ? awsFaults(this.doomed) : []);
    this.bus.rates = on ? { lose: 0.1, duplicate: 0.1, delay: 0.15, maxDelayMs: 1500 } : NO_EVENT_FAULTS;
  }

  start(): void {
    this.faults(true);
    this.arriving = this.arrive().catch((error: unknown) => {
      this.failure = error;
    });
    this.executing = this.runExecutor();
    this.polling = Promise.all(this.polls.map((_, i) => this.poller(i)));
    this.cancelling = this.user();
  }

  /** Stops polling, executing and cancelling, and waits for the ECS events still on the bus. */
  async stop(): Promise<void> {
    this.phase = 'stopped';
    // Settled, not all: an actor that failed must not keep the others, or the proxies, running.
    await Promise.allSettled([this.arriving, this.polling, this.executing, this.cancelling]);
    await this.bus.drain();
  }

  async close(): Promise<void> {
    if (this.phase !== 'stopped') await this.stop();
    await Promise.all([this.prefectProxy.close(), this.awsProxy.close()]);
  }

  private async runExecutor(): Promise<void> {
    while (this.phase !== 'stopped') {
      await this.executor.pickUp().catch(() => 0);
      await sleep(100);
    }
  }

  /** The user cancels some runs, a few seconds after they were created, as the UI does (proposes Cancelling). */
  private async user(): Promise<void> {
    while (this.phase !== 'stopped' && !(this.allArrived && this.pendingCancels.length === 0)) {
      await sleep(500);
      const due = this.pendingCancels.filter((c) => c.at <= Date.now());
      for (const { id } of due) {
        this.pendingCancels.splice(
          this.pendingCancels.findIndex((c) => c.id === id),
          1,
        );
        const out = await prefectRaw<{ status: string }>('POST', `/flow_runs/${id}/set_state`, {
          state: { type: 'CANCELLING', name: 'Cancelling' },
          force: false,
        }).catch(() => ({ status: 'ERROR' }));
        // REJECT: a Scheduled run without infrastructure goes straight to Cancelled.
        if (out.status === 'ACCEPT' || out.status === 'REJECT') this.cancelled.add(id);
      }
    }
  }

  /** A poller's Lambda container; with faults on, it dies after its claim of a picked run, before StartExecution. */
  private pollerContainer(): Promise<LambdaContainer> {
    return this.container((call) => {
      if (this.phase !== 'faults' || call.service !== 'aws' || call.command !== 'StartExecutionCommand') {
        return false;
      }
      const name = String(call.input.name ?? '');
      if (!this.killAfterClaim.has(name) || this.killedClaims.has(name)) return false;
      this.killedClaims.add(name);
      return true;
    });
  }

  /**
   * One poller: polls, then again a moment after the poll ended. A poll that outlives the Lambda timeout, or
   * whose container is killed, is abandoned with its container; the next poll gets a cold one.
   */
  private async poller(index: number): Promise<void> {
    let container = await this.pollerContainer();
    const stopped = () => this.phase === 'stopped';
    const [low, high] = CLOCK.pollGapMs;
    while (!stopped()) {
      await sleep(low + this.random() * (high - low));
      if (stopped()) break;
      const poll = runPoll(container.rt, {
        // The sweep sees Step Functions through the local executor and ECS through the played containers.
        aws: (base) => {
          const overlaid = this.executor.reconcileAws(base);
          return {
            ...overlaid,
            describeTasks: async (c, arns) => this.containers.overlay(await overlaid.describeTasks(c, arns)),
          };
        },
      }).then(
        (summary) => ({ kind: 'done' as const, summary }),
        () => ({ kind: 'failed' as const }),
      );
      const timeout = deadline(CLOCK.lambdaTimeoutMs);
      const outcome = await Promise.race([
        poll,
        container.killed.then(() => ({ kind: 'killed' as const })),
        timeout.passed.then(() => ({ kind: 'timed out' as const })),
      ]);
      timeout.cancel();
      this.polls[index] = (this.polls[index] ?? 0) + 1;
      if (outcome.kind === 'done') {
        this.summaries.push(outcome.summary);
      } else if (outcome.kind === 'failed') {
        add(this.kills, 'poll ended with an error');
      } else {
        add(this.kills, outcome.kind === 'killed' ? 'poll killed after a claim' : 'poll timed out (killed)');
        container.kill();
        container = await this.pollerContainer();
      }
    }
  }

  /** The open runs but the doomed ones, with their state and plan: what a verbose run prints near the end. */
  async describeOpen(): Promise<string> {
    const runs = await runsOf(this.deploymentId);
    return runs
      .filter((r) => !FINAL.includes(r.state_type) && !this.doomed.startExecution.has(r.id))
      .map(
        (r) => `  ${r.id} ${r.state_name}: ${r.state?.message ?? ''} ${JSON.stringify(this.plan.get(r.id))}`,
      )
      .join('\n');
  }

  /** Runs of the deployment not in a final state, but those given. */
  countOpen(except: Iterable<string> = []): Promise<number> {
    const ids = [...except];
    return prefectRaw<number>('POST', '/flow_runs/count', {
      deployments: { id: { any_: [this.deploymentId] } },
      flow_runs: {
        state: { type: { not_any_: FINAL } },
        ...(ids.length ? { id: { not_any_: ids } } : {}),
      },
    });
  }
}
