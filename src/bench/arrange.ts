import { mapLimit } from '../launch/concurrency';
import { PrefectHttp } from '../prefect/http';
import type { FlowRun, State } from '../prefect/types';
import defaultBaseJobTemplate from '../render/default-base-job-template.json';

/**
 * The benchmark's own Prefect calls, straight to the server (never through a counting proxy): a pool and a
 * deployment per scenario, its scheduled runs, and reading back what happened to them.
 */

export function benchPrefect(apiUrl: string): PrefectHttp {
  return new PrefectHttp({ apiUrl, timeoutMs: 60_000, maxRetries: 8 }, { kind: 'none' });
}

/** An `ecs` pool with prefect-aws's default base job template, and a flow. */
export async function arrangePool(http: PrefectHttp, pool: string): Promise<{ flowId: string }> {
  await http.request('POST', '/work_pools/', {
    body: { name: pool, type: 'ecs', base_job_template: defaultBaseJobTemplate },
  });
  const flow = await http.request<{ id: string }>('POST', '/flows/', { body: { name: 'bench-flow' } });
  return { flowId: flow.data.id };
}

/** The scenario's deployment in the pool, with the given schedules (none for runs started by hand). */
export async function createDeployment(
  http: PrefectHttp,
  target: { pool: string; cluster: string; flowId: string },
  schedules: object[] = [],
): Promise<{ id: string }> {
  const { data } = await http.request<{ id: string }>('POST', '/deployments/', {
    body: {
      name: target.pool,
      flow_id: target.flowId,
      work_pool_name: target.pool,
      entrypoint: 'flows.py:bench',
      // The launch is measured, not the flow: these tasks never run a flow process.
      job_variables: { cluster: target.cluster, image: 'prefecthq/prefect:3-latest' },
      enforce_parameter_schema: false,
      schedules,
    },
  });
  return data;
}

/**
 * One run started by hand, as the UI's "Run" and `prefect deployment run` do: created Scheduled for now,
 * which emits the `prefect.flow-run.Scheduled` event the run-now automation matches. Returns when the
 * request was sent (ms since the epoch) along with its id.
 */
export async function startRunByHand(
  http: PrefectHttp,
  deploymentId: string,
): Promise<{ id: string; at: number }> {
  const at = Date.now();
  const { data } = await http.request<{ id: string }>(
    'POST',
    `/deployments/${deploymentId}/create_flow_run`,
    {
      body: { state: { type: 'SCHEDULED', name: 'Scheduled' } },
    },
  );
  return { id: data.id, at };
}

export interface ScheduledRun {
  id: string;
  /** ms since the epoch. */
  scheduled: number;
}

/**
 * A deployment in the pool with `runs` Scheduled runs due evenly from `first` over `windowSeconds`. They are
 * made by the server itself in one transaction: the deployment has an interval schedule anchored at `first`,
 * and `POST /deployments/{id}/schedule` generates exactly `runs` of its runs (as the scheduler service does,
 * which the benchmark's server runs without, so that nothing else adds runs). One request per run takes
 * minutes for 1,000 runs on the SQLite server of a busy 2-core machine; this takes about a second.
 */
export async function scheduleRuns(
  http: PrefectHttp,
  target: { pool: string; cluster: string; flowId: string },
  first: Date,
  runs: number,
  windowSeconds: number,
): Promise<ScheduledRun[]> {
  const deployment = await createDeployment(http, target, [
    { schedule: { interval: windowSeconds / runs, anchor_date: first.toISOString() }, active: true },
  ]);
  await http.request('POST', `/deployments/${deployment.id}/schedule`, {
    body: {
      start_time: first.toISOString(),
      end_time: new Date(first.getTime() + windowSeconds * 1000).toISOString(),
      min_runs: runs,
      max_runs: runs,
    },
  });
  const found: ScheduledRun[] = [];
  for (let offset = 0; ; offset += 200) {
    const { data } = await http.request<FlowRun[]>('POST', '/flow_runs/filter', {
      body: {
        deployments: { id: { any_: [deployment.id] } },
        sort: 'EXPECTED_START_TIME_ASC',
        limit: 200,
        offset,
      },
    });
    for (const run of data) {
      found.push({
        id: run.id,
        scheduled: Date.parse(run.next_scheduled_start_time ?? run.expected_start_time ?? ''),
      });
    }
    if (data.length < 200) break;
  }
  if (found.length !== runs || found.some((r) => Number.isNaN(r.scheduled))) {
    throw new Error(`the Prefect server scheduled ${found.length} runs for the benchmark instead of ${runs}`);
  }
  return found;
}

/** Each run's states, oldest first. */
export async function readStateHistories(
  http: PrefectHttp,
  ids: readonly string[],
): Promise<Map<string, State[]>> {
  const histories = await mapLimit(ids, 4, async (id) => {
    const { data } = await http.request<State[]>('GET', '/flow_run_states/', { query: { flow_run_id: id } });
    return [id, [...data].sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp))] as const;
  });
  return new Map(histories);
}

/** The runs themselves (their infrastructure pid), 200 per filter request. */
export async function readRuns(http: PrefectHttp, ids: readonly string[]): Promise<FlowRun[]> {
  const runs: FlowRun[] = [];
  for (let i = 0; i < ids.length; i += 200) {
    const { data } = await http.request<FlowRun[]>('POST', '/flow_runs/filter', {
      body: { flow_runs: { id: { any_: ids.slice(i, i + 200) } }, limit: 200 },
    });
    runs.push(...data);
  }
  return runs;
}
