import fs from 'node:fs';
import path from 'node:path';
import type { Task } from '@aws-sdk/client-ecs';
import { toCamelCase } from '../../src/launch/casing';
import { type DiagnosisCategory, diagnoseStoppedTask, MAX_STATE_MESSAGE } from '../../src/launch/diagnosis';
import { describeLaunchFailure } from '../../src/launch/failure';

/**
 * Every stop collected from AWS's documentation and users' public reports (test/fixtures/ecs-events/real,
 * sources in its README): the diagnosis must name the real cause and what to do.
 */
const dir = path.join(__dirname, '..', 'fixtures', 'ecs-events', 'real');

interface Fixture {
  source: string[];
  verbatim: string[];
  filledIn: string;
  note: string;
  detail?: Task;
  caughtError?: { Error: string; Cause: string };
}

function load(name: string): Fixture {
  return JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8')) as Fixture;
}

function taskOf(fixture: Fixture): Task {
  if (fixture.detail) return fixture.detail;
  return toCamelCase<Task>(JSON.parse(fixture.caughtError?.Cause ?? '{}'));
}

interface Expected {
  category: DiagnosisCategory;
  crashed: boolean;
  failedToStart: boolean;
  /** Words the state message must contain (case-insensitive). */
  says: string[];
}

const start = (category: DiagnosisCategory, ...says: string[]): Expected => ({
  category,
  crashed: true,
  failedToStart: true,
  says: ['Failed to submit flow run to infrastructure: TaskFailedToStart:', ...says],
});
const stop = (category: DiagnosisCategory, ...says: string[]): Expected => ({
  category,
  crashed: true,
  failedToStart: false,
  says,
});

const expected: Record<string, Expected> = {
  'ec2-log-group-missing': start('configuration', 'log group does not exist', 'create the log group'),
  'ec2-log-group-access-denied': start(
    'configuration',
    'log group could not be created',
    'logs:CreateLogGroup',
  ),
  'ec2-cannot-pull-no-space': start('configuration', 'no space left on device', 'disk space'),
  'ec2-cannot-pull-image-manifest': start(
    'configuration',
    'manifest unknown',
    'image does not exist',
    '`image`',
  ),
  'ec2-cannot-inspect-container': stop('infrastructure', 'ECS task stopped:', 'container runtime', 'retry'),
  'ec2-oom-at-start': start('configuration', 'memory limit is too low', '`memory`'),
  'ec2-missing-device': start('configuration', 'could not be started', 'renderD130'),
  'fargate-cannot-pull-timeout': start('configuration', 'could not reach the image registry', 'NAT'),
  'fargate-cannot-pull-not-found': start('configuration', 'image does not exist', '`image`'),
  'fargate-cannot-pull-forbidden': start('configuration', 'registry refused', 'execution role'),
  'fargate-secrets-asm': start('configuration', 'secrets', 'execution role', 'Secrets Manager'),
  'fargate-ecr-auth-timeout': start('configuration', 'ECR credentials', 'VPC endpoints'),
  'fargate-eni-timeout': start('configuration', 'network interface', 'free IP addresses'),
  'capacity-provider-gpu': start('capacity', 'RESOURCE:GPU', 'no capacity', 'capacity provider'),
  'capacity-resource-memory': start('capacity', 'RESOURCE:MEMORY', 'no capacity', 'lower cpu/memory'),
  'capacity-empty-reason': start('capacity', 'no capacity', 'capacity provider'),
  'ec2-host-terminated-no-exit': stop(
    'infrastructure',
    'ECS task stopped:',
    'EC2 host i-0282b396e52b4c95d was terminated',
    'retry',
  ),
  'ec2-host-terminated-exit-143': stop('infrastructure', 'ECS task stopped:', 'was terminated', 'retry'),
  'fargate-maintenance-exit-143': stop('infrastructure', 'ECS task stopped:', 'maintenance', 'retry'),
  'fargate-maintenance-exit-137': stop('infrastructure', 'ECS task stopped:', 'maintenance', 'retry'),
  'fargate-spot-termination-notice': stop('infrastructure', 'Spot capacity was reclaimed', 'FARGATE'),
  'fargate-spot-exit-2-no-stop-code': stop(
    'infrastructure',
    'Spot capacity was reclaimed',
    'retried on FARGATE',
  ),
  'fargate-user-stop-exit-143': stop('deliberate', 'ECS task stopped:', 'StopTask', 'Task stopped by user'),
  'ec2-user-stop-provisioning': stop('deliberate', 'ECS task stopped:', 'StopTask', 'CloudTrail'),
  'launcher-cancel': stop('deliberate', 'prefect-ecs-launcher stopped the task', 'cancelled'),
  'service-scale-in': stop('deliberate', 'ECS service scaled the task in', 'standalone'),
  'ec2-instance-deregistered': stop('deliberate', 'container instance was deregistered', 'retry'),
  'ec2-exit-1-no-stop-code': stop('user-code', "non-zero exit code: ['app']", 'exited with code 1', 'logs'),
  'fargate-oom-137': stop('user-code', "non-zero exit code: ['prefect']", 'ran out of memory', '`memory`'),
  'oom-reason-exit-0': { category: 'none', crashed: false, failedToStart: false, says: ['ECS task stopped'] },
  'ec2-exit-139': stop('user-code', 'exited with code 139 (SIGSEGV)', 'logs'),
  'sidecar-137-flow-0': {
    category: 'none',
    crashed: false,
    failedToStart: false,
    says: ['ECS task stopped'],
  },
  'step-functions-exit-1': stop('user-code', "non-zero exit code: ['app']", 'exited with code 1'),
};

