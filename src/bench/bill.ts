/**
 * An estimated AWS bill for each side, from what the benchmark measured and AWS's published on-demand prices
 * in us-east-1, read on 2026-12-03. Free tiers are left out (they would make the launcher's figures 0 for most
 * users), and so are costs both sides share: the flow runs' own ECS tasks, CloudWatch Logs, data transfer.
 * Pure.
 */
export const PRICES = {
  readOn: '2026-12-03',
  region: 'us-east-1',
  /** https://aws.amazon.com/lambda/pricing/ (x86: $0.20 per 1M requests, $0.0000166667 per GB-second). */
  lambdaPerRequest: 0.2 / 1e6,
  lambdaPerGbSecond: 0.0000166667,
  /** https://aws.amazon.com/step-functions/pricing/ (Standard: $0.025 per 1,000 state transitions). */
  stepFunctionsPerTransition: 0.025 / 1000,
  /** https://aws.amazon.com/eventbridge/pricing/ (Scheduler: $1.00 per 1M invocations; AWS service events to the default bus are free). */
  schedulerPerInvocation: 1 / 1e6,
  /** https://aws.amazon.com/secrets-manager/pricing/ ($0.40 per secret per month, $0.05 per 10,000 API calls). */
  secretPerMonth: 0.4,
  /** https://aws.amazon.com/fargate/pricing/ (Linux/x86: $0.04048 per vCPU-hour, $0.004445 per GB-hour). */
  fargatePerVcpuHour: 0.04048,
  fargatePerGbHour: 0.004445,
  /** https://aws.amazon.com/vpc/pricing/ (a public IPv4 address: $0.005 per hour). */
  publicIpv4PerHour: 0.005,
} as const;

export type Prices = typeof PRICES;

/** Hours in the month the estimates use (AWS's pricing examples use 730). */
export const HOURS_PER_MONTH = 730;

/** One Lambda function's invocations during a measurement. */
export interface Invocations {
  count: number;
  /** Their summed duration in ms, measured in-process (Lambda bills each invocation's duration to the ms). */
  totalMs: number;
}

export interface LauncherUsage {
  runs: number;
  /** The memory every function is deployed with (serverless.yml `provider.memorySize`). */
  memoryMb: number;
  /** Polls that found runs due (the schedule invokes the poll anyway: only their extra time is the runs'). */
  busyPolls: Invocations;
  prepare: Invocations;
  report: Invocations;
  /** Step Functions state transitions of all the runs' executions. */
  transitions: number;
  /** The median duration of a poll with nothing due, in ms. */
  idlePollMs: number;
  /** How often the schedule invokes the poll when deployed (serverless.yml: every minute). */
  pollsPerHour: number;
}

export interface Bill {
  /** USD for launching 1,000 runs, on top of the idle month. */
  per1000Runs: number;
  /** USD for a month in which no run is launched. */
  idleMonth: number;
  /** What each figure is made of, for the record. */
  lines: Record<string, number>;
}

function lambdaCost(invocations: Invocations, memoryMb: number, prices: Prices): number {
  const gbSeconds = (invocations.totalMs / 1000) * (memoryMb / 1024);
  return invocations.count * prices.lambdaPerRequest + gbSeconds * prices.lambdaPerGbSecond;
}

/**
 * The launcher: per 1,000 runs, every function invocation and state transition the measured runs caused,
 * scaled; per idle month, the scheduled polls (each as long as a measured idle poll), their schedule and the
 * credential's secret.
 */
export function launcherBill(usage: LauncherUsage, prices: Prices = PRICES): Bill {
  const scale = 1000 / usage.runs;
  const lines: Record<string, number> = {
    'poll Lambda beyond idle polls (per 1,000 runs)':
      Math.max(0, usage.busyPolls.totalMs - usage.busyPolls.count * usage.idlePollMs) *
      (usage.memoryMb / 1024 / 1000) *
      prices.lambdaPerGbSecond *
      scale,
    'Prepare Lambda (per 1,000 runs)': lambdaCost(usage.prepare, usage.memoryMb, prices) * scale,
    'report Lambda (per 1,000 runs)': lambdaCost(usage.report, usage.memoryMb, prices) * scale,
    'Step Functions transitions (per 1,000 runs)':
      usage.transitions * prices.stepFunctionsPerTransition * scale,
  };
  const polls = usage.pollsPerHour * HOURS_PER_MONTH;
  const idle: Record<string, number> = {
    'idle polls (per month)': lambdaCost(
      { count: polls, totalMs: polls * usage.idlePollMs },
      usage.memoryMb,
      prices,
    ),
    'schedule invocations (per month)': polls * prices.schedulerPerInvocation,
    'credential secret (per month)': prices.secretPerMonth,
  };
  const sum = (values: Record<string, number>) => Object.values(values).reduce((a, b) => a + b, 0);
  return { per1000Runs: sum(lines), idleMonth: sum(idle), lines: { ...lines, ...idle } };
}

/**
 * The resident worker's task, as the worker guide deploys it (0.5 vCPU, 1 GB on Fargate), with a public IP: it
 * must reach the Prefect API and pull its image, and a public IP is the cheaper way out (a NAT gateway costs
 * more by the hour).
 */
export interface WorkerTask {
  vcpu: number;
  memoryGb: number;
  publicIp: boolean;
}

export const GUIDE_WORKER_TASK: WorkerTask = { vcpu: 0.5, memoryGb: 1, publicIp: true };

/**
 * The resident worker: paid by the hour whether or not it launches anything, so a run adds nothing measurable
 * and the idle month is the whole bill.
 */
export function workerBill(task: WorkerTask = GUIDE_WORKER_TASK, prices: Prices = PRICES): Bill {
  const lines: Record<string, number> = {
    'Fargate vCPU (per month)': task.vcpu * prices.fargatePerVcpuHour * HOURS_PER_MONTH,
    'Fargate memory (per month)': task.memoryGb * prices.fargatePerGbHour * HOURS_PER_MONTH,
    'public IPv4 (per month)': task.publicIp ? prices.publicIpv4PerHour * HOURS_PER_MONTH : 0,
  };
  return { per1000Runs: 0, idleMonth: Object.values(lines).reduce((a, b) => a + b, 0), lines };
}
