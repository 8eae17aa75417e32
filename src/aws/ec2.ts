import type { DescribeVpcsCommandInput, EC2Client, EC2ClientConfig } from '@aws-sdk/client-ec2';
import { AwsThrottledError, JobConfigurationError } from '../errors';
import { pyRepr } from '../render/pyrepr';
import { isThrottlingError } from './throttling';

/**
 * The only importer of @aws-sdk/client-ec2, and only on first use: the launcher calls EC2 just to find the
 * default VPC's subnets, for jobs without a network configuration, and caches the answer (src/launch/
 * aws-cache.ts). The EC2 client is by far the SDK's largest (about 1 MB minified of a 1.9 MB Prepare
 * bundle), so the Lambda bundles leave it out (serverless.yml, custom.esbuild.exclude) and this loads the
 * SDK v3 that the Node.js Lambda runtimes include:
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html ("The Node.js runtimes include the AWS
 * SDK for JavaScript v3"). DescribeVpcs and DescribeSubnets have not changed in years, so the runtime's
 * version is as good as the pinned one; locally, in tests and in the CLI, the pinned one is loaded.
 */
export interface Ec2 {
  client(): Promise<EC2Client>;
}

/** Made once per cold start; the client is created on the first call that needs it. */
export function createEc2Client(config: EC2ClientConfig = {}): Ec2 {
  let client: Promise<EC2Client> | undefined;
  return {
    client: () => {
      client ??= import('@aws-sdk/client-ec2').then(({ EC2Client }) => new EC2Client(config));
      return client;
    },
  };
}

function rethrow(err: unknown, action: string): never {
  if (isThrottlingError(err)) {
    throw new AwsThrottledError(`EC2 kept throttling ${action}: ${(err as Error).message}`, { cause: err });
  }
  throw err;
}

/** The VPC's id, or null when it does not exist (AWS answers an unknown id with an error, not an empty list). */
async function findVpc(ec2: Ec2, vpcId: string | null): Promise<string | null> {
  const [{ DescribeVpcsCommand }, client] = await Promise.all([import('@aws-sdk/client-ec2'), ec2.client()]);
  const input: DescribeVpcsCommandInput = vpcId
    ? { VpcIds: [vpcId] }
    : { Filters: [{ Name: 'isDefault', Values: ['true'] }] };
  try {
    const { Vpcs } = await client.send(new DescribeVpcsCommand(input));
    return Vpcs?.[0]?.VpcId ?? null;
  } catch (err) {
    // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
    if (err instanceof Error && /^InvalidVpcID\.(NotFound|Malformed)$/.test(err.name)) return null;
    rethrow(err, 'DescribeVpcs');
  }
}

async function subnetIdsOf(ec2: Ec2, vpcId: string): Promise<string[]> {
  const [{ paginateDescribeSubnets }, client] = await Promise.all([
    import('@aws-sdk/client-ec2'),
    ec2.client(),
  ]);
  const ids: string[] = [];
  try {
    for await (const page of paginateDescribeSubnets(
      { client },
      { Filters: [{ Name: 'vpc-id', Values: [vpcId] }] },
    )) {
      for (const subnet of page.Subnets ?? []) if (subnet.SubnetId) ids.push(subnet.SubnetId);
    }
  } catch (err) {
    rethrow(err, 'DescribeSubnets');
  }
  return ids;
}

function vpcMessage(vpcId: string | null): string {
  return vpcId ? `VPC with ID ${vpcId}` : 'the default VPC';
}

/**
 * Every subnet of `vpcId`, or of the region's default VPC when null, in the order EC2 lists them: the
 * worker's default network configuration (`_load_network_configuration`), with its error messages.
 */
export async function discoverSubnets(ec2: Ec2, vpcId: string | null): Promise<string[]> {
  const found = await findVpc(ec2, vpcId);
  if (!found) {
    const help = vpcId
      ? 'Check that the VPC exists in the current region.'
      : 'Pass an explicit `vpc_id` or configure a default VPC.';
    throw new JobConfigurationError(
      `Failed to find ${vpcMessage(vpcId)}. Network configuration cannot be inferred. ${help}`,
    );
  }
  const subnets = await subnetIdsOf(ec2, found);
  if (subnets.length === 0) {
    throw new JobConfigurationError(
      `Failed to find subnets for ${vpcMessage(vpcId)}. Network configuration cannot be inferred.`,
    );
  }
  return subnets;
}

/**
 * Checks a custom `network_configuration` the way the worker does (`_custom_network_configuration`): the
 * VPC must exist and every given subnet must belong to it. The worker's messages, except that a VPC that
 * does not exist is reported as such (the worker raises EC2's own error), and the mismatch message names
 * the missing subnets.
 */
export async function assertSubnetsInVpc(ec2: Ec2, vpcId: string, subnets: readonly string[]): Promise<void> {
  const inVpc = new Set(await discoverSubnets(ec2, vpcId));
  const missing = subnets.filter((s) => !inVpc.has(s));
  if (missing.length > 0) {
    throw new JobConfigurationError(
      `Subnets ${pyRepr(subnets)} not found within ${vpcMessage(vpcId)} (missing: ${pyRepr(missing)}). ` +
        'Please check that VPC is associated with supplied subnets.',
    );
  }
}
