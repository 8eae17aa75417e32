// The launcher logs JSON lines at info and flushes EMF metrics after each local invocation; tests read state
// from Prefect and moto, not from logs. The tests of logs and metrics turn them back on.
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
