import fs from 'node:fs';
import path from 'node:path';
import type { RunTaskCommandInput } from '@aws-sdk/client-ecs';
import { JobConfigurationError } from '../../src/errors';
import {
  MAX_OVERRIDES_CHARACTERS,
  RUN_TASK_SHAPES,
  type RunTaskShape,
  STEP_FUNCTIONS_RUN_TASK_FIELDS,
  toStepFunctionsRunTask,
} from '../../src/launch/run-task-contract';
import { type EcsTaskApi, runTaskSync, StatesError } from '../../src/local/run-task-sync';

/**
 * Every RunTask request the renderer produces for the golden cases (test/fixtures/ecs-request) must reach
 * Step Functions only through fields its ECS integration takes; the others are dropped or refused by name.
 * What each case's RunTask state sends is kept beside it in step-functions.json (`UPDATE_GOLDEN=1`
 * rewrites them; review the diff).
 */
const goldenRoot = path.join(__dirname, '..', 'fixtures', 'ecs-request');
const update = process.env.UPDATE_GOLDEN === '1';
const golden = fs
  .readdirSync(goldenRoot)
  .filter((name) => fs.existsSync(path.join(goldenRoot, name, 'expected.json')))
  .map((name) => {
    const expected = JSON.parse(fs.readFileSync(path.join(goldenRoot, name, 'expected.json'), 'utf8'));
    return [name, expected.runTaskRequest as RunTaskCommandInput | undefined] as const;
  })
  .filter((entry): entry is readonly [string, RunTaskCommandInput] => entry[1] !== undefined);

const group = 'prefect-flow-run:7b4a3c1e-0000-4000-8000-000000000001';

/** The golden cases' shapes: each shape the renderer can produce is covered by at least one case. */
const expectedShapes: Record<string, RunTaskShape> = {
  defaults: 'Fargate',
  'fargate-spot': 'FargateCapacityProvider',
  'capacity-provider-strategy': 'FargateCapacityProvider',
  'ec2-bridge': 'Ec2',
  external: 'Ec2',
  'ec2-without-launch-type': 'Ec2ClusterDefault',
};

const base: RunTaskCommandInput = {
  cluster: 'c',
  taskDefinition: 'arn:aws:ecs:us-east-1:123456789012:task-definition/f:1',
  group,
  launchType: 'FARGATE',
  networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-1'] } },
  overrides: { containerOverrides: [{ name: 'prefect', command: ['prefect', 'flow-run', 'execute'] }] },
};

function refusal(request: Record<string, unknown>): string {
  try {
    toStepFunctionsRunTask(request as unknown as RunTaskCommandInput);
  } catch (err) {
    expect(err).toBeInstanceOf(JobConfigurationError);
    return (err as Error).message;
  }
  throw new Error('expected a JobConfigurationError');
}

