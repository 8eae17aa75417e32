import {
  parseApiUrl,
  parseConfig,
  parseJobDefaults,
  parsePrefectConnection,
  requireStateMachineArn,
} from '../../src/config';
import { ConfigError } from '../../src/errors';

const CLOUD =
  'https://api.prefect.cloud/api/accounts/0eb0b8d4-0000-4000-8000-000000000001/workspaces/9f1c-ws';
const SELF_HOSTED = 'http://prefect.internal:4200/api';

/** The smallest valid environment, plus overrides (undefined removes a setting). */
function env(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { PREFECT_API_URL: SELF_HOSTED, LAUNCHER_WORK_POOL: 'my-ecs-pool', ...overrides };
}

/** The ConfigError the call throws; fails the test if it throws anything else or nothing. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).name).toBe('ConfigError');
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parsePrefectConnection', () => {
  it('reads a Prefect Cloud workspace URL with an API key, and the defaults', () => {
    expect(parsePrefectConnection({ PREFECT_API_URL: CLOUD, PREFECT_API_KEY: 'pnu_abc' })).toEqual({
      apiUrl: CLOUD,
      credential: { kind: 'apiKey', value: 'pnu_abc' },
      timeoutMs: 30_000,
      maxRetries: 5,
    });
  });

  it('reads a self-hosted URL with an auth string', () => {
    expect(
      parsePrefectConnection({ PREFECT_API_URL: SELF_HOSTED, PREFECT_API_AUTH_STRING: 'admin:s3cret:x' }),
    ).toMatchObject({ apiUrl: SELF_HOSTED, credential: { kind: 'authString', value: 'admin:s3cret:x' } });
  });

  it('needs no credential for a plain self-hosted server', () => {
    expect(parsePrefectConnection({ PREFECT_API_URL: 'https://10.0.0.5/api' }).credential).toEqual({
      kind: 'none',
    });
  });

  it.each([
    [`${SELF_HOSTED}/`, SELF_HOSTED],
    [`${SELF_HOSTED}//`, SELF_HOSTED],
    [`${CLOUD}/`, CLOUD],
    [`  ${SELF_HOSTED}  `, SELF_HOSTED],
    ['HTTP://Prefect.Internal:4200/api', 'http://prefect.internal:4200/api'],
  ])('normalises %j to %j', (raw, expected) => {
    expect(parsePrefectConnection({ PREFECT_API_URL: raw }).apiUrl).toBe(expected);
  });

  it.each([
    [
      'PREFECT_API_KEY_SECRET_ARN',
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prefect/key-AbCdEf',
      'apiKeySecret',
    ],
    [
      'PREFECT_API_AUTH_STRING_SECRET_ARN',
      'arn:aws:ssm:us-east-1:123456789012:parameter/prefect/auth',
      'authStringSecret',
    ],
    [
      'PREFECT_API_KEY_SECRET_ARN',
      'arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:k',
      'apiKeySecret',
    ],
  ])('accepts %s = %s', (name, secretArn, kind) => {
    expect(parsePrefectConnection({ PREFECT_API_URL: CLOUD, [name]: secretArn }).credential).toEqual({
      kind,
      secretArn,
    });
  });

  it('converts the timeout to milliseconds and reads the retries', () => {
    const connection = parsePrefectConnection({
      PREFECT_API_URL: SELF_HOSTED,
      LAUNCHER_HTTP_TIMEOUT_SECONDS: '10',
      LAUNCHER_HTTP_MAX_RETRIES: '0',
    });
    expect(connection).toMatchObject({ timeoutMs: 10_000, maxRetries: 0 });
  });

  it.each([
    ['missing', {}, /^PREFECT_API_URL is not set; set it to .*http:\/\/prefect\.internal:4200\/api/],
    ['blank', { PREFECT_API_URL: '   ' }, /^PREFECT_API_URL is not set/],
    [
      'not a URL',
      { PREFECT_API_URL: 'prefect.internal:4200' },
      /^PREFECT_API_URL .*"prefect\.internal:4200"/,
    ],
    [
      'garbage',
      { PREFECT_API_URL: 'not a url' },
      /^PREFECT_API_URL is not a URL: "not a url"; set it to https:\/\/api\.prefect\.cloud/,
    ],
    [
      'another scheme',
      { PREFECT_API_URL: 'ftp://prefect/api' },
      /^PREFECT_API_URL must start with http:\/\/ or https:\/\//,
    ],
    ['with a query', { PREFECT_API_URL: `${SELF_HOSTED}?x=1` }, /^PREFECT_API_URL must not carry a query/],
    [
      'with credentials',
      { PREFECT_API_URL: 'http://admin:pw@prefect:4200/api' },
      /^PREFECT_API_URL must not carry credentials; put them in PREFECT_API_AUTH_STRING/,
    ],
    [
      'Cloud without a workspace',
      { PREFECT_API_URL: 'https://api.prefect.cloud/api' },
      /^PREFECT_API_URL points at Prefect Cloud but not at a workspace/,
    ],
    [
      'Cloud with an account only',
      { PREFECT_API_URL: 'https://api.prefect.cloud/api/accounts/a' },
      /^PREFECT_API_URL points at Prefect Cloud but not at a workspace/,
    ],
    [
      'Cloud with a path beyond the workspace',
      { PREFECT_API_URL: `${CLOUD}/flows` },
      /^PREFECT_API_URL points at Prefect Cloud but not at a workspace/,
    ],
  ])('rejects a PREFECT_API_URL that is %s', (_label, given, message) => {
    expect(configError(() => parsePrefectConnection(given)).message).toMatch(message);
  });

  it('does not echo URL credentials in its error', () => {
    const err = configError(() =>
      parsePrefectConnection({ PREFECT_API_URL: 'http://admin:hunter2@prefect/api' }),
    );
    expect(err.message).not.toContain('hunter2');
  });

  it.each([
    [{ PREFECT_API_KEY: 'k', PREFECT_API_AUTH_STRING: 'u:p' }, 'PREFECT_API_KEY, PREFECT_API_AUTH_STRING'],
    [
      { PREFECT_API_KEY: 'k', PREFECT_API_KEY_SECRET_ARN: 'arn:aws:ssm:us-east-1:123456789012:parameter/k' },
      'PREFECT_API_KEY, PREFECT_API_KEY_SECRET_ARN',
    ],
    [
      {
        PREFECT_API_AUTH_STRING_SECRET_ARN: 'arn:aws:ssm:us-east-1:123456789012:parameter/a',
        PREFECT_API_KEY_SECRET_ARN: 'arn:aws:ssm:us-east-1:123456789012:parameter/k',
      },
      'PREFECT_API_KEY_SECRET_ARN, PREFECT_API_AUTH_STRING_SECRET_ARN',
    ],
  ])('rejects two credentials at once (%j)', (given, names) => {
    const err = configError(() => parsePrefectConnection({ PREFECT_API_URL: SELF_HOSTED, ...given }));
    expect(err.message).toMatch(new RegExp(`^only one of ${names} may be set`));
  });

  it('ignores blank credential settings', () => {
    expect(
      parsePrefectConnection({
        PREFECT_API_URL: SELF_HOSTED,
        PREFECT_API_KEY: ' ',
        PREFECT_API_AUTH_STRING: 'u:p',
      }).credential,
    ).toEqual({ kind: 'authString', value: 'u:p' });
  });

  it.each([
    ['PREFECT_API_KEY_SECRET_ARN', 'my-secret'],
    ['PREFECT_API_KEY_SECRET_ARN', 'arn:aws:s3:::bucket/key'],
    ['PREFECT_API_AUTH_STRING_SECRET_ARN', 'arn:aws:secretsmanager:eu-west-1:1234:secret:short-account'],
    ['PREFECT_API_AUTH_STRING_SECRET_ARN', 'arn:aws:ssm:eu-west-1:123456789012:parameter'],
  ])('rejects %s = %j', (name, value) => {
    const err = configError(() => parsePrefectConnection({ PREFECT_API_URL: SELF_HOSTED, [name]: value }));
    expect(err.message).toMatch(new RegExp(`^${name} is not a Secrets Manager or SSM parameter ARN`));
    expect(err.message).toContain('arn:aws:secretsmanager:<region>:<account>:secret:<name>');
  });

  it('rejects an auth string without a colon, without echoing it', () => {
    const err = configError(() =>
      parsePrefectConnection({ PREFECT_API_URL: SELF_HOSTED, PREFECT_API_AUTH_STRING: 'justapassword' }),
    );
    expect(err.message).toBe('PREFECT_API_AUTH_STRING must look like <user>:<password>');
  });

  it.each([
    ['LAUNCHER_HTTP_TIMEOUT_SECONDS', 'ten', 1, 300],
    ['LAUNCHER_HTTP_TIMEOUT_SECONDS', '0', 1, 300],
    ['LAUNCHER_HTTP_TIMEOUT_SECONDS', '301', 1, 300],
    ['LAUNCHER_HTTP_MAX_RETRIES', '2.5', 0, 10],
    ['LAUNCHER_HTTP_MAX_RETRIES', '-1', 0, 10],
    ['LAUNCHER_HTTP_MAX_RETRIES', '11', 0, 10],
  ])('rejects %s = %j', (name, value, min, max) => {
    const err = configError(() => parsePrefectConnection({ PREFECT_API_URL: SELF_HOSTED, [name]: value }));
    expect(err.message).toBe(
      `${name} is ${JSON.stringify(value)}; set it to a whole number from ${min} to ${max}`,
    );
  });
});

describe('parseApiUrl', () => {
  it('names the setting it was given', () => {
    expect(configError(() => parseApiUrl('nope', 'TEST_PREFECT_URL')).message).toMatch(
      /^TEST_PREFECT_URL is not a URL/,
    );
  });
});

describe('parseConfig', () => {
  it('reads a full environment', () => {
    const config = parseConfig(
      env({
        PREFECT_API_URL: CLOUD,
        PREFECT_API_KEY_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prefect-key-AbC123',
        LAUNCHER_WORK_QUEUES: ' high, low ,,default ',
        LAUNCHER_CLUSTER: 'prod',
        LAUNCHER_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:prefect-launch_1',
        LAUNCHER_LOOKAHEAD_SECONDS: '30',
        LAUNCHER_WORKER_NAME: 'launcher-eu',
        LAUNCHER_CONCURRENCY: '16',
        LAUNCHER_CANCEL_GRACE_SECONDS: '0',
        LAUNCHER_SWEEP_SETTLE_SECONDS: '15',
        LAUNCHER_AWS_CACHE_SECONDS: '0',
        LAUNCHER_START_LEAD_SECONDS: '45',
        AWS_REGION: 'eu-west-1',
        AWS_DEFAULT_REGION: 'us-east-1',
      }),
    );
    expect(config).toEqual({
      prefect: {
        apiUrl: CLOUD,
        credential: {
          kind: 'apiKeySecret',
          secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prefect-key-AbC123',
        },
        timeoutMs: 30_000,
        maxRetries: 5,
      },
      workPool: 'my-ecs-pool',
      workQueues: ['high', 'low', 'default'],
      cluster: 'prod',
      jobDefaults: { executionRoleArn: undefined, network: undefined },
      stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:prefect-launch_1',
      pollIntervalSeconds: 60,
      lookaheadSeconds: 30,
      startLeadSeconds: 45,
      workerName: 'launcher-eu',
      concurrency: 16,
      cancelGraceSeconds: 0,
      sweepSettleSeconds: 15,
      awsCacheSeconds: 0,
      region: 'eu-west-1',
    });
  });

  it('fills in the defaults', () => {
    expect(parseConfig(env({ AWS_DEFAULT_REGION: 'us-east-2' }))).toMatchObject({
      workQueues: [],
      cluster: undefined,
      stateMachineArn: undefined,
      pollIntervalSeconds: 60,
      lookaheadSeconds: 90,
      workerName: 'prefect-ecs-launcher my-ecs-pool',
      concurrency: 8,
      cancelGraceSeconds: 240,
      sweepSettleSeconds: 120,
      awsCacheSeconds: 300,
      startLeadSeconds: 0,
      region: 'us-east-2',
    });
    expect(parseConfig(env()).region).toBeUndefined();
  });

  it('reads the process environment by default', () => {
    const saved = { ...process.env };
    try {
      process.env.PREFECT_API_URL = SELF_HOSTED;
      process.env.LAUNCHER_WORK_POOL = 'from-process-env';
      expect(parseConfig().workPool).toBe('from-process-env');
    } finally {
      process.env = saved;
    }
  });

  it('rejects a missing work pool', () => {
    expect(configError(() => parseConfig(env({ LAUNCHER_WORK_POOL: undefined }))).message).toMatch(
      /^LAUNCHER_WORK_POOL is not set; set it to the name of your ecs work pool/,
    );
  });

  it.each(['team/ecs', 'ecs%20pool'])('rejects the pool name %j', (pool) => {
    expect(configError(() => parseConfig(env({ LAUNCHER_WORK_POOL: pool }))).message).toBe(
      `LAUNCHER_WORK_POOL ${JSON.stringify(pool)} must not contain '/' or '%'`,
    );
  });

  it.each([
    'arn:aws:states:eu-west-1:123456789012:execution:m:e',
    'arn:aws:lambda:eu-west-1:123456789012:function:f',
    'prefect-launch',
    'arn:aws:states:eu-west-1:123456789012:stateMachine:has space',
  ])('rejects the state machine ARN %j', (arn) => {
    expect(configError(() => parseConfig(env({ LAUNCHER_STATE_MACHINE_ARN: arn }))).message).toMatch(
      /^LAUNCHER_STATE_MACHINE_ARN is not a state machine ARN: .*arn:aws:states:<region>:<account>:stateMachine:<name>$/,
    );
  });

  it.each([
    ['LAUNCHER_LOOKAHEAD_SECONDS', '3601', 0, 3600],
    ['LAUNCHER_CONCURRENCY', '0', 1, 64],
    ['LAUNCHER_CONCURRENCY', '8 threads', 1, 64],
    ['LAUNCHER_CANCEL_GRACE_SECONDS', '-5', 0, 86400],
    ['LAUNCHER_SWEEP_SETTLE_SECONDS', '4000', 0, 3600],
    ['LAUNCHER_AWS_CACHE_SECONDS', '7200', 0, 3600],
    ['LAUNCHER_START_LEAD_SECONDS', '900', 0, 600],
    ['LAUNCHER_HTTP_TIMEOUT_SECONDS', '30s', 1, 300],
  ])('rejects %s = %j', (name, value, min, max) => {
    expect(configError(() => parseConfig(env({ [name]: value }))).message).toBe(
      `${name} is ${JSON.stringify(value)}; set it to a whole number from ${min} to ${max}`,
    );
  });

  it('reports a bad Prefect setting from parseConfig too', () => {
    expect(configError(() => parseConfig(env({ PREFECT_API_URL: undefined }))).message).toMatch(
      /^PREFECT_API_URL is not set/,
    );
  });
});

describe('requireStateMachineArn', () => {
  it('returns the ARN when set and names the setting when not', () => {
    const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:launch';
    expect(requireStateMachineArn(parseConfig(env({ LAUNCHER_STATE_MACHINE_ARN: arn })))).toBe(arn);
    expect(configError(() => requireStateMachineArn(parseConfig(env()))).message).toMatch(
      /^LAUNCHER_STATE_MACHINE_ARN is not set/,
    );
  });
});

describe('parseJobDefaults', () => {
  const vpc = { LAUNCHER_VPC_ID: 'vpc-0a1b2c3d4e5f60718' };

  it('reads the default network, private by default', () => {
    expect(
      parseJobDefaults({
        ...vpc,
        LAUNCHER_SUBNETS: 'subnet-0a1b2c3d, subnet-0e1f2a3b',
        LAUNCHER_SECURITY_GROUPS: 'sg-01234567',
      }),
    ).toEqual({
      executionRoleArn: undefined,
      network: {
        vpcId: 'vpc-0a1b2c3d4e5f60718',
        subnets: ['subnet-0a1b2c3d', 'subnet-0e1f2a3b'],
        securityGroups: ['sg-01234567'],
        assignPublicIp: 'DISABLED',
      },
    });
    expect(parseJobDefaults({})).toEqual({ executionRoleArn: undefined, network: undefined });
  });

  it.each([
    [
      { LAUNCHER_SUBNETS: 'subnet-0a1b2c3d' },
      'LAUNCHER_SUBNETS and LAUNCHER_SECURITY_GROUPS need LAUNCHER_VPC_ID',
    ],
    [vpc, 'LAUNCHER_VPC_ID is set without LAUNCHER_SUBNETS'],
    [
      { ...vpc, LAUNCHER_SUBNETS: 'sn-1' },
      'LAUNCHER_SUBNETS has "sn-1"; set it to comma-separated ids like subnet-',
    ],
    [
      { ...vpc, LAUNCHER_SUBNETS: 'subnet-0a1b2c3d', LAUNCHER_SECURITY_GROUPS: 'default' },
      'LAUNCHER_SECURITY_GROUPS has "default"',
    ],
    [
      { ...vpc, LAUNCHER_SUBNETS: 'subnet-0a1b2c3d', LAUNCHER_ASSIGN_PUBLIC_IP: 'yes' },
      'LAUNCHER_ASSIGN_PUBLIC_IP is "yes"; set it to ENABLED or DISABLED',
    ],
    [{ LAUNCHER_VPC_ID: 'default' }, 'LAUNCHER_VPC_ID is "default"; set it to a VPC id like vpc-'],
    [
      { LAUNCHER_EXECUTION_ROLE_ARN: 'ecsTaskExecutionRole' },
      'LAUNCHER_EXECUTION_ROLE_ARN is not an IAM role ARN',
    ],
  ])('refuses %j', (env, message) => {
    expect(() => parseJobDefaults(env)).toThrow(message);
  });
});
