import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DescribeSubnetsCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import type { RunTaskCommandInput } from '@aws-sdk/client-ecs';
import { ClientException, DescribeTaskDefinitionCommand, ECSClient } from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { PrefectApiError } from '../../src/errors';
import { mapLimit } from '../../src/launch/concurrency';
import { awsRenderIo } from '../../src/launch/prepare';
import { RUN_TASK_SHAPES, toStepFunctionsRunTask } from '../../src/launch/run-task-contract';
import defaultTemplate from '../../src/render/default-base-job-template.json';
import type { ContainerCredential } from '../../src/render/job-configuration';
import { VERSION_LABEL } from '../../src/render/job-configuration';
import { placeholderTaskDefinition, renderJob, taskGroupFor } from '../../src/render/render-job';
import { slugifyTag } from '../../src/render/slugify';
import { DEFAULT_PREFECT_IMAGE } from '../../src/render/task-definition';
import type {
  BaseJobTemplate,
  DeploymentInfo,
  FlowInfo,
  FlowRunInfo,
  Json,
  JsonObject,
  TemplateReferenceReader,
} from '../../src/render/types';

/**
 * Differential test: every case in test/fixtures/render is run through prefect-aws 0.7.12's own ECSWorker
 * (python/render_oracle.py) and through the launcher's `renderJob`, with the same inputs, Prefect reads and
 * AWS answers. The two must send ECS the same task definition and RunTask request, up to the deliberate
 * differences: the named normalisers below (every case), and each case's `expectedDifferences`, which pin
 * both sides' values at a path. Cases where one side fails say so (`error`, `oursFails`, `oracleFails`).
 * README.md there lists the cases and differences; docs/compatibility.md explains them.
 */
const root = path.join(__dirname, '..', '..');
const casesDir = path.join(root, 'test', 'fixtures', 'render');
const python = path.join(root, '.venv', 'bin', 'python');
const oracle = path.join(root, 'python', 'render_oracle.py');

interface Difference {
  /** `runTaskRequest.tags`, `taskDefinition.containerDefinitions[0].image`…; `` for the whole answer. */
  path: string;
  /** The value prefect-aws sends there; absent when it sends nothing there. */
  oracle?: Json;
  /** The value the launcher sends there; absent when it sends nothing there. */
  ours?: Json;
  reason: string;
}

interface OracleCase {
  template: JsonObject | 'default';
  deployment: DeploymentInfo | null;
  flow_run: FlowRunInfo;
  flow: FlowInfo;
  work_pool: { id: string; name: string };
  worker_name: string;
  api_url: string;
  api_key: string | null;
  auth_string: string | null;
  region: string;
  subnets: { default_vpc?: string | null; vpcs?: { [vpc: string]: string[] } };
  blocks?: { [id: string]: JsonObject };
  blocks_by_name?: { [slugAndName: string]: JsonObject };
  variables?: { [name: string]: Json };
  task_definitions?: { [ref: string]: JsonObject };
}

interface Case extends OracleCase {
  description: string;
  expectedDifferences?: Difference[];
  /** Both fail, and both messages mention each of these (the variable or field at fault). */
  error?: { mentions: string[] };
  /** prefect-aws renders; the launcher refuses, mentioning each of these. */
  oursFails?: { mentions: string[]; reason: string };
  /** prefect-aws fails with this exception type; the launcher renders (and `expectedDifferences` may pin what). */
  oracleFails?: { type: string; reason: string };
}

interface Rendered {
  taskDefinition: JsonObject | null;
  runTaskRequest: JsonObject;
}
type Outcome = Rendered | { error: { type: string; message: string } };

function isError(outcome: Outcome): outcome is { error: { type: string; message: string } } {
  return 'error' in outcome;
}

