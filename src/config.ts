import { ConfigError } from './errors';
import { MIN_TOKEN_LENGTH as MIN_RUN_NOW_TOKEN_LENGTH } from './launch/run-now';
import { MAX_START_LEAD_SECONDS } from './launch/start-lead';

/**
 * Every setting of the launcher, read from the environment once at cold start. A bad or missing setting
 * fails with a message naming it and showing what a good value looks like.
 */
export interface PrefectConnection {
  /** `https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>` or `http(s)://host:4200/api`. */
  apiUrl: string;
  /** Where the credential comes from; the value itself is resolved later (Secrets Manager is I/O). */
  credential: CredentialSource;
  /** Per-request timeout in milliseconds. */
  timeoutMs: number;
  /** Retries of 408/429/502/503 and connection errors. */
  maxRetries: number;
}

export type CredentialSource =
  | { kind: 'none' }
  | { kind: 'apiKey'; value: string }
  | { kind: 'authString'; value: string }
  | { kind: 'apiKeySecret'; secretArn: string }
  | { kind: 'authStringSecret'; secretArn: string };

/**
 * Launcher-wide job defaults; they rank as pool defaults (below deployment and flow-run job variables).
 */
export interface JobDefaults {
  /**
   * Execution role for jobs that name none. It lets ECS read the Prefect credential secret for the flow
   * container, so pools made for the resident worker (which passed the key in plain environment variables)
   * work unchanged.
   */
  executionRoleArn: string | undefined;
  /**
   * Network for awsvpc jobs that configure none, instead of every subnet of the default VPC with a public IP
   * and no security group (the worker's default).
   */
  network:
    | { vpcId: string; subnets: string[]; securityGroups: string[]; assignPublicIp: 'ENABLED' | 'DISABLED' }
    | undefined;
}

export interface LauncherConfig {
  prefect: PrefectConnection;
  workPool: string;
  /** Empty means every queue of the pool. */
  workQueues: string[];
  /** Default ECS cluster when the job has none (name or ARN); undefined means the job's or ECS's default. */
  cluster: string | undefined;
  /** Values the launcher supplies as pool defaults for jobs whose pool sets none. */
  jobDefaults: JobDefaults;
  /** ARN of the launch state machine; only the poll function needs it. */
  stateMachineArn: string | undefined;
  /** How often the schedule invokes the poll; Prefect marks the launcher offline after 3 missed heartbeats. */
  pollIntervalSeconds: number;
  /** Runs scheduled up to this many seconds ahead are claimed by a poll. */
  lookaheadSeconds: number;
  /**
   * How many seconds before a run's scheduled time its RunTask goes out (src/launch/start-lead.ts); the poll
   * claims that much earlier too.
   */
  startLeadSeconds: number;
  /** Name the launcher heartbeats as, shown in the Prefect UI's Workers tab. */
  workerName: string;
  /** Bound on concurrent Prefect / AWS calls within one invocation. */
  concurrency: number;
  /**
   * Seconds a running CANCELLING run may keep running before the launcher stops its task. Below the
   * server's own 300 s cancellation timeout, so the launcher usually acts first and says why.
   */
  cancelGraceSeconds: number;
  /** How old evidence must be before the sweep acts on it (a claim without execution, a stopped task). */
  sweepSettleSeconds: number;
  /**
   * How long a warm Prepare function reuses what it learnt from AWS: the default VPC's subnets and the task
   * definition revision for an equal definition (src/launch/aws-cache.ts). 0 asks AWS on every run.
   */
  awsCacheSeconds: number;
  region: string | undefined;
}

type Env = Record<string, string | undefined>;

const SECRET_ARN =
  /^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:\d{12}:secret:.+|ssm:[a-z0-9-]+:\d{12}:parameter\/.+)$/;
const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/;

function text(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function required(env: Env, name: string, example: string): string {
  const value = text(env, name);
  if (!value) throw new ConfigError(`${name} is not set; set it to ${example}`);
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(
      `${name} is ${JSON.stringify(raw)}; set it to a whole number from ${min} to ${max}`,
    );
  }
  return value;
}

export function parseApiUrl(raw: string, name = 'PREFECT_API_URL'): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (cause) {
    throw new ConfigError(
      `${name} is not a URL: ${JSON.stringify(raw)}; set it to https://api.prefect.cloud/api/accounts/<account-id>/workspaces/<workspace-id> or http://<host>:4200/api`,
      { cause },
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name} must start with http:// or https://, got ${JSON.stringify(raw)}`);
  }
  if (url.search || url.hash) {
    throw new ConfigError(`${name} must not carry a query or fragment, got ${JSON.stringify(raw)}`);
  }
  if (url.username || url.password) {
    throw new ConfigError(
      `${name} must not carry credentials; put them in PREFECT_API_AUTH_STRING (or its secret) instead`,
    );
  }
  const cleaned = url.toString().replace(/\/+$/, '');
  if (
    url.hostname === 'api.prefect.cloud' &&
    !/\/api\/accounts\/[^/]+\/workspaces\/[^/]+$/.test(url.pathname.replace(/\/+$/, ''))
  ) {
    throw new ConfigError(
      `${name} points at Prefect Cloud but not at a workspace: ${JSON.stringify(raw)}; ` +
        'it must look like https://api.prefect.cloud/api/accounts/<account-id>/workspaces/<workspace-id>',
    );
  }
  return cleaned;
}

