import fs from 'node:fs';
import path from 'node:path';
import type { Tag } from '@aws-sdk/client-ecs';
import { JobConfigurationError, LauncherError } from '../../src/errors';
import {
  AUTO_DEREGISTER_TAG_KEY,
  buildRunTaskRequest,
  planNetwork,
  requestedTaskDefinition,
  type TaskDefinitionInfo,
  taskDefinitionInfo,
  validateTaskDefinition,
} from '../../src/render/run-task-request';
import { shlexSplit } from '../../src/render/shlex';
import { buildTaskDefinition, type RenderContext } from '../../src/render/task-definition';
import type { EcsJobConfiguration } from '../../src/render/types';
import { jobConfiguration } from '../harness/job-configuration';

/**
 * Golden cases: test/fixtures/ecs-request/<case>/input.json → expected.json. Inputs were rendered by
 * Prefect's own templating and prepare_for_flow_run; every expected file was compared with what
 * prefect-aws 0.7.12's ECSWorker produces for the same input (see the README there). `UPDATE_GOLDEN=1`
 * rewrites the expected files; format them with Biome and review the diff before committing it.
 */
const goldenRoot = path.join(__dirname, '..', 'fixtures', 'ecs-request');
const update = process.env.UPDATE_GOLDEN === '1';

interface GoldenInput {
  description: string;
  config: EcsJobConfiguration;
  ctx: RenderContext;
  /** For `task_definition_arn` cases: what DescribeTaskDefinition returned. */
  taskDefinition?: TaskDefinitionInfo;
  /** Whether the built definition counts as newly registered (default true). */
  registered?: boolean;
  discoveredSubnets?: string[];
  extraTags?: Tag[];
}

function render(input: GoldenInput): unknown {
  const { config, ctx } = input;
  try {
    let taskDefinition = null;
    let info: TaskDefinitionInfo;
    if (requestedTaskDefinition(config)) {
      if (!input.taskDefinition)
        throw new Error('a task_definition_arn case needs "taskDefinition" in its input');
      info = input.taskDefinition;
    } else {
      taskDefinition = buildTaskDefinition(config, ctx);
      const arn = `arn:aws:ecs:${ctx.region}:123456789012:task-definition/${taskDefinition.family}:1`;
      info = taskDefinitionInfo(arn, taskDefinition, input.registered ?? true);
    }
    const networkPlan = planNetwork(config, info);
    const discoveredSubnets = networkPlan.kind === 'discover' ? input.discoveredSubnets : undefined;
    const runTaskRequest = buildRunTaskRequest(
      config,
      info,
      { discoveredSubnets },
      { extraTags: input.extraTags ?? [] },
    );
    return JSON.parse(JSON.stringify({ taskDefinition, networkPlan, runTaskRequest }));
  } catch (err) {
    if (err instanceof LauncherError) return { error: { name: err.name, message: err.message } };
    throw err;
  }
}

const cases = fs
  .readdirSync(goldenRoot, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('golden ECS requests', () => {
  it('has at least 20 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases)('%s', (name) => {
    const dir = path.join(goldenRoot, name);
    const input = JSON.parse(fs.readFileSync(path.join(dir, 'input.json'), 'utf8')) as GoldenInput;
    const actual = render(input);
    const expectedPath = path.join(dir, 'expected.json');
    if (update) fs.writeFileSync(expectedPath, `${JSON.stringify(actual, null, 2)}\n`);
    expect(fs.existsSync(expectedPath)).toBe(true);
    expect(actual).toEqual(JSON.parse(fs.readFileSync(expectedPath, 'utf8')));
  });
});

/** The configuration prefect-aws renders from its default template without job variables. */
function defaultConfig(overrides: Partial<EcsJobConfiguration> = {}): EcsJobConfiguration {
  return jobConfiguration({
    env: { PREFECT_API_URL: 'http://prefect:4200/api', PREFECT__FLOW_RUN_ID: 'run-1' },
    labels: { 'prefect.io/flow-run-id': 'run-1' },
    name: 'crimson-fox',
    ...overrides,
  });
}

const fargate: TaskDefinitionInfo = {
  arn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/f:1',
  networkMode: 'awsvpc',
  requiresCompatibilities: ['FARGATE'],
  containerDefinitions: [{ name: 'prefect' }],
};
const subnets = { discoveredSubnets: ['subnet-a'] };

