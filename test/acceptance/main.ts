import { spawn } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createEcsClient } from '../../src/aws/ecs';
import { connectPrefect } from '../../src/cli/connect';
import { parsePrefectConnection } from '../../src/config';
import { startLocalStack } from '../../src/local/stack';
import { isPrefectCloudUrl } from '../../src/prefect/http';
import { startLocalTarget } from './local';
import { type AcceptanceTarget, registerPool, runAcceptance, type ScenarioResult } from './scenarios';

/**
 * `npm run test:aws`: the acceptance check on a real AWS account (deploy a throwaway stage, register its
 * pool, run the scenarios of ./scenarios.ts on Fargate, remove the stage), or with --local the same
 * scenarios against the local stack. docs/deploy.md ("Acceptance check on a real account") says what it
 * verifies and what it needs.
 */

export const USAGE = `usage: npm run test:aws -- --stage NAME --region REGION [--keep] [--pool NAME] [--cluster NAME]
                        [--execution-role-arn ARN] [--param key=value]...
       npm run test:aws -- --local`;

/** The refusal when the AWS SDK's default credential chain finds nothing (README, troubleshooting). */
export const NO_CREDENTIALS =
  'test:aws: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (after `aws sso login` for an SSO profile), for an account where you may deploy and remove the stack, or run the same scenarios offline with `npm run test:aws -- --local`';

export class UsageError extends Error {}

export type AcceptanceOptions =
  | { mode: 'local' }
  | {
      mode: 'aws';
      stage: string;
      region: string;
      keep: boolean;
      pool: string;
      /** The cluster to use; the stage creates its own when not given. */
      cluster?: string;
      executionRoleArn?: string;
      /** More deploy parameters, `key=value` (e.g. subnets=subnet-a,subnet-b). */
      params: string[];
    };

export function parseAcceptanceArgs(argv: string[]): AcceptanceOptions {
  let values: ReturnType<typeof parse>['values'];
  try {
    ({ values } = parse(argv));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.local) {
    const other = Object.keys(values).find((k) => k !== 'local');
    if (other) throw new UsageError(`--${other} is for a run on AWS, not with --local\n${USAGE}`);
    return { mode: 'local' };
  }
  const missing = (['stage', 'region'] as const).filter((k) => !values[k]);
  if (missing.length) {
    throw new UsageError(`${missing.map((k) => `--${k}`).join(' and ')} needed\n${USAGE}`);
  }
  const stage = values.stage as string;
  const region = values.region as string;
  // Serverless puts the stage in every resource name; keep it short and plain.
  if (!/^[a-zA-Z][a-zA-Z0-9-]{0,15}$/.test(stage)) {
    throw new UsageError(`--stage ${JSON.stringify(stage)}: use up to 16 letters, digits and '-'`);
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw new UsageError(`--region ${JSON.stringify(region)} is not an AWS region name such as eu-west-1`);
  }
  const params = values.param ?? [];
  const bad = params.find((p) => !/^[A-Za-z]+=/.test(p));
  if (bad) throw new UsageError(`--param ${JSON.stringify(bad)}: use key=value, e.g. subnets=subnet-a`);
  return {
    mode: 'aws',
    stage,
    region,
    keep: Boolean(values.keep),
    pool: values.pool ?? `acceptance-${stage}`,
    ...(values.cluster ? { cluster: values.cluster } : {}),
    ...(values['execution-role-arn'] ? { executionRoleArn: values['execution-role-arn'] } : {}),
    params,
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    options: {
      local: { type: 'boolean' },
      stage: { type: 'string' },
      region: { type: 'string' },
      keep: { type: 'boolean' },
      pool: { type: 'string' },
      cluster: { type: 'string' },
      'execution-role-arn': { type: 'string' },
      param: { type: 'string', multiple: true },
    },
  });
}

type AwsOptions = Extract<AcceptanceOptions, { mode: 'aws' }>;
type Env = Record<string, string | undefined>;

/** The cluster the stage creates when none is given. */
export function clusterFor(options: AwsOptions): string {
  return options.cluster ?? `prefect-ecs-launcher-acceptance-${options.stage}`;
}

/**
 * The Prefect settings the deploy needs, from the environment: PREFECT_API_URL and the secret ARN the
 * Lambdas read the credential from (Prefect Cloud needs one). Throws a UsageError naming every missing or
 * wrong one.
 */
