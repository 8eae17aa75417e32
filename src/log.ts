import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';

/**
 * The launcher's logging interface, a thin facade over Powertools' Logger (src/telemetry.ts), which writes
 * one JSON object per line with the level, the service, the pool and, inside a Lambda, the invocation's
 * context. A child carries its fields in the facade rather than in a Powertools child logger: a field such
 * as the flow run id then belongs to one call path, never to the other runs an invocation handles at the
 * same time. Callers pass facts, never credentials: nothing here redacts.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/**
 * Only an error's name, message and cause: Powertools would also write its stack and every property of it,
 * and an SDK or HTTP error's properties may hold a request.
 */
function errorFields(value: unknown): unknown {
  if (value instanceof Error) {
    return {
      name: value.name,
      message: value.message,
      ...(value.cause ? { cause: errorFields(value.cause) } : {}),
    };
  }
  return value;
}

export function loggerOver(logger: PowertoolsLogger, base: LogFields = {}): Logger {
  const emit = (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: LogFields) => {
    const entry: LogFields = { ...base };
    for (const [k, v] of Object.entries(fields ?? {})) entry[k] = errorFields(v);
    logger[level](message, entry);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => loggerOver(logger, { ...base, ...fields }),
  };
}
