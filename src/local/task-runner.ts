import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ECSClient, RunTaskCommandInput, Task, TaskDefinition } from '@aws-sdk/client-ecs';
import { describeTask, readTaskDefinition, runTask, stopTask } from '../aws/ecs';
import { flowContainerName } from '../launch/diagnosis';
import { keepLastLines } from './child-output';
import type { EcsTaskApi } from './run-task-sync';

/** The flow container of a task, as the local runner starts it. */
export interface LocalContainer {
  name: string;
  command: string[];
  env: Record<string, string>;
}

/** Images whose command the project's virtualenv can run: it has the same `prefect` the image has. */
const PREFECT_IMAGE = /^(docker\.io\/)?prefecthq\/prefect[\w.-]*([:@]|$)/;
/**
 * The references of those images that a registry could serve: no tag, `latest`, a tag that starts with a
 * version (`3-latest`, `3.9.1-python3.12`) or a digest. Any other tag is one Prefect does not publish, and
 * pulling it fails on ECS, so it fails here too.
 */
const PUBLISHED_REFERENCE = /^[^:@]+(:(latest|\d[\w.-]*))?(@sha256:[0-9a-f]{64})?$/;

/**
 * What ECS would start for the task's flow container: the override's command, else the definition's, and
 * the definition's environment with the override's on top, by name.
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerOverride.html
 * Returns why not when the container cannot run here (an image other than Prefect's, or no command).
 */
export function localContainer(task: Task, definition: TaskDefinition): LocalContainer | { error: string } {
  const name = flowContainerName(task, definition.containerDefinitions?.[0]?.name ?? 'prefect');
  const container = definition.containerDefinitions?.find((c) => c.name === name);
  const override = task.overrides?.containerOverrides?.find((o) => o.name === name);
  if (!container)
    return { error: `task definition ${definition.taskDefinitionArn} has no container ${name}` };
  if (!container.image || !PREFECT_IMAGE.test(container.image)) {
    return {
      error: `the local task runner has no image ${container.image}; it runs prefecthq/prefect images with the project's Python environment`,
    };
  }
  if (!PUBLISHED_REFERENCE.test(container.image)) {
    // ECS's wording: CannotPullContainerError: … failed to resolve ref <image>: <image>: not found
    const ref = container.image.startsWith('docker.io/') ? container.image : `docker.io/${container.image}`;
    return {
      error: `failed to resolve ref ${ref}: ${ref}: not found (the local task runner takes latest, a version tag or a digest as published)`,
    };
  }
  const command = override?.command?.length ? override.command : (container.command ?? []);
  if (!command.length) return { error: `container ${name} has no command` };
  const env: Record<string, string> = {};
  for (const { name: key, value } of [...(container.environment ?? []), ...(override?.environment ?? [])]) {
    if (key) env[key] = value ?? '';
  }
  return { name, command, env };
}

/** How a local task ended, in the fields ECS would report. */
interface Outcome {
  exitCode?: number;
  stopCode: 'EssentialContainerExited' | 'TaskFailedToStart' | 'UserInitiated';
  reason: string;
}

interface LocalTask {
  container?: string;
  child?: ChildProcess;
  stopping: boolean;
  outcome?: Outcome;
  done: Promise<void>;
}

export interface LocalTaskRunnerOptions {
  /** Directory put first on PATH, so Prefect images' `prefect` is the virtualenv's. */
  binDir: string;
  /** Where notes about finished tasks go (the terminal). */
  print(line: string): void;
}

/**
 * Runs the tasks the `.sync` emulation starts in moto as local processes: RunTask starts the task in moto
 * and its flow container's command here; while the process lives the moto task stays RUNNING (see
 * `holdMotoTasksRunning`); when it exits the task is stopped in moto and DescribeTasks reports the
 * process's exit code, which moto cannot (../shared/reference/test-infra.md §1.4).
 */
export class LocalTaskRunner {
  private readonly tasks = new Map<string, LocalTask>();
  /** Set by `stopAll`: tasks started afterwards stop at once instead of starting a process. */
  private closed = false;

  constructor(
    private readonly ecs: ECSClient,
    private readonly options: LocalTaskRunnerOptions,
  ) {}

  /** The ECS API for `localLaunchMachine(rt, { ecs })`. */
  api(): EcsTaskApi {
    return {
      runTask: (request) => this.runTask(request),
      describeTask: (cluster, taskArn) => this.describeTask(cluster, taskArn),
      stopTask: (cluster, taskArn, reason) => this.stopTask(cluster, taskArn, reason),
    };
  }

  /** StopTask: moto's task stops, and its process gets SIGTERM, then SIGKILL after `graceMs`. */
  private async stopTask(cluster: string | undefined, taskArn: string, reason: string): Promise<void> {
    this.terminate(taskArn);
    await stopTask(this.ecs, cluster, taskArn, reason);
  }

  private terminate(taskArn: string, graceMs = 10_000): void {
    const local = this.tasks.get(taskArn);
    if (!local?.child || local.outcome || local.stopping) return;
    local.stopping = true;
    local.child.kill('SIGTERM');
    const child = local.child;
    setTimeout(() => {
      if (!local.outcome) killGroup(child);
    }, graceMs).unref();
  }

