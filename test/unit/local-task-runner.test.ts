import type { Task, TaskDefinition } from '@aws-sdk/client-ecs';
import { parseStartArgs } from '../../src/local/start';
import { localContainer } from '../../src/local/task-runner';

const definition: TaskDefinition = {
  taskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/prefect_pool:1',
  containerDefinitions: [
    {
      name: 'prefect',
      image: 'prefecthq/prefect:3-latest',
      command: ['python', '-c', 'pass'],
      environment: [
        { name: 'FROM_DEFINITION', value: 'kept' },
        { name: 'PREFECT_API_URL', value: 'http://definition/api' },
      ],
    },
  ],
};

function task(overrides: Task['overrides']): Task {
  return { taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/default/abc', overrides };
}

describe('localContainer', () => {
  it("runs the override's command with the definition's environment and the override's on top", () => {
    const spec = localContainer(
      task({
        containerOverrides: [
          {
            name: 'prefect',
            command: ['prefect', 'flow-run', 'execute'],
            environment: [
              { name: 'PREFECT_API_URL', value: 'http://127.0.0.1:4200/api' },
              { name: 'PREFECT__FLOW_RUN_ID', value: '0b3a' },
            ],
          },
        ],
      }),
      definition,
    );
    expect(spec).toEqual({
      name: 'prefect',
      command: ['prefect', 'flow-run', 'execute'],
      env: {
        FROM_DEFINITION: 'kept',
        PREFECT_API_URL: 'http://127.0.0.1:4200/api',
        PREFECT__FLOW_RUN_ID: '0b3a',
      },
    });
  });

  it("falls back to the definition's command when the override has none", () => {
    expect(localContainer(task({ containerOverrides: [] }), definition)).toMatchObject({
      command: ['python', '-c', 'pass'],
    });
  });

  it('finds the flow container by its command override, whatever it is called', () => {
    const twoContainers: TaskDefinition = {
      ...definition,
      containerDefinitions: [
        { name: 'sidecar', image: 'public.ecr.aws/aws-observability/aws-otel-collector:latest' },
        { name: 'flow', image: 'docker.io/prefecthq/prefect:3.9.1-python3.11' },
      ],
    };
    const spec = localContainer(
      task({ containerOverrides: [{ name: 'flow', command: ['prefect', 'flow-run', 'execute'] }] }),
      twoContainers,
    );
    expect(spec).toMatchObject({ name: 'flow', command: ['prefect', 'flow-run', 'execute'] });
  });

  it('refuses an image the virtualenv cannot stand in for, naming it', () => {
    const custom: TaskDefinition = {
      ...definition,
      containerDefinitions: [
        { name: 'prefect', image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/flows:1' },
      ],
    };
    expect(localContainer(task({}), custom)).toEqual({
      error: expect.stringContaining('no image 123456789012.dkr.ecr.us-east-1.amazonaws.com/flows:1'),
    });
    const lookalike: TaskDefinition = {
      ...definition,
      containerDefinitions: [{ name: 'prefect', image: 'someone/prefecthq/prefect:3' }],
    };
    expect(localContainer(task({}), lookalike)).toHaveProperty('error');
  });

  it("fails a Prefect image whose tag Prefect does not publish as ECS's pull does, naming it", () => {
    const withImage = (image: string): TaskDefinition => ({
      ...definition,
      containerDefinitions: [{ ...definition.containerDefinitions?.[0], image }],
    });
    expect(localContainer(task({}), withImage('prefecthq/prefect:does-not-exist'))).toEqual({
      error: expect.stringMatching(
        /^failed to resolve ref docker\.io\/prefecthq\/prefect:does-not-exist: docker\.io\/prefecthq\/prefect:does-not-exist: not found/,
      ),
    });
    for (const image of [
      'prefecthq/prefect',
      'prefecthq/prefect:latest',
      'prefecthq/prefect:3-latest',
      'docker.io/prefecthq/prefect:3.9.1-python3.12',
      `prefecthq/prefect:3-latest@sha256:${'a'.repeat(64)}`,
      `prefecthq/prefect@sha256:${'0'.repeat(64)}`,
    ]) {
      expect(localContainer(task({}), withImage(image))).not.toHaveProperty('error');
    }
  });
});

describe('parseStartArgs', () => {
  it('defaults to the local-ecs pool, the sample, and running until stopped', () => {
    expect(parseStartArgs([])).toEqual({
      pool: 'local-ecs',
      sample: true,
      once: false,
      keep: false,
      runNow: true,
      log: '.local/launcher.log',
    });
    expect(parseStartArgs(['--no-run-now'])).toMatchObject({ runNow: false });
  });

  it('takes the API URL, the pool and the flags', () => {
    expect(
      parseStartArgs([
        '--api-url',
        'http://127.0.0.1:4200/api',
        '--pool',
        'p',
        '--no-sample',
        '--log',
        'l.log',
      ]),
    ).toEqual({
      apiUrl: 'http://127.0.0.1:4200/api',
      pool: 'p',
      sample: false,
      once: false,
      keep: false,
      // Another server may not reach this machine's loopback, where the entry point listens.
      runNow: false,
      log: 'l.log',
    });
  });

  it('rejects unknown options and combinations that cannot work, with the usage', () => {
    expect(() => parseStartArgs(['--pol', 'x'])).toThrow(/usage: npm start/);
    expect(() => parseStartArgs(['--once', '--no-sample'])).toThrow(/--once waits for the sample run/);
    expect(() => parseStartArgs(['--keep', '--api-url', 'http://h/api'])).toThrow(/with --api-url/);
    expect(parseStartArgs(['--api-url', 'http://127.0.0.1:4200/api', '--run-now']).runNow).toBe(true);
    expect(() => parseStartArgs(['--run-now', '--no-run-now'])).toThrow(/contradict each other/);
  });
});
