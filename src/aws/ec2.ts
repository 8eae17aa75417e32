import {
  DescribeVpcsCommand,
  type DescribeVpcsCommandInput,
  EC2Client,
  type EC2ClientConfig,
  paginateDescribeSubnets,
} from '@aws-sdk/client-ec2';
import { AwsThrottledError, JobConfigurationError } from '../errors';
import { pyRepr } from '../render/pyrepr';
import { isThrottlingError } from './throttling';

/** The only importer of @aws-sdk/client-ec2. Create the client once per cold start; tests pass one for moto. */
export function createEc2Client(config: EC2ClientConfig = {}): EC2Client {
  return new EC2Client(config);
}

function rethrow(err: unknown, action: string): never {
  if (isThrottlingError(err)) {
    throw new AwsThrottledError(`EC2 kept throttling ${action}: ${(err as Error).message}`, { cause: err });
  }
  throw err;
}

/** The VPC's id, or null when it does not exist (AWS answers an unknown id with an error, not an empty list). */
async function findVpc(ec2: EC2Client, vpcId: string | null): Promise<string | null> {
  const input: DescribeVpcsCommandInput = vpcId
    ? { VpcIds: [vpcId] }
    : { Filters: [{ Name: 'isDefault', Values: ['true'] }] };
  try {
    const { Vpcs } = await ec2.send(new DescribeVpcsCommand(input));
    return Vpcs?.[0]?.VpcId ?? null;
  } catch (err) {
    // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
    if (err instanceof Error && /^InvalidVpcID\.(NotFound|Malformed)$/.test(err.name)) return null;
    rethrow(err, 'DescribeVpcs');
  }
}

async function subnetIdsOf(ec2: EC2Client, vpcId: string): Promise<string[]> {
  const ids: string[] = [];
  try {
    for await (const page of paginateDescribeSubnets(
      { client: ec2 },
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
export async function discoverSubnets(ec2: EC2Client, vpcId: string | null): Promise<string[]> {
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
export async function assertSubnetsInVpc(
  ec2: EC2Client,
  vpcId: string,
  subnets: readonly string[],
): Promise<void> {
  const inVpc = new Set(await discoverSubnets(ec2, vpcId));
  const missing = subnets.filter((s) => !inVpc.has(s));
  if (missing.length > 0) {
    throw new JobConfigurationError(
      `Subnets ${pyRepr(subnets)} not found within ${vpcMessage(vpcId)} (missing: ${pyRepr(missing)}). ` +
        'Please check that VPC is associated with supplied subnets.',
    );
  }
}
