import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  ECSClient,
  type RunTaskCommandInput,
} from '@aws-sdk/client-ecs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { describeTask, runTask } from '../../src/aws/ecs';
import { runPoll } from '../../src/launch/entrypoints';
import type { EcsTaskApi } from '../../src/local/run-task-sync';
import { captureOutput } from '../harness/capture-output';
import { type JsonObject, type Packaged, packageService, StackView } from '../harness/cloudformation';
import { awsTestConfig, prefectRaw, scheduleFlowRun, uniqueName } from '../harness/env';
import { launcher, runExecutions, tasksOf } from '../harness/pipeline';

/**
 * The Prefect credential never appears in plain text (nor base64, as HTTP Basic carries it) in anything the
 * launcher writes: the packaged CloudFormation template and Lambda bundles, the Lambda environment, state
 * machine inputs and outputs, ECS task definitions, RunTask requests and tasks, what it writes to Prefect
 * (states, labels, logs) and its own log lines. The launcher is configured with the credential as a Secrets
 * Manager secret (in moto) holding a distinctive value, and the same values sit in the packaging shell's
 * PREFECT_API_KEY / PREFECT_API_AUTH_STRING, as they might on a developer's machine.
 */

const apiKey = `pnu_${randomBytes(18).toString('hex')}`;
const authPassword = randomBytes(18).toString('hex');
const authString = `launcher:${authPassword}`;
/** Every form a leak could take: each value, its password part, and base64 of each. */
const needles = [apiKey, authString, authPassword].flatMap((v) => [v, Buffer.from(v).toString('base64')]);

const secrets = new SecretsManagerClient(awsTestConfig());
const ecs = new ECSClient(awsTestConfig());
const sfn = new SFNClient(awsTestConfig());
const executionRole = 'arn:aws:iam::123456789012:role/prefect-ecs-launcher-execution';

async function secret(value: string): Promise<string> {
  const { ARN } = await secrets.send(
    new CreateSecretCommand({ Name: uniqueName('prefect-credential'), SecretString: value }),
  );
  if (!ARN) throw new Error('moto created a secret without an ARN');
  return ARN;
}

/** The needles found in `text`, by where; empty when nothing leaked. */
function leaks(where: string, text: string): string[] {
  return needles.filter((n) => text.includes(n)).map((n) => `${where} contains ${n.slice(0, 6)}…`);
}

describe('the packaged service', () => {
  let packaged: Packaged;
  let keyArn: string;

  beforeAll(async () => {
    keyArn = await secret(apiKey);
    packaged = await packageService(
      [
        '--param=prefectApiUrl=https://api.prefect.cloud/api/accounts/acc-1/workspaces/ws-1',
        '--param=workPool=my-ecs-pool',
        `--param=prefectApiKeySecretArn=${keyArn}`,
      ],
      { env: { PREFECT_API_KEY: apiKey, PREFECT_API_AUTH_STRING: authString } },
    );
  }, 240_000);

  afterAll(() => {
    if (packaged) fs.rmSync(packaged.dir, { recursive: true, force: true });
  });

  it('gives the Lambdas the secret ARN only, and no file of the package holds the credential', async () => {
    const view = new StackView(packaged.template);
    for (const id of ['Poll', 'Prepare', 'Crash', 'Report']) {
      const fn = view.resource(`${id}LambdaFunction`).Properties as JsonObject;
      const env = (fn.Environment as JsonObject).Variables as Record<string, string>;
      expect(env.PREFECT_API_KEY_SECRET_ARN).toBe(keyArn);
    }
    const found: string[] = [...leaks('npm run package output', packaged.output)];
    for (const file of fs.readdirSync(packaged.dir)) {
      const full = path.join(packaged.dir, file);
      // The bundles' every entry (code and source maps), uncompressed.
      const text = file.endsWith('.zip')
        ? (await promisify(execFile)('unzip', ['-p', full], { maxBuffer: 256 * 1024 * 1024 })).stdout
        : fs.readFileSync(full, 'utf8');
      expect(text.length).toBeGreaterThan(1000);
      found.push(...leaks(file, text));
    }
    // Every function's bundle was searched.
    expect(
      fs
        .readdirSync(packaged.dir)
        .filter((f) => f.endsWith('.zip'))
        .sort(),
    ).toEqual(['crash.zip', 'poll.zip', 'prepare.zip', 'report.zip', 'runNow.zip']);
    expect(found).toEqual([]);
  });
});

