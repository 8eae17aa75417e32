import fs from 'node:fs';
import path from 'node:path';
import { JobConfigurationError, LauncherError, PrefectApiError } from '../../src/errors';
import defaultTemplate from '../../src/render/default-base-job-template.json';
import {
  DEFAULT_COMMAND,
  type FlowRunContext,
  type PrepareJobConfigurationInput,
  parseJobConfiguration,
  prepareJobConfiguration,
  utcIsoformat,
  VERSION_LABEL,
} from '../../src/render/job-configuration';
import {
  checkJobVariables,
  expandDottedKeys,
  mergeJobVariables,
  poolDefaults,
} from '../../src/render/job-variables';
import { resolveReferences } from '../../src/render/references';
import type { BaseJobTemplate, Json, JsonObject, TemplateReferenceReader } from '../../src/render/types';

/**
 * Golden cases: test/fixtures/job-configuration/<case>/input.json → expected.json. Every expected file was
 * reviewed by hand and compared with what prefect 3.9.1 / prefect-aws 0.7.12's
 * `ECSJobConfiguration.resolve_for_flow_run` produces for the same input (crosscheck.py there; README.md
 * lists the deliberate differences). `UPDATE_GOLDEN=1` rewrites the expected files; format them with Biome
 * and review the diff before committing it.
 */
const goldenRoot = path.join(__dirname, '..', 'fixtures', 'job-configuration');
const update = process.env.UPDATE_GOLDEN === '1';
const DEFAULT_TEMPLATE = defaultTemplate as unknown as BaseJobTemplate;

interface GoldenInput extends FlowRunContext {
  description: string;
  /** "default": prefect-aws's default base job template (src/render/default-base-job-template.json). */
  template: BaseJobTemplate | 'default';
  /** Block documents by ID, by `<type slug>/<name>`, and variables by name, as the Prefect API has them. */
  blocks?: { [id: string]: JsonObject };
  blocksByName?: { [slugAndName: string]: JsonObject };
  variables?: { [name: string]: Json };
}

/** An in-memory Prefect API for references; a missing block by ID answers 404, as the real client throws. */
class MemoryReader implements TemplateReferenceReader {
  readonly reads: string[] = [];
  private inFlight = 0;
  /** The most reads that were waiting for an answer at the same time. */
  maxInFlight = 0;
  constructor(
    private readonly data: Pick<GoldenInput, 'blocks' | 'blocksByName' | 'variables'> = {},
    private readonly delayMs = 0,
  ) {}

  private async pause(): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.inFlight--;
  }

  async readBlockDocumentData(id: string): Promise<JsonObject> {
    this.reads.push(`block ${id}`);
    await this.pause();
    const data = this.data.blocks?.[id];
    if (!data) {
      throw new PrefectApiError(
        `Prefect API GET /block_documents/${id} failed: 404 Not Found: Block document not found`,
        `/block_documents/${id}`,
        404,
        'Block document not found',
      );
    }
    return structuredClone(data);
  }

  async readBlockDocumentDataByName(slug: string, name: string): Promise<JsonObject | null> {
    this.reads.push(`block ${slug}/${name}`);
    await this.pause();
    const data = this.data.blocksByName?.[`${slug}/${name}`];
    return data ? structuredClone(data) : null;
  }

  async readVariableValue(name: string): Promise<Json | undefined> {
    this.reads.push(`variable ${name}`);
    await this.pause();
    const variables = this.data.variables ?? {};
    return Object.hasOwn(variables, name) ? structuredClone(variables[name]) : undefined;
  }
}

async function render(input: GoldenInput): Promise<unknown> {
  const reader = new MemoryReader(input);
  const template = input.template === 'default' ? DEFAULT_TEMPLATE : input.template;
  let outcome: { config: unknown } | { error: { name: string; message: string } };
  try {
    outcome = { config: await prepareJobConfiguration({ ...input, template, references: reader }) };
  } catch (err) {
    if (!(err instanceof LauncherError)) throw err;
    outcome = { error: { name: err.name, message: err.message } };
  }
  // Each distinct reference is read once per render.
  expect(new Set(reader.reads).size).toBe(reader.reads.length);
  return JSON.parse(JSON.stringify({ ...outcome, reads: [...reader.reads].sort() }));
}

