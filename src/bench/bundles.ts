import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { build } from 'esbuild';
import { percentile } from './stats';

const root = path.resolve(__dirname, '..', '..');

export interface BundleResult {
  handler: string;
  /** The bundle as deployed (custom.esbuild in serverless.yml: not minified, with a source map). */
  jsBytes: number;
  mapBytes: number;
  /** What its zip holds compressed: the deflated bundle and map, plus zip headers (an estimate within ~100 bytes). */
  zipBytes: number;
  /** The same code minified, without a source map, for comparison. */
  minifiedBytes: number;
  /** Median milliseconds to `require` the bundle in a fresh `node` (process start-up not included). */
  coldImportMs: number;
  importSamplesMs: number[];
}

/** The settings of `custom.esbuild` in serverless.yml; serverless-esbuild writes CommonJS by default. */
const LAMBDA_BUILD = { bundle: true, platform: 'node', target: 'node20', format: 'cjs' } as const;

/** Local file header + central directory entry per file (30 + 46 bytes + the name twice), and the end record. */
function zipOverhead(names: string[]): number {
  return names.reduce((sum, name) => sum + 76 + 2 * Buffer.byteLength(name), 22);
}

/**
 * Builds each Lambda handler as `npm run package` does and measures it: sizes, and the cold import time in
 * `repetitions` fresh Node processes (the part of a Lambda cold start that the bundle decides).
 */
export async function measureBundles(
  handlers = ['poll', 'prepare', 'crash', 'report'],
  repetitions = 5,
): Promise<BundleResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-bundles-'));
  try {
    const results: BundleResult[] = [];
    for (const handler of handlers) {
      const entry = path.join(root, 'handlers', `${handler}.ts`);
      const outfile = path.join(dir, handler, `${handler}.js`);
      await build({
        ...LAMBDA_BUILD,
        entryPoints: [entry],
        outfile,
        minify: false,
        sourcemap: true,
        logLevel: 'error',
      });
      const minified = path.join(dir, handler, `${handler}.min.js`);
      await build({
        ...LAMBDA_BUILD,
        entryPoints: [entry],
        outfile: minified,
        minify: true,
        logLevel: 'error',
      });
      const js = fs.readFileSync(outfile);
      const map = fs.readFileSync(`${outfile}.map`);
      const samples = Array.from({ length: repetitions }, () => coldImportMs(outfile));
      results.push({
        handler,
        jsBytes: js.length,
        mapBytes: map.length,
        zipBytes:
          deflateRawSync(js, { level: 9 }).length +
          deflateRawSync(map, { level: 9 }).length +
          zipOverhead([`handlers/${handler}.js`, `handlers/${handler}.js.map`]),
        minifiedBytes: fs.statSync(minified).size,
        coldImportMs: percentile(samples, 50),
        importSamplesMs: samples,
      });
    }
    return results;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One fresh `node` that requires the bundle and prints how long that took. */
function coldImportMs(file: string): number {
  const script =
    'const { performance } = require("node:perf_hooks"); const t = performance.now(); require(process.argv[1]); process.stdout.write(String(performance.now() - t));';
  const out = execFileSync(process.execPath, ['-e', script, file], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
  return Number(out);
}
