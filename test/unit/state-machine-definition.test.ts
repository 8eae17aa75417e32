import aslValidator from 'asl-validator';
import { launcherErrorNames } from '../../src/errors';
import {
  launchDefinitionPlaceholders,
  loadLaunchDefinition,
  localFunctionArns,
} from '../../src/local/definition';

type State = {
  Type: string;
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

  it('never retries States.TaskFailed or States.ALL on RunTask, so a retry cannot start a second task', () => {
    const retried = (definition.States.RunTask?.Retry ?? []).flatMap((r) => r.ErrorEquals);
    expect(retried).not.toContain('States.TaskFailed');
    expect(retried).not.toContain('States.ALL');
    expect(retried.length).toBeGreaterThan(0);
  });
});
