/**
 * The Prefect REST calls the launcher makes (spec §1.2–§1.6), typed. The only module that talks to Prefect;
 * create one client per cold start with `createPrefectClient` and pass it to whoever needs it.
 */
import type { PrefectConnection } from '../config';
import { PrefectApiError } from '../errors';
import type { Json, JsonObject, TemplateReferenceReader } from '../render/types';
import {
  type HttpMethod,
  isPrefectCloudUrl,
  PrefectHttp,
  type PrefectHttpOptions,
  type ResolvedCredential,
} from './http';
import type {
  Automation,
  AutomationCreate,
  BlockDocument,
  BlockDocumentCreate,
  Deployment,
  DeploymentCreate,
  Flow,
  FlowRun,
  FlowRunFilterRequest,
  FlowRunLog,
  Log,
  OrchestrationResult,
  ReadLogsRequest,
  State,
  StateCreate,
  Variable,
  WorkerFlowRunResponse,
  WorkerHeartbeatView,
  WorkPool,
  WorkPoolCreate,
  WorkPoolUpdate,
  WorkQueueInfo,
} from './types';

export interface PrefectClientOptions extends PrefectHttpOptions {
  /** Whether the server is Prefect Cloud (heartbeats ask for a worker id); by default derived from the URL. */
  cloud?: boolean;
}

export interface ScheduledFlowRunsQuery {
  /** Empty means every queue of the pool. */
  workQueueNames: string[];
  scheduledBefore: Date;
  scheduledAfter?: Date;
  /** The server's default and maximum is `PREFECT_SERVER_API_DEFAULT_LIMIT` (200). */
  limit?: number;
}

export interface SetStateOptions {
  /** Skip the orchestration rules (the worker forces only Cancelled for a deleted deployment). */
  force?: boolean;
  /** How many WAIT answers to sit out before handing the WAIT back to the caller. Default 3. */
  maxWaits?: number;
  /** Longest total wait; a WAIT that would exceed it is handed back at once. Default 60 s. */
  maxWaitSeconds?: number;
}

const DEFAULT_LOGGER = 'prefect.flow_runs.worker';
/** The server's default and largest page for filter routes (PREFECT_API_DEFAULT_LIMIT). */
const PAGE = 200;

