import type { RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import type { TaskDefinitionInfo } from '../render/run-task-request';

/**
 * What a warm Prepare function remembers of AWS between runs, for `LAUNCHER_AWS_CACHE_SECONDS` (default
 * 300): the subnets of a VPC (or of the default VPC), and the revision found or registered for a task
 * definition. Without it every run costs DescribeVpcs, DescribeSubnets and DescribeTaskDefinition; with it,
 * a burst of runs costs them once per warm container.
 *
 * Staleness is bounded and handled:
 * - a reused revision deregistered meanwhile makes RunTask fail with "TaskDefinition is inactive" (ECS does
 *   not run INACTIVE revisions: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html);
 *   the state machine then runs Prepare once more with `refreshTaskDefinition`, which skips this cache;
 * - a revision referenced by family alone (`task_definition_arn: my-family`) is never cached, so a newly
 *   registered revision is used at once; nor is a revision registered for one run (auto-deregistration);
 * - subnets removed from a VPC within the lifetime fail that run's RunTask with ECS's own error.
 *
 * Hand-written rather than a cache library: two small maps with a lifetime and a size bound are all it
 * needs, and each function bundle is kept small (docs/benchmarks.md).
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 500,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(key);
    // Oldest first out: Map iterates in insertion order.
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.entries.set(key, { value, expires: this.now() + this.ttlMs });
  }
}

export interface AwsCache {
  subnets: TtlCache<string[]>;
  taskDefinitions: TtlCache<TaskDefinitionInfo>;
  /**
   * Lookups under way, by key: concurrent Prepares in one process (the local stack runs many at once; a
   * Lambda container runs one at a time) share one AWS call instead of each making its own.
   */
  inFlight: Map<string, Promise<unknown>>;
}

export function createAwsCache(ttlSeconds: number, now?: () => number): AwsCache {
  return {
    subnets: new TtlCache(ttlSeconds * 1000, 100, now),
    taskDefinitions: new TtlCache(ttlSeconds * 1000, 500, now),
    inFlight: new Map(),
  };
}

/** `family:revision` or an ARN with a revision: a fixed revision, which may be cached (a bare family may not). */
export function isFixedRevision(ref: string): boolean {
  return /:\d+$/.test(ref);
}

/** A definition's cache key: its JSON with object keys sorted, so equal definitions share one entry. */
export function definitionKey(definition: RegisterTaskDefinitionCommandInput): string {
  return JSON.stringify(definition, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}
