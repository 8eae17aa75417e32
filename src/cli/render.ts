/**
 * `prefect-ecs-launcher render`: what the launcher would send to ECS for a flow run, without sending it.
 * Both modes run `renderJob`, the launcher's own render; only the I/O differs (files and flags instead of
 * the Prefect API and EC2, and a placeholder ARN instead of registering the task definition).
 */

import { createEc2Client } from '../aws/ec2';
import { createEcsClient } from '../aws/ecs';
import { parseJobDefaults, parsePrefectConnection } from '../config';
import { ConfigError, PrefectApiError } from '../errors';
import { containerCredential } from '../launch/entrypoints';
import { awsRenderIo, withLauncherDefaults } from '../launch/prepare';
import { toStepFunctionsRunTask } from '../launch/run-task-contract';
import type { PrefectClient } from '../prefect/client';
import type { FlowRun } from '../prefect/types';
import type { ContainerCredential } from '../render/job-configuration';
import {
  PLACEHOLDER_ACCOUNT,
  PLACEHOLDER_REVISION,
  placeholderTaskDefinition,
  type RenderJobInput,
  type RenderJobIo,
  readRenderSources,
  renderJob,
} from '../render/render-job';
import { isJsonObject } from '../render/template';
import type {
  BaseJobTemplate,
  DeploymentInfo,
  FlowInfo,
  FlowRunInfo,
  JsonObject,
  RenderedJob,
  TemplateReferenceReader,
} from '../render/types';
import {
  type CliContext,
  type Env,
  type FlagSpec,
  type ParsedFlags,
  PROGRAM,
  parseFlags,
  readJsonObject,
  readTemplateFile,
  stringFlag,
} from './args';
import { connectPrefect } from './connect';

const FLAGS: FlagSpec = {
  help: { type: 'boolean', short: 'h' },
  template: { type: 'string' },
  deployment: { type: 'string' },
  'flow-run': { type: 'string' },
  flow: { type: 'string' },
  'flow-run-id': { type: 'string' },
  'work-pool': { type: 'string' },
  region: { type: 'string' },
  subnets: { type: 'string' },
};

/** Offline stand-ins for what only the Prefect API would know. */
export const PLACEHOLDER_ID = '00000000-0000-0000-0000-000000000000';
export const PLACEHOLDER_FLOW_RUN_NAME = 'dry-run';
export const PLACEHOLDER_FLOW_NAME = 'dry-run-flow';
export const PLACEHOLDER_DEPLOYMENT_NAME = 'dry-run-deployment';
/** PREFECT_API_URL in the flow's environment when an offline render has none. */
export const UNSET_API_URL = '<PREFECT_API_URL is not set>';
/** What a plain Prefect credential is printed as. */
export const REDACTED = '<redacted>';

