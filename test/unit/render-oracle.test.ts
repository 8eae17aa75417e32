import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import storedDefaultTemplate from '../../src/render/default-base-job-template.json';

/**
 * python/render_oracle.py runs prefect-aws 0.7.12's ECSWorker on one case with in-memory Prefect and AWS
 * fakes; these tests pin its contract (JSON in, JSON out) and a few things it must get right for the
 * differential tests to mean anything: the worker's own output, nothing from this machine's environment.
 */
const root = path.join(__dirname, '..', '..');
const python = path.join(root, '.venv', 'bin', 'python');
const oracle = path.join(root, 'python', 'render_oracle.py');
const run = promisify(execFile);

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
interface NameValue {
  name: string;
  value: string;
}
interface OracleAnswer {
  taskDefinition?: { [key: string]: Json } | null;
  runTaskRequest?: {
    taskDefinition: string;
    launchType?: string;
    capacityProviderStrategy?: Json;
    networkConfiguration?: Json;
    overrides: { containerOverrides: { name: string; command: string[]; environment: NameValue[] }[] };
    tags: { key: string; value: string }[];
  };
  error?: { type: string; message: string };
}

async function oracleJson(
  args: string[],
  input: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<unknown> {
  const child = run(python, [oracle, ...args], { cwd: root, env, maxBuffer: 16 * 1024 * 1024 });
  child.child.stdin?.end(input);
  const { stdout } = await child;
  return JSON.parse(stdout);
}

const ids = {
  flowRun: '8e1d3b1c-6a2f-4c57-9d1e-0b7f2a4c5d6e',
  flow: '1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081',
  deployment: '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b',
  pool: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
};
const apiUrl = 'http://127.0.0.1:4200/api';
const arn = 'arn:aws:ecs:us-east-1:123456789012:task-definition/existing:7';

function oracleCase(
  template: unknown,
  deploymentVariables: { [key: string]: Json },
  flowRunVariables: { [key: string]: Json } = {},
  extra: { [key: string]: Json } = {},
): string {
  return JSON.stringify({
    template,
    deployment: {
      id: ids.deployment,
      name: 'nightly',
      flow_id: ids.flow,
      updated: '2026-11-20T09:30:00+01:00',
      job_variables: deploymentVariables,
    },
    flow_run: {
      id: ids.flowRun,
      name: 'crimson-fox',
      flow_id: ids.flow,
      deployment_id: ids.deployment,
      job_variables: flowRunVariables,
    },
    flow: { id: ids.flow, name: 'etl' },
    work_pool: { id: ids.pool, name: 'my-pool' },
    worker_name: 'oracle-worker',
    api_url: apiUrl,
    api_key: null,
    auth_string: null,
    region: 'us-east-1',
    subnets: {
      default_vpc: 'vpc-123',
      vpcs: { 'vpc-123': ['subnet-a', 'subnet-b'], 'vpc-456': ['subnet-c'] },
    },
    blocks: {},
    blocks_by_name: {},
    variables: {},
    ...extra,
  });
}

function environment(answer: OracleAnswer): { [name: string]: string } {
  const override = answer.runTaskRequest?.overrides.containerOverrides[0];
  return Object.fromEntries((override?.environment ?? []).map(({ name, value }) => [name, value]));
}

let template: unknown;
let answers: { [name: string]: OracleAnswer };
let defaultAgain: OracleAnswer;

beforeAll(async () => {
  template = await oracleJson(['--default-template'], '');
  const cases: { [name: string]: string } = {
    default: oracleCase(template, {}),
    fargateSpot: oracleCase(
      template,
      { launch_type: 'FARGATE_SPOT', env: { FROM_DEPLOYMENT: 'd', SHARED: 'deployment' } },
      { env: { SHARED: 'flow-run' }, cpu: 512 },
      { api_key: 'pnu_test_key' },
    ),
    taskDefinitionArn: oracleCase(template, {
      task_definition_arn: arn,
      vpc_id: 'vpc-456',
      network_configuration: { subnets: ['subnet-c'], assignPublicIp: 'DISABLED' },
    }),
    references: oracleCase(
      template,
      {
        aws_credentials: { $ref: { block_document_id: 'b0c1d2e3-0000-4000-8000-000000000001' } },
        cluster: '{{ prefect.blocks.string.ecs-cluster }}',
        image: '{{ prefect.variables.flow_image }}',
      },
      {},
      {
        blocks: { 'b0c1d2e3-0000-4000-8000-000000000001': { region_name: 'eu-west-1' } },
        blocks_by_name: { 'string/ecs-cluster': { value: 'etl-cluster' } },
        variables: { flow_image: 'example/etl:1.2' },
      },
    ),
    networkWithoutVpc: oracleCase(template, { network_configuration: { subnets: ['subnet-c'] } }),
    nullCluster: oracleCase(template, { cluster: null }),
  };
  // This machine's own Prefect and AWS settings must not reach the answer.
  const leakyEnv = {
    ...process.env,
    PREFECT_API_KEY: 'pnu_leaked',
    PREFECT_DEBUG_MODE: 'true',
    AWS_REGION: 'ap-south-1',
  };
  const names = Object.keys(cases);
  const results = await Promise.all([
    ...names.map((name) => oracleJson([], cases[name] ?? '', leakyEnv)),
    oracleJson([], cases.default ?? ''),
  ]);
  answers = Object.fromEntries(names.map((name, i) => [name, results[i] as OracleAnswer]));
  defaultAgain = results[names.length] as OracleAnswer;
}, 60_000);

describe('render oracle', () => {
  it("prints prefect-aws's default base job template, the one stored for the launcher", () => {
    expect(template).toEqual(storedDefaultTemplate);
    expect(template).toMatchObject({
      job_configuration: { task_definition: { containerDefinitions: [{ image: '{{ image }}' }] } },
      variables: { properties: { launch_type: { default: 'FARGATE' } } },
    });
  });

  it('renders the default template with a minimal deployment as a Fargate task in the default VPC', () => {
    const answer = answers.default;
    expect(answer?.taskDefinition).toEqual({
      family: `prefect_my-pool_${ids.deployment}`,
      containerDefinitions: [
        { name: 'prefect', image: expect.stringMatching(/^prefecthq\/prefect:3\.9\.1-python3\.\d+$/) },
      ],
      cpu: '1024',
      memory: '2048',
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
    });
    const request = answer?.runTaskRequest;
    expect(request?.taskDefinition).toBe(
      `arn:aws:ecs:us-east-1:123456789012:task-definition/prefect_my-pool_${ids.deployment}:1`,
    );
    expect(request?.launchType).toBe('FARGATE');
    expect(request?.capacityProviderStrategy).toBeUndefined();
    expect(request?.networkConfiguration).toEqual({
      awsvpcConfiguration: {
        subnets: ['subnet-a', 'subnet-b'],
        assignPublicIp: 'ENABLED',
        securityGroups: [],
      },
    });
    expect(request?.overrides.containerOverrides).toHaveLength(1);
    expect(request?.overrides.containerOverrides[0]?.command).toEqual(['prefect', 'flow-run', 'execute']);
    expect(environment(answer ?? {})).toEqual({
      PREFECT_API_URL: apiUrl,
      PREFECT__FLOW_RUN_ID: ids.flowRun,
      PREFECT__WORKER_NAME: 'oracle-worker',
      PREFECT__FLOW_ID: ids.flow,
      PREFECT__FLOW_NAME: 'etl',
      PREFECT__DEPLOYMENT_ID: ids.deployment,
      PREFECT__DEPLOYMENT_NAME: 'nightly',
    });
    expect(request?.tags).toContainEqual({
      key: 'prefect.io/deployment-updated',
      value: '2026-11-20T08:30:00+00:00',
    });
    expect(request?.tags).toContainEqual({ key: 'prefect.io/flow-run-name', value: 'crimson-fox' });
  });

  it('gives the same answer for the same case, whatever the environment it runs in', () => {
    expect(defaultAgain).toEqual(answers.default);
  });

  it('turns FARGATE_SPOT into a capacity provider strategy and merges deployment and flow-run env', () => {
    const answer = answers.fargateSpot;
    expect(answer?.runTaskRequest?.launchType).toBeUndefined();
    expect(answer?.runTaskRequest?.capacityProviderStrategy).toEqual([
      { capacityProvider: 'FARGATE_SPOT', weight: 1 },
    ]);
    expect(answer?.taskDefinition).toMatchObject({
      cpu: '512',
      memory: '2048',
      requiresCompatibilities: ['FARGATE'],
    });
    expect(environment(answer ?? {})).toMatchObject({
      PREFECT_API_KEY: 'pnu_test_key',
      PREFECT__FLOW_RUN_ID: ids.flowRun,
      FROM_DEPLOYMENT: 'd',
      SHARED: 'flow-run',
    });
  });

  it('uses a task definition ARN as given and a custom network configuration verbatim', () => {
    const answer = answers.taskDefinitionArn;
    expect(answer?.taskDefinition).toBeNull();
    expect(answer?.runTaskRequest?.taskDefinition).toBe(arn);
    expect(answer?.runTaskRequest?.networkConfiguration).toEqual({
      awsvpcConfiguration: { subnets: ['subnet-c'], assignPublicIp: 'DISABLED' },
    });
  });

  it('resolves block documents and variables from the case, and takes the region from the credentials block', () => {
    const answer = answers.references;
    expect(answer?.taskDefinition).toMatchObject({ containerDefinitions: [{ image: 'example/etl:1.2' }] });
    expect(answer?.runTaskRequest).toMatchObject({
      cluster: 'etl-cluster',
      taskDefinition: `arn:aws:ecs:eu-west-1:123456789012:task-definition/prefect_my-pool_${ids.deployment}:1`,
    });
  });

  it('reports an invalid job configuration as the exception the worker would crash the run with', () => {
    expect(answers.networkWithoutVpc).toEqual({
      error: {
        type: 'ValidationError',
        message: expect.stringContaining(
          'You must provide a `vpc_id` to enable custom `network_configuration`.',
        ),
      },
    });
  });

  it('fails like boto3 when the unpruned request carries an explicit null', () => {
    expect(answers.nullCluster).toEqual({
      error: {
        type: 'ParamValidationError',
        message: expect.stringContaining('Invalid type for parameter cluster, value: None'),
      },
    });
  });
});
