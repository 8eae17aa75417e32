/**
 * Shapes shared by the rendering pipeline. They follow Prefect's wire format (snake_case, as the REST API
 * returns it) on the input side and the ECS API (camelCase, as @aws-sdk/client-ecs takes it) on the output side.
 */
import type { RegisterTaskDefinitionCommandInput, RunTaskCommandInput } from '@aws-sdk/client-ecs';

/** A JSON value as Prefect stores templates and job variables. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A work pool's `base_job_template`: a JSON schema of variables plus the job configuration with placeholders. */
export interface BaseJobTemplate {
  job_configuration: JsonObject;
  variables: JsonObject & { properties?: { [name: string]: JsonObject } };
}

/** The fields of the Prefect API objects that rendering reads (the API returns more). */
export interface FlowRunInfo {
  id: string;
  name: string;
  flow_id: string;
  deployment_id: string | null;
  job_variables?: JsonObject | null;
  labels?: { [key: string]: Json } | null;
  work_pool_name?: string | null;
  work_queue_name?: string | null;
  parameters?: JsonObject;
  tags?: string[];
}
export interface DeploymentInfo {
  id: string;
  name: string;
  flow_id: string;
  updated?: string | null;
  job_variables?: JsonObject | null;
  work_pool_name?: string | null;
}
export interface FlowInfo {
  id: string;
  name: string;
}
export interface WorkPoolInfo {
  id: string;
  name: string;
  type: string;
  base_job_template: BaseJobTemplate | Record<string, never>;
}

/**
 * The ECS job configuration after templating and flow-run preparation: prefect-aws's `ECSJobConfiguration`
 * fields. `task_definition` and `task_run_request` are still partial ECS API objects.
 */
export interface EcsJobConfiguration {
  command: string | null;
  env: { [name: string]: string };
  labels: { [key: string]: string };
  name: string | null;
  task_definition: JsonObject;
  task_run_request: JsonObject;
  cluster: string | null;
  container_name: string | null;
  vpc_id: string | null;
  network_configuration: JsonObject | null;
  configure_cloudwatch_logs: boolean | null;
  cloudwatch_logs_options: { [key: string]: string };
  cloudwatch_logs_prefix: string | null;
  execution_role_arn: string | null;
  auto_deregister_task_definition: boolean;
  match_latest_revision_in_family: boolean;
  prefect_api_key_secret_arn: string | null;
  prefect_api_auth_string_secret_arn: string | null;
  /** Kept so a template can reference it; the launcher never uses static credentials from it. */
  aws_credentials: JsonObject | null;
}

/** What the launcher starts for one flow run: the task definition to find or register, and the RunTask call. */
export interface RenderedJob {
  /** null when the job names an existing task definition (`task_definition_arn`). */
  taskDefinition: RegisterTaskDefinitionCommandInput | null;
  runTaskRequest: RunTaskCommandInput;
}

/** Reads the Prefect objects that templates may reference; implemented by the Prefect client. */
export interface TemplateReferenceReader {
  /** `GET /block_documents/{id}?include_secrets=true` → the document's `data`. */
  readBlockDocumentData(id: string): Promise<JsonObject>;
  /** `GET /block_types/slug/{slug}/block_documents/name/{name}?include_secrets=true` → `data`, or null on 404. */
  readBlockDocumentDataByName(blockTypeSlug: string, name: string): Promise<JsonObject | null>;
  /** `GET /variables/name/{name}` → `value`, or undefined on 404. */
  readVariableValue(name: string): Promise<Json | undefined>;
}
