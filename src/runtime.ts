import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { createEc2Client } from './aws/ec2';
import { createEcsClient } from './aws/ecs';
import { createSecretsManagerClient } from './aws/secrets';
import { createSfnClient } from './aws/sfn';
import { createSsmClient } from './aws/ssm';
import { type LauncherConfig, parseConfig } from './config';
import { resolveCredential } from './launch/credential';
import { createLogger, type Logger } from './log';
import { createPrefectClient, type PrefectClient } from './prefect/client';

/** Settings shared by every AWS client: region, and in tests an endpoint and credentials for moto. */
export interface AwsClientSettings {
  region?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Everything a Lambda needs, built once per cold start and reused by every invocation. */
export interface Runtime {
  config: LauncherConfig;
  /** The AWS region the clients use (the awslogs options name it). */
  region: string;
  log: Logger;
  prefect: PrefectClient;
  aws: { sfn: SFNClient; ecs: ECSClient; ec2: EC2Client };
}

export async function createRuntime(
  env: Record<string, string | undefined> = process.env,
  awsSettings: AwsClientSettings = {},
): Promise<Runtime> {
  const config = parseConfig(env);
  const aws: AwsClientSettings = { ...(config.region ? { region: config.region } : {}), ...awsSettings };
  const log = createLogger({ service: 'prefect-ecs-launcher', workPool: config.workPool });
  const credential = await resolveCredential(config.prefect.credential, {
    secrets: () => createSecretsManagerClient(aws),
    ssm: () => createSsmClient(aws),
  });
  const ecs = createEcsClient(aws);
  return {
    config,
    region: await ecs.config.region(),
    log,
    prefect: createPrefectClient(config.prefect, credential),
    aws: { sfn: createSfnClient(aws), ecs, ec2: createEc2Client(aws) },
  };
}

let shared: Promise<Runtime> | undefined;

/** The cold-start runtime; a failed cold start is retried on the next invocation rather than cached. */
export function sharedRuntime(): Promise<Runtime> {
  shared ??= createRuntime().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}
