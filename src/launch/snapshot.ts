import type { Deployment, Flow, FlowRun, State, WorkPool } from '../prefect/types';
import type { DeploymentInfo, FlowInfo, FlowRunInfo, WorkPoolInfo } from '../render/types';

/**
 * What a poll already knows of a run it claimed, handed to the run's launch execution so that Prepare need
 * not read it again from Prefect: the flow run (with its claim as its state), its deployment and flow (read
 * once per poll for all due runs) and the work pool (read by every poll). Pure.
 *
 * Two limits keep it honest:
 * - size: StartExecution takes at most 256 KiB of input, and the execution carries Prepare's result and
 *   any error beside it (https://docs.aws.amazon.com/step-functions/latest/dg/limits-overview.html), so a
 *   snapshot over SNAPSHOT_MAX_BYTES (a huge base job template or job variables) is not sent;
 * - age: a snapshot is used only within SNAPSHOT_MAX_AGE_SECONDS of the poll's reads. Prepare runs right
 *   after the execution starts; a later one (an execution redriven by hand, hours on) reads afresh.
 * Without a usable snapshot, Prepare reads the run, deployment, flow and pool itself, as it always could.
 *
 * It holds only the fields rendering reads (src/render/types.ts): the execution's input is visible in Step
 * Functions' history, and a flow run's parameters, which rendering never reads, stay out of it.
 */
export interface LaunchSnapshot {
  /** When the poll read these (RFC 3339). */
  readAt: string;
  /** The run with its claim as its state. */
  flowRun: FlowRunInfo & Pick<FlowRun, 'state_type' | 'state_name'>;
  /** null when the run has no deployment. */
  deployment: DeploymentInfo | null;
  flow: FlowInfo;
  workPool: WorkPoolInfo;
}

function pick<T extends object, K extends keyof T>(value: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const key of keys) if (value[key] !== undefined) out[key] = value[key];
  return out;
}

const FLOW_RUN_FIELDS = [
  'id',
  'name',
  'flow_id',
  'deployment_id',
  'job_variables',
  'labels',
  'work_pool_name',
  'work_queue_name',
  'tags',
] as const satisfies readonly (keyof FlowRunInfo & keyof FlowRun)[];
const DEPLOYMENT_FIELDS = [
  'id',
  'name',
  'flow_id',
  'updated',
  'job_variables',
  'work_pool_name',
] as const satisfies readonly (keyof DeploymentInfo & keyof Deployment)[];

export const SNAPSHOT_MAX_BYTES = 128 * 1024;
export const SNAPSHOT_MAX_AGE_SECONDS = 300;

/** What one poll read for all its due runs: deployments and flows by id (a deleted deployment is absent). */
export interface PollReads {
  readAt: Date;
  workPool: WorkPool;
  deployments: ReadonlyMap<string, Deployment>;
  flows: ReadonlyMap<string, Flow>;
}

/**
 * The snapshot of a run the poll just claimed (`claim` is the accepted Pending state), or undefined when the
 * poll lacks part of it (a deployment deleted since, a flow the read missed) or it is too large: Prepare
 * then reads for itself, and reports a deleted deployment as it always did.
 */
export function snapshotOf(run: FlowRun, claim: State, reads: PollReads): LaunchSnapshot | undefined {
  const deployment = run.deployment_id ? reads.deployments.get(run.deployment_id) : null;
  const flow = reads.flows.get(run.flow_id);
  if (deployment === undefined || !flow) return undefined;
  if (run.work_pool_name && run.work_pool_name !== reads.workPool.name) return undefined;
  const { id, name, type, base_job_template } = reads.workPool;
  const snapshot: LaunchSnapshot = {
    readAt: reads.readAt.toISOString(),
    flowRun: { ...pick(run, FLOW_RUN_FIELDS), state_type: claim.type, state_name: claim.name },
    deployment: deployment && pick(deployment, DEPLOYMENT_FIELDS),
    flow: { id: flow.id, name: flow.name },
    workPool: { id, name, type, base_job_template },
  };
  return Buffer.byteLength(JSON.stringify(snapshot)) <= SNAPSHOT_MAX_BYTES ? snapshot : undefined;
}

/** The snapshot in an execution's input when it belongs to `flowRunId` and is recent; else undefined. */
export function usableSnapshot(value: unknown, flowRunId: string, now: Date): LaunchSnapshot | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const snapshot = value as Partial<LaunchSnapshot>;
  if (snapshot.flowRun?.id !== flowRunId || !snapshot.flow || !snapshot.workPool) return undefined;
  if (snapshot.deployment === undefined) return undefined;
  const age = (now.getTime() - new Date(snapshot.readAt ?? Number.NaN).getTime()) / 1000;
  if (!(age >= -60 && age <= SNAPSHOT_MAX_AGE_SECONDS)) return undefined;
  return snapshot as LaunchSnapshot;
}
