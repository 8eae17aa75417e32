import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeTasksCommand, ECSClient } from '@aws-sdk/client-ecs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigError, PrefectApiError, PrefectUnavailableError } from '../../src/errors';
import { runPoll } from '../../src/launch/entrypoints';
import { type RunningStack, startLocalStack } from '../../src/local/stack';
import defaultTemplate from '../../src/render/default-base-job-template.json';
import { arrangeDeployment, awsTestConfig, prefectRaw, scheduleFlowRun, uniqueName } from '../harness/env';
import { createLaunchStateMachine, testRuntime } from '../harness/launcher';
import { launcher, pollAndRun, runExecutions, tasksOf } from '../harness/pipeline';

/**
 * Bad input against the real Prefect server and moto: one poll over good and bad runs of one pool, where
 * each bad run ends Crashed naming its input and the good ones launch; and bad launcher configuration
 * (a credential the server rejects, an unreachable API, a missing secret, a missing default cluster).
 */

type FlowRunView = {
  id: string;
  state_type: string;
  state_name: string;
  infrastructure_pid: string | null;
  state: { message: string | null };
};

const ecs = new ECSClient(awsTestConfig());
const secrets = new SecretsManagerClient(awsTestConfig());

/** Quotes, command substitution, a newline, a tab, an emoji and 300 characters; none of Prefect's banned / % & < >. */
const HOSTILE = `it's "quoted" $(rm -rf ~) \`id\`; touch pwned\nsecond line\t😀 ${'x'.repeat(300)}`;

/**
 * A Scheduled run created through POST /flow_runs/, which (unlike a deployment's create_flow_run) does not
 * check job variables against the pool's schema: how runs from older clients, or made before the pool's
 * template changed, reach a poll with job variables the schema refuses.
 */
async function scheduleUnchecked(deploymentId: string, jobVariables: Record<string, unknown>) {
  const deployment = await prefectRaw<{ flow_id: string; work_pool_name: string }>(
    'GET',
    `/deployments/${deploymentId}`,
  );
  return prefectRaw<{ id: string }>('POST', '/flow_runs/', {
    flow_id: deployment.flow_id,
    deployment_id: deploymentId,
    work_pool_name: deployment.work_pool_name,
    work_queue_name: 'default',
    job_variables: jobVariables,
    state: { type: 'SCHEDULED', state_details: { scheduled_time: new Date().toISOString() } },
  });
}

async function flowRun(id: string): Promise<FlowRunView> {
  return prefectRaw<FlowRunView>('GET', `/flow_runs/${id}`);
}

async function logsOf(id: string): Promise<string> {
  const logs = await prefectRaw<{ message: string }[]>('POST', '/logs/filter', {
    logs: { flow_run_id: { any_: [id] } },
  });
  return logs.map((l) => l.message).join('\n');
}

