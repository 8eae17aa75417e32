import fs from 'node:fs';
import path from 'node:path';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseRunNowToken } from '../../src/config';
import { runNowTokenReader } from '../../src/launch/credential';
import { parseRunNowEvent } from '../../src/launch/events';
import { decideRunNow, handleRunNow, type RunNowRequest, tokenMatches } from '../../src/launch/run-now';
import {
  runNowAutomation,
  runNowNames,
  runNowUrl,
  webhookBlockData,
} from '../../src/launch/run-now-automation';
import type { LogFields, Logger } from '../../src/log';
import type { WorkPool } from '../../src/prefect/types';

const TOKEN = 'a'.repeat(40);
const RUN = '0f3d2c1b-aaaa-4bbb-8ccc-0123456789ab';
const fixtures = path.join(__dirname, '..', 'fixtures', 'run-now');

function post(body?: string, authorization: string | null = `Bearer ${TOKEN}`): RunNowRequest {
  return { method: 'POST', headers: authorization ? { authorization } : {}, ...(body ? { body } : {}) };
}

describe('decideRunNow', () => {
  it('claims the named run, or every due run when the body names none', () => {
    expect(decideRunNow(post(JSON.stringify({ flow_run_id: RUN })), TOKEN)).toEqual({
      kind: 'claim',
      flowRunId: RUN,
    });
    expect(decideRunNow(post(JSON.stringify({ flow_run_id: RUN.toUpperCase() })), TOKEN)).toEqual({
      kind: 'claim',
      flowRunId: RUN,
    });
    expect(decideRunNow(post(), TOKEN)).toEqual({ kind: 'claim', flowRunId: undefined });
    // Prefect 3.0's webhook block: the payload as a JSON string.
    expect(decideRunNow(post(JSON.stringify(JSON.stringify({ flow_run_id: RUN }))), TOKEN)).toEqual({
      kind: 'claim',
      flowRunId: RUN,
    });
    expect(decideRunNow(post('{}'), TOKEN)).toEqual({ kind: 'claim', flowRunId: undefined });
    const encoded = Buffer.from(JSON.stringify({ flow_run_id: RUN })).toString('base64');
    expect(decideRunNow({ ...post(encoded), isBase64Encoded: true }, TOKEN)).toEqual({
      kind: 'claim',
      flowRunId: RUN,
    });
  });

  it('refuses a missing or wrong credential with 401 or 403, before reading the body', () => {
    const body = JSON.stringify({ flow_run_id: RUN });
    expect(decideRunNow(post(body, null), TOKEN)).toMatchObject({ kind: 'refuse', statusCode: 401 });
    for (const wrong of [
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(1)}`,
      TOKEN,
      `Basic ${TOKEN}`,
      'Bearer ',
    ]) {
      expect(decideRunNow(post(body, wrong), TOKEN)).toMatchObject({ kind: 'refuse', statusCode: 403 });
    }
    // Not parsed: a wrong token with a body that is not even JSON is still a 403, not a 400.
    expect(decideRunNow(post('{not json', 'Bearer nope'), TOKEN)).toMatchObject({ statusCode: 403 });
  });

  it('refuses other methods, large bodies and bodies that name no valid run', () => {
    expect(decideRunNow({ ...post(), method: 'GET' }, TOKEN)).toMatchObject({ statusCode: 405 });
    expect(decideRunNow(post(`{"x":"${'y'.repeat(5000)}"}`), TOKEN)).toMatchObject({ statusCode: 413 });
    expect(decideRunNow(post('{not json'), TOKEN)).toMatchObject({ statusCode: 400 });
    expect(decideRunNow(post('[1]'), TOKEN)).toMatchObject({ statusCode: 400 });
    expect(decideRunNow(post('{"flow_run_id": "../../etc"}'), TOKEN)).toMatchObject({ statusCode: 400 });
    expect(decideRunNow(post('{"flow_run_id": 7}'), TOKEN)).toMatchObject({ statusCode: 400 });
  });

  it('compares tokens whatever their lengths', () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches('', TOKEN)).toBe(false);
    expect(tokenMatches(`${TOKEN}${TOKEN}`, TOKEN)).toBe(false);
  });
});

/** A Logger that keeps each line as the JSON Powertools would write of it. */
function recordingLogger(lines: string[], base: LogFields = {}): Logger {
  const emit = (level: string) => (message: string, fields?: LogFields) =>
    lines.push(JSON.stringify({ level, message, ...base, ...fields }));
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => recordingLogger(lines, { ...base, ...fields }),
  };
}

describe('handleRunNow', () => {
  function deps(lines: string[]) {
    const claimed: (string | undefined)[] = [];
    return {
      claimed,
      deps: {
        token: async () => TOKEN,
        claim: async (id: string | undefined) => {
          claimed.push(id);
          return { due: 1, started: 1 };
        },
        log: recordingLogger(lines),
      },
    };
  }

  it('claims only for the right token, and answers with counts', async () => {
    const lines: string[] = [];
    const { claimed, deps: d } = deps(lines);
    const ok = await handleRunNow(d, post(JSON.stringify({ flow_run_id: RUN })));
    expect(ok).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: '{"due":1,"started":1}',
    });
    expect(claimed).toEqual([RUN]);
  });

  it('does nothing for a refused call, and never writes what the caller sent to the log', async () => {
    const lines: string[] = [];
    const { claimed, deps: d } = deps(lines);
    const hostile = '"\n{"level":"error","message":"forged"}';
    const refused = await handleRunNow(
      d,
      post(JSON.stringify({ flow_run_id: hostile }), `Bearer ${hostile}`),
    );
    expect(refused.statusCode).toBe(403);
    const bad = await handleRunNow(d, post(JSON.stringify({ flow_run_id: hostile })));
    expect(bad.statusCode).toBe(400);
    expect(claimed).toEqual([]);
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toContain('forged');
      expect(JSON.parse(line)).toMatchObject({ level: 'warn', message: 'run-now call refused' });
    }
    expect(refused.body).not.toContain('forged');
  });
});

describe('the run-now token', () => {
  it('comes from LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN or, locally, LAUNCHER_RUN_NOW_TOKEN', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:run-now-AbCdEf';
    expect(parseRunNowToken({})).toEqual({ kind: 'none' });
    expect(parseRunNowToken({ LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN: arn })).toEqual({
      kind: 'secret',
      secretArn: arn,
    });
    expect(parseRunNowToken({ LAUNCHER_RUN_NOW_TOKEN: TOKEN })).toEqual({ kind: 'value', value: TOKEN });
    expect(() => parseRunNowToken({ LAUNCHER_RUN_NOW_TOKEN: 'short' })).toThrow(
      'LAUNCHER_RUN_NOW_TOKEN is 5 characters long; use at least 32 random characters (e.g. openssl rand -hex 32)',
    );
    expect(() =>
      parseRunNowToken({
        LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN: 'arn:aws:ssm:eu-west-1:123456789012:parameter/x',
      }),
    ).toThrow(/LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN is not a Secrets Manager secret ARN/);
    expect(() =>
      parseRunNowToken({ LAUNCHER_RUN_NOW_TOKEN: TOKEN, LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN: arn }),
    ).toThrow(/only one of LAUNCHER_RUN_NOW_TOKEN and LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN/);
  });

  it('is read from its secret again once its cache has expired, and a failed read is not kept', async () => {
    const values = [new Error('throttled'), TOKEN, `${TOKEN}b`];
    let reads = 0;
    const client = {
      send: async () => {
        const next = values[reads++];
        if (next instanceof Error) throw next;
        return { SecretString: next };
      },
    } as unknown as SecretsManagerClient;
    let clock = 0;
    let clients = 0;
    const read = runNowTokenReader(
      { kind: 'secret', secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:t' },
      async () => {
        clients++;
        return client;
      },
      { ttlSeconds: 300, now: () => clock },
    );
    await expect(read()).rejects.toThrow(/cannot read secret .*: throttled/);
    expect(await read()).toBe(TOKEN);
    clock = 299_000;
    expect(await read()).toBe(TOKEN);
    clock = 300_000;
    expect(await read()).toBe(`${TOKEN}b`);
    expect(reads).toBe(3);
    expect(clients).toBe(1);
  });

  it('must be long enough in its secret too, and must exist', async () => {
    const client = { send: async () => ({ SecretString: 'short' }) } as unknown as SecretsManagerClient;
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:t';
    await expect(runNowTokenReader({ kind: 'secret', secretArn: arn }, async () => client)()).rejects.toThrow(
      `the run-now token in ${arn} is 5 characters long; store at least 32 random characters`,
    );
    await expect(runNowTokenReader({ kind: 'none' }, async () => client)()).rejects.toThrow(
      /the run-now entry point has no token/,
    );
  });
});

describe('parseRunNowEvent', () => {
  it('reads a real function URL event (AWS documentation example)', () => {
    const event = JSON.parse(fs.readFileSync(path.join(fixtures, 'function-url-event.json'), 'utf8'));
    expect(parseRunNowEvent(event)).toEqual({
      method: 'POST',
      headers: expect.objectContaining({ authorization: 'Bearer token-from-automation' }),
      body: '{"flow_run_id": "0f3d2c1b-aaaa-4bbb-8ccc-0123456789ab"}',
      isBase64Encoded: false,
    });
  });

  it('names what is wrong with anything else', () => {
    expect(() => parseRunNowEvent({ source: 'aws.events' })).toThrow(
      /the run-now function expects a Lambda function URL request/,
    );
  });
});

describe('the run-now automation', () => {
  const pool = { id: '5b2c6f1e-1111-4222-8333-444455556666', name: 'My ECS pool', type: 'ecs' } as WorkPool;

  it('matches golden JSON: Scheduled runs of this pool, not the ones the launcher reschedules', () => {
    const golden = JSON.parse(fs.readFileSync(path.join(fixtures, 'automation.json'), 'utf8'));
    expect(runNowAutomation(pool, '9d1c2b3a-0000-4000-8000-000000000001')).toEqual(golden);
  });

  it('gets names Prefect accepts, distinct per pool', () => {
    expect(runNowNames('My ECS pool')).toEqual({
      automation: 'prefect-ecs-launcher run-now My ECS pool',
      block: expect.stringMatching(/^prefect-ecs-launcher-run-now-my-ecs-pool-[0-9a-f]{8}$/),
    });
    expect(runNowNames('my ecs pool').block).not.toBe(runNowNames('My ECS pool').block);
    expect(runNowNames('é').block).toMatch(/^prefect-ecs-launcher-run-now-[0-9a-f]{8}$/);
  });

  it('sends the token as a bearer header, to https or a loopback address only', () => {
    expect(webhookBlockData('https://x.lambda-url.eu-west-1.on.aws/', TOKEN)).toEqual({
      url: 'https://x.lambda-url.eu-west-1.on.aws/',
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    });
    expect(runNowUrl('http://127.0.0.1:8080/run-now')).toBe('http://127.0.0.1:8080/run-now');
    expect(() => runNowUrl('http://example.com/run-now')).toThrow(/--run-now-url must be https:\/\//);
    expect(() => runNowUrl('not a url')).toThrow(/--run-now-url is not a URL/);
  });
});
