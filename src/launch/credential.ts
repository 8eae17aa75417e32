import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { readSecretString } from '../aws/secrets';
import { readParameter } from '../aws/ssm';
import type { CredentialSource } from '../config';
import type { ResolvedCredential } from '../prefect/http';

/**
 * The launcher's own Prefect credential, read once at cold start: a Secrets Manager secret or an SSM
 * parameter, by ARN, or a plain value (for local use).
 */
export async function resolveCredential(
  source: CredentialSource,
  clients: CredentialClients,
): Promise<ResolvedCredential> {
  switch (source.kind) {
    case 'none':
    case 'apiKey':
    case 'authString':
      return source;
    case 'apiKeySecret':
      return { kind: 'apiKey', value: await readArn(source.secretArn, clients) };
    case 'authStringSecret':
      return { kind: 'authString', value: await readArn(source.secretArn, clients) };
  }
}

/** Made only for the kind of ARN given, each on first use. */
export interface CredentialClients {
  secrets: () => Promise<SecretsManagerClient>;
  ssm: () => Promise<SSMClient>;
}

async function readArn(arn: string, clients: CredentialClients): Promise<string> {
  return arn.split(':')[2] === 'ssm'
    ? readParameter(await clients.ssm(), arn)
    : readSecretString(await clients.secrets(), arn);
}
