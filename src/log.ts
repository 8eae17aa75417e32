/**
 * One JSON object per line on stdout/stderr, which CloudWatch Logs Insights parses without configuration.
 * Callers pass facts, never credentials: nothing here redacts.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const order = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof order;

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

export function createLogger(
  base: LogFields = {},
  options: { level?: Level; write?: (line: string, level: Level) => void } = {},
): Logger {
  // Resolved once, at cold start; children keep it.
  const requested = options.level ?? (process.env.LAUNCHER_LOG_LEVEL as Level | undefined);
  const level: Level = requested && requested in order ? requested : 'info';
  const min = order[level];
  const write =
    options.write ??
    ((line: string, level: Level) =>
      (level === 'error' ? process.stderr : process.stdout).write(`${line}\n`));
  const emit = (level: Level, message: string, fields?: LogFields) => {
    if (order[level] < min) return;
    const entry: LogFields = { time: new Date().toISOString(), level, message, ...base };
    for (const [k, v] of Object.entries(fields ?? {})) entry[k] = errorFields(v);
    write(JSON.stringify(entry), level);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, { ...options, level }),
  };
}
