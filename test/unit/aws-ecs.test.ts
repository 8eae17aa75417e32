import {
  ClientException,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
  type RegisterTaskDefinitionCommandInput,
  type TaskDefinition,
} from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { describeTaskDefinition, describeTasks, findOrRegisterTaskDefinition } from '../../src/aws/ecs';
import { AwsThrottledError, JobConfigurationError, TaskDefinitionRegistrationError } from '../../src/errors';

/** Paths ECS cannot reach with moto: conflicts, throttling, refusals. The happy paths run against moto. */
const ecsMock = mockClient(ECSClient);
const ecs = new ECSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });

const definition: RegisterTaskDefinitionCommandInput = {
  family: 'fam',
  containerDefinitions: [{ name: 'prefect', image: 'img' }],
  cpu: '1024',
  memory: '2048',
  requiresCompatibilities: ['FARGATE'],
  networkMode: 'awsvpc',
};
const arn = (revision: number) => `arn:aws:ecs:us-east-1:123456789012:task-definition/fam:${revision}`;
function registered(revision: number, image = 'img', status = 'ACTIVE'): TaskDefinition {
  return {
    ...definition,
    containerDefinitions: [{ name: 'prefect', image, essential: true, cpu: 0, environment: [] }],
    taskDefinitionArn: arn(revision),
    revision,
    status: status as TaskDefinition['status'],
    compatibilities: ['EC2', 'FARGATE'],
  } as TaskDefinition;
}
const notFound = () => new ClientException({ message: 'Unable to describe task definition.', $metadata: {} });
const conflict = () =>
  new ClientException({
    message: 'Too many concurrent attempts to create a new revision of the specified family.',
    $metadata: {},
  });
const noWait = { sleep: async () => {}, random: () => 0.5 };

beforeEach(() => ecsMock.reset());