const cases = fs
  .readdirSync(goldenRoot, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('golden job configurations', () => {
  it('has at least 25 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  it.each(cases)('%s', async (name) => {
    const dir = path.join(goldenRoot, name);
    const input = JSON.parse(fs.readFileSync(path.join(dir, 'input.json'), 'utf8')) as GoldenInput;
    const actual = await render(input);
    const expectedPath = path.join(dir, 'expected.json');
    if (update) fs.writeFileSync(expectedPath, `${JSON.stringify(actual, null, 2)}\n`);
    expect(fs.existsSync(expectedPath)).toBe(true);
    expect(actual).toEqual(JSON.parse(fs.readFileSync(expectedPath, 'utf8')));
  });
});

const ids = {
  flowRun: '8e1d3b1c-6a2f-4c57-9d1e-0b7f2a4c5d6e',
  flow: '1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081',
  deployment: '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b',
  pool: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
};

function baseInput(
  deploymentVariables: JsonObject = {},
  flowRunVariables: JsonObject = {},
  overrides: Partial<PrepareJobConfigurationInput> = {},
): PrepareJobConfigurationInput {
  return {
    template: DEFAULT_TEMPLATE,
    deployment: {
      id: ids.deployment,
      name: 'nightly',
      flow_id: ids.flow,
      updated: '2026-11-20T09:30:00+01:00',
      job_variables: deploymentVariables,
    },
    flowRun: {
      id: ids.flowRun,
      name: 'crimson-fox',
      flow_id: ids.flow,
      deployment_id: ids.deployment,
      job_variables: flowRunVariables,
    },
    flow: { id: ids.flow, name: 'etl' },
    workPool: { id: ids.pool, name: 'my-pool' },
    workerName: 'prefect-ecs-launcher my-pool',
    apiUrl: 'http://prefect:4200/api',
    containerCredential: { kind: 'none' },
    references: new MemoryReader(),
    ...overrides,
  };
}

