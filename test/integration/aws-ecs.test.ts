import {
  DeregisterTaskDefinitionCommand,
  type ECSClient,
  ListTagsForResourceCommand,
  ListTaskDefinitionsCommand,
  RegisterTaskDefinitionCommand,
  type RegisterTaskDefinitionCommandInput,
} from '@aws-sdk/client-ecs';
import { createEcsClient, describeTaskDefinition, findOrRegisterTaskDefinition } from '../../src/aws/ecs';
import { JobConfigurationError } from '../../src/errors';
import { buildTaskDefinition } from '../../src/render/task-definition';
import type { EcsJobConfiguration } from '../../src/render/types';
import { awsTestConfig, uniqueName } from '../harness/env';

// Test files share one moto server and run in parallel, so nothing here resets moto: every test uses
// families of its own.
let ecs: ECSClient;
beforeAll(() => {
  ecs = createEcsClient(awsTestConfig());
});

const fast = { settleMs: 0 };

/** A definition exactly as the renderer builds it from the default template (Fargate, no container memory). */
function definition(
  family: string,
  image = 'prefecthq/prefect:3-latest',
): RegisterTaskDefinitionCommandInput {
  const config: EcsJobConfiguration = {
    command: 'prefect flow-run execute',
    env: {},
    labels: {},
    name: null,
    task_definition: {
      containerDefinitions: [
        {
          image,
          environment: [
            { name: 'B', value: '2' },
            { name: 'A', value: '1' },
          ],
        },
      ],
      family,
      executionRoleArn: 'arn:aws:iam::123456789012:role/exec',
    },
    task_run_request: { launchType: 'FARGATE' },
    cluster: null,
    container_name: null,
    vpc_id: null,
    network_configuration: {},
    configure_cloudwatch_logs: true,
    cloudwatch_logs_options: {},
    cloudwatch_logs_prefix: null,
    execution_role_arn: 'arn:aws:iam::123456789012:role/exec',
    auto_deregister_task_definition: false,
    match_latest_revision_in_family: false,
    prefect_api_key_secret_arn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf',
    prefect_api_auth_string_secret_arn: null,
    aws_credentials: null,
  };
  return buildTaskDefinition(config, {
    workPoolName: 'pool',
    deploymentId: 'dep',
    flowId: 'flow',
    region: 'us-east-1',
  });
}

async function revisions(family: string): Promise<string[]> {
  const out = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: family, status: 'ACTIVE' }));
  return (out.taskDefinitionArns ?? []).filter((arn) => arn.split('/')[1]?.startsWith(`${family}:`));
}

