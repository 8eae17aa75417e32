import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../src/cli/main';
import {
  PLACEHOLDER_DEPLOYMENT_NAME,
  PLACEHOLDER_FLOW_NAME,
  PLACEHOLDER_ID,
  REDACTED,
  UNSET_API_URL,
} from '../../src/cli/render';
import defaultTemplate from '../../src/render/default-base-job-template.json';
import { taskGroupFor } from '../../src/render/render-job';

/** The CLI in process (main() with captured streams), and the bin as a user runs it (no build step). */
const root = path.join(__dirname, '..', '..');
const bin = path.join(root, 'bin', 'prefect-ecs-launcher.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const deploymentId = '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b';
const flowId = '1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081';
const flowRunId = '8e1d3b1c-6a2f-4c57-9d1e-0b7f2a4c5d6e';

/** Writes `content` (JSON unless a string) to a file in the test's directory; returns its path. */
function file(name: string, content: unknown): string {
  const at = path.join(dir, name);
  fs.writeFileSync(at, typeof content === 'string' ? content : JSON.stringify(content));
  return at;
}

const templateFile = file('template.json', defaultTemplate);
const deployment = {
  id: deploymentId,
  name: 'nightly',
  flow_id: flowId,
  work_pool_name: 'etl-pool',
  job_variables: { image: 'example/etl:1', cpu: 512, memory: 1024, env: { STAGE: 'prod' } },
};
const deploymentFile = file('deployment.json', deployment);
const flowRunFile = file('flow-run.json', {
  id: flowRunId,
  name: 'crimson-fox',
  deployment_id: deploymentId,
  job_variables: { memory: 2048 },
});
const flowFile = file('flow.json', { id: flowId, name: 'etl' });

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const status = await main(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env,
    cwd: dir,
  });
  return { status, stdout, stderr };
}

const offline = ['render', '--template', templateFile, '--region', 'eu-west-1'];

type Output = {
  taskDefinition: {
    family: string;
    cpu: string;
    memory: string;
    containerDefinitions: { name: string; image: string }[];
  } | null;
  runTaskRequest: {
    taskDefinition: string;
    launchType?: string;
    group: string;
    networkConfiguration?: { awsvpcConfiguration: { subnets: string[] } };
    overrides: { containerOverrides: { name: string; environment: { name: string; value: string }[] }[] };
    tags: { key: string; value: string }[];
  };
  stepFunctions: { shape: string; parameters: Record<string, unknown> };
};

function environment(output: Output): Record<string, string> {
  const [flow] = output.runTaskRequest.overrides.containerOverrides;
  return Object.fromEntries((flow?.environment ?? []).map((e) => [e.name, e.value]));
}

