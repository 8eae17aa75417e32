import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { loggerOver } from '../../src/log';
import { telemetryMiddlewares } from '../../src/middleware';
import { createTelemetry } from '../../src/telemetry';
import { jsonLinesOf } from '../harness/capture-output';

const saved = { level: process.env.POWERTOOLS_LOG_LEVEL, metrics: process.env.POWERTOOLS_METRICS_DISABLED };
afterEach(() => {
  process.env.POWERTOOLS_LOG_LEVEL = saved.level;
  process.env.POWERTOOLS_METRICS_DISABLED = saved.metrics;
});

describe('the logger (Powertools behind the launcher facade)', () => {
  it('writes one JSON object per line with the service and pool, errors flattened with their cause', async () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
    const log = loggerOver(createTelemetry({ LAUNCHER_WORK_POOL: 'pool-a' }).logger);
    const [line] = await jsonLinesOf(() =>
      log.info('hello', { error: new Error('outer', { cause: new Error('inner') }) }),
    );
    expect(line).toMatchObject({
      level: 'INFO',
      message: 'hello',
      service: 'prefect-ecs-launcher',
      workPool: 'pool-a',
      error: { name: 'Error', message: 'outer', cause: { message: 'inner' } },
    });
    // No stack or other property of an error reaches the log.
    expect(JSON.stringify(line)).not.toContain('stack');
  });

  it("keeps a child's fields to the child", async () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
    const log = loggerOver(createTelemetry({ LAUNCHER_WORK_POOL: 'p' }).logger);
    const lines = await jsonLinesOf(() => {
      log.child({ flowRunId: 'run-1' }).child({ step: 'reconcile' }).info('child');
      log.info('parent');
    });
    expect(lines[0]).toMatchObject({ message: 'child', flowRunId: 'run-1', step: 'reconcile' });
    expect(lines[1]?.flowRunId).toBeUndefined();
  });

  it('takes its level from POWERTOOLS_LOG_LEVEL when it is made', async () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'WARN';
    const log = loggerOver(createTelemetry({}).logger);
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    const lines = await jsonLinesOf(() => {
      log.info('dropped');
      log.warn('kept');
    });
    expect(lines.map((l) => l.message)).toEqual(['kept']);
  });

  it("adds the invocation's context and cold start through the middleware", async () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    // Lambda sets it; Powertools reports a cold start only then.
    process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';
    const telemetry = createTelemetry({ LAUNCHER_WORK_POOL: 'p' });
    delete process.env.AWS_LAMBDA_INITIALIZATION_TYPE;
    const log = loggerOver(telemetry.logger);
    const handler = middy()
      .use(telemetryMiddlewares(telemetry))
      .handler(async () => {
        log.child({ flowRunId: 'run-1' }).info('inside');
      });
    const context = (id: string) =>
      ({
        functionName: 'prefect-ecs-launcher-dev-poll',
        awsRequestId: id,
        invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:prefect-ecs-launcher-dev-poll',
        memoryLimitInMB: '256',
      }) as Context;
    const lines = await jsonLinesOf(async () => {
      await handler({}, context('r-1'));
      await handler({}, context('r-2'));
    });
    const inside = lines.filter((l) => l.message === 'inside');
    expect(inside).toEqual([
      expect.objectContaining({
        function_request_id: 'r-1',
        cold_start: true,
        function_name: 'prefect-ecs-launcher-dev-poll',
        workPool: 'p',
        flowRunId: 'run-1',
      }),
      expect.objectContaining({ function_request_id: 'r-2', cold_start: false }),
    ]);
  });
});
