import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  type AcceptanceOptions,
  type AwsSteps,
  deployParams,
  deploySettings,
  NO_CREDENTIALS,
  parseAcceptanceArgs,
  runOnAws,
} from '../acceptance/main';
import type { AcceptanceTarget, ScenarioResult } from '../acceptance/scenarios';

const CLOUD = 'https://api.prefect.cloud/api/accounts/a1/workspaces/w1';
const KEY_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prefect-api-key-AbCdEf';

describe('parseAcceptanceArgs', () => {
  it('takes --local alone', () => {
    expect(parseAcceptanceArgs(['--local'])).toEqual({ mode: 'local' });
    expect(() => parseAcceptanceArgs(['--local', '--stage', 'x'])).toThrow(/--stage is for a run on AWS/);
  });

  it('needs --stage and --region for AWS, and defaults the pool from the stage', () => {
    expect(parseAcceptanceArgs(['--stage', 'acc1', '--region', 'eu-west-1'])).toEqual({
      mode: 'aws',
      stage: 'acc1',
      region: 'eu-west-1',
      keep: false,
      pool: 'acceptance-acc1',
      params: [],
    });
    expect(() => parseAcceptanceArgs([])).toThrow(/^--stage and --region needed\nusage: npm run test:aws/);
    expect(() => parseAcceptanceArgs(['--stage', 'a'])).toThrow(/^--region needed/);
  });

  it('refuses unknown flags, odd stage and region names and params without a key', () => {
    expect(() => parseAcceptanceArgs(['--stag', 'a'])).toThrow(/usage: npm run test:aws/);
    expect(() => parseAcceptanceArgs(['--stage', 'a b', '--region', 'eu-west-1'])).toThrow(/--stage "a b"/);
    expect(() => parseAcceptanceArgs(['--stage', 'a', '--region', 'Ireland'])).toThrow(/not an AWS region/);
    expect(() => parseAcceptanceArgs(['--stage', 'a', '--region', 'eu-west-1', '--param', 'x'])).toThrow(
      /--param "x": use key=value/,
    );
  });
});

