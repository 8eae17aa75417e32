import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { PollSummary } from '../../src/launch/poll';
import { loggerOver } from '../../src/log';
import { recordLaunchFailure, recordPoll, recordReportEvent, recordRunTaskLateness } from '../../src/metrics';
import { telemetryMiddlewares } from '../../src/middleware';
import { createTelemetry } from '../../src/telemetry';
import { jsonLinesOf } from '../harness/capture-output';

interface Emf {
  _aws: {
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }[];
  };
  [key: string]: unknown;
}

const saved = process.env.POWERTOOLS_METRICS_DISABLED;
beforeEach(() => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
});
afterEach(() => {
  process.env.POWERTOOLS_METRICS_DISABLED = saved;
});

/** The EMF documents written while `fn` runs. */
async function emfOf(fn: () => unknown): Promise<Emf[]> {
  return (await jsonLinesOf(fn)).filter((l) => '_aws' in l) as unknown as Emf[];
}

/** Each metric as `name{dimension=value,…} = value`, the way CloudWatch files it. */
function metricsOf(documents: Emf[]): string[] {
  return documents.flatMap((doc) =>
    doc._aws.CloudWatchMetrics.flatMap((directive) => {
      expect(directive.Namespace).toBe('PrefectEcsLauncher');
      return directive.Metrics.flatMap((m) =>
        directive.Dimensions.map(
          (set) =>
            `${m.Name}{${set.map((d) => `${d}=${doc[d]}`).join(',')}} = ${JSON.stringify(doc[m.Name])}`,
        ),
      );
    }),
  );
}

const summary: PollSummary = {
  due: 7,
  outcomes: {
    started: 2,
    'already-started': 1,
    'not-claimed': 1,
    'late-claim': 0,
    'returned-to-scheduled': 1,
    'moved-on': 0,
    'stranded-pending': 1,
    'claim-failed': 1,
  },
  reconciled: { runs: 9, resumed: 1, crashed: 2, restored: 0, cancelled: 3, 'task-stopped': 1, failed: 0 },
};
const pool = '{service=prefect-ecs-launcher,WorkPool=pool-a}';

describe('metrics in EMF', () => {
  it("writes a poll's counts with the service and WorkPool dimensions, in one document", async () => {
    const { metrics } = createTelemetry({ LAUNCHER_WORK_POOL: 'pool-a' });
    const documents = await emfOf(() => {
      recordPoll(metrics, summary);
      metrics.publishStoredMetrics();
    });
    expect(documents).toHaveLength(1);
    expect(metricsOf(documents).sort()).toEqual(
      [
        `ClaimsFailed${pool} = 1`,
        `Polls${pool} = 1`,
        `RunsCancelled${pool} = 3`,
        `RunsClaimed${pool} = 5`,
        `RunsDue${pool} = 7`,
        `RunsNotClaimed${pool} = 1`,
        `RunsReturnedToScheduled${pool} = 1`,
        `RunsStarted${pool} = 2`,
        `RunsStrandedPending${pool} = 1`,
        `RunsSwept${pool} = 4`,
        `SweepFailures${pool} = 0`,
      ].sort(),
    );
    expect(documents[0]?._aws.CloudWatchMetrics[0]?.Metrics).toContainEqual({
      Name: 'RunsDue',
      Unit: 'Count',
    });
  });

  it('writes launch failures by cause, crashes by category, report events by status and the lateness', async () => {
    const { metrics } = createTelemetry({ LAUNCHER_WORK_POOL: 'pool-a' });
    const documents = await emfOf(() => {
      recordLaunchFailure(
        metrics,
        { flowRunId: 'x', error: { Error: 'ECS.ClusterNotFoundException', Cause: '' } },
        'crashed',
      );
      recordReportEvent(metrics, 'STOPPED', 'crashed', () => 'capacity');
      recordReportEvent(metrics, 'RUNNING', 'pid-set', () => {
        throw new Error('not asked for a run that did not crash');
      });
      recordReportEvent(metrics, 'PROVISIONING', 'relaunch-stopped', () => 'unknown');
      recordReportEvent(metrics, 'STOPPED', 'ignored', () => 'unknown');
      recordRunTaskLateness(metrics, -4.5);
      metrics.publishStoredMetrics();
    });
    const written = metricsOf(documents);
    expect(written).toEqual(
      expect.arrayContaining([
        `LaunchFailures{service=prefect-ecs-launcher,WorkPool=pool-a,Cause=ClusterNotFoundException} = 1`,
        `ReportEvents{service=prefect-ecs-launcher,WorkPool=pool-a,LastStatus=STOPPED} = 1`,
        `ReportEvents{service=prefect-ecs-launcher,WorkPool=pool-a,LastStatus=RUNNING} = 1`,
        `ReportEvents{service=prefect-ecs-launcher,WorkPool=pool-a,LastStatus=PROVISIONING} = 1`,
        `RunsCrashed{service=prefect-ecs-launcher,WorkPool=pool-a,Category=capacity} = 1`,
        // The totals an alarm watches, and the lateness, in the invocation's document.
        `LaunchFailures${pool} = 1`,
        `RunsCrashedAtLaunch${pool} = 1`,
        `ReportEvents${pool} = [1,1,1]`,
        `RelaunchesStopped${pool} = 1`,
        `RunsCrashed${pool} = 1`,
        `RunTaskLateness${pool} = -4.5`,
      ]),
    );
    const lateness = documents.flatMap((d) => d._aws.CloudWatchMetrics[0]?.Metrics ?? []);
    expect(lateness).toContainEqual({ Name: 'RunTaskLateness', Unit: 'Seconds' });
  });

  it("flushes an invocation's metrics through the middleware, with Powertools' ColdStart", async () => {
    // Lambda sets it; Powertools counts a cold start only then.
    process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';
    const telemetry = createTelemetry({ LAUNCHER_WORK_POOL: 'pool-a' });
    delete process.env.AWS_LAMBDA_INITIALIZATION_TYPE;
    const handler = middy()
      .use(telemetryMiddlewares(telemetry))
      .handler(async () => recordPoll(telemetry.metrics, summary));
    const documents = await emfOf(() =>
      handler({}, { functionName: 'prefect-ecs-launcher-dev-poll', awsRequestId: 'r' } as Context),
    );
    const written = metricsOf(documents);
    expect(written).toContain(`RunsDue${pool} = 7`);
    expect(written).toContain(
      'ColdStart{service=prefect-ecs-launcher,WorkPool=pool-a,function_name=prefect-ecs-launcher-dev-poll} = 1',
    );
  });

  it('writes nothing when POWERTOOLS_METRICS_DISABLED is set, as in the tests and the benchmark', async () => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const { metrics, logger } = createTelemetry({ LAUNCHER_WORK_POOL: 'pool-a' });
    loggerOver(logger);
    const documents = await emfOf(() => {
      recordPoll(metrics, summary);
      metrics.publishStoredMetrics();
    });
    expect(documents).toEqual([]);
  });
});