describe('buildRunTaskRequest', () => {
  it('builds the worker default request', () => {
    const req = buildRunTaskRequest(defaultConfig(), fargate, subnets);
    expect(req).toEqual({
      launchType: 'FARGATE',
      taskDefinition: fargate.arn,
      networkConfiguration: {
        awsvpcConfiguration: { subnets: ['subnet-a'], assignPublicIp: 'ENABLED', securityGroups: [] },
      },
      overrides: {
        containerOverrides: [
          {
            name: 'prefect',
            command: ['prefect', 'flow-run', 'execute'],
            environment: [
              { name: 'PREFECT_API_URL', value: 'http://prefect:4200/api' },
              { name: 'PREFECT__FLOW_RUN_ID', value: 'run-1' },
            ],
          },
        ],
      },
      tags: [{ key: 'prefect.io/flow-run-id', value: 'run-1' }],
    });
  });

  it('refuses to guess subnets it was not given', () => {
    expect(() => buildRunTaskRequest(defaultConfig(), fargate, {})).toThrow(/discoveredSubnets/);
  });

  it('does not touch the input configuration', () => {
    const config = defaultConfig();
    const before = JSON.stringify(config);
    buildRunTaskRequest(config, fargate, subnets);
    expect(JSON.stringify(config)).toBe(before);
  });

  it('adds the (misspelt) auto-deregistration tag only for a revision this launch registered', () => {
    const config = defaultConfig({ auto_deregister_task_definition: true });
    const tagsOf = (registered: boolean) =>
      buildRunTaskRequest(config, { ...fargate, registered }, subnets).tags?.map((t) => t.key);
    expect(tagsOf(true)).toContain(AUTO_DEREGISTER_TAG_KEY);
    expect(AUTO_DEREGISTER_TAG_KEY).toBe('prefect.io/degregister-task-definition');
    expect(tagsOf(false)).not.toContain(AUTO_DEREGISTER_TAG_KEY);
  });

  it('lets launcher tags win over job labels of the same key', () => {
    const config = defaultConfig({ labels: { owner: 'job' } });
    const req = buildRunTaskRequest(config, fargate, subnets, {
      extraTags: [{ key: 'owner', value: 'launcher' }],
    });
    expect(req.tags).toEqual([{ key: 'owner', value: 'launcher' }]);
  });

  it('keeps prefect.io labels when the 50-tag cap bites', () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i < 70; i++) labels[`a-${i}`] = 'x';
    labels['prefect.io/flow-run-id'] = 'run-1';
    labels['prefect.io/flow-name'] = 'etl';
    const req = buildRunTaskRequest(defaultConfig({ labels }), fargate, subnets);
    const keys = req.tags?.map((t) => t.key) ?? [];
    expect(keys).toHaveLength(50);
    expect(keys).toContain('prefect.io/flow-run-id');
    expect(keys).toContain('prefect.io/flow-name');
    expect(keys).toContain('a-47');
    expect(keys).not.toContain('a-48');
  });

  it('merges tags whose slugs collide, the later one winning', () => {
    const config = defaultConfig({ labels: { 'team name': 'a', 'team-name': 'b' } });
    expect(buildRunTaskRequest(config, fargate, subnets).tags).toEqual([{ key: 'team-name', value: 'b' }]);
  });

  it('leaves group and startedBy to the caller but keeps them from a template', () => {
    const config = defaultConfig({
      task_run_request: { launchType: 'FARGATE', group: 'family:x', overrides: { containerOverrides: [{}] } },
    });
    const req = buildRunTaskRequest(config, fargate, subnets);
    expect(req.group).toBe('family:x');
    expect(req.startedBy).toBeUndefined();
  });

  it('refuses a task definition without the flow container', () => {
    expect(() => buildRunTaskRequest(defaultConfig({ container_name: 'flow' }), fargate, subnets)).toThrow(
      new JobConfigurationError("Container 'flow' not found in task definition."),
    );
  });

  it('refuses environment values that are not strings', () => {
    const config = defaultConfig({
      task_run_request: { overrides: { containerOverrides: [{ environment: { N: 1 } }] } },
    });
    expect(() => buildRunTaskRequest(config, fargate, subnets)).toThrow(
      "Environment variable 'N' of container override 'prefect' must be a string, got 1.",
    );
  });
});

