import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

/** What `python/stack.py` reports once a real Prefect server and moto are healthy on loopback. */
export interface LocalStack {
  prefectApiUrl: string;
  motoUrl: string;
  prefectHome: string;
  versions: Record<string, string | null>;
}

export interface RunningStack extends LocalStack {
  /** Stops both servers and waits for them to exit. */
  stop(): Promise<void>;
}

const root = path.resolve(__dirname, '..', '..');

/**
 * Server settings for load: `npm run bench` and the reliability suite. The SQLite database is in memory, where
 * Prefect uses a single connection (`AioSqliteConfiguration.engine` in
 * prefect/server/database/configurations.py), so concurrent writes queue. On disk, SQLite refuses a
 * transaction that reads and then writes while another one writes (SQLITE_BUSY,
 * https://www.sqlite.org/rescode.html#busy) and the server answers 503 to most of them under load: at 1,000
 * runs neither side of the benchmark launched every run within 7 minutes. That measures SQLite on disk, not
 * the launcher; a production database (PostgreSQL, or Prefect Cloud) waits for its locks instead. Background
 * services that write on their own are off: the scheduler (the caller creates the runs), the event pipeline
 * (every state change is an event, persisted and matched against automations) and late-run marking.
 */
export const LOAD_TEST_PREFECT_ENV: Record<string, string> = {
  PREFECT_SERVER_DATABASE_CONNECTION_URL: 'sqlite+aiosqlite:///:memory:',
  ...Object.fromEntries(
    ['SCHEDULER', 'EVENT_PERSISTER', 'TRIGGERS', 'EVENT_LOGGER', 'TASK_RUN_RECORDER', 'LATE_RUNS'].map(
      (service) => [`PREFECT_SERVER_SERVICES_${service}_ENABLED`, 'false'],
    ),
  ),
};

/**
 * Starts the Prefect server and moto from the project's virtualenv; `env` adds to their environment (e.g.
 * PREFECT_SERVER_API_AUTH_STRING for a server that requires basic auth). The Python side lives exactly as long
 * as its stdin stays open, so the servers go away with this process even when it is killed.
 */
export function startLocalStack(
  options: {
    ui?: boolean;
    home?: string;
    env?: Record<string, string>;
    postgres?: boolean;
    /** A virtualenv holding another Prefect server version (scripts/server-venv.sh). */
    prefectVenv?: string;
  } = {},
): Promise<RunningStack> {
  const args: string[] = [];
  if (options.prefectVenv) args.push('--prefect-venv', options.prefectVenv);
  if (options.ui) args.push('--ui');
  // A PostgreSQL cluster of its own for the server's database (python/stack.py), in place of SQLite.
  if (options.postgres) args.push('--postgres');
  if (options.home) args.push('--home', options.home);
  return spawnStack<LocalStack>(args, options.env);
}

/** Only moto, for running against a Prefect API the caller already has. */
export function startLocalMoto(): Promise<{ motoUrl: string; stop(): Promise<void> }> {
  return spawnStack<Pick<LocalStack, 'motoUrl'>>(['--no-prefect']);
}

async function spawnStack<T>(
  options: string[],
  env: Record<string, string> = {},
): Promise<T & { stop(): Promise<void> }> {
  const python = path.join(root, '.venv', 'bin', 'python');
  const args = [path.join(root, 'python', 'stack.py'), ...options];
  // Its own process group: a terminal's Ctrl-C reaches only the caller, which stops the servers last.
  const child = spawn(python, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, ...env },
  });

  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });

  const info = await new Promise<T>((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once('line', (line) => {
      try {
        resolve(JSON.parse(line) as T);
      } catch (err) {
        reject(
          new Error(`local stack printed something other than its JSON status: ${line}`, { cause: err }),
        );
      }
    });
    child.once('error', (err) =>
      reject(new Error(`cannot start ${python}; run 'npm run setup:python' first`, { cause: err })),
    );
    child.once('exit', (code) => reject(new Error(`local stack exited with code ${code}:\n${stderr}`)));
  });

  return { ...info, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.stdin?.end();
  });
}
