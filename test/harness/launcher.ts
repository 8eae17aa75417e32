import { CreateClusterCommand, ECSClient } from '@aws-sdk/client-ecs';
import { CreateStateMachineCommand, SFNClient } from '@aws-sdk/client-sfn';
import { launchDefinitionPath, loadLaunchDefinition, localFunctionArns } from '../../src/local/definition';
import { createRuntime, type Runtime } from '../../src/runtime';
import { awsTestConfig, stackUrls, uniqueName } from './env';

/** A state machine in moto created from the deployed definition file, as CloudFormation would. */
export async function createLaunchStateMachine(): Promise<string> {
  const sfn = new SFNClient(awsTestConfig());
  const out = await sfn.send(
    new CreateStateMachineCommand({
      name: uniqueName('launch'),
      definition: JSON.stringify(loadLaunchDefinition(localFunctionArns())),
      roleArn: 'arn:aws:iam::123456789012:role/prefect-ecs-launcher-states',
      type: 'STANDARD',
    }),
  );
  if (!out.stateMachineArn) throw new Error(`moto created no state machine from ${launchDefinitionPath}`);
  return out.stateMachineArn;
}

export async function createCluster(name = uniqueName('cluster')): Promise<string> {
  const ecs = new ECSClient(awsTestConfig());
  await ecs.send(new CreateClusterCommand({ clusterName: name }));
  return name;
}

/** The launcher's runtime as a Lambda would build it, pointed at the test Prefect server and moto. */
export function testRuntime(settings: Record<string, string>): Promise<Runtime> {
  return createRuntime(
    { PREFECT_API_URL: stackUrls().prefectApiUrl, LAUNCHER_CONCURRENCY: '8', ...settings },
    awsTestConfig(),
  );
}
