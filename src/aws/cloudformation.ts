import {
  CloudFormationClient,
  type CloudFormationClientConfig,
  DescribeStacksCommand,
  type Stack,
} from '@aws-sdk/client-cloudformation';

/**
 * The only importer of @aws-sdk/client-cloudformation. Only the CLI reads stacks (`status --stage`); no
 * Lambda function imports this module, so the client stays out of their bundles. Created once per command
 * and passed to the calls below, so its caller chooses the region (and moto's endpoint, through the SDK's
 * AWS_ENDPOINT_URL).
 */
export function createCloudFormationClient(config: CloudFormationClientConfig = {}): CloudFormationClient {
  return new CloudFormationClient(config);
}

/** What DescribeStacks tells of one stack, its parameters and outputs by key. */
export interface StackFacts {
  name: string;
  status: string;
  statusReason?: string;
  /** The last update, or the creation for a stack never updated. */
  lastUpdated: Date | null;
  parameters: Record<string, string>;
  outputs: Record<string, string>;
}

/**
 * One stack by name; undefined when no live stack has that name. DescribeStacks answers a name it does not
 * know with a ValidationError "Stack with id NAME does not exist", not a modelled exception:
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html
 */
export async function describeStack(
  client: CloudFormationClient,
  stackName: string,
): Promise<StackFacts | undefined> {
  let stack: Stack | undefined;
  try {
    stack = (await client.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
  } catch (err) {
    if ((err as Error).name === 'ValidationError' && /does not exist/.test((err as Error).message)) {
      return undefined;
    }
    throw err;
  }
  if (!stack) return undefined;
  const byKey = <T>(
    items: T[] | undefined,
    key: (item: T) => string | undefined,
    value: (item: T) => string | undefined,
  ) =>
    Object.fromEntries(
      (items ?? []).flatMap((item) => {
        const k = key(item);
        return k === undefined ? [] : [[k, value(item) ?? '']];
      }),
    );
  return {
    name: stack.StackName ?? stackName,
    status: stack.StackStatus ?? 'UNKNOWN',
    ...(stack.StackStatusReason ? { statusReason: stack.StackStatusReason } : {}),
    lastUpdated: stack.LastUpdatedTime ?? stack.CreationTime ?? null,
    parameters: byKey(
      stack.Parameters,
      (p) => p.ParameterKey,
      (p) => p.ParameterValue,
    ),
    outputs: byKey(
      stack.Outputs,
      (o) => o.OutputKey,
      (o) => o.OutputValue,
    ),
  };
}

/** The region the client calls, as the SDK resolved it (flag, environment or profile). */
export function clientRegion(client: CloudFormationClient): Promise<string> {
  return client.config.region();
}