describe('prepareJobConfiguration', () => {
  it('never reads the launcher’s own environment', async () => {
    const saved = { ...process.env };
    process.env.PREFECT_API_KEY = 'pnu_launcher_secret';
    process.env.PREFECT_LOGGING_LEVEL = 'DEBUG';
    process.env.AWS_SECRET_ACCESS_KEY = 'launcher-aws-secret';
    try {
      const template = structuredClone(DEFAULT_TEMPLATE);
      template.job_configuration.cluster = '{{ $AWS_SECRET_ACCESS_KEY }}';
      template.job_configuration.container_name = 'c-{{ $PREFECT_API_KEY }}';
      const config = await prepareJobConfiguration(baseInput({}, {}, { template }));
      const text = JSON.stringify(config);
      expect(text).not.toContain('launcher_secret');
      expect(text).not.toContain('launcher-aws-secret');
      expect(text).not.toContain('PREFECT_LOGGING_LEVEL');
      expect(config.cluster).toBe('');
      expect(config.container_name).toBe('c-');
    } finally {
      process.env = saved;
    }
  });

  it('does not modify its inputs (the default template is shared module state)', async () => {
    const input = baseInput({ env: { A: '1' }, 'env.B': '2' }, { env: { A: null } });
    const before = JSON.stringify(input);
    const templateBefore = JSON.stringify(DEFAULT_TEMPLATE);
    await prepareJobConfiguration(input);
    expect(JSON.stringify(input)).toBe(before);
    expect(JSON.stringify(DEFAULT_TEMPLATE)).toBe(templateBefore);
  });

  it('reads each distinct reference once, concurrently', async () => {
    const reader = new MemoryReader(
      {
        blocksByName: { 'secret/a': { value: 'A' }, 'secret/b': { value: 'B' } },
        variables: { v: 'V' },
      },
      20,
    );
    const jobVariables = {
      image: '{{ prefect.blocks.secret.a }}/{{ prefect.blocks.secret.b }}:{{ prefect.variables.v }}',
      family: '{{ prefect.blocks.secret.a }}',
      env: { X: '{{ prefect.variables.v }}', Y: '{{ prefect.blocks.secret.b }}' },
    };
    const config = await prepareJobConfiguration(baseInput(jobVariables, {}, { references: reader }));
    expect(reader.reads.sort()).toEqual(['block secret/a', 'block secret/b', 'variable v']);
    expect(reader.maxInFlight).toBe(2);
    expect(config.task_definition.containerDefinitions).toEqual([{ image: 'A/B:V' }]);
    expect(config.env).toMatchObject({ X: 'V', Y: 'B' });
  });

  it('reports the first missing block in template order, whichever answer comes first', async () => {
    const reader = new MemoryReader({});
    const template = structuredClone(DEFAULT_TEMPLATE);
    template.job_configuration.aws_credentials = { $ref: { block_document_id: 'first' } };
    template.job_configuration.vpc_id = { $ref: { block_document_id: 'second' } };
    await expect(
      prepareJobConfiguration(baseInput({}, {}, { template, references: reader })),
    ).rejects.toThrow("Block not found: ID 'first'");
  });

  it('lets errors other than "not found" through unchanged (they are retried, not the user’s to fix)', async () => {
    const outage = new PrefectApiError(
      'Prefect API GET /variables/name/v failed: 500',
      '/variables/name/v',
      500,
      '',
    );
    const reader: TemplateReferenceReader = {
      readBlockDocumentData: () => Promise.reject(outage),
      readBlockDocumentDataByName: () => Promise.reject(outage),
      readVariableValue: () => Promise.reject(outage),
    };
    await expect(
      prepareJobConfiguration(baseInput({ image: '{{ prefect.variables.v }}' }, {}, { references: reader })),
    ).rejects.toBe(outage);
  });

  it('uses the default command and the launcher’s version label', async () => {
    const config = await prepareJobConfiguration(baseInput({ command: '' }));
    expect(config.command).toBe(DEFAULT_COMMAND);
    expect(config.labels['prefect.io/version']).toBe(VERSION_LABEL);
    expect(VERSION_LABEL).toMatch(/^prefect-ecs-launcher\/\d+\.\d+\.\d+/);
  });

  it('keeps PREFECT__FLOW_NAME and deployment variables out when there is no deployment', async () => {
    const input = baseInput();
    input.deployment = null;
    input.flowRun = { ...input.flowRun, deployment_id: null };
    const config = await prepareJobConfiguration(input);
    expect(Object.keys(config.env).sort()).toEqual([
      'PREFECT_API_URL',
      'PREFECT__FLOW_ID',
      'PREFECT__FLOW_NAME',
      'PREFECT__FLOW_RUN_ID',
      'PREFECT__WORKER_NAME',
    ]);
    expect(Object.keys(config.labels).filter((k) => k.startsWith('prefect.io/deployment'))).toEqual([]);
  });
});

describe('mergeJobVariables', () => {
  const template: BaseJobTemplate = {
    job_configuration: { env: { STATIC: 's', POOL: 'template' }, image: '{{ image }}' },
    variables: {
      type: 'object',
      properties: {
        env: { type: 'object', default: { POOL: 'default', OTHER: 'default' } },
        image: { type: 'string', default: null },
        cpu: { type: 'integer', default: 1024 },
      },
    },
  };

  it('layers pool defaults < deployment < flow run, env name by name', () => {
    const merged = mergeJobVariables(
      template,
      { job_variables: { env: { DEP: 'd', OTHER: 'd' }, cpu: 2048, image: 'dep' } },
      { job_variables: { env: { RUN: 'r', OTHER: null }, image: 'run' } },
    );
    expect(merged.variables).toEqual({
      env: { DEP: 'd', OTHER: null, RUN: 'r' },
      cpu: 2048,
      image: 'run',
    });
    // The literal env gets the pool's default env, then the variables' env.
    expect(merged.jobConfiguration.env).toEqual({
      STATIC: 's',
      POOL: 'default',
      OTHER: null,
      DEP: 'd',
      RUN: 'r',
    });
  });

  it('replaces an env placeholder with the pool default env when there are no job variables', () => {
    const t = structuredClone(template);
    t.job_configuration.env = '{{ env }}';
    expect(mergeJobVariables(t, null, null).jobConfiguration.env).toEqual({
      POOL: 'default',
      OTHER: 'default',
    });
  });

  it('drops null defaults', () => {
    expect(poolDefaults(template)).toEqual({ env: { POOL: 'default', OTHER: 'default' }, cpu: 1024 });
  });

  it('takes a flow run env of null as no change (Prefect raises TypeError)', () => {
    const merged = mergeJobVariables(
      template,
      { job_variables: { env: { A: '1' } } },
      { job_variables: { env: null } },
    );
    expect(merged.variables.env).toEqual({ A: '1' });
  });

  it('replaces a non-object deployment env with the flow run env whole', () => {
    const t = structuredClone(template);
    t.variables.properties = {};
    const merged = mergeJobVariables(
      t,
      { job_variables: { env: 'x' } },
      { job_variables: { env: { B: '2' } } },
    );
    expect(merged.variables.env).toEqual({ B: '2' });
  });
});

