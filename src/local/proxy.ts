import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A small fault-injecting reverse proxy for loopback tests and benchmarks: put it in front of the Prefect API
 * or an AWS endpoint (moto) and point the client at `url`. It forwards every request unchanged, records it
 * (method, path, route, AWS action, status, optionally the body), counts requests by route and by AWS action,
 * and, when a rule matches, injects a fault: an error status, a reset connection, no answer at all, a slow
 * answer or a made-up response. A fault happens before forwarding (the target never sees the request) unless
 * the rule says `after`: then the target handles the request and the client loses or gets a wrong answer —
 * "the server did it but the client never heard".
 */

/** What a rule sees of a request. `body` is the request body as text. */
export interface ProxyRequest {
  method: string;
  /** The path as the client sent it, without the query string. */
  path: string;
  /** `METHOD /path` relative to the target's base path, UUIDs replaced by `{id}`. */
  route: string;
  /** The AWS action: `X-Amz-Target`'s operation (JSON protocols: ECS, Step Functions) or a form's `Action=`. */
  action?: string;
  body: string;
}

export interface ProxyResponse {
  status: number;
  headers?: Record<string, string>;
  /** An object is sent as JSON (with a JSON content type unless `headers` sets one). */
  body?: string | object;
}

export type ProxyFault =
  /** Answer with this status (e.g. 503, or 429 with a `Retry-After` header). */
  | ({ kind: 'status' } & ProxyResponse)
  /** Destroy the client's connection: the client sees ECONNRESET / "socket hang up". */
  | { kind: 'reset' }
  /** Never answer; the connection stays open until the client gives up or the proxy closes. */
  | { kind: 'timeout' }
  /** Answer correctly, `ms` late (before: the target sees it late; after: the client hears late). */
  | { kind: 'delay'; ms: number }
  /** A response made up from the request, e.g. a RunTask that answers 200 with a `failures` entry. */
  | { kind: 'respond'; respond: (request: ProxyRequest) => ProxyResponse };

export interface ProxyRule {
  /** Names the fault in counts and records; defaults to a label of the fault (`503`, `reset`, `timeout after`…). */
  name?: string;
  /** Exact method, any case. */
  method?: string;
  /** A string matches the raw path or the route's path (`/flow_runs/{id}/set_state`); a RegExp is tested on the raw path. */
  path?: string | RegExp;
  /** The AWS action (`RunTask`, `StartExecution`…). */
  action?: string | RegExp;
  /** A further condition on the request body. */
  body?: (body: string) => boolean;
  /** Chance that a matching request gets the fault (default 1). */
  probability?: number;
  /** Only the next `count` requests that match (and win the draw) get the fault; then the rule is spent. */
  count?: number;
  /** Forward first, then apply the fault to the answer. */
  after?: boolean;
  fault: ProxyFault;
}

export interface ProxyRecord {
  /** ms since the epoch when the request arrived. */
  time: number;
  method: string;
  path: string;
  route: string;
  action?: string;
  /** The status the client got; null when it got none (reset, timeout, closed). */
  status: number | null;
  /** The fault's name when one was injected. */
  fault?: string;
  durationMs?: number;
  /** Only with `recordBodies`. */
  body?: string;
}

export interface ProxyCounts {
  requests: number;
  /** Requests by `METHOD /route`. */
  routes: Record<string, number>;
  /** Requests by AWS action. */
  actions: Record<string, number>;
  /** Injected faults by name. */
  faults: Record<string, number>;
}

export interface ProxyOptions {
  /** Keep request bodies in the records. */
  recordBodies?: boolean;
  /** Most records kept (default 100 000); the counts keep counting past it. */
  maxRecords?: number;
  /** Source of the probability draws, for reproducible runs (default Math.random). */
  random?: () => number;
  /** Initial rules. */
  rules?: ProxyRule[];
  host?: string;
}

