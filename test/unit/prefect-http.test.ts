import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrefectApiError, PrefectUnavailableError } from '../../src/errors';
import {
  authorizationHeader,
  describeErrorBody,
  PrefectHttp,
  type PrefectHttpOptions,
  parseRetryAfter,
  type ResolvedCredential,
  USER_AGENT,
} from '../../src/prefect/http';

/** What the loopback server saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A reply, or `null` to never answer (to provoke a client timeout). */
type Reply = { status: number; headers?: Record<string, string>; body?: unknown } | null;

/** A loopback HTTP server answering with `handler`; a test double of HTTP behaviour, not of Prefect. */
async function serve(handler: (req: Seen, index: number) => Reply) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(request);
      const reply = handler(request, seen.length - 1);
      if (reply === null) return;
      const text =
        reply.body === undefined
          ? ''
          : typeof reply.body === 'string'
            ? reply.body
            : JSON.stringify(reply.body);
      res.writeHead(reply.status, {
        ...(typeof reply.body === 'object' ? { 'content-type': 'application/json' } : {}),
        ...reply.headers,
      });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  servers.push(close);
  return { apiUrl: `http://127.0.0.1:${port}/api`, seen, close };
}

const servers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((close) => close()));
});

/**
 * A transport with recorded, instant sleeps, no jitter (random() = 0.5 is the midpoint) and, unless a test
 * turns it on, no CSRF.
 */