describe('expandDottedKeys', () => {
  it('expands dotted and indexed keys into nested objects', () => {
    expect(expandDottedKeys({ 'env.FOO': 'x', 'a.b[0]': 1, plain: true })).toEqual({
      env: { FOO: 'x' },
      a: { b: { '0': 1 } },
      plain: true,
    });
  });

  it('lets a plain key win over the dotted one, deep-merging objects', () => {
    expect(expandDottedKeys({ 'env.A': 'dotted', 'env.B': 'dotted', env: { A: 'plain' } })).toEqual({
      env: { A: 'plain', B: 'dotted' },
    });
    expect(expandDottedKeys({ 'env.A': 'dotted', env: 'plain' })).toEqual({ env: 'plain' });
  });

  it('refuses a dotted key below a value that is not an object', () => {
    expect(() => expandDottedKeys({ 'a.b': 'x', 'a.b.c': 'y' })).toThrow(
      new JobConfigurationError(
        "Job variable 'a.b.c' sets a key inside 'b', but an earlier dotted job variable already set 'b' to \"x\". Remove one of the two job variables.",
      ),
    );
  });
});

describe('checkJobVariables', () => {
  const check =
    (values: JsonObject, source: 'deployment' | 'flow run' = 'deployment') =>
    () =>
      checkJobVariables(DEFAULT_TEMPLATE, values, source);

  it('accepts what the server accepts, including null for optional variables and block references', () => {
    expect(
      check({
        cpu: 512,
        memory: null,
        env: { A: 'x', B: null },
        labels: null,
        launch_type: 'FARGATE_SPOT',
        capacity_provider_strategy: [{ capacityProvider: 'FARGATE', weight: 1, base: 0 }],
        aws_credentials: { $ref: { block_document_id: 'abc' } },
        network_configuration: { subnets: ['s'], assignPublicIp: 'DISABLED' },
        'env.DOTTED': 1,
        unknown_variable: { anything: true },
      }),
    ).not.toThrow();
  });

  it.each([
    [{ cpu: '1024' }, "The deployment's job variable 'cpu' must be an integer or null, got \"1024\"."],
    [{ env: { A: 1 } }, "The deployment's job variable 'env.A' must be a string or null, got 1."],
    [{ env: ['A=1'] }, "The deployment's job variable 'env' must be an object or null, got [\"A=1\"]."],
    [{ labels: { team: 7 } }, "The deployment's job variable 'labels.team' must be a string, got 7."],
    [
      { launch_type: 'fargate' },
      'The deployment\'s job variable \'launch_type\' must be one of "FARGATE", "EC2", "EXTERNAL", "FARGATE_SPOT", got "fargate".',
    ],
    [
      { capacity_provider_strategy: [{ capacityProvider: 'FARGATE', weight: '1', base: 0 }] },
      "The deployment's job variable 'capacity_provider_strategy[0].weight' must be an integer, got \"1\".",
    ],
    [
      { capacity_provider_strategy: [{ capacityProvider: 'FARGATE', weight: 1 }] },
      "The deployment's job variable 'capacity_provider_strategy[0].base' is required.",
    ],
    [
      { auto_deregister_task_definition: 'yes' },
      "The deployment's job variable 'auto_deregister_task_definition' must be a boolean (true or false) or null, got \"yes\".",
    ],
    [
      { aws_credentials: 'my-creds' },
      'The deployment\'s job variable \'aws_credentials\' must be a block document\'s data or {"$ref": {"block_document_id": "<ID>"}}, got "my-creds".',
    ],
  ])('refuses %j', (values, message) => {
    expect(check(values as JsonObject)).toThrow(
      new JobConfigurationError(
        `${message} Fix the deployment's job variables, or the work pool's variables schema if it is wrong.`,
      ),
    );
  });

  it('names the flow run when its values are wrong', () => {
    expect(check({ memory: 2.5 }, 'flow run')).toThrow(
      "The flow run's job variable 'memory' must be an integer or null",
    );
  });

  it('honours additionalProperties false at the top level', () => {
    const t = structuredClone(DEFAULT_TEMPLATE);
    t.variables.additionalProperties = false;
    expect(() => checkJobVariables(t, { imgae: 'x' }, 'deployment')).toThrow(
      "The deployment's job variable 'imgae' is not a variable of this work pool.",
    );
  });
});