function credential(env: Env): CredentialSource {
  const given = (
    [
      ['PREFECT_API_KEY', (v: string): CredentialSource => ({ kind: 'apiKey', value: v })],
      ['PREFECT_API_AUTH_STRING', (v: string): CredentialSource => ({ kind: 'authString', value: v })],
      [
        'PREFECT_API_KEY_SECRET_ARN',
        (v: string): CredentialSource => ({ kind: 'apiKeySecret', secretArn: v }),
      ],
      [
        'PREFECT_API_AUTH_STRING_SECRET_ARN',
        (v: string): CredentialSource => ({ kind: 'authStringSecret', secretArn: v }),
      ],
    ] as const
  ).filter(([name]) => text(env, name) !== undefined);
  if (given.length > 1) {
    throw new ConfigError(
      `only one of ${given.map(([n]) => n).join(', ')} may be set; use PREFECT_API_KEY(_SECRET_ARN) for Prefect Cloud and PREFECT_API_AUTH_STRING(_SECRET_ARN) for a self-hosted server with basic auth`,
    );
  }
  const [entry] = given;
  if (!entry) return { kind: 'none' };
  const [name, make] = entry;
  const value = text(env, name) as string;
  if (name.endsWith('_SECRET_ARN') && !SECRET_ARN.test(value)) {
    throw new ConfigError(
      `${name} is not a Secrets Manager or SSM parameter ARN: ${JSON.stringify(value)}; set it to arn:aws:secretsmanager:<region>:<account>:secret:<name> or arn:aws:ssm:<region>:<account>:parameter/<name>`,
    );
  }
  if (name === 'PREFECT_API_AUTH_STRING' && !value.includes(':')) {
    throw new ConfigError('PREFECT_API_AUTH_STRING must look like <user>:<password>');
  }
  return make(value);
}

export function parsePrefectConnection(env: Env): PrefectConnection {
  return {
    apiUrl: parseApiUrl(
      required(env, 'PREFECT_API_URL', 'your Prefect API URL, e.g. http://prefect.internal:4200/api'),
    ),
    credential: credential(env),
    timeoutMs: integer(env, 'LAUNCHER_HTTP_TIMEOUT_SECONDS', 30, 1, 300) * 1000,
    maxRetries: integer(env, 'LAUNCHER_HTTP_MAX_RETRIES', 5, 0, 10),
  };
}

export function parseConfig(env: Env = process.env): LauncherConfig {
  const stateMachineArn = text(env, 'LAUNCHER_STATE_MACHINE_ARN');
  if (stateMachineArn && !STATE_MACHINE_ARN.test(stateMachineArn)) {
    throw new ConfigError(
      `LAUNCHER_STATE_MACHINE_ARN is not a state machine ARN: ${JSON.stringify(stateMachineArn)}; it looks like arn:aws:states:<region>:<account>:stateMachine:<name>`,
    );
  }
  const workPool = required(env, 'LAUNCHER_WORK_POOL', 'the name of your ecs work pool, e.g. my-ecs-pool');
  if (/[/%]/.test(workPool)) {
    throw new ConfigError(`LAUNCHER_WORK_POOL ${JSON.stringify(workPool)} must not contain '/' or '%'`);
  }
  const workQueues = (text(env, 'LAUNCHER_WORK_QUEUES') ?? '')
    .split(',')
    .map((q) => q.trim())
    .filter(Boolean);
  return {
    prefect: parsePrefectConnection(env),
    workPool,
    workQueues,
    cluster: text(env, 'LAUNCHER_CLUSTER'),
    jobDefaults: parseJobDefaults(env),
    stateMachineArn,
    pollIntervalSeconds: integer(env, 'LAUNCHER_POLL_INTERVAL_SECONDS', 60, 5, 60),
    lookaheadSeconds: integer(env, 'LAUNCHER_LOOKAHEAD_SECONDS', 90, 0, 3600),
    startLeadSeconds: integer(env, 'LAUNCHER_START_LEAD_SECONDS', 0, 0, MAX_START_LEAD_SECONDS),
    workerName: text(env, 'LAUNCHER_WORKER_NAME') ?? `prefect-ecs-launcher ${workPool}`,
    concurrency: integer(env, 'LAUNCHER_CONCURRENCY', 8, 1, 64),
    cancelGraceSeconds: integer(env, 'LAUNCHER_CANCEL_GRACE_SECONDS', 240, 0, 86400),
    sweepSettleSeconds: integer(env, 'LAUNCHER_SWEEP_SETTLE_SECONDS', 120, 0, 3600),
    awsCacheSeconds: integer(env, 'LAUNCHER_AWS_CACHE_SECONDS', 300, 0, 3600),
    region: text(env, 'AWS_REGION') ?? text(env, 'AWS_DEFAULT_REGION'),
  };
}

