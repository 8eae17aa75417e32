import { createSecretsManagerClient } from '../aws/secrets';
import { createSsmClient } from '../aws/ssm';
import { type PrefectConnection, parsePrefectConnection } from '../config';
import { resolveCredential } from '../launch/credential';
import { createPrefectClient, type PrefectClient } from '../prefect/client';
import type { Env } from './args';

/**
 * A Prefect client from the launcher's own settings (PREFECT_API_URL and PREFECT_API_KEY,
 * PREFECT_API_AUTH_STRING or their *_SECRET_ARN), as the Lambdas build it. A secret ARN is read from
 * Secrets Manager or SSM in `region` (or the SDK's default region).
 */
export async function connectPrefect(
  env: Env,
  region?: string,
): Promise<{ prefect: PrefectClient; connection: PrefectConnection }> {
  const connection = parsePrefectConnection(env);
  const aws = region ? { region } : {};
  const credential = await resolveCredential(connection.credential, {
    secrets: () => createSecretsManagerClient(aws),
    ssm: () => createSsmClient(aws),
  });
  return { prefect: createPrefectClient(connection, credential), connection };
}