const names = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))
  .sort();

describe('real ECS stops (test/fixtures/ecs-events/real)', () => {
  it('has an expectation for every collected stop, and at least 25 of them', () => {
    expect(names).toEqual(Object.keys(expected).sort());
    expect(names.length).toBeGreaterThanOrEqual(25);
  });

  it.each(names)('%s says where it comes from and what is verbatim', (name) => {
    const fixture = load(name);
    expect(fixture.source.length).toBeGreaterThan(0);
    expect(fixture.verbatim.length).toBeGreaterThan(0);
    expect(fixture.filledIn).toBeTruthy();
    expect(Boolean(fixture.detail) !== Boolean(fixture.caughtError)).toBe(true);
  });

  it.each(names)('%s names its cause and what to do', (name) => {
    const task = taskOf(load(name));
    const want = expected[name] as Expected;
    const d = diagnoseStoppedTask(task);
    expect({ category: d.category, crashed: d.crashed, failedToStart: d.failedToStart }).toEqual({
      category: want.category,
      crashed: want.crashed,
      failedToStart: want.failedToStart,
    });
    for (const words of want.says) expect(d.message.toLowerCase()).toContain(words.toLowerCase());

    expect(d.message.length).toBeLessThanOrEqual(MAX_STATE_MESSAGE);
    expect(d.message).not.toContain('\n');
    expect(d.message).not.toMatch(/TaskFailedToStart: TaskFailedToStart/);
    const exitCodes = (task.containers ?? []).map((c) => c.exitCode);
    if (/non-zero exit code/.test(d.message)) {
      expect(exitCodes.some((c) => typeof c === 'number' && c !== 0)).toBe(true);
    }
    if (d.category === 'configuration' || d.category === 'capacity' || d.category === 'user-code') {
      expect(`${d.message} ${d.explanation}`).not.toMatch(/infrastructure(?! job variable)(?!:)/i);
    }
    if (d.crashed) {
      expect(d.explanation).toContain('Resolution:');
      expect(d.explanation).toContain(task.taskArn as string);
    }
  });

  it('the failure path reads a real ecs:runTask.sync Cause the same way', () => {
    const caught = load('step-functions-exit-1').caughtError as { Error: string; Cause: string };
    const failure = describeLaunchFailure(caught);
    expect(failure.action).toBe('crash');
    expect(failure.message).toBe(diagnoseStoppedTask(taskOf(load('step-functions-exit-1'))).message);
    expect(failure.explanation).toContain('It ran for 0 s.');
  });
});
