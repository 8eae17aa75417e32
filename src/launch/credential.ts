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
  clients: { secrets: () => SecretsManagerClient; ssm: () => SSMClient },
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

function readArn(arn: string, clients: { secrets: () => SecretsManagerClient; ssm: () => SSMClient }) {
  return arn.split(':')[2] === 'ssm'
    ? readParameter(clients.ssm(), arn)
    : readSecretString(clients.secrets(), arn);
}
