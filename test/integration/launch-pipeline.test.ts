import {
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import {
  DeregisterTaskDefinitionCommand,
  DescribeTaskDefinitionCommand,
  ECSClient,
  type Task,
} from '@aws-sdk/client-ecs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { describeTask, runTask } from '../../src/aws/ecs';
import { listExecutions } from '../../src/aws/sfn';
import { runPoll } from '../../src/launch/entrypoints';
import type { EcsTaskApi } from '../../src/local/run-task-sync';
import type { Runtime } from '../../src/runtime';
import { captureOutput } from '../harness/capture-output';
import { awsTestConfig, prefectRaw, scheduleFlowRun, serverAtLeast } from '../harness/env';
import { testRuntime } from '../harness/launcher';
import { executor, launcher, pollAndRun, runExecutions, tasksOf } from '../harness/pipeline';

type FlowRunView = {
  id: string;
  state_type: string;
  state_name: string;
  infrastructure_pid: string | null;
  labels: Record<string, string>;
  state: { message: string | null };
};

const ecsClient = new ECSClient(awsTestConfig());
const sfnClient = new SFNClient(awsTestConfig());

async function flowRun(id: string): Promise<FlowRunView> {
  return prefectRaw<FlowRunView>('GET', `/flow_runs/${id}`);
}

async function logsOf(id: string): Promise<string[]> {
  const logs = await prefectRaw<{ message: string }[]>('POST', '/logs/filter', {
    logs: { flow_run_id: { any_: [id] } },
  });
  return logs.map((l) => l.message);
}

describe('launch pipeline: poll → Step Functions execution → Prepare → Wait → RunTask → report', () => {
  it('launches a scheduled run as exactly one ECS task with the rendered definition, a log line and its pid', async () => {
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher();
    const run = await scheduleFlowRun(deploymentId);
    await runPoll(rt);
    const exec = executor(rt, stateMachineArn);
    expect(await exec.pickUp()).toBe(1);
    const results = await exec.settle();
    expect(results.get(run.id)?.status).toBe('SUCCEEDED');

    const tasks = await tasksOf(cluster);
    expect(tasks).toHaveLength(1);
    const [task] = tasks as [Task];
    expect(task.group).toBe(`prefect-flow-run:${run.id}`);
    expect(task.taskDefinitionArn).toMatch(/:task-definition\/prefect_pool-[0-9a-f]{8}_[0-9a-f-]{36}:1$/);
    const env = task.overrides?.containerOverrides?.[0]?.environment ?? [];
    expect(env).toContainEqual({ name: 'PREFECT__FLOW_RUN_ID', value: run.id });

    const view = await flowRun(run.id);
    expect(view.infrastructure_pid).toBe(`${task.clusterArn}::${task.taskArn}`);
    // Flow-run labels came with Prefect 3.1; on 3.0 Prepare goes on without them (docs/compatibility.md).
    if (await serverAtLeast(3, 1)) expect(view.labels).toMatchObject({ 'prefect.worker.type': 'ecs' });
    else expect(view.labels).toBeUndefined();
    expect((await logsOf(run.id)).join('\n')).toMatch(
      /claimed this flow run and started its launch execution; its ECS task starts at /,
    );
  });

  it('reuses the revision it found for the previous run, and prepares afresh when that revision was deregistered', async () => {
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher();
    const first = await scheduleFlowRun(deploymentId);
    expect((await pollAndRun(rt, stateMachineArn)).get(first.id)?.status).toBe('SUCCEEDED');
    const [task] = (await tasksOf(cluster)) as [Task];
    const revision = task.taskDefinitionArn as string;
    await ecsClient.send(new DeregisterTaskDefinitionCommand({ taskDefinition: revision }));

    const second = await scheduleFlowRun(deploymentId);
    const requested: (string | undefined)[] = [];
    const ecs: EcsTaskApi = {
      runTask: (request) => {
        requested.push(request.taskDefinition);
        return runTask(rt.aws.ecs, request);
      },
      describeTask: (c, arn) => describeTask(rt.aws.ecs, c, arn),
    };
    expect((await pollAndRun(rt, stateMachineArn, ecs)).get(second.id)?.status).toBe('SUCCEEDED');
    // The cache answered the deregistered revision; RunTask refused it; Prepare ran again without the cache
    // and registered the next revision.
    expect(requested).toEqual([revision, revision.replace(/:1$/, ':2')]);
    const secondTask = (await tasksOf(cluster)).find((t) => t.group === `prefect-flow-run:${second.id}`);
    expect(secondTask?.taskDefinitionArn).toBe(revision.replace(/:1$/, ':2'));
    expect((await flowRun(second.id)).infrastructure_pid).toContain(secondTask?.taskArn);
  });

  it('passes a secret credential to the container only as an ECS secret, with the launcher default execution role', async () => {
    const secrets = new SecretsManagerClient(awsTestConfig());
    const { ARN: secretArn } = await secrets.send(
      new CreateSecretCommand({ Name: `prefect-key-${Date.now()}`, SecretString: 'pnu_test_secret_value' }),
    );
    const role = 'arn:aws:iam::123456789012:role/prefect-ecs-launcher-execution';
    // Every line the launcher logs, at its most verbose.
    const output = captureOutput();
    const logged = output.lines;
    const level = process.env.POWERTOOLS_LOG_LEVEL;
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher({
      settings: { PREFECT_API_KEY_SECRET_ARN: secretArn ?? '', LAUNCHER_EXECUTION_ROLE_ARN: role },
    }).finally(() => {
      process.env.POWERTOOLS_LOG_LEVEL = level;
    });
    const run = await scheduleFlowRun(deploymentId);
    const results = await pollAndRun(rt, stateMachineArn);
    expect(results.get(run.id)?.status).toBe('SUCCEEDED');

    const [task] = (await tasksOf(cluster)) as [Task];
    const definition = (
      await ecsClient.send(new DescribeTaskDefinitionCommand({ taskDefinition: task.taskDefinitionArn }))
    ).taskDefinition;
    expect(definition?.executionRoleArn).toBe(role);
    expect(definition?.containerDefinitions?.[0]?.secrets).toEqual([
      { name: 'PREFECT_API_KEY', valueFrom: secretArn },
    ]);
    output.restore();
    expect(logged.join('')).toContain('"level":"INFO"');
    const everything = JSON.stringify({
      logged,
      task,
      definition,
      results: [...results.values()],
      logs: await logsOf(run.id),
    });
    expect(everything).not.toContain('pnu_test_secret_value');
  });

  it("uses the launcher's default network for a pool that configures none", async () => {
    const ec2 = new EC2Client(awsTestConfig());
    const vpcId = (
      await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'isDefault', Values: ['true'] }] }))
    ).Vpcs?.[0]?.VpcId as string;
    const subnet = (
      await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }))
    ).Subnets?.[0]?.SubnetId as string;
    const group = (
      await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }))
    ).SecurityGroups?.[0]?.GroupId as string;
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher({
      settings: { LAUNCHER_VPC_ID: vpcId, LAUNCHER_SUBNETS: subnet, LAUNCHER_SECURITY_GROUPS: group },
    });
    const run = await scheduleFlowRun(deploymentId);
    const results = await pollAndRun(rt, stateMachineArn);
    expect(results.get(run.id)?.status).toBe('SUCCEEDED');
    const [output] = [...results.values()].map((r) => r.output as { prepared: { runTask: unknown } });
    expect(output?.prepared.runTask).toMatchObject({
      NetworkConfiguration: {
        AwsvpcConfiguration: { Subnets: [subnet], SecurityGroups: [group], AssignPublicIp: 'DISABLED' },
      },
    });
    expect(await tasksOf(cluster)).toHaveLength(1);
  });

  it('starts the task at, not before, the scheduled second of a run claimed early', async () => {
    const { deploymentId, stateMachineArn, rt } = await launcher({
      settings: { LAUNCHER_LOOKAHEAD_SECONDS: '30' },
    });
    const scheduled = new Date(Date.now() + 4_000);
    const run = await scheduleFlowRun(deploymentId, { scheduledTime: scheduled });
    expect((await runPoll(rt)).outcomes.started).toBe(1);
    let ranAt = 0;
    const ecs: EcsTaskApi = {
      runTask: (request) => {
        ranAt = Date.now();
        return runTask(rt.aws.ecs, request);
      },
      describeTask: (c, arn) => describeTask(rt.aws.ecs, c, arn),
    };
    await runExecutions(rt, stateMachineArn, ecs);
    expect(ranAt).toBeGreaterThanOrEqual(scheduled.getTime());
    expect(ranAt - scheduled.getTime()).toBeLessThan(2_000);
    expect((await flowRun(run.id)).state_type).not.toBe('SCHEDULED');
  });

  it('crashes a run whose job variables are invalid, naming the variable, and starts no task', async () => {
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher();
    const run = await scheduleFlowRun(deploymentId, { jobVariables: { cpu: 1000, memory: 999999 } });
    expect((await pollAndRun(rt, stateMachineArn)).get(run.id)?.status).toBe('FAILED');
    const view = await flowRun(run.id);
    expect(view.state_type).toBe('CRASHED');
    expect(view.state.message).toMatch(
      /^Failed to submit flow run to infrastructure: JobConfigurationError: .*cpu/,
    );
    expect(await tasksOf(cluster)).toHaveLength(0);
  });

  it("crashes a run whose overrides exceed ECS's 8,192 characters, saying what to shrink", async () => {
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher();
    const run = await scheduleFlowRun(deploymentId, {
      jobVariables: { env: { BIG: 'x'.repeat(9 * 1024) } },
    });
    await pollAndRun(rt, stateMachineArn);
    const view = await flowRun(run.id);
    expect(view.state_type).toBe('CRASHED');
    expect(view.state.message).toMatch(
      /^Failed to submit flow run to infrastructure: JobConfigurationError: The task's overrides \(task_run_request\.overrides.* ECS allows 8192\. Shrink `env`/,
    );
    expect(await tasksOf(cluster)).toHaveLength(0);
  });

  it('crashes a run whose cluster does not exist with a clear message', async () => {
    const { deploymentId, stateMachineArn, rt } = await launcher({
      jobVariables: { cluster: 'no-such-cluster' },
    });
    const run = await scheduleFlowRun(deploymentId);
    await pollAndRun(rt, stateMachineArn);
    const view = await flowRun(run.id);
    expect(view.state_type).toBe('CRASHED');
    expect(view.state.message).toBe(
      "Failed to submit flow run to infrastructure: ClusterNotFoundException: Failed to run ECS task, cluster 'no-such-cluster' not found. Confirm that the cluster is configured in your region.",
    );
  });

  it('retries RunTask failures[] (no capacity), then crashes the run, with one RunTask per attempt and no task', async () => {
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher();
    const run = await scheduleFlowRun(deploymentId);
    await runPoll(rt);
    let attempts = 0;
    const ecs: EcsTaskApi = {
      runTask: async () => {
        attempts += 1;
        return { tasks: [], failures: [{ reason: 'Capacity is unavailable at this time.' }], $metadata: {} };
      },
      describeTask: (c, arn) => describeTask(rt.aws.ecs, c, arn),
    };
    await runExecutions(rt, stateMachineArn, ecs);
    expect(attempts).toBe(5);
    const view = await flowRun(run.id);
    expect(view.state_type).toBe('CRASHED');
    expect(view.state.message).toContain('capacity provider error: Capacity is unavailable at this time.');
    expect(await tasksOf(cluster)).toHaveLength(0);
  });

  it('4 overlapping polls over 200 scheduled runs: each claimed once, one execution and one ECS task each', async () => {
    const { cluster, deploymentId, stateMachineArn, rt } = await launcher({
      settings: { LAUNCHER_CONCURRENCY: '16' },
    });
    const runs = [];
    // One at a time: the test server's SQLite answers concurrent writers with 503.
    for (let i = 0; i < 200; i += 1) runs.push(await scheduleFlowRun(deploymentId));
    const pollers = await Promise.all([1, 2, 3, 4].map(() => testRuntimeLike(rt)));
    const summaries = await Promise.all(pollers.map((p) => runPoll(p)));
    const started = summaries.reduce((n, s) => n + s.outcomes.started + s.outcomes['already-started'], 0);
    expect(started).toBe(200);

    const executions = await listExecutions(sfnClient, stateMachineArn);
    expect(new Set(executions.map((e) => e.name)).size).toBe(200);
    expect(executions).toHaveLength(200);

    const results = await runExecutions(rt, stateMachineArn);
    expect([...results.values()].filter((r) => r.status === 'SUCCEEDED')).toHaveLength(200);

    const tasks = await tasksOf(cluster);
    expect(tasks).toHaveLength(200);
    expect(new Set(tasks.map((t) => t.group)).size).toBe(200);
    expect(new Set(tasks.map((t) => t.group))).toEqual(new Set(runs.map((r) => `prefect-flow-run:${r.id}`)));
  }, 240_000);
});

/** Another poller of the same pool: a separate runtime, as a separate Lambda container would have. */
function testRuntimeLike(rt: Runtime): Promise<Runtime> {
  return testRuntime({
    LAUNCHER_WORK_POOL: rt.config.workPool,
    LAUNCHER_STATE_MACHINE_ARN: rt.config.stateMachineArn ?? '',
    LAUNCHER_CONCURRENCY: String(rt.config.concurrency),
  });
}