function idList(env: Env, name: string, prefix: string): string[] {
  const ids = (text(env, name) ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  const bad = ids.find((id) => !new RegExp(`^${prefix}-[0-9a-f]{8,17}$`).test(id));
  if (bad) {
    throw new ConfigError(
      `${name} has ${JSON.stringify(bad)}; set it to comma-separated ids like ${prefix}-0123456789abcdef0`,
    );
  }
  return ids;
}

/** LAUNCHER_EXECUTION_ROLE_ARN and the default network (LAUNCHER_VPC_ID, _SUBNETS, _SECURITY_GROUPS, _ASSIGN_PUBLIC_IP). */
export function parseJobDefaults(env: Env): JobDefaults {
  const executionRoleArn = text(env, 'LAUNCHER_EXECUTION_ROLE_ARN');
  if (executionRoleArn && !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(executionRoleArn)) {
    throw new ConfigError(
      `LAUNCHER_EXECUTION_ROLE_ARN is not an IAM role ARN: ${JSON.stringify(executionRoleArn)}; it looks like arn:aws:iam::<account>:role/<name>`,
    );
  }
  const vpcId = text(env, 'LAUNCHER_VPC_ID');
  if (vpcId && !/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) {
    throw new ConfigError(
      `LAUNCHER_VPC_ID is ${JSON.stringify(vpcId)}; set it to a VPC id like vpc-0123456789abcdef0`,
    );
  }
  const subnets = idList(env, 'LAUNCHER_SUBNETS', 'subnet');
  const securityGroups = idList(env, 'LAUNCHER_SECURITY_GROUPS', 'sg');
  const assignPublicIp = text(env, 'LAUNCHER_ASSIGN_PUBLIC_IP') ?? 'DISABLED';
  if (assignPublicIp !== 'ENABLED' && assignPublicIp !== 'DISABLED') {
    throw new ConfigError(
      `LAUNCHER_ASSIGN_PUBLIC_IP is ${JSON.stringify(assignPublicIp)}; set it to ENABLED or DISABLED`,
    );
  }
  if ((subnets.length || securityGroups.length) && !vpcId) {
    throw new ConfigError(
      'LAUNCHER_SUBNETS and LAUNCHER_SECURITY_GROUPS need LAUNCHER_VPC_ID, the VPC they belong to',
    );
  }
  if (vpcId && !subnets.length) {
    throw new ConfigError('LAUNCHER_VPC_ID is set without LAUNCHER_SUBNETS; list the subnets tasks may use');
  }
  return {
    executionRoleArn,
    network: vpcId ? { vpcId, subnets, securityGroups, assignPublicIp } : undefined,
  };
}

/** The run-now entry point's bearer token (src/launch/run-now.ts): a plain value for local use, or a secret. */
export type RunNowTokenSource =
  | { kind: 'none' }
  | { kind: 'value'; value: string }
  | { kind: 'secret'; secretArn: string };

/** LAUNCHER_RUN_NOW_TOKEN or LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN; neither means run-now is off. */
export function parseRunNowToken(env: Env): RunNowTokenSource {
  const value = text(env, 'LAUNCHER_RUN_NOW_TOKEN');
  const secretArn = text(env, 'LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN');
  if (value && secretArn) {
    throw new ConfigError(
      'only one of LAUNCHER_RUN_NOW_TOKEN and LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN may be set; deployed stacks use the secret',
    );
  }
  if (secretArn) {
    if (!SECRET_ARN.test(secretArn) || secretArn.split(':')[2] !== 'secretsmanager') {
      throw new ConfigError(
        `LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN is not a Secrets Manager secret ARN: ${JSON.stringify(secretArn)}; set it to arn:aws:secretsmanager:<region>:<account>:secret:<name>`,
      );
    }
    return { kind: 'secret', secretArn };
  }
  if (value) {
    if (value.length < MIN_RUN_NOW_TOKEN_LENGTH) {
      throw new ConfigError(
        `LAUNCHER_RUN_NOW_TOKEN is ${value.length} characters long; use at least ${MIN_RUN_NOW_TOKEN_LENGTH} random characters (e.g. openssl rand -hex 32)`,
      );
    }
    return { kind: 'value', value };
  }
  return { kind: 'none' };
}

/** The state machine ARN, or a ConfigError for the functions that start executions. */
export function requireStateMachineArn(config: LauncherConfig): string {
  if (!config.stateMachineArn) {
    throw new ConfigError(
      'LAUNCHER_STATE_MACHINE_ARN is not set; set it to the launch state machine ARN (serverless.yml does this)',
    );
  }
  return config.stateMachineArn;
}
