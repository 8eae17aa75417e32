import fc from 'fast-check';
import { InvalidEventError, JobConfigurationError } from '../../src/errors';
import {
  parseCrashEvent,
  parsePollEvent,
  parsePrepareEvent,
  parseTaskStateChangeEvent,
} from '../../src/launch/events';
import { flowRunIdOfTask } from '../../src/launch/report';
import defaultTemplate from '../../src/render/default-base-job-template.json';
import type { ContainerCredential } from '../../src/render/job-configuration';
import {
  placeholderTaskDefinition,
  type RenderJobInput,
  type RenderJobIo,
  renderJob,
} from '../../src/render/render-job';
import type { BaseJobTemplate, JsonObject } from '../../src/render/types';

/**
 * Bad input that the other suites do not already cover (see the golden error fixtures under
 * test/fixtures/{job-configuration,ecs-request,render}/error-*, render-job-configuration, config and
 * report-events): malformed pool templates, hostile names and job variables through the whole render,
 * and malformed launcher events. Each is refused with a named error that says what to fix, or comes out
 * valid for ECS, with nothing executed on the way.
 */

const RUN_ID = '8e1d3b1c-6a2f-4c57-9d1e-0b7f2a4c5d6e';
const FLOW_ID = '1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081';
const DEPLOYMENT_ID = '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b';

/** What a `prefect flow-run` name can carry that a shell or ECS would choke on. */
const HOSTILE = `it's "quoted" $(rm -rf ~) \`id\`; touch pwned && echo ok\nsecond line\t😀 ${'x'.repeat(300)}`;

const io: RenderJobIo = {
  references: {
    readBlockDocumentData: async (id) => {
      throw new Error(`no block ${id} in this test`);
    },
    readBlockDocumentDataByName: async () => null,
    readVariableValue: async () => undefined,
  },
  describeTaskDefinition: async (ref) => {
    throw new Error(`no task definition ${ref} in this test`);
  },
  resolveTaskDefinition: placeholderTaskDefinition('us-east-1'),
  discoverSubnets: async () => ['subnet-0123456789abcdef0'],
  assertSubnetsInVpc: async () => undefined,
};

type Obj = Record<string, unknown>;
/** The default base job template's parts, loosely typed so a test can break them. */
interface Editable extends Obj {
  job_configuration: Obj & { task_run_request: Obj };
  variables: Obj & { properties: Record<string, Obj> };
}

function template(change: (t: Editable) => void = () => undefined): BaseJobTemplate {
  const t = structuredClone(defaultTemplate) as unknown as Editable;
  change(t);
  return t as unknown as BaseJobTemplate;
}

