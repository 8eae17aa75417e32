import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { DescribeSubnetsCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ECSClient, ListTaskDefinitionsCommand } from '@aws-sdk/client-ecs';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import packageJson from '../../package.json';
import { runNowNames } from '../../src/launch/run-now-automation';
import defaultTemplate from '../../src/render/default-base-job-template.json';
import { taskGroupFor } from '../../src/render/render-job';
import {
  arrangeDeployment,
  awsTestConfig,
  prefectRaw,
  scheduleFlowRun,
  stackUrls,
  uniqueName,
} from '../harness/env';
import { createLaunchStateMachine } from '../harness/launcher';

/**
 * The CLI as a user runs it (the bin, in a child process) against the real Prefect server and moto: the
 * AWS SDK finds moto through AWS_ENDPOINT_URL, as it would find AWS through the usual settings.
 */
const bin = path.join(__dirname, '..', '..', 'bin', 'prefect-ecs-launcher.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-integration-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const { prefectApiUrl, motoUrl } = stackUrls();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: dir,
          PREFECT_API_URL: prefectApiUrl,
          AWS_ENDPOINT_URL: motoUrl,
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test',
          AWS_REGION: 'us-east-1',
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          ...env,
        },
      },
      (err, stdout, stderr) => resolve({ status: err ? Number(err.code) : 0, stdout, stderr }),
    );
  });
}

function file(name: string, content: unknown): string {
  const at = path.join(dir, name);
  fs.writeFileSync(at, JSON.stringify(content));
  return at;
}

type Pool = { id: string; type: string; base_job_template: unknown };

/** A template whose image variable defaults to something the test can recognise. */
const customTemplate = structuredClone(defaultTemplate) as {
  variables: { properties: { image: { default: unknown } } };
};
customTemplate.variables.properties.image.default = 'example/etl:from-pool';

