/**
 * HTTP transport to the Prefect REST API over Node's global `fetch`: authentication, API headers, CSRF,
 * retries with backoff, timeouts and readable errors. It mirrors the Python client
 * (`prefect/client/base.py`, `PrefectHttpxAsyncClient`) where that matters on the wire.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { version as launcherVersion } from '../../package.json';
import type { CredentialSource, PrefectConnection } from '../config';
import { PrefectApiError, PrefectUnavailableError } from '../errors';

/** A credential whose value is known (Secrets Manager references are resolved before this module). */
export type ResolvedCredential = Extract<CredentialSource, { kind: 'none' | 'apiKey' | 'authString' }>;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface PrefectHttpOptions {
  /** Defaults to the global `fetch`; tests pass their own. */
  fetch?: typeof fetch;
  /** Defaults to a real timer; tests pass one that records the delays. */
  sleep?: (ms: number) => Promise<void>;
  /** Base of the exponential backoff: the n-th retry waits `backoffBaseMs * 2**n` ± 20 %. Default 1000. */
  backoffBaseMs?: number;
  /** Upper bound on any single wait, including one a `Retry-After` asks for. Default 60 000. */
  maxDelayMs?: number;
  /** Source of jitter in [0, 1). */
  random?: () => number;
  /** CSRF token support; by default on unless the URL is Prefect Cloud's, which has none. */
  csrf?: boolean;
}

/** What a call returns: the status and the body, JSON-decoded when it is JSON, else its text, else undefined. */
export interface PrefectResponse<T> {
  status: number;
  data: T;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string>;
}

// The API version the launcher speaks; the server answers 400 to a malformed one.
// https://github.com/PrefectHQ/prefect/blob/main/src/prefect/server/api/dependencies.py
export const PREFECT_API_VERSION = '0.8.4';

/**
 * The server reads a client version from a User-Agent matching `^prefect/(\d+\.\d+\.\d+…) \(API \S+\)$` and
 * skips deployment-concurrency slot acquisition for clients 3.0.0–3.0.3 (they managed it themselves).
 * Ours does not match that pattern, so the server treats the launcher as an unknown client and enforces the
 * limits itself. See the spec, §1.1.
 */
export const USER_AGENT = `prefect-ecs-launcher/${launcherVersion} (API ${PREFECT_API_VERSION})`;

/** Statuses the Python client retries (`PrefectHttpxAsyncClient.send`). */
const RETRYABLE_STATUSES = new Set([408, 429, 502, 503]);
const MUTATING_METHODS = new Set<HttpMethod>(['POST', 'PUT', 'PATCH', 'DELETE']);
const JITTER = 0.2;
const DETAIL_LIMIT = 500;

/** True for Prefect Cloud workspace URLs (the config checks their shape). */
export function isPrefectCloudUrl(apiUrl: string): boolean {
  return new URL(apiUrl).hostname === 'api.prefect.cloud';
}

/** Cloud API keys go as a bearer token; a self-hosted `user:pass` auth string as HTTP Basic. */
export function authorizationHeader(credential: ResolvedCredential): string | undefined {
  if (credential.kind === 'apiKey') return `Bearer ${credential.value}`;
  if (credential.kind === 'authString') return `Basic ${Buffer.from(credential.value).toString('base64')}`;
  return undefined;
}

/**
 * `Retry-After` as milliseconds to wait: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). Undefined when
 * absent or unreadable, so the caller falls back to its backoff.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The server's explanation of an error: FastAPI's `detail` (a string, or a list of validation errors), else
 * the raw text, cut to a readable length.
 */
export function describeErrorBody(text: string): string {
  let detail: unknown = text;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && 'detail' in parsed) detail = parsed.detail;
  } catch {
    // Not JSON: use the text as it is.
  }
  const described = Array.isArray(detail) ? detail.map(describeValidationError).join('; ') : String(detail);
  const trimmed = described.trim();
  return trimmed.length > DETAIL_LIMIT ? `${trimmed.slice(0, DETAIL_LIMIT)}…` : trimmed;
}

function describeValidationError(item: unknown): string {
  if (!item || typeof item !== 'object') return String(item);
  const { loc, msg } = item as { loc?: unknown; msg?: unknown };
  const where = Array.isArray(loc) ? loc.join('.') : undefined;
  return where ? `${where}: ${String(msg)}` : String(msg ?? JSON.stringify(item));
}

interface RawResponse {
  status: number;
  text: string;
  retryAfter: string | null;
}

