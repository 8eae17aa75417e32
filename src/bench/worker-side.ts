import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { keepLastLines } from '../local/child-output';
import { BENCH_AWS, type RunningSide, type Side, type SideContext } from './side';

const root = path.resolve(__dirname, '..', '..');

/**
 * prefect-aws's resident ECS worker (`prefect worker start --type ecs`) from the project's virtualenv, with
 * its poll interval and look-ahead set through PREFECT_WORKER_QUERY_SECONDS and
 * PREFECT_WORKER_PREFETCH_SECONDS (../shared/reference/prefect-ecs-worker.md §1.3), the Prefect API and
 * boto3's endpoint (AWS_ENDPOINT_URL) pointed at the counting proxies. Its own PREFECT_HOME, so no profile
 * of this machine leaks in.
 */
export function workerSide(): Side {
  return {
    name: 'worker',
    describe: ({ pollSeconds, lookaheadSeconds }) => ({
      PREFECT_WORKER_QUERY_SECONDS: pollSeconds,
      PREFECT_WORKER_PREFETCH_SECONDS: lookaheadSeconds,
      'other settings': 'defaults (heartbeat 30 s, no --limit, no SQS queue for the observer)',
    }),
    start: startWorker,
  };
}

async function startWorker(context: SideContext): Promise<RunningSide> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-worker-'));
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(PREFECT_|AWS_)/.test(name)),
  );
  const env = {
    ...inherited,
    PREFECT_HOME: home,
    PREFECT_API_URL: context.prefectApiUrl,
    PREFECT_WORKER_QUERY_SECONDS: String(context.pollSeconds),
    PREFECT_WORKER_PREFETCH_SECONDS: String(context.lookaheadSeconds),
    AWS_ENDPOINT_URL: context.awsEndpoint,
    AWS_DEFAULT_REGION: BENCH_AWS.region,
    AWS_ACCESS_KEY_ID: BENCH_AWS.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: BENCH_AWS.credentials.secretAccessKey,
  };
  const prefect = path.join(root, '.venv', 'bin', 'prefect');
  const args = [
    'worker',
    'start',
    '--type',
    'ecs',
    '--pool',
    context.pool,
    '--name',
    `bench ${context.pool}`,
  ];
  // Its own process group, so stopping it stops whatever it started.
  const child = spawn(prefect, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = keepLastLines(child, 30);
  let stopping = false;
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      exit = `cannot start ${prefect}: ${err.message}; run 'npm run setup:python' first`;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exit = `the worker exited (${signal ?? `code ${code}`}); its last output:\n  ${output.join('\n  ')}`;
      resolve();
    });
  });

  return {
    failure: () => (stopping ? undefined : exit),
    problems: () =>
      output.filter((line) => /\| (ERROR|CRITICAL) /.test(line) && !/EventsWorker/.test(line)).slice(-5),
    facts: () => ({}),
    stop: async () => {
      stopping = true;
      if (!exit) {
        // SIGINT is Ctrl-C, which the worker handles by finishing its loops.
        signalGroup(child, 'SIGINT');
        const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-(child.pid as number), signal);
  } catch {
    // Already gone.
  }
}