async function defaultVpcSubnets(): Promise<string[]> {
  const ec2 = new EC2Client(awsTestConfig());
  const vpcs = await ec2.send(
    new DescribeVpcsCommand({ Filters: [{ Name: 'isDefault', Values: ['true'] }] }),
  );
  const vpcId = vpcs.Vpcs?.[0]?.VpcId ?? '';
  const subnets = await ec2.send(
    new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  return (subnets.Subnets ?? []).map((s) => s.SubnetId ?? '');
}

describe('prefect-ecs-launcher against Prefect and moto', () => {
  const pool = uniqueName('cli-pool');

  it('creates an ecs pool with the default template, refuses to create it twice, and updates its template', async () => {
    const created = await cli(['pool', 'create', pool]);
    expect(created).toMatchObject({ status: 0, stderr: '' });
    expect(created.stdout).toMatch(
      new RegExp(`^created work pool '${pool}' \\(type ecs, id [0-9a-f-]{36}\\)`),
    );
    const read = await prefectRaw<Pool>('GET', `/work_pools/${pool}`);
    expect(read.type).toBe('ecs');
    expect(read.base_job_template).toEqual(defaultTemplate);

    const again = await cli(['pool', 'create', pool]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/^prefect-ecs-launcher pool: work pool '.*' already exists .*pool update/);

    const updated = await cli(['pool', 'update', pool, '--template', file('template.json', customTemplate)]);
    expect(updated).toMatchObject({ status: 0, stderr: '' });
    expect(updated.stdout).toMatch(
      new RegExp(
        `^updated work pool '${pool}' \\(type ecs, id ${read.id}\\): base job template is now the base job template in .*template\\.json\n$`,
      ),
    );
    const reread = await prefectRaw<Pool>('GET', `/work_pools/${pool}`);
    expect(reread).toMatchObject({ id: read.id, base_job_template: customTemplate });
  });

  it("sets up, rotates and removes the pool's run-now automation, the token read from its secret", async () => {
    const secrets = new SecretsManagerClient(awsTestConfig());
    const token = 'r'.repeat(64);
    const created = await secrets.send(
      new CreateSecretCommand({ Name: uniqueName('run-now-token'), SecretString: token }),
    );
    const arn = created.ARN as string;
    const url = 'https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws/';
    const names = runNowNames(pool);
    const flags = ['--run-now-url', url, '--run-now-token-secret-arn', arn];

    const applied = await cli(['pool', 'update', pool, ...flags]);
    expect(applied).toMatchObject({ status: 0, stderr: '' });
    // Only the automation: the pool's template is left as the earlier test made it.
    expect(applied.stdout).toBe(
      `created automation '${names.automation}': runs of '${pool}' scheduled by hand are launched at once through ${url}\n`,
    );
    expect((await prefectRaw<Pool>('GET', `/work_pools/${pool}`)).base_job_template).toEqual(customTemplate);
    const [automation] = await prefectRaw<{ id: string; trigger: { expect: string[] } }[]>(
      'POST',
      '/automations/filter',
      { automations: { name: { any_: [names.automation] } } },
    );
    expect(automation?.trigger.expect).toEqual(['prefect.flow-run.Scheduled']);

    // Rotation: the secret changes, the same command updates the block in place.
    await secrets.send(new PutSecretValueCommand({ SecretId: arn, SecretString: 's'.repeat(64) }));
    const rotated = await cli(['pool', 'update', pool, ...flags]);
    expect(rotated.stdout).toMatch(/^updated automation /);
    const block = await prefectRaw<{ data: { headers: Record<string, string> } }>(
      'GET',
      `/block_types/slug/webhook/block_documents/name/${names.block}?include_secrets=true`,
    );
    expect(block.data.headers.authorization).toBe(`Bearer ${'s'.repeat(64)}`);

    const removed = await cli(['pool', 'update', pool, '--no-run-now']);
    expect(removed.stdout).toBe(
      `removed the run-now automation of '${pool}'; its runs wait for the schedule's poll again\n`,
    );
    expect(
      await prefectRaw('POST', '/automations/filter', {
        automations: { name: { any_: [names.automation] } },
      }),
    ).toEqual([]);
    expect((await cli(['pool', 'update', pool, '--no-run-now'])).stdout).toBe(
      `work pool '${pool}' had no run-now automation\n`,
    );
  });

  it('names what is wrong with the run-now flags before touching Prefect', async () => {
    const url = 'https://x.lambda-url.us-east-1.on.aws/';
    for (const [args, env, message] of [
      [['--run-now-url', url], {}, '--run-now-url needs the token: --run-now-token-secret-arn'],
      [['--run-now-url', 'http://example.com/'], {}, '--run-now-url must be https://'],
      [
        ['--run-now-url', url],
        { LAUNCHER_RUN_NOW_TOKEN: 'short' },
        'LAUNCHER_RUN_NOW_TOKEN is 5 characters long',
      ],
      [['--no-run-now', '--run-now-url', url], {}, '--no-run-now removes the run-now automation'],
    ] as const) {
      const run = await cli(['pool', 'update', pool, ...args], env);
      expect(run.status).toBe(2);
      expect(run.stderr).toContain(message);
    }
  });

  it('refuses to update a pool that does not exist', async () => {
    const missing = uniqueName('no-pool');
    const run = await cli(['pool', 'update', missing]);
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(
      `prefect-ecs-launcher pool: work pool '${missing}' does not exist at ${stackUrls().prefectApiUrl}; create it with prefect-ecs-launcher pool create ${missing}\n`,
    );
  });

  it('renders a scheduled run of a deployment in that pool without registering or starting anything', async () => {
    const flow = await prefectRaw<{ id: string; name: string }>('POST', '/flows/', {
      name: uniqueName('flow'),
    });
    const deployment = await prefectRaw<{ id: string; name: string }>('POST', '/deployments/', {
      name: uniqueName('dep'),
      flow_id: flow.id,
      work_pool_name: pool,
      work_queue_name: 'default',
      job_variables: { cpu: 512, memory: 1024, env: { STAGE: 'test' } },
      entrypoint: 'flows.py:my_flow',
      enforce_parameter_schema: false,
    });
    const run = await scheduleFlowRun(deployment.id, { jobVariables: { cluster: 'cli-cluster' } });
    const poolId = (await prefectRaw<Pool>('GET', `/work_pools/${pool}`)).id;

    const rendered = await cli(['render', '--flow-run-id', run.id]);
    expect(rendered).toMatchObject({ status: 0, stderr: '' });
    const family = `prefect_${pool}_${deployment.id}`;
    const output = JSON.parse(rendered.stdout);
    expect(output.taskDefinition).toEqual({
      family,
      containerDefinitions: [{ name: 'prefect', image: 'example/etl:from-pool' }],
      cpu: '512',
      memory: '1024',
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
    });
    expect(output.runTaskRequest).toMatchObject({
      cluster: 'cli-cluster',
      launchType: 'FARGATE',
      taskDefinition: `arn:aws:ecs:us-east-1:123456789012:task-definition/${family}:1`,
      group: taskGroupFor(run.id),
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: await defaultVpcSubnets(),
          assignPublicIp: 'ENABLED',
          securityGroups: [],
        },
      },
    });
    expect(output.runTaskRequest.overrides.containerOverrides[0].environment).toEqual(
      expect.arrayContaining([
        { name: 'PREFECT_API_URL', value: stackUrls().prefectApiUrl },
        { name: 'PREFECT__FLOW_RUN_ID', value: run.id },
        { name: 'PREFECT__DEPLOYMENT_NAME', value: deployment.name },
        { name: 'STAGE', value: 'test' },
      ]),
    );
    expect(output.runTaskRequest.tags).toContainEqual({ key: 'prefect.io/work-pool-id', value: poolId });

    const ecs = new ECSClient(awsTestConfig());
    const families = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: family }));
    expect(families.taskDefinitionArns).toEqual([]);
    const view = await prefectRaw<{ state_type: string; labels: Record<string, unknown> }>(
      'GET',
      `/flow_runs/${run.id}`,
    );
    expect(view.state_type).toBe('SCHEDULED');
    expect(view.labels).not.toHaveProperty('prefect.worker.type');
  });

  it('renders a template file offline, reading its variable references from the Prefect API', async () => {
    const name = uniqueName('flow_image').replaceAll('-', '_');
    await prefectRaw('POST', '/variables/', { name, value: 'example/etl:from-variable' });
    const deploymentFile = file('deployment.json', {
      id: '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b',
      name: 'nightly',
      job_variables: { image: `{{ prefect.variables.${name} }}` },
    });
    const run = await cli([
      'render',
      '--template',
      file('default.json', defaultTemplate),
      '--deployment',
      deploymentFile,
      '--work-pool',
      pool,
      '--subnets',
      'subnet-a',
    ]);
    expect(run).toMatchObject({ status: 0, stderr: '' });
    expect(JSON.parse(run.stdout).taskDefinition.containerDefinitions).toEqual([
      { name: 'prefect', image: 'example/etl:from-variable' },
    ]);
  });

  it('names a flow run that does not exist', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const run = await cli(['render', '--flow-run-id', id]);
    expect(run).toEqual({
      status: 2,
      stdout: '',
      stderr: `prefect-ecs-launcher render: --flow-run-id ${id}: no such flow run at ${stackUrls().prefectApiUrl}\n`,
    });
  });
});