describe('the RunTask request Step Functions is sent', () => {
  it.each(golden)('golden case %s: only the fields of its shape, all on the documented list', (name, req) => {
    const { shape, parameters, droppedTags } = toStepFunctionsRunTask({ ...req, group });
    const goldenPath = path.join(goldenRoot, name, 'step-functions.json');
    if (update) fs.writeFileSync(goldenPath, `${JSON.stringify({ shape, parameters }, null, 2)}\n`);
    expect({ shape, parameters }).toEqual(JSON.parse(fs.readFileSync(goldenPath, 'utf8')));
    expect(Object.keys(parameters).sort()).toEqual([...RUN_TASK_SHAPES[shape]].sort());
    for (const field of Object.keys(parameters)) expect(STEP_FUNCTIONS_RUN_TASK_FIELDS).toContain(field);
    for (const value of Object.values(parameters)) expect(value).not.toBeUndefined();
    expect(droppedTags).toEqual(req.tags ?? []);
    if (expectedShapes[name]) expect(shape).toBe(expectedShapes[name]);
  });

  it('covers every shape with the golden cases or the fates below', () => {
    const seen = new Set(golden.map(([, req]) => toStepFunctionsRunTask({ ...req, group }).shape));
    const awsvpc = { awsvpcConfiguration: { subnets: ['subnet-1'] } };
    const ec2 = { ...base, launchType: undefined, networkConfiguration: undefined };
    for (const req of [
      { ...ec2, launchType: 'EC2' as const, networkConfiguration: awsvpc },
      { ...ec2, capacityProviderStrategy: [{ capacityProvider: 'my-asg' }] },
      { ...ec2, capacityProviderStrategy: [{ capacityProvider: 'my-asg' }], networkConfiguration: awsvpc },
      { ...ec2, networkConfiguration: awsvpc },
    ]) {
      seen.add(toStepFunctionsRunTask(req).shape);
    }
    expect([...seen].sort()).toEqual(Object.keys(RUN_TASK_SHAPES).sort());
  });

  it('fills optional fields with their documented neutral values', () => {
    const fargate = toStepFunctionsRunTask({ ...base, cluster: undefined }).parameters;
    expect(fargate).toMatchObject({
      Cluster: 'default',
      PlatformVersion: 'LATEST',
      PropagateTags: 'NONE',
      EnableExecuteCommand: false,
    });
    const ec2 = toStepFunctionsRunTask({ ...base, launchType: 'EC2', networkConfiguration: undefined });
    expect(ec2.shape).toBe('Ec2');
    expect(ec2.parameters).toMatchObject({ PlacementConstraints: [], PlacementStrategy: [] });
  });

  it('keeps what the job sets for the optional fields', () => {
    const { parameters } = toStepFunctionsRunTask({
      ...base,
      platformVersion: '1.4.0',
      propagateTags: 'TASK_DEFINITION',
      enableExecuteCommand: true,
    });
    expect(parameters).toMatchObject({
      PlatformVersion: '1.4.0',
      PropagateTags: 'TASK_DEFINITION',
      EnableExecuteCommand: true,
    });
  });

  it('drops what means the same as leaving it out, and reports the tags', () => {
    const { parameters, droppedTags } = toStepFunctionsRunTask({
      ...base,
      count: 1,
      startedBy: 'me',
      enableECSManagedTags: false,
      tags: [{ key: 'team', value: 'data' }],
    });
    expect(Object.keys(parameters)).not.toEqual(expect.arrayContaining(['Tags']));
    expect(Object.keys(parameters).sort()).toEqual([...RUN_TASK_SHAPES.Fargate].sort());
    expect(droppedTags).toEqual([{ key: 'team', value: 'data' }]);
  });

  it.each([
    ['count', { count: 2 }],
    ['enableECSManagedTags', { enableECSManagedTags: true }],
    ['clientToken', { clientToken: 'abc' }],
    ['referenceId', { referenceId: 'abc' }],
    ['volumeConfigurations', { volumeConfigurations: [{ name: 'data' }] }],
    ['availabilityZoneRebalancing', { availabilityZoneRebalancing: 'ENABLED' }],
    ['overrides.ephemeral', { overrides: { ephemeral: 1 } }],
    [
      'overrides.containerOverrides[0].image',
      { overrides: { containerOverrides: [{ name: 'p', image: 'x' }] } },
    ],
    ['placementConstraints', { placementConstraints: [{ type: 'distinctInstance' }] }],
    ['platformVersion', { launchType: 'EC2', networkConfiguration: undefined, platformVersion: '1.4.0' }],
    [
      'capacityProviderStrategy',
      {
        launchType: undefined,
        capacityProviderStrategy: [{ capacityProvider: 'FARGATE' }, { capacityProvider: 'asg' }],
      },
    ],
    ['networkConfiguration', { networkConfiguration: undefined }],
  ])('refuses task_run_request.%s, naming the template key', (key, change) => {
    const message = refusal({ ...base, ...change });
    expect(message).toContain(`task_run_request.${key}`);
    expect(message).toContain('task_run_request');
  });

  it("refuses overrides over ECS's 8,192 characters, naming env and command", () => {
    const environment = [{ name: 'BIG', value: 'x'.repeat(MAX_OVERRIDES_CHARACTERS) }];
    const message = refusal({
      ...base,
      overrides: { containerOverrides: [{ name: 'prefect', environment }] },
    });
    expect(message).toContain('task_run_request.overrides');
    expect(message).toContain('`env`');
  });
});

describe('the offline ecs:runTask.sync, as strict as Step Functions', () => {
  const ecs: EcsTaskApi = {
    runTask: async () => ({
      tasks: [{ taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/c/t' }],
      $metadata: {},
    }),
    describeTask: async (_c, taskArn) => ({ taskArn, lastStatus: 'STOPPED', containers: [{ exitCode: 0 }] }),
  };
  const valid = toStepFunctionsRunTask(base).parameters;

  async function failure(request: unknown): Promise<StatesError> {
    const err = await runTaskSync(ecs, request, { pollIntervalMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StatesError);
    return err as StatesError;
  }

  it('accepts every request the launcher makes', async () => {
    await expect(runTaskSync(ecs, valid, { pollIntervalMs: 1 })).resolves.toMatchObject({
      LastStatus: 'STOPPED',
    });
  });

  it.each(['Tags', 'Count', 'ClientToken', 'StartedBy', 'VolumeConfigurations', 'EnableECSManagedTags'])(
    'fails on %s as AWS does: States.Runtime, which no Retry or Catch handles',
    async (field) => {
      const err = await failure({ ...valid, [field]: field === 'Count' ? 1 : 'x' });
      expect(err.name).toBe('States.Runtime');
      expect(err.message).toBe(`The field "${field}" is not supported by Step Functions`);
      expect(err.isCatchable).toBe(false);
      expect(err.isRetryable).toBe(false);
    },
  );

  it('fails a request over 256 KiB with States.DataLimitExceeded, uncatchable', async () => {
    const err = await failure({ ...valid, Group: 'x'.repeat(262_144) });
    expect(err.name).toBe('States.DataLimitExceeded');
    expect(err.isCatchable).toBe(false);
  });

  it("refuses overrides over ECS's limit as ECS does: a catchable ECS.InvalidParameterException", async () => {
    const environment = [{ Name: 'BIG', Value: 'x'.repeat(MAX_OVERRIDES_CHARACTERS) }];
    const err = await failure({
      ...valid,
      Overrides: { ContainerOverrides: [{ Name: 'prefect', Environment: environment }] },
    });
    expect(err.name).toBe('ECS.InvalidParameterException');
    expect(err.isCatchable).toBe(true);
  });
});
