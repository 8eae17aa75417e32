import type { RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import { createAwsCache, definitionKey, isFixedRevision, TtlCache } from '../../src/launch/aws-cache';
import { cachedRenderIo } from '../../src/launch/prepare';
import {
  type PollReads,
  SNAPSHOT_MAX_AGE_SECONDS,
  SNAPSHOT_MAX_BYTES,
  snapshotOf,
  usableSnapshot,
} from '../../src/launch/snapshot';
import type { Deployment, Flow, FlowRun, State, WorkPool } from '../../src/prefect/types';
import type { RenderJobIo } from '../../src/render/render-job';

describe('TtlCache', () => {
  it('forgets an entry after its lifetime and keeps at most maxEntries, oldest out first', () => {
    let now = 0;
    const cache = new TtlCache<number>(1000, 2, () => now);
    cache.set('a', 1);
    now = 500;
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1);
    now = 800;
    cache.set('c', 3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
    now = 1500;
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')).toBe(3);
  });

  it('keeps nothing when the lifetime is 0 (LAUNCHER_AWS_CACHE_SECONDS=0)', () => {
    const cache = new TtlCache<number>(0);
    cache.set('a', 1);
    expect(cache.get('a')).toBeUndefined();
  });
});

describe('what may be cached', () => {
  it('a fixed revision may, a bare family may not', () => {
    expect(isFixedRevision('my-family:3')).toBe(true);
    expect(isFixedRevision('arn:aws:ecs:us-east-1:123456789012:task-definition/my-family:12')).toBe(true);
    expect(isFixedRevision('my-family')).toBe(false);
    expect(isFixedRevision('arn:aws:ecs:us-east-1:123456789012:task-definition/my-family')).toBe(false);
  });

  it('equal definitions share a key whatever their key order; different ones do not', () => {
    const a = { family: 'f', cpu: '256', containerDefinitions: [{ name: 'prefect', image: 'x' }] };
    const b = { containerDefinitions: [{ image: 'x', name: 'prefect' }], cpu: '256', family: 'f' };
    const c = { ...a, cpu: '512' };
    expect(definitionKey(a as RegisterTaskDefinitionCommandInput)).toBe(
      definitionKey(b as RegisterTaskDefinitionCommandInput),
    );
    expect(definitionKey(c as RegisterTaskDefinitionCommandInput)).not.toBe(
      definitionKey(a as RegisterTaskDefinitionCommandInput),
    );
  });
});

describe('cachedRenderIo', () => {
  function countingIo() {
    const calls: string[] = [];
    const io: RenderJobIo = {
      references: {} as RenderJobIo['references'],
      describeTaskDefinition: async (ref) => {
        calls.push(`describe ${ref}`);
        return { arn: `arn:${ref}` };
      },
      resolveTaskDefinition: async (definition, options) => {
        calls.push(`resolve ${definition.family} ${options.autoDeregister}`);
        return { arn: `arn:${definition.family}:1`, registered: false };
      },
      discoverSubnets: async (vpcId) => {
        calls.push(`subnets ${vpcId ?? 'default'}`);
        return ['subnet-1'];
      },
      assertSubnetsInVpc: async (vpcId) => {
        calls.push(`assert ${vpcId}`);
      },
    };
    return { io, calls };
  }
  const definition = { family: 'f', containerDefinitions: [] } as RegisterTaskDefinitionCommandInput;

  it('asks AWS once per warm container for subnets and an equal definition, and says the revision was cached', async () => {
    const { io, calls } = countingIo();
    const cache = createAwsCache(300);
    const first = cachedRenderIo(io, cache, false);
    await first.io.discoverSubnets(null);
    await first.io.assertSubnetsInVpc('vpc-1', ['subnet-2', 'subnet-1']);
    await first.io.resolveTaskDefinition(definition, { autoDeregister: false });
    expect(first.taskDefinitionCached()).toBe(false);

    const second = cachedRenderIo(io, cache, false);
    expect(await second.io.discoverSubnets(null)).toEqual(['subnet-1']);
    await second.io.assertSubnetsInVpc('vpc-1', ['subnet-1', 'subnet-2']);
    expect(await second.io.resolveTaskDefinition(definition, { autoDeregister: false })).toEqual({
      arn: 'arn:f:1',
      registered: false,
    });
    expect(second.taskDefinitionCached()).toBe(true);
    expect(calls).toEqual(['subnets default', 'assert vpc-1', 'resolve f false']);
  });

  it('shares one AWS call among concurrent lookups of the same thing', async () => {
    const { io, calls } = countingIo();
    const cache = createAwsCache(300);
    const lookups = Array.from({ length: 5 }, () => cachedRenderIo(io, cache, false));
    const revisions = await Promise.all(
      lookups.map(async ({ io: cached }) => {
        await cached.discoverSubnets(null);
        return cached.resolveTaskDefinition(definition, { autoDeregister: false });
      }),
    );
    expect(revisions.map((r) => r.arn)).toEqual(Array(5).fill('arn:f:1'));
    expect(calls).toEqual(['subnets default', 'resolve f false']);
  });

  it('asks ECS again on refresh, for a bare family, and for a revision registered for one run', async () => {
    const { io, calls } = countingIo();
    const cache = createAwsCache(300);
    for (const refresh of [false, true]) {
      const { io: cached, taskDefinitionCached } = cachedRenderIo(io, cache, refresh);
      await cached.resolveTaskDefinition(definition, { autoDeregister: false });
      await cached.resolveTaskDefinition(definition, { autoDeregister: true });
      await cached.describeTaskDefinition('family-only');
      expect(taskDefinitionCached()).toBe(false);
    }
    expect(calls).toEqual([
      'resolve f false',
      'resolve f true',
      'describe family-only',
      'resolve f false',
      'resolve f true',
      'describe family-only',
    ]);
  });
});

describe('the launch snapshot', () => {
  const pool = { id: 'p1', name: 'pool', type: 'ecs', base_job_template: {} } as unknown as WorkPool;
  const deployment = {
    id: 'd1',
    name: 'dep',
    flow_id: 'f1',
    updated: '2026-12-04T00:00:00Z',
    job_variables: { cpu: 512 },
    work_pool_name: 'pool',
    parameters: { secret: 'not for the snapshot' },
  } as unknown as Deployment;
  const flow = { id: 'f1', name: 'flow' } as Flow;
  const run = {
    id: 'r1',
    name: 'run',
    flow_id: 'f1',
    deployment_id: 'd1',
    work_pool_name: 'pool',
    parameters: { password: 'hunter2' },
    job_variables: {},
    tags: [],
  } as unknown as FlowRun;
  const claim = { type: 'PENDING', name: 'Pending' } as State;
  const readAt = new Date('2026-12-04T10:00:00Z');
  const reads: PollReads = {
    readAt,
    workPool: pool,
    deployments: new Map([['d1', deployment]]),
    flows: new Map([['f1', flow]]),
  };

  it('holds what rendering reads and never the parameters', () => {
    const snapshot = snapshotOf(run, claim, reads);
    expect(snapshot).toMatchObject({
      readAt: readAt.toISOString(),
      flowRun: { id: 'r1', state_type: 'PENDING' },
      deployment: { id: 'd1', job_variables: { cpu: 512 } },
      flow: { id: 'f1', name: 'flow' },
      workPool: { name: 'pool', type: 'ecs' },
    });
    expect(JSON.stringify(snapshot)).not.toContain('hunter2');
    expect(JSON.stringify(snapshot)).not.toContain('not for the snapshot');
  });

  it('is left out when the poll lacks a part of it, the run is in another pool, or it is too large', () => {
    expect(snapshotOf(run, claim, { ...reads, deployments: new Map() })).toBeUndefined();
    expect(snapshotOf(run, claim, { ...reads, flows: new Map() })).toBeUndefined();
    expect(snapshotOf({ ...run, work_pool_name: 'other' }, claim, reads)).toBeUndefined();
    const huge = {
      ...pool,
      base_job_template: { blob: 'x'.repeat(SNAPSHOT_MAX_BYTES) },
    } as unknown as WorkPool;
    expect(snapshotOf(run, claim, { ...reads, workPool: huge })).toBeUndefined();
    expect(snapshotOf({ ...run, deployment_id: null } as FlowRun, claim, reads)).toMatchObject({
      deployment: null,
    });
  });

  it('is used only for its own run and while recent', () => {
    const snapshot = snapshotOf(run, claim, reads);
    expect(usableSnapshot(snapshot, 'r1', new Date(readAt.getTime() + 5_000))).toBe(snapshot);
    expect(usableSnapshot(snapshot, 'r2', readAt)).toBeUndefined();
    const late = new Date(readAt.getTime() + (SNAPSHOT_MAX_AGE_SECONDS + 1) * 1000);
    expect(usableSnapshot(snapshot, 'r1', late)).toBeUndefined();
    expect(usableSnapshot(undefined, 'r1', readAt)).toBeUndefined();
    expect(usableSnapshot({ flowRun: { id: 'r1' } }, 'r1', readAt)).toBeUndefined();
  });
});
