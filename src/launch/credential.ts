import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { readSecretString } from '../aws/secrets';
import { readParameter } from '../aws/ssm';
import type { CredentialSource, RunNowTokenSource } from '../config';
import { ConfigError } from '../errors';
import type { ResolvedCredential } from '../prefect/http';
import { MIN_TOKEN_LENGTH } from './run-now';

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

/**
 * The run-now token, re-read from its secret at most every `ttlSeconds`: after a rotation, a warm function
 * accepts the new token within that time (docs/deploy.md, rotating the token).
 */
export function runNowTokenReader(
  source: RunNowTokenSource,
  secrets: () => Promise<SecretsManagerClient>,
  options: { ttlSeconds?: number; now?: () => number } = {},
): () => Promise<string> {
  const ttlMs = (options.ttlSeconds ?? 300) * 1000;
  const now = options.now ?? Date.now;
  let cached: { value: Promise<string>; at: number } | undefined;
  // One client for the container's life, not a new one at each re-read.
  let client: Promise<SecretsManagerClient> | undefined;
  const secretsClient = () => {
    client ??= secrets().catch((err: unknown) => {
      client = undefined;
      throw err;
    });
    return client;
  };
  return () => {
    if (source.kind === 'none') {
      return Promise.reject(
        new ConfigError(
          'the run-now entry point has no token; set LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN (serverless.yml does this when runNow is true)',
        ),
      );
    }
    if (source.kind === 'value') return Promise.resolve(source.value);
    if (!cached || now() - cached.at >= ttlMs) {
      const value = secretsClient()
        .then((client) => readSecretString(client, source.secretArn))
        .then((token) => {
          if (token.length < MIN_TOKEN_LENGTH) {
            throw new ConfigError(
              `the run-now token in ${source.secretArn} is ${token.length} characters long; store at least ${MIN_TOKEN_LENGTH} random characters`,
            );
          }
          return token;
        });
      // A failed read is not kept: the next call tries again.
      value.catch(() => {
        if (cached?.value === value) cached = undefined;
      });
      cached = { value, at: now() };
    }
    return cached.value;
  };
}