export class PrefectClient implements TemplateReferenceReader {
  /** Cloud returns the worker id from a heartbeat; self-hosted servers answer 204. */
  readonly isCloud: boolean;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly http: PrefectHttp,
    options: { cloud?: boolean; sleep?: (ms: number) => Promise<void> } = {},
  ) {
    this.isCloud = options.cloud ?? isPrefectCloudUrl(http.apiUrl);
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  // --- work pools and workers (§1.2) ---

  /** `GET /work_pools/{name}`; null when the pool does not exist. */
  readWorkPool(name: string): Promise<WorkPool | null> {
    return this.orNull(this.call<WorkPool>('GET', `/work_pools/${segment(name)}`));
  }

  /** `POST /work_pools/`. When another caller created it first (409), the existing pool is returned. */
  async createWorkPool(pool: WorkPoolCreate): Promise<WorkPool> {
    try {
      return await this.call<WorkPool>('POST', '/work_pools/', pool);
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
      const existing = await this.readWorkPool(pool.name);
      if (!existing) throw err;
      return existing;
    }
  }

  /** `PATCH /work_pools/{name}` (204); only the given fields change. */
  async updateWorkPool(name: string, patch: WorkPoolUpdate): Promise<void> {
    await this.call('PATCH', `/work_pools/${segment(name)}`, patch);
  }

  /**
   * `POST /work_pools/{pool}/workers/heartbeat`: marks the worker ONLINE and the pool READY. On Prefect Cloud
   * it asks for the worker's id (`return_id`) and returns it; a server that does not know the field answers
   * 422, and the heartbeat is repeated without it, as the worker does. Self-hosted servers return null.
   */
  async heartbeatWorker(
    pool: string,
    worker: { name: string; heartbeatIntervalSeconds: number },
  ): Promise<string | null> {
    const route = `/work_pools/${segment(pool)}/workers/heartbeat`;
    const body = { name: worker.name, heartbeat_interval_seconds: worker.heartbeatIntervalSeconds };
    if (!this.isCloud) {
      await this.call('POST', route, body);
      return null;
    }
    try {
      const { status, data } = await this.http.request('POST', route, { body: { ...body, return_id: true } });
      return status === 200 ? workerIdFrom(data) : null;
    } catch (err) {
      if (!isStatus(err, 422)) throw err;
      await this.call('POST', route, body);
      return null;
    }
  }

  /** `POST /work_pools/{pool}/workers/filter`: the pool's workers with their last heartbeats. */
  filterWorkers(pool: string): Promise<WorkerHeartbeatView[]> {
    return this.call<WorkerHeartbeatView[]>('POST', `/work_pools/${segment(pool)}/workers/filter`, {});
  }

  /** `POST /work_pools/{pool}/queues/filter`: the pool's work queues. */
  filterWorkQueues(pool: string): Promise<WorkQueueInfo[]> {
    return this.call<WorkQueueInfo[]>('POST', `/work_pools/${segment(pool)}/queues/filter`, {});
  }

  // --- polling (§1.3) ---

  /**
   * `POST /work_pools/{pool}/get_scheduled_flow_runs`. Does not change any state; a 404 (no such pool or
   * queue) counts as no runs, as for the worker. Older servers send `flow_run.state` as null: use
   * `state_type`/`state_name`.
   */
  async getScheduledFlowRuns(pool: string, query: ScheduledFlowRunsQuery): Promise<WorkerFlowRunResponse[]> {
    const body = {
      work_queue_names: query.workQueueNames,
      scheduled_before: query.scheduledBefore.toISOString(),
      ...(query.scheduledAfter ? { scheduled_after: query.scheduledAfter.toISOString() } : {}),
      ...(query.limit !== undefined ? { limit: query.limit } : {}),
    };
    const runs = await this.orNull(
      this.call<WorkerFlowRunResponse[]>(
        'POST',
        `/work_pools/${segment(pool)}/get_scheduled_flow_runs`,
        body,
      ),
    );
    return runs ?? [];
  }

  // --- flow runs (§1.4–§1.6) ---

  /**
   * `POST /flow_runs/{id}/set_state`. Returns the orchestration result as is (ACCEPT, REJECT with the imposed
   * state, ABORT), except that a WAIT is sat out and the same state proposed again, a bounded number of times.
   * Pass the same `state` object when repeating a proposal so its `transition_id` stays the same.
   */
  async setFlowRunState(
    flowRunId: string,
    state: StateCreate,
    options: SetStateOptions = {},
  ): Promise<OrchestrationResult> {
    const maxWaits = options.maxWaits ?? 3;
    let waitedSeconds = 0;
    for (let waits = 0; ; waits++) {
      const result = await this.call<OrchestrationResult>(
        'POST',
        `/flow_runs/${segment(flowRunId)}/set_state`,
        {
          state,
          force: options.force ?? false,
        },
      );
      if (isOwnEarlierTransition(result, state)) {
        // Accepted by an earlier attempt whose answer was lost (a 502/503 or a dropped connection after the
        // server had committed it, then retried): the server now refuses the repeat as a duplicate
        // (`PreventDuplicateTransitions`) and shows this very state as current. It is ours.
        return { ...result, status: 'ACCEPT' };
      }
      if (result.details.type !== 'wait_details') return result;
      const delay = result.details.delay_seconds;
      if (waits >= maxWaits || waitedSeconds + delay > (options.maxWaitSeconds ?? 60)) return result;
      await this.sleep(delay * 1000);
      waitedSeconds += delay;
    }
  }

  /** `GET /flow_runs/{id}`; a missing run is a PrefectApiError with status 404. */
  readFlowRun(flowRunId: string): Promise<FlowRun> {
    return this.call<FlowRun>('GET', `/flow_runs/${segment(flowRunId)}`);
  }

  /** `PATCH /flow_runs/{id}` (204), e.g. `{infrastructure_pid: "<cluster>::<taskArn>"}` so the run is cancellable. */
  async updateFlowRun(flowRunId: string, patch: { infrastructure_pid?: string | null }): Promise<void> {
    await this.call('PATCH', `/flow_runs/${segment(flowRunId)}`, patch);
  }

  /**
   * `PATCH /flow_runs/{id}/labels` (204): merges the given labels into the run's. Servers before 3.1 have no
   * such route and answer FastAPI's own 404 `Not Found` (a missing run is `Flow run not found`): then it
   * returns false, and the run goes unlabelled (docs/compatibility.md).
   */
  async updateFlowRunLabels(flowRunId: string, labels: { [key: string]: Json }): Promise<boolean> {
    try {
      await this.call('PATCH', `/flow_runs/${segment(flowRunId)}/labels`, labels);
      return true;
    } catch (err) {
      if (isStatus(err, 404) && (err as PrefectApiError).detail === 'Not Found') return false;
      throw err;
    }
  }

  /** `GET /flow_run_states/?flow_run_id=`: the run's states, oldest first. */
  readFlowRunStates(flowRunId: string): Promise<State[]> {
    return this.call<State[]>('GET', '/flow_run_states/', undefined, { flow_run_id: flowRunId });
  }

  /** `POST /flow_runs/filter`. */
  filterFlowRuns(request: FlowRunFilterRequest): Promise<FlowRun[]> {
    return this.call<FlowRun[]>('POST', '/flow_runs/filter', request);
  }

  // --- deployments and flows ---

  /** `GET /deployments/{id}`; null when the deployment was deleted (the worker then cancels the run). */
  readDeployment(deploymentId: string): Promise<Deployment | null> {
    return this.orNull(this.call<Deployment>('GET', `/deployments/${segment(deploymentId)}`));
  }

  /** `GET /flows/{id}`. */
  readFlow(flowId: string): Promise<Flow> {
    return this.call<Flow>('GET', `/flows/${segment(flowId)}`);
  }

  /**
   * `POST /deployments/filter` by id, 200 a page (the server's default limit): many deployments in one call
   * where a poll would otherwise read each. A deleted deployment is simply absent.
   */
  async filterDeployments(ids: readonly string[]): Promise<Deployment[]> {
    return this.byIds(ids, (any_) =>
      this.call<Deployment[]>('POST', '/deployments/filter', { deployments: { id: { any_ } }, limit: PAGE }),
    );
  }

  /** `POST /flows/filter` by id, 200 a page. */
  async filterFlows(ids: readonly string[]): Promise<Flow[]> {
    return this.byIds(ids, (any_) =>
      this.call<Flow[]>('POST', '/flows/filter', { flows: { id: { any_ } }, limit: PAGE }),
    );
  }

  private async byIds<T>(ids: readonly string[], read: (page: string[]) => Promise<T[]>): Promise<T[]> {
    const unique = [...new Set(ids)];
    const pages: string[][] = [];
    for (let i = 0; i < unique.length; i += PAGE) pages.push(unique.slice(i, i + PAGE));
    return (await Promise.all(pages.map(read))).flat();
  }

  /** `POST /flows/`: the flow of that name, created when missing. */
  createFlow(name: string): Promise<Flow> {
    return this.call<Flow>('POST', '/flows/', { name });
  }

  /** `POST /deployments/`: creates the deployment, or updates the flow's deployment of that name. */
  createDeployment(deployment: DeploymentCreate): Promise<Deployment> {
    return this.call<Deployment>('POST', '/deployments/', deployment);
  }

  /** `POST /deployments/{id}/create_flow_run` with an empty body: a run Scheduled for now, as the UI's Quick Run. */
  createFlowRunFromDeployment(deploymentId: string): Promise<FlowRun> {
    return this.call<FlowRun>('POST', `/deployments/${segment(deploymentId)}/create_flow_run`, {});
  }

  // --- logs ---

  /** `POST /logs/` (201): attaches log lines to flow runs, shown in the run's log view. */
  async createFlowRunLogs(logs: FlowRunLog[]): Promise<void> {
    if (logs.length === 0) return;
    const now = new Date().toISOString();
    const body = logs.map((log) => ({
      name: log.name ?? DEFAULT_LOGGER,
      level: log.level,
      message: log.message,
      timestamp: log.timestamp?.toISOString() ?? now,
      flow_run_id: log.flowRunId,
    }));
    await this.call('POST', '/logs/', body);
  }

  /** `POST /logs/filter`. */
  readLogs(request: ReadLogsRequest = {}): Promise<Log[]> {
    return this.call<Log[]>('POST', '/logs/filter', request);
  }

  // --- template references (§1.4 c), the TemplateReferenceReader of the renderer ---

  /** `GET /block_documents/{id}?include_secrets=true` → `data`; a missing block is a PrefectApiError (404). */
  async readBlockDocumentData(id: string): Promise<JsonObject> {
    const doc = await this.call<BlockDocument>('GET', `/block_documents/${segment(id)}`, undefined, {
      include_secrets: 'true',
    });
    return doc.data;
  }

  /** `GET /block_types/slug/{slug}/block_documents/name/{name}?include_secrets=true` → `data`, or null on 404. */
  async readBlockDocumentDataByName(blockTypeSlug: string, name: string): Promise<JsonObject | null> {
    const route = `/block_types/slug/${segment(blockTypeSlug)}/block_documents/name/${segment(name)}`;
    const doc = await this.orNull(
      this.call<BlockDocument>('GET', route, undefined, { include_secrets: 'true' }),
    );
    return doc ? doc.data : null;
  }

  // --- the run-now automation (src/launch/run-now-automation.ts) ---

  /** `GET /block_types/slug/{slug}` → its id; null when the server has no such block type. */
  async readBlockTypeId(slug: string): Promise<string | null> {
    const type = await this.orNull(this.call<{ id: string }>('GET', `/block_types/slug/${segment(slug)}`));
    return type ? type.id : null;
  }

  /** `POST /block_schemas/filter` for one block type → the id of its newest schema, or null. */
  async readBlockSchemaId(blockTypeId: string): Promise<string | null> {
    const schemas = await this.call<{ id: string }[]>('POST', '/block_schemas/filter', {
      block_schemas: { block_type_id: { any_: [blockTypeId] } },
      limit: 1,
    });
    return schemas[0]?.id ?? null;
  }

  /** `GET /block_types/slug/{slug}/block_documents/name/{name}` → its id, or null on 404. */
  async readBlockDocumentId(blockTypeSlug: string, name: string): Promise<string | null> {
    const route = `/block_types/slug/${segment(blockTypeSlug)}/block_documents/name/${segment(name)}`;
    const doc = await this.orNull(this.call<BlockDocument>('GET', route));
    return doc ? doc.id : null;
  }

  /** `POST /block_documents/` → its id. */
  async createBlockDocument(doc: BlockDocumentCreate): Promise<string> {
    return (await this.call<BlockDocument>('POST', '/block_documents/', doc)).id;
  }

  /** `PATCH /block_documents/{id}`, replacing its data. */
  async replaceBlockDocumentData(id: string, data: JsonObject): Promise<void> {
    await this.call('PATCH', `/block_documents/${segment(id)}`, { data, merge_existing_data: false });
  }

  /** `DELETE /block_documents/{id}`; false when it was already gone. */
  deleteBlockDocument(id: string): Promise<boolean> {
    return this.deleted(`/block_documents/${segment(id)}`);
  }

  /** `POST /automations/filter` by exact name. */
  readAutomationsByName(name: string): Promise<Automation[]> {
    return this.call<Automation[]>('POST', '/automations/filter', {
      automations: { name: { any_: [name] } },
    });
  }

  /** `POST /automations/` → its id. */
  async createAutomation(automation: AutomationCreate): Promise<string> {
    return (await this.call<Automation>('POST', '/automations/', automation)).id;
  }

  /** `PUT /automations/{id}`: the whole automation is replaced. */
  async replaceAutomation(id: string, automation: AutomationCreate): Promise<void> {
    await this.call('PUT', `/automations/${segment(id)}`, automation);
  }

  /** `DELETE /automations/{id}`; false when it was already gone. */
  deleteAutomation(id: string): Promise<boolean> {
    return this.deleted(`/automations/${segment(id)}`);
  }

  /** `GET /variables/name/{name}` → `value`, or undefined on 404. */
  async readVariableValue(name: string): Promise<Json | undefined> {
    const variable = await this.orNull(this.call<Variable>('GET', `/variables/name/${segment(name)}`));
    return variable ? variable.value : undefined;
  }

  private async call<T = unknown>(
    method: HttpMethod,
    route: string,
    body?: unknown,
    query?: Record<string, string>,
  ): Promise<T> {
    const { data } = await this.http.request<T>(method, route, { body, query });
    return data;
  }

  /** `DELETE route`: true when deleted, false when the server answered 404 (already gone). */
  private async deleted(route: string): Promise<boolean> {
    try {
      await this.call('DELETE', route);
      return true;
    } catch (err) {
      if (isStatus(err, 404)) return false;
      throw err;
    }
  }

  /** The result, or null when the server answered 404. */
  private async orNull<T>(pending: Promise<T>): Promise<T | null> {
    try {
      return await pending;
    } catch (err) {
      if (isStatus(err, 404)) return null;
      throw err;
    }
  }
}

