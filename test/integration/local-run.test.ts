import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runNowNames } from '../../src/launch/run-now-automation';
import defaultTemplate from '../../src/render/default-base-job-template.json';
import { arrangeDeployment, prefectRaw, scheduleFlowRun, uniqueName } from '../harness/env';
import { npmStart, printed, within } from '../harness/npm-start';

type FlowRunView = {
  id: string;
  name: string;
  state_type: string;
  state: { message: string | null };
  infrastructure_pid: string | null;
};

async function flowRunsOf(pool: string): Promise<FlowRunView[]> {
  return prefectRaw<FlowRunView[]>('POST', '/flow_runs/filter', { work_pools: { name: { any_: [pool] } } });
}

async function logsOf(id: string): Promise<string[]> {
  const logs = await prefectRaw<{ message: string }[]>('POST', '/logs/filter', {
    logs: { flow_run_id: { any_: [id] } },
  });
  return logs.map((l) => l.message);
}

async function finalState(id: string): Promise<FlowRunView> {
  for (;;) {
    const run = await prefectRaw<FlowRunView>('GET', `/flow_runs/${id}`);
    if (['COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'].includes(run.state_type)) return run;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('npm start: the launch path on this machine, no AWS account', () => {
  it('runs the sample flow through poll → state machine → ECS task in moto → local prefect process, to Completed', async () => {
    const pool = uniqueName('local-run');
    const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'local-run-')), 'launcher.log');
    const started = npmStart(['--once', '--pool', pool, '--log', log], {
      POWERTOOLS_LOG_LEVEL: 'INFO',
      POWERTOOLS_METRICS_DISABLED: 'false',
    });
    const code = await within(50_000, 'npm start --once', started.exited, started);
    expect({ code, output: started.output() }).toMatchObject({ code: 0 });

    const runs = await flowRunsOf(pool);
    expect(runs).toHaveLength(1);
    const [run] = runs as [FlowRunView];
    expect(run.state_type).toBe('COMPLETED');
    expect(await logsOf(run.id)).toContain('Hello from ECS!!');
    // The report path saw the moto task: the run carries it as its infrastructure pid.
    expect(run.infrastructure_pid).toMatch(
      /^arn:aws:ecs:us-east-1:\d{12}:cluster\/default::arn:aws:ecs:.*:task\//,
    );

    const output = started.output();
    expect(output).toContain(`${run.name}: execution SUCCEEDED`);
    for (const state of ['Scheduled', 'Pending', 'Running', 'Completed']) {
      expect(output).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d  ${run.name}  ${state}$`, 'm'));
    }

    // The launcher's log lines and its metrics, in EMF as CloudWatch Logs would get them, went to the file.
    expect(output).toContain(`launcher log ${log}`);
    const lines = fs
      .readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ message: 'poll finished', workPool: pool }));
    type Directive = { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] };
    // Each value written, by metric name and dimension names, e.g. `RunsStarted[service,WorkPool]`.
    const metrics = new Map<string, number[]>();
    for (const line of lines.filter((l) => l._aws)) {
      const [directive] = (line._aws as { CloudWatchMetrics: Directive[] }).CloudWatchMetrics as [Directive];
      expect(directive.Namespace).toBe('PrefectEcsLauncher');
      expect(line.WorkPool).toBe(pool);
      for (const { Name } of directive.Metrics) {
        const key = `${Name}${directive.Dimensions.map((set) => `[${set.join(',')}]`).join('')}`;
        metrics.set(key, [...(metrics.get(key) ?? []), ...[line[Name]].flat().map(Number)]);
      }
    }
    const sum = (key: string) => (metrics.get(key) ?? []).reduce((a, v) => a + v, 0);
    expect(sum('RunsStarted[service,WorkPool]')).toBe(1);
    expect(sum('RunsPrepared[service,WorkPool]')).toBe(1);
    expect(sum('ReportEvents[service,WorkPool,LastStatus]')).toBeGreaterThanOrEqual(2);
    expect(metrics.get('RunTaskLateness[service,WorkPool]')).toHaveLength(1);
  }, 60_000);

  it("reports a task's real non-zero exit code through the ECS events, and stops cleanly on SIGTERM", async () => {
    const pool = uniqueName('local-run');
    const { deploymentId } = await arrangeDeployment({ pool, baseJobTemplate: defaultTemplate });
    const started = npmStart(['--no-sample', '--pool', pool]);
    const run = await scheduleFlowRun(deploymentId, {
      jobVariables: { command: "python -c 'raise SystemExit(3)'" },
    });

    const view = await within(40_000, 'the run to end', finalState(run.id), started);
    expect(view.state_type).toBe('CRASHED');
    expect(view.state.message).toBe(
      "The following containers stopped with a non-zero exit code: ['prefect']: the flow container 'prefect' exited with code 3; read the container's logs for the error",
    );
    expect((await logsOf(run.id)).join('\n')).toContain("Containers: 'prefect' exited with code 3.");

    started.child.kill('SIGTERM');
    expect(await within(20_000, 'stopping', started.exited, started)).toBe(0);
    expect(started.output()).toMatch(/exited with code 3/);
    expect(started.output()).toContain('stopping…');
  }, 60_000);

  it("sets up run now: a run started by hand is claimed through the pool's automation, removed on exit", async () => {
    const pool = uniqueName('local-run');
    const { deploymentId } = await arrangeDeployment({ pool, baseJobTemplate: defaultTemplate });
    const automations = () =>
      prefectRaw<unknown[]>('POST', '/automations/filter', {
        automations: { name: { any_: [runNowNames(pool).automation] } },
      });
    // --run-now: the test's server is on this machine, so it can call npm start's loopback entry point.
    const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'local-run-')), 'launcher.log');
    const started = npmStart(['--no-sample', '--pool', pool, '--run-now', '--log', log], {
      POWERTOOLS_LOG_LEVEL: 'INFO',
      POWERTOOLS_METRICS_DISABLED: 'false',
    });
    await within(
      60_000,
      'run now',
      printed(started, /run now {6}http:\/\/127\.0\.0\.1:\d+\/run-now/),
      started,
    );
    expect(await automations()).toHaveLength(1);

    const run = await scheduleFlowRun(deploymentId);
    // The launcher's own log line: the entry point, called by Prefect's automation, started this run.
    const lines = () =>
      fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const served = async () => {
      for (;;) {
        const line = lines().find((l) => l.message === 'run-now call served' && l.flowRunId === run.id);
        if (line) return line;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    expect(await within(30_000, 'the run-now call', served(), started)).toMatchObject({ due: 1, started: 1 });
    expect(lines()).toContainEqual(expect.objectContaining({ RunNowCalls: 1, RunNowRefused: 0 }));

    started.child.kill('SIGTERM');
    expect(await within(20_000, 'stopping', started.exited, started)).toBe(0);
    expect(await automations()).toEqual([]);
  }, 120_000);
});
