import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { CrashInput } from './launch/crash';
import type { DiagnosisCategory } from './launch/diagnosis';
import type { PollSummary } from './launch/poll';
import type { ReportAction } from './launch/report';

/**
 * The launcher's CloudWatch metrics, derived from what each function returns. Every metric carries the
 * `service` and `WorkPool` dimensions (src/telemetry.ts); the few broken down further (by cause, category or
 * ECS status) are also written without that extra dimension, so an alarm can watch the total. Names are
 * listed in docs/deploy.md ("Metrics and alarms") and read by serverless.yml's alarms and dashboard.
 */
export const METRIC = {
  polls: 'Polls',
  runsDue: 'RunsDue',
  runsClaimed: 'RunsClaimed',
  runsStarted: 'RunsStarted',
  runsNotClaimed: 'RunsNotClaimed',
  claimsFailed: 'ClaimsFailed',
  runsReturnedToScheduled: 'RunsReturnedToScheduled',
  runsStrandedPending: 'RunsStrandedPending',
  runsSwept: 'RunsSwept',
  runsCancelled: 'RunsCancelled',
  sweepFailures: 'SweepFailures',
  runsPrepared: 'RunsPrepared',
  launchFailures: 'LaunchFailures',
  runsCrashedAtLaunch: 'RunsCrashedAtLaunch',
  reportEvents: 'ReportEvents',
  runsCrashed: 'RunsCrashed',
  relaunchesStopped: 'RelaunchesStopped',
  runTaskLateness: 'RunTaskLateness',
  runNowCalls: 'RunNowCalls',
  runNowRefused: 'RunNowRefused',
} as const;

export const DIMENSION = { cause: 'Cause', category: 'Category', lastStatus: 'LastStatus' } as const;

const count = (metrics: Metrics, name: string, value: number) =>
  metrics.addMetric(name, MetricUnit.Count, value);

/** A count with one more dimension, written on its own EMF line since its dimensions differ. */
function countBy(metrics: Metrics, name: string, dimension: string, value: string) {
  const single = metrics.singleMetric();
  single.addDimension(dimension, value);
  single.addMetric(name, MetricUnit.Count, 1);
}

/** One poll: what it found due, what became of each run, and what its sweep did. */
export function recordPoll(metrics: Metrics, summary: PollSummary): void {
  const o = summary.outcomes;
  count(metrics, METRIC.polls, 1);
  count(metrics, METRIC.runsDue, summary.due);
  // Every run the server let the poll claim, whatever happened after the claim.
  count(
    metrics,
    METRIC.runsClaimed,
    o.started +
      o['already-started'] +
      o['late-claim'] +
      o['returned-to-scheduled'] +
      o['moved-on'] +
      o['stranded-pending'],
  );
  count(metrics, METRIC.runsStarted, o.started);
  count(metrics, METRIC.runsNotClaimed, o['not-claimed']);
  count(metrics, METRIC.claimsFailed, o['claim-failed']);
  count(metrics, METRIC.runsReturnedToScheduled, o['returned-to-scheduled']);
  count(metrics, METRIC.runsStrandedPending, o['stranded-pending']);
  const swept = summary.reconciled;
  if (swept) {
    count(metrics, METRIC.runsSwept, swept.resumed + swept.crashed + swept.restored + swept['task-stopped']);
    count(metrics, METRIC.runsCancelled, swept.cancelled);
    count(metrics, METRIC.sweepFailures, swept.failed);
  }
}

export function recordPrepared(metrics: Metrics): void {
  count(metrics, METRIC.runsPrepared, 1);
}

/**
 * The launch state machine's failure path: one launch failure, by the error its Catch caught (`ECS.` and
 * `Lambda.` prefixes dropped, as the state message does), and whether the run was ended Crashed.
 */
export function recordLaunchFailure(
  metrics: Metrics,
  input: CrashInput,
  action: 'crashed' | 'cancelled' | 'none',
): void {
  count(metrics, METRIC.launchFailures, 1);
  count(metrics, METRIC.runsCrashedAtLaunch, action === 'crashed' ? 1 : 0);
  const cause = (input.error?.Error ?? 'Unknown').replace(/^(ECS|Lambda)\./, '');
  countBy(metrics, METRIC.launchFailures, DIMENSION.cause, cause);
}

/** One ECS task state change: its status, and for a run it ended Crashed, whose problem the stop was. */
export function recordReportEvent(
  metrics: Metrics,
  lastStatus: string,
  action: ReportAction,
  category: () => DiagnosisCategory,
): void {
  // Another task in the cluster, not of a flow run of the pool (the second rule sends them all).
  if (action === 'ignored') return;
  count(metrics, METRIC.reportEvents, 1);
  if (action === 'relaunch-stopped') count(metrics, METRIC.relaunchesStopped, 1);
  countBy(metrics, METRIC.reportEvents, DIMENSION.lastStatus, lastStatus);
  if (action === 'crashed') {
    count(metrics, METRIC.runsCrashed, 1);
    countBy(metrics, METRIC.runsCrashed, DIMENSION.category, category());
  }
}

/** Seconds from a run's scheduled time to its task's creation (RunTask); below zero with a start lead. */
export function recordRunTaskLateness(metrics: Metrics, seconds: number): void {
  metrics.addMetric(METRIC.runTaskLateness, MetricUnit.Seconds, seconds);
}

/**
 * One run-now call: refused (no or a wrong token, a bad body), or served, with the runs it started counted
 * in `RunsStarted` beside the poll's.
 */
export function recordRunNow(metrics: Metrics, statusCode: number, started: number): void {
  count(metrics, METRIC.runNowCalls, 1);
  count(metrics, METRIC.runNowRefused, statusCode === 200 ? 0 : 1);
  count(metrics, METRIC.runsStarted, started);
}
