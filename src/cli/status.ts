/**
 * `prefect-ecs-launcher status`: is the launcher healthy, and what is it doing? With --stage, reads the
 * deployed stack from CloudFormation (its version, settings, work pool and state machine); then the pool,
 * its workers and queues, and its runs of the last hour from Prefect, and the launch executions from Step
 * Functions when the state machine is known; prints src/cli/status-report.ts's report.
 */
import { clientRegion, createCloudFormationClient, describeStack } from '../aws/cloudformation';
import { createSfnClient, listExecutions } from '../aws/sfn';
import { ConfigError } from '../errors';
import { type CliContext, type FlagSpec, PROGRAM, parseFlags, stringFlag } from './args';
import { connectPrefect } from './connect';
import {
  type ExecutionView,
  formatStatus,
  STATUS_RUN_LIMIT,
  type StackSection,
  stackSection,
  statusReport,
} from './status-report';

/**
 * serverless.yml's `service`: the Framework names a stage's stack `<service>-<stage>` (provider.stackName's
 * default): https://www.serverless.com/framework/docs/providers/aws/guide/serverless.yml
 */
const SERVICE = 'prefect-ecs-launcher';

const FLAGS: FlagSpec = {
  help: { type: 'boolean', short: 'h' },
  pool: { type: 'string' },
  since: { type: 'string' },
  stage: { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean' },
};

export const STATUS_HELP = `Usage: ${PROGRAM} status [--stage STAGE] [--region REGION] [--pool NAME]
       [--since MINUTES] [--json]

Shows the work pool's status, the launcher's last heartbeat, the pool's queues, and the pool's runs
expected from MINUTES ago on (default 60): waiting for their second, launching, running, cancelling and
crashed (with their ECS task and the crash message), and counts by state. With the launch state machine,
also the running launch executions and those that failed in that time.

With --stage, first reads the deployed CloudFormation stack ${SERVICE}-STAGE and shows its
status, last update, launcher version and settings (its parameters); the pool is then the stack's WorkPool
unless --pool, and the state machine its LaunchStateMachineArn output. Without it, the pool is --pool or
LAUNCHER_WORK_POOL and the state machine LAUNCHER_STATE_MACHINE_ARN (the local stack's, for example).

  ${PROGRAM} status --stage prod --region eu-west-1

The launcher's name is LAUNCHER_WORKER_NAME or '${SERVICE} <pool>'. Connects to
PREFECT_API_URL with PREFECT_API_KEY, PREFECT_API_AUTH_STRING or their *_SECRET_ARN; CloudFormation and
Step Functions in --region, AWS_REGION or the SDK's default, with your AWS credentials
(cloudformation:DescribeStacks on the stack, states:ListExecutions on the state machine; AWS_ENDPOINT_URL
for the local stack's moto). --json prints the report as JSON for scripts.
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
  const sinceRaw = stringFlag(parsed, 'since') ?? '60';
  const sinceMinutes = Number(sinceRaw);
  if (!Number.isInteger(sinceMinutes) || sinceMinutes < 1 || sinceMinutes > 10080) {
    throw new ConfigError(
      `--since must be a whole number of minutes from 1 to 10080, got ${JSON.stringify(sinceRaw)}`,
    );
  }
  const region = stringFlag(parsed, 'region') ?? ctx.env.AWS_REGION ?? ctx.env.AWS_DEFAULT_REGION;
  const stage = stringFlag(parsed, 'stage');
  const stack = stage === undefined ? undefined : await readStack(stage, region);
  const pool = stringFlag(parsed, 'pool') ?? stack?.settings.WorkPool ?? ctx.env.LAUNCHER_WORK_POOL;
  if (!pool) {
    throw new ConfigError('status needs the work pool: --pool NAME, --stage STAGE or LAUNCHER_WORK_POOL');
  }
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
  const stateMachineArn = stack ? stack.stateMachineArn : ctx.env.LAUNCHER_STATE_MACHINE_ARN;
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
    ...(stack ? { stack } : {}),
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

/** The stage's stack as the report shows it; a stack that is not there is a setting to fix, named. */
async function readStack(stage: string, region: string | undefined): Promise<StackSection> {
  // CloudFormation's stack names: a letter, then letters, digits and hyphens, 128 at most.
  if (!/^[A-Za-z0-9-]+$/.test(stage) || SERVICE.length + 1 + stage.length > 128) {
    throw new ConfigError(
      `--stage must be letters, digits and hyphens (the stage given to serverless deploy), got ${JSON.stringify(stage)}`,
    );
  }
  const cloudformation = createCloudFormationClient(region ? { region } : {});
  const stackName = `${SERVICE}-${stage}`;
  const [facts, where] = await Promise.all([
    describeStack(cloudformation, stackName),
    clientRegion(cloudformation),
  ]);
  if (!facts) {
    throw new ConfigError(`no stack ${stackName} in ${where}; deploy it or check --stage/--region`);
  }
  return stackSection(facts, where);
}