export interface FaultProxy {
  /** The proxy's address, with the target's base path (`http://127.0.0.1:PORT/api` for a Prefect API URL). */
  url: string;
  /** Replaces the rules; each rule's `count` starts afresh. */
  setRules(rules: ProxyRule[]): void;
  records(): readonly ProxyRecord[];
  counts(): ProxyCounts;
  /** Forgets records and counts. */
  clearRecords(): void;
  /** Stops listening and drops every open connection, including requests held by `timeout`. */
  close(): Promise<void>;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** `METHOD /path` with the base path removed and UUIDs replaced by `{id}`. */
export function routeOf(method: string, path: string, basePath = ''): string {
  const relative = basePath && path.startsWith(basePath) ? path.slice(basePath.length) || '/' : path;
  return `${method.toUpperCase()} ${relative.replace(UUID, '{id}')}`;
}

/**
 * The AWS operation: JSON protocols name it in `X-Amz-Target` (`AmazonEC2ContainerServiceV20141113.RunTask`);
 * query protocols (EC2, STS) send `Action=` in a form body.
 * https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html, https://smithy.io/2.0/aws/protocols/aws-query-protocol.html
 */
export function awsActionOf(headers: http.IncomingHttpHeaders, body: string): string | undefined {
  const target = headers['x-amz-target'];
  if (typeof target === 'string' && target) return target.slice(target.lastIndexOf('.') + 1);
  const type = headers['content-type'];
  if (typeof type === 'string' && type.startsWith('application/x-www-form-urlencoded')) {
    return new URLSearchParams(body).get('Action') ?? undefined;
  }
  return undefined;
}

/** An AWS JSON-protocol error the SDK parses by its `__type` (e.g. `ThrottlingException`). */
export function awsJsonError(type: string, message: string, status = 400): ProxyFault {
  return {
    kind: 'status',
    status,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type },
    body: { __type: type, message },
  };
}

function faultLabel(rule: ProxyRule): string {
  if (rule.name) return rule.name;
  const { fault } = rule;
  const base = fault.kind === 'status' ? String(fault.status) : fault.kind;
  return rule.after ? `${base} after` : base;
}

function matches(rule: ProxyRule, request: ProxyRequest): boolean {
  if (rule.method && rule.method.toUpperCase() !== request.method) return false;
  if (rule.path !== undefined) {
    if (typeof rule.path === 'string') {
      const routePath = request.route.slice(request.route.indexOf(' ') + 1);
      if (rule.path !== request.path && rule.path !== routePath) return false;
    } else if (!rule.path.test(request.path)) return false;
  }
  if (rule.action !== undefined) {
    if (request.action === undefined) return false;
    if (typeof rule.action === 'string' ? rule.action !== request.action : !rule.action.test(request.action))
      return false;
  }
  return !rule.body || rule.body(request.body);
}

