import type { ECSClient } from '@aws-sdk/client-ecs';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { createEc2Client, type Ec2 } from './aws/ec2';
import { createEcsClient } from './aws/ecs';
import { createSecretsManagerClient } from './aws/secrets';
import { createSfnClient } from './aws/sfn';
import { createSsmClient } from './aws/ssm';
import { type LauncherConfig, parseConfig } from './config';
import { resolveCredential } from './launch/credential';
import { type Logger, loggerOver } from './log';
import { createPrefectClient, type PrefectClient } from './prefect/client';
import { createTelemetry, type Telemetry } from './telemetry';

/** Settings shared by every AWS client: region, and in tests an endpoint and credentials for moto. */
export interface AwsClientSettings {
  region?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** The AWS clients the launcher's functions use; each function builds only those it needs. */
export interface AwsClients {
  sfn: SFNClient;
  ecs: ECSClient;
  /** Loaded on first use (src/aws/ec2.ts). */
  ec2: Ec2;
}

/** How to build some of the clients: what a function passes names exactly the clients it builds. */
export type ClientFactories<A> = { [K in keyof A]: (settings: AwsClientSettings) => A[K] };

/** Everything a Lambda needs, built once per cold start and reused by every invocation. */
export interface Runtime<A = AwsClients> {
  config: LauncherConfig;
  /** The AWS region the clients use (the awslogs options name it). */
  region: string;
  log: Logger;
  /** Powertools' Logger and Metrics behind `log` and the metrics; their middlewares flush them in a Lambda. */
  telemetry: Telemetry;
  prefect: PrefectClient;
  aws: A;
}

/**
 * A runtime with the given clients only. A Lambda bundle holds just the SDK clients its handler names here
 * (the SDK packages are side-effect free, so esbuild drops the rest): smaller bundles, faster cold starts.
 */
export async function createFunctionRuntime<A>(
  factories: ClientFactories<A>,
  env: Record<string, string | undefined> = process.env,
  awsSettings: AwsClientSettings = {},
  telemetry: Telemetry = createTelemetry(env),
): Promise<Runtime<A>> {
  const config = parseConfig(env);
  const settings: AwsClientSettings = {
    ...(config.region ? { region: config.region } : {}),
    ...awsSettings,
  };
  const log = loggerOver(telemetry.logger);
  const credential = await resolveCredential(config.prefect.credential, {
    secrets: () => createSecretsManagerClient(settings),
    ssm: () => createSsmClient(settings),
  });
  const aws = {} as A;
  for (const name of Object.keys(factories) as (keyof A)[]) aws[name] = factories[name](settings);
  return {
    config,
    region: await resolveRegion(Object.values(aws as object), settings, env),
    log,
    telemetry,
    prefect: createPrefectClient(config.prefect, credential),
    aws,
  };
}

/** The region as the clients resolved it (environment, profile), or as configured for a function without any. */
async function resolveRegion(
  clients: unknown[],
  settings: AwsClientSettings,
  env: Record<string, string | undefined>,
): Promise<string> {
  const client = clients[0] as { config?: { region?: () => Promise<string> } } | undefined;
  if (client?.config?.region) return client.config.region();
  return settings.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? '';
}

/** Every client: the local stack, the bench and the tests run all the functions in one process. */
export function createRuntime(
  env: Record<string, string | undefined> = process.env,
  awsSettings: AwsClientSettings = {},
): Promise<Runtime> {
  return createFunctionRuntime<AwsClients>(
    { sfn: createSfnClient, ecs: createEcsClient, ec2: createEc2Client },
    env,
    awsSettings,
  );
}

/**
 * The cold-start runtime of one function, built on its first invocation and shared by the later ones; a
 * failed cold start is retried on the next invocation rather than cached.
 */
export function sharedRuntime<A>(
  factories: ClientFactories<A>,
  telemetry: Telemetry,
): () => Promise<Runtime<A>> {
  let shared: Promise<Runtime<A>> | undefined;
  return () => {
    shared ??= createFunctionRuntime(factories, process.env, {}, telemetry).catch((err: unknown) => {
      shared = undefined;
      throw err;
    });
    return shared;
  };
}
