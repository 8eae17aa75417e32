import fs from 'node:fs';
import path from 'node:path';
import {
  CreateEventBusCommand,
  EventBridgeClient,
  PutEventsCommand,
  PutRuleCommand,
  PutTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import packageJson from '../../package.json';
import {
  launchDefinitionPath,
  launchDefinitionPlaceholders,
  loadLaunchDefinition,
} from '../../src/local/definition';
import {
  allStatementVariants,
  cfnLint,
  type JsonObject,
  leafStrings,
  list,
  type Packaged,
  packageService,
  roleStatements,
  StackView,
  type Statement,
  type Template,
} from '../harness/cloudformation';
import { awsTestConfig, uniqueName } from '../harness/env';

/**
 * The deployable template, built offline by `npm run package` (scripts/package.sh) once for this file:
 * what each parameter combination creates, least-privilege IAM, no credential in plain text, cfn-lint.
 */

const keyArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:prefect-api-key-AbCdEf';
const authArn = 'arn:aws:ssm:us-east-1:123456789012:parameter/prefect/auth-string';
const executionRole = 'arn:aws:iam::123456789012:role/prefect-execution';
const taskRoles = ['arn:aws:iam::123456789012:role/flow-a', 'arn:aws:iam::123456789012:role/team/flow-b'];
const kmsKey = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const apiUrl = 'https://api.prefect.cloud/api/accounts/acc-1/workspaces/ws-1';
const topicArn = 'arn:aws:sns:us-east-1:123456789012:launcher-alarms';

/**
 * IAM statements with `Resource: "*"` are allowed only for these actions, each for the reason given.
 * https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
 */
const wildcardResourceExceptions: Record<string, string> = {
  'ecs:DescribeTaskDefinition': 'ECS defines no resource type for it: IAM requires "*"',
  'ecs:DeregisterTaskDefinition': 'ECS defines no resource type for it: IAM requires "*"',
  'ecs:RegisterTaskDefinition':
    'the revision it creates has no ARN before the call; the IAM reference has long listed no resource for it and AWS examples grant it on "*"',
  'ec2:DescribeVpcs': 'EC2 Describe* calls have no resource-level permissions',
  'ec2:DescribeSubnets': 'EC2 Describe* calls have no resource-level permissions',
  'ecr:GetAuthorizationToken': 'ECR defines no resource type for it (created execution role only)',
  'iam:PassRole':
    'only when no execution or task role is configured, because the roles that pools and deployments name are unknown at deploy time; limited to ECS tasks by iam:PassedToService',
};

let packaged: Packaged;
let template: Template;

beforeAll(async () => {
  packaged = await packageService([
    `--param=prefectApiUrl=${apiUrl}`,
    '--param=workPool=my-ecs-pool',
    `--param=prefectApiKeySecretArn=${keyArn}`,
    '--param=lookaheadSeconds=120',
  ]);
  template = packaged.template;
}, 240_000);

afterAll(() => {
  if (packaged) fs.rmSync(packaged.dir, { recursive: true, force: true });
});

const functions = {
  poll: { handler: 'handlers/poll.handler', role: 'PollRole', timeout: 55 },
  prepare: { handler: 'handlers/prepare.handler', role: 'PrepareRole', timeout: 60 },
  crash: { handler: 'handlers/crash.handler', role: 'CrashRole', timeout: 60 },
  report: { handler: 'handlers/report.handler', role: 'ReportRole', timeout: 60 },
  runNow: { handler: 'handlers/run-now.handler', role: 'RunNowRole', timeout: 30 },
};
const logicalId = (name: string) => `${name[0]?.toUpperCase()}${name.slice(1)}LambdaFunction`;

function view(values: Record<string, string> = {}) {
  return new StackView(template, values);
}

/** The resources of one type that exist for these parameter values. */
function ofType(stack: StackView, type: string) {
  return Object.entries(stack.resources()).filter(([, r]) => r.Type === type);
}

function actions(statements: Statement[]): string[] {
  return [...new Set(statements.flatMap((s) => list(s.Action)))].sort();
}

function grants(statements: Statement[], action: string): Statement[] {
  return statements.filter((s) => s.Effect === 'Allow' && list(s.Action).includes(action));
}

function resourcesOf(statements: Statement[]): string[] {
  return statements.flatMap((s) => list(s.Resource as string | string[])).sort();
}

describe('npm run package', () => {
  it('prints the size of each bundle', () => {
    for (const name of Object.keys(functions)) {
      expect(packaged.output).toMatch(
        new RegExp(`^${name}\\s+[\\d,]+ KiB\\s+[\\d,]+ KiB\\s+[\\d,]+ KiB$`, 'm'),
      );
    }
    for (const name of Object.keys(functions)) {
      expect(fs.statSync(path.join(packaged.dir, `${name}.zip`)).size).toBeGreaterThan(0);
    }
  });

  it('passes cfn-lint with no findings, both templates', async () => {
    expect(packaged.output).toContain('no errors or warnings');
    expect(await cfnLint(path.join(packaged.dir, 'cloudformation-template-update-stack.json'))).toEqual([]);
    expect(await cfnLint(path.join(packaged.dir, 'cloudformation-template-create-stack.json'))).toEqual([]);
  });

  it('turns each --param into the default of a CloudFormation parameter, checked at deploy', () => {
    const p = template.Parameters;
    expect(p.PrefectApiUrl?.Default).toBe(apiUrl);
    expect(p.WorkPool?.Default).toBe('my-ecs-pool');
    expect(p.PrefectApiKeySecretArn?.Default).toBe(keyArn);
    expect(p.LookaheadSeconds?.Default).toBe('120');
    expect(p.Cluster?.Default).toBe('');
    expect(p.LogRetentionInDays?.Default).toBe('30');
    const accepts = (name: string, value: string) =>
      new RegExp(String(template.Parameters[name]?.AllowedPattern)).test(value);
    expect(accepts('PrefectApiKeySecretArn', keyArn)).toBe(true);
    expect(accepts('PrefectApiKeySecretArn', authArn)).toBe(true);
    expect(accepts('PrefectApiKeySecretArn', '')).toBe(true);
    expect(accepts('PrefectApiKeySecretArn', 'pnu_0123456789abcdef')).toBe(false);
    expect(accepts('PrefectApiAuthStringSecretArn', 'admin:hunter2')).toBe(false);
    expect(accepts('Cluster', 'my-cluster')).toBe(true);
    expect(accepts('Cluster', 'arn:aws:ecs:us-east-1:123456789012:cluster/my-cluster')).toBe(false);
    expect(accepts('TaskRoleArns', taskRoles.join(','))).toBe(true);
    expect(accepts('TaskRoleArns', taskRoles.join(', '))).toBe(false);
    expect(accepts('PrefectApiUrl', 'http://prefect.internal:4200/api')).toBe(true);
    expect(accepts('PrefectApiUrl', 'prefect.internal:4200')).toBe(false);
    expect(accepts('WorkPool', 'team/pool')).toBe(false);
    expect(accepts('AlarmTopicArn', topicArn)).toBe(true);
    expect(accepts('AlarmTopicArn', '')).toBe(true);
    expect(accepts('AlarmTopicArn', 'launcher-alarms')).toBe(false);
    expect(template.Parameters.LogLevel?.AllowedValues).toContain('DEBUG');
  });
});

describe('outputs', () => {
  it("tells the launcher's version, package.json's, for prefect-ecs-launcher status --stage", () => {
    expect(template.Outputs.LauncherVersion?.Value).toBe(packageJson.version);
    expect(view().resolve(template.Outputs.LaunchStateMachineArn?.Value)).toBe('<LaunchStateMachine>');
  });
});

describe('functions', () => {
  it.each(Object.entries(functions))('%s: handler, runtime, architecture, its own role', (name, spec) => {
    const fn = view().resource(logicalId(name)).Properties as JsonObject;
    expect(fn.Handler).toBe(spec.handler);
    expect(fn.Runtime).toBe('nodejs22.x');
    expect(fn.Architectures).toEqual(['arm64']);
    expect(fn.Timeout).toBe(spec.timeout);
    expect(fn.Role).toBe(`<${spec.role}.Arn>`);
    expect(template.Resources[spec.role]?.Type).toBe('AWS::IAM::Role');
  });

  it('gives every function the settings src/config.ts reads, and the poll the state machine', () => {
    for (const name of Object.keys(functions)) {
      const env = (view().resource(logicalId(name)).Properties as JsonObject).Environment as JsonObject;
      const variables = env.Variables as Record<string, string>;
      expect(variables).toMatchObject({
        PREFECT_API_URL: apiUrl,
        PREFECT_API_KEY_SECRET_ARN: keyArn,
        PREFECT_API_AUTH_STRING_SECRET_ARN: '',
        LAUNCHER_WORK_POOL: 'my-ecs-pool',
        LAUNCHER_WORK_QUEUES: '',
        LAUNCHER_VPC_ID: '',
        LAUNCHER_SUBNETS: '',
        LAUNCHER_SECURITY_GROUPS: '',
        LAUNCHER_ASSIGN_PUBLIC_IP: 'DISABLED',
        LAUNCHER_CLUSTER: '',
        LAUNCHER_EXECUTION_ROLE_ARN: '',
        LAUNCHER_POLL_INTERVAL_SECONDS: '60',
        LAUNCHER_LOOKAHEAD_SECONDS: '120',
        LAUNCHER_CONCURRENCY: '8',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        POWERTOOLS_LOGGER_SAMPLE_RATE: '0',
      });
      expect('LAUNCHER_STATE_MACHINE_ARN' in variables).toBe(name === 'poll' || name === 'runNow');
    }
    const poll = view().resource('PollLambdaFunction').Properties as JsonObject;
    expect((poll.Environment as JsonObject).Variables).toMatchObject({
      LAUNCHER_STATE_MACHINE_ARN: '<LaunchStateMachine>',
    });
  });

  it('keeps credentials out of every Lambda environment: only secret ARNs, never a key or password', () => {
    const scenarios = [
      view(),
      view({ PrefectApiKeySecretArn: '', PrefectApiAuthStringSecretArn: authArn }),
      view({ PrefectApiKeySecretArn: '' }),
    ];
    for (const stack of scenarios) {
      for (const [, fn] of ofType(stack, 'AWS::Lambda::Function')) {
        const variables = ((fn.Properties as JsonObject).Environment as JsonObject).Variables as Record<
          string,
          string
        >;
        for (const [name, value] of Object.entries(variables)) {
          expect(name).not.toMatch(/^PREFECT_API_(KEY|AUTH_STRING)$/);
          if (name.endsWith('_SECRET_ARN') && value) {
            expect(value).toMatch(/^arn:aws:(secretsmanager|ssm):/);
          }
        }
      }
    }
    // Nothing in the template can set the plain variables, whatever the parameters.
    expect(JSON.stringify(template)).not.toMatch(/"PREFECT_API_(KEY|AUTH_STRING)"/);
  });

  it('keeps logs for the configured number of days', () => {
    const groups = ofType(view({ LogRetentionInDays: '14' }), 'AWS::Logs::LogGroup');
    expect(groups.map(([id]) => id).sort()).toEqual([
      'CrashLogGroup',
      'PollLogGroup',
      'PrepareLogGroup',
      'ReportLogGroup',
      'RunNowLogGroup',
    ]);
    for (const [, group] of groups) expect(group.Properties?.RetentionInDays).toBe('14');
  });
});

describe('events', () => {
  it('polls on the schedule', () => {
    const rules = ofType(view(), 'AWS::Events::Rule').filter(([, r]) => r.Properties?.ScheduleExpression);
    expect(rules).toHaveLength(1);
    const [id, rule] = rules[0] as (typeof rules)[number];
    expect(rule.Properties?.ScheduleExpression).toBe('rate(1 minute)');
    expect(rule.Properties?.Targets).toEqual([expect.objectContaining({ Arn: '<PollLambdaFunction.Arn>' })]);
    const permissions = ofType(view(), 'AWS::Lambda::Permission').map(([, p]) => p.Properties);
    expect(permissions).toContainEqual(
      expect.objectContaining({
        FunctionName: '<PollLambdaFunction.Arn>',
        Principal: 'events.amazonaws.com',
        SourceArn: `<${id}.Arn>`,
      }),
    );
  });

  const LAUNCHER_TASKS = { group: [{ prefix: 'prefect-flow-run:' }] };
  const OTHER_TASKS = { group: [{ 'anything-but': { prefix: 'prefect-flow-run:' } }] };

  /** The report function's rules: the launcher's tasks, then everyone else's (the worker's during a migration). */
  function reportRules(stack: StackView): JsonObject[] {
    const rules = ofType(stack, 'AWS::Events::Rule').filter(([, r]) => r.Properties?.EventPattern);
    expect(rules).toHaveLength(2);
    return rules.map(([, r]) => r.Properties as JsonObject);
  }

  it("sends every ECS task state change to report, the launcher's tasks and the others by two rules", () => {
    const rules = reportRules(view());
    expect(rules.map((r) => r.EventPattern)).toEqual(
      [LAUNCHER_TASKS, OTHER_TASKS].map((detail) => ({
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail,
      })),
    );
    for (const rule of rules) {
      expect(rule.Targets).toEqual([expect.objectContaining({ Arn: '<ReportLambdaFunction.Arn>' })]);
    }
    const permissions = ofType(view(), 'AWS::Lambda::Permission').map(([, p]) => p.Properties);
    expect(permissions).toContainEqual(
      expect.objectContaining({
        FunctionName: '<ReportLambdaFunction.Arn>',
        Principal: 'events.amazonaws.com',
      }),
    );
  });

  it('builds EventBridge rules as plain CloudFormation, never through a custom resource', () => {
    const types = Object.values(template.Resources).map((r) => String(r.Type));
    expect(types.filter((t) => t.startsWith('Custom::'))).toEqual([]);
    expect(types.filter((t) => t === 'AWS::Events::Rule')).toHaveLength(3);
  });

  it('filters them to the cluster, given or created', () => {
    const cluster = 'arn:aws:ecs:us-east-1:123456789012:cluster/flows';
    expect(reportRules(view({ Cluster: 'flows' })).map((r) => r.EventPattern)).toEqual(
      [LAUNCHER_TASKS, OTHER_TASKS].map((detail) => ({
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail: { ...detail, clusterArn: [cluster] },
      })),
    );
    for (const created of reportRules(view({ CreateCluster: 'true' }))) {
      expect(((created.EventPattern as JsonObject).detail as JsonObject).clusterArn).toEqual([
        'arn:aws:ecs:us-east-1:123456789012:cluster/<LauncherCluster>',
      ]);
    }
  });

  it("routes each task's events to one rule, as moto's EventBridge matches them: the launcher's, everyone else's", async () => {
    const events = new EventBridgeClient(awsTestConfig());
    const sqs = new SQSClient(awsTestConfig());
    const bus = uniqueName('ecs-events');
    await events.send(new CreateEventBusCommand({ Name: bus }));
    // Each deployed rule on its own bus, delivering to a queue that says what it matched.
    const queues = await Promise.all(
      reportRules(view({ Cluster: 'prefect' })).map(async (rule, i) => {
        const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `${bus}-${i}` }));
        const arn = `arn:aws:sqs:us-east-1:123456789012:${bus}-${i}`;
        await events.send(
          new PutRuleCommand({
            Name: `${bus}-${i}`,
            EventBusName: bus,
            EventPattern: JSON.stringify(rule.EventPattern),
          }),
        );
        await events.send(
          new PutTargetsCommand({ Rule: `${bus}-${i}`, EventBusName: bus, Targets: [{ Id: 'q', Arn: arn }] }),
        );
        return QueueUrl as string;
      }),
    );
    const fixture = (name: string) =>
      JSON.parse(
        fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'ecs-events', `${name}.json`), 'utf8'),
      );
    const elsewhere = fixture('worker-provisioning');
    elsewhere.detail.clusterArn = 'arn:aws:ecs:us-east-1:123456789012:cluster/other';
    const cases: Array<[string, { source: string; 'detail-type': string; detail: unknown }, boolean[]]> = [
      ['provisioning', fixture('provisioning'), [true, false]],
      ['stopped-exit-1', fixture('stopped-exit-1'), [true, false]],
      ['worker-provisioning', fixture('worker-provisioning'), [false, true]],
      ['foreign-service-task', fixture('foreign-service-task'), [false, true]],
      ['a worker task in another cluster', elsewhere, [false, false]],
    ];
    for (const [name, event, expected] of cases) {
      await events.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: bus,
              Source: event.source,
              DetailType: event['detail-type'],
              Detail: JSON.stringify(event.detail),
            },
          ],
        }),
      );
      const matched = await Promise.all(
        queues.map(async (QueueUrl) => {
          const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
          for (const m of out.Messages ?? []) {
            await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
          }
          return (out.Messages ?? []).length > 0;
        }),
      );
      expect([name, matched]).toEqual([name, expected]);
    }
  });
});

