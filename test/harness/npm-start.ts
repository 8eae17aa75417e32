import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { stackUrls } from './env';

export interface NpmStart {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/**
 * `npm start -- <args>` from the checkout, as a user runs it, with `env` added to its environment. The test stack's Prefect server (or
 * `apiUrl`) stands in for the user's own (--api-url); npm start brings its own moto, so its moto-wide settings stay its own.
 */
export function npmStart(
  args: string[],
  env: Record<string, string> = {},
  apiUrl = stackUrls().prefectApiUrl,
): NpmStart {
  // Against another server line (npm run test:servers), the flows run that line's prefect too.
  const flowVenv = process.env.TEST_PREFECT_SERVER_VENV;
  const child = spawn(
    'npm',
    ['start', '--', '--api-url', apiUrl, ...(flowVenv ? ['--flow-venv', flowVenv] : []), ...args],
    {
      cwd: path.resolve(__dirname, '..', '..'),
      // jest gives each test file its own copy of process.env; a child gets the real one unless told.
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
  return { child, output: () => output, exited };
}

/** `pending`, or after `ms` an error with everything npm start printed (and npm start stopped). */
export async function within<T>(
  ms: number,
  what: string,
  pending: Promise<T>,
  started: NpmStart,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      started.child.kill('SIGTERM');
      reject(new Error(`${what} took over ${ms} ms; npm start printed:\n${started.output()}`));
    }, ms);
  });
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first match of `pattern` in what npm start printed, once it has printed it. */
export async function printed(started: NpmStart, pattern: RegExp): Promise<RegExpMatchArray> {
  for (;;) {
    const match = pattern.exec(started.output());
    if (match) return match;
    if (started.child.exitCode !== null) {
      throw new Error(`npm start exited without printing ${pattern}:\n${started.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
