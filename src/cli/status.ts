/**
 * `prefect-ecs-launcher status`: is the launcher healthy, and what is it doing? Reads the pool, its workers
 * and queues, and its runs of the last hour from Prefect, and, with LAUNCHER_STATE_MACHINE_ARN, the launch
 * executions from Step Functions; prints src/cli/status-report.ts's report.
 */
import { createSfnClient, listExecutions } from '../aws/sfn';
import { ConfigError } from '../errors';
import { type CliContext, type FlagSpec, PROGRAM, parseFlags, stringFlag } from './args';
import { connectPrefect } from './connect';
import { type ExecutionView, formatStatus, STATUS_RUN_LIMIT, statusReport } from './status-report';

const FLAGS: FlagSpec = {
  help: { type: 'boolean', short: 'h' },
  pool: { type: 'string' },
  since: { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean' },
};

export const STATUS_HELP = `Usage: ${PROGRAM} status [--pool NAME] [--since MINUTES] [--region REGION] [--json]

Shows the work pool's status, the launcher's last heartbeat, the pool's queues, and the pool's runs
expected from MINUTES ago on (default 60): waiting for their second, launching, running, cancelling and
crashed (with their ECS task and the crash message), and counts by state. With LAUNCHER_STATE_MACHINE_ARN
(the deployed stack's output LaunchStateMachineArn, or the local stack's), also the running launch executions
and those that failed in that time.

The pool is --pool or LAUNCHER_WORK_POOL; the launcher's name LAUNCHER_WORKER_NAME or
'prefect-ecs-launcher <pool>'. Connects to PREFECT_API_URL with PREFECT_API_KEY, PREFECT_API_AUTH_STRING
or their *_SECRET_ARN; Step Functions in --region, AWS_REGION or the SDK's default (AWS_ENDPOINT_URL for
the local stack's moto). --json prints the report as JSON for scripts.
`;

export async function statusCommand(args: string[], ctx: CliContext): Promise<number> {
  const parsed = parseFlags(args, FLAGS, 'status');
  if (parsed.values.help) {
    ctx.stdout.write(STATUS_HELP);
    return 0;
  }
  if (parsed.positionals.length) {
    throw new ConfigError(`status takes no arguments, got ${JSON.stringify(parsed.positionals[0])}`);
  }
  const pool = stringFlag(parsed, 'pool') ?? ctx.env.LAUNCHER_WORK_POOL;
  if (!pool) throw new ConfigError('status needs the work pool: --pool NAME or LAUNCHER_WORK_POOL');
  const sinceRaw = stringFlag(parsed, 'since') ?? '60';
  const sinceMinutes = Number(sinceRaw);
  if (!Number.isInteger(sinceMinutes) || sinceMinutes < 1 || sinceMinutes > 10080) {
    throw new ConfigError(
      `--since must be a whole number of minutes from 1 to 10080, got ${JSON.stringify(sinceRaw)}`,
    );
  }
  const region = stringFlag(parsed, 'region') ?? ctx.env.AWS_REGION ?? ctx.env.AWS_DEFAULT_REGION;
  const now = new Date();
  const since = new Date(now.getTime() - sinceMinutes * 60_000);

  const { prefect, connection } = await connectPrefect(ctx.env, region);
  const workPool = await prefect.readWorkPool(pool);
  if (!workPool) throw new ConfigError(`work pool '${pool}' does not exist at ${connection.apiUrl}`);
  const [workers, queues, runs] = await Promise.all([
    prefect.filterWorkers(pool),
    prefect.filterWorkQueues(pool),
    prefect.filterFlowRuns({
      work_pools: { name: { any_: [pool] } },
      flow_runs: { expected_start_time: { after_: since.toISOString() } },
      sort: 'EXPECTED_START_TIME_DESC',
      limit: STATUS_RUN_LIMIT,
    }),
  ]);

  let executions: ExecutionView[] | undefined;
  const stateMachineArn = ctx.env.LAUNCHER_STATE_MACHINE_ARN;
  if (stateMachineArn) {
    const sfn = createSfnClient(region ? { region } : {});
    const [running, failed] = await Promise.all([
      listExecutions(sfn, stateMachineArn, 'RUNNING'),
      listExecutions(sfn, stateMachineArn, 'FAILED'),
    ]);
    executions = [
      ...running.map((e) => ({ name: e.name ?? '', status: 'RUNNING' })),
      ...failed
        .filter((e) => e.stopDate && e.stopDate >= since)
        .map((e) => ({ name: e.name ?? '', status: 'FAILED', stopDate: e.stopDate?.toISOString() })),
    ];
  }

  const report = statusReport({
    pool: workPool,
    workerName: ctx.env.LAUNCHER_WORKER_NAME ?? `prefect-ecs-launcher ${pool}`,
    workers,
    queues,
    runs,
    ...(executions ? { executions } : {}),
    now,
    sinceMinutes,
  });
  ctx.stdout.write(parsed.values.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
  return 0;
}
