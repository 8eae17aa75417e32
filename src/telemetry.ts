import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';

/**
 * Powertools for AWS Lambda's Logger and Metrics, one pair per function (or per local stack). Both are made
 * before the function's configuration is parsed, because the middlewares (src/middleware.ts) need them
 * before the handler runs; the pool comes straight from LAUNCHER_WORK_POOL, which src/config.ts validates
 * at the same cold start.
 *
 * The log level comes from POWERTOOLS_LOG_LEVEL (or LOG_LEVEL, or Lambda's advanced logging controls), the
 * share of invocations that log at debug from POWERTOOLS_LOGGER_SAMPLE_RATE:
 * https://docs.aws.amazon.com/powertools/typescript/latest/features/logger/
 * Metrics go to stdout in CloudWatch's embedded metric format, which Lambda's log group turns into metrics:
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export interface Telemetry {
  logger: PowertoolsLogger;
  metrics: Metrics;
}

export const SERVICE_NAME = 'prefect-ecs-launcher';
export const METRICS_NAMESPACE = 'PrefectEcsLauncher';
/** The dimension every metric of the launcher carries besides `service`: one stage serves one pool. */
export const WORK_POOL_DIMENSION = 'WorkPool';

export function createTelemetry(env: Record<string, string | undefined> = process.env): Telemetry {
  const workPool = env.LAUNCHER_WORK_POOL?.trim();
  const logger = new PowertoolsLogger({
    serviceName: SERVICE_NAME,
    ...(workPool ? { persistentKeys: { workPool } } : {}),
  });
  const metrics = new Metrics({
    namespace: METRICS_NAMESPACE,
    serviceName: SERVICE_NAME,
    // Powertools' own warnings (e.g. an invocation that recorded nothing) become log lines like ours.
    logger,
    ...(workPool ? { defaultDimensions: { [WORK_POOL_DIMENSION]: workPool } } : {}),
  });
  return { logger, metrics };
}