export const RENDER_HELP = `Usage:
  ${PROGRAM} render --template FILE [--deployment FILE] [--flow-run FILE] [--flow FILE]
                    [--work-pool NAME] [--region REGION] [--subnets subnet-a,subnet-b]
  ${PROGRAM} render --flow-run-id ID [--work-pool NAME] [--region REGION] [--subnets subnet-a,subnet-b]

Prints, as one JSON object, what the launcher would send to ECS for a flow run:
  {"taskDefinition": <RegisterTaskDefinition input, or null when the job names task_definition_arn>,
   "runTaskRequest": <RunTask input, as prefect-aws's worker would send it>,
   "stepFunctions": {"shape": <the RunTask state that sends it>, "parameters": <what that state sends>}}
the first two in the ECS API's camelCase, the parameters in Step Functions' PascalCase (without the
job's tags, which Step Functions cannot apply; see docs/compatibility.md). A field Step Functions does not
take fails the render as it would fail the launch. Nothing is registered or started. The task definition's ARN is not known
before registration, so the request names arn:aws:ecs:<region>:${PLACEHOLDER_ACCOUNT}:task-definition/<family>:${PLACEHOLDER_REVISION},
and the task is tagged as if this run registered it. A plain PREFECT_API_KEY or PREFECT_API_AUTH_STRING
is printed as ${REDACTED}.

Offline (--template): renders the base job template (a work pool's base_job_template: Prefect's default
from 'prefect work-pool get-default-base-job-template --type ecs', or a pool's from
'prefect work-pool inspect NAME --output json | jq .base_job_template') with the job variables of the
deployment and flow run in the given files (Prefect API JSON, as 'prefect deployment inspect FLOW/NAME
--output json' and 'prefect flow-run inspect ID --output json' print it: a deployment's id, name, flow_id,
job_variables; a flow run's id, name, deployment_id, job_variables; a flow's id and name). Ids given in
several files must agree. Missing ids and names get placeholders: the id ${PLACEHOLDER_ID},
the names ${PLACEHOLDER_DEPLOYMENT_NAME} (deployment), ${PLACEHOLDER_FLOW_RUN_NAME} (flow run) and ${PLACEHOLDER_FLOW_NAME} (flow). No AWS call is made:
  --work-pool NAME    the pool's name (family and labels); default: the flow run's or deployment's
                      work_pool_name, else LAUNCHER_WORK_POOL
  --region REGION     default: AWS_REGION, AWS_DEFAULT_REGION
  --subnets a,b       the subnets EC2 would list for the job's VPC; needed when the task uses awsvpc
                      networking and the job has no network configuration
  PREFECT_API_URL and its credential go into the flow's environment as the launcher puts them; without
  PREFECT_API_URL the flow gets a placeholder URL and no credential. Block and variable references in
  the template are read from PREFECT_API_URL, so they need it. A job naming task_definition_arn needs
  --flow-run-id.

Against Prefect and AWS (--flow-run-id): reads the flow run, its deployment, flow and work pool from
PREFECT_API_URL (with PREFECT_API_KEY, PREFECT_API_AUTH_STRING or their *_SECRET_ARN), and reads the
named task definition and the VPC's subnets from AWS (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL… as the
AWS SDK reads them). --subnets skips the subnet lookup; --work-pool stands in for LAUNCHER_WORK_POOL.

Both modes honour LAUNCHER_WORKER_NAME, LAUNCHER_CLUSTER and LAUNCHER_EXECUTION_ROLE_ARN as the launcher
does.

Exit status: 0 rendered; 2 the input, a setting or the job's configuration is wrong (one line on
stderr names the file, flag or job variable); 1 anything else.
`;