describe('launch state machine', () => {
  it('deploys statemachines/launch.asl.json with the Lambda ARNs substituted', () => {
    const machine = view().resource('LaunchStateMachine').Properties as JsonObject;
    expect(machine.StateMachineType).toBe('STANDARD');
    expect(machine.RoleArn).toBe('<LaunchStateMachineRole.Arn>');
    const raw = template.Resources.LaunchStateMachine?.Properties?.Definition;
    // Copied verbatim from the file: placeholders and all.
    expect(raw).toEqual(JSON.parse(fs.readFileSync(launchDefinitionPath, 'utf8')));
    const substitutions = machine.DefinitionSubstitutions as Record<string, string>;
    expect(Object.keys(substitutions).sort()).toEqual(launchDefinitionPlaceholders().sort());
    expect(substitutions).toEqual({
      PrepareFunctionArn: '<PrepareLambdaFunction.Arn>',
      CrashFunctionArn: '<CrashLambdaFunction.Arn>',
    });
    const substituted = JSON.parse(
      JSON.stringify(raw).replace(/\$\{(\w+)\}/g, (_, name: string) => substitutions[name] ?? `\${${name}}`),
    );
    expect(substituted).toEqual(loadLaunchDefinition(substitutions));
  });
});

describe('IAM', () => {
  it('grants Resource "*" only where AWS requires it (listed with reasons)', () => {
    const wildcards = allStatementVariants(template).filter(({ statement }) =>
      leafStrings(statement.Resource).includes('*'),
    );
    expect(wildcards.length).toBeGreaterThan(0);
    for (const { where, statement } of wildcards) {
      const granted = leafStrings(statement.Action);
      const unlisted = granted.filter((a) => !(a in wildcardResourceExceptions));
      expect({ where, unlisted }).toEqual({ where, unlisted: [] });
      if (granted.includes('iam:PassRole')) {
        expect(statement.Condition).toEqual({
          StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' },
        });
      }
    }
    for (const reason of Object.values(wildcardResourceExceptions)) expect(reason.length).toBeGreaterThan(20);
    // No Allow grants every action of a service either.
    for (const { statement } of allStatementVariants(template)) {
      if (statement.Effect === 'Allow') expect(leafStrings(statement.Action).join()).not.toMatch(/:\*/);
    }
  });

  const scoped = {
    PrefectApiKeySecretArn: keyArn,
    Cluster: 'flows',
    ExecutionRoleArn: executionRole,
    TaskRoleArns: taskRoles.join(','),
  };
  const credentialActions = ['secretsmanager:GetSecretValue', 'ssm:GetParameter', 'ssm:GetParameters'];
  const logActions = ['logs:CreateLogStream', 'logs:PutLogEvents'];

  it('gives each function only the calls its code makes', () => {
    const stack = view(scoped);
    expect(actions(roleStatements(stack, 'PollRole'))).toEqual(
      [
        ...credentialActions,
        ...logActions,
        'ecs:DescribeTasks',
        'ecs:StopTask',
        'states:DescribeExecution',
        'states:ListExecutions',
        'states:StartExecution',
        'states:StopExecution',
      ].sort(),
    );
    expect(actions(roleStatements(stack, 'PrepareRole'))).toEqual(
      [
        ...credentialActions,
        ...logActions,
        'ec2:DescribeSubnets',
        'ec2:DescribeVpcs',
        'ecs:DescribeTaskDefinition',
        'ecs:RegisterTaskDefinition',
        'ecs:TagResource',
        'iam:PassRole',
      ].sort(),
    );
    expect(actions(roleStatements(stack, 'CrashRole'))).toEqual([...credentialActions, ...logActions].sort());
    expect(actions(roleStatements(stack, 'RunNowRole'))).toEqual(
      [...credentialActions, ...logActions, 'states:DescribeExecution', 'states:StartExecution'].sort(),
    );
    expect(
      resourcesOf(
        grants(roleStatements(view({ ...scoped, RunNow: 'true' }), 'RunNowRole'), 'states:StartExecution'),
      ),
    ).toEqual(['<LaunchStateMachine>']);
    expect(actions(roleStatements(stack, 'ReportRole'))).toEqual(
      [
        ...credentialActions,
        ...logActions,
        'ecs:DeregisterTaskDefinition',
        'ecs:DescribeTaskDefinition',
        'ecs:StopTask',
        'sqs:SendMessage',
      ].sort(),
    );
    expect(actions(roleStatements(stack, 'LaunchStateMachineRole'))).toEqual(
      [
        'ecs:DescribeTasks',
        'ecs:RunTask',
        'ecs:StopTask',
        'ecs:TagResource',
        'events:DescribeRule',
        'events:PutRule',
        'events:PutTargets',
        'iam:PassRole',
        'lambda:InvokeFunction',
      ].sort(),
    );
  });

  it('scopes each grant to its resources', () => {
    const stack = view(scoped);
    const poll = roleStatements(stack, 'PollRole');
    expect(resourcesOf(grants(poll, 'states:StartExecution'))).toEqual(['<LaunchStateMachine>']);
    expect(resourcesOf(grants(poll, 'states:ListExecutions'))).toEqual(['<LaunchStateMachine>']);
    for (const action of ['states:DescribeExecution', 'states:StopExecution']) {
      expect(resourcesOf(grants(poll, action))).toEqual([
        'arn:aws:states:us-east-1:123456789012:execution:<LaunchStateMachine.Name>:*',
      ]);
    }
    const report = roleStatements(stack, 'ReportRole');
    for (const [statements, action] of [
      [poll, 'ecs:StopTask'],
      [poll, 'ecs:DescribeTasks'],
      [report, 'ecs:StopTask'],
    ] as const) {
      expect(resourcesOf(grants(statements, action))).toEqual([
        'arn:aws:ecs:us-east-1:123456789012:task/flows/*',
      ]);
    }
    for (const [role, group] of [
      ['PollRole', 'PollLogGroup'],
      ['PrepareRole', 'PrepareLogGroup'],
      ['CrashRole', 'CrashLogGroup'],
      ['ReportRole', 'ReportLogGroup'],
      ['RunNowRole', 'RunNowLogGroup'],
    ] as const) {
      const statements = roleStatements(stack, role);
      expect(resourcesOf(grants(statements, 'logs:PutLogEvents'))).toEqual([`<${group}.Arn>`]);
      expect(resourcesOf(grants(statements, 'secretsmanager:GetSecretValue'))).toEqual(
        [keyArn, `${keyArn}-??????`].sort(),
      );
    }
    const prepare = roleStatements(stack, 'PrepareRole');
    expect(grants(prepare, 'ecs:TagResource')).toEqual([
      expect.objectContaining({
        Resource: 'arn:aws:ecs:us-east-1:123456789012:task-definition/*',
        Condition: { StringEquals: { 'ecs:CreateAction': 'RegisterTaskDefinition' } },
      }),
    ]);

    const machine = roleStatements(stack, 'LaunchStateMachineRole');
    expect(resourcesOf(grants(machine, 'lambda:InvokeFunction'))).toEqual([
      '<CrashLambdaFunction.Arn>',
      '<PrepareLambdaFunction.Arn>',
    ]);
    expect(grants(machine, 'ecs:RunTask')).toEqual([
      expect.objectContaining({
        Resource: 'arn:aws:ecs:us-east-1:123456789012:task-definition/*',
        Condition: { ArnEquals: { 'ecs:cluster': 'arn:aws:ecs:us-east-1:123456789012:cluster/flows' } },
      }),
    ]);
    for (const action of ['ecs:StopTask', 'ecs:DescribeTasks', 'ecs:TagResource']) {
      expect(resourcesOf(grants(machine, action))).toEqual([
        'arn:aws:ecs:us-east-1:123456789012:task/flows/*',
      ]);
    }
    expect(grants(machine, 'ecs:TagResource')[0]?.Condition).toEqual({
      StringEquals: { 'ecs:CreateAction': 'RunTask' },
    });
    expect(resourcesOf(grants(machine, 'events:PutRule'))).toEqual([
      'arn:aws:events:us-east-1:123456789012:rule/StepFunctionsGetEventsForECSTaskRule',
    ]);
  });

  it('passes only the configured execution and task roles, and only to ECS tasks', () => {
    for (const role of ['PrepareRole', 'LaunchStateMachineRole']) {
      const passes = grants(roleStatements(view(scoped), role), 'iam:PassRole');
      expect(resourcesOf(passes)).toEqual([executionRole, ...taskRoles].sort());
      for (const s of passes) {
        expect(s.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
      }
      const created = grants(roleStatements(view({ CreateExecutionRole: 'true' }), role), 'iam:PassRole');
      expect(resourcesOf(created)).toEqual(['<TaskExecutionRole.Arn>']);
      // Nothing configured: pools may name any role, so any role, but only to ECS tasks.
      const fallback = grants(roleStatements(view(), role), 'iam:PassRole');
      expect(fallback).toEqual([
        {
          Effect: 'Allow',
          Action: 'iam:PassRole',
          Resource: '*',
          Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
        },
      ]);
    }
  });

  it('runs, stops and describes tasks in any cluster of the account only when no cluster is configured', () => {
    const machine = roleStatements(view(), 'LaunchStateMachineRole');
    expect(grants(machine, 'ecs:RunTask')[0]?.Condition).toBeUndefined();
    expect(resourcesOf(grants(machine, 'ecs:StopTask'))).toEqual([
      'arn:aws:ecs:us-east-1:123456789012:task/*/*',
    ]);
  });

  it('reads whichever credential is configured, with its KMS key, and none when there is none', () => {
    const ssm = view({
      PrefectApiKeySecretArn: '',
      PrefectApiAuthStringSecretArn: authArn,
      SecretKmsKeyArn: kmsKey,
    });
    const statements = roleStatements(ssm, 'ReportRole');
    expect(resourcesOf(grants(statements, 'ssm:GetParameter'))).toEqual([authArn, `${authArn}-??????`]);
    expect(grants(statements, 'kms:Decrypt')).toEqual([
      expect.objectContaining({
        Resource: kmsKey,
        Condition: {
          StringEquals: {
            'kms:ViaService': ['secretsmanager.us-east-1.amazonaws.com', 'ssm.us-east-1.amazonaws.com'],
          },
        },
      }),
    ]);
    const none = view({ PrefectApiKeySecretArn: '' });
    expect(none.resources().ReadPrefectCredentialPolicy).toBeUndefined();
    for (const role of Object.values(functions).map((f) => f.role)) {
      expect(actions(roleStatements(none, role)).filter((a) => !a.startsWith('logs:'))).not.toContain(
        'secretsmanager:GetSecretValue',
      );
    }
  });
});

describe('optional infrastructure', () => {
  it('creates nothing extra by default', () => {
    const ids = Object.keys(view().resources());
    for (const id of [
      'LauncherCluster',
      'TaskExecutionRole',
      'TaskLogGroup',
      'RunNowTokenSecret',
      'RunNowFunctionUrl',
      'RunNowUrlPermission',
      'RunNowInvokePermission',
    ]) {
      expect(ids).not.toContain(id);
    }
    // Without its URL the run-now function cannot be reached, and has no token to accept.
    const env = (view().resource('RunNowLambdaFunction').Properties as JsonObject).Environment as JsonObject;
    expect((env.Variables as JsonObject).LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN).toBe('');
  });

  it('with runNow, opens a function URL that only the token holder gets past, at a capped concurrency', () => {
    const stack = view({ RunNow: 'true' });
    expect(stack.resource('RunNowFunctionUrl').Properties).toEqual({
      AuthType: 'NONE',
      TargetFunctionArn: '<RunNowLambdaFunction.Arn>',
    });
    // Both permissions AWS requires of a public function URL, and no wider: InvokeFunction only through it.
    expect(stack.resource('RunNowUrlPermission').Properties).toEqual({
      Action: 'lambda:InvokeFunctionUrl',
      FunctionName: '<RunNowLambdaFunction>',
      Principal: '*',
      FunctionUrlAuthType: 'NONE',
    });
    expect(stack.resource('RunNowInvokePermission').Properties).toEqual({
      Action: 'lambda:InvokeFunction',
      FunctionName: '<RunNowLambdaFunction>',
      Principal: '*',
      InvokedViaFunctionUrl: true,
    });
    expect(stack.resource('RunNowTokenSecret').Properties).toMatchObject({
      GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true },
    });
    const fn = stack.resource('RunNowLambdaFunction').Properties as JsonObject;
    expect(fn.ReservedConcurrentExecutions).toBe('2');
    expect((fn.Environment as JsonObject).Variables).toMatchObject({
      LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN: '<RunNowTokenSecret>',
      LAUNCHER_STATE_MACHINE_ARN: '<LaunchStateMachine>',
    });
    expect(
      resourcesOf(grants(roleStatements(stack, 'RunNowRole'), 'secretsmanager:GetSecretValue')),
    ).toContain('<RunNowTokenSecret>');
    expect(stack.resolve(template.Outputs.RunNowUrl?.Value)).toBe('<RunNowFunctionUrl.FunctionUrl>');
    expect(stack.resolve(template.Outputs.RunNowTokenSecretArn?.Value)).toBe('<RunNowTokenSecret>');
  });

  it('creates the cluster, named or not, and uses it everywhere', () => {
    const named = view({ CreateCluster: 'true', Cluster: 'flows' });
    expect(named.resource('LauncherCluster').Properties).toMatchObject({
      ClusterName: 'flows',
      CapacityProviders: ['FARGATE', 'FARGATE_SPOT'],
    });
    const unnamed = view({ CreateCluster: 'true' });
    expect(unnamed.resource('LauncherCluster').Properties?.ClusterName).toBeUndefined();
    const env = (unnamed.resource('PrepareLambdaFunction').Properties as JsonObject)
      .Environment as JsonObject;
    expect((env.Variables as JsonObject).LAUNCHER_CLUSTER).toBe('<LauncherCluster>');
    expect(resourcesOf(grants(roleStatements(unnamed, 'LaunchStateMachineRole'), 'ecs:StopTask'))).toEqual([
      'arn:aws:ecs:us-east-1:123456789012:task/<LauncherCluster>/*',
    ]);
  });

  it('creates an execution role that pulls images, writes the task log group and reads the credential', () => {
    const stack = view({ CreateExecutionRole: 'true', CreateTaskLogGroup: 'true', SecretKmsKeyArn: kmsKey });
    const role = stack.resource('TaskExecutionRole').Properties as JsonObject;
    expect(JSON.stringify(role.AssumeRolePolicyDocument)).toContain('ecs-tasks.amazonaws.com');
    const statements = roleStatements(stack, 'TaskExecutionRole');
    expect(resourcesOf(grants(statements, 'ssm:GetParameters'))).toEqual([keyArn, `${keyArn}-??????`].sort());
    expect(grants(statements, 'kms:Decrypt')).toHaveLength(1);
    expect(resourcesOf(grants(statements, 'ecr:BatchGetImage'))).toEqual([
      'arn:aws:ecr:*:123456789012:repository/*',
    ]);
    expect(resourcesOf(grants(statements, 'logs:CreateLogGroup'))).toEqual([
      'arn:aws:logs:us-east-1:123456789012:log-group:prefect',
      'arn:aws:logs:us-east-1:123456789012:log-group:prefect:*',
    ]);
    expect(stack.resource('TaskLogGroup').Properties).toEqual({
      LogGroupName: 'prefect',
      RetentionInDays: '30',
    });
    const env = (stack.resource('PrepareLambdaFunction').Properties as JsonObject).Environment as JsonObject;
    expect((env.Variables as JsonObject).LAUNCHER_EXECUTION_ROLE_ARN).toBe('<TaskExecutionRole.Arn>');
    expect(stack.resolve(template.Outputs.TaskExecutionRoleArn?.Value)).toBe('<TaskExecutionRole.Arn>');
  });
});

