import type { Container, ECSClient, Task } from '@aws-sdk/client-ecs';
import { describeTask, runTask, stopTask } from '../../../src/aws/ecs';
import { flowRunIdOfTask } from '../../../src/launch/report';
import type { EcsTaskApi } from '../../../src/local/run-task-sync';
import { prefectRaw } from '../env';

/**
 * Plays the flow containers moto cannot run (test-infra.md §1.4: moto's tasks never run anything nor exit):
 * each task the launch starts follows the outcome planned for its flow run, and the "engine" inside it talks
 * to Prefect as Prefect's flow engine does (Running, then Completed or Failed, or nothing at all). The
 * lifecycle advances as the `.sync` emulation describes the task, like ECS; a task someone stopped in moto
 * (the launcher's cancellation) stops here too. The launcher sees ECS only through `api` (the `.sync`
 * emulation) and `overlay` (the sweep's DescribeTasks), so both see one consistent ECS.
 */

export type Outcome =
  /** The engine proposes Running then Completed; exit 0. */
  | 'complete'
  /** The engine proposes Running then Failed (the flow raised); exit 0 or 1. */
  | 'fail'
  /** The engine proposes Running, then the process dies: exit 1, no final state. */
  | 'exit-1'
  /** The engine proposes Running, then exits 0 without a final state (its report was lost). */
  | 'silent'
  /** The task never starts: the image cannot be pulled. */
  | 'no-start';

export const PULL_FAILURE =
  'CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/prefecthq/prefect:3-missing: not found';

interface Played {
  runId: string;
  outcome: Outcome;
  phase: 'PROVISIONING' | 'RUNNING' | 'STOPPED';
  /** Describes left in RUNNING before the engine finishes. */
  runFor: number;
  failExit: number;
  honoursCancel: boolean;
  /** Cancelled, not ending by itself: runs until stopped. */
  holding?: boolean;
  startedAt?: Date;
  stoppedAt?: Date;
  exitCode?: number;
  stopCode?: string;
  stoppedReason?: string;
  /** What the engine got from Prefect: its Running proposal, and its final one. */
  engine: { running?: string; final?: { type: string; status: string } };
  /** One lifecycle step at a time per task. */
  step: Promise<unknown>;
}

type Proposal = { status: string; state?: { type: string } };

function propose(runId: string, type: string, message?: string): Promise<Proposal> {
  return prefectRaw<Proposal>('POST', `/flow_runs/${runId}/set_state`, {
    state: { type, name: type[0] + type.slice(1).toLowerCase(), ...(message ? { message } : {}) },
    force: false,
  });
}

export class PlayedContainers {
  private readonly tasks = new Map<string, Played>();
  readonly counts = { runTasks: 0, stoppedByLauncher: 0 };

  constructor(
    /** RunTask goes through here (the proxy in front of moto), so RunTask faults reach the launch. */
    private readonly launchEcs: ECSClient,
    /** moto itself, for reading and stopping tasks as ECS does internally. */
    private readonly motoEcs: ECSClient,
    private readonly plan: (runId: string) => {
      outcome: Outcome;
      runFor: number;
      failExit: number;
      honoursCancel: boolean;
    },
  ) {}

  /** What the `.sync` emulation calls: RunTask (through the proxy) and DescribeTasks of the played task. */
  readonly api: EcsTaskApi = {
    runTask: async (request) => {
      const out = await runTask(this.launchEcs, request);
      for (const task of out.tasks ?? []) {
        const runId = flowRunIdOfTask(task);
        if (!task.taskArn || !runId) continue;
        this.counts.runTasks += 1;
        this.tasks.set(task.taskArn, {
          runId,
          ...this.plan(runId),
          phase: 'PROVISIONING',
          engine: {},
          step: Promise.resolve(),
        });
      }
      return out;
    },
    describeTask: async (cluster, taskArn) => {
      const played = this.tasks.get(taskArn);
      if (!played) return describeTask(this.motoEcs, cluster, taskArn);
      const next = played.step.then(() => this.advance(played, cluster, taskArn));
      played.step = next.catch(() => undefined);
      await next;
      const task = await describeTask(this.motoEcs, cluster, taskArn);
      return task && this.view(played, task);
    },
    stopTask: (cluster, taskArn, reason) => stopTask(this.motoEcs, cluster, taskArn, reason),
  };

  /** The sweep's DescribeTasks answer, with every played task as it really is. */
  overlay(found: Map<string, Task | 'MISSING'>): Map<string, Task | 'MISSING'> {
    for (const [arn, task] of found) {
      const played = this.tasks.get(arn);
      if (played && task !== 'MISSING') found.set(arn, this.view(played, task));
    }
    return found;
  }

  /** The engine's view of every run it ran. */
  engineOf(runId: string): Played['engine'] | undefined {
    for (const played of this.tasks.values()) if (played.runId === runId) return played.engine;
    return undefined;
  }