describe('deploySettings', () => {
  it('names every missing or wrong setting at once', () => {
    expect(() => deploySettings({})).toThrow(/PREFECT_API_URL is not set/);
    let message = '';
    try {
      deploySettings({ PREFECT_API_URL: CLOUD, PREFECT_API_KEY: 'pnu_x' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n')).toEqual([
      'test:aws: missing or wrong settings:',
      expect.stringMatching(/^ {2}PREFECT_API_KEY is set: .*set PREFECT_API_KEY_SECRET_ARN$/),
      '  PREFECT_API_KEY_SECRET_ARN is not set: Prefect Cloud needs the ARN of the API key secret',
    ]);
  });

  it("passes the secret's ARN to the deploy, and lets a server without auth go without one", () => {
    expect(deploySettings({ PREFECT_API_URL: CLOUD, PREFECT_API_KEY_SECRET_ARN: KEY_ARN })).toEqual({
      apiUrl: CLOUD,
      secret: { param: 'prefectApiKeySecretArn', arn: KEY_ARN },
    });
    expect(deploySettings({ PREFECT_API_URL: 'https://prefect.example.com/api' })).toEqual({
      apiUrl: 'https://prefect.example.com/api',
    });
    expect(() =>
      deploySettings({ PREFECT_API_URL: CLOUD, PREFECT_API_KEY_SECRET_ARN: 'prefect-api-key' }),
    ).toThrow(/PREFECT_API_KEY_SECRET_ARN is not a Secrets Manager or SSM parameter ARN/);
  });
});

describe('deployParams', () => {
  const options = parseAcceptanceArgs(['--stage', 'acc1', '--region', 'eu-west-1']) as Extract<
    AcceptanceOptions,
    { mode: 'aws' }
  >;
  const settings = { apiUrl: CLOUD, secret: { param: 'prefectApiKeySecretArn', arn: KEY_ARN } };

  it('creates a cluster with Fargate Spot and an execution role for the stage by default', () => {
    expect(deployParams(options, settings)).toEqual([
      `--param=prefectApiUrl=${CLOUD}`,
      `--param=prefectApiKeySecretArn=${KEY_ARN}`,
      '--param=workPool=acceptance-acc1',
      '--param=cluster=prefect-ecs-launcher-acceptance-acc1',
      '--param=createCluster=true',
      '--param=createExecutionRole=true',
    ]);
  });

  it("uses the caller's cluster, role and extra parameters when given", () => {
    const own = {
      ...options,
      cluster: 'mine',
      executionRoleArn: 'arn:aws:iam::123456789012:role/x',
      params: ['assignPublicIp=ENABLED'],
    };
    expect(deployParams(own, { apiUrl: CLOUD })).toEqual([
      `--param=prefectApiUrl=${CLOUD}`,
      '--param=workPool=acceptance-acc1',
      '--param=cluster=mine',
      '--param=executionRoleArn=arn:aws:iam::123456789012:role/x',
      '--param=assignPublicIp=ENABLED',
    ]);
  });
});

describe('runOnAws', () => {
  const options = parseAcceptanceArgs(['--stage', 'acc1', '--region', 'eu-west-1']) as Extract<
    AcceptanceOptions,
    { mode: 'aws' }
  >;
  const env = { PREFECT_API_URL: CLOUD, PREFECT_API_KEY_SECRET_ARN: KEY_ARN };
  const passed: ScenarioResult = {
    name: 's',
    expected: 'COMPLETED',
    got: 'COMPLETED',
    detail: '',
    seconds: 1,
    problems: [],
  };

  /** Steps that record what they were asked to do; `overrides` and `exits` (per serverless command) change their answers. */
  function fake(overrides: Partial<AwsSteps> = {}, exits: Record<string, number> = {}) {
    const calls: string[] = [];
    const errors: string[] = [];
    const steps: AwsSteps = {
      findCredentials: async () => undefined,
      serverless: async (args) => {
        calls.push(`serverless ${args[0]}`);
        return exits[args[0] as string] ?? 0;
      },
      registerPool: async (pool) => calls.push(`pool ${pool}`),
      target: async () => ({}) as AcceptanceTarget,
      run: async () => {
        calls.push('scenarios');
        return [passed];
      },
      print: () => undefined,
      complain: (line) => errors.push(line),
      ...overrides,
    };
    return { steps, calls, errors };
  }

  it('deploys, registers the pool, runs the scenarios and removes the stage', async () => {
    const { steps, calls } = fake();
    expect(await runOnAws(options, env, steps)).toBe(0);
    expect(calls).toEqual(['serverless deploy', 'pool acceptance-acc1', 'scenarios', 'serverless remove']);
  });

  it('refuses without credentials, or without settings, before deploying anything (status 2)', async () => {
    const none = fake({ findCredentials: async () => 'Could not load credentials from any providers' });
    expect(await runOnAws(options, env, none.steps)).toBe(2);
    expect(none.calls).toEqual([]);
    expect(none.errors[0]).toBe(NO_CREDENTIALS);
    // The README's troubleshooting quotes it.
    expect(readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8')).toContain(NO_CREDENTIALS);

    const unset = fake();
    expect(await runOnAws(options, {}, unset.steps)).toBe(2);
    expect(unset.calls).toEqual([]);
    expect(unset.errors[0]).toMatch(/PREFECT_API_URL is not set/);
  });

  it('removes the stage when the deploy, the pool or a scenario failed, and fails', async () => {
    const deployFails = fake({}, { deploy: 1 });
    expect(await runOnAws(options, env, deployFails.steps)).toBe(1);
    expect(deployFails.calls).toEqual(['serverless deploy', 'serverless remove']);

    const poolFails = fake({
      registerPool: async () => {
        throw new Error('Prefect API POST /work_pools/ failed: 401 Unauthorized');
      },
    });
    expect(await runOnAws(options, env, poolFails.steps)).toBe(1);
    expect(poolFails.calls).toEqual(['serverless deploy', 'serverless remove']);
    expect(poolFails.errors).toEqual(['test:aws: Prefect API POST /work_pools/ failed: 401 Unauthorized']);

    const scenarioFails = fake({ run: async () => [passed, { ...passed, problems: ['ended CRASHED'] }] });
    expect(await runOnAws(options, env, scenarioFails.steps)).toBe(1);
    expect(scenarioFails.calls).toEqual(['serverless deploy', 'pool acceptance-acc1', 'serverless remove']);
  });

  it('fails when the stage could not be removed, even if every scenario passed', async () => {
    const removeFails = fake({}, { remove: 1 });
    expect(await runOnAws(options, env, removeFails.steps)).toBe(1);
    expect(removeFails.errors).toEqual([
      'test:aws: serverless remove exited with 1; delete stack prefect-ecs-launcher-acc1 in CloudFormation',
    ]);
  });

  it('keeps the stage with --keep', async () => {
    const { steps, calls } = fake();
    expect(await runOnAws({ ...options, keep: true }, env, steps)).toBe(0);
    expect(calls).toEqual(['serverless deploy', 'pool acceptance-acc1', 'scenarios']);
  });
});