describe('one poll over good and bad runs of a pool', () => {
  it('launches every good run and crashes each bad one naming its input, leaving none Pending', async () => {
    const { cluster, pool, deploymentId, stateMachineArn, rt } = await launcher();
    // A second deployment in the pool, whose flow, deployment and run names are hostile.
    const hostileFlow = await prefectRaw<{ id: string }>('POST', '/flows/', {
      name: `${HOSTILE} ${randomUUID()}`,
    });
    const hostileDeployment = await prefectRaw<{ id: string }>('POST', '/deployments/', {
      name: HOSTILE,
      flow_id: hostileFlow.id,
      work_pool_name: pool,
      work_queue_name: 'default',
      job_variables: { cluster, image: 'prefecthq/prefect:3-latest' },
      entrypoint: 'flows.py:my_flow',
      enforce_parameter_schema: false,
    });
    const missingBlock = uniqueName('no-such-block');

    const good = {
      plain: await scheduleFlowRun(deploymentId),
      another: await scheduleFlowRun(deploymentId),
      hostileNames: await prefectRaw<{ id: string }>(
        'POST',
        `/deployments/${hostileDeployment.id}/create_flow_run`,
        { name: HOSTILE, state: { type: 'SCHEDULED' } },
      ),
      hostileFamily: await scheduleFlowRun(deploymentId, { jobVariables: { family: HOSTILE } }),
    };
    const bad: Record<string, [{ id: string }, string]> = {
      unknownLaunchType: [
        await scheduleUnchecked(deploymentId, { launch_type: 'LAMBDA' }),
        `JobConfigurationError: The flow run's job variable 'launch_type' must be one of "FARGATE", "EC2", "EXTERNAL", "FARGATE_SPOT", got "LAMBDA".`,
      ],
      wrongType: [
        await scheduleUnchecked(deploymentId, { cpu: 'lots' }),
        `JobConfigurationError: The flow run's job variable 'cpu' must be an integer or null, got "lots".`,
      ],
      fargatePair: [
        await scheduleFlowRun(deploymentId, { jobVariables: { cpu: 256, memory: 8192 } }),
        'JobConfigurationError: Fargate does not support memory 8192 with cpu 256; with cpu 256, memory must be 512 to 2048 MiB',
      ],
      missingBlock: [
        await scheduleFlowRun(deploymentId, {
          jobVariables: { image: `{{ prefect.blocks.string.${missingBlock} }}` },
        }),
        `JobConfigurationError: Block not found: '${missingBlock}' of type 'string'.`,
      ],
      hugeEnv: [
        await scheduleFlowRun(deploymentId, { jobVariables: { env: { BIG: 'x'.repeat(9 * 1024) } } }),
        "JobConfigurationError: The task's overrides (task_run_request.overrides",
      ],
      familyWithNothingValid: [
        await scheduleFlowRun(deploymentId, { jobVariables: { family: '😀 💥' } }),
        "JobConfigurationError: Task definition family '😀 💥' has no character ECS allows in a family",
      ],
      unsplittableCommand: [
        await scheduleFlowRun(deploymentId, {
          jobVariables: { command: `prefect flow-run execute "${HOSTILE}` },
        }),
        'JobConfigurationError: Cannot split command',
      ],
    };

    const summary = await runPoll(rt);
    const all = [...Object.values(good), ...Object.values(bad).map(([run]) => run)];
    expect(summary).toMatchObject({ due: all.length, outcomes: { started: all.length } });
    const results = await runExecutions(rt, stateMachineArn);

    // Launched: each good run's task exists and the run carries it; in moto no engine moves it on from there.
    for (const [name, run] of Object.entries(good)) {
      const view = await flowRun(run.id);
      expect({ name, status: results.get(run.id)?.status, state: view.state_name }).toEqual({
        name,
        status: 'SUCCEEDED',
        state: 'Pending',
      });
      expect(view.infrastructure_pid).toMatch(/::arn:aws:ecs:/);
    }
    // Crashed, each naming its bad input: none is left Pending for the sweep.
    for (const [name, [run, cause]] of Object.entries(bad)) {
      const view = await flowRun(run.id);
      expect({ name, status: results.get(run.id)?.status, state: view.state_type }).toEqual({
        name,
        status: 'FAILED',
        state: 'CRASHED',
      });
      expect(view.state.message).toContain(`Failed to submit flow run to infrastructure: ${cause}`);
      expect(await logsOf(run.id)).toContain(cause.replace(/^\w+: /, ''));
    }

    // One task per good run, and none for a bad one.
    const tasks = await tasksOf(cluster);
    expect(new Set(tasks.map((t) => t.group))).toEqual(
      new Set(Object.values(good).map((r) => `prefect-flow-run:${r.id}`)),
    );
    // The hostile names reached ECS as a valid family; the job's tags (slugged by the renderer, see the unit
    // tests) are not sent, since Step Functions' ECS integration takes none.
    const hostile = (
      await ecs.send(
        new DescribeTasksCommand({
          cluster,
          tasks: tasks.filter((t) => t.group?.endsWith(good.hostileNames.id)).map((t) => t.taskArn as string),
          include: ['TAGS'],
        }),
      )
    ).tasks?.[0];
    expect(hostile?.taskDefinitionArn).toMatch(/:task-definition\/[A-Za-z0-9_-]{1,255}:\d+$/);
    expect(hostile?.tags ?? []).toEqual([]);
  }, 120_000);
});