describe('findOrRegisterTaskDefinition', () => {
  it('registers once, then reuses the same revision', async () => {
    const family = uniqueName('reuse');
    const first = await findOrRegisterTaskDefinition(ecs, definition(family), {
      autoDeregister: false,
      ...fast,
    });
    expect(first).toMatchObject({
      arn: expect.stringMatching(new RegExp(`task-definition/${family}:1$`)),
      registered: true,
      networkMode: 'awsvpc',
      requiresCompatibilities: ['FARGATE'],
      containerDefinitions: [{ name: 'prefect' }],
    });
    const second = await findOrRegisterTaskDefinition(ecs, definition(family), {
      autoDeregister: false,
      ...fast,
    });
    expect(second).toMatchObject({ arn: first.arn, registered: false });
    expect(await revisions(family)).toEqual([first.arn]);
  });

  it('registers revision 2 for a changed definition', async () => {
    const family = uniqueName('change');
    const first = await findOrRegisterTaskDefinition(ecs, definition(family), {
      autoDeregister: false,
      ...fast,
    });
    const changed = await findOrRegisterTaskDefinition(ecs, definition(family, 'my-image:2'), {
      autoDeregister: false,
      ...fast,
    });
    expect(changed.registered).toBe(true);
    expect(changed.arn).toMatch(new RegExp(`task-definition/${family}:2$`));
    expect(changed.arn).not.toBe(first.arn);
  });

  it('reuses an older revision when deployments with different definitions share a family', async () => {
    const family = uniqueName('shared');
    const a = await findOrRegisterTaskDefinition(ecs, definition(family, 'a'), {
      autoDeregister: false,
      ...fast,
    });
    const b = await findOrRegisterTaskDefinition(ecs, definition(family, 'b'), {
      autoDeregister: false,
      ...fast,
    });
    const againA = await findOrRegisterTaskDefinition(ecs, definition(family, 'a'), {
      autoDeregister: false,
      ...fast,
    });
    const againB = await findOrRegisterTaskDefinition(ecs, definition(family, 'b'), {
      autoDeregister: false,
      ...fast,
    });
    expect([againA.arn, againB.arn]).toEqual([a.arn, b.arn]);
    expect([againA.registered, againB.registered]).toEqual([false, false]);
    expect(await revisions(family)).toHaveLength(2);
  });

  it('does not reuse a deregistered revision', async () => {
    const family = uniqueName('inactive');
    const first = await findOrRegisterTaskDefinition(ecs, definition(family), {
      autoDeregister: false,
      ...fast,
    });
    await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: first.arn }));
    const next = await findOrRegisterTaskDefinition(ecs, definition(family), {
      autoDeregister: false,
      ...fast,
    });
    expect(next.registered).toBe(true);
    expect(next.arn).toMatch(new RegExp(`task-definition/${family}:2$`));
  });

  it('ends concurrent launches of one new definition with one or very few revisions', async () => {
    const family = uniqueName('burst');
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        findOrRegisterTaskDefinition(ecs, definition(family), { autoDeregister: false }),
      ),
    );
    const registered = await revisions(family);
    expect(registered.length).toBeGreaterThanOrEqual(1);
    expect(registered.length).toBeLessThanOrEqual(3);
    expect(results.filter((r) => r.registered)).toHaveLength(registered.length);
    for (const r of results) expect(registered).toContain(r.arn);
  });

  it('tags a revision it registers for auto-deregistration', async () => {
    const family = uniqueName('autodereg');
    const result = await findOrRegisterTaskDefinition(ecs, definition(family), {
      autoDeregister: true,
      ...fast,
    });
    const tags = await ecs.send(new ListTagsForResourceCommand({ resourceArn: result.arn }));
    expect(tags.tags).toEqual([{ key: 'prefect.io/degregister-task-definition', value: 'true' }]);
  });
});

describe('describeTaskDefinition', () => {
  it('summarises an active definition', async () => {
    const family = uniqueName('named');
    const registered = await ecs.send(new RegisterTaskDefinitionCommand(definition(family)));
    const arn = registered.taskDefinition?.taskDefinitionArn as string;
    expect(await describeTaskDefinition(ecs, arn)).toEqual({
      arn,
      registered: false,
      networkMode: 'awsvpc',
      requiresCompatibilities: ['FARGATE'],
      executionRoleArn: 'arn:aws:iam::123456789012:role/exec',
      containerDefinitions: [{ name: 'prefect' }],
    });
  });

  it('refuses an inactive definition with the worker message', async () => {
    const family = uniqueName('gone');
    const registered = await ecs.send(new RegisterTaskDefinitionCommand(definition(family)));
    const arn = registered.taskDefinition?.taskDefinitionArn as string;
    await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: arn }));
    await expect(describeTaskDefinition(ecs, arn)).rejects.toThrow(
      new JobConfigurationError(
        `Failed to run ECS task, the task definition ${arn} is inactive. Re-register the task definition or ` +
          'remove the `task_definition_arn` from your work pool configuration to allow Prefect to register a new ' +
          'task definition automatically.',
      ),
    );
  });

  it('refuses a definition that does not exist', async () => {
    await expect(describeTaskDefinition(ecs, `${uniqueName('missing')}:1`)).rejects.toThrow(
      JobConfigurationError,
    );
  });
});
