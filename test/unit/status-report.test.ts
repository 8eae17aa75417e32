import { formatStatus, STATUS_RUN_LIMIT, statusReport } from '../../src/cli/status-report';
import type { FlowRun, WorkPool } from '../../src/prefect/types';

const pool = { name: 'p', status: 'NOT_READY', is_paused: true, concurrency_limit: 3 } as WorkPool;
const now = new Date('2026-12-04T10:00:00Z');

describe('the status report', () => {
  it('says when the launcher never sent a heartbeat, and that executions were not asked', () => {
    const report = statusReport({
      pool,
      workerName: 'prefect-ecs-launcher p',
      workers: [{ name: 'someone else', status: 'ONLINE', last_heartbeat_time: now.toISOString() }],
      queues: [{ name: 'default', is_paused: true }],
      runs: [],
      now,
      sinceMinutes: 60,
    });
    expect(report.launcher).toEqual({
      name: 'prefect-ecs-launcher p',
      status: null,
      lastHeartbeat: null,
      secondsAgo: null,
    });
    expect(formatStatus(report)).toBe(
      [
        'work pool p: NOT_READY, paused, concurrency limit 3',
        'launcher prefect-ecs-launcher p: not seen, last heartbeat never (is the poll function deployed and its schedule enabled?)',
        'queues: default (paused)',
        'runs expected in the last 60 min or later: 0',
        'launch executions: not asked (set LAUNCHER_STATE_MACHINE_ARN)',
        '',
      ].join('\n'),
    );
  });

  it('says when it read only the newest runs', () => {
    const runs = Array.from(
      { length: STATUS_RUN_LIMIT },
      (_, i) =>
        ({
          id: `r${i}`,
          name: `run ${i}`,
          state_type: 'COMPLETED',
          state_name: 'Completed',
          state: null,
          expected_start_time: now.toISOString(),
          infrastructure_pid: null,
        }) as unknown as FlowRun,
    );
    const report = statusReport({
      pool,
      workerName: 'w',
      workers: [],
      queues: [],
      runs,
      now,
      sinceMinutes: 5,
    });
    expect(report.window).toEqual({ sinceMinutes: 5, runs: STATUS_RUN_LIMIT, truncated: true });
    expect(report.runs.counts).toEqual({ Completed: STATUS_RUN_LIMIT });
    expect(formatStatus(report)).toContain(
      `(the newest ${STATUS_RUN_LIMIT}) (Completed ${STATUS_RUN_LIMIT})`,
    );
  });
});
