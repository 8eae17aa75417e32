import aslValidator from 'asl-validator';
import { launcherErrorNames } from '../../src/errors';
import {
  RUN_TASK_SHAPES,
  type RunTaskShape,
  runTaskStateName,
  STEP_FUNCTIONS_RUN_TASK_FIELDS,
} from '../../src/launch/run-task-contract';
import {
  launchDefinitionPlaceholders,
  loadLaunchDefinition,
  localFunctionArns,
} from '../../src/local/definition';

type State = {
  Type: string;
  Resource?: string;
  Parameters?: Record<string, string>;
  Choices?: { Variable: string; StringEquals: string; Next: string }[];
  Retry?: { ErrorEquals: string[] }[];
  Catch?: { ErrorEquals: string[] }[];
};

const definition = loadLaunchDefinition(localFunctionArns()) as { States: Record<string, State> };

// Names AWS raises itself: the States language's own, Lambda's service errors and those of the ECS integration.
// https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
const awsName = /^(States\.[A-Za-z]+|Lambda\.[A-Za-z]+|ECS\.[A-Za-z]+|AmazonECS\.Unknown)$/;

describe('launch state machine definition', () => {
  it('is valid Amazon States Language, paths and ARNs included', () => {
    const { isValid, errorsText } = aslValidator(definition, { checkPaths: true, checkArn: true });
    expect(errorsText()).toBe('');
    expect(isValid).toBe(true);
  });

  it('uses only the Lambda placeholders serverless.yml substitutes', () => {
    expect(launchDefinitionPlaceholders()).toEqual(['PrepareFunctionArn', 'CrashFunctionArn']);
  });

  it('matches only error names that exist: the launcher error classes or AWS-defined errors', () => {
    const names = Object.values(definition.States).flatMap((s) =>
      [...(s.Retry ?? []), ...(s.Catch ?? [])].flatMap((r) => r.ErrorEquals),
    );
    expect(names.length).toBeGreaterThan(0);
    const unknown = names.filter((n) => !awsName.test(n) && !launcherErrorNames.includes(n));
    expect(unknown).toEqual([]);
  });

  const runTaskStates = Object.entries(definition.States).filter(([, s]) => s.Resource?.includes(':ecs:'));

  it('never retries States.TaskFailed or States.ALL on RunTask, so a retry cannot start a second task', () => {
    expect(runTaskStates.length).toBeGreaterThan(0);
    for (const [, state] of runTaskStates) {
      const retried = (state.Retry ?? []).flatMap((r) => r.ErrorEquals);
      expect(retried).not.toContain('States.TaskFailed');
      expect(retried).not.toContain('States.ALL');
      expect(retried.length).toBeGreaterThan(0);
    }
  });

  it('has one RunTask state per request shape, naming exactly its fields, and no other', () => {
    const shapes = Object.keys(RUN_TASK_SHAPES) as RunTaskShape[];
    expect(runTaskStates.map(([name]) => name).sort()).toEqual(shapes.map(runTaskStateName).sort());
    for (const shape of shapes) {
      const state = definition.States[runTaskStateName(shape)] as State;
      expect(state.Resource).toBe('arn:aws:states:::ecs:runTask.sync');
      const expected = Object.fromEntries(
        RUN_TASK_SHAPES[shape].map((f) => [`${f}.$`, `$.prepared.runTask.${f}`]),
      );
      expect(state.Parameters).toEqual(expected);
      for (const field of RUN_TASK_SHAPES[shape]) expect(STEP_FUNCTIONS_RUN_TASK_FIELDS).toContain(field);
    }
  });

  it('differs between RunTask states only in the fields they name', () => {
    const rest = runTaskStates.map(([, { Parameters: _, ...s }]) => {
      const { Comment: _comment, ...same } = s as State & { Comment?: string };
      return same;
    });
    for (const other of rest) expect(other).toEqual(rest[0]);
  });

  it('chooses the RunTask state by the shape Prepare names, and crashes the run on any other', () => {
    const choose = Object.values(definition.States).find((s) => s.Type === 'Choice') as State;
    const routes = Object.fromEntries((choose.Choices ?? []).map((c) => [c.StringEquals, c.Next]));
    const shapes = Object.keys(RUN_TASK_SHAPES) as RunTaskShape[];
    expect(routes).toEqual(Object.fromEntries(shapes.map((s) => [s, runTaskStateName(s)])));
    for (const c of choose.Choices ?? []) expect(c.Variable).toBe('$.prepared.shape');
    expect((choose as { Default?: string }).Default).toBe('UnknownRunTaskShape');
  });
});
