/**
 * Prefect REST shapes the launcher sends and reads, in the API's own snake_case. Field names follow the
 * server's schemas (`prefect/server/schemas/{core,actions,responses,states,filters}.py`, prefect 3.9.1);
 * only the fields the launcher may use are listed, the server returns more. Timestamps are ISO 8601 strings.
 */
import type { DeploymentInfo, FlowInfo, FlowRunInfo, Json, JsonObject, WorkPoolInfo } from '../render/types';

export type StateType =
  | 'SCHEDULED'
  | 'PENDING'
  | 'RUNNING'
  | 'COMPLETED'
  | 'FAILED'
  | 'CANCELLED'
  | 'CRASHED'
  | 'PAUSED'
  | 'CANCELLING';

/** `StateDetails`; every field is optional on the wire. */
export interface StateDetails {
  flow_run_id?: string | null;
  task_run_id?: string | null;
  scheduled_time?: string | null;
  /** Makes a retried proposal idempotent: the server REJECTs a repeat with the same id (`PreventDuplicateTransitions`). */
  transition_id?: string | null;
  /** Set when the server acquired a deployment concurrency slot for the run (`SecureFlowConcurrencySlots`). */
  deployment_concurrency_lease_id?: string | null;
  pause_timeout?: string | null;
  pause_reschedule?: boolean;
  pause_key?: string | null;
  retriable?: boolean | null;
  traceparent?: string | null;
  [key: string]: unknown;
}

/** A state as the server returns it. */
export interface State {
  id: string;
  type: StateType;
  name: string | null;
  timestamp: string;
  message: string | null;
  data?: Json;
  state_details: StateDetails;
}

/**
 * `StateCreate`: what `set_state` takes. Only `type` is required: the server defaults `name` to the
 * title-cased type. Build proposals with the helpers in `./states`, which fill in the run id and a
 * `transition_id`.
 */
export interface StateCreate {
  type: StateType;
  name?: string | null;
  message?: string | null;
  state_details?: StateDetails;
  data?: Json;
}

export type SetStateStatus = 'ACCEPT' | 'REJECT' | 'ABORT' | 'WAIT';

/** `reason` is declared on every member so callers can log `details.reason` without narrowing. */
export type OrchestrationDetails =
  | { type: 'accept_details'; reason?: undefined }
  | { type: 'reject_details'; reason: string | null }
  | { type: 'abort_details'; reason: string | null }
  | { type: 'wait_details'; delay_seconds: number; reason: string | null };

/**
 * `OrchestrationResult`. On REJECT `state` is what the server imposed instead (e.g. `AwaitingConcurrencySlot`);
 * on ABORT and WAIT it is the current state, or null.
 */
export interface OrchestrationResult {
  status: SetStateStatus;
  state: State | null;
  details: OrchestrationDetails;
}

export type WorkPoolStatus = 'READY' | 'NOT_READY' | 'PAUSED';

/** `WorkPoolResponse`. */
export interface WorkPool extends WorkPoolInfo {
  description: string | null;
  is_paused: boolean;
  concurrency_limit: number | null;
  status: WorkPoolStatus | null;
  default_queue_id: string | null;
  /** Pending + running runs; only when `concurrency_limit` is set. */
  active_slots?: number | null;
  created: string | null;
  updated: string | null;
}

/** `WorkPoolCreate`; the server rejects unknown fields. */
export interface WorkPoolCreate {
  name: string;
  type: string;
  base_job_template?: JsonObject;
  description?: string | null;
}

/** `DeploymentCreate`, limited to what the local stack sets; the server rejects unknown fields. */
export interface DeploymentCreate {
  name: string;
  flow_id: string;
  work_pool_name: string;
  /** Where `prefect flow-run execute` copies the flow code from when there are no pull steps. */
  path?: string | null;
  entrypoint: string;
  pull_steps?: JsonObject[] | null;
  job_variables?: JsonObject;
  enforce_parameter_schema?: boolean;
}

/** `WorkPoolUpdate`; only the fields given are changed. */
export interface WorkPoolUpdate {
  description?: string | null;
  is_paused?: boolean;
  base_job_template?: JsonObject;
  concurrency_limit?: number | null;
}

export interface FlowRunPolicy {
  retries?: number | null;
  retry_delay?: number | null;
  pause_keys?: string[] | null;
  resuming?: boolean | null;
  retry_type?: string | null;
  [key: string]: Json | undefined;
}

/**
 * A flow run (`FlowRunResponse`, or `FlowRun` inside a `get_scheduled_flow_runs` answer, which lacks
 * `work_pool_id`/`work_pool_name` and may have `state: null` (prefect 3.8.3 does not load it there, 3.9.1
 * does): read `state_type`/`state_name` instead).
 */
export interface FlowRun extends FlowRunInfo {
  created: string | null;
  updated: string | null;
  state_id: string | null;
  state_type: StateType | null;
  state_name: string | null;
  state: State | null;
  deployment_version?: string | null;
  work_queue_id?: string | null;
  work_pool_id?: string | null;
  flow_version: string | null;
  infrastructure_pid: string | null;
  run_count: number;
  expected_start_time: string | null;
  next_scheduled_start_time: string | null;
  start_time: string | null;
  end_time: string | null;
  idempotency_key: string | null;
  parent_task_run_id: string | null;
  empirical_policy: FlowRunPolicy;
  parameters: JsonObject;
  tags: string[];
}

/** One entry of `POST /work_pools/{name}/get_scheduled_flow_runs`. */
export interface WorkerFlowRunResponse {
  work_pool_id: string;
  work_queue_id: string;
  flow_run: FlowRun;
}

