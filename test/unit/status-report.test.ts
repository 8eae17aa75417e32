import type { StackFacts } from '../../src/aws/cloudformation';
import { formatStatus, STATUS_RUN_LIMIT, stackSection, statusReport } from '../../src/cli/status-report';
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
        'launch executions: not asked (set LAUNCHER_STATE_MACHINE_ARN or --stage)',
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

  const stateMachineArn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:LaunchStateMachine-AbC123';
  const deployed: StackFacts = {
    name: 'prefect-ecs-launcher-prod',
    status: 'UPDATE_COMPLETE',
    lastUpdated: new Date('2026-12-01T08:30:00Z'),
    parameters: {
      WorkPool: 'my-ecs-pool',
      WorkQueues: '',
      Concurrency: '8',
      PrefectApiUrl: 'https://admin:hunter2@prefect.internal:4200/api',
      PrefectApiKeySecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prefect-api-key-AbCdEf',
      CreateAlarms: 'true',
    },
    outputs: { LaunchStateMachineArn: stateMachineArn, LauncherVersion: '0.1.0' },
  };

  it("shows the deployed stack first: status, version and every setting, a URL's password hidden", () => {
    const stack = stackSection(deployed, 'eu-west-1');
    expect(stack).toEqual({
      name: 'prefect-ecs-launcher-prod',
      region: 'eu-west-1',
      status: 'UPDATE_COMPLETE',
      statusReason: null,
      lastUpdated: '2026-12-01T08:30:00.000Z',
      version: '0.1.0',
      stateMachineArn,
      settings: {
        Concurrency: '8',
        CreateAlarms: 'true',
        PrefectApiKeySecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prefect-api-key-AbCdEf',
        PrefectApiUrl: 'https://***@prefect.internal:4200/api',
        WorkPool: 'my-ecs-pool',
        WorkQueues: '',
      },
    });
    const report = statusReport({
      stack,
      pool: { ...pool, is_paused: false, status: 'READY' },
      workerName: 'prefect-ecs-launcher my-ecs-pool',
      workers: [],
      queues: [{ name: 'default' }],
      runs: [],
      executions: [],
      now,
      sinceMinutes: 60,
    });
    expect(report.stack).toBe(stack);
    expect(JSON.stringify(report)).not.toContain('hunter2');
    expect(formatStatus(report)).toBe(
      [
        'stack prefect-ecs-launcher-prod in eu-west-1: UPDATE_COMPLETE, last updated 2026-12-01T08:30:00.000Z, launcher version 0.1.0',
        'settings:',
        '  Concurrency 8',
        '  CreateAlarms true',
        '  PrefectApiKeySecretArn arn:aws:secretsmanager:eu-west-1:123456789012:secret:prefect-api-key-AbCdEf',
        '  PrefectApiUrl https://***@prefect.internal:4200/api',
        '  WorkPool my-ecs-pool',
        '  WorkQueues (empty)',
        'work pool p: READY, concurrency limit 3',
        'launcher prefect-ecs-launcher my-ecs-pool: not seen, last heartbeat never (is the poll function deployed and its schedule enabled?)',
        'queues: default',
        'runs expected in the last 60 min or later: 0',
        'launch executions: 0 running, 0 failed in the window',
        '',
      ].join('\n'),
    );
  });

  it('says what a stack deployed before its outputs existed, or failing, lacks', () => {
    const stack = stackSection(
      {
        name: 'prefect-ecs-launcher-dev',
        status: 'ROLLBACK_COMPLETE',
        statusReason: 'The following resource(s) failed to create: [PollRole].',
        lastUpdated: null,
        parameters: {},
        outputs: {},
      },
      'us-east-1',
    );
    expect(stack).toMatchObject({ version: null, stateMachineArn: null, settings: {} });
    const text = formatStatus(
      statusReport({
        stack,
        pool,
        workerName: 'w',
        workers: [],
        queues: [],
        runs: [],
        now,
        sinceMinutes: 60,
      }),
    );
    expect(text).toContain(
      'stack prefect-ecs-launcher-dev in us-east-1: ROLLBACK_COMPLETE (The following resource(s) failed to create: [PollRole].), last updated ?, launcher version unknown (no LauncherVersion output)\nsettings: none (the stack has no parameters)\nwork pool p:',
    );
    expect(text).toContain(
      'launch executions: not asked (stack prefect-ecs-launcher-dev has no LaunchStateMachineArn output)',
    );
  });
});