function text(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function subnetsFrom(parsed: ParsedFlags): string[] | undefined {
  const raw = stringFlag(parsed, 'subnets');
  if (raw === undefined) return undefined;
  const subnets = raw.split(',').map((s) => s.trim());
  if (subnets.some((s) => !s)) {
    throw new ConfigError(`--subnets ${JSON.stringify(raw)} has an empty entry; give subnet-a,subnet-b`);
  }
  return subnets;
}

/** The subnet lookups answered from --subnets (the lookup the launcher would make through EC2). */
function subnetsIo(
  subnets: string[] | undefined,
): Pick<RenderJobIo, 'discoverSubnets' | 'assertSubnetsInVpc'> {
  const vpc = (vpcId: string | null) => (vpcId ? `VPC ${vpcId}` : 'the default VPC');
  return {
    async discoverSubnets(vpcId) {
      if (subnets) return subnets;
      throw new ConfigError(
        `the task uses awsvpc networking and the job has no network configuration, so the launcher would run it in every subnet of ${vpc(vpcId)}; an offline render cannot list them: pass --subnets subnet-a,subnet-b, or set the network_configuration job variable (with vpc_id)`,
      );
    },
    async assertSubnetsInVpc(vpcId, given) {
      // Without --subnets there is nothing to check against offline; the launcher checks with EC2.
      const missing = subnets ? given.filter((s) => !subnets.includes(s)) : [];
      if (missing.length > 0) {
        throw new ConfigError(
          `network_configuration names subnets ${missing.join(', ')}, which are not among --subnets (the subnets of ${vpc(vpcId)}); fix the network_configuration job variable or --subnets`,
        );
      }
    },
  };
}

const SET_API_URL =
  'set PREFECT_API_URL (and PREFECT_API_KEY or PREFECT_API_AUTH_STRING) so the render can read it from the Prefect API';

/** References in an offline render without PREFECT_API_URL: each read names the reference. */
const unreachableReferences: TemplateReferenceReader = {
  async readBlockDocumentData(id) {
    throw new ConfigError(
      `the job refers to block document ${id} ({"$ref": {"block_document_id": "${id}"}}); ${SET_API_URL}`,
    );
  },
  async readBlockDocumentDataByName(slug, name) {
    throw new ConfigError(
      `the job refers to the ${slug} block '${name}' ({{ prefect.blocks.${slug}.${name} }}); ${SET_API_URL}`,
    );
  },
  async readVariableValue(name) {
    throw new ConfigError(
      `the job refers to the Prefect variable '${name}' ({{ prefect.variables.${name} }}); ${SET_API_URL}`,
    );
  },
};

/** References read through the Prefect API, connecting on the first read (a render without any never does). */
function prefectReferences(env: Env, region: string): TemplateReferenceReader {
  let client: Promise<PrefectClient> | undefined;
  const prefect = () => {
    client ??= connectPrefect(env, region).then((c) => c.prefect);
    return client;
  };
  return {
    readBlockDocumentData: async (id) => (await prefect()).readBlockDocumentData(id),
    readBlockDocumentDataByName: async (slug, name) =>
      (await prefect()).readBlockDocumentDataByName(slug, name),
    readVariableValue: async (name) => (await prefect()).readVariableValue(name),
  };
}

const describeOffline: RenderJobIo['describeTaskDefinition'] = async (ref) => {
  throw new ConfigError(
    `the job names the existing task definition ${ref} (task_definition_arn), which an offline render cannot describe; render the flow run with --flow-run-id against AWS`,
  );
};

/** A string field of an API object read from a file; `required` fields must be present. */
function stringField(
  obj: JsonObject,
  key: string,
  where: string,
  required: boolean,
): string | null | undefined {
  const value = obj[key];
  if (value === undefined || value === null) {
    if (required) throw new ConfigError(`${where}: field '${key}' is missing; it must be a string`);
    return value;
  }
  if (typeof value !== 'string' || !value) {
    throw new ConfigError(
      `${where}: field '${key}' must be a non-empty string, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** An object field of an API object read from a file (job_variables); null is how the API says none. */
function objectField(obj: JsonObject, key: string, where: string): void {
  const value = obj[key];
  if (value !== undefined && value !== null && !isJsonObject(value)) {
    throw new ConfigError(`${where}: field '${key}' must be an object, got ${JSON.stringify(value)}`);
  }
}

interface FileObject {
  value: JsonObject;
  /** `--flag FILE`, for messages. */
  where: string;
}

/** A field the flow run, deployment and flow must agree on. */
function agree(
  field: string,
  values: [value: string | null | undefined, where: string][],
): string | undefined {
  const given = values.filter((v): v is [string, string] => typeof v[0] === 'string');
  const [first] = given;
  for (const [value, where] of given.slice(1)) {
    if (first && value !== first[0]) {
      throw new ConfigError(`${where}: ${field} ${value} does not match ${first[0]} in ${first[1]}`);
    }
  }
  return first?.[0];
}

/**
 * The deployment, flow run and flow of an offline render, from the files given, completed with
 * placeholders and checked for agreement (the flow run's deployment_id is the deployment's id…).
 */
export function completeRunObjects(files: {
  deployment?: FileObject | undefined;
  flowRun?: FileObject | undefined;
  flow?: FileObject | undefined;
}): { deployment: DeploymentInfo | null; flowRun: FlowRunInfo; flow: FlowInfo } {
  const d = files.deployment;
  const r = files.flowRun;
  const f = files.flow;
  if (d) {
    for (const key of ['id', 'name', 'updated', 'work_pool_name']) stringField(d.value, key, d.where, false);
    objectField(d.value, 'job_variables', d.where);
  }
  if (f) {
    stringField(f.value, 'id', f.where, false);
    stringField(f.value, 'name', f.where, false);
  }
  if (r) {
    stringField(r.value, 'id', r.where, false);
    stringField(r.value, 'name', r.where, false);
    stringField(r.value, 'work_pool_name', r.where, false);
    objectField(r.value, 'job_variables', r.where);
  }
  const flowId =
    agree('flow_id', [
      [f && stringField(f.value, 'id', f.where, false), f?.where ?? ''],
      [d && stringField(d.value, 'flow_id', d.where, false), d?.where ?? ''],
      [r && stringField(r.value, 'flow_id', r.where, false), r?.where ?? ''],
    ]) ?? PLACEHOLDER_ID;
  const runDeploymentId = r ? stringField(r.value, 'deployment_id', r.where, false) : undefined;
  const deploymentId =
    agree('deployment_id', [
      [d && stringField(d.value, 'id', d.where, false), d?.where ?? ''],
      [runDeploymentId, r?.where ?? ''],
    ]) ?? (d ? PLACEHOLDER_ID : undefined);
  if (runDeploymentId && !d) {
    throw new ConfigError(
      `${r?.where}: the flow run belongs to deployment ${runDeploymentId}; pass it with --deployment FILE (its job variables are part of the render)`,
    );
  }
  const deployment = d
    ? ({
        name: PLACEHOLDER_DEPLOYMENT_NAME,
        ...d.value,
        id: deploymentId,
        flow_id: flowId,
      } as unknown as DeploymentInfo)
    : null;
  const flowRun = {
    name: PLACEHOLDER_FLOW_RUN_NAME,
    ...r?.value,
    id: (r && stringField(r.value, 'id', r.where, false)) || PLACEHOLDER_ID,
    flow_id: flowId,
    deployment_id: deploymentId ?? null,
  } as unknown as FlowRunInfo;
  const flow = { name: PLACEHOLDER_FLOW_NAME, ...f?.value, id: flowId } as unknown as FlowInfo;
  return { deployment, flowRun, flow };
}

interface Rendered {
  job: RenderedJob;
  credential: ContainerCredential;
}

async function renderFromFiles(
  template: BaseJobTemplate,
  parsed: ParsedFlags,
  ctx: CliContext,
): Promise<Rendered> {
  const { env, cwd } = ctx;
  const file = (flag: string): FileObject | undefined => {
    const name = stringFlag(parsed, flag);
    return name === undefined
      ? undefined
      : { value: readJsonObject(name, flag, cwd), where: `--${flag} ${name}` };
  };
  const { deployment, flowRun, flow } = completeRunObjects({
    deployment: file('deployment'),
    flowRun: file('flow-run'),
    flow: file('flow'),
  });
  const poolName =
    stringFlag(parsed, 'work-pool') ??
    flowRun.work_pool_name ??
    deployment?.work_pool_name ??
    text(env, 'LAUNCHER_WORK_POOL');
  if (!poolName) {
    throw new ConfigError(
      "the work pool's name is part of the task definition family and the labels: pass --work-pool NAME (or set LAUNCHER_WORK_POOL)",
    );
  }
  const region = stringFlag(parsed, 'region') ?? text(env, 'AWS_REGION') ?? text(env, 'AWS_DEFAULT_REGION');
  if (!region) {
    throw new ConfigError(
      'the region is part of the task definition ARN and the log options: pass --region REGION (or set AWS_REGION)',
    );
  }
  // The launcher cannot run without PREFECT_API_URL; without it the flow gets a placeholder and no credential.
  const connection = text(env, 'PREFECT_API_URL') ? parsePrefectConnection(env) : null;
  const credential: ContainerCredential = connection
    ? containerCredential(connection.credential)
    : { kind: 'none' };
  const input: RenderJobInput = {
    template: withEnvDefaults(template, env),
    deployment,
    flowRun,
    flow,
    workPool: { id: '', name: poolName },
    workerName: text(env, 'LAUNCHER_WORKER_NAME') ?? `${PROGRAM} ${poolName}`,
    apiUrl: connection?.apiUrl ?? UNSET_API_URL,
    containerCredential: credential,
    region,
    defaultCluster: text(env, 'LAUNCHER_CLUSTER'),
  };
  const job = await renderJob(input, {
    references: connection ? prefectReferences(env, region) : unreachableReferences,
    describeTaskDefinition: describeOffline,
    resolveTaskDefinition: placeholderTaskDefinition(region),
    ...subnetsIo(subnetsFrom(parsed)),
  });
  return { job, credential };
}

/** The launcher's job defaults (execution role, network) from the environment, applied as the launcher does. */
function withEnvDefaults(template: BaseJobTemplate, env: Env): BaseJobTemplate {
  return withLauncherDefaults(template, parseJobDefaults(env));
}

async function regionOf(ecs: ReturnType<typeof createEcsClient>): Promise<string> {
  try {
    return await ecs.config.region();
  } catch (cause) {
    throw new ConfigError('no AWS region is configured: pass --region REGION (or set AWS_REGION)', { cause });
  }
}

async function renderFlowRun(flowRunId: string, parsed: ParsedFlags, ctx: CliContext): Promise<Rendered> {
  const { env } = ctx;
  const subnets = subnetsFrom(parsed);
  const regionFlag = stringFlag(parsed, 'region');
  const aws = regionFlag ? { region: regionFlag } : {};
  const ecs = createEcsClient(aws);
  const region = await regionOf(ecs);
  const { prefect, connection } = await connectPrefect(env, region);
  let run: FlowRun;
  try {
    run = await prefect.readFlowRun(flowRunId);
  } catch (err) {
    if (err instanceof PrefectApiError && (err.status === 404 || err.status === 422)) {
      throw new ConfigError(`--flow-run-id ${flowRunId}: no such flow run at ${connection.apiUrl}`, {
        cause: err,
      });
    }
    throw err;
  }
  const fallbackPool = stringFlag(parsed, 'work-pool') ?? text(env, 'LAUNCHER_WORK_POOL');
  if (!run.work_pool_name && !fallbackPool) {
    throw new ConfigError(
      `flow run ${flowRunId} names no work pool: pass --work-pool NAME (or set LAUNCHER_WORK_POOL)`,
    );
  }
  const sources = await readRenderSources(prefect, run, fallbackPool ?? '');
  const credential = containerCredential(connection.credential);
  const io: RenderJobIo = {
    ...awsRenderIo(prefect, ecs, createEc2Client(aws)),
    resolveTaskDefinition: placeholderTaskDefinition(region),
    ...(subnets ? subnetsIo(subnets) : {}),
  };
  const job = await renderJob(
    {
      ...sources,
      template: withEnvDefaults(sources.template, env),
      flowRun: run,
      workerName:
        text(env, 'LAUNCHER_WORKER_NAME') ??
        `${PROGRAM} ${text(env, 'LAUNCHER_WORK_POOL') ?? sources.workPool.name}`,
      apiUrl: connection.apiUrl,
      containerCredential: credential,
      region,
      defaultCluster: text(env, 'LAUNCHER_CLUSTER'),
    },
    io,
  );
  return { job, credential };
}

type RenderOutput = RenderedJob & {
  stepFunctions: Pick<ReturnType<typeof toStepFunctionsRunTask>, 'shape' | 'parameters'>;
};

/** The output, with a plain credential value replaced wherever it appears. */
function redact({ job, credential }: Rendered): RenderOutput {
  const { shape, parameters } = toStepFunctionsRunTask(job.runTaskRequest);
  const output: RenderOutput = {
    taskDefinition: job.taskDefinition,
    runTaskRequest: job.runTaskRequest,
    stepFunctions: { shape, parameters },
  };
  if (credential.kind !== 'apiKey' && credential.kind !== 'authString') return output;
  const secret = credential.value;
  return JSON.parse(JSON.stringify(output), (_key, value) => (value === secret ? REDACTED : value));
}

export async function renderCommand(args: string[], ctx: CliContext): Promise<number> {
  const parsed = parseFlags(args, FLAGS, 'render');
  if (parsed.values.help) {
    ctx.stdout.write(RENDER_HELP);
    return 0;
  }
  const [extra] = parsed.positionals;
  if (extra !== undefined) {
    throw new ConfigError(`render takes no arguments besides its options, got ${JSON.stringify(extra)}`);
  }
  const flowRunId = stringFlag(parsed, 'flow-run-id');
  const offlineFlags = ['template', 'deployment', 'flow-run', 'flow'].filter(
    (flag) => parsed.values[flag] !== undefined,
  );
  if (flowRunId && offlineFlags.length > 0) {
    throw new ConfigError(
      `--flow-run-id reads the flow run from the Prefect API and cannot be combined with ${offlineFlags.map((f) => `--${f}`).join(', ')}`,
    );
  }
  const templateFile = stringFlag(parsed, 'template');
  let rendered: Rendered;
  if (flowRunId) {
    rendered = await renderFlowRun(flowRunId, parsed, ctx);
  } else if (templateFile !== undefined) {
    rendered = await renderFromFiles(readTemplateFile(templateFile, ctx.cwd), parsed, ctx);
  } else {
    throw new ConfigError(
      `render needs --template FILE (offline) or --flow-run-id ID (against the Prefect API); see ${PROGRAM} render --help`,
    );
  }
  ctx.stdout.write(`${JSON.stringify(redact(rendered), null, 2)}\n`);
  return 0;
}
