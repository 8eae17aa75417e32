import fs from 'node:fs';
import path from 'node:path';
import { InvalidEventError } from '../../src/errors';
import { diagnoseStoppedTask } from '../../src/launch/diagnosis';
import { parseTaskStateChangeEvent } from '../../src/launch/events';
import { flowRunIdOfTask, flowRunIdOfWorkerTask, infrastructurePid } from '../../src/launch/report';

/** ECS Task State Change events as AWS documents them, one per case (test/fixtures/ecs-events). */
const dir = path.join(__dirname, '..', 'fixtures', 'ecs-events');
const PLACEHOLDER = '00000000-0000-4000-8000-000000000000';

function fixture(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8')) as Record<string, unknown>;
}

const names = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))
  .sort();

// What each STOPPED case means for the flow run: [crashed, failedToStart], and the state message's start.
const stoppedExpectations: Record<string, [boolean, boolean, string]> = {
  'stopped-exit-0': [false, false, 'ECS task stopped: Essential container in task exited'],
  'stopped-exit-1': [
    true,
    false,
    "The following containers stopped with a non-zero exit code: ['prefect']: ",
  ],
  'stopped-exit-137': [
    true,
    false,
    "The following containers stopped with a non-zero exit code: ['prefect']: the flow container 'prefect' ran out of memory",
  ],
  'stopped-user-initiated': [true, false, 'ECS task stopped: someone stopped the task'],
  'stopped-scale-in': [true, false, 'ECS task stopped: an ECS service scaled the task in'],
  'stopped-cannot-pull': [
    true,
    true,
    'Failed to submit flow run to infrastructure: TaskFailedToStart: The image does not exist',
  ],
  'stopped-no-capacity': [
    true,
    true,
    'Failed to submit flow run to infrastructure: TaskFailedToStart: No capacity could be found',
  ],
  'stopped-spot-interruption': [true, false, 'ECS task stopped: Spot capacity was reclaimed'],
  'foreign-service-task': [
    true,
    false,
    "The following containers stopped with a non-zero exit code: ['web']: ",
  ],
};

describe('ECS Task State Change fixtures', () => {
  it('has every case the report function handles', () => {
    expect(names).toEqual(
      [
        ...Object.keys(stoppedExpectations),
        'pending',
        'provisioning',
        'running',
        'worker-provisioning',
      ].sort(),
    );
  });

  it.each(names)('%s parses to its detail', (name) => {
    const event = fixture(name);
    const task = parseTaskStateChangeEvent(event);
    expect(task).toBe(event.detail);
    expect(task.taskArn).toMatch(/^arn:aws:ecs:us-east-1:123456789012:task\//);
    expect(infrastructurePid(task)).toBe(`${task.clusterArn}::${task.taskArn}`);
  });

  const others = ['foreign-service-task', 'worker-provisioning'];

  it.each(names)('%s maps to the flow run only when the launcher started it', (name) => {
    const task = parseTaskStateChangeEvent(fixture(name));
    expect(flowRunIdOfTask(task)).toBe(others.includes(name) ? null : PLACEHOLDER);
  });

  it.each(names)("%s maps to a worker's flow run only when the worker started it", (name) => {
    const task = parseTaskStateChangeEvent(fixture(name));
    expect(flowRunIdOfWorkerTask(task)).toBe(name === 'worker-provisioning' ? PLACEHOLDER : null);
  });

  it.each(Object.entries(stoppedExpectations))(
    '%s diagnoses as [crashed, failedToStart, message] = %j',
    (name, [crashed, failedToStart, message]) => {
      const d = diagnoseStoppedTask(parseTaskStateChangeEvent(fixture(name)));
      expect([d.crashed, d.failedToStart]).toEqual([crashed, failedToStart]);
      expect(d.message.startsWith(message)).toBe(true);
    },
  );

  it('flowRunIdOfTask ignores groups that only look like the launcher’s', () => {
    expect(flowRunIdOfTask({ group: 'prefect-flow-run:not-a-uuid' })).toBeNull();
    expect(flowRunIdOfTask({ group: `family:prefect-flow-run:${PLACEHOLDER}` })).toBeNull();
    expect(flowRunIdOfTask({})).toBeNull();
  });

  it("flowRunIdOfWorkerTask reads only a flow run id from the worker's override", () => {
    const env = (value: string) => ({
      group: 'family:prefect',
      overrides: {
        containerOverrides: [{ name: 'prefect', environment: [{ name: 'PREFECT__FLOW_RUN_ID', value }] }],
      },
    });
    expect(flowRunIdOfWorkerTask(env(PLACEHOLDER))).toBe(PLACEHOLDER);
    expect(flowRunIdOfWorkerTask(env('not-a-uuid'))).toBeNull();
    expect(flowRunIdOfWorkerTask(env(`${PLACEHOLDER}/../x`))).toBeNull();
    expect(flowRunIdOfWorkerTask({ group: 'family:prefect' })).toBeNull();
  });
});

describe('parseTaskStateChangeEvent rejects what is not an ECS Task State Change', () => {
  const valid = fixture('running');
  const detail = valid.detail as Record<string, unknown>;
  const { lastStatus: _dropped, ...withoutLastStatus } = detail;
  const cases: Array<[string, unknown]> = [
    ['missing detail', { ...valid, detail: undefined }],
    ['an S3 event', { ...valid, source: 'aws.s3', 'detail-type': 'Object Created' }],
    ['another ECS event type', { ...valid, 'detail-type': 'ECS Container Instance State Change' }],
    ['detail without lastStatus', { ...valid, detail: withoutLastStatus }],
    ['detail without taskArn', { ...valid, detail: { ...detail, taskArn: 42 } }],
    ['not an object', 'ECS Task State Change'],
    ['null', null],
  ];

  it.each(cases)('%s', (_label, event) => {
    let thrown: unknown;
    try {
      parseTaskStateChangeEvent(event);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidEventError);
    expect((thrown as Error).message).toContain(
      'expects an EventBridge "ECS Task State Change" event from aws.ecs with detail.taskArn, detail.clusterArn and detail.lastStatus',
    );
  });
});