describe('bad launcher configuration', () => {
  it('names a default cluster (LAUNCHER_CLUSTER) that does not exist in the run it crashes', async () => {
    // The pool's template names no cluster, and neither does the deployment.
    const { pool, deploymentId } = await arrangeDeployment({
      baseJobTemplate: defaultTemplate,
      jobVariables: { image: 'prefecthq/prefect:3-latest' },
    });
    const stateMachineArn = await createLaunchStateMachine();
    const missing = uniqueName('no-such-cluster');
    const rt = await testRuntime({
      LAUNCHER_WORK_POOL: pool,
      LAUNCHER_STATE_MACHINE_ARN: stateMachineArn,
      LAUNCHER_CLUSTER: missing,
    });
    const run = await scheduleFlowRun(deploymentId);
    await pollAndRun(rt, stateMachineArn);
    const view = await flowRun(run.id);
    expect(view.state_type).toBe('CRASHED');
    expect(view.state.message).toBe(
      `Failed to submit flow run to infrastructure: ClusterNotFoundException: Failed to run ECS task, cluster '${missing}' not found. Confirm that the cluster is configured in your region.`,
    );
  });

  it('fails at cold start, naming the ARN, when the credential secret does not exist or holds no text', async () => {
    const missing = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-prefect-key-AbCdEf';
    await expect(
      testRuntime({ LAUNCHER_WORK_POOL: 'p', PREFECT_API_KEY_SECRET_ARN: missing }),
    ).rejects.toThrow(
      new RegExp(
        `^cannot read secret ${missing}: .*; check that it exists in this region and that the function's role may call secretsmanager:GetSecretValue on it$`,
      ),
    );
    const { ARN: empty } = await secrets.send(
      new CreateSecretCommand({ Name: uniqueName('empty-prefect-key'), SecretString: '   ' }),
    );
    const error = await testRuntime({
      LAUNCHER_WORK_POOL: 'p',
      PREFECT_API_KEY_SECRET_ARN: empty ?? '',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(`secret ${empty} has no string value; store the key as plain text`);
  });

  it('reports an unreachable Prefect API as PrefectUnavailableError naming the URL', async () => {
    // A port that was free a moment ago: nothing listens there.
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const apiUrl = `http://127.0.0.1:${port}/api`;
    const rt = await testRuntime({
      PREFECT_API_URL: apiUrl,
      LAUNCHER_WORK_POOL: 'any-pool',
      LAUNCHER_STATE_MACHINE_ARN: await createLaunchStateMachine(),
      LAUNCHER_HTTP_MAX_RETRIES: '1',
    });
    const error = await runPoll(rt).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PrefectUnavailableError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^Prefect API GET ${apiUrl}/work_pools/any-pool is unreachable after 2 attempts: .*ECONNREFUSED`,
      ),
    );
  });

  /**
   * A second real Prefect server, started with PREFECT_SERVER_API_AUTH_STRING: it answers 401 to any
   * request without that exact basic-auth credential (prefect/server/api/server.py, token_validation).
   */
  describe('a Prefect server that requires an auth string', () => {
    const authString = `admin:${randomUUID()}`;
    let stack: RunningStack;
    let pool: string;

    beforeAll(async () => {
      stack = await startLocalStack({ env: { PREFECT_SERVER_API_AUTH_STRING: authString } });
      pool = uniqueName('auth-pool');
      const res = await fetch(`${stack.prefectApiUrl}/work_pools/`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Basic ${Buffer.from(authString).toString('base64')}`,
        },
        body: JSON.stringify({ name: pool, type: 'ecs' }),
      });
      expect(res.status).toBe(201);
    }, 120_000);

    afterAll(async () => {
      await stack?.stop();
    });

    async function pollWith(credential: Record<string, string>) {
      const rt = await testRuntime({
        PREFECT_API_URL: stack.prefectApiUrl,
        LAUNCHER_WORK_POOL: pool,
        LAUNCHER_STATE_MACHINE_ARN: await createLaunchStateMachine(),
        ...credential,
      });
      return runPoll(rt);
    }

    it('polls with the right auth string, read from its Secrets Manager secret', async () => {
      const { ARN } = await secrets.send(
        new CreateSecretCommand({ Name: uniqueName('prefect-auth'), SecretString: authString }),
      );
      await expect(pollWith({ PREFECT_API_AUTH_STRING_SECRET_ARN: ARN ?? '' })).resolves.toMatchObject({
        due: 0,
      });
    });

    it.each<[string, Record<string, string>]>([
      ['a wrong auth string', { PREFECT_API_AUTH_STRING: `admin:${randomUUID()}` }],
      ['an API key', { PREFECT_API_KEY: `pnu_${randomUUID()}` }],
      ['no credential', {}],
    ])(
      'fails with a 401 that names the credential settings, given %s, without echoing it',
      async (_label, credential) => {
        const error = await pollWith(credential).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(PrefectApiError);
        expect(error).toMatchObject({ status: 401, route: `/work_pools/${pool}` });
        expect((error as Error).message).toBe(
          `Prefect API GET /work_pools/${pool} failed: 401 Unauthorized: {"exception_message":"Unauthorized"} (check the credential: PREFECT_API_KEY or PREFECT_API_KEY_SECRET_ARN for Prefect Cloud, PREFECT_API_AUTH_STRING or PREFECT_API_AUTH_STRING_SECRET_ARN for a self-hosted server)`,
        );
        for (const value of Object.values(credential)) {
          const seen = JSON.stringify({
            message: (error as Error).message,
            error,
            stack: (error as Error).stack,
          });
          expect(seen).not.toContain(value);
          expect(seen).not.toContain(Buffer.from(value).toString('base64'));
        }
      },
    );
  });
});
