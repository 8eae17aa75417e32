import { limiter } from '../../src/bench/launcher-side';
import { parseBenchArgs, resultsTable, runNowTable } from '../../src/bench/main';
import type { ScenarioResult } from '../../src/bench/scenario';
import {
  flowRunIdOfRunTask,
  formatTable,
  isWebSocketRoute,
  percentile,
  summarizeLateness,
  tally,
  templateRoute,
} from '../../src/bench/stats';

describe('percentile', () => {
  it('interpolates between closest ranks, whatever the input order', () => {
    const values = [10, 1, 4, 7, 2, 9, 3, 8, 6, 5];
    expect(percentile(values, 0)).toBe(1);
    expect(percentile(values, 50)).toBe(5.5);
    expect(percentile(values, 95)).toBeCloseTo(9.55);
    expect(percentile(values, 100)).toBe(10);
    expect(values[0]).toBe(10);
  });

  it('is the value itself for one value and NaN for none', () => {
    expect(percentile([3.5], 95)).toBe(3.5);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('summarizeLateness', () => {
  it('gives p50, p95, max, the earliest call and how many were early', () => {
    const summary = summarizeLateness([-9.5, -2, 0, 0.1, 0.2, 0.3, 1, 2, 3, 12]);
    expect(summary).toEqual({
      count: 10,
      p50: expect.closeTo(0.25, 6),
      p95: expect.closeTo(7.95, 6),
      max: 12,
      min: -9.5,
      early: 2,
    });
  });

  it('counts nothing early when every call was on time or late', () => {
    expect(summarizeLateness([0, 0.5]).early).toBe(0);
  });
});

describe('templateRoute', () => {
  it("replaces the scenario's pool name, ids already templated by the proxy", () => {
    expect(
      templateRoute('POST /work_pools/bench-worker-10-ab12cd/get_scheduled_flow_runs', {
        pool: 'bench-worker-10-ab12cd',
      }),
    ).toBe('POST /work_pools/{pool}/get_scheduled_flow_runs');
    expect(templateRoute('GET /flow_runs/{id}', { pool: 'p' })).toBe('GET /flow_runs/{id}');
  });

  it('replaces whole path segments only', () => {
    const names = { pool: 'bench', cluster: 'bench-cluster' };
    expect(templateRoute('GET /x/bench-cluster/bench', names)).toBe('GET /x/{cluster}/{pool}');
    expect(templateRoute('GET /benchmarks', { pool: 'bench' })).toBe('GET /benchmarks');
  });
});

describe('isWebSocketRoute', () => {
  it("knows the worker's channel and the events streams, and nothing else", () => {
    expect(isWebSocketRoute('GET /events/in')).toBe(true);
    expect(isWebSocketRoute('GET /work_pools/{pool}/workers/connect')).toBe(true);
    expect(isWebSocketRoute('POST /work_pools/{pool}/workers/heartbeat')).toBe(false);
    expect(isWebSocketRoute('POST /events/in')).toBe(false);
  });
});

describe('flowRunIdOfRunTask', () => {
  const id = '0f2a6a4e-7d0c-4a43-9d1e-2b8f6f1c9a11';

  it("reads PREFECT__FLOW_RUN_ID from a container override (the worker's request)", () => {
    const body = JSON.stringify({
      cluster: 'c',
      overrides: {
        containerOverrides: [
          { name: 'sidecar' },
          {
            name: 'prefect',
            environment: [
              { name: 'PREFECT_API_URL', value: 'http://x/api' },
              { name: 'PREFECT__FLOW_RUN_ID', value: id },
            ],
          },
        ],
      },
    });
    expect(flowRunIdOfRunTask(body)).toBe(id);
  });

  it("falls back to the launcher's task group", () => {
    expect(flowRunIdOfRunTask(JSON.stringify({ group: `prefect-flow-run:${id}` }))).toBe(id);
  });

  it('is undefined for other requests and for bodies that are not JSON', () => {
    expect(flowRunIdOfRunTask(JSON.stringify({ group: 'service:web' }))).toBeUndefined();
    expect(flowRunIdOfRunTask('Action=DescribeVpcs&Version=2016-11-15')).toBeUndefined();
    expect(flowRunIdOfRunTask('null')).toBeUndefined();
  });
});

describe('tally and formatTable', () => {
  it('counts keys, largest first', () => {
    expect(Object.entries(tally(['b', 'a', 'b', 'c', 'a', 'b']))).toEqual([
      ['b', 3],
      ['a', 2],
      ['c', 1],
    ]);
  });

  it('aligns the first column left and the others right, under a rule', () => {
    expect(
      formatTable([
        ['side', 'runs'],
        ['launcher', '10'],
        ['worker', '1000'],
      ]),
    ).toBe(['side      runs', '--------  ----', 'launcher    10', 'worker    1000'].join('\n'));
  });
});

describe('resultsTable', () => {
  it('prints one row per scenario with per-run figures', () => {
    const result = {
      side: 'worker',
      runs: 10,
      allLaunchedSeconds: 25.04,
      lateness: { count: 10, p50: -3.84, p95: -0.1, max: 1, min: -9.1, early: 9 },
      prefect: { total: 84, perRun: 8.4, by: {}, errors: {} },
      aws: { total: 40, perRun: 4, by: {}, errors: {} },
      transitions: { perRun: 2, sequences: {} },
      stepFunctionsTransitionsPerRun: 0,
    } as unknown as ScenarioResult;
    const [, , row] = resultsTable([result]).split('\n');
    expect(row?.split(/\s+/)).toEqual([
      'worker',
      '10',
      '25.0',
      '-3.8',
      '-0.1',
      '1.0',
      '-9.1',
      '9/10',
      '8.4',
      '4.0',
      '2.0',
      '0.0',
    ]);
  });
});

describe('parseBenchArgs', () => {
  it('defaults to 10, 100 and 1,000 runs on both sides', () => {
    const options = parseBenchArgs([]);
    expect(options.sizes).toEqual([10, 100, 1000]);
    expect(options.sides).toEqual(['launcher', 'worker']);
    expect(options).toMatchObject({
      pollSeconds: 10,
      lookaheadSeconds: 10,
      windowSeconds: 30,
      database: 'postgres',
    });
  });

  it('takes sizes and sides, and refuses what it does not know', () => {
    expect(parseBenchArgs(['--sizes', '5,50', '--sides', 'worker'])).toMatchObject({
      sizes: [5, 50],
      sides: ['worker'],
    });
    expect(() => parseBenchArgs(['--sizes', '10,x'])).toThrow(/--sizes must be a positive number/);
    expect(() => parseBenchArgs(['--sides', 'agent'])).toThrow(/unknown side agent/);
    expect(() => parseBenchArgs(['--runs', '5'])).toThrow();
    expect(parseBenchArgs(['--database', 'sqlite']).database).toBe('sqlite');
    expect(() => parseBenchArgs(['--database', 'mysql'])).toThrow(/--database must be postgres or sqlite/);
  });

  it('runs the run-now scenario with 50 runs over 50 s, the launcher with and without run now and the worker', () => {
    expect(parseBenchArgs(['--scenario', 'run-now'])).toMatchObject({
      scenario: 'run-now',
      sizes: [50],
      windowSeconds: 50,
      sides: ['launcher-run-now', 'launcher', 'worker'],
    });
    expect(parseBenchArgs([]).scenario).toBe('scheduled');
    expect(() => parseBenchArgs(['--sides', 'launcher-run-now'])).toThrow(/unknown side launcher-run-now/);
    expect(() => parseBenchArgs(['--scenario', 'burst'])).toThrow(/--scenario must be scheduled or run-now/);
  });
});

describe('runNowTable', () => {
  it("shows each side's poll, delays and how many RunTask calls each run got", () => {
    const table = runNowTable([
      {
        side: 'launcher-run-now',
        runs: 50,
        pollSeconds: 60,
        delay: summarizeLateness([0.4, 0.5, 0.6, 2.1]),
        runTasksPerRun: { '1': 50 },
        problems: [],
        facts: {},
        elapsedSeconds: 70,
      },
    ]);
    expect(table.split('\n')[0]).toMatch(
      /^side\s+poll \(s\)\s+runs\s+creation → RunTask p50 \(s\)\s+p95\s+max\s+RunTask calls per run$/,
    );
    expect(table).toMatch(/launcher-run-now\s+60\s+50\s+0\.6\s+1\.9\s+2\.1\s+1: 50/);
  });
});

describe('limiter', () => {
  it('runs at most `limit` calls at once and all of them in the end', async () => {
    const limit = limiter(2);
    let active = 0;
    let most = 0;
    const done = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        limit(async () => {
          active += 1;
          most = Math.max(most, active);
          await new Promise((resolve) => setTimeout(resolve, 5));
          active -= 1;
          return i;
        }),
      ),
    );
    expect(done).toEqual([0, 1, 2, 3, 4, 5]);
    expect(most).toBe(2);
  });

  it('frees the slot of a call that failed', async () => {
    const limit = limiter(1);
    await expect(limit(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limit(async () => 'next')).resolves.toBe('next');
  });
});
