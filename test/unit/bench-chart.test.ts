import fs from 'node:fs';
import path from 'node:path';
import { type ChartEntry, latenessSpec, runNowSpec, scheduledSpec } from '../../src/bench/chart';

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
    const values = (spec.data as { values: { side: string; seconds: number }[] }).values;
    expect(values).toHaveLength(12);
    expect(values.filter((v) => v.side === 'launcher-run-now')).toEqual([]);
    expect(values.every((v) => Number.isFinite(v.seconds))).toBe(true);
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