export function deploySettings(env: Env): { apiUrl: string; secret?: { param: string; arn: string } } {
  const problems: string[] = [];
  const apiUrl = env.PREFECT_API_URL?.trim();
  if (!apiUrl) problems.push('PREFECT_API_URL is not set: the Prefect API the deployed launcher serves');
  for (const plain of ['PREFECT_API_KEY', 'PREFECT_API_AUTH_STRING']) {
    if (env[plain]?.trim()) {
      problems.push(
        `${plain} is set: the deployed launcher reads the credential only from Secrets Manager or SSM; store it (docs/deploy.md step 2), unset ${plain} and set ${plain}_SECRET_ARN`,
      );
    }
  }
  const keyArn = env.PREFECT_API_KEY_SECRET_ARN?.trim();
  const authArn = env.PREFECT_API_AUTH_STRING_SECRET_ARN?.trim();
  if (apiUrl && isPrefectCloudUrl(apiUrl) && !keyArn) {
    problems.push('PREFECT_API_KEY_SECRET_ARN is not set: Prefect Cloud needs the ARN of the API key secret');
  }
  if (!problems.length) {
    try {
      parsePrefectConnection(env);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length) {
    throw new UsageError(`test:aws: missing or wrong settings:\n  ${problems.join('\n  ')}`);
  }
  const secret = keyArn
    ? { param: 'prefectApiKeySecretArn', arn: keyArn }
    : authArn
      ? { param: 'prefectApiAuthStringSecretArn', arn: authArn }
      : undefined;
  return { apiUrl: apiUrl as string, ...(secret ? { secret } : {}) };
}

/** The `--param`s of `serverless deploy` and `serverless remove` for the stage. */
export function deployParams(options: AwsOptions, settings: ReturnType<typeof deploySettings>): string[] {
  return [
    `prefectApiUrl=${settings.apiUrl}`,
    ...(settings.secret ? [`${settings.secret.param}=${settings.secret.arn}`] : []),
    `workPool=${options.pool}`,
    `cluster=${clusterFor(options)}`,
    ...(options.cluster ? [] : ['createCluster=true']),
    options.executionRoleArn ? `executionRoleArn=${options.executionRoleArn}` : 'createExecutionRole=true',
    ...options.params,
  ].map((p) => `--param=${p}`);
}

/** What a run on AWS does besides computing; tests replace them. */
export interface AwsSteps {
  /** The default credential chain's answer: nothing, or why it found none. */
  findCredentials(region: string): Promise<string | undefined>;
  /** `serverless deploy|remove …`; resolves to its exit status. */
  serverless(args: string[]): Promise<number>;
  registerPool(pool: string, env: Env): Promise<unknown>;
  target(options: AwsOptions, env: Env): Promise<AcceptanceTarget>;
  run(target: AcceptanceTarget): Promise<ScenarioResult[]>;
  print(line: string): void;
  /** Refusals and failures (stderr). */
  complain(line: string): void;
}

/**
 * Refuses without credentials (2) or settings (2); else deploys, registers the pool, runs the scenarios and
 * removes the stage, also when anything before failed (not with --keep). 0 when every check passed and the
 * stage is gone (or kept), 1 otherwise.
 */
export async function runOnAws(options: AwsOptions, env: Env, steps: AwsSteps): Promise<number> {
  const noCredentials = await steps.findCredentials(options.region);
  if (noCredentials !== undefined) {
    steps.complain(NO_CREDENTIALS);
    steps.complain(`  (the AWS SDK: ${noCredentials})`);
    return 2;
  }
  let settings: ReturnType<typeof deploySettings>;
  try {
    settings = deploySettings(env);
  } catch (err) {
    steps.complain((err as Error).message);
    return 2;
  }
  const stageArgs = [
    '--stage',
    options.stage,
    '--region',
    options.region,
    ...deployParams(options, settings),
  ];
  const stack = `prefect-ecs-launcher-${options.stage}`;
  let status: number;
  try {
    status = await deployAndRun(options, env, steps, stageArgs, stack);
  } catch (err) {
    steps.complain(`test:aws: ${(err as Error).message}`);
    status = 1;
  }
  if (options.keep) {
    steps.print(`kept stack ${stack}; remove it with: npx serverless remove ${stageArgs.join(' ')}`);
    return status;
  }
  steps.print(`removing stack ${stack}…`);
  const removed = await steps.serverless(['remove', ...stageArgs]).catch(() => -1);
  if (removed !== 0) {
    // A stage left behind is a failure even when every scenario passed.
    steps.complain(
      `test:aws: serverless remove exited with ${removed}; delete stack ${stack} in CloudFormation`,
    );
    return 1;
  }
  return status;
}

async function deployAndRun(
  options: AwsOptions,
  env: Env,
  steps: AwsSteps,
  stageArgs: string[],
  stack: string,
): Promise<number> {
  steps.print(`deploying stack ${stack} in ${options.region} (a few minutes)…`);
  const deployed = await steps.serverless(['deploy', ...stageArgs]);
  if (deployed !== 0) {
    steps.complain(`test:aws: serverless deploy exited with ${deployed}`);
    return 1;
  }
  steps.print(`registering work pool ${options.pool}…`);
  const stageEnv = { ...env, AWS_REGION: options.region };
  await steps.registerPool(options.pool, stageEnv);
  steps.print(`running the scenarios on cluster ${clusterFor(options)} (up to 15 minutes)…`);
  const results = await steps.run(await steps.target(options, stageEnv));
  return results.every((r) => r.problems.length === 0) ? 0 : 1;
}

const root = path.resolve(__dirname, '..', '..');

/** The real steps: the SDK's default credential chain, `npx serverless`, the CLI, the account's ECS. */
export function awsSteps(print: (line: string) => void): AwsSteps {
  return {
    async findCredentials(region) {
      try {
        const credentials = await createEcsClient({ region }).config.credentials();
        return credentials.accessKeyId ? undefined : 'the credentials have no access key id';
      } catch (err) {
        return (err as Error).message;
      }
    },
    serverless: (args) =>
      new Promise((resolve, reject) => {
        const child = spawn('npx', ['--no-install', 'serverless', ...args], {
          cwd: root,
          stdio: ['ignore', 'inherit', 'inherit'],
          env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off' },
        });
        child.once('error', reject);
        child.once('exit', (code) => resolve(code ?? 1));
      }),
    registerPool: (pool, env) => registerPool(pool, env, print),
    async target(options, env) {
      const { prefect } = await connectPrefect(env, options.region);
      return {
        prefect,
        pool: options.pool,
        ecs: createEcsClient({ region: options.region }),
        cluster: clusterFor(options),
        // The poll runs once a minute; Fargate pulls the Prefect image (about a minute) before the flow starts.
        runTimeoutMs: 15 * 60_000,
        stopTimeoutMs: 5 * 60_000,
        pollMs: 5_000,
        print,
      };
    },
    run: runAcceptance,
    print,
    complain: (line) => process.stderr.write(`${line}\n`),
  };
}

/** --local: a Prefect server and `npm start` on this machine, the scenarios, then everything stopped. */
export async function runLocal(print: (line: string) => void): Promise<number> {
  print('starting a Prefect server and npm start on this machine…');
  const stack = await startLocalStack();
  try {
    const { target, stop } = await startLocalTarget(stack.prefectApiUrl, print);
    try {
      const results = await runAcceptance(target);
      return results.every((r) => r.problems.length === 0) ? 0 : 1;
    } finally {
      await stop();
    }
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<number> {
  // The pinned AWS SDK works on Node 20; its notice concerns SDK releases after January 2027.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const print = (line: string) => process.stdout.write(`${line}\n`);
  let options: AcceptanceOptions;
  try {
    options = parseAcceptanceArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`test:aws: ${(err as Error).message}\n`);
    return 2;
  }
  if (options.mode === 'local') return runLocal(print);
  // Every AWS call of the run, also the CLI's read of the credential secret, goes to the stage's region.
  process.env.AWS_REGION = options.region;
  // A Ctrl-C ends the scenarios (a deploy under way ends with it), not the removal of the stage.
  let interrupted!: () => void;
  const signalled = new Promise<never>((_, reject) => {
    interrupted = () => reject(new Error('interrupted'));
  });
  // Handled here, so an interrupt before the scenarios start is no unhandled rejection.
  signalled.catch(() => undefined);
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const steps = awsSteps(print);
  return runOnAws(options, process.env, {
    ...steps,
    run: (target) => Promise.race([steps.run(target), signalled]),
  });
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`test:aws: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
