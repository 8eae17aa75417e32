import type { RunTaskCommandInput, RunTaskCommandOutput, Task } from '@aws-sdk/client-ecs';
import {
  RUN_TASK_SHAPES,
  type RunTaskShape,
  toStepFunctionsRunTask,
} from '../../src/launch/run-task-contract';
import { LocalLaunchMachine } from '../../src/local/launch-machine';
import type { EcsTaskApi } from '../../src/local/run-task-sync';

/** An ECS API whose answers each test scripts: a sequence of RunTask outcomes and the stopped task. */
function scriptedEcs(runTask: (RunTaskCommandOutput | Error)[], stopped: Partial<Task> = {}) {
  const calls: RunTaskCommandInput[] = [];
  const api: EcsTaskApi = {
    async runTask(request) {
      calls.push(request);
      const next = runTask[Math.min(calls.length - 1, runTask.length - 1)];
      if (next instanceof Error) throw next;
      return next as RunTaskCommandOutput;
    },
    async describeTask(_cluster, taskArn) {
      return {
        taskArn,
        lastStatus: 'STOPPED',
        containers: [{ name: 'prefect', exitCode: 0 }],
        overrides: { containerOverrides: [{ name: 'prefect', command: ['prefect', 'flow-run', 'execute'] }] },
        ...stopped,
      };
    },
  };
  return { api, calls };
}

function named(name: string, message = name): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}