  /**
   * Stops every running task as StopTask does: SIGTERM to the container's main process, SIGKILL to all of
   * it after the grace period (ECS's stopTimeout, 30 s by default).
   * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html
   */
  async stopAll(graceMs = 10_000): Promise<void> {
    this.closed = true;
    const live = [...this.tasks.values()].filter((t) => t.child && !t.outcome);
    for (const task of live) {
      task.stopping = true;
      task.child?.kill('SIGTERM');
    }
    const timer = setTimeout(() => {
      for (const task of live) if (!task.outcome) killGroup(task.child as ChildProcess);
    }, graceMs);
    await Promise.all(live.map((t) => t.done));
    clearTimeout(timer);
  }

  private async runTask(request: RunTaskCommandInput) {
    const out = await runTask(this.ecs, request);
    for (const task of out.tasks ?? []) await this.start(task);
    return out;
  }

  /**
   * moto's task with what happened here: moto reports exit code 0 for every container, whatever ran; the
   * flow container gets its process's exit code, and a task that never started a process has none.
   */
  private async describeTask(cluster: string | undefined, taskArn: string): Promise<Task | undefined> {
    const task = await describeTask(this.ecs, cluster, taskArn);
    const local = this.tasks.get(taskArn);
    // Someone stopped the task in moto directly (the sweep, a cancel): its process goes, as on ECS.
    if (task?.lastStatus === 'STOPPED') this.terminate(taskArn);
    const outcome = local?.outcome;
    if (!task || !outcome) return task;
    return {
      ...task,
      stopCode: outcome.stopCode,
      stoppedReason: outcome.reason,
      containers: (task.containers ?? []).map((c) =>
        outcome.exitCode === undefined || c.name === local.container
          ? { ...c, lastStatus: 'STOPPED', exitCode: outcome.exitCode }
          : c,
      ),
    };
  }

  private async start(task: Task): Promise<void> {
    const taskArn = task.taskArn as string;
    let finished!: () => void;
    const local: LocalTask = { stopping: false, done: new Promise((resolve) => (finished = resolve)) };
    this.tasks.set(taskArn, local);
    const finish = async (outcome: Outcome, cwd?: string) => {
      if (local.outcome) return;
      // Recorded before StopTask, so no DescribeTasks sees the task STOPPED without its exit code.
      local.outcome = outcome;
      if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
      try {
        await stopTask(this.ecs, task.clusterArn, taskArn, outcome.reason);
      } catch (err) {
        this.options.print(`could not stop task ${taskArn} in moto: ${(err as Error).message}`);
      }
      finished();
    };

    const definition = await readTaskDefinition(this.ecs, task.taskDefinitionArn as string);
    const spec = definition ? localContainer(task, definition) : { error: 'its task definition is gone' };
    if ('error' in spec) {
      await finish({ stopCode: 'TaskFailedToStart', reason: `CannotPullContainerError: ${spec.error}` });
      return;
    }
    if (this.closed) {
      await finish({ stopCode: 'UserInitiated', reason: 'Task stopped by the local launcher' });
      return;
    }
    local.container = spec.name;
    // A fresh working directory and Prefect home, as a new container has.
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'prefect-ecs-task-'));
    const env = {
      HOME: process.env.HOME ?? cwd,
      LANG: process.env.LANG ?? 'C.UTF-8',
      PREFECT_HOME: path.join(cwd, '.prefect'),
      ...spec.env,
      PATH: [this.options.binDir, spec.env.PATH ?? process.env.PATH].filter(Boolean).join(path.delimiter),
    };
    const [file, ...args] = spec.command as [string, ...string[]];
    // Its own process group, the container: a Ctrl-C in the terminal reaches only the launcher, which
    // stops tasks as ECS would, and whatever the command started goes with it.
    const child = spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    local.child = child;
    const output = keepLastLines(child, 20);
    child.once('error', (err) =>
      finish({ stopCode: 'TaskFailedToStart', reason: `CannotStartContainerError: ${err.message}` }, cwd),
    );
    child.once('exit', (code, sig) => {
      killGroup(child);
      // Docker reports a container killed by a signal as 128 + its number (137 for SIGKILL).
      const exitCode = code ?? 128 + (os.constants.signals[sig as NodeJS.Signals] ?? 0);
      if (exitCode !== 0 && !local.stopping) {
        this.options.print(
          `task ${taskArn.split('/').pop()} exited with code ${exitCode}; its last output:\n  ${output.join('\n  ')}`,
        );
      }
      void finish(
        local.stopping
          ? { exitCode, stopCode: 'UserInitiated', reason: 'Task stopped by the local launcher' }
          : { exitCode, stopCode: 'EssentialContainerExited', reason: 'Essential container in task exited' },
        cwd,
      );
    });
  }
}

/** Ends the task's whole process group, as a container's end ends everything in it. */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-(child.pid as number), 'SIGKILL');
  } catch {
    // Nothing left in it.
  }
}

/**
 * moto advances an ECS task one status per DescribeTasks (STOPPED after about four); this keeps tasks
 * RUNNING until StopTask, so a task lives as long as its process. The setting is moto-wide.
 * https://docs.getmoto.org/en/latest/docs/configuration/state_transition/models.html
 */
export async function holdMotoTasksRunning(motoUrl: string): Promise<void> {
  const res = await fetch(`${motoUrl}/moto-api/state-manager/set-transition`, {
    method: 'POST',
    body: JSON.stringify({
      model_name: 'ecs::task',
      transition: { progression: 'manual', times: 1_000_000 },
    }),
  });
  if (!res.ok) throw new Error(`moto refused the ECS task transition: ${res.status} ${await res.text()}`);
}
