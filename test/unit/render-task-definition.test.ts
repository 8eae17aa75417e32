import fs from 'node:fs';
import path from 'node:path';
import { JobConfigurationError } from '../../src/errors';
import { pyRepr } from '../../src/render/pyrepr';
import { sanitizeFamilyPart, slugifyTag } from '../../src/render/slugify';
import {
  buildTaskDefinition,
  DEFAULT_PREFECT_IMAGE,
  dropEmptyKeys,
  type RenderContext,
  taskDefinitionFamily,
  taskDefinitionsEqual,
  validateFargateSize,
} from '../../src/render/task-definition';
import { jobConfiguration } from '../harness/job-configuration';

const ctx: RenderContext = {
  workPoolName: 'my-pool',
  deploymentId: '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b',
  flowId: '1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081',
  region: 'us-east-1',
};

const config = jobConfiguration;

describe('buildTaskDefinition', () => {
  it('builds the worker default Fargate definition', () => {
    expect(buildTaskDefinition(config(), ctx)).toEqual({
      family: 'prefect_my-pool_5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b',
      containerDefinitions: [{ name: 'prefect', image: DEFAULT_PREFECT_IMAGE }],
      cpu: '1024',
      memory: '2048',
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
    });
  });

  it('puts int cpu/memory on the container outside Fargate', () => {
    const td = buildTaskDefinition(config({ task_run_request: { launchType: 'EC2' } }), ctx);
    expect(td.containerDefinitions).toEqual([
      { name: 'prefect', image: DEFAULT_PREFECT_IMAGE, cpu: 1024, memory: 2048 },
    ]);
    expect(td.cpu).toBeUndefined();
    expect(td.requiresCompatibilities).toBeUndefined();
  });

  it("names the first unnamed container 'prefect' and keeps named ones", () => {
    const td = buildTaskDefinition(
      config({
        task_definition: { containerDefinitions: [{ image: 'img' }, { name: 'sidecar', image: 's' }] },
      }),
      ctx,
    );
    expect(td.containerDefinitions?.map((c) => c.name)).toEqual(['prefect', 'sidecar']);
  });

  it('uses a named first container as the flow container', () => {
    const td = buildTaskDefinition(
      config({ task_definition: { containerDefinitions: [{ name: 'app' }] } }),
      ctx,
    );
    expect(td.containerDefinitions).toEqual([{ name: 'app', image: DEFAULT_PREFECT_IMAGE }]);
  });

  it('refuses a container_name the template does not have, with the worker message', () => {
    expect(() =>
      buildTaskDefinition(
        config({ container_name: "it's", task_definition: { containerDefinitions: [{}] } }),
        ctx,
      ),
    ).toThrow(new JobConfigurationError('Container "it\'s" not found in task definition.'));
  });

  it('validates Fargate sizes before registration', () => {
    const bad = config({ task_definition: { containerDefinitions: [{}], cpu: 512, memory: 512 } });
    expect(() => buildTaskDefinition(bad, ctx)).toThrow(JobConfigurationError);
    const ec2 = config({
      task_definition: { containerDefinitions: [{}], cpu: 512, memory: 512 },
      task_run_request: { launchType: 'EC2' },
    });
    expect(() => buildTaskDefinition(ec2, ctx)).not.toThrow();
  });

  it('drops definition env items unset in the job env or null', () => {
    const td = buildTaskDefinition(
      config({
        env: { GONE: null } as unknown as Record<string, string>,
        task_definition: {
          containerDefinitions: [
            {
              environment: [
                { name: 'KEEP', value: 'x' },
                { name: 'GONE', value: 'y' },
                { name: 'NULL', value: null },
              ],
            },
          ],
        },
      }),
      ctx,
    );
    expect(td.containerDefinitions?.[0]?.environment).toEqual([{ name: 'KEEP', value: 'x' }]);
  });

  it('does not touch the input configuration', () => {
    const c = config({ prefect_api_key_secret_arn: 'arn:secret', configure_cloudwatch_logs: true });
    const before = JSON.stringify(c);
    buildTaskDefinition(c, ctx);
    expect(JSON.stringify(c)).toBe(before);
  });
});

describe('dropEmptyKeys (prefect-aws _drop_empty_keys_from_dict)', () => {
  it('drops None, empty string, 0, [] and {} but keeps False, judging before recursing', () => {
    const obj = {
      none: null,
      empty: '',
      zero: 0,
      list: [],
      dict: {},
      no: false,
      yes: true,
      nested: { a: null, b: { c: 0 }, d: [{ e: '' }, {}, null, 0] },
      emptiedByRecursion: { only: null },
    };
    dropEmptyKeys(obj);
    expect(obj).toEqual({
      no: false,
      yes: true,
      nested: { b: {}, d: [{}, {}, null, 0] },
      emptiedByRecursion: {},
    });
  });
});

