import fs from 'node:fs';
import path from 'node:path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context } from 'aws-lambda';
import { handler as crash } from '../../handlers/crash';
import { handler as poll } from '../../handlers/poll';
import { handler as prepare } from '../../handlers/prepare';
import { handler as report } from '../../handlers/report';
import { handler as runNow } from '../../handlers/run-now';
import { taskStateChangeEvent } from '../../src/local/ecs-events';
import { captureOutput } from '../harness/capture-output';
import { arrangeDeployment, awsTestConfig, scheduleFlowRun, stackUrls, uniqueName } from '../harness/env';
import { createLaunchStateMachine } from '../harness/launcher';

const context = { functionName: 'test', awsRequestId: 'r-1' } as Context;

/** The handlers exactly as Lambda loads them: configuration from the environment, AWS endpoint from the SDK's. */
const token = 't'.repeat(64);
let pool: string;
let deploymentId: string;

beforeAll(async () => {
  ({ pool, deploymentId } = await arrangeDeployment());
  const secret = await new SecretsManagerClient(awsTestConfig()).send(
    new CreateSecretCommand({ Name: uniqueName('run-now-token'), SecretString: token }),
  );
  Object.assign(process.env, {
    LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN: secret.ARN,
    PREFECT_API_URL: stackUrls().prefectApiUrl,
    LAUNCHER_WORK_POOL: pool,
    LAUNCHER_STATE_MACHINE_ARN: await createLaunchStateMachine(),
    AWS_ENDPOINT_URL: stackUrls().motoUrl,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });
});

describe('Lambda handlers', () => {
  it('poll accepts a scheduled event and polls', async () => {
    const event = {
      source: 'aws.events',
      'detail-type': 'Scheduled Event',
      detail: {},
      time: new Date().toISOString(),
    };
    await expect(poll(event, context)).resolves.toMatchObject({ due: 0 });
  });

  it("poll logs with the invocation's context and writes its metrics in EMF", async () => {
    const saved = {
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED,
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL,
    };
    Object.assign(process.env, { POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_LOG_LEVEL: 'INFO' });
    const output = captureOutput();
    try {
      // A fresh copy of the handler module, whose Powertools instances read the settings above.
      await jest.isolateModulesAsync(async () => {
        const { handler } = await import('../../handlers/poll');
        await handler({}, context);
      });
    } finally {
      output.restore();
      Object.assign(process.env, saved);
    }
    const lines = output.lines
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({
        message: 'poll finished',
        level: 'INFO',
        service: 'prefect-ecs-launcher',
        workPool: pool,
        function_name: 'test',
        function_request_id: 'r-1',
      }),
    );
    const emf = lines.filter((l) => l._aws);
    expect(emf).toEqual([
      expect.objectContaining({
        _aws: expect.objectContaining({
          CloudWatchMetrics: [
            expect.objectContaining({
              Namespace: 'PrefectEcsLauncher',
              Dimensions: [['service', 'WorkPool']],
              Metrics: expect.arrayContaining([
                { Name: 'Polls', Unit: 'Count' },
                { Name: 'RunsDue', Unit: 'Count' },
                { Name: 'RunsStarted', Unit: 'Count' },
              ]),
            }),
          ],
        }),
        service: 'prefect-ecs-launcher',
        WorkPool: pool,
        Polls: 1,
        RunsDue: 0,
      }),
    ]);
  });

  it('poll refuses an event that is not a schedule', async () => {
    await expect(poll({ Records: [] }, context)).rejects.toMatchObject({ name: 'InvalidEventError' });
  });

  it('prepare and crash refuse input without a flow run id, naming what they expect', async () => {
    await expect(prepare({ flowRunId: 'nope' }, context)).rejects.toThrow(
      'the prepare function expects {"flowRunId": "<flow run UUID>", …}',
    );
    await expect(crash({}, context)).rejects.toMatchObject({ name: 'InvalidEventError' });
  });

  it('report ignores tasks the launcher did not start and refuses foreign events', async () => {
    const event = taskStateChangeEvent({
      taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/c/1',
      clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/c',
      lastStatus: 'STOPPED',
      group: 'service:web',
    });
    await expect(report(event, context)).resolves.toBe('ignored');
    await expect(report({ source: 'aws.s3', detail: {} }, context)).rejects.toMatchObject({
      name: 'InvalidEventError',
    });
  });

  it('run-now answers a function URL request: 401/403 without the token, a claim with it', async () => {
    const event = JSON.parse(
      fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'run-now', 'function-url-event.json'), 'utf8'),
    );
    const run = await scheduleFlowRun(deploymentId);
    const request = (authorization: string | undefined) => ({
      ...event,
      headers: { ...event.headers, authorization },
      body: JSON.stringify({ flow_run_id: run.id }),
    });
    await expect(runNow(request(undefined), context)).resolves.toMatchObject({ statusCode: 401 });
    await expect(runNow(request('Bearer not-the-token'), context)).resolves.toMatchObject({
      statusCode: 403,
    });
    await expect(runNow(request(`Bearer ${token}`), context)).resolves.toEqual({
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ due: 1, started: 1 }),
    });
    await expect(runNow({ source: 'aws.events' }, context)).rejects.toMatchObject({
      name: 'InvalidEventError',
    });
  });
});
