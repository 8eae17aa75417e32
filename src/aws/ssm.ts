import { GetParameterCommand, SSMClient, type SSMClientConfig } from '@aws-sdk/client-ssm';
import { ConfigError } from '../errors';

/** The only importer of @aws-sdk/client-ssm. */
export function createSsmClient(config: SSMClientConfig = {}): SSMClient {
  return new SSMClient(config);
}

/** A (SecureString) parameter's decrypted value, by ARN. */
export async function readParameter(client: SSMClient, parameterArn: string): Promise<string> {
  let value: string | undefined;
  try {
    value = (await client.send(new GetParameterCommand({ Name: parameterArn, WithDecryption: true })))
      .Parameter?.Value;
  } catch (cause) {
    throw new ConfigError(
      `cannot read SSM parameter ${parameterArn}: ${(cause as Error).message}; check that it exists and that the function's role may call ssm:GetParameter (and kms:Decrypt) on it`,
      { cause },
    );
  }
  const trimmed = value?.trim();
  if (!trimmed) throw new ConfigError(`SSM parameter ${parameterArn} is empty`);
  return trimmed;
}
