import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { MiddlewareObj } from '@middy/core';
import type { Telemetry } from './telemetry';

/**
 * What every handler wraps itself in: the invocation's context (request id, cold start, function) on each
 * log line, with keys reset after the invocation, and the invocation's metrics flushed as one EMF line when
 * it ends, failed or not, plus Powertools' ColdStart metric.
 * https://docs.aws.amazon.com/powertools/typescript/latest/features/logger/#middyjs-middleware
 * https://docs.aws.amazon.com/powertools/typescript/latest/features/metrics/#middyjs-middleware
 */
export function telemetryMiddlewares(telemetry: Telemetry): MiddlewareObj[] {
  return [
    injectLambdaContext(telemetry.logger, { resetKeys: true }),
    logMetrics(telemetry.metrics, { captureColdStartMetric: true }),
  ];
}
