import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { percentile } from './stats';

const root = path.resolve(__dirname, '..', '..');

export interface BundleResult {
  /** The Lambda function (serverless.yml `functions`). */
  handler: string;
  /** Its deployment package as `npm run package` writes it. */
  zipBytes: number;
  /** The JavaScript inside it. */
  jsBytes: number;
  /** The memory it is deployed with (MB). */
  memoryMb: number;
  /** Median milliseconds to `require` the packaged handler in a fresh `node` (process start-up not included). */
  coldImportMs: number;
  importSamplesMs: number[];
}

interface PackagedFunction {
  name: string;
  zip: string;
  /** `handlers/poll.handler` → `handlers/poll.js`. */
  file: string;
  memoryMb: number;
}

/** The functions the packaged template deploys, with their zips and handler files. */
function packagedFunctions(dir: string): PackagedFunction[] {
  const template = JSON.parse(
    fs.readFileSync(path.join(dir, 'cloudformation-template-update-stack.json'), 'utf8'),
  ) as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
  return Object.values(template.Resources)
    .filter((r) => r.Type === 'AWS::Lambda::Function')
    .map((r) => {
      const zip = path.join(
        dir,
        String((r.Properties.Code as { S3Key: string }).S3Key)
          .split('/')
          .pop() ?? '',
      );
      const handler = String(r.Properties.Handler);
      return {
        name: path.basename(zip, '.zip'),
        zip,
        file: `${handler.slice(0, handler.lastIndexOf('.'))}.js`,
        memoryMb: Number(r.Properties.MemorySize),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Packages the stack as `npm run package` does (serverless-esbuild, then cfn-lint) and measures each
 * function's deployment package: its zip's size, and the cold import of the handler unpacked from it in
 * `repetitions` fresh Node processes (the part of a Lambda cold start that the bundle decides).
 */
export async function measureBundles(repetitions = 7): Promise<BundleResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-package-'));
  try {
    try {
      execFileSync('bash', [path.join(root, 'scripts', 'package.sh'), '--package', dir], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: Buffer; stderr?: Buffer };
      throw new Error(`npm run package failed:\n${stdout?.toString() ?? ''}${stderr?.toString() ?? ''}`);
    }
    const python = path.join(root, '.venv', 'bin', 'python');
    const results: BundleResult[] = [];
    for (const fn of packagedFunctions(dir)) {
      const unpacked = path.join(dir, fn.name);
      execFileSync(python, ['-m', 'zipfile', '-e', fn.zip, unpacked]);
      const file = path.join(unpacked, fn.file);
      const samples = Array.from({ length: repetitions }, () => coldImportMs(file));
      results.push({
        handler: fn.name,
        zipBytes: fs.statSync(fn.zip).size,
        jsBytes: fs.statSync(file).size,
        memoryMb: fn.memoryMb,
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
    // Outside the project, so that nothing the bundle leaves out can be found in node_modules by accident.
    cwd: os.tmpdir(),
    env: { PATH: process.env.PATH ?? '' },
  });
  return Number(out);
}