  private async advance(played: Played, cluster: string | undefined, taskArn: string): Promise<void> {
    if (played.phase === 'STOPPED') return;
    const moto = await describeTask(this.motoEcs, cluster, taskArn);
    if (this.observeStop(played, moto)) return;
    if (played.phase === 'PROVISIONING' && played.outcome === 'no-start') {
      await this.stop(played, cluster, taskArn, { stopCode: 'TaskFailedToStart', reason: PULL_FAILURE });
      return;
    }
    let exitCode: number | undefined;
    try {
      exitCode = await this.engine(played);
    } catch {
      // The flow process could not reach Prefect and died.
      exitCode = 1;
    }
    if (exitCode === undefined) return;
    await this.stop(played, cluster, taskArn, {
      stopCode: 'EssentialContainerExited',
      reason: 'Essential container in task exited',
      exitCode,
    });
  }

  /** One step of the flow process; its exit code once it exits. */
  private async engine(played: Played): Promise<number | undefined> {
    if (played.phase === 'PROVISIONING') {
      played.phase = 'RUNNING';
      played.startedAt = new Date();
      const running = await propose(played.runId, 'RUNNING');
      played.engine.running = running.status;
      // An engine that may not run the flow (the run was cancelled meanwhile) exits at once.
      if (running.status !== 'ACCEPT') played.runFor = 0;
      return undefined;
    }
    if (played.runFor > 0) {
      played.runFor -= 1;
      return undefined;
    }
    if (played.engine.running !== 'ACCEPT') return 0;
    if (played.holding) return undefined;
    if (played.outcome === 'complete' || played.outcome === 'fail') {
      const type = played.outcome === 'complete' ? 'COMPLETED' : 'FAILED';
      const message =
        type === 'FAILED' ? 'Flow run encountered an exception: RuntimeError: planned failure' : undefined;
      const out = await propose(played.runId, type, message);
      played.engine.final = { type, status: out.status };
      if (out.status !== 'ACCEPT' && out.state?.type === 'CANCELLING') return this.cancelled(played);
      return type === 'FAILED' ? played.failExit : 0;
    }
    const run = await prefectRaw<{ state_type: string }>('GET', `/flow_runs/${played.runId}`);
    if (run.state_type === 'CANCELLING') return this.cancelled(played);
    return played.outcome === 'exit-1' ? 1 : 0;
  }

  /**
   * The engine finds its run Cancelling. Prefect's engine ends a cancelled flow itself; one that does not is
   * stopped by the launcher after its grace period.
   */
  private async cancelled(played: Played): Promise<number | undefined> {
    if (!played.honoursCancel) {
      played.holding = true;
      return undefined;
    }
    const out = await propose(played.runId, 'CANCELLED', 'Flow run was cancelled.');
    played.engine.final = { type: 'CANCELLED', status: out.status };
    return 0;
  }

  /**
   * A task someone stopped in moto (the launcher cancelling its run, or Step Functions stopping the task of an
   * aborted execution) stops: ECS sends SIGTERM; a flow process that was running exits 143, a container
   * that never started has no exit code. True when the task is (now) stopped.
   */
  private observeStop(played: Played, moto: Task | undefined): boolean {
    if (played.phase === 'STOPPED') return true;
    if (moto?.desiredStatus !== 'STOPPED') return false;
    this.counts.stoppedByLauncher += 1;
    this.stopped(played, {
      stopCode: 'UserInitiated',
      reason: moto.stoppedReason ?? 'Task stopped by user',
      ...(played.phase === 'RUNNING' ? { exitCode: 143 } : {}),
    });
    return true;
  }

  private stopped(played: Played, how: { stopCode: string; reason: string; exitCode?: number }): void {
    played.phase = 'STOPPED';
    played.stoppedAt = new Date();
    played.stopCode = how.stopCode;
    played.stoppedReason = how.reason;
    if (how.exitCode !== undefined) played.exitCode = how.exitCode;
  }

  /** The container stops by itself: recorded here, and in moto so that it lists the task as STOPPED. */
  private async stop(
    played: Played,
    cluster: string | undefined,
    taskArn: string,
    how: { stopCode: string; reason: string; exitCode?: number },
  ): Promise<void> {
    this.stopped(played, how);
    await stopTask(this.motoEcs, cluster, taskArn, how.reason);
  }

  private view(played: Played, task: Task): Task {
    this.observeStop(played, task);
    const containers: Container[] = (task.containers ?? []).map((c) => {
      const { exitCode: _ignored, ...rest } = c;
      return {
        ...rest,
        lastStatus: played.phase === 'PROVISIONING' ? 'PENDING' : played.phase,
        ...(played.exitCode !== undefined ? { exitCode: played.exitCode } : {}),
      };
    });
    const { stopCode: _s, stoppedReason: _r, stoppedAt: _a, ...base } = task;
    return {
      ...base,
      lastStatus: played.phase,
      desiredStatus: played.phase === 'STOPPED' ? 'STOPPED' : 'RUNNING',
      containers,
      ...(played.startedAt ? { startedAt: played.startedAt } : {}),
      ...(played.phase === 'STOPPED'
        ? {
            stopCode: played.stopCode as Task['stopCode'],
            stoppedReason: played.stoppedReason,
            stoppedAt: played.stoppedAt,
          }
        : {}),
    };
  }
}
