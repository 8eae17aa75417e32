import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ChartEntry, latenessSpec, runNowSpec, scheduledSpec } from '../../src/bench/chart';
import { drawCharts } from '../../src/bench/chart-cli';

const root = path.join(__dirname, '..', '..');
const fixtures = path.join(__dirname, '..', 'fixtures', 'bench-chart');

const summary = (p50: number, p95: number, max: number, min: number) => ({
  count: 10,
  p50,
  p95,
  max,
  min,
  early: 0,
});

/** Early and late calls, percentile digits past the millisecond, and a side with no runs at one N. */
const ENTRIES: ChartEntry[] = [
  { side: 'launcher', runs: 10, lateness: summary(0.0055, 0.0081, 0.009, 0.003) },
  { side: 'worker', runs: 10, lateness: summary(-3.7545, -0.3648000000000018, 0.411, -8.475) },
  { side: 'launcher-run-now', runs: 1000, lateness: summary(Number.NaN, Number.NaN, Number.NaN, Number.NaN) },
  { side: 'worker', runs: 1000, lateness: summary(107.5045, 167.14935, 168.661, 28.978) },
];

describe('latenessSpec', () => {
  // Reviewed as rendered SVG; after a deliberate change, rewrite it from latenessSpec's output and review
  // the diff.
  it('matches the golden Vega-Lite spec', () => {
    const golden = JSON.parse(fs.readFileSync(path.join(fixtures, 'lateness-spec.json'), 'utf8'));
    expect(latenessSpec(ENTRIES, { title: 'a title', axisTitle: 'an axis title' })).toEqual(golden);
  });

  it('draws no bar for a statistic without a value, as JSON results carry NaN (null)', () => {
    const fromJson = JSON.parse(JSON.stringify(ENTRIES)) as ChartEntry[];
    const spec = latenessSpec(fromJson, { title: 't', axisTitle: 'a' });
    const values = (spec.data as { values: { side?: string; seconds?: number }[] }).values;
    const bars = values.filter((v) => 'seconds' in v);
    expect(bars).toHaveLength(12);
    expect(bars.filter((v) => v.side === 'launcher-run-now')).toEqual([]);
    expect(bars.every((v) => Number.isFinite(v.seconds))).toBe(true);
  });

  it('stretches each panel to at least half a second, so that milliseconds stay small', () => {
    const spec = latenessSpec(ENTRIES, { title: 't', axisTitle: 'a' });
    const values = (spec.data as { values: object[] }).values;
    expect(values.filter((v) => 'span' in v)).toEqual([
      { runs: 10, span: 0.5 },
      { runs: 1000, span: 0.5 },
    ]);
  });
});

describe('the two charts', () => {
  const axisTitleOf = (spec: object) => JSON.stringify(spec).match(/"title":"(seconds[^"]*)"/)?.[1];

  it('measures the scheduled scenario from the scheduled time', () => {
    const spec = scheduledSpec([{ side: 'worker', runs: 10, lateness: summary(1, 2, 3, -1) }]);
    expect(axisTitleOf(spec)).toBe('seconds after the scheduled time, below 0 = launched early');
  });

  it("measures runs started by hand from the run's creation", () => {
    const spec = runNowSpec([{ side: 'worker', runs: 50, delay: summary(1, 2, 3, 0.5) }]);
    expect(axisTitleOf(spec)).toBe("seconds from the run's creation to its RunTask");
    expect(JSON.stringify(spec)).not.toMatch(/scheduled/);
  });
});

describe('npm run bench:chart', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-chart-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  // vega and vega-lite are ES modules only, which jest (CommonJS, Node 20) cannot import: the SVGs are
  // rendered by the script itself under tsx, as the bench renders them.
  it('redraws both SVGs from the results files, every side and value labelled', async () => {
    fs.writeFileSync(
      path.join(dir, 'benchmarks.json'),
      JSON.stringify({ results: ENTRIES.filter((e) => e.side !== 'launcher-run-now') }),
    );
    const delays = [
      { side: 'launcher-run-now', runs: 50, delay: summary(0.356, 0.64035, 2.383, 0.257) },
      { side: 'launcher', runs: 50, delay: summary(31.635, 56.84115, 61.186, 2.839) },
      { side: 'worker', runs: 50, delay: summary(6.0695, 11.23955, 13.851, 1.117) },
    ];
    fs.writeFileSync(path.join(dir, 'benchmarks-run-now.json'), JSON.stringify({ results: delays }));

    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', path.join(root, 'src', 'bench', 'chart-cli.ts'), '--dir', dir],
        { cwd: root },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
      );
    });
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/wrote .*benchmarks\.svg\nwrote .*benchmarks-run-now\.svg\n$/);

    const texts = (file: string) => {
      const svg = fs.readFileSync(path.join(dir, file), 'utf8');
      expect(svg).toMatch(/^<svg [^>]*width="\d+" height="\d+"/);
      return [
        ...svg.matchAll(/<text [^>]*transform="translate\(([-\d.]+),([-\d.]+)\)"[^>]*>([^<]*)<\/text>/g),
      ].map(([, x, y, text]) => ({ x: Number(x), y: Number(y), text: text as string }));
    };

    const scheduled = texts('benchmarks.svg').map((t) => t.text);
    expect(scheduled).toEqual(
      expect.arrayContaining([
        'RunTask lateness against the scheduled time (s)',
        'seconds after the scheduled time, below 0 = launched early',
        '10 runs',
        '1,000 runs',
        'launcher',
        'worker',
        // d3-format writes a minus sign, not a hyphen.
        '\u22128.5',
        '0.4',
        '167.1',
      ]),
    );

    const runNow = texts('benchmarks-run-now.svg');
    expect(runNow.map((t) => t.text)).toEqual(
      expect.arrayContaining([
        'Runs started by hand: creation to RunTask (s)',
        "seconds from the run's creation to its RunTask",
        '50 runs',
        '0.6',
        '56.8',
        '11.2',
      ]),
    );
    expect(runNow.map((t) => t.text).join('\n')).not.toMatch(/scheduled/);
    // One side per row, down the axis: a long name cannot run into the next.
    const sides = runNow.filter((t) => ['launcher-run-now', 'launcher', 'worker'].includes(t.text));
    expect(sides.map((t) => t.text)).toEqual(['launcher-run-now', 'launcher', 'worker']);
    expect(new Set(sides.map((t) => t.x)).size).toBe(1);
    for (let i = 1; i < sides.length; i++) {
      expect((sides[i]?.y ?? 0) - (sides[i - 1]?.y ?? 0)).toBeGreaterThanOrEqual(24);
    }
  }, 60_000);

  it('says what is missing without results files', async () => {
    await expect(drawCharts(dir)).rejects.toThrow(/no benchmarks\.json or benchmarks-run-now\.json in/);
    fs.writeFileSync(path.join(dir, 'benchmarks.json'), '{}');
    await expect(drawCharts(dir)).rejects.toThrow(/benchmarks\.json: no "results" array/);
  });
});