function input(
  options: {
    template?: unknown;
    jobVariables?: JsonObject;
    names?: { flow?: string; deployment?: string; flowRun?: string; pool?: string };
    deploymentId?: string;
    credential?: ContainerCredential;
  } = {},
): RenderJobInput {
  const names = options.names ?? {};
  const deploymentId = options.deploymentId ?? DEPLOYMENT_ID;
  return {
    template: ('template' in options ? options.template : template()) as BaseJobTemplate,
    region: 'us-east-1',
    deployment: {
      id: deploymentId,
      name: names.deployment ?? 'nightly',
      flow_id: FLOW_ID,
      job_variables: {},
    },
    flowRun: {
      id: RUN_ID,
      name: names.flowRun ?? 'crimson-fox',
      flow_id: FLOW_ID,
      deployment_id: deploymentId,
      job_variables: options.jobVariables ?? {},
    },
    flow: { id: FLOW_ID, name: names.flow ?? 'etl' },
    workPool: { id: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', name: names.pool ?? 'my-pool' },
    workerName: 'prefect-ecs-launcher my-pool',
    apiUrl: 'https://prefect.example.com/api',
    containerCredential: options.credential ?? { kind: 'none' },
  };
}

async function renderError(given: RenderJobInput): Promise<Error> {
  try {
    await renderJob(given, io);
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the render to fail');
}

/** ECS's rules for what the launcher sends. */
const FAMILY = /^[A-Za-z0-9_-]{1,255}$/;
// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Tag.html
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

function expectValidForEcs(rendered: Awaited<ReturnType<typeof renderJob>>): void {
  expect(rendered.taskDefinition?.family).toMatch(FAMILY);
  const tags = rendered.runTaskRequest.tags ?? [];
  expect(tags.length).toBeLessThanOrEqual(50);
  for (const { key, value } of tags) {
    expect(key?.length).toBeGreaterThanOrEqual(1);
    expect(key?.length).toBeLessThanOrEqual(128);
    expect((value ?? '').length).toBeLessThanOrEqual(256);
    expect(key).toMatch(TAG_TEXT);
    expect(value ?? '').toMatch(TAG_TEXT);
    expect(key?.toLowerCase().startsWith('aws:')).toBe(false);
  }
  expect(rendered.runTaskRequest.group).toBe(`prefect-flow-run:${RUN_ID}`);
}

describe('malformed base job templates: refused with a JobConfigurationError naming the part to fix', () => {
  const malformed = "The work pool's base job template is malformed:";
  it.each<[string, unknown, string]>([
    ['null', null, `${malformed} it is not an object.`],
    ['a list', [], `${malformed} it is not an object.`],
    ['a string', '{"job_configuration": {}}', `${malformed} it is not an object.`],
    [
      'variables that are not a schema',
      template((t) => Object.assign(t, { variables: 'cpu, memory' })),
      `${malformed} \`variables\` must be an object (a JSON schema).`,
    ],
    [
      'properties that are a list',
      template((t) => Object.assign(t, { variables: { type: 'object', properties: ['cpu'] } })),
      `${malformed} \`variables.properties\` must be an object.`,
    ],
    [
      "a variable's schema that is not an object",
      template((t) => Object.assign(t.variables.properties, { cpu: 1024 })),
      `${malformed} the schema of variable 'cpu' must be an object.`,
    ],
    [
      'a task definition that is a string',
      template((t) => Object.assign(t.job_configuration, { task_definition: 'my-family:3' })),
      'Job configuration field \'task_definition\' must be an object, got "my-family:3".',
    ],
    [
      'a task run request that is a list',
      template((t) => Object.assign(t.job_configuration, { task_run_request: [] })),
      "Job configuration field 'task_run_request' must be an object, got [].",
    ],
    [
      'overrides that are a string',
      template((t) => Object.assign(t.job_configuration.task_run_request, { overrides: 'none' })),
      "task_run_request.overrides must be an object, got 'none'.",
    ],
    [
      'an env that is a list',
      template((t) => Object.assign(t.job_configuration, { env: ['A=1'] })),
      'Job configuration field \'env\' must be an object, got ["A=1"].',
    ],
    [
      'a cluster that is a number',
      template((t) => Object.assign(t.job_configuration, { cluster: 42 })),
      "Job configuration field 'cluster' must be a string or null, got 42.",
    ],
    [
      'a pool default cpu that is not a number',
      template((t) => Object.assign(t.variables.properties.cpu ?? {}, { default: 'lots' })),
      "Fargate needs task-level cpu and memory, got cpu 'lots' and memory '2048'.",
    ],
  ])('%s', async (_label, given, message) => {
    const error = await renderError(input({ template: given }));
    expect(error).toBeInstanceOf(JobConfigurationError);
    expect(error.message).toContain(message);
  });
});

describe('hostile names and job variables: valid for ECS, nothing interpreted', () => {
  it('turns flow, deployment, flow run and pool names with quotes, $(…), newlines, emoji and 300 characters into a valid family and tags', async () => {
    const rendered = await renderJob(
      input({ names: { flow: HOSTILE, deployment: HOSTILE, flowRun: HOSTILE, pool: HOSTILE } }),
      io,
    );
    expectValidForEcs(rendered);
    // The deployment id stays whole, so two deployments of one long-named pool never share a family.
    expect(rendered.taskDefinition?.family).toMatch(
      new RegExp(`^prefect_it-s-quoted-rm-rf-.*_${DEPLOYMENT_ID}$`),
    );
    const flowContainer = rendered.runTaskRequest.overrides?.containerOverrides?.[0];
    // The names reach the flow as data only: the default argv, the names as environment values.
    expect(flowContainer?.command).toEqual(['prefect', 'flow-run', 'execute']);
    expect(flowContainer?.environment).toEqual(
      expect.arrayContaining([
        { name: 'PREFECT__FLOW_NAME', value: HOSTILE },
        { name: 'PREFECT__DEPLOYMENT_NAME', value: HOSTILE },
      ]),
    );
  });

  it('keeps every family and tag valid for any flow, deployment, run and pool names', async () => {
    const name = fc.string({ unit: 'binary', minLength: 1, maxLength: 400 });
    await fc.assert(
      fc.asyncProperty(name, name, name, name, async (flow, deployment, flowRun, pool) => {
        const rendered = await renderJob(input({ names: { flow, deployment, flowRun, pool } }), io);
        expectValidForEcs(rendered);
        expect(rendered.taskDefinition?.family?.endsWith(`_${DEPLOYMENT_ID}`)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('sanitises a hostile family job variable, or refuses one with nothing ECS allows, naming it', async () => {
    const rendered = await renderJob(input({ jobVariables: { family: HOSTILE } }), io);
    expectValidForEcs(rendered);
    expect(rendered.taskDefinition?.family).toMatch(
      /^it-s-quoted-rm-rf-id-touch-pwned-echo-ok-second-line-x+$/,
    );

    const error = await renderError(input({ jobVariables: { family: '😀 💥 "$()"' } }));
    expect(error).toBeInstanceOf(JobConfigurationError);
    expect(error.message).toBe(
      `Task definition family '😀 💥 "$()"' has no character ECS allows in a family (letters, digits, '-' and '_').`,
    );
  });

  it('splits a command with shell syntax into plain words; ECS runs them without a shell', async () => {
    const rendered = await renderJob(
      input({ jobVariables: { command: 'prefect flow-run execute; rm -rf ~ $(id) `id` && echo pwned' } }),
      io,
    );
    expect(rendered.runTaskRequest.overrides?.containerOverrides?.[0]?.command).toEqual([
      'prefect',
      'flow-run',
      'execute;',
      'rm',
      '-rf',
      '~',
      '$(id)',
      '`id`',
      '&&',
      'echo',
      'pwned',
    ]);
  });

  it('passes hostile env names and values through as data, and slugifies hostile labels into tags', async () => {
    const rendered = await renderJob(
      input({
        jobVariables: {
          env: { '$(id)': '`rm -rf ~`\n' },
          labels: { 'aws:owner': 'me', 'team $(id)\n': `${'v\n😀'.repeat(200)}` },
        },
      }),
      io,
    );
    expectValidForEcs(rendered);
    expect(rendered.runTaskRequest.overrides?.containerOverrides?.[0]?.environment).toContainEqual({
      name: '$(id)',
      value: '`rm -rf ~`\n',
    });
    const tags = rendered.runTaskRequest.tags ?? [];
    // ECS reserves the aws: prefix; the launcher drops such a label rather than fail the run.
    expect(tags.map((t) => t.key)).not.toContain('aws:owner');
    // Slugified, then cut at ECS's 256 characters.
    expect(tags.find((t) => t.key === 'team-id')?.value).toMatch(/^v(-v){127}-$/);
  });
});

describe('malformed launcher events: refused with an InvalidEventError that names what was expected', () => {
  const id = '00000000-0000-4000-8000-000000000000';

  it.each<[string, unknown]>([
    ['a trailing newline', `${id}\n`],
    ['a shell suffix', `${id}; rm -rf ~`],
    ['a path', `../${id}`],
    ['a number', 42],
    ['null', null],
  ])('prepare and crash refuse a flow run id with %s', (_label, flowRunId) => {
    for (const parse of [parsePrepareEvent, parseCrashEvent]) {
      expect(() => parse({ flowRunId })).toThrow(InvalidEventError);
      expect(() => parse({ flowRunId })).toThrow(`got flowRunId ${JSON.stringify(flowRunId)}`);
    }
  });

  it.each<[string, Record<string, unknown>]>([
    ['an error that is a string', { error: 'States.TaskFailed' }],
    ['an error whose name is not a string', { error: { Error: 7, Cause: 'x' } }],
    ['prepared that is a number', { prepared: 5 }],
    ['a cluster that is not a string', { prepared: { cluster: ['c'] } }],
  ])('crash still reports a run whose input has %s, without the malformed part', (_label, extra) => {
    expect(parseCrashEvent({ flowRunId: id, ...extra })).toEqual({ flowRunId: id });
  });

  it('crash keeps a caught error with a non-string cause, as text', () => {
    expect(parseCrashEvent({ flowRunId: id, error: { Error: 'States.Timeout', Cause: { a: 1 } } })).toEqual({
      flowRunId: id,
      error: { Error: 'States.Timeout', Cause: '[object Object]' },
    });
  });

  it('quotes at most a few hundred characters of a huge foreign event', () => {
    const huge = { source: 'custom.app', 'detail-type': 'x'.repeat(1_000_000), detail: {} };
    for (const parse of [parsePollEvent, parseTaskStateChangeEvent]) {
      let thrown: unknown;
      try {
        parse(huge);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidEventError);
      expect((thrown as Error).message.length).toBeLessThan(600);
    }
  });

  it('refuses an ECS task as a Task State Change from any source but aws.ecs', () => {
    const task = {
      taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/c/1',
      clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/c',
      lastStatus: 'STOPPED',
      group: `prefect-flow-run:${id}`,
    };
    expect(() =>
      parseTaskStateChangeEvent({
        source: 'custom.ecs',
        'detail-type': 'ECS Task State Change',
        detail: task,
      }),
    ).toThrow(InvalidEventError);
  });

  it.each([
    ['group', { group: 42 }],
    ['overrides.containerOverrides', { overrides: { containerOverrides: {} } }],
    ['containers', { containers: 'x' }],
    ['containers', { containers: [null] }],
    ['stoppedReason', { stoppedReason: ['x'] }],
    ['overrides', { overrides: 'x' }],
  ])('refuses an aws.ecs event whose detail.%s has the wrong shape', (field, extra) => {
    const detail = {
      taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/c/1',
      clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/c',
      lastStatus: 'STOPPED',
      group: `prefect-flow-run:${id}`,
      ...extra,
    };
    const parse = () =>
      parseTaskStateChangeEvent({ source: 'aws.ecs', 'detail-type': 'ECS Task State Change', detail });
    expect(parse).toThrow(InvalidEventError);
    expect(parse).toThrow(
      `the ECS Task State Change event for arn:aws:ecs:us-east-1:123456789012:task/c/1 has a malformed detail.${field},`,
    );
  });

  it.each([`prefect-flow-run:${id}\n`, `prefect-flow-run:${id}/../x`, `prefect-flow-run:${id}; rm -rf ~`])(
    'ignores a task whose group only starts like the launcher’s: %j',
    (group) => {
      expect(flowRunIdOfTask({ group })).toBeNull();
    },
  );
});