export type ConcurrencyLimitStrategy = 'ENQUEUE' | 'CANCEL_NEW';

/** `DeploymentResponse`. */
export interface Deployment extends DeploymentInfo {
  created: string | null;
  version: string | null;
  description: string | null;
  paused: boolean;
  concurrency_limit: number | null;
  concurrency_options: {
    collision_strategy: ConcurrencyLimitStrategy;
    grace_period_seconds?: number | null;
  } | null;
  parameters: JsonObject;
  tags: string[];
  labels: { [key: string]: Json };
  work_queue_name: string | null;
  work_queue_id: string | null;
  entrypoint: string | null;
  path: string | null;
  status: 'READY' | 'NOT_READY' | null;
}

/** `Flow`. */
export interface Flow extends FlowInfo {
  created: string | null;
  tags: string[];
  labels: { [key: string]: Json } | null;
}

/** `BlockDocument`, as read with `include_secrets=true`. */
export interface BlockDocument {
  id: string;
  name: string | null;
  data: JsonObject;
  block_schema_id: string;
  block_type_id: string;
  block_type_name: string | null;
  is_anonymous: boolean;
}

/** `BlockDocumentCreate`: a named block of the given type and schema. */
export interface BlockDocumentCreate {
  name: string;
  block_type_id: string;
  block_schema_id: string;
  data: JsonObject;
}

/**
 * `AutomationCore`, as far as the launcher writes it: one event trigger and its actions.
 * https://docs.prefect.io/v3/automate/events/automations-triggers
 */
export interface AutomationCreate {
  name: string;
  description: string;
  enabled: boolean;
  trigger: JsonObject;
  actions: JsonObject[];
}

export interface Automation extends AutomationCreate {
  id: string;
}

/** `Variable`. */
export interface Variable {
  id: string;
  name: string;
  value: Json;
  tags: string[];
}

/** Python logging levels, which Prefect stores as integers. */
export const LogLevel = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 } as const;

/** One log line to attach to a flow run. */
export interface FlowRunLog {
  flowRunId: string;
  /** A Python logging level, e.g. `LogLevel.ERROR`. */
  level: number;
  message: string;
  /** Default: now. */
  timestamp?: Date;
  /** The logger name shown in the UI; default `prefect.flow_runs.worker`, as the worker logs. */
  name?: string;
}

/** `Log`. */
export interface Log {
  id: string;
  name: string;
  level: number;
  message: string;
  timestamp: string;
  flow_run_id: string | null;
  task_run_id: string | null;
}

/** `LogFilter`. */
export interface LogFilter {
  operator?: 'and_' | 'or_';
  flow_run_id?: { any_?: string[] };
  level?: { ge_?: number; le_?: number };
  timestamp?: { before_?: string; after_?: string };
}

/** Body of `POST /logs/filter`. The server caps `limit` at `PREFECT_SERVER_API_DEFAULT_LIMIT` (200). */
export interface ReadLogsRequest {
  logs?: LogFilter;
  limit?: number;
  offset?: number;
  sort?: 'TIMESTAMP_ASC' | 'TIMESTAMP_DESC';
}

/** `{any_, not_any_}` as the filter schemas spell "in" and "not in". */
export interface AnyOf<T> {
  any_?: T[] | null;
  not_any_?: T[] | null;
}

/** `FlowRunFilter`, limited to the criteria the launcher uses (spec §1.6). */
export interface FlowRunFilter {
  operator?: 'and_' | 'or_';
  id?: AnyOf<string> | null;
  name?: { any_?: string[] | null; like_?: string | null } | null;
  tags?: { all_?: string[] | null; any_?: string[] | null; is_null_?: boolean | null } | null;
  deployment_id?: { any_?: string[] | null; is_null_?: boolean | null } | null;
  work_queue_name?: { any_?: string[] | null } | null;
  state?: {
    operator?: 'and_' | 'or_';
    type?: AnyOf<StateType> | null;
    name?: AnyOf<string> | null;
  } | null;
  start_time?: { before_?: string | null; after_?: string | null; is_null_?: boolean | null } | null;
  expected_start_time?: { before_?: string | null; after_?: string | null } | null;
  end_time?: { before_?: string | null; after_?: string | null; is_null_?: boolean | null } | null;
}

export type FlowRunSort =
  | 'ID_DESC'
  | 'START_TIME_ASC'
  | 'START_TIME_DESC'
  | 'EXPECTED_START_TIME_ASC'
  | 'EXPECTED_START_TIME_DESC'
  | 'NAME_ASC'
  | 'NAME_DESC'
  | 'NEXT_SCHEDULED_START_TIME_ASC'
  | 'END_TIME_DESC';

/** Body of `POST /flow_runs/filter` (spec §1.6). */
export interface FlowRunFilterRequest {
  flow_runs?: FlowRunFilter | null;
  deployments?: { id?: { any_?: string[] | null } | null } | null;
  work_pools?: { id?: { any_?: string[] | null } | null; name?: { any_?: string[] | null } | null } | null;
  work_pool_queues?: {
    id?: { any_?: string[] | null } | null;
    name?: { any_?: string[] | null } | null;
  } | null;
  sort?: FlowRunSort | null;
  limit?: number | null;
  offset?: number;
}

/** A worker of a pool, as `POST /work_pools/{pool}/workers/filter` returns it (the fields read). */
export interface WorkerHeartbeatView {
  name: string;
  status?: string | null;
  last_heartbeat_time?: string | null;
}

/** A work queue, as `POST /work_pools/{pool}/queues/filter` returns it (the fields read). */
export interface WorkQueueInfo {
  name: string;
  is_paused?: boolean;
  concurrency_limit?: number | null;
  status?: string | null;
}