function client(
  apiUrl: string,
  credential: ResolvedCredential = { kind: 'none' },
  options: PrefectHttpOptions & { timeoutMs?: number; maxRetries?: number } = {},
) {
  const delays: number[] = [];
  const transport = new PrefectHttp(
    { apiUrl, timeoutMs: options.timeoutMs ?? 2000, maxRetries: options.maxRetries ?? 5 },
    credential,
    {
      sleep: async (ms) => {
        delays.push(ms);
      },
      random: () => 0.5,
      backoffBaseMs: 10,
      csrf: false,
      ...options,
    },
  );
  return { transport, delays };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

describe('retries', () => {
  it('retries 503 with Retry-After, 503 without, 429, then returns the 200', async () => {
    const replies: Reply[] = [
      { status: 503, headers: { 'retry-after': '7' }, body: 'busy' },
      { status: 503, body: { detail: 'busy' } },
      { status: 429, headers: { 'retry-after': '2' }, body: { detail: 'slow down' } },
      { status: 200, body: [{ id: 'a' }] },
    ];
    const server = await serve((_req, i) => replies[i] ?? { status: 500 });
    const { transport, delays } = client(server.apiUrl);

    const res = await transport.request('POST', '/work_pools/p/get_scheduled_flow_runs', { body: {} });

    expect(res).toEqual({ status: 200, data: [{ id: 'a' }] });
    expect(server.seen).toHaveLength(4);
    // Retry-After 7 s is a minimum (its jitter only adds: random 0.5 → +10 %), then 2**2 × base, then 2 s + 10 %.
    expect(delays).toEqual([7700, 40, 2200]);
    expect(server.seen.every((r) => r.url === '/api/work_pools/p/get_scheduled_flow_runs')).toBe(true);
  });

  it.each([408, 502])('retries %i as well', async (status) => {
    const server = await serve((_req, i) => (i === 0 ? { status } : { status: 204 }));
    const { transport } = client(server.apiUrl);
    await expect(transport.request('GET', '/health')).resolves.toEqual({ status: 204, data: undefined });
    expect(server.seen).toHaveLength(2);
  });

  it('gives up after maxRetries and reports the last status', async () => {
    const server = await serve(() => ({ status: 503, body: { detail: 'Service Unavailable' } }));
    const { transport, delays } = client(server.apiUrl, { kind: 'none' }, { maxRetries: 2 });

    const err = await failure(transport.request('GET', '/work_pools/p'));

    expect(err).toBeInstanceOf(PrefectApiError);
    expect((err as PrefectApiError).status).toBe(503);
    expect(server.seen).toHaveLength(3);
    expect(delays).toEqual([20, 40]);
  });

  it('keeps backoff jitter within ±20 % and caps every wait', async () => {
    const server = await serve(() => ({ status: 503, headers: { 'retry-after': '3600' } }));
    const { transport, delays } = client(
      server.apiUrl,
      { kind: 'none' },
      {
        maxRetries: 1,
        random: Math.random,
        maxDelayMs: 5000,
      },
    );
    await failure(transport.request('GET', '/x'));
    expect(delays).toEqual([5000]);

    const replies: Reply[] = [
      { status: 502 },
      { status: 502 },
      { status: 502 },
      { status: 429, headers: { 'retry-after': '1' } },
      { status: 200, body: true },
    ];
    const flaky = await serve((_req, i) => replies[i] ?? { status: 500 });
    const jittered = client(flaky.apiUrl, { kind: 'none' }, { random: Math.random, backoffBaseMs: 100 });
    await jittered.transport.request('GET', '/x');
    const [first, second, third, requested] = jittered.delays;
    [first, second, third].forEach((ms, i) => {
      const base = 100 * 2 ** (i + 1);
      expect(ms).toBeGreaterThanOrEqual(base * 0.8);
      expect(ms).toBeLessThanOrEqual(base * 1.2);
    });
    expect(requested).toBeGreaterThanOrEqual(1000);
    expect(requested).toBeLessThanOrEqual(1200);
  });

  it.each([
    [401, { detail: 'Unauthorized' }],
    [403, { detail: 'Forbidden' }],
    [404, { detail: 'Work pool "x" not found.' }],
    [409, { detail: 'A work pool with this name already exists.' }],
    [422, { detail: [{ loc: ['body', 'name'], msg: 'Field required', type: 'missing' }] }],
    [500, 'Internal Server Error'],
  ])('does not retry %i', async (status, body) => {
    const server = await serve(() => ({ status, body }));
    const { transport, delays } = client(server.apiUrl);
    const err = await failure(
      transport.request('POST', '/work_pools/x/get_scheduled_flow_runs', { body: {} }),
    );
    expect(err).toBeInstanceOf(PrefectApiError);
    expect(err.name).toBe('PrefectApiError');
    expect((err as PrefectApiError).status).toBe(status);
    expect(server.seen).toHaveLength(1);
    expect(delays).toEqual([]);
  });
});

describe('error messages', () => {
  it('names the method, route, status and the server detail', async () => {
    const server = await serve(() => ({ status: 404, body: { detail: 'Work pool "x" not found.' } }));
    const { transport } = client(server.apiUrl);
    const err = (await failure(
      transport.request('POST', '/work_pools/x/get_scheduled_flow_runs', { body: {} }),
    )) as PrefectApiError;
    expect(err.message).toBe(
      'Prefect API POST /work_pools/x/get_scheduled_flow_runs failed: 404 Not Found: Work pool "x" not found.',
    );
    expect(err.route).toBe('/work_pools/x/get_scheduled_flow_runs');
    expect(err.detail).toBe('Work pool "x" not found.');
  });

  it('spells out validation errors', async () => {
    const server = await serve(() => ({
      status: 422,
      body: {
        detail: [
          { loc: ['body', 'name'], msg: 'Field required', type: 'missing' },
          { loc: ['body', 'limit'], msg: 'Input should be less than or equal to 200', type: 'le' },
        ],
      },
    }));
    const { transport } = client(server.apiUrl);
    const err = await failure(transport.request('POST', '/work_pools/', { body: {} }));
    expect(err.message).toBe(
      'Prefect API POST /work_pools/ failed: 422 Unprocessable Entity: body.name: Field required; body.limit: Input should be less than or equal to 200',
    );
  });

  it('uses a non-JSON body as it is, truncated', async () => {
    const server = await serve(() => ({ status: 500, body: `<html>${'x'.repeat(2000)}</html>` }));
    const { transport } = client(server.apiUrl);
    const err = (await failure(transport.request('GET', '/flows/1'))) as PrefectApiError;
    expect(
      err.message.startsWith('Prefect API GET /flows/1 failed: 500 Internal Server Error: <html>xxx'),
    ).toBe(true);
    expect(err.detail.length).toBeLessThanOrEqual(501);
    expect(err.detail.endsWith('…')).toBe(true);
  });

  it.each([401, 403])('hints at the credential settings on %i', async (status) => {
    const server = await serve(() => ({ status, body: { detail: 'Invalid authentication credentials' } }));
    const { transport } = client(server.apiUrl, { kind: 'apiKey', value: 'pnu_wrong' });
    const err = await failure(transport.request('GET', '/work_pools/p'));
    expect(err.message).toContain(`${status} `);
    expect(err.message).toContain('Invalid authentication credentials');
    expect(err.message).toContain('PREFECT_API_KEY');
    expect(err.message).toContain('PREFECT_API_AUTH_STRING');
  });

  it('describes bodies without a detail', () => {
    expect(describeErrorBody('{"message":"nope"}')).toBe('{"message":"nope"}');
    expect(describeErrorBody('')).toBe('');
    expect(describeErrorBody('{"detail":"Flow run not found"}')).toBe('Flow run not found');
  });
});

describe('timeouts and connection errors', () => {
  it('retries a request that times out, then throws PrefectUnavailableError naming the URL', async () => {
    const server = await serve(() => null);
    const { transport, delays } = client(server.apiUrl, { kind: 'none' }, { timeoutMs: 100, maxRetries: 2 });

    const err = await failure(transport.request('GET', '/work_pools/p'));

    expect(err).toBeInstanceOf(PrefectUnavailableError);
    expect(err.name).toBe('PrefectUnavailableError');
    expect(err.message).toBe(
      `Prefect API GET ${server.apiUrl}/work_pools/p is unreachable after 3 attempts: no answer within 100 ms`,
    );
    expect(server.seen).toHaveLength(3);
    expect(delays).toEqual([20, 40]);
  });

  it('recovers when a retry after a timeout is answered', async () => {
    const server = await serve((_req, i) => (i === 0 ? null : { status: 200, body: { ok: true } }));
    const { transport } = client(server.apiUrl, { kind: 'none' }, { timeoutMs: 100 });
    await expect(transport.request('GET', '/x')).resolves.toEqual({ status: 200, data: { ok: true } });
    expect(server.seen).toHaveLength(2);
  });

  it('retries refused connections, then names the URL and the cause', async () => {
    const server = await serve(() => ({ status: 200 }));
    await server.close();
    const { transport, delays } = client(server.apiUrl, { kind: 'none' }, { maxRetries: 1 });
    const err = await failure(transport.request('POST', '/logs/', { body: [] }));
    expect(err).toBeInstanceOf(PrefectUnavailableError);
    expect(err.message).toMatch(
      new RegExp(`^Prefect API POST ${server.apiUrl}/logs/ is unreachable after 2 attempts: .*ECONNREFUSED`),
    );
    expect(delays).toHaveLength(1);
  });
});

describe('CSRF (self-hosted)', () => {
  /** A server with CSRF protection on: tokens per client id, rotated on demand. */
  async function csrfServer(options: { expiresInMs?: number } = {}) {
    let issued = 0;
    const valid = new Map<string, string>();
    const server = await serve((req) => {
      const url = new URL(req.url, 'http://x');
      if (url.pathname === '/api/csrf-token') {
        const clientId = url.searchParams.get('client') ?? '';
        const token = `token-${++issued}`;
        valid.set(clientId, token);
        return {
          status: 200,
          body: {
            token,
            client: clientId,
            expiration: new Date(Date.now() + (options.expiresInMs ?? 3_600_000)).toISOString(),
          },
        };
      }
      if (req.method !== 'GET') {
        const token = req.headers['prefect-csrf-token'];
        const clientId = req.headers['prefect-csrf-client'];
        if (!token) return { status: 403, body: { detail: 'Missing CSRF token.' } };
        if (typeof clientId !== 'string' || valid.get(clientId) !== token) {
          return { status: 403, body: { detail: 'Invalid CSRF token or client identifier.' } };
        }
      }
      return { status: 200, body: { ok: true } };
    });
    return { ...server, valid, issued: () => issued };
  }

  it('fetches one token before the first write and sends it with every write', async () => {
    const server = await csrfServer();
    const { transport } = client(server.apiUrl, { kind: 'none' }, { csrf: true });

    await transport.request('GET', '/work_pools/p');
    await transport.request('POST', '/work_pools/p/workers/heartbeat', { body: { name: 'w' } });
    await transport.request('PATCH', '/flow_runs/1', { body: {} });

    expect(server.seen.map((r) => `${r.method} ${new URL(r.url, 'http://x').pathname}`)).toEqual([
      'GET /api/work_pools/p',
      'GET /api/csrf-token',
      'POST /api/work_pools/p/workers/heartbeat',
      'PATCH /api/flow_runs/1',
    ]);
    const clientId = new URL(server.seen[1]?.url ?? '', 'http://x').searchParams.get('client');
    expect(clientId).toMatch(/^[0-9a-f-]{36}$/);
    for (const write of server.seen.slice(2)) {
      expect(write.headers['prefect-csrf-token']).toBe('token-1');
      expect(write.headers['prefect-csrf-client']).toBe(clientId);
    }
    expect(server.seen[0]?.headers['prefect-csrf-token']).toBeUndefined();
  });

  it('shares one token request between concurrent writes', async () => {
    const server = await csrfServer();
    const { transport } = client(server.apiUrl, { kind: 'none' }, { csrf: true });
    await Promise.all([1, 2, 3].map((i) => transport.request('POST', `/logs/${i}`, { body: [] })));
    expect(server.issued()).toBe(1);
  });

  it('refetches the token once when the server calls it invalid, and retries the write', async () => {
    const server = await csrfServer();
    const { transport } = client(server.apiUrl, { kind: 'none' }, { csrf: true });
    await transport.request('POST', '/a', { body: {} });
    server.valid.clear(); // e.g. the server's tokens were wiped

    await expect(transport.request('POST', '/b', { body: {} })).resolves.toEqual({
      status: 200,
      data: { ok: true },
    });
    expect(server.issued()).toBe(2);
    expect(server.seen.at(-1)?.headers['prefect-csrf-token']).toBe('token-2');
  });

  it('gives up when the fresh token is rejected too', async () => {
    const server = await serve((req) =>
      req.url.startsWith('/api/csrf-token')
        ? { status: 200, body: { token: 't', expiration: new Date(Date.now() + 60_000).toISOString() } }
        : { status: 403, body: { detail: 'Invalid CSRF token or client identifier.' } },
    );
    const { transport } = client(server.apiUrl, { kind: 'none' }, { csrf: true });
    const err = await failure(transport.request('POST', '/a', { body: {} }));
    expect(err).toBeInstanceOf(PrefectApiError);
    expect(err.message).toContain('403 Forbidden: Invalid CSRF token or client identifier.');
    expect(server.seen.map((r) => r.method)).toEqual(['GET', 'POST', 'GET', 'POST']);
  });

  it('fetches a new token once the old one expired', async () => {
    const server = await csrfServer({ expiresInMs: -1000 });
    const { transport } = client(server.apiUrl, { kind: 'none' }, { csrf: true });
    await transport.request('POST', '/a', { body: {} });
    await transport.request('POST', '/b', { body: {} });
    expect(server.issued()).toBe(2);
  });

  it.each([
    ['disabled (422)', { status: 422, body: { detail: 'CSRF protection is disabled.' } }],
    ['absent (404)', { status: 404, body: { detail: 'Not Found' } }],
  ])('stops asking when CSRF is %s', async (_label, tokenReply) => {
    const server = await serve((req) =>
      req.url.startsWith('/api/csrf-token') ? tokenReply : { status: 201, body: { ok: true } },
    );
    const { transport } = client(server.apiUrl, { kind: 'none' }, { csrf: true });
    await transport.request('POST', '/a', { body: {} });
    await transport.request('POST', '/b', { body: {} });
    expect(server.seen.map((r) => `${r.method} ${r.url.split('?')[0]}`)).toEqual([
      'GET /api/csrf-token',
      'POST /api/a',
      'POST /api/b',
    ]);
    expect(server.seen[1]?.headers['prefect-csrf-token']).toBeUndefined();
  });

  it('surfaces any other failure of the token request', async () => {
    const server = await serve(() => ({ status: 500, body: { detail: 'database is locked' } }));
    const { transport } = client(server.apiUrl, { kind: 'none' }, { csrf: true });
    const err = await failure(transport.request('POST', '/a', { body: {} }));
    expect(err.message).toBe(
      'Prefect API GET /csrf-token failed: 500 Internal Server Error: database is locked',
    );
  });
});

describe('URLs and headers', () => {
  it('sends the API version, a non-Prefect user agent and JSON', async () => {
    const server = await serve(() => ({ status: 200, body: {} }));
    const { transport } = client(`${server.apiUrl}/`);
    await transport.request('POST', '/work_pools/my%20pool/workers/heartbeat', { body: { name: 'w' } });
    const [req] = server.seen;
    expect(req?.url).toBe('/api/work_pools/my%20pool/workers/heartbeat');
    expect(req?.headers['x-prefect-api-version']).toBe('0.8.4');
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers.authorization).toBeUndefined();
    expect(JSON.parse(req?.body ?? '')).toEqual({ name: 'w' });
    expect(req?.headers['user-agent']).toBe(USER_AGENT);
    // The server's client-version pattern must not match, or it could treat us as a 3.0.0–3.0.3 worker.
    expect(USER_AGENT).not.toMatch(/^prefect\/(\d+\.\d+\.\d+(?:[a-z.+0-9]+)?) \(API \S+\)$/);
    expect(USER_AGENT).toMatch(/^prefect-ecs-launcher\/\d+\.\d+\.\d+ \(API 0\.8\.4\)$/);
  });

  it('appends routes and queries to a Cloud workspace URL, with a bearer key and no CSRF', async () => {
    const server = await serve(() => ({ status: 200, body: { ok: true } }));
    const requested: string[] = [];
    const cloudUrl = 'https://api.prefect.cloud/api/accounts/acc-1/workspaces/ws-2';
    const { transport } = client(
      cloudUrl,
      { kind: 'apiKey', value: 'pnu_secret' },
      {
        // Route Cloud traffic to the loopback server, remembering where it was meant to go.
        fetch: (input, init) => {
          const url = String(input);
          requested.push(url);
          return fetch(url.replace('https://api.prefect.cloud/api', server.apiUrl), init);
        },
      },
    );

    await transport.request('GET', '/block_documents/b1', { query: { include_secrets: 'true' } });
    await transport.request('POST', '/work_pools/x/get_scheduled_flow_runs', { body: {} });

    expect(requested).toEqual([
      `${cloudUrl}/block_documents/b1?include_secrets=true`,
      `${cloudUrl}/work_pools/x/get_scheduled_flow_runs`,
    ]);
    expect(server.seen.map((r) => r.headers.authorization)).toEqual([
      'Bearer pnu_secret',
      'Bearer pnu_secret',
    ]);
    expect(server.seen[1]?.headers['prefect-csrf-token']).toBeUndefined();
  });

  it('sends a self-hosted auth string as HTTP Basic', async () => {
    const server = await serve((req) =>
      req.url.startsWith('/api/csrf-token')
        ? { status: 422, body: { detail: 'CSRF protection is disabled.' } }
        : { status: 204 },
    );
    const { transport } = client(server.apiUrl, { kind: 'authString', value: 'admin:pa:ss' }, { csrf: true });
    await transport.request('PATCH', '/flow_runs/1', { body: { infrastructure_pid: 'c::t' } });
    const expected = `Basic ${Buffer.from('admin:pa:ss').toString('base64')}`;
    expect(server.seen.map((r) => r.headers.authorization)).toEqual([expected, expected]);
  });

  it('maps each credential kind to its header', () => {
    expect(authorizationHeader({ kind: 'none' })).toBeUndefined();
    expect(authorizationHeader({ kind: 'apiKey', value: 'k' })).toBe('Bearer k');
    expect(authorizationHeader({ kind: 'authString', value: 'u:p' })).toBe('Basic dTpw');
  });
});

