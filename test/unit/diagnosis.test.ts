import type { Task } from '@aws-sdk/client-ecs';
import { diagnoseStoppedTask, flowContainerName } from '../../src/launch/diagnosis';

const flowOverrides = { containerOverrides: [{ name: 'flow', command: ['prefect', 'flow-run', 'execute'] }] };

function stopped(extra: Partial<Task>): Task {
  return { lastStatus: 'STOPPED', overrides: flowOverrides, ...extra };
}

describe('diagnoseStoppedTask', () => {
  it('finds the flow container by its command override, whatever it is called', () => {
    expect(flowContainerName(stopped({}))).toBe('flow');
    expect(flowContainerName({})).toBe('prefect');
  });

  it('leaves a zero exit to the engine', () => {
    const d = diagnoseStoppedTask(
      stopped({ stopCode: 'EssentialContainerExited', containers: [{ name: 'flow', exitCode: 0 }] }),
    );
    expect(d.crashed).toBe(false);
  });

  it('crashes on a non-zero exit of the flow container with the worker message', () => {
    const d = diagnoseStoppedTask(
      stopped({
        stopCode: 'EssentialContainerExited',
        stoppedReason: 'Essential container in task exited',
        containers: [
          { name: 'flow', exitCode: 1 },
          { name: 'sidecar', exitCode: 0 },
        ],
      }),
    );
    expect(d).toMatchObject({
      crashed: true,
      failedToStart: false,
      category: 'user-code',
      message:
        "The following containers stopped with a non-zero exit code: ['flow']: the flow container 'flow' exited with code 1; read the container's logs for the error",
    });
    expect(d.explanation).toContain("Containers: 'flow' exited with code 1, 'sidecar' exited with code 0.");
  });

  it('ignores a failing sidecar when the flow container exited 0 (the observer checks every container)', () => {
    const d = diagnoseStoppedTask(
      stopped({
        containers: [
          { name: 'flow', exitCode: 0 },
          { name: 'log_router', exitCode: 137 },
        ],
      }),
    );
    expect(d.crashed).toBe(false);
  });

  it('explains exit 137 as out of memory, or a stop past its timeout when ECS gave no OutOfMemory reason', () => {
    const d = diagnoseStoppedTask(stopped({ containers: [{ name: 'flow', exitCode: 137 }] }));
    expect(d).toMatchObject({ crashed: true, category: 'user-code' });
    expect(d.message).toContain('SIGKILL: out of memory, or a stop that outlasted the stop timeout');
  });

  it('blames no one it cannot name: a stop without exit codes or a known reason is unknown', () => {
    const d = diagnoseStoppedTask(
      stopped({ stoppedReason: 'Essential container in task exited', containers: [{ name: 'flow' }] }),
    );
    expect(d).toMatchObject({ crashed: true, category: 'unknown' });
    expect(d.message).toBe(
      'ECS task stopped: ECS stopped the task before its containers exited (Essential container in task exited); see the stopped task in the ECS console',
    );
    expect(d.explanation).not.toMatch(/infrastructure/i);
  });

  it('reads a stop reason that names the cause before the exit code it left', () => {
    const d = diagnoseStoppedTask(
      stopped({
        stopCode: 'UserInitiated',
        stoppedReason: 'Task stopped by user',
        containers: [{ name: 'flow', exitCode: 143 }],
      }),
    );
    expect(d).toMatchObject({ crashed: true, category: 'deliberate', severity: 'warning' });
    expect(d.message).toMatch(
      /^ECS task stopped: someone stopped the task \(StopTask: Task stopped by user\)/,
    );
  });

  it('names a sidecar whose exit stopped the flow', () => {
    const d = diagnoseStoppedTask(
      stopped({
        stopCode: 'EssentialContainerExited',
        containers: [
          { name: 'flow', lastStatus: 'STOPPED' },
          { name: 'log_router', exitCode: 1 },
        ],
      }),
    );
    expect(d).toMatchObject({ crashed: true, category: 'configuration' });
    expect(d.message).toBe(
      "ECS task stopped: the sidecar 'log_router' exited with code 1; read the logs of 'log_router', or mark it not essential",
    );
  });

  it('reports an image pull failure as a failed submission', () => {
    const reason = 'CannotPullContainerError: pull image manifest has been retried 5 time(s): not found';
    const d = diagnoseStoppedTask(
      stopped({ stopCode: 'TaskFailedToStart', stoppedReason: reason, containers: [{ name: 'flow' }] }),
    );
    expect(d).toMatchObject({
      crashed: true,
      failedToStart: true,
      category: 'configuration',
      message: `Failed to submit flow run to infrastructure: TaskFailedToStart: The image does not exist; check the \`image\` job variable and that the tag is pushed (${reason})`,
    });
    expect(d.explanation).toMatch(/^Container image pull failed/);
  });

  it('reports no capacity with the capacity provider hint', () => {
    const d = diagnoseStoppedTask(
      stopped({
        stopCode: 'TaskFailedToStart',
        stoppedReason: 'Capacity is unavailable at this time.',
        containers: [],
      }),
    );
    expect(d).toMatchObject({ failedToStart: true, category: 'capacity' });
    expect(d.explanation).toContain('ECS said: Capacity is unavailable at this time.');
  });

  it('names a Spot interruption', () => {
    const d = diagnoseStoppedTask(
      stopped({
        stopCode: 'SpotInterruption',
        stoppedReason: 'Your Spot Task was interrupted.',
        containers: [{ name: 'flow', exitCode: 143 }],
      }),
    );
    expect(d).toMatchObject({
      crashed: true,
      category: 'infrastructure',
      message:
        'ECS task stopped: Spot capacity was reclaimed (Fargate Spot interruption); the run can be retried on FARGATE',
    });
    expect(d.explanation).toMatch(/^Task stopped by AWS infrastructure: Spot capacity was reclaimed/);
  });

  it('recognises a Spot interruption without a stop code, and strips the prefix ECS already put on a reason', () => {
    const spot = diagnoseStoppedTask(
      stopped({
        capacityProviderName: 'FARGATE_SPOT',
        stoppedReason: 'Your Spot Task was interrupted.',
        containers: [{ name: 'flow', exitCode: 2 }],
      }),
    );
    expect(spot.category).toBe('infrastructure');
    const memory = diagnoseStoppedTask(
      stopped({
        stopCode: 'TaskFailedToStart',
        stoppedReason: 'TaskFailedToStart: RESOURCE:MEMORY',
        containers: [],
      }),
    );
    expect(memory.message).toMatch(
      /^Failed to submit flow run to infrastructure: TaskFailedToStart: No capacity/,
    );
    expect(memory.message).toContain('(RESOURCE:MEMORY)');
    expect(memory.message).not.toContain('TaskFailedToStart: TaskFailedToStart');
  });
});