describe('prefect-ecs-launcher render (offline)', () => {
  it('prints the task definition and RunTask request for the deployment, flow run and flow in the files', async () => {
    const run = await cli([
      ...offline,
      '--deployment',
      deploymentFile,
      '--flow-run',
      flowRunFile,
      '--flow',
      flowFile,
      '--subnets',
      'subnet-a,subnet-b',
    ]);
    expect(run).toMatchObject({ status: 0, stderr: '' });
    const output = JSON.parse(run.stdout) as Output;
    expect(Object.keys(output)).toEqual(['taskDefinition', 'runTaskRequest', 'stepFunctions']);
    const family = `prefect_etl-pool_${deploymentId}`;
    expect(output.taskDefinition).toEqual({
      family,
      containerDefinitions: [{ name: 'prefect', image: 'example/etl:1' }],
      cpu: '512',
      memory: '2048',
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
    });
    expect(output.runTaskRequest).toMatchObject({
      taskDefinition: `arn:aws:ecs:eu-west-1:123456789012:task-definition/${family}:1`,
      launchType: 'FARGATE',
      group: taskGroupFor(flowRunId),
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: ['subnet-a', 'subnet-b'],
          assignPublicIp: 'ENABLED',
          securityGroups: [],
        },
      },
    });
    expect(environment(output)).toEqual({
      PREFECT_API_URL: UNSET_API_URL,
      PREFECT__FLOW_RUN_ID: flowRunId,
      PREFECT__WORKER_NAME: 'prefect-ecs-launcher etl-pool',
      PREFECT__FLOW_ID: flowId,
      PREFECT__FLOW_NAME: 'etl',
      PREFECT__DEPLOYMENT_ID: deploymentId,
      PREFECT__DEPLOYMENT_NAME: 'nightly',
      STAGE: 'prod',
    });
    expect(output.runTaskRequest.tags).toContainEqual({
      key: 'prefect.io/flow-run-name',
      value: 'crimson-fox',
    });
    // What the Fargate RunTask state sends: the same request, without the tags Step Functions cannot apply.
    expect(output.stepFunctions.shape).toBe('Fargate');
    expect(output.stepFunctions.parameters).toMatchObject({
      TaskDefinition: output.runTaskRequest.taskDefinition,
      Group: taskGroupFor(flowRunId),
      LaunchType: 'FARGATE',
      PlatformVersion: 'LATEST',
    });
    expect(output.stepFunctions.parameters).not.toHaveProperty('Tags');
  });

  it('fills in placeholders for the objects not given, and takes settings from the environment', async () => {
    const run = await cli(['render', '--template', 'template.json', '--subnets', 'subnet-a'], {
      LAUNCHER_WORK_POOL: 'env-pool',
      AWS_REGION: 'ap-south-1',
      LAUNCHER_CLUSTER: 'default-cluster',
      LAUNCHER_WORKER_NAME: 'my launcher',
    });
    expect(run).toMatchObject({ status: 0, stderr: '' });
    const output = JSON.parse(run.stdout) as Output;
    expect(output.taskDefinition?.family).toBe(`prefect_env-pool_${PLACEHOLDER_ID}`);
    expect(output.runTaskRequest).toMatchObject({
      cluster: 'default-cluster',
      group: taskGroupFor(PLACEHOLDER_ID),
      taskDefinition: expect.stringMatching(/^arn:aws:ecs:ap-south-1:/),
    });
    expect(environment(output)).toMatchObject({
      PREFECT__FLOW_NAME: PLACEHOLDER_FLOW_NAME,
      PREFECT__WORKER_NAME: 'my launcher',
    });
  });

  it('fills in placeholders for missing ids and names in the files given (a deployment with only job variables)', async () => {
    const partial = file('job-variables-only.json', { job_variables: { image: 'example/etl:2' } });
    const run = await cli([
      ...offline,
      '--deployment',
      partial,
      '--flow',
      file('unnamed-flow.json', {}),
      '--work-pool',
      'p',
      '--subnets',
      'subnet-a',
    ]);
    expect(run).toMatchObject({ status: 0, stderr: '' });
    const output = JSON.parse(run.stdout) as Output;
    expect(output.taskDefinition?.family).toBe(`prefect_p_${PLACEHOLDER_ID}`);
    expect(output.taskDefinition?.containerDefinitions[0]?.image).toBe('example/etl:2');
    expect(environment(output)).toMatchObject({
      PREFECT__DEPLOYMENT_ID: PLACEHOLDER_ID,
      PREFECT__DEPLOYMENT_NAME: PLACEHOLDER_DEPLOYMENT_NAME,
      PREFECT__FLOW_ID: PLACEHOLDER_ID,
      PREFECT__FLOW_NAME: PLACEHOLDER_FLOW_NAME,
    });
  });

  it("takes a deployment file's missing id from the flow run's deployment_id, keeping the name it gives", async () => {
    const run = await cli([
      ...offline,
      '--deployment',
      file('no-id.json', { name: 'nightly', job_variables: { image: 'example/etl:3' } }),
      '--flow-run',
      file('run-of-no-id.json', { id: flowRunId, deployment_id: deploymentId }),
      '--work-pool',
      'p',
      '--subnets',
      'subnet-a',
    ]);
    expect(run).toMatchObject({ status: 0, stderr: '' });
    const output = JSON.parse(run.stdout) as Output;
    expect(output.taskDefinition?.family).toBe(`prefect_p_${deploymentId}`);
    expect(environment(output)).toMatchObject({
      PREFECT__FLOW_RUN_ID: flowRunId,
      PREFECT__DEPLOYMENT_ID: deploymentId,
      PREFECT__DEPLOYMENT_NAME: 'nightly',
    });
  });

  it("passes the launcher's PREFECT_API_URL and credential to the flow, printing a plain credential redacted", async () => {
    const key = 'pnu_abcdefghijklmnopqrstuvwxyz0123456789';
    const run = await cli([...offline, '--work-pool', 'p', '--subnets', 'subnet-a'], {
      PREFECT_API_URL: 'http://prefect.internal:4200/api/',
      PREFECT_API_KEY: key,
    });
    expect(run.status).toBe(0);
    expect(run.stdout).not.toContain(key);
    expect(environment(JSON.parse(run.stdout) as Output)).toMatchObject({
      PREFECT_API_URL: 'http://prefect.internal:4200/api',
      PREFECT_API_KEY: REDACTED,
    });
  });

  it('puts a secret-ARN credential into the task definition as an ECS secret, needing an execution role', async () => {
    const secret = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prefect-key-AbCdEf';
    const env = { PREFECT_API_URL: 'http://prefect.internal:4200/api', PREFECT_API_KEY_SECRET_ARN: secret };
    const withRole = file('with-role.json', {
      ...deployment,
      job_variables: { execution_role_arn: 'arn:aws:iam::123456789012:role/exec' },
    });
    const run = await cli([...offline, '--deployment', withRole, '--subnets', 'subnet-a'], env);
    expect(run.status).toBe(0);
    const output = JSON.parse(run.stdout) as Output;
    expect(output.taskDefinition).toMatchObject({
      executionRoleArn: 'arn:aws:iam::123456789012:role/exec',
      containerDefinitions: [{ secrets: [{ name: 'PREFECT_API_KEY', valueFrom: secret }] }],
    });
    expect(environment(output)).not.toHaveProperty('PREFECT_API_KEY');

    const without = await cli([...offline, '--deployment', deploymentFile, '--subnets', 'subnet-a'], env);
    expect(without.status).toBe(2);
    expect(without.stderr).toMatch(/execution_role_arn/);

    // The launcher's default execution role stands in for the pool's, as in the launcher.
    const launcherRole = 'arn:aws:iam::123456789012:role/launcher-default';
    const withDefault = await cli([...offline, '--deployment', deploymentFile, '--subnets', 'subnet-a'], {
      ...env,
      LAUNCHER_EXECUTION_ROLE_ARN: launcherRole,
    });
    expect(withDefault.status).toBe(0);
    expect((JSON.parse(withDefault.stdout) as Output).taskDefinition).toMatchObject({
      executionRoleArn: launcherRole,
    });
  });

  it('needs no subnets for a network configuration the job gives, and checks its subnets against --subnets', async () => {
    const custom = file('custom-network.json', {
      ...deployment,
      job_variables: {
        vpc_id: 'vpc-1',
        network_configuration: { subnets: ['subnet-x'], assignPublicIp: 'DISABLED' },
      },
    });
    const run = await cli([...offline, '--deployment', custom]);
    expect(run.status).toBe(0);
    expect((JSON.parse(run.stdout) as Output).runTaskRequest.networkConfiguration).toEqual({
      awsvpcConfiguration: { subnets: ['subnet-x'], assignPublicIp: 'DISABLED' },
    });
    const checked = await cli([...offline, '--deployment', custom, '--subnets', 'subnet-a,subnet-b']);
    expect(checked.status).toBe(2);
    expect(checked.stderr).toMatch(/subnet-x.*--subnets/);
  });
});