interface CsrfState {
  enabled: boolean;
  clientId: string;
  token?: string;
  expiresAt?: number;
  /** The token request in flight, shared so concurrent writes do not replace each other's token. */
  pending?: Promise<void>;
}

export class PrefectHttp {
  readonly apiUrl: string;
  private readonly headers: Record<string, string>;
  private readonly secrets: string[];
  private readonly csrf: CsrfState;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly backoffBaseMs: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly connection: Pick<PrefectConnection, 'apiUrl' | 'timeoutMs' | 'maxRetries'>,
    credential: ResolvedCredential,
    options: PrefectHttpOptions = {},
  ) {
    this.apiUrl = connection.apiUrl.replace(/\/+$/, '');
    const authorization = authorizationHeader(credential);
    this.headers = {
      'X-PREFECT-API-VERSION': PREFECT_API_VERSION,
      'User-Agent': USER_AGENT,
      Accept: 'application/json',
      ...(authorization ? { Authorization: authorization } : {}),
    };
    this.secrets = credential.kind === 'none' ? [] : secretForms(credential.value);
    // The Python client enables CSRF support for every non-Cloud server and turns it off when the server
    // says it is disabled (`_add_csrf_headers`).
    this.csrf = { enabled: options.csrf ?? !isPrefectCloudUrl(this.apiUrl), clientId: randomUUID() };
    this.fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
    this.backoffBaseMs = options.backoffBaseMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
  }

  /**
   * One API call. Throws PrefectApiError for an error status (after retrying the retryable ones) and
   * PrefectUnavailableError when the server cannot be reached.
   */
  async request<T = unknown>(
    method: HttpMethod,
    route: string,
    options: RequestOptions = {},
  ): Promise<PrefectResponse<T>> {
    const url = this.url(route, options.query);
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    let csrfRefreshed = false;
    for (;;) {
      const csrfHeaders = MUTATING_METHODS.has(method) ? await this.csrfHeaders() : {};
      const response = await this.sendWithRetries(method, url, body, csrfHeaders);
      if (!csrfRefreshed && isInvalidCsrf(response) && csrfHeaders['Prefect-Csrf-Token']) {
        // The server forgot or replaced our token (it keeps one per client id); fetch a new one once.
        this.invalidateCsrfToken(csrfHeaders['Prefect-Csrf-Token']);
        csrfRefreshed = true;
        continue;
      }
      if (response.status >= 400) throw this.apiError(method, route, response);
      return { status: response.status, data: decodeBody(response.text) as T };
    }
  }

  private url(route: string, query?: Record<string, string>): string {
    const search = query && Object.keys(query).length > 0 ? `?${new URLSearchParams(query)}` : '';
    return `${this.apiUrl}${route}${search}`;
  }

  /** Sends, retrying retryable statuses and connection failures; returns the last response. */
  private async sendWithRetries(
    method: HttpMethod,
    url: string,
    body: string | undefined,
    extraHeaders: Record<string, string>,
  ): Promise<RawResponse> {
    for (let attempt = 1; ; attempt++) {
      const retriesLeft = attempt <= this.connection.maxRetries;
      let response: RawResponse;
      try {
        response = await this.sendOnce(method, url, body, extraHeaders);
      } catch (err) {
        if (!retriesLeft) throw this.unavailableError(method, url, attempt, err);
        await this.sleep(this.backoffMs(attempt));
        continue;
      }
      if (!RETRYABLE_STATUSES.has(response.status) || !retriesLeft) return response;
      await this.sleep(this.retryDelayMs(attempt, response.retryAfter));
    }
  }

  /** One attempt, bounded by the per-request timeout (which also covers reading the body). */
  private async sendOnce(
    method: HttpMethod,
    url: string,
    body: string | undefined,
    extraHeaders: Record<string, string>,
  ): Promise<RawResponse> {
    const res = await this.fetch(url, {
      method,
      headers: {
        ...this.headers,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...extraHeaders,
      },
      body,
      signal: AbortSignal.timeout(this.connection.timeoutMs),
    });
    const text = await res.text();
    return { status: res.status, text, retryAfter: res.headers.get('retry-after') };
  }

  /**
   * A server-requested wait is a minimum, so its jitter only adds (up to 20 %); otherwise exponential
   * backoff with symmetric 20 % jitter, as `PREFECT_CLIENT_RETRY_JITTER_FACTOR` does.
   */
  private retryDelayMs(attempt: number, retryAfter: string | null): number {
    const requested = parseRetryAfter(retryAfter);
    if (requested === undefined) return this.backoffMs(attempt);
    return Math.round(Math.min(this.maxDelayMs, requested * (1 + JITTER * this.random())));
  }

  private backoffMs(attempt: number): number {
    const base = this.backoffBaseMs * 2 ** attempt;
    return Math.round(Math.min(this.maxDelayMs, base * (1 + JITTER * (2 * this.random() - 1))));
  }

  /** CSRF headers for a write, fetching a token first when needed; none once CSRF is known to be off. */
  private async csrfHeaders(): Promise<Record<string, string>> {
    if (!this.csrf.enabled) return {};
    if (!this.csrf.token || (this.csrf.expiresAt !== undefined && Date.now() >= this.csrf.expiresAt)) {
      this.csrf.pending ??= this.fetchCsrfToken().finally(() => {
        this.csrf.pending = undefined;
      });
      await this.csrf.pending;
    }
    if (!this.csrf.enabled || !this.csrf.token) return {};
    return { 'Prefect-Csrf-Token': this.csrf.token, 'Prefect-Csrf-Client': this.csrf.clientId };
  }

  /**
   * `GET /csrf-token?client=<id>` → `{token, expiration}`. A 404 (older server) or a 422 "CSRF protection is
   * disabled." turns CSRF off for the life of this client, as the Python client does.
   */
  private async fetchCsrfToken(): Promise<void> {
    try {
      const { data } = await this.request<{ token: string; expiration: string }>('GET', '/csrf-token', {
        query: { client: this.csrf.clientId },
      });
      this.csrf.token = data.token;
      const expiresAt = Date.parse(data.expiration);
      this.csrf.expiresAt = Number.isNaN(expiresAt) ? undefined : expiresAt;
    } catch (err) {
      if (err instanceof PrefectApiError && isCsrfDisabled(err)) {
        this.csrf.enabled = false;
        return;
      }
      throw err;
    }
  }

  /** Drops the token a request was rejected with, unless a concurrent request already replaced it. */
  private invalidateCsrfToken(used: string): void {
    if (this.csrf.token === used) this.csrf.token = undefined;
  }

  private apiError(method: HttpMethod, route: string, response: RawResponse): PrefectApiError {
    const path = route.split('?')[0] ?? route;
    const detail = this.redact(describeErrorBody(response.text));
    const statusText = STATUS_CODES[response.status] ?? 'Error';
    const hint =
      response.status === 401 || response.status === 403
        ? ' (check the credential: PREFECT_API_KEY or PREFECT_API_KEY_SECRET_ARN for Prefect Cloud, PREFECT_API_AUTH_STRING or PREFECT_API_AUTH_STRING_SECRET_ARN for a self-hosted server)'
        : '';
    const message = `Prefect API ${method} ${path} failed: ${response.status} ${statusText}${detail ? `: ${detail}` : ''}${hint}`;
    return new PrefectApiError(message, path, response.status, detail);
  }

  private unavailableError(method: HttpMethod, url: string, attempts: number, err: unknown) {
    const reason = this.redact(describeFetchFailure(err, this.connection.timeoutMs));
    return new PrefectUnavailableError(
      `Prefect API ${method} ${url} is unreachable after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${reason}`,
    );
  }

  /** Removes the credential (raw or base64) from text that may end up in an error or a log. */
  private redact(text: string): string {
    return this.secrets.reduce((out, secret) => out.split(secret).join('***'), text);
  }
}

function secretForms(value: string): string[] {
  return [value, Buffer.from(value).toString('base64')].filter((s) => s.length > 0);
}

function isInvalidCsrf(response: RawResponse): boolean {
  return response.status === 403 && response.text.includes('Invalid CSRF token');
}

function isCsrfDisabled(err: PrefectApiError): boolean {
  return err.status === 404 || (err.status === 422 && err.detail.includes('CSRF protection is disabled'));
}

function decodeBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Why fetch failed: a timeout, or undici's underlying cause (ECONNREFUSED, ENOTFOUND, …). Read by shape, not
 * `instanceof`: undici's errors may come from another realm (e.g. under jest's VM contexts).
 */
function describeFetchFailure(err: unknown, timeoutMs: number): string {
  const { name, message, cause } = (err ?? {}) as { name?: string; message?: string; cause?: unknown };
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const text = message ?? String(err);
  const detail = (cause ?? {}) as { code?: string; message?: string };
  const reason = detail.code ?? detail.message;
  return reason ? `${text} (${reason})` : text;
}
