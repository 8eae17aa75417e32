// The launcher logs JSON lines at info; tests read state from Prefect and moto, not from logs.
process.env.LAUNCHER_LOG_LEVEL ??= 'error';
