import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { awsActionOf, awsJsonError, type FaultProxy, routeOf, startProxy } from '../../src/local/proxy';

/** An in-process target that echoes what it got and remembers every request it handled. */
interface Target {
  url: string;
  seen: { method: string; url: string; body: string }[];
  close(): Promise<void>;
}

async function startTarget(): Promise<Target> {
  const seen: Target['seen'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      res.writeHead(200, { 'content-type': 'application/json', 'x-target': 'yes' });
      res.end(JSON.stringify({ method: req.method, url: req.url, body, host: req.headers.host }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const RUN = '0b3a6f4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';

let target: Target;
let proxy: FaultProxy;

beforeEach(async () => {
  target = await startTarget();
  proxy = await startProxy(target.url, { recordBodies: true });
});

afterEach(async () => {
  await proxy.close();
  await target.close();
});

function post(path: string, body: unknown = {}, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

const ecsHeaders = (action: string) => ({
  'content-type': 'application/x-amz-json-1.1',
  'x-amz-target': `AmazonEC2ContainerServiceV20141113.${action}`,
});

describe('routeOf and awsActionOf', () => {
  it('templates UUIDs and strips the base path', () => {
    expect(routeOf('post', `/api/flow_runs/${RUN}/set_state`, '/api')).toBe('POST /flow_runs/{id}/set_state');
    expect(routeOf('GET', '/api', '/api')).toBe('GET /');
    expect(routeOf('GET', '/other/x', '/api')).toBe('GET /other/x');
  });

  it('reads the action from X-Amz-Target or a query-protocol form body', () => {
    expect(awsActionOf({ 'x-amz-target': 'AWSStepFunctions.StartExecution' }, '')).toBe('StartExecution');
    expect(
      awsActionOf(
        { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        'Action=DescribeSubnets&Version=2016-11-15',
      ),
    ).toBe('DescribeSubnets');
    expect(awsActionOf({ 'content-type': 'application/json' }, '{"Action":"x"}')).toBeUndefined();
  });
});

describe('startProxy', () => {
  it('forwards method, path, query and body unchanged, and records and counts each request', async () => {
    expect(proxy.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api$/);
    const res = await fetch(`${proxy.url}/flow_runs/${RUN}?x=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-target')).toBe('yes');
    expect(await res.json()).toMatchObject({ method: 'GET', url: `/api/flow_runs/${RUN}?x=1` });
    await post(`/flow_runs/${RUN}/set_state`, { state: 'PENDING' });
    await post('/', '{}', ecsHeaders('RunTask'));
    await post('/', '{}', ecsHeaders('RunTask'));

    expect(target.seen.map((s) => s.url)).toEqual([
      `/api/flow_runs/${RUN}?x=1`,
      `/api/flow_runs/${RUN}/set_state`,
      '/api/',
      '/api/',
    ]);
    expect(target.seen[1]?.body).toBe('{"state":"PENDING"}');
    expect(proxy.counts()).toEqual({
      requests: 4,
      routes: { 'GET /flow_runs/{id}': 1, 'POST /flow_runs/{id}/set_state': 1, 'POST /': 2 },
      actions: { RunTask: 2 },
      faults: {},
    });
    const [first, second] = proxy.records();
    expect(first).toMatchObject({ method: 'GET', route: 'GET /flow_runs/{id}', status: 200 });
    expect(second).toMatchObject({ body: '{"state":"PENDING"}', status: 200 });
    expect(proxy.records()[2]?.action).toBe('RunTask');
  });

  it('answers an error status with headers, without forwarding', async () => {
    proxy.setRules([
      {
        method: 'POST',
        path: '/flow_runs/{id}/set_state',
        fault: {
          kind: 'status',
          status: 429,
          headers: { 'Retry-After': '2' },
          body: { detail: 'slow down' },
        },
      },
    ]);
    const res = await post(`/flow_runs/${RUN}/set_state`);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(await res.json()).toEqual({ detail: 'slow down' });
    expect(target.seen).toHaveLength(0);
    expect((await post('/flow_runs/other')).status).toBe(200);
    expect(proxy.counts().faults).toEqual({ '429': 1 });
    expect(proxy.records()[0]).toMatchObject({ fault: '429', status: 429 });
  });

  it('injects a fault into the next `count` matching requests only', async () => {
    proxy.setRules([{ action: 'RunTask', count: 2, fault: { kind: 'status', status: 503 } }]);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await post('/', '{}', ecsHeaders('RunTask'))).status);
    expect((await post('/', '{}', ecsHeaders('DescribeTasks'))).status).toBe(200);
    expect(statuses).toEqual([503, 503, 200, 200]);
    expect(target.seen).toHaveLength(3);
  });

  it('draws each matching request against the probability, from the given random source', async () => {
    const draws = [0.1, 0.9, 0.4, 0.6];
    const seeded = await startProxy(target.url, {
      random: () => draws.shift() ?? 1,
      rules: [{ path: /\/flaky$/, probability: 0.5, fault: { kind: 'status', status: 500 } }],
    });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${seeded.url}/flaky`)).status);
    await seeded.close();
    expect(statuses).toEqual([500, 200, 500, 200]);
  });

  it('matches on a predicate over the body, and the first rule that fires wins', async () => {
    proxy.setRules([
      { action: 'StartExecution', body: (b) => b.includes(RUN), fault: { kind: 'status', status: 500 } },
      { action: 'StartExecution', fault: { kind: 'status', status: 400 } },
    ]);
    const sfn = { 'x-amz-target': 'AWSStepFunctions.StartExecution' };
    expect((await post('/', { name: RUN }, sfn)).status).toBe(500);
    expect((await post('/', { name: 'other' }, sfn)).status).toBe(400);
  });

  it('resets the connection before forwarding: the target never sees the request', async () => {
    proxy.setRules([{ path: '/x', fault: { kind: 'reset' } }]);
    await expect(post('/x')).rejects.toThrow();
    expect(target.seen).toHaveLength(0);
    expect(proxy.records()[0]).toMatchObject({ fault: 'reset', status: null });
  });

  it('with `after`, lets the target handle the request and loses the answer', async () => {
    proxy.setRules([{ path: '/x', after: true, fault: { kind: 'reset' } }]);
    await expect(post('/x', { did: 'it' })).rejects.toThrow();
    expect(target.seen).toEqual([{ method: 'POST', url: '/api/x', body: '{"did":"it"}' }]);
    expect(proxy.counts().faults).toEqual({ 'reset after': 1 });
  });

  it('with `after`, replaces the answer with an error status the target did not give', async () => {
    proxy.setRules([{ path: '/x', after: true, count: 1, fault: { kind: 'status', status: 502 } }]);
    expect((await post('/x')).status).toBe(502);
    expect(target.seen).toHaveLength(1);
  });

  it('never answers a timed-out request; the client gives up and the target never saw it', async () => {
    proxy.setRules([{ path: '/x', fault: { kind: 'timeout' } }]);
    await expect(post('/x', {}, {}, AbortSignal.timeout(200))).rejects.toThrow();
    expect(target.seen).toHaveLength(0);
    proxy.setRules([{ path: '/x', after: true, fault: { kind: 'timeout' } }]);
    await expect(post('/x', {}, {}, AbortSignal.timeout(200))).rejects.toThrow();
    expect(target.seen).toHaveLength(1);
  });

  it('close() drops requests held by a timeout', async () => {
    proxy.setRules([{ path: '/x', fault: { kind: 'timeout' } }]);
    const held = post('/x');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await proxy.close();
    await expect(held).rejects.toThrow();
  });

  it('delays the answer, before or after forwarding', async () => {
    proxy.setRules([{ path: '/slow', fault: { kind: 'delay', ms: 150 } }]);
    let start = Date.now();
    expect((await post('/slow')).status).toBe(200);
    expect(Date.now() - start).toBeGreaterThanOrEqual(140);
    proxy.setRules([{ path: '/slow', after: true, fault: { kind: 'delay', ms: 150 } }]);
    start = Date.now();
    expect((await post('/slow')).status).toBe(200);
    expect(Date.now() - start).toBeGreaterThanOrEqual(140);
    expect(target.seen).toHaveLength(2);
    expect(proxy.records()[1]?.durationMs).toBeGreaterThanOrEqual(140);
  });

  it('answers with a response made from the request, e.g. RunTask with a failures entry', async () => {
    proxy.setRules([
      {
        action: 'RunTask',
        fault: {
          kind: 'respond',
          respond: (request) => ({
            status: 200,
            headers: { 'content-type': 'application/x-amz-json-1.1' },
            body: { tasks: [], failures: [{ reason: 'RESOURCE:MEMORY', detail: request.action }] },
          }),
        },
      },
    ]);
    const res = await post('/', '{}', ecsHeaders('RunTask'));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      tasks: [],
      failures: [{ reason: 'RESOURCE:MEMORY', detail: 'RunTask' }],
    });
    expect(target.seen).toHaveLength(0);
  });

  it('awsJsonError answers as AWS JSON protocols do', async () => {
    proxy.setRules([{ action: 'RunTask', fault: awsJsonError('ThrottlingException', 'Rate exceeded') }]);
    const res = await post('/', '{}', ecsHeaders('RunTask'));
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('ThrottlingException');
    expect(await res.json()).toEqual({ __type: 'ThrottlingException', message: 'Rate exceeded' });
  });

  it('answers 502 when the target is down', async () => {
    await target.close();
    const res = await post('/x');
    expect(res.status).toBe(502);
    target = await startTarget();
  });

  it('keeps counting past maxRecords, and clearRecords starts afresh', async () => {
    const small = await startProxy(target.url, { maxRecords: 2 });
    for (let i = 0; i < 3; i++) await fetch(`${small.url}/x`);
    expect(small.records()).toHaveLength(2);
    expect(small.counts().requests).toBe(3);
    small.clearRecords();
    expect(small.records()).toHaveLength(0);
    expect(small.counts()).toEqual({ requests: 0, routes: {}, actions: {}, faults: {} });
    await small.close();
  });
});