function encode(response: ProxyResponse): { headers: Record<string, string>; body: string } {
  const headers = { ...response.headers };
  if (response.body === undefined) return { headers, body: '' };
  if (typeof response.body === 'string') return { headers, body: response.body };
  const hasType = Object.keys(headers).some((h) => h.toLowerCase() === 'content-type');
  if (!hasType) headers['content-type'] = 'application/json';
  return { headers, body: JSON.stringify(response.body) };
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

interface Upstream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export async function startProxy(target: string, options: ProxyOptions = {}): Promise<FaultProxy> {
  const targetUrl = new URL(target);
  if (targetUrl.protocol !== 'http:')
    throw new Error(`the proxy forwards to http targets only, not ${target}`);
  const basePath = targetUrl.pathname.replace(/\/+$/, '');
  const random = options.random ?? Math.random;
  const maxRecords = options.maxRecords ?? 100_000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  let rules: { rule: ProxyRule; left: number }[] = [];
  let records: ProxyRecord[] = [];
  let requests = 0;
  const routes = new Map<string, number>();
  const actions = new Map<string, number>();
  const faults = new Map<string, number>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const setRules = (next: ProxyRule[]) => {
    rules = next.map((rule) => ({ rule, left: rule.count ?? Number.POSITIVE_INFINITY }));
  };
  setRules(options.rules ?? []);

  const pick = (request: ProxyRequest): ProxyRule | undefined => {
    for (const entry of rules) {
      if (entry.left <= 0 || !matches(entry.rule, request)) continue;
      if (entry.rule.probability !== undefined && random() >= entry.rule.probability) continue;
      entry.left -= 1;
      return entry.rule;
    }
    return undefined;
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const forward = (req: http.IncomingMessage, body: Buffer, retry = true): Promise<Upstream> =>
    new Promise((resolve, reject) => {
      let answered = false;
      const upstream = http.request(
        {
          protocol: targetUrl.protocol,
          hostname: targetUrl.hostname,
          port: targetUrl.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: targetUrl.host },
          agent,
        },
        (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      upstream.on('error', (error) => {
        // A kept-alive connection the target closed while idle fails when reused, before any answer; send
        // the request again once, on a fresh connection, so the proxy adds no faults of its own.
        // https://nodejs.org/api/http.html#requestreusedsocket
        if (retry && !answered && upstream.reusedSocket) resolve(forward(req, body, false));
        else reject(error);
      });
      upstream.end(body);
    });

  const send = (
    res: http.ServerResponse,
    status: number,
    headers: http.OutgoingHttpHeaders,
    body: Buffer,
  ) => {
    if (res.destroyed) return;
    // The body is sent whole, so its length replaces any chunked encoding the target used.
    const { 'transfer-encoding': _te, 'content-length': _cl, connection: _c, ...rest } = headers;
    res.writeHead(status, { ...rest, 'content-length': body.length });
    res.end(body);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const text = body.toString('utf8');
    const request: ProxyRequest = {
      method,
      path,
      route: routeOf(method, path, basePath),
      body: text,
    };
    const action = awsActionOf(req.headers, text);
    if (action) request.action = action;

    requests += 1;
    increment(routes, request.route);
    if (action) increment(actions, action);
    const rule = pick(request);
    const record: ProxyRecord = { time: started, method, path, route: request.route, status: null };
    if (action) record.action = action;
    if (options.recordBodies) record.body = text;
    if (rule) {
      record.fault = faultLabel(rule);
      increment(faults, record.fault);
    }
    if (records.length < maxRecords) records.push(record);
    const answer = (status: number, headers: http.OutgoingHttpHeaders, out: Buffer) => {
      record.status = res.destroyed ? null : status;
      record.durationMs = Date.now() - started;
      send(res, status, headers, out);
    };
    /** Applies the fault; false when the request goes on (a delay). */
    const inject = async (fault: ProxyFault): Promise<boolean> => {
      switch (fault.kind) {
        case 'reset':
          req.socket.destroy();
          return true;
        case 'timeout':
          return true;
        case 'delay':
          await sleep(fault.ms);
          return false;
        case 'status':
        case 'respond': {
          const response = fault.kind === 'status' ? fault : fault.respond(request);
          const out = encode(response);
          answer(response.status, out.headers, Buffer.from(out.body));
          return true;
        }
      }
    };

    if (rule && !rule.after && (await inject(rule.fault))) return;
    let upstream: Upstream;
    try {
      upstream = await forward(req, body);
    } catch (error) {
      answer(
        502,
        { 'content-type': 'text/plain' },
        Buffer.from(`proxy: target unreachable: ${String(error)}`),
      );
      return;
    }
    if (rule?.after && (await inject(rule.fault))) return;
    answer(upstream.status, upstream.headers, upstream.body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`proxy: ${String(error)}`);
        }
      });
    });
  });
  // Clients hold keep-alive connections; the proxy must not outlive a test because of them.
  server.keepAliveTimeout = 5_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host ?? '127.0.0.1'}:${port}${basePath}`;

  return {
    url,
    setRules,
    records: () => records,
    counts: () => ({
      requests,
      routes: Object.fromEntries(routes),
      actions: Object.fromEntries(actions),
      faults: Object.fromEntries(faults),
    }),
    clearRecords: () => {
      records = [];
      requests = 0;
      routes.clear();
      actions.clear();
      faults.clear();
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await closed;
    },
  };
}