const started = {
  tasks: [{ taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/c/abc' }],
  failures: [],
  $metadata: {},
};
const request = {
  cluster: 'c',
  taskDefinition: 'arn:aws:ecs:us-east-1:123456789012:task-definition/f:1',
  group: 'g',
  launchType: 'FARGATE',
  networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-1'], assignPublicIp: 'ENABLED' } },
  overrides: { containerOverrides: [{ name: 'prefect', command: ['prefect', 'flow-run', 'execute'] }] },
} as const;
/** Prepare's output for `request`, as src/launch/prepare.ts makes it. */
const prepared = (() => {
  const { shape, parameters } = toStepFunctionsRunTask(structuredClone(request) as never);
  return { shape, runTask: parameters, taskDefinitionCached: false };
})();

function machine(ecs: EcsTaskApi, prepare: (i: unknown) => Promise<unknown> = async () => prepared) {
  const crashes: unknown[] = [];
  const m = new LocalLaunchMachine(
    {
      prepare,
      crash: async (input) => {
        crashes.push(input);
        return { reported: true };
      },
      ecs,
    },
    { retryIntervalMs: 1, pollIntervalMs: 1 },
  );
  return { m, crashes };
}

/** The poll's input: the run due in `delayMs`, its RunTask `leadMs` before that. */
const input = (delayMs = 0, leadMs = 0) => {
  const scheduled = Date.now() + delayMs;
  return {
    flowRunId: '7b4a3c1e-0000-4000-8000-000000000001',
    scheduledStartTime: new Date(scheduled).toISOString(),
    startAt: new Date(scheduled - leadMs).toISOString(),
  };
};

describe('launch state machine, executed locally', () => {
  it('runs the prepared request once, with StartedBy overwritten as on AWS, and succeeds', async () => {
    const ecs = scriptedEcs([started]);
    const { m, crashes } = machine(ecs.api);
    const result = await m.start('run-1', input()).result;
    expect(result.status).toBe('SUCCEEDED');
    // Prepare, WaitForScheduledStart, ChooseRunTask, RunTaskFargate, Done: what Step Functions bills.
    expect(result.transitions).toBe(5);
    expect(ecs.calls).toEqual([
      {
        ...request,
        platformVersion: 'LATEST',
        propagateTags: 'NONE',
        enableExecuteCommand: false,
        startedBy: 'AWS Step Functions',
      },
    ]);
    expect(crashes).toEqual([]);
  });

  it('does not start the task before the scheduled start time', async () => {
    const ecs = scriptedEcs([started]);
    const { m } = machine(ecs.api);
    const scheduled = input(1200);
    let ranAt = 0;
    const original = ecs.api.runTask;
    ecs.api.runTask = (r) => {
      ranAt = Date.now();
      return original(r);
    };
    await m.start('run-2', scheduled).result;
    expect(ranAt).toBeGreaterThanOrEqual(new Date(scheduled.scheduledStartTime).getTime());
  });

  it('starts the task its start lead before the scheduled time, and not before', async () => {
    const ecs = scriptedEcs([started]);
    const { m } = machine(ecs.api);
    const scheduled = input(2500, 1500);
    let ranAt = 0;
    const original = ecs.api.runTask;
    ecs.api.runTask = (r) => {
      ranAt = Date.now();
      return original(r);
    };
    await m.start('run-lead', scheduled).result;
    expect(ranAt).toBeGreaterThanOrEqual(new Date(scheduled.startAt).getTime());
    expect(ranAt).toBeLessThan(new Date(scheduled.scheduledStartTime).getTime());
  });

  it('retries throttling and capacity failures, then crashes the run', async () => {
    const ecs = scriptedEcs([
      named('ThrottlingException', 'Rate exceeded'),
      { tasks: [], failures: [{ reason: 'Capacity is unavailable at this time.' }], $metadata: {} },
    ]);
    const { m, crashes } = machine(ecs.api);
    const result = await m.start('run-3', input()).result;
    expect(result.status).toBe('FAILED');
    expect(ecs.calls).toHaveLength(5);
    // Prepare, WaitForScheduledStart, ChooseRunTask, RunTaskFargate and its 4 retries, RunTaskFailed, Crash,
    // Failed: each entered state and each retry is a transition.
    expect(result.transitions).toBe(11);
    expect(crashes).toHaveLength(1);
    expect(crashes[0]).toMatchObject({ error: { Error: 'AmazonECS.Unknown' } });
  });

  it('never retries a task that started and failed, so one flow run never gets two tasks', async () => {
    const ecs = scriptedEcs([started], {
      stopCode: 'TaskFailedToStart',
      stoppedReason: 'CannotPullContainerError',
    });
    const { m, crashes } = machine(ecs.api);
    const result = await m.start('run-4', input()).result;
    expect(result.status).toBe('FAILED');
    expect(ecs.calls).toHaveLength(1);
    expect(crashes[0]).toMatchObject({ error: { Error: 'States.TaskFailed' } });
  });

  it('does not retry a cluster that does not exist', async () => {
    const ecs = scriptedEcs([named('ClusterNotFoundException', 'Cluster not found.')]);
    const { m, crashes } = machine(ecs.api);
    await m.start('run-5', input()).result;
    expect(ecs.calls).toHaveLength(1);
    expect(crashes[0]).toMatchObject({
      error: { Error: 'ECS.ClusterNotFoundException', Cause: 'Cluster not found.' },
    });
  });

  it('crashes the run when Prepare fails, without running a task', async () => {
    const ecs = scriptedEcs([started]);
    const { m, crashes } = machine(ecs.api, async () => {
      throw named('JobConfigurationError', 'cpu must be an integer');
    });
    const result = await m.start('run-6', input()).result;
    expect(result.status).toBe('FAILED');
    expect(ecs.calls).toHaveLength(0);
    expect(crashes[0]).toMatchObject({ error: { Error: 'JobConfigurationError' } });
  });

  it('ends quietly when the run left Pending before it was prepared', async () => {
    const ecs = scriptedEcs([started]);
    const { m, crashes } = machine(ecs.api, async () => {
      throw named('FlowRunNotPendingError', 'flow run is Cancelled');
    });
    const result = await m.start('run-7', input()).result;
    expect(result.status).toBe('SUCCEEDED');
    expect(ecs.calls).toHaveLength(0);
    expect(crashes).toHaveLength(0);
  });

  it('retries a Prefect outage in Prepare', async () => {
    const ecs = scriptedEcs([started]);
    let attempts = 0;
    const { m } = machine(ecs.api, async () => {
      attempts += 1;
      if (attempts < 3) throw named('PrefectUnavailableError', 'connect ECONNREFUSED');
      return prepared;
    });
    expect((await m.start('run-8', input()).result).status).toBe('SUCCEEDED');
    expect(attempts).toBe(3);
  });

  it('stops waiting when the execution is aborted', async () => {
    const ecs = scriptedEcs([started]);
    const { m } = machine(ecs.api);
    const running = m.start('run-9', input(60_000));
    setTimeout(() => running.abort(), 50);
    expect((await running.result).status).toBe('ABORTED');
    expect(ecs.calls).toHaveLength(0);
  });

  it.each(Object.keys(RUN_TASK_SHAPES) as RunTaskShape[])(
    'sends a %s request through its own RunTask state, with exactly its fields',
    async (shape) => {
      const ecs = scriptedEcs([started]);
      const runTask = Object.fromEntries(RUN_TASK_SHAPES[shape].map((field) => [field, `${field}-value`]));
      const { m, crashes } = machine(ecs.api, async () => ({ shape, runTask }));
      expect((await m.start(`shape-${shape}`, input()).result).status).toBe('SUCCEEDED');
      expect(crashes).toEqual([]);
      const sent = Object.keys(ecs.calls[0] ?? {}).filter((k) => k !== 'startedBy');
      expect(sent.sort()).toEqual(
        RUN_TASK_SHAPES[shape].map((f) => f.charAt(0).toLowerCase() + f.slice(1)).sort(),
      );
    },
  );

  it('crashes the run, naming the cause, when Prepare chose a shape the definition does not know', async () => {
    const ecs = scriptedEcs([started]);
    const { m, crashes } = machine(ecs.api, async () => ({ ...prepared, shape: 'Lambda' }));
    expect((await m.start('unknown-shape', input()).result).status).toBe('FAILED');
    expect(ecs.calls).toHaveLength(0);
    expect(crashes[0]).toMatchObject({ error: { Error: 'UnknownRunTaskShape' } });
    expect(JSON.stringify(crashes[0])).toContain('request shape Lambda');
  });

  // What no Catch handles on AWS: the execution fails and the Crash state never runs; the sweep ends the run.
  it('fails the execution without Crash when a shape lacks one of its fields (States.Runtime)', async () => {
    const ecs = scriptedEcs([started]);
    const { PlatformVersion: _, ...runTask } = prepared.runTask;
    const { m, crashes } = machine(ecs.api, async () => ({ ...prepared, runTask }));
    const result = await m.start('missing-field', input()).result;
    expect(result).toMatchObject({ status: 'FAILED', error: 'States.Runtime' });
    expect(result.cause).toContain('$.prepared.runTask.PlatformVersion');
    expect(ecs.calls).toHaveLength(0);
    expect(crashes).toEqual([]);
  });

  it('fails the execution without Crash when a state result is over 256 KiB (States.DataLimitExceeded)', async () => {
    const ecs = scriptedEcs([started]);
    const { m, crashes } = machine(ecs.api, async () => ({ ...prepared, padding: 'x'.repeat(262_144) }));
    const result = await m.start('large-prepare', input()).result;
    expect(result).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(ecs.calls).toHaveLength(0);
    expect(crashes).toEqual([]);
  });

  it('fails the execution without Crash when the .sync result is over 256 KiB', async () => {
    const huge = [{ name: 'prefect', exitCode: 0, reason: 'x'.repeat(262_144) }];
    const ecs = scriptedEcs([started], { containers: huge });
    const { m, crashes } = machine(ecs.api);
    const result = await m.start('large-result', input()).result;
    expect(result).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(ecs.calls).toHaveLength(1);
    expect(crashes).toEqual([]);
  });

  describe('a cached task definition revision found inactive', () => {
    // ECS's answer to RunTask with a deregistered revision (DefangLabs/defang#775 quotes it from AWS).
    const inactive = () => named('InvalidParameterException', 'TaskDefinition is inactive');

    function preparing(cached: boolean) {
      const inputs: Record<string, unknown>[] = [];
      const prepare = async (i: unknown) => {
        inputs.push(i as Record<string, unknown>);
        return { ...prepared, taskDefinitionCached: cached && inputs.length === 1 };
      };
      return { inputs, prepare };
    }

    it('prepares once more without the cache and runs the task', async () => {
      const ecs = scriptedEcs([inactive(), started]);
      const p = preparing(true);
      const { m, crashes } = machine(ecs.api, p.prepare);
      const result = await m.start('inactive-1', { ...input(), snapshot: { readAt: 'x' } }).result;
      expect(result.status).toBe('SUCCEEDED');
      expect(ecs.calls).toHaveLength(2);
      expect(p.inputs).toHaveLength(2);
      expect(p.inputs[0]).toMatchObject({ snapshot: { readAt: 'x' } });
      expect(p.inputs[0]).not.toHaveProperty('refreshTaskDefinition');
      expect(p.inputs[1]).toMatchObject({ refreshTaskDefinition: true, snapshot: { readAt: 'x' } });
      expect(crashes).toEqual([]);
    });

    it('crashes the run when the refreshed revision fails too', async () => {
      const ecs = scriptedEcs([inactive()]);
      const p = preparing(true);
      const { m, crashes } = machine(ecs.api, p.prepare);
      const result = await m.start('inactive-2', input()).result;
      expect(result.status).toBe('FAILED');
      expect(p.inputs).toHaveLength(2);
      expect(ecs.calls).toHaveLength(2);
      expect(crashes).toHaveLength(1);
      expect(crashes[0]).toMatchObject({ error: { Cause: 'TaskDefinition is inactive' } });
    });

    it('crashes at once when the revision was not from the cache', async () => {
      const ecs = scriptedEcs([inactive()]);
      const p = preparing(false);
      const { m, crashes } = machine(ecs.api, p.prepare);
      await m.start('inactive-3', input()).result;
      expect(p.inputs).toHaveLength(1);
      expect(ecs.calls).toHaveLength(1);
      expect(crashes).toHaveLength(1);
    });

    it('crashes at once on any other RunTask failure of a cached revision', async () => {
      const ecs = scriptedEcs([named('ClusterNotFoundException', 'Cluster not found.')]);
      const p = preparing(true);
      const { m, crashes } = machine(ecs.api, p.prepare);
      await m.start('inactive-4', input()).result;
      expect(p.inputs).toHaveLength(1);
      expect(crashes).toHaveLength(1);
    });
  });
});