describe('parseJobConfiguration', () => {
  const minimal = { task_definition: { containerDefinitions: [{ name: 'prefect' }] } };

  it('reads booleans as pydantic does in lax mode', () => {
    expect(
      parseJobConfiguration({ ...minimal, auto_deregister_task_definition: 'on' })
        .auto_deregister_task_definition,
    ).toBe(true);
    expect(
      parseJobConfiguration({ ...minimal, match_latest_revision_in_family: 0 })
        .match_latest_revision_in_family,
    ).toBe(false);
    expect(() => parseJobConfiguration({ ...minimal, configure_cloudwatch_logs: 'maybe' })).toThrow(
      'Job configuration field \'configure_cloudwatch_logs\' must be a boolean (true or false), got "maybe".',
    );
  });

  it('converts env values with Python str()', () => {
    const parsed = parseJobConfiguration({
      ...minimal,
      env: { N: 1, B: true, F: 0.5, D: { a: [1, null] }, U: null },
    });
    expect(parsed.env).toEqual({ N: '1', B: 'True', F: '0.5', D: "{'a': [1, None]}", U: null });
  });

  it('infers the container name from the task definition', () => {
    expect(parseJobConfiguration(minimal).container_name).toBe('prefect');
    expect(
      parseJobConfiguration({ task_definition: { containerDefinitions: [{ name: 'app' }] } }).container_name,
    ).toBe('app');
  });

  it('refuses container definitions that are not a list of objects', () => {
    expect(() => parseJobConfiguration({ task_definition: { containerDefinitions: { name: 'x' } } })).toThrow(
      "Job configuration field 'task_definition.containerDefinitions' must be a list of container definitions",
    );
  });
});

describe('resolveReferences', () => {
  it('resolves a $ref without descending into the block data, then variables inside it', async () => {
    const reader = new MemoryReader({
      blocks: { b1: { region_name: '{{ prefect.variables.region }}', $ref: 'kept' } },
      variables: { region: 'eu-west-1' },
    });
    await expect(
      resolveReferences({ creds: { $ref: { block_document_id: 'b1' } } }, reader),
    ).resolves.toEqual({
      creds: { region_name: 'eu-west-1', $ref: 'kept' },
    });
  });

  it('treats a $ref without a block_document_id as data', async () => {
    await expect(resolveReferences({ x: { $ref: { other: 1 } } }, new MemoryReader())).resolves.toEqual({
      x: { $ref: { other: 1 } },
    });
  });

  it('keeps a single-value block whole when the path names its value', async () => {
    const reader = new MemoryReader({ blocksByName: { 'json/cfg': { value: { values: [1, 2] } } } });
    await expect(
      resolveReferences(
        [
          '{{ prefect.blocks.json.cfg }}',
          '{{ prefect.blocks.json.cfg.value }}',
          '{{ prefect.blocks.json.cfg.values[1] }}',
        ],
        reader,
      ),
    ).resolves.toEqual([{ values: [1, 2] }, { values: [1, 2] }, 2]);
  });
});

describe('utcIsoformat', () => {
  it.each([
    ['2026-11-20T09:30:00+01:00', '2026-11-20T08:30:00+00:00'],
    ['2026-11-20T08:30:00.123456Z', '2026-11-20T08:30:00.123456+00:00'],
    ['2026-11-20T08:30:00.5Z', '2026-11-20T08:30:00.500000+00:00'],
    ['2026-11-20T08:30:00.000000+00:00', '2026-11-20T08:30:00+00:00'],
    ['2026-11-20 23:30:00-05:30', '2026-11-21T05:00:00+00:00'],
  ])('%s → %s', (input, expected) => {
    expect(utcIsoformat(input)).toBe(expected);
  });

  it('gives undefined for a value that is not a timestamp', () => {
    expect(utcIsoformat('yesterday')).toBeUndefined();
  });
});
