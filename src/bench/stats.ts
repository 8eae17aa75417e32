/**
 * The benchmark's pure arithmetic: percentiles, lateness summaries, request classification and the printed
 * table. Nothing here does I/O.
 */

/** The p-th percentile (0–100) of `values`, linearly interpolated between closest ranks; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lo = sorted[low] as number;
  const hi = sorted[high] as number;
  return lo + (hi - lo) * (rank - low);
}

/** How each RunTask call stood against its run's scheduled time, in seconds (negative = early). */
export interface LatenessSummary {
  count: number;
  p50: number;
  p95: number;
  max: number;
  /** The earliest call: the most negative lateness (or the least late one when none was early). */
  min: number;
  /** RunTask calls made before their run's scheduled time. */
  early: number;
}

export function summarizeLateness(seconds: readonly number[]): LatenessSummary {
  return {
    count: seconds.length,
    p50: percentile(seconds, 50),
    p95: percentile(seconds, 95),
    max: seconds.length ? Math.max(...seconds) : Number.NaN,
    min: seconds.length ? Math.min(...seconds) : Number.NaN,
    early: seconds.filter((s) => s < 0).length,
  };
}

/**
 * A proxy route (`POST /work_pools/bench-a1/get_scheduled_flow_runs`, ids already `{id}`) with the
 * scenario's own names replaced by placeholders, so counts of different scenarios line up.
 */
export function templateRoute(route: string, names: Readonly<Record<string, string>>): string {
  const byName = new Map(Object.entries(names).map(([placeholder, name]) => [name, placeholder]));
  const space = route.indexOf(' ');
  const segments = route.slice(space + 1).split('/');
  const templated = segments.map((segment) => {
    let decoded = segment;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      // Not percent-encoded text: compare it as it is.
    }
    const placeholder = byName.get(decoded);
    return placeholder ? `{${placeholder}}` : segment;
  });
  return `${route.slice(0, space + 1)}${templated.join('/')}`;
}

/**
 * Routes that exist only as WebSocket endpoints: the worker's channel and its events stream. The counting
 * proxy forwards plain HTTP only, so these handshakes fail and the worker uses its REST fallback.
 */
export function isWebSocketRoute(route: string): boolean {
  return /^GET \/(events\/in|events\/out|work_pools\/[^/]+\/workers\/connect)$/.test(route);
}

/**
 * The flow run a RunTask request starts: the `PREFECT__FLOW_RUN_ID` of a container override (both the worker
 * and the launcher set it), else the launcher's task group `prefect-flow-run:<id>`.
 */
export function flowRunIdOfRunTask(body: string): string | undefined {
  let request: unknown;
  try {
    request = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!request || typeof request !== 'object') return undefined;
  const { overrides, group } = request as {
    overrides?: { containerOverrides?: { environment?: { name?: string; value?: string }[] }[] };
    group?: unknown;
  };
  for (const container of overrides?.containerOverrides ?? []) {
    const id = container.environment?.find((e) => e.name === 'PREFECT__FLOW_RUN_ID')?.value;
    if (id) return id;
  }
  if (typeof group === 'string' && group.startsWith('prefect-flow-run:')) {
    return group.slice('prefect-flow-run:'.length);
  }
  return undefined;
}

/** Counts of `keys`, largest first (ties by key), as a plain object for JSON. */
export function tally(keys: Iterable<string>): Record<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

/** A fixed-width text table: the first row is the header; columns after the first are right-aligned. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const [header, ...body] = rows;
  if (!header) return '';
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...body.map(line)].join('\n');
}

/** Seconds with one decimal and a sign for negatives, or `–` when undefined. */
export function seconds(value: number): string {
  return Number.isFinite(value) ? value.toFixed(1) : '–';
}
