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
      message: "The following containers stopped with a non-zero exit code: ['flow']",
    });
    expect(d.explanation).toContain("Container 'flow' exited with code 1.");
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

  it('explains exit 137 as out of memory', () => {
    const d = diagnoseStoppedTask(stopped({ containers: [{ name: 'flow', exitCode: 137 }] }));
    expect(d.crashed).toBe(true);
    expect(d.explanation).toContain('out of memory');
  });

  it('treats a missing exit code as terminated by infrastructure', () => {
    const d = diagnoseStoppedTask(
      stopped({
        stopCode: 'UserInitiated',
        stoppedReason: 'Scaling activity',
        containers: [{ name: 'flow' }],
      }),
    );
    expect(d.crashed).toBe(true);
    expect(d.explanation).toMatch(/^Task terminated by infrastructure: Scaling activity/);
  });

  it('reports an image pull failure as a failed submission', () => {
    const reason = 'CannotPullContainerError: pull image manifest has been retried 5 time(s): not found';
    const d = diagnoseStoppedTask(
      stopped({ stopCode: 'TaskFailedToStart', stoppedReason: reason, containers: [{ name: 'flow' }] }),
    );
    expect(d).toMatchObject({
      crashed: true,
      failedToStart: true,
      message: `Failed to submit flow run to infrastructure: TaskFailedToStart: ${reason}`,
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
    expect(d.failedToStart).toBe(true);
    expect(d.explanation).toContain('The capacity provider could not place the task.');
  });

  it('names a Spot interruption', () => {
    const d = diagnoseStoppedTask(
      stopped({
        stopCode: 'SpotInterruption',
        stoppedReason: 'Your Spot Task was interrupted.',
        containers: [{ name: 'flow', exitCode: 143 }],
      }),
    );
    expect(d.crashed).toBe(true);
    expect(d.explanation).toMatch(/^Fargate Spot interruption/);
  });
});