describe('prefect-ecs-launcher status, against the real Prefect server and moto', () => {
  const force = (id: string, type: string, name: string, message?: string) =>
    prefectRaw('POST', `/flow_runs/${id}/set_state`, {
      state: { type, name, ...(message ? { message } : {}) },
      force: true,
    });
  const pid = (cluster: string, id: string) =>
    `arn:aws:ecs:us-east-1:123456789012:cluster/${cluster}::arn:aws:ecs:us-east-1:123456789012:task/${cluster}/${id.slice(0, 8)}`;

  it('shows the heartbeat, the runs by what the launcher does with them, and the executions', async () => {
    const { pool, deploymentId } = await arrangeDeployment();
    const worker = `prefect-ecs-launcher ${pool}`;
    await prefectRaw('POST', `/work_pools/${pool}/workers/heartbeat`, {
      name: worker,
      heartbeat_interval_seconds: 60,
    });
    const waiting = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() + 60_000) });
    const launching = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() - 5_000) });
    const running = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() - 60_000) });
    const crashed = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() - 120_000) });
    const cancelling = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() - 30_000) });
    await force(waiting.id, 'PENDING', 'Pending');
    await force(launching.id, 'PENDING', 'Pending');
    await force(running.id, 'PENDING', 'Pending');
    await force(running.id, 'RUNNING', 'Running');
    await prefectRaw('PATCH', `/flow_runs/${running.id}`, { infrastructure_pid: pid(pool, running.id) });
    const why = 'Failed to submit flow run to infrastructure: ClusterNotFoundException: cluster not found';
    await force(crashed.id, 'CRASHED', 'Crashed', why);
    await force(cancelling.id, 'RUNNING', 'Running');
    await force(cancelling.id, 'CANCELLING', 'Cancelling');

    const stateMachineArn = await createLaunchStateMachine();
    const sfn = new SFNClient(awsTestConfig());
    await sfn.send(
      new StartExecutionCommand({
        stateMachineArn,
        name: running.id,
        input: JSON.stringify({ flowRunId: running.id }),
      }),
    );

    const env = { LAUNCHER_WORK_POOL: pool, LAUNCHER_STATE_MACHINE_ARN: stateMachineArn };
    const json = await cli(['status', '--json'], env);
    expect(json).toMatchObject({ status: 0, stderr: '' });
    const report = JSON.parse(json.stdout);
    expect(report.pool).toMatchObject({ name: pool, status: 'READY', paused: false });
    expect(report.launcher).toMatchObject({ name: worker, status: 'ONLINE' });
    expect(report.launcher.secondsAgo).toBeLessThan(60);
    expect(report.queues.map((q: { name: string }) => q.name)).toEqual(['default']);
    const ids = (lines: { id: string }[]) => lines.map((l) => l.id);
    expect(ids(report.runs.waitingForTheirSecond)).toEqual([waiting.id]);
    expect(ids(report.runs.launching)).toEqual([launching.id]);
    expect(report.runs.running).toEqual([
      expect.objectContaining({
        id: running.id,
        task: pid(pool, running.id).split('::')[1],
        execution: `${running.id} (RUNNING)`,
      }),
    ]);
    expect(report.runs.crashed).toEqual([expect.objectContaining({ id: crashed.id, message: why })]);
    expect(ids(report.runs.cancelling)).toEqual([cancelling.id]);
    expect(report.runs.counts).toEqual({ Pending: 2, Running: 1, Crashed: 1, Cancelling: 1 });
    expect(report.executions).toEqual({ running: 1, failed: [] });

    const text = await cli(['status'], env);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain(`work pool ${pool}: READY`);
    expect(text.stdout).toContain(`launcher ${worker}: ONLINE, last heartbeat `);
    expect(text.stdout).toContain('launch executions: 1 running, 0 failed in the window');
    expect(text.stdout).toContain(`crashed (1):\n  ${crashed.id} `);
    expect(text.stdout).toContain(why);
  });

  /**
   * A stand-in for a deployed stage: moto creates the stack from a small template (one queue) whose
   * parameters and outputs are the launcher's, its state machine one the harness made.
   */
  async function deployStage(settings: Record<string, string>, stateMachineArn: string): Promise<string> {
    const stage = uniqueName('test');
    const cloudformation = new CloudFormationClient(awsTestConfig());
    await cloudformation.send(
      new CreateStackCommand({
        StackName: `prefect-ecs-launcher-${stage}`,
        TemplateBody: JSON.stringify({
          AWSTemplateFormatVersion: '2010-09-09',
          Parameters: Object.fromEntries(Object.keys(settings).map((key) => [key, { Type: 'String' }])),
          Resources: { ReportFailureQueue: { Type: 'AWS::SQS::Queue' } },
          Outputs: {
            LaunchStateMachineArn: { Value: stateMachineArn },
            LauncherVersion: { Value: packageJson.version },
          },
        }),
        Parameters: Object.entries(settings).map(([ParameterKey, ParameterValue]) => ({
          ParameterKey,
          ParameterValue,
        })),
      }),
    );
    return stage;
  }

  it('with --stage, reads the pool and the state machine from the stack, and shows its version and settings', async () => {
    const { pool, deploymentId } = await arrangeDeployment();
    const running = await scheduleFlowRun(deploymentId, { scheduledTime: new Date(Date.now() - 60_000) });
    await force(running.id, 'PENDING', 'Pending');
    await force(running.id, 'RUNNING', 'Running');
    const stateMachineArn = await createLaunchStateMachine();
    await new SFNClient(awsTestConfig()).send(
      new StartExecutionCommand({
        stateMachineArn,
        name: running.id,
        input: JSON.stringify({ flowRunId: running.id }),
      }),
    );
    const stage = await deployStage(
      {
        WorkPool: pool,
        WorkQueues: 'default',
        Cluster: 'launcher-cluster',
        LookaheadSeconds: '90',
        StartLeadSeconds: '20',
        Concurrency: '8',
        CreateAlarms: 'true',
      },
      stateMachineArn,
    );
    const stackName = `prefect-ecs-launcher-${stage}`;

    // Neither LAUNCHER_WORK_POOL nor LAUNCHER_STATE_MACHINE_ARN: the stack gives both.
    const json = await cli(['status', '--stage', stage, '--region', 'us-east-1', '--json']);
    expect(json).toMatchObject({ status: 0, stderr: '' });
    const report = JSON.parse(json.stdout);
    expect(report.stack).toMatchObject({
      name: stackName,
      region: 'us-east-1',
      status: 'CREATE_COMPLETE',
      version: packageJson.version,
      stateMachineArn,
      settings: {
        Cluster: 'launcher-cluster',
        Concurrency: '8',
        CreateAlarms: 'true',
        LookaheadSeconds: '90',
        StartLeadSeconds: '20',
        WorkPool: pool,
        WorkQueues: 'default',
      },
    });
    expect(Date.now() - Date.parse(report.stack.lastUpdated)).toBeLessThan(10 * 60_000);
    expect(report.pool).toMatchObject({ name: pool });
    expect(report.runs.running).toEqual([
      expect.objectContaining({ id: running.id, execution: `${running.id} (RUNNING)` }),
    ]);
    expect(report.executions).toEqual({ running: 1, failed: [] });

    const text = await cli(['status', '--stage', stage]);
    expect(text).toMatchObject({ status: 0, stderr: '' });
    expect(text.stdout).toMatch(
      new RegExp(
        `^stack ${stackName} in us-east-1: CREATE_COMPLETE, last updated \\S+, launcher version ${packageJson.version.replaceAll('.', '\\.')}\nsettings:\n  Cluster launcher-cluster\n`,
      ),
    );
    expect(text.stdout).toContain('  StartLeadSeconds 20\n');
    expect(text.stdout).toContain(`\nwork pool ${pool}: `);
    expect(text.stdout).toContain('launch executions: 1 running, 0 failed in the window');

    // --pool still names the pool; the stack's state machine stays.
    const other = await arrangeDeployment();
    const overridden = JSON.parse(
      (await cli(['status', '--stage', stage, '--pool', other.pool, '--json'])).stdout,
    );
    expect(overridden.pool.name).toBe(other.pool);
    expect(overridden.executions).toEqual({ running: 1, failed: [] });
  });

  it('names a stage that has no stack, with its region', async () => {
    expect(await cli(['status', '--stage', 'prod', '--region', 'eu-west-1'])).toEqual({
      status: 2,
      stdout: '',
      stderr:
        'prefect-ecs-launcher status: no stack prefect-ecs-launcher-prod in eu-west-1; deploy it or check --stage/--region\n',
    });
    expect((await cli(['status', '--stage', 'prod/x'])).stderr).toBe(
      'prefect-ecs-launcher status: --stage must be letters, digits and hyphens (the stage given to serverless deploy), got "prod/x"\n',
    );
  });

  it('names a pool that does not exist, and a missing pool setting', async () => {
    expect(await cli(['status', '--pool', 'no-such-pool-status'])).toEqual({
      status: 2,
      stdout: '',
      stderr: `prefect-ecs-launcher status: work pool 'no-such-pool-status' does not exist at ${stackUrls().prefectApiUrl}\n`,
    });
    expect((await cli(['status'])).stderr).toBe(
      'prefect-ecs-launcher status: status needs the work pool: --pool NAME, --stage STAGE or LAUNCHER_WORK_POOL\n',
    );
  });
});