/** The client for one Prefect API; create it once per cold start. */
export function createPrefectClient(
  connection: Pick<PrefectConnection, 'apiUrl' | 'timeoutMs' | 'maxRetries'>,
  credential: ResolvedCredential,
  options: PrefectClientOptions = {},
): PrefectClient {
  // Cloud has no CSRF tokens, so saying the server is (not) Cloud settles CSRF too unless told otherwise.
  const csrf = options.csrf ?? (options.cloud === undefined ? undefined : !options.cloud);
  const http = new PrefectHttp(connection, credential, { ...options, csrf });
  return new PrefectClient(http, { cloud: options.cloud, sleep: options.sleep });
}

/** A REJECT whose current state is the proposal itself: same type and the same `transition_id`. */
function isOwnEarlierTransition(result: OrchestrationResult, proposed: StateCreate): boolean {
  const current = result.state;
  const id = proposed.state_details?.transition_id;
  return (
    result.status === 'REJECT' &&
    Boolean(id) &&
    current?.type === proposed.type &&
    current.state_details?.transition_id === id
  );
}

function isStatus(err: unknown, status: number): err is PrefectApiError {
  return err instanceof PrefectApiError && err.status === status;
}

/** Names and ids go into the path as one segment each (a pool name may contain spaces). */
function segment(value: string): string {
  return encodeURIComponent(value);
}

/** Cloud answers the heartbeat with the worker's UUID, as text or as a JSON string. */
function workerIdFrom(data: unknown): string | null {
  if (typeof data !== 'string') return null;
  const id = data.trim().replace(/^"|"$/g, '');
  return id === '' ? null : id;
}
