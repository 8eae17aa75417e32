import {
  CreateSubnetCommand,
  CreateVpcCommand,
  DeleteSubnetCommand,
  DeleteVpcCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { assertSubnetsInVpc, createEc2Client, discoverSubnets, type Ec2 } from '../../src/aws/ec2';
import { JobConfigurationError } from '../../src/errors';
import { awsTestConfig } from '../harness/env';

// Test files share one moto server and run in parallel, so nothing here resets moto: every test works on
// VPCs it creates, reads the default VPC without changing it, or uses a region no other test touches.
// The test's own client arranges moto; the launcher's handle (which loads the SDK on first use) is tested.
let client: EC2Client;
let ec2: Ec2;
beforeAll(() => {
  client = new EC2Client(awsTestConfig());
  ec2 = createEc2Client(awsTestConfig());
});

let cidrCounter = 0;
async function createVpcWithSubnets(count: number): Promise<{ vpcId: string; subnetIds: string[] }> {
  const second = 100 + (process.pid % 50) + cidrCounter++;
  const vpc = await client.send(new CreateVpcCommand({ CidrBlock: `10.${second}.0.0/16` }));
  const vpcId = vpc.Vpc?.VpcId as string;
  const subnetIds: string[] = [];
  for (let i = 0; i < count; i++) {
    const subnet = await client.send(
      new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.${second}.${i}.0/24` }),
    );
    subnetIds.push(subnet.Subnet?.SubnetId as string);
  }
  return { vpcId, subnetIds };
}

async function defaultVpcSubnets(client: EC2Client): Promise<string[]> {
  const vpcs = await client.send(
    new DescribeVpcsCommand({ Filters: [{ Name: 'isDefault', Values: ['true'] }] }),
  );
  const vpcId = vpcs.Vpcs?.[0]?.VpcId as string;
  const subnets = await client.send(
    new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  return (subnets.Subnets ?? []).map((s) => s.SubnetId as string);
}

describe('discoverSubnets', () => {
  it('returns every subnet of the default VPC', async () => {
    const expected = await defaultVpcSubnets(client);
    expect(expected.length).toBeGreaterThan(0);
    expect(await discoverSubnets(ec2, null)).toEqual(expected);
  });

  it('returns every subnet of a given VPC, and only those', async () => {
    const { vpcId, subnetIds } = await createVpcWithSubnets(3);
    const found = await discoverSubnets(ec2, vpcId);
    expect([...found].sort()).toEqual([...subnetIds].sort());
  });

  it('reports a VPC that does not exist with the worker message', async () => {
    await expect(discoverSubnets(ec2, 'vpc-0000000000000dead')).rejects.toThrow(
      new JobConfigurationError(
        'Failed to find VPC with ID vpc-0000000000000dead. Network configuration cannot be inferred. Check that the VPC exists in the current region.',
      ),
    );
  });

  it('reports a VPC without subnets with the worker message', async () => {
    const { vpcId } = await createVpcWithSubnets(0);
    await expect(discoverSubnets(ec2, vpcId)).rejects.toThrow(
      new JobConfigurationError(
        `Failed to find subnets for VPC with ID ${vpcId}. Network configuration cannot be inferred.`,
      ),
    );
  });

  it('reports a region without a default VPC with the worker message', async () => {
    // A region of its own, whose default VPC this test deletes.
    const regional = new EC2Client({ ...awsTestConfig(), region: 'ap-southeast-4' });
    const vpcs = await regional.send(
      new DescribeVpcsCommand({ Filters: [{ Name: 'isDefault', Values: ['true'] }] }),
    );
    const defaultVpc = vpcs.Vpcs?.[0]?.VpcId;
    if (defaultVpc) {
      for (const subnet of await defaultVpcSubnets(regional)) {
        await regional.send(new DeleteSubnetCommand({ SubnetId: subnet }));
      }
      await regional.send(new DeleteVpcCommand({ VpcId: defaultVpc }));
    }
    await expect(
      discoverSubnets(createEc2Client({ ...awsTestConfig(), region: 'ap-southeast-4' }), null),
    ).rejects.toThrow(
      new JobConfigurationError(
        'Failed to find the default VPC. Network configuration cannot be inferred. Pass an explicit `vpc_id` or configure a default VPC.',
      ),
    );
  });
});

describe('assertSubnetsInVpc', () => {
  it('accepts subnets of the VPC', async () => {
    const { vpcId, subnetIds } = await createVpcWithSubnets(2);
    await expect(assertSubnetsInVpc(ec2, vpcId, subnetIds)).resolves.toBeUndefined();
  });

  it('refuses a subnet of another VPC, naming it', async () => {
    const { vpcId, subnetIds } = await createVpcWithSubnets(1);
    const other = (await defaultVpcSubnets(client))[0] as string;
    const given = [subnetIds[0] as string, other];
    await expect(assertSubnetsInVpc(ec2, vpcId, given)).rejects.toThrow(
      new JobConfigurationError(
        `Subnets ['${given[0]}', '${other}'] not found within VPC with ID ${vpcId} (missing: ['${other}']). ` +
          'Please check that VPC is associated with supplied subnets.',
      ),
    );
  });

  it('refuses a VPC that does not exist', async () => {
    await expect(assertSubnetsInVpc(ec2, 'vpc-0000000000000beef', ['subnet-1'])).rejects.toThrow(
      /^Failed to find VPC with ID vpc-0000000000000beef\./,
    );
  });
});
