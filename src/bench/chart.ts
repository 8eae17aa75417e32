import type { TopLevelSpec } from 'vega-lite';
import type { RunNowResult } from './run-now';
import type { ScenarioResult } from './scenario';
import type { LatenessSummary } from './stats';

/**
 * The benchmark's charts as Vega-Lite specs (https://vega.github.io/vega-lite/docs/), rendered to SVG by
 * Vega without a browser or a native canvas. vega and vega-lite are devDependencies loaded only here, by the
 * bench and `npm run bench:chart`; no Lambda function imports this file.
 */

/** One bar cluster of a chart: one side at one number of runs. */
export interface ChartEntry {
  side: string;
  runs: number;
  lateness: LatenessSummary;
}

export interface ChartText {
  title: string;
  /** What the seconds are measured from and to, under each panel's axis. */
  axisTitle: string;
}

const STATS = [
  { key: 'min', label: 'earliest', color: '#78aadc' },
  { key: 'p50', label: 'p50', color: '#286eb4' },
  { key: 'p95', label: 'p95', color: '#e68c28' },
  { key: 'max', label: 'max', color: '#c83232' },
] as const satisfies readonly { key: keyof LatenessSummary; label: string; color: string }[];

/** Each panel's axis reaches at least this far: bars of a few milliseconds would otherwise fill it. */
const LEAST_SPAN_SECONDS = 0.5;

/**
 * Seconds as horizontal bars, each labelled with its value: one panel per number of runs, each on its own
 * scale, with one row per side of its earliest, p50, p95 and max. Sides run down the left, so long names
 * never collide. Pure: the same entries give the same spec.
 */
export function latenessSpec(entries: readonly ChartEntry[], text: ChartText): TopLevelSpec {
  const bars = entries.flatMap((e) =>
    STATS.flatMap((s) => {
      const seconds = e.lateness[s.key];
      // A side with no runs at some N has NaN statistics (null in the JSON results): no bar.
      if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return [];
      return [{ runs: e.runs, side: e.side, statistic: s.label, seconds }];
    }),
  );
  const spans = [...new Set(entries.map((e) => e.runs))].map((runs) => ({ runs, span: LEAST_SPAN_SECONDS }));
  const sides = [...new Set(entries.map((e) => e.side))];
  const labels = STATS.map((s) => s.label);
  const row = {
    y: { field: 'side', type: 'nominal', sort: sides, title: null, axis: { labelFontSize: 12 } },
    yOffset: { field: 'statistic', type: 'nominal', sort: labels },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: text.title, anchor: 'start', fontSize: 15 },
    background: 'white',
    padding: 12,
    data: { values: [...bars, ...spans] },
    facet: {
      row: {
        field: 'runs',
        type: 'ordinal',
        sort: 'ascending',
        title: null,
        header: {
          labelExpr: "format(datum.value, ',') + ' runs'",
          labelOrient: 'top',
          labelAnchor: 'start',
          labelAngle: 0,
          labelFontSize: 12,
          labelFontWeight: 'bold',
        },
      },
    },
    spec: {
      width: 460,
      height: { step: 14, for: 'offset' },
      layer: [
        {
          // Invisible: it only stretches the panel's scale to LEAST_SPAN_SECONDS.
          transform: [{ filter: 'isValid(datum.span)' }],
          mark: { type: 'rule', opacity: 0 },
          encoding: {
            x: {
              field: 'span',
              type: 'quantitative',
              title: text.axisTitle,
              // The zero line darker than the grid: bars left of it came early.
              axis: { gridColor: { condition: { test: 'datum.value === 0', value: '#444' }, value: '#ddd' } },
            },
          },
        },
        {
          transform: [{ filter: 'isValid(datum.seconds)' }],
          mark: 'bar',
          encoding: {
            ...row,
            x: { field: 'seconds', type: 'quantitative' },
            color: {
              field: 'statistic',
              type: 'nominal',
              scale: { domain: labels, range: STATS.map((s) => s.color) },
              legend: { title: null, orient: 'top', direction: 'horizontal' },
            },
          },
        },
        {
          // Each value right of its bar's end, or right of zero for a bar below zero, where its row is empty.
          transform: [
            { filter: 'isValid(datum.seconds)' },
            { calculate: 'max(datum.seconds, 0)', as: 'labelAt' },
          ],
          mark: { type: 'text', align: 'left', baseline: 'middle', dx: 3, fontSize: 10 },
          encoding: {
            ...row,
            x: { field: 'labelAt', type: 'quantitative' },
            text: { field: 'seconds', type: 'quantitative', format: '.1f' },
          },
        },
      ],
    },
    resolve: { scale: { x: 'independent' } },
  };
}

/** benchmarks.svg: RunTask lateness of the scheduled scenario (docs/benchmarks.json's results). */
export function scheduledSpec(results: readonly Pick<ScenarioResult, 'side' | 'runs' | 'lateness'>[]) {
  return latenessSpec(
    results.map((r) => ({ side: r.side, runs: r.runs, lateness: r.lateness })),
    {
      title: 'RunTask lateness against the scheduled time (s)',
      axisTitle: 'seconds after the scheduled time, below 0 = launched early',
    },
  );
}

/** benchmarks-run-now.svg: creation → RunTask of runs started by hand (docs/benchmarks-run-now.json). */
export function runNowSpec(results: readonly Pick<RunNowResult, 'side' | 'runs' | 'delay'>[]) {
  return latenessSpec(
    results.map((r) => ({ side: r.side, runs: r.runs, lateness: r.delay })),
    {
      title: 'Runs started by hand: creation to RunTask (s)',
      axisTitle: "seconds from the run's creation to its RunTask",
    },
  );
}

/**
 * Compiles the spec with vega-lite and renders it headlessly with Vega (renderer `none`: no DOM, text widths
 * estimated). Both are ES modules only; a dynamic import loads them from this CommonJS project under tsx.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vegaLite, vega] = await Promise.all([import('vega-lite'), import('vega')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return `${await view.toSVG()}\n`;
  } finally {
    view.finalize();
  }
}