const cases: [string, Case][] = fs
  .readdirSync(casesDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort()
  .map((name) => [
    name,
    JSON.parse(fs.readFileSync(path.join(casesDir, name, 'input.json'), 'utf8')) as Case,
  ]);

function templateOf(c: Case): JsonObject {
  return c.template === 'default' ? (defaultTemplate as unknown as JsonObject) : c.template;
}

function runOracle(c: Case): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      python,
      [oracle],
      { cwd: root, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`render_oracle.py failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Outcome);
      },
    );
    child.stdin?.end(JSON.stringify({ ...c, template: templateOf(c) }));
  });
}

function notFound(route: string): PrefectApiError {
  return new PrefectApiError(`GET ${route} -> 404`, route, 404, 'Not found');
}

/** The case's Prefect API, answering as the Prefect client does (a missing block by ID is a 404 error). */
function referencesOf(c: Case): TemplateReferenceReader {
  return {
    async readBlockDocumentData(id) {
      const data = c.blocks?.[id];
      if (!data) throw notFound(`/block_documents/${id}`);
      return structuredClone(data);
    },
    async readBlockDocumentDataByName(slug, name) {
      const data = c.blocks_by_name?.[`${slug}/${name}`];
      return data ? structuredClone(data) : null;
    },
    async readVariableValue(name) {
      return c.variables && Object.hasOwn(c.variables, name) ? structuredClone(c.variables[name]) : undefined;
    },
  };
}

function awsError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name });
}

/** EC2 and ECS clients that answer from the case, as render_oracle.py's fakes do. */
function awsOf(c: Case): { ecs: ECSClient; ec2: EC2Client } {
  const settings = { region: c.region, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } };
  const ec2 = new EC2Client(settings);
  const ecs = new ECSClient(settings);
  const vpcs = c.subnets.vpcs ?? {};
  mockClient(ec2)
    .on(DescribeVpcsCommand)
    .callsFake(async (input: { VpcIds?: string[] }) => {
      const [id] = input.VpcIds ?? [];
      if (id === undefined) return { Vpcs: c.subnets.default_vpc ? [{ VpcId: c.subnets.default_vpc }] : [] };
      // AWS answers an unknown ID with an error, not an empty list.
      if (!vpcs[id]) throw awsError('InvalidVpcID.NotFound', `The vpc ID '${id}' does not exist`);
      return { Vpcs: [{ VpcId: id }] };
    })
    .on(DescribeSubnetsCommand)
    .callsFake(async (input: { Filters?: { Values?: string[] }[] }) => {
      const vpc = input.Filters?.[0]?.Values?.[0] ?? '';
      return { Subnets: (vpcs[vpc] ?? []).map((SubnetId) => ({ SubnetId, VpcId: vpc })) };
    });
  mockClient(ecs)
    .on(DescribeTaskDefinitionCommand)
    .callsFake(async (input: { taskDefinition?: string }) => {
      const known = c.task_definitions?.[input.taskDefinition ?? ''];
      if (!known) {
        throw new ClientException({ message: 'Unable to describe task definition.', $metadata: {} });
      }
      return { taskDefinition: structuredClone(known) };
    });
  return { ecs, ec2 };
}

/** The worker's settings `api_key` / `auth_string` are the launcher's plain credential. */
function credentialOf(c: Case): ContainerCredential {
  if (c.api_key) return { kind: 'apiKey', value: c.api_key };
  if (c.auth_string) return { kind: 'authString', value: c.auth_string };
  return { kind: 'none' };
}

async function runOurs(c: Case): Promise<Outcome> {
  const { ecs, ec2 } = awsOf(c);
  try {
    const job = await renderJob(
      {
        template: templateOf(c) as unknown as BaseJobTemplate,
        deployment: c.deployment,
        flowRun: c.flow_run,
        flow: c.flow,
        workPool: c.work_pool,
        workerName: c.worker_name,
        apiUrl: c.api_url,
        containerCredential: credentialOf(c),
        region: c.region,
      },
      {
        ...awsRenderIo(referencesOf(c), ecs, { client: async () => ec2 }),
        resolveTaskDefinition: placeholderTaskDefinition(c.region),
      },
    );
    // Only what is sent to ECS, as JSON.
    return JSON.parse(
      JSON.stringify({ taskDefinition: job.taskDefinition, runTaskRequest: job.runTaskRequest }),
    );
  } catch (err) {
    return { error: { type: (err as Error).name, message: (err as Error).message } };
  }
}

// --- the path syntax of expectedDifferences ---------------------------------------------------------------

function steps(at: string): (string | number)[] {
  return [...at.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) =>
    m[2] !== undefined ? Number(m[2]) : (m[1] as string),
  );
}

type Container = { [key: string]: unknown } | unknown[];

function parentOf(value: unknown, at: string): { parent: Container | undefined; key: string | number } {
  const keys = steps(at);
  const key = keys.pop() as string | number;
  let node: unknown = value;
  for (const k of keys) node = node === null || typeof node !== 'object' ? undefined : (node as never)[k];
  return { parent: node !== null && typeof node === 'object' ? (node as Container) : undefined, key };
}

function lookup(value: unknown, at: string): { found: boolean; value?: unknown } {
  const { parent, key } = parentOf(value, at);
  if (!parent || !Object.hasOwn(parent, key)) return { found: false };
  return { found: true, value: (parent as never)[key] };
}

function put(value: unknown, at: string, found: boolean, replacement: unknown): void {
  const { parent, key } = parentOf(value, at);
  if (!parent) throw new Error(`expectedDifferences: nothing at ${at}`);
  if (found) (parent as Record<string | number, unknown>)[key] = structuredClone(replacement);
  else if (Array.isArray(parent) && typeof key === 'number') parent.splice(key, 1);
  else delete (parent as Record<string, unknown>)[key];
}

// --- the normalisers: deliberate differences that every case shows -------------------------------------

/** The image the worker defaults to: its own Prefect and Python versions. */
const ORACLE_DEFAULT_IMAGE = 'prefecthq/prefect:3.9.1-python3.11';
/** The worker's `prefect.io/version` label: its Prefect version. */
const ORACLE_VERSION = '3.9.1';

interface Normaliser {
  name: string;
  /** Turns the oracle's answer into the launcher's for this one difference, checking both sides. */
  apply(oracle: Rendered, ours: Rendered, c: Case): void;
}

function environments(rendered: Rendered): { name: string; value: string }[][] {
  const overrides = (rendered.runTaskRequest.overrides as { containerOverrides?: JsonObject[] } | undefined)
    ?.containerOverrides;
  return (overrides ?? []).map((o) => (o.environment ?? []) as { name: string; value: string }[]);
}

const normalisers: Normaliser[] = [
  {
    name: 'default image: the worker uses its own prefect/python version, the launcher a floating Prefect 3 tag',
    apply(oracle, ours) {
      const containers = (oracle.taskDefinition?.containerDefinitions ?? []) as JsonObject[];
      containers.forEach((container, i) => {
        if (container.image !== ORACLE_DEFAULT_IMAGE) return;
        const our = (ours.taskDefinition?.containerDefinitions as JsonObject[] | undefined)?.[i];
        expect(our?.image).toBe(DEFAULT_PREFECT_IMAGE);
        container.image = DEFAULT_PREFECT_IMAGE;
      });
    },
  },
  {
    name: 'prefect.io/version: the worker puts its Prefect version, the launcher its own name and version',
    apply(oracle, ours) {
      const tag = (oracle.runTaskRequest.tags as { key: string; value: string }[] | undefined)?.find(
        (t) => t.key === 'prefect.io/version',
      );
      if (!tag) return;
      expect(tag.value).toBe(ORACLE_VERSION);
      tag.value = slugifyTag(VERSION_LABEL);
      expect(ours.runTaskRequest.tags).toContainEqual(tag);
    },
  },
  {
    name: "task group: the launcher finds the flow run of an ECS event by the task's group",
    apply(oracle, ours, c) {
      expect(oracle.runTaskRequest.group).toBeUndefined();
      expect(ours.runTaskRequest.group).toBe(taskGroupFor(c.flow_run.id));
      oracle.runTaskRequest.group = taskGroupFor(c.flow_run.id);
    },
  },
  {
    name: "PREFECT_LOGGING_TO_API_MAX_LOG_SIZE: derived by the worker's settings from a Cloud URL; the flow's own Prefect derives it again",
    apply(oracle) {
      for (const env of environments(oracle)) {
        const at = env.findIndex((e) => e.name === 'PREFECT_LOGGING_TO_API_MAX_LOG_SIZE');
        if (at >= 0) env.splice(at, 1);
      }
    },
  },
];

function applyDifferences(oracle: Outcome, ours: Outcome, differences: Difference[]): void {
  for (const difference of differences) {
    const theirs = lookup(oracle, difference.path);
    const mine = lookup(ours, difference.path);
    expect({ path: difference.path, found: theirs.found, value: theirs.value }).toEqual({
      path: difference.path,
      found: Object.hasOwn(difference, 'oracle'),
      value: difference.oracle,
    });
    expect({ path: difference.path, found: mine.found, value: mine.value }).toEqual({
      path: difference.path,
      found: Object.hasOwn(difference, 'ours'),
      value: difference.ours,
    });
    put(oracle, difference.path, mine.found, mine.value);
  }
}

/** Whether a failure's message mentions `text` (case aside: the worker's and ECS's capitals differ). */
function mentions(outcome: Outcome, text: string): boolean {
  return isError(outcome) && outcome.error.message.toLowerCase().includes(text.toLowerCase());
}

const results = new Map<string, { oracle: Outcome; ours: Outcome }>();

beforeAll(async () => {
  const outcomes = await mapLimit(cases, Math.max(2, os.availableParallelism()), async ([, c]) => ({
    oracle: await runOracle(c),
    ours: await runOurs(c),
  }));
  cases.forEach(([name], i) => {
    results.set(name, outcomes[i] as { oracle: Outcome; ours: Outcome });
  });
  // One Python process per case, sharing 2 cores with the integration project's servers: about a minute
  // alone, several under load. A generous bound, not a measure of speed.
}, 600_000);

describe('renderJob against prefect-aws 0.7.12 (python/render_oracle.py)', () => {
  it('has at least 40 cases, each with a description and every exception explained', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    for (const [name, c] of cases) {
      expect({ name, description: typeof c.description }).toEqual({ name, description: 'string' });
      const reasons = [
        ...(c.expectedDifferences ?? []).map((d) => d.reason),
        ...(c.oursFails ? [c.oursFails.reason] : []),
        ...(c.oracleFails ? [c.oracleFails.reason] : []),
      ];
      for (const reason of reasons)
        expect({ name, reason: reason.length > 10 }).toEqual({ name, reason: true });
    }
  });

  it.each(cases)('%s', (name, c) => {
    const { oracle, ours } = results.get(name) as { oracle: Outcome; ours: Outcome };
    if (c.error) {
      expect({ oracle: isError(oracle), ours: isError(ours) }).toEqual({ oracle: true, ours: true });
      for (const mention of c.error.mentions) {
        expect({ mention, oracle: mentions(oracle, mention), ours: mentions(ours, mention) }).toEqual({
          mention,
          oracle: true,
          ours: true,
        });
      }
      return;
    }
    if (c.oursFails) {
      expect({ oracle: isError(oracle) ? oracle.error : 'rendered' }).toEqual({ oracle: 'rendered' });
      expect(isError(ours)).toBe(true);
      for (const mention of c.oursFails.mentions) {
        expect({ mention, ours: mentions(ours, mention) }).toEqual({ mention, ours: true });
      }
      return;
    }
    if (isError(ours)) throw new Error(`the launcher failed: ${ours.error.type}: ${ours.error.message}`);
    if (c.oracleFails) {
      expect({ type: isError(oracle) ? oracle.error.type : 'rendered' }).toEqual({
        type: c.oracleFails.type,
      });
      for (const difference of c.expectedDifferences ?? []) {
        const mine = lookup(ours, difference.path);
        expect({ path: difference.path, found: mine.found, value: mine.value }).toEqual({
          path: difference.path,
          found: Object.hasOwn(difference, 'ours'),
          value: difference.ours,
        });
      }
      return;
    }
    if (isError(oracle)) throw new Error(`prefect-aws failed: ${oracle.error.type}: ${oracle.error.message}`);
    for (const normaliser of normalisers) normaliser.apply(oracle, ours, c);
    applyDifferences(oracle, ours, c.expectedDifferences ?? []);
    expect(ours).toEqual(oracle);
  });

  it('sends Step Functions only fields its ECS integration takes, for every case the launcher renders', () => {
    const rendered = [...results.values()].map((r) => r.ours).filter((o): o is Rendered => !isError(o));
    expect(rendered.length).toBeGreaterThan(30);
    for (const ours of rendered) {
      const { shape, parameters } = toStepFunctionsRunTask(
        ours.runTaskRequest as unknown as RunTaskCommandInput,
      );
      expect(Object.keys(parameters).sort()).toEqual([...RUN_TASK_SHAPES[shape]].sort());
    }
  });
});
