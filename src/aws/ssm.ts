import type { SSMClient, SSMClientConfig } from '@aws-sdk/client-ssm';
import { ConfigError } from '../errors';

/**
 * The only importer of @aws-sdk/client-ssm, and only when the credential is an SSM parameter. Like EC2
 * (src/aws/ec2.ts), the Lambda bundles leave this client out (about 200 KB minified for one call at cold
 * start) and load the SDK v3 that the Node.js Lambda runtimes include:
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html
 */
export async function createSsmClient(config: SSMClientConfig = {}): Promise<SSMClient> {
  const { SSMClient } = await import('@aws-sdk/client-ssm');
  return new SSMClient(config);
}

/** A (SecureString) parameter's decrypted value, by ARN. */
export async function readParameter(client: SSMClient, parameterArn: string): Promise<string> {
  const { GetParameterCommand } = await import('@aws-sdk/client-ssm');
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