describe('validateTaskDefinition', () => {
  const cases: [string, Partial<EcsJobConfiguration>, Omit<TaskDefinitionInfo, 'arn'>, string | null][] = [
    ['fargate default', {}, { networkMode: 'awsvpc', requiresCompatibilities: ['FARGATE'] }, null],
    [
      'logs need an execution role',
      { configure_cloudwatch_logs: true },
      { networkMode: 'awsvpc' },
      'An execution role arn must be set on the task definition to use `configure_cloudwatch_logs` or `stream_logs` but no execution role was found on the task definition.',
    ],
    [
      'EC2-only definition with FARGATE',
      {},
      { requiresCompatibilities: ['EC2'] },
      "Task definition does not have 'FARGATE' in 'requiresCompatibilities' and cannot be used with launch type 'FARGATE'",
    ],
    [
      'EC2-only definition without launch type',
      { task_run_request: {} },
      { requiresCompatibilities: ['EC2'], networkMode: 'bridge' },
      null,
    ],
    [
      'capacity providers skip the checks',
      { task_run_request: { capacityProviderStrategy: [{ capacityProvider: 'x', weight: 1 }] } },
      { requiresCompatibilities: ['EC2'], networkMode: 'bridge' },
      null,
    ],
    [
      'FARGATE_SPOT checks the network mode',
      { task_run_request: { launchType: 'FARGATE_SPOT' } },
      { networkMode: 'bridge' },
      "Found network mode 'bridge' which is not compatible with launch type 'FARGATE_SPOT'. Use either the 'EC2' launch type or the 'awsvpc' network mode.",
    ],
    [
      'EXTERNAL needs FARGATE like the worker unless the definition requires EXTERNAL',
      { task_run_request: { launchType: 'EXTERNAL' } },
      { requiresCompatibilities: ['EC2'] },
      "Task definition does not have 'FARGATE' in 'requiresCompatibilities' and cannot be used with launch type 'EXTERNAL'",
    ],
    [
      'EXTERNAL definition',
      { task_run_request: { launchType: 'EXTERNAL' } },
      { requiresCompatibilities: ['EXTERNAL'] },
      null,
    ],
    [
      'EC2 launch type with bridge',
      { task_run_request: { launchType: 'EC2' } },
      { networkMode: 'bridge' },
      null,
    ],
  ];
  it.each(cases)('%s', (_name, config, td, message) => {
    const run = () => validateTaskDefinition(td, defaultConfig(config));
    if (message === null) expect(run).not.toThrow();
    else expect(run).toThrow(new JobConfigurationError(message));
  });
});

describe('planNetwork', () => {
  it('discovers only for awsvpc without a configured network', () => {
    expect(planNetwork(defaultConfig(), { networkMode: 'awsvpc' })).toEqual({
      kind: 'discover',
      vpcId: null,
    });
    expect(planNetwork(defaultConfig({ vpc_id: 'vpc-1' }), { networkMode: 'awsvpc' })).toEqual({
      kind: 'discover',
      vpcId: 'vpc-1',
    });
    expect(planNetwork(defaultConfig(), { networkMode: 'bridge' })).toEqual({ kind: 'none' });
    const templated = defaultConfig({
      task_run_request: { networkConfiguration: { awsvpcConfiguration: { subnets: ['s'] } } },
    });
    expect(planNetwork(templated, { networkMode: 'awsvpc' })).toEqual({ kind: 'none' });
  });

  it('checks a custom network configuration against its VPC', () => {
    const config = defaultConfig({ vpc_id: 'vpc-1', network_configuration: { subnets: ['s1', 's2'] } });
    expect(planNetwork(config, { networkMode: 'awsvpc' })).toEqual({
      kind: 'check',
      vpcId: 'vpc-1',
      subnets: ['s1', 's2'],
    });
  });

  it('needs a vpc_id for a custom network configuration', () => {
    const config = defaultConfig({ network_configuration: { subnets: ['s1'] } });
    expect(() => planNetwork(config, { networkMode: 'bridge' })).toThrow(
      'You must provide a `vpc_id` to enable custom `network_configuration`.',
    );
  });
});

describe('shlexSplit (POSIX, as Python shlex.split)', () => {
  // Expected values from CPython 3.11 `shlex.split(s)`.
  const cases: [string, string[]][] = [
    ['prefect flow-run execute', ['prefect', 'flow-run', 'execute']],
    ['  a\t b\n c  ', ['a', 'b', 'c']],
    ["a 'b c' d", ['a', 'b c', 'd']],
    ['a "b \\" c" d', ['a', 'b " c', 'd']],
    ['"a\\b" "a\\\\b"', ['a\\b', 'a\\b']],
    ["'a\\b'", ['a\\b']],
    ['a\\ b c', ['a b', 'c']],
    ["''", ['']],
    ['""', ['']],
    ["a''b", ['ab']],
    ['x\'y\'"z"', ['xyz']],
    ['a # not a comment', ['a', '#', 'not', 'a', 'comment']],
    ['\\\n', ['\n']],
    ['', []],
    ['   ', []],
    ['$HOME `x` ; |', ['$HOME', '`x`', ';', '|']],
  ];
  it.each(cases)('%j', (input, expected) => {
    expect(shlexSplit(input)).toEqual(expected);
  });

  it('raises Python errors', () => {
    expect(() => shlexSplit('a "b')).toThrow('No closing quotation');
    expect(() => shlexSplit("a 'b")).toThrow('No closing quotation');
    expect(() => shlexSplit('a \\')).toThrow('No escaped character');
    expect(() => shlexSplit('"a \\')).toThrow('No escaped character');
  });
});
