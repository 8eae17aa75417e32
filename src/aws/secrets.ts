import type { SecretsManagerClient, SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import { ConfigError } from '../errors';

/**
 * The only importer of @aws-sdk/client-secrets-manager. It is bundled, but imported only when the
 * credential is a secret, so a function whose credential is not one never evaluates it at cold start.
 *
 * Not Powertools' Parameters utility, which does not fit here: the credential is read once per cold start and
 * cached for the execution environment's life in the runtime (src/runtime.ts), whose Prefect client is built
 * with it, so Parameters' cache (values kept for `maxAge` seconds between invocations) would never be hit.
 * Its SSM provider imports @aws-sdk/client-ssm when loaded, where src/aws/ssm.ts loads the Lambda
 * runtime's copy only for an SSM ARN; its newest release pins an older @aws-lambda-powertools/commons than
 * the Logger and Metrics in use, a second copy in every bundle; and its errors would still need wrapping to
 * name the ARN and the permission, as these do.
 */
export async function createSecretsManagerClient(
  config: SecretsManagerClientConfig = {},
): Promise<SecretsManagerClient> {
  const { SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
  return new SecretsManagerClient(config);
}

/** The secret's string value, trimmed. A binary or empty secret is a configuration error naming the ARN. */
export async function readSecretString(client: SecretsManagerClient, secretArn: string): Promise<string> {
  const { GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  let value: string | undefined;
  try {
    value = (await client.send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString;
  } catch (cause) {
    throw new ConfigError(
      `cannot read secret ${secretArn}: ${(cause as Error).message}; check that it exists in this region and that the function's role may call secretsmanager:GetSecretValue on it`,
      { cause },
    );
  }
  const trimmed = value?.trim();
  if (!trimmed) throw new ConfigError(`secret ${secretArn} has no string value; store the key as plain text`);
  return trimmed;
}