/** Every bad input: exit 2, stdout empty, one line on stderr that names the culprit. */
const badInputs: [title: string, args: string[], env: Record<string, string>, names: RegExp][] = [
  ['no command', [], {}, /a command is needed/],
  ['an unknown command', ['deploy'], {}, /unknown command "deploy"/],
  ['render without --template or --flow-run-id', ['render'], {}, /--template FILE.*--flow-run-id ID/],
  [
    '--flow-run-id with offline flags',
    ['render', '--flow-run-id', 'x', '--template', 'template.json', '--flow', 'flow.json'],
    {},
    /--flow-run-id .*--template, --flow\b/,
  ],
  ['an unknown option', ['render', '--nope'], {}, /unknown option --nope/],
  ['an option without its value', ['render', '--template'], {}, /--template needs a value/],
  ['a boolean option with a value', ['render', '--help=yes'], {}, /--help takes no value/],
  ['an empty option value', ['render', '--template', ''], {}, /--template is empty/],
  ['a positional argument', [...offline, 'extra'], {}, /"extra"/],
  [
    'a missing template file',
    ['render', '--template', 'nope.json'],
    {},
    /--template nope\.json: no such file/,
  ],
  [
    'a template that is not JSON',
    ['render', '--template', file('broken.json', '{"job_configuration": ')],
    {},
    /--template .*broken\.json: not valid JSON/,
  ],
  [
    'a template that is not an object',
    ['render', '--template', file('list.json', [1, 2])],
    {},
    /--template .*list\.json: must hold a JSON object, got an array/,
  ],
  [
    'a deployment file that is a directory',
    [...offline, '--deployment', dir],
    {},
    /--deployment .*: is a directory/,
  ],
  [
    'a missing flow-run file',
    [...offline, '--flow-run', 'missing.json'],
    {},
    /--flow-run missing\.json: no such file/,
  ],
  [
    'a deployment whose id is not a string',
    [...offline, '--deployment', file('numeric-id.json', { id: 7, name: 'd' })],
    {},
    /--deployment .*numeric-id\.json: field 'id' must be a non-empty string, got 7/,
  ],
  [
    'a flow run with an empty name',
    [...offline, '--flow-run', file('empty-name.json', { name: '' })],
    {},
    /--flow-run .*empty-name\.json: field 'name' must be a non-empty string, got ""/,
  ],
  [
    'a deployment whose job_variables are not an object',
    [...offline, '--deployment', file('list-variables.json', { name: 'd', job_variables: [1] })],
    {},
    /--deployment .*list-variables\.json: field 'job_variables' must be an object, got \[1\]/,
  ],
  [
    'a flow run of another flow',
    [
      ...offline,
      '--flow',
      flowFile,
      '--flow-run',
      file('other-flow-run.json', { flow_id: '00000000-0000-4000-8000-000000000002' }),
    ],
    {},
    /--flow-run .*other-flow-run\.json: flow_id 00000000-0000-4000-8000-000000000002 does not match .* in --flow/,
  ],
  [
    'a flow whose name is not a string',
    [...offline, '--flow', file('bad-flow.json', { id: flowId, name: 7 })],
    {},
    /--flow .*bad-flow\.json: field 'name' must be a non-empty string/,
  ],
  [
    'a flow run of another deployment',
    [
      ...offline,
      '--deployment',
      deploymentFile,
      '--flow-run',
      file('other-run.json', { deployment_id: '00000000-0000-4000-8000-000000000001' }),
    ],
    {},
    /--flow-run .*other-run\.json: deployment_id 00000000-0000-4000-8000-000000000001 does not match/,
  ],
  [
    "a flow run whose deployment isn't given",
    [...offline, '--flow-run', flowRunFile],
    {},
    /--flow-run .*flow-run\.json: .*pass it with --deployment FILE/,
  ],
  ['no work pool name', [...offline], {}, /--work-pool NAME/],
  ['no region', ['render', '--template', templateFile, '--work-pool', 'p'], {}, /--region REGION/],
  [
    'an empty subnet',
    [...offline, '--work-pool', 'p', '--subnets', 'subnet-a,,b'],
    {},
    /--subnets "subnet-a,,b"/,
  ],
  [
    'awsvpc networking without subnets',
    [...offline, '--work-pool', 'p'],
    {},
    /default VPC.*--subnets subnet-a,subnet-b.*network_configuration/,
  ],
  [
    'a job variable of the wrong type',
    [...offline, '--deployment', file('bad-cpu.json', { ...deployment, job_variables: { cpu: 'lots' } })],
    {},
    /job variable 'cpu' must be an integer/,
  ],
  [
    'network_configuration without vpc_id',
    [
      ...offline,
      '--deployment',
      file('no-vpc.json', { ...deployment, job_variables: { network_configuration: { subnets: ['s'] } } }),
    ],
    {},
    /vpc_id.*network_configuration/,
  ],
  [
    'an existing task definition (offline)',
    [
      ...offline,
      '--deployment',
      file('arn.json', { ...deployment, job_variables: { task_definition_arn: 'etl:3' } }),
    ],
    {},
    /task definition etl:3 \(task_definition_arn\).*--flow-run-id/,
  ],
  [
    'a block reference without PREFECT_API_URL',
    [
      ...offline,
      '--deployment',
      file('block.json', {
        ...deployment,
        job_variables: {
          aws_credentials: { $ref: { block_document_id: 'b0c1d2e3-0000-4000-8000-000000000001' } },
        },
      }),
    ],
    {},
    /block document b0c1d2e3-0000-4000-8000-000000000001.*PREFECT_API_URL/,
  ],
  [
    'a variable reference without PREFECT_API_URL',
    [
      ...offline,
      '--deployment',
      file('variable.json', {
        ...deployment,
        job_variables: { image: '{{ prefect.variables.flow_image }}' },
      }),
    ],
    {},
    /Prefect variable 'flow_image'.*PREFECT_API_URL/,
  ],
  [
    'a template without variables',
    ['render', '--template', file('no-variables.json', { job_configuration: {} }), '--work-pool', 'p'],
    { AWS_REGION: 'us-east-1', LAUNCHER_EXECUTION_ROLE_ARN: 'arn:aws:iam::123456789012:role/r' },
    /`variables` must be an object/,
  ],
  [
    'a malformed template',
    [
      'render',
      '--template',
      file('malformed.json', { job_configuration: [], variables: {} }),
      '--work-pool',
      'p',
    ],
    { AWS_REGION: 'us-east-1' },
    /--template .*malformed\.json: .*`job_configuration` must be an object/,
  ],
  [
    "a work pool (prefect work-pool inspect's output) instead of its base job template",
    [
      'render',
      '--template',
      file('work-pool.json', { name: 'p', type: 'ecs', base_job_template: defaultTemplate }),
      '--work-pool',
      'p',
    ],
    { AWS_REGION: 'us-east-1' },
    /--template .*work-pool\.json: holds a work pool, not its base job template; .*base_job_template/,
  ],
  [
    'a bad PREFECT_API_URL',
    [...offline, '--work-pool', 'p'],
    { PREFECT_API_URL: 'not a url' },
    /PREFECT_API_URL/,
  ],
  [
    'render --flow-run-id without PREFECT_API_URL',
    ['render', '--flow-run-id', flowRunId, '--region', 'us-east-1'],
    {},
    /PREFECT_API_URL is not set/,
  ],
  ['pool without a subcommand', ['pool'], {}, /pool needs a command, create or update/],
  ['an unknown pool subcommand', ['pool', 'delete', 'p'], {}, /unknown pool command "delete"/],
  ['pool create without a name', ['pool', 'create'], {}, /pool create needs the work pool's NAME/],
  ['pool create with two names', ['pool', 'create', 'a', 'b'], {}, /one NAME, got also "b"/],
  ['a pool name with a slash', ['pool', 'update', 'a/b'], {}, /"a\/b" must not contain '\/'/],
  [
    'a pool template without job_configuration',
    ['pool', 'create', 'p', '--template', file('no-config.json', { variables: {} })],
    {},
    /--template .*no-config\.json: .*`job_configuration` must be an object/,
  ],
  ['pool create without PREFECT_API_URL', ['pool', 'create', 'p'], {}, /PREFECT_API_URL is not set/],
];

describe('bad input', () => {
  it.each(badInputs)('%s: exit 2 with one line naming it', async (_title, args, env, names) => {
    const run = await cli(args, env);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^[^\n]+\n$/);
    expect(run.stderr).toMatch(names);
  });
});