describe('Retry-After parsing', () => {
  const now = Date.parse('2026-11-28T10:00:00Z');
  it.each([
    ['5', 5000],
    ['0', 0],
    ['1.5', 1500],
    ['Sat, 28 Nov 2026 10:00:30 GMT', 30_000],
    ['Sat, 28 Nov 2026 09:00:00 GMT', 0],
  ])('reads %j', (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });
  it.each([null, '', 'soon'])('ignores %j', (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe('credential secrecy', () => {
  const key = 'pnu_TOPSECRETKEY123';
  const authString = 'admin:hunter2-secret';

  it.each([
    ['API key', { kind: 'apiKey', value: key } as const],
    ['auth string', { kind: 'authString', value: authString } as const],
  ])('keeps the %s out of error messages, even when the server echoes it', async (_label, credential) => {
    const server = await serve((req) => {
      if (req.url.startsWith('/api/csrf-token')) return { status: 404 };
      return req.method === 'GET'
        ? { status: 401, body: { detail: `bad credentials: ${req.headers.authorization}` } }
        : { status: 500, body: `echo ${req.headers.authorization} ${credential.value}` };
    });
    const { transport } = client(server.apiUrl, credential, { csrf: true });
    const errors = [
      await failure(transport.request('GET', '/a')),
      await failure(transport.request('POST', '/b', { body: {} })),
    ];
    await server.close();
    errors.push(await failure(transport.request('GET', '/c')));

    const encoded = Buffer.from(credential.value).toString('base64');
    for (const err of errors) {
      const everything = `${err.message} ${JSON.stringify(err)} ${String(err.stack)}`;
      expect(everything).not.toContain(credential.value);
      expect(everything).not.toContain(encoded);
    }
    const scheme = credential.kind === 'apiKey' ? 'Bearer' : 'Basic';
    expect(errors[0]?.message).toContain(`bad credentials: ${scheme} ***`);
  });
});
