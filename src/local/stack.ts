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
 * Starts the Prefect server and moto from the project's virtualenv; `env` adds to their environment (e.g.
 * PREFECT_SERVER_API_AUTH_STRING for a server that requires basic auth). The Python side lives exactly as long
 * as its stdin stays open, so the servers go away with this process even when it is killed.
 */
export function startLocalStack(
  options: { ui?: boolean; home?: string; env?: Record<string, string> } = {},
): Promise<RunningStack> {
  const args: string[] = [];
  if (options.ui) args.push('--ui');
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