describe('--help', () => {
  it.each([
    [['--help'], /Usage: prefect-ecs-launcher <command>/],
    [['render', '--help'], /--flow-run-id ID.*\n[\s\S]*Exit status/],
    [['render', '-h'], /--subnets a,b/],
    [['pool', '--help'], /pool create NAME \[--template FILE\]/],
    [['pool', 'update', '--help'], /pool update NAME/],
  ])('%j prints the usage and exits 0', async (args, usage) => {
    const run = await cli(args as string[]);
    expect(run).toMatchObject({ status: 0, stderr: '' });
    expect(run.stdout).toMatch(usage);
  });
});

describe('bin/prefect-ecs-launcher.js (runs the TypeScript sources, no build)', () => {
  const exec = (args: string[]) =>
    new Promise<Run>((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args],
        { cwd: dir, env: { PATH: process.env.PATH ?? '' } },
        (err, stdout, stderr) => {
          resolve({ status: err ? Number(err.code) : 0, stdout, stderr });
        },
      );
    });

  it('renders and exits 0', async () => {
    const run = await exec([...offline, '--work-pool', 'p', '--subnets', 'subnet-a']);
    expect(run).toMatchObject({ status: 0, stderr: '' });
    expect((JSON.parse(run.stdout) as Output).runTaskRequest.group).toBe(taskGroupFor(PLACEHOLDER_ID));
  }, 30_000);

  it('exits 2 with one line on stderr for bad input', async () => {
    const run = await exec(['render', '--template', 'nope.json']);
    expect(run).toEqual({
      status: 2,
      stdout: '',
      stderr: 'prefect-ecs-launcher render: --template nope.json: no such file\n',
    });
  }, 30_000);
});