describe('taskDefinitionsEqual', () => {
  const ours = buildTaskDefinition(
    config({
      task_definition: {
        containerDefinitions: [
          {
            environment: [
              { name: 'B', value: '2' },
              { name: 'A', value: '1' },
            ],
          },
        ],
      },
    }),
    ctx,
  );
  const described = {
    taskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/x:3',
    revision: 3,
    status: 'ACTIVE',
    registeredAt: new Date(),
    registeredBy: 'arn:aws:iam::123456789012:user/x',
    compatibilities: ['EC2', 'FARGATE'],
    requiresAttributes: [{ name: 'com.amazonaws.ecs.capability.docker-remote-api.1.18' }],
    placementConstraints: [],
    volumes: [],
    enableFaultInjection: false,
    ...structuredClone(ours),
    containerDefinitions: [
      {
        name: 'prefect',
        image: DEFAULT_PREFECT_IMAGE,
        cpu: 0,
        essential: true,
        portMappings: [],
        mountPoints: [],
        volumesFrom: [],
        systemControls: [],
        environment: [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
      },
    ],
  };

  it('ignores what ECS adds on registration and the order of env items', () => {
    expect(taskDefinitionsEqual(ours, described)).toBe(true);
  });

  it('ignores tags, which DescribeTaskDefinition does not return', () => {
    expect(taskDefinitionsEqual({ ...ours, tags: [{ key: 'a', value: 'b' }] }, described)).toBe(true);
  });

  it('sees a changed image, env value or network mode', () => {
    const changed = structuredClone(described);
    (changed.containerDefinitions[0] as { image: string }).image = 'other';
    expect(taskDefinitionsEqual(ours, changed)).toBe(false);
    const env = structuredClone(described);
    (env.containerDefinitions[0] as { environment: { value: string }[] }).environment[0] = {
      name: 'A',
      value: 'x',
    } as never;
    expect(taskDefinitionsEqual(ours, env)).toBe(false);
    expect(taskDefinitionsEqual(ours, { ...described, networkMode: 'bridge' })).toBe(false);
  });

  it("treats a missing networkMode as 'bridge' on both sides", () => {
    const { networkMode: _drop, ...withoutMode } = ours;
    expect(taskDefinitionsEqual(withoutMode, { ...described, networkMode: 'bridge' })).toBe(true);
  });

  it('sees an enabled fault injection', () => {
    expect(taskDefinitionsEqual(ours, { ...described, enableFaultInjection: true })).toBe(false);
  });
});

describe('family', () => {
  it('keeps every family ECS accepts unchanged, case included', () => {
    expect(taskDefinitionFamily('My_Flows-2', ctx)).toBe('My_Flows-2');
  });

  it('sanitises what ECS refuses', () => {
    expect(taskDefinitionFamily('My Flows/v2.1 (nightly)', ctx)).toBe('My-Flows-v2-1-nightly');
    expect(taskDefinitionFamily('x'.repeat(300), ctx)).toHaveLength(255);
    expect(() => taskDefinitionFamily('!!!', ctx)).toThrow(JobConfigurationError);
  });

  it('keeps the deployment id whole when a long pool name is shortened', () => {
    const family = taskDefinitionFamily(null, { ...ctx, workPoolName: `pool ${'é'.repeat(400)}` });
    expect(family).toHaveLength(255);
    expect(family.startsWith('prefect_pool-eeee')).toBe(true);
    expect(family.endsWith(`_${ctx.deploymentId}`)).toBe(true);
  });

  it('uses the flow id without a deployment', () => {
    expect(taskDefinitionFamily('', { ...ctx, deploymentId: null })).toBe(`prefect_my-pool_${ctx.flowId}`);
  });

  it('folds accents and keeps the result valid', () => {
    expect(sanitizeFamilyPart('Zürich — Prod')).toBe('Zurich-Prod');
    expect(sanitizeFamilyPart('日本')).toBe('');
  });
});

describe('validateFargateSize', () => {
  const valid: [number, number][] = [
    [256, 512],
    [256, 2048],
    [512, 4096],
    [1024, 2048],
    [2048, 16384],
    [4096, 30720],
    [8192, 20480],
    [16384, 122880],
  ];
  const invalid: [number | string, number | string][] = [
    [256, 4096],
    [512, 512],
    [4096, 31744],
    [8192, 18432],
    [16384, 36864],
    [300, 1024],
    ['one', 1024],
  ];
  it.each(valid)('accepts cpu %d with memory %d', (cpu, memory) => {
    expect(() => validateFargateSize(String(cpu), String(memory))).not.toThrow();
  });
  it.each(invalid)('refuses cpu %s with memory %s', (cpu, memory) => {
    expect(() => validateFargateSize(String(cpu), String(memory))).toThrow(JobConfigurationError);
  });
  it('reads vCPU and GB strings like ECS', () => {
    expect(() => validateFargateSize('0.25 vCPU', '0.5GB')).not.toThrow();
    expect(() => validateFargateSize('1 vcpu', '16 GB')).toThrow(
      'Fargate does not support memory 16384 with cpu 1024; with cpu 1024, memory must be 2048 to 8192 MiB in steps of 1024.',
    );
  });
});

describe('slugifyTag against python-slugify', () => {
  // Generated by test/fixtures/slugify/generate.py with prefect-aws's own tag slugify.
  const cases = JSON.parse(
    fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'slugify', 'cases.json'), 'utf8'),
  ) as { text: string; slug: string }[];
  it('has the generated cases', () => {
    expect(cases.length).toBeGreaterThan(500);
  });
  it.each(cases.map((c) => [c.text, c.slug]))('%j → %j', (text, slug) => {
    expect(slugifyTag(text)).toBe(slug);
  });
});

describe('pyRepr', () => {
  it.each([
    ['abc', "'abc'"],
    ["it's", `"it's"`],
    [`it's "x"`, `'it\\'s "x"'`],
    ['a\\b\n', "'a\\\\b\\n'"],
    [null, 'None'],
    [['a', 'b'], "['a', 'b']"],
  ])('%j', (value, repr) => {
    expect(pyRepr(value)).toBe(repr);
  });
});
