import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { TopLevelSpec } from 'vega-lite';
import { renderSvg, runNowSpec, scheduledSpec } from './chart';
import type { RunNowResult } from './run-now';
import type { ScenarioResult } from './scenario';

/**
 * `npm run bench:chart [-- --dir DIR]`: redraws the charts from the results a bench run wrote (docs/ unless
 * --dir), without running the benchmark again: benchmarks.json → benchmarks.svg and
 * benchmarks-run-now.json → benchmarks-run-now.svg, each whose results file is there.
 */

const CHARTS: { json: string; svg: string; spec: (results: unknown[]) => TopLevelSpec }[] = [
  {
    json: 'benchmarks.json',
    svg: 'benchmarks.svg',
    spec: (results) => scheduledSpec(results as ScenarioResult[]),
  },
  {
    json: 'benchmarks-run-now.json',
    svg: 'benchmarks-run-now.svg',
    spec: (results) => runNowSpec(results as RunNowResult[]),
  },
];

/** Writes each chart whose results are in `dir`; returns the SVG files written. */
export async function drawCharts(dir: string): Promise<string[]> {
  const written: string[] = [];
  for (const chart of CHARTS) {
    const json = path.join(dir, chart.json);
    if (!fs.existsSync(json)) continue;
    const { results } = JSON.parse(fs.readFileSync(json, 'utf8')) as { results?: unknown };
    if (!Array.isArray(results)) throw new Error(`${json}: no "results" array`);
    const svg = path.join(dir, chart.svg);
    fs.writeFileSync(svg, await renderSvg(chart.spec(results)));
    written.push(svg);
  }
  if (!written.length) {
    throw new Error(`no ${CHARTS.map((c) => c.json).join(' or ')} in ${dir}`);
  }
  return written;
}

async function main(): Promise<void> {
  try {
    const { values } = parseArgs({ strict: true, options: { dir: { type: 'string' } } });
    const dir = path.resolve(values.dir ?? path.join(__dirname, '..', '..', 'docs'));
    for (const svg of await drawCharts(dir))
      process.stdout.write(`wrote ${path.relative(process.cwd(), svg)}\n`);
  } catch (err) {
    process.stderr.write(`npm run bench:chart: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

if (require.main === module) void main();