describe('a launch end to end', () => {
  it.each([
    ['PREFECT_API_KEY_SECRET_ARN', apiKey, `Bearer ${apiKey}`],
    ['PREFECT_API_AUTH_STRING_SECRET_ARN', authString, `Basic ${Buffer.from(authString).toString('base64')}`],
  ])('with %s: nothing written anywhere holds the credential', async (setting, value, header) => {
    const arn = await secret(value);
    // Every line the launcher logs, at its most verbose, and the Authorization headers it sends.
    const output = captureOutput();
    const logged = output.lines;
    const sent = new Set<string>();
    const realFetch = globalThis.fetch;
    const fetchSpy = jest.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
      const authorization = new Headers(init?.headers).get('authorization');
      if (authorization) sent.add(authorization);
      return realFetch(input, init);
    });
    const level = process.env.POWERTOOLS_LOG_LEVEL;
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    try {
      const { cluster, pool, deploymentId, stateMachineArn, rt } = await launcher({
        settings: { [setting]: arn, LAUNCHER_EXECUTION_ROLE_ARN: executionRole },
      });
      process.env.POWERTOOLS_LOG_LEVEL = level;
      const runs = {
        ok: await scheduleFlowRun(deploymentId),
        // Failure paths write the most: a refused job, and a task whose container exits 1.
        refused: await scheduleFlowRun(deploymentId, { jobVariables: { cpu: 256, memory: 8192 } }),
        exits: await scheduleFlowRun(deploymentId),
      };
      const requests: RunTaskCommandInput[] = [];
      const ecsApi: EcsTaskApi = {
        runTask: (request) => {
          requests.push(request);
          return runTask(rt.aws.ecs, request);
        },
        describeTask: async (c, taskArn) => {
          const task = await describeTask(rt.aws.ecs, c, taskArn);
          if (task?.lastStatus !== 'STOPPED' || task.group !== `prefect-flow-run:${runs.exits.id}`)
            return task;
          return { ...task, containers: task.containers?.map((ct) => ({ ...ct, exitCode: 1 })) };
        },
      };
      await runPoll(rt);
      const results = await runExecutions(rt, stateMachineArn, ecsApi);
      // A second poll: its sweep reads back everything the first one started.
      await runPoll(rt);
      output.restore();

      expect(results.get(runs.ok.id)?.status).toBe('SUCCEEDED');
      expect(results.get(runs.refused.id)?.status).toBe('FAILED');
      expect(results.get(runs.exits.id)?.status).toBe('FAILED');
      // The launcher did hold the credential (it authenticated with it) and logged plenty.
      expect(sent).toContain(header);
      expect(logged.join('')).toContain('"level":"INFO"');

      const executions = (await sfn.send(new ListExecutionsCommand({ stateMachineArn }))).executions ?? [];
      expect(executions).toHaveLength(3);
      const described = await Promise.all(
        executions.map((e) => sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }))),
      );
      const tasks = await tasksOf(cluster);
      expect(tasks).toHaveLength(2);
      const withTags = await ecs.send(
        new DescribeTasksCommand({
          cluster,
          tasks: tasks.map((t) => t.taskArn as string),
          include: ['TAGS'],
        }),
      );
      const definitions = await Promise.all(
        [...new Set(tasks.map((t) => t.taskDefinitionArn))].map((arn) =>
          ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: arn, include: ['TAGS'] })),
        ),
      );
      // The container gets the credential by reference only.
      for (const { taskDefinition } of definitions) {
        expect(taskDefinition?.containerDefinitions?.[0]?.secrets).toEqual([
          { name: setting.replace(/_SECRET_ARN$/, ''), valueFrom: arn },
        ]);
      }
      const flowRuns = await prefectRaw<{ id: string }[]>('POST', '/flow_runs/filter', {
        work_pools: { name: { any_: [pool] } },
      });
      expect(flowRuns).toHaveLength(3);
      const prefectSide = await Promise.all(
        flowRuns.map(async (run) => ({
          run,
          states: await prefectRaw('GET', `/flow_run_states/?flow_run_id=${run.id}`),
          logs: await prefectRaw('POST', '/logs/filter', { logs: { flow_run_id: { any_: [run.id] } } }),
        })),
      );
      expect(JSON.stringify(prefectSide)).toContain('Container exited with non-zero exit code');

      const written: Record<string, unknown> = {
        'launcher log lines': logged,
        'execution inputs and ends in moto': described,
        'local execution results': [...results.values()],
        'RunTask requests': requests,
        'ECS tasks': withTags,
        'ECS task definitions': definitions,
        'Prefect flow runs, states and logs': prefectSide,
        'the work pool and its workers': [
          await prefectRaw('GET', `/work_pools/${pool}`),
          await prefectRaw('POST', `/work_pools/${pool}/workers/filter`, {}),
        ],
      };
      const found = Object.entries(written).flatMap(([where, what]) => leaks(where, JSON.stringify(what)));
      expect(found).toEqual([]);
    } finally {
      output.restore();
      fetchSpy.mockRestore();
      process.env.POWERTOOLS_LOG_LEVEL = level;
    }
  });
});