describe('operations: failed reports, alarms and the dashboard', () => {
  const alarms = [
    'PollErrorsAlarm',
    'NoPollAlarm',
    'LaunchExecutionsFailedAlarm',
    'ReportErrorsAlarm',
    'RunsCrashedAtLaunchAlarm',
    'ReportFailuresAlarm',
  ];

  it('sends a failed asynchronous report invocation to an SQS queue the report role may write', () => {
    const stack = view();
    expect(stack.resource('ReportEventInvokeConfig').Properties).toEqual({
      FunctionName: '<ReportLambdaFunction>',
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: '<ReportFailureQueue.Arn>' } },
    });
    expect(stack.resource('ReportFailureQueue').Properties).toMatchObject({
      MessageRetentionPeriod: 1209600,
    });
    expect(resourcesOf(grants(roleStatements(stack, 'ReportRole'), 'sqs:SendMessage'))).toEqual([
      '<ReportFailureQueue.Arn>',
    ]);
  });

  it('creates no alarm and no dashboard by default', () => {
    const types = ofType(view(), 'AWS::CloudWatch::Alarm').concat(
      ofType(view(), 'AWS::CloudWatch::Dashboard'),
    );
    expect(types).toEqual([]);
  });

  it('creates the alarms with createAlarms=true, notifying the topic when one is given', () => {
    const withoutTopic = view({ CreateAlarms: 'true' });
    expect(
      ofType(withoutTopic, 'AWS::CloudWatch::Alarm')
        .map(([id]) => id)
        .sort(),
    ).toEqual([...alarms].sort());
    for (const id of alarms) {
      const alarm = withoutTopic.resource(id).Properties as JsonObject;
      expect(alarm.AlarmName).toMatch(/^prefect-ecs-launcher-dev-[a-z-]+$/);
      expect(alarm.AlarmActions).toBeUndefined();
      expect(alarm.OKActions).toBeUndefined();
    }
    const withTopic = view({ CreateAlarms: 'true', AlarmTopicArn: topicArn });
    for (const id of alarms) {
      expect(withTopic.resource(id).Properties).toMatchObject({
        AlarmActions: [topicArn],
        OKActions: [topicArn],
      });
    }
    expect(ofType(withTopic, 'AWS::CloudWatch::Dashboard')).toEqual([]);
  });

  it('watches the poll, the launch executions, the report function, crashes at launch and the failure queue', () => {
    const stack = view({ CreateAlarms: 'true' });
    const props = (id: string) => stack.resource(id).Properties as JsonObject;
    expect(props('PollErrorsAlarm')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: '<PollLambdaFunction>' }],
    });
    // No poll for 5 minutes: no data means no invocation.
    expect(props('NoPollAlarm')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Invocations',
      Dimensions: [{ Name: 'FunctionName', Value: '<PollLambdaFunction>' }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
    });
    const executions = props('LaunchExecutionsFailedAlarm').Metrics as JsonObject[];
    expect(
      executions.flatMap((m) => {
        const stat = m.MetricStat as JsonObject | undefined;
        return stat ? [stat.Metric] : [];
      }),
    ).toEqual(
      ['ExecutionsFailed', 'ExecutionsTimedOut'].map((MetricName) => ({
        Namespace: 'AWS/States',
        MetricName,
        Dimensions: [{ Name: 'StateMachineArn', Value: '<LaunchStateMachine>' }],
      })),
    );
    expect(executions.filter((m) => m.ReturnData)).toHaveLength(1);
    expect(props('ReportErrorsAlarm')).toMatchObject({
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: '<ReportLambdaFunction>' }],
    });
    // The crash function's metric, with the dimensions src/telemetry.ts gives every metric.
    expect(props('RunsCrashedAtLaunchAlarm')).toMatchObject({
      Namespace: 'PrefectEcsLauncher',
      MetricName: 'RunsCrashedAtLaunch',
      Dimensions: [
        { Name: 'service', Value: 'prefect-ecs-launcher' },
        { Name: 'WorkPool', Value: 'my-ecs-pool' },
      ],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(props('ReportFailuresAlarm')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: '<ReportFailureQueue.QueueName>' }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  it("creates the dashboard with createDashboard=true, graphing the launcher's metrics of its pool", () => {
    const stack = view({ CreateDashboard: 'true' });
    expect(ofType(stack, 'AWS::CloudWatch::Alarm')).toEqual([]);
    const dashboard = stack.resource('Dashboard').Properties as JsonObject;
    expect(dashboard.DashboardName).toBe('prefect-ecs-launcher-dev');
    const body = JSON.parse(String(dashboard.DashboardBody)) as {
      widgets: { properties: { region: string; metrics: unknown[][] } }[];
    };
    const text = JSON.stringify(body);
    for (const metric of [
      'RunsDue',
      'RunsClaimed',
      'RunsStarted',
      'RunsNotClaimed',
      'RunsReturnedToScheduled',
      'RunsSwept',
      'RunsCancelled',
      'RunTaskLateness',
      'LaunchFailures',
      'RunsCrashedAtLaunch',
      'RunsCrashed',
      'ReportEvents',
      'ExecutionsFailed',
      'ApproximateNumberOfMessagesVisible',
    ]) {
      expect(text).toContain(`${metric}`);
    }
    for (const widget of body.widgets) expect(widget.properties.region).toBe('us-east-1');
    expect(text).toContain('"WorkPool","my-ecs-pool"');
    expect(text).toContain('<PollLambdaFunction>');
    expect(text).not.toMatch(/\$\{/);
  });
});

describe('one stage per pool', () => {
  // The README's "Serving several pools": a second stage, for another pool and cluster, beside the first
  // (stage dev, pool my-ecs-pool) in the same account and region.
  let other: Packaged;
  beforeAll(async () => {
    other = await packageService([
      '--stage',
      'ml',
      `--param=prefectApiUrl=${apiUrl}`,
      '--param=workPool=ml-pool',
      `--param=prefectApiKeySecretArn=${keyArn}`,
    ]);
  }, 240_000);

  afterAll(() => {
    if (other) fs.rmSync(other.dir, { recursive: true, force: true });
  });

  const everything = {
    RunNow: 'true',
    CreateAlarms: 'true',
    CreateDashboard: 'true',
    AlarmTopicArn: topicArn,
    CreateExecutionRole: 'true',
  };
  const dev = (values: Record<string, string> = {}) =>
    new StackView(template, { ...everything, Cluster: 'etl-cluster', ...values });
  const ml = (values: Record<string, string> = {}) =>
    new StackView(
      other.template,
      { ...everything, Cluster: 'ml-cluster', ...values },
      { 'AWS::StackName': 'prefect-ecs-launcher-ml' },
    );

  /**
   * The property that gives each resource type its physical name, which must be unique per account and
   * region; CloudFormation generates one from the stack's name where the template sets none.
   */
  const nameProperty: Record<string, string> = {
    'AWS::Lambda::Function': 'FunctionName',
    'AWS::Logs::LogGroup': 'LogGroupName',
    'AWS::Events::Rule': 'Name',
    'AWS::CloudWatch::Alarm': 'AlarmName',
    'AWS::CloudWatch::Dashboard': 'DashboardName',
    'AWS::IAM::Role': 'RoleName',
    'AWS::IAM::ManagedPolicy': 'ManagedPolicyName',
    'AWS::SQS::Queue': 'QueueName',
    'AWS::SecretsManager::Secret': 'Name',
    'AWS::StepFunctions::StateMachine': 'StateMachineName',
    'AWS::ECS::Cluster': 'ClusterName',
    'AWS::S3::Bucket': 'BucketName',
  };
  /** Types whose resources have no physical name of their own: they belong to a named resource. */
  const unnamed = [
    'AWS::Lambda::Version',
    'AWS::Lambda::Permission',
    'AWS::Lambda::Url',
    'AWS::Lambda::EventInvokeConfig',
    'AWS::S3::BucketPolicy',
  ];

  function physicalNames(stack: StackView): string[] {
    const names: string[] = [];
    for (const [id, resource] of Object.entries(stack.resources())) {
      if (unnamed.includes(resource.Type)) continue;
      const key = nameProperty[resource.Type];
      if (!key) throw new Error(`${id}: say whether ${resource.Type} has a physical name`);
      const name = resource.Properties?.[key];
      if (name !== undefined) names.push(`${resource.Type} ${String(name)}`);
    }
    return names;
  }

  it('names nothing alike in two stages, so both deploy side by side', () => {
    const first = physicalNames(dev());
    const second = physicalNames(ml());
    expect(first).toContain('AWS::Lambda::Function prefect-ecs-launcher-dev-poll');
    expect(second).toContain('AWS::Lambda::Function prefect-ecs-launcher-ml-poll');
    expect(second).toContain('AWS::CloudWatch::Dashboard prefect-ecs-launcher-ml');
    expect(first.filter((name) => second.includes(name))).toEqual([]);
    // The two names taken from parameters, as the README warns: let one stage only create each.
    const shared = { CreateCluster: 'true', Cluster: 'flows', CreateTaskLogGroup: 'true' };
    const clash = physicalNames(ml(shared)).filter((name) => physicalNames(dev(shared)).includes(name));
    expect(clash.sort()).toEqual(['AWS::ECS::Cluster flows', 'AWS::Logs::LogGroup prefect']);
  });

  it('keeps each stage to its own pool and cluster: claims, task events, metrics and alarms', () => {
    for (const [stack, pool, cluster] of [
      [dev(), 'my-ecs-pool', 'etl-cluster'],
      [ml(), 'ml-pool', 'ml-cluster'],
    ] as const) {
      for (const [, fn] of ofType(stack, 'AWS::Lambda::Function')) {
        const variables = ((fn.Properties as JsonObject).Environment as JsonObject).Variables as JsonObject;
        expect(variables.LAUNCHER_WORK_POOL).toBe(pool);
        expect(variables.LAUNCHER_CLUSTER).toBe(cluster);
      }
      const rules = ofType(stack, 'AWS::Events::Rule').filter(([, r]) => r.Properties?.EventPattern);
      expect(rules.map(([, r]) => ((r.Properties as JsonObject).EventPattern as JsonObject).detail)).toEqual(
        [{ prefix: 'prefect-flow-run:' }, { 'anything-but': { prefix: 'prefect-flow-run:' } }].map(
          (group) => ({
            group: [group],
            clusterArn: [`arn:aws:ecs:us-east-1:123456789012:cluster/${cluster}`],
          }),
        ),
      );
      const custom = ofType(stack, 'AWS::CloudWatch::Alarm').filter(
        ([, a]) => a.Properties?.Namespace === 'PrefectEcsLauncher',
      );
      expect(custom.length).toBeGreaterThan(0);
      for (const [, alarm] of custom) {
        expect(alarm.Properties?.Dimensions).toContainEqual({ Name: 'WorkPool', Value: pool });
      }
    }
  });
});