describe('findOrRegisterTaskDefinition', () => {
  it('retries a concurrent-revision conflict, looking again before each attempt', async () => {
    ecsMock.on(DescribeTaskDefinitionCommand).rejects(notFound());
    ecsMock
      .on(RegisterTaskDefinitionCommand)
      .rejectsOnce(conflict())
      .rejectsOnce(conflict())
      .resolves({ taskDefinition: registered(1) });
    const slept: number[] = [];
    const result = await findOrRegisterTaskDefinition(ecs, definition, {
      autoDeregister: false,
      settleMs: 0,
      sleep: async (ms) => {
        slept.push(ms);
      },
      random: () => 1,
    });
    expect(result).toMatchObject({ arn: arn(1), registered: true, networkMode: 'awsvpc' });
    expect(ecsMock.commandCalls(RegisterTaskDefinitionCommand)).toHaveLength(3);
    // One look before the pause, one before each of the three attempts.
    expect(ecsMock.commandCalls(DescribeTaskDefinitionCommand)).toHaveLength(4);
    expect(slept).toEqual([1000, 2000]);
  });

  it('reuses the revision a concurrent launch registered meanwhile', async () => {
    ecsMock
      .on(DescribeTaskDefinitionCommand, { taskDefinition: 'fam', include: ['TAGS'] })
      .rejectsOnce(notFound())
      .rejectsOnce(notFound())
      .resolves({ taskDefinition: registered(1) });
    ecsMock.on(RegisterTaskDefinitionCommand).rejects(conflict());
    const result = await findOrRegisterTaskDefinition(ecs, definition, { autoDeregister: false, ...noWait });
    expect(result).toMatchObject({ arn: arn(1), registered: false });
    expect(ecsMock.commandCalls(RegisterTaskDefinitionCommand)).toHaveLength(1);
  });

  it('gives up after maxAttempts conflicts', async () => {
    ecsMock.on(DescribeTaskDefinitionCommand).rejects(notFound());
    ecsMock.on(RegisterTaskDefinitionCommand).rejects(conflict());
    await expect(
      findOrRegisterTaskDefinition(ecs, definition, { autoDeregister: false, maxAttempts: 3, ...noWait }),
    ).rejects.toThrow(TaskDefinitionRegistrationError);
    expect(ecsMock.commandCalls(RegisterTaskDefinitionCommand)).toHaveLength(3);
  });

  it('names a refused definition', async () => {
    ecsMock.on(DescribeTaskDefinitionCommand).rejects(notFound());
    ecsMock
      .on(RegisterTaskDefinitionCommand)
      .rejects(new ClientException({ message: "Invalid 'cpu' setting for task.", $metadata: {} }));
    await expect(
      findOrRegisterTaskDefinition(ecs, definition, { autoDeregister: false, ...noWait }),
    ).rejects.toMatchObject({
      name: TaskDefinitionRegistrationError.errorName,
      message:
        "ECS refused to register task definition family fam: ClientException: Invalid 'cpu' setting for task.",
    });
  });

  it('turns lasting throttling into AwsThrottledError', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    ecsMock.on(DescribeTaskDefinitionCommand).rejects(throttled);
    await expect(
      findOrRegisterTaskDefinition(ecs, definition, { autoDeregister: false, ...noWait }),
    ).rejects.toBeInstanceOf(AwsThrottledError);
  });

  it('looks back past an unequal latest revision and reuses the newest equal one', async () => {
    // aws-sdk-client-mock: a later matcher for the same command wins, so the catch-all comes first.
    ecsMock.on(DescribeTaskDefinitionCommand).rejects(notFound());
    ecsMock
      .on(DescribeTaskDefinitionCommand, { taskDefinition: 'fam', include: ['TAGS'] })
      .resolves({ taskDefinition: registered(9, 'other') });
    ecsMock
      .on(DescribeTaskDefinitionCommand, { taskDefinition: 'fam:8', include: ['TAGS'] })
      .resolves({ taskDefinition: registered(8, 'x') });
    ecsMock
      .on(DescribeTaskDefinitionCommand, { taskDefinition: 'fam:7', include: ['TAGS'] })
      .resolves({ taskDefinition: registered(7) });
    ecsMock
      .on(DescribeTaskDefinitionCommand, { taskDefinition: 'fam:6', include: ['TAGS'] })
      .resolves({ taskDefinition: registered(6) });
    const result = await findOrRegisterTaskDefinition(ecs, definition, {
      autoDeregister: false,
      lookBack: 3,
      ...noWait,
    });
    expect(result).toMatchObject({ arn: arn(7), registered: false });
    expect(ecsMock.commandCalls(RegisterTaskDefinitionCommand)).toHaveLength(0);
    const refs = ecsMock
      .commandCalls(DescribeTaskDefinitionCommand)
      .map((c) => c.args[0].input.taskDefinition);
    expect(refs).toEqual(['fam', 'fam:8', 'fam:7', 'fam:6']);
  });

  it('skips inactive revisions', async () => {
    ecsMock.on(DescribeTaskDefinitionCommand, { taskDefinition: 'fam', include: ['TAGS'] }).resolves({
      taskDefinition: registered(2, 'img', 'INACTIVE'),
    });
    ecsMock.on(DescribeTaskDefinitionCommand, { taskDefinition: 'fam:1', include: ['TAGS'] }).resolves({
      taskDefinition: registered(1, 'img', 'INACTIVE'),
    });
    ecsMock.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: registered(3) });
    const result = await findOrRegisterTaskDefinition(ecs, definition, { autoDeregister: false, ...noWait });
    expect(result).toMatchObject({ arn: arn(3), registered: true });
  });

  it('tags a revision it registers for auto-deregistration', async () => {
    ecsMock.on(DescribeTaskDefinitionCommand).rejects(notFound());
    ecsMock.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: registered(1) });
    await findOrRegisterTaskDefinition(ecs, definition, { autoDeregister: true, ...noWait });
    expect(ecsMock.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input.tags).toEqual([
      { key: 'prefect.io/degregister-task-definition', value: 'true' },
    ]);
  });
});

describe('describeTaskDefinition', () => {
  it('refuses an unknown definition as a configuration error', async () => {
    ecsMock.on(DescribeTaskDefinitionCommand).rejects(notFound());
    await expect(describeTaskDefinition(ecs, 'nope:1')).rejects.toThrow(
      new JobConfigurationError(
        "Task definition 'nope:1' not found. Check `task_definition_arn` and that it is in this region.",
      ),
    );
  });
});

describe('describeTasks', () => {
  const taskArn = (i: number) => `arn:aws:ecs:us-east-1:123456789012:task/c/${i}`;

  it('asks for 100 tasks per call and reports the ones ECS does not return as MISSING', async () => {
    ecsMock.on(DescribeTasksCommand).callsFake((input: { tasks: string[] }) => ({
      // Every third task is unknown: real ECS lists it under failures, moto leaves it out; both mean missing.
      tasks: input.tasks.filter((_, i) => i % 3).map((arn) => ({ taskArn: arn, lastStatus: 'RUNNING' })),
      failures: input.tasks.filter((_, i) => i % 3 === 0 && i % 2).map((arn) => ({ arn, reason: 'MISSING' })),
    }));
    const arns = Array.from({ length: 250 }, (_, i) => taskArn(i));
    const found = await describeTasks(ecs, 'c', arns);
    expect(ecsMock.commandCalls(DescribeTasksCommand).map((c) => c.args[0].input.tasks?.length)).toEqual([
      100, 100, 50,
    ]);
    expect(found.size).toBe(250);
    expect(found.get(taskArn(0))).toBe('MISSING');
    expect(found.get(taskArn(3))).toBe('MISSING');
    expect(found.get(taskArn(1))).toEqual({ taskArn: taskArn(1), lastStatus: 'RUNNING' });
  });
});
