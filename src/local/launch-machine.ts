import './polyfills';
import { ExecutionAbortedError, ExecutionError, StateMachine } from 'aws-local-stepfunctions';
import { loadLaunchDefinition, localFunctionArns } from './definition';
import { checkPayloadSize, type EcsTaskApi, runTaskSync } from './run-task-sync';

type JsonValue = Parameters<StateMachine['run']>[0];

/** The code behind each Lambda Task state: the real handlers' functions, called in-process. */
export interface LaunchBindings {
  prepare(input: unknown): Promise<unknown>;
  crash(input: unknown): Promise<unknown>;
  ecs: EcsTaskApi;
}

export interface ExecutionResult {
  status: 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  output?: unknown;
  /** A failed execution's error name and cause, as DescribeExecution reports them. */
  error?: string;
  cause?: string;
  /**
   * State transitions, as Step Functions bills them for a Standard workflow: each state entered and each
   * retry of one (https://aws.amazon.com/step-functions/pricing/).
   */
  transitions: number;
}

const RUN_TASK_SYNC = 'arn:aws:states:::ecs:runTask.sync';

/** The Task states of the definition that call ECS's RunTask through `.sync`. */
function runTaskStates(definition: Record<string, unknown>): string[] {
  const states = definition.States as Record<string, { Type?: string; Resource?: string }>;
  return Object.entries(states)
    .filter(([, state]) => state.Type === 'Task' && state.Resource === RUN_TASK_SYNC)
    .map(([name]) => name);
}

/** A Lambda Task state's function, with Step Functions' payload limit on what goes in and comes out. */
function lambdaState(fn: (input: unknown) => Promise<unknown>) {
  return async (input: JsonValue): Promise<JsonValue> => {
    checkPayloadSize(input, 'The state/task input, after Parameters processing,');
    const output = await fn(input);
    checkPayloadSize(output, 'The state/task result');
    return output as JsonValue;
  };
}

export interface RunningExecution {
  result: Promise<ExecutionResult>;
  /** Stops the execution, as StopExecution does (the RunTask poll loop ends with it). */
  abort(): void;
}

/**
 * Executes the deployed launch definition (statemachines/launch.asl.json) offline with
 * aws-local-stepfunctions: the Lambda states run the given functions, `ecs:runTask.sync` runs the
 * `.sync` emulation against the given ECS API (moto in tests and `npm start`).
 */
export class LocalLaunchMachine {
  private readonly definition = loadLaunchDefinition(localFunctionArns());
  private readonly machine = new StateMachine(this.definition as never, {
    validationOptions: { checkPaths: true, checkArn: true },
  });
  private readonly runTaskStates = runTaskStates(this.definition);

  constructor(
    private readonly bindings: LaunchBindings,
    private readonly options: { retryIntervalMs?: number; pollIntervalMs?: number } = {},
  ) {}

  start(executionName: string, input: unknown): RunningExecution {
    const controller = new AbortController();
    // The RunTask call in flight, so that an aborted execution ends only after it stopped its task.
    let runTaskCall: Promise<unknown> = Promise.resolve();
    const retry = this.options.retryIntervalMs;
    const runTask = (i: JsonValue) => {
      const call = runTaskSync(this.bindings.ecs, i, {
        signal: controller.signal,
        pollIntervalMs: this.options.pollIntervalMs,
      });
      runTaskCall = call.catch(() => undefined);
      return call as Promise<JsonValue>;
    };
    const withRunTask = <T>(value: T) => Object.fromEntries(this.runTaskStates.map((name) => [name, value]));
    const execution = this.machine.run(input as JsonValue, {
      context: { Execution: { Name: executionName, Input: input as JsonValue } } as never,
      overrides: {
        taskResourceLocalHandlers: {
          Prepare: lambdaState(this.bindings.prepare),
          Crash: lambdaState(this.bindings.crash),
          ...withRunTask(runTask),
        },
        ...(retry === undefined
          ? {}
          : { retryIntervalOverrides: { Prepare: retry, Crash: retry, ...withRunTask(retry) } }),
      },
    });
    // The event log closes with the execution's end, whatever it is.
    const transitions = (async () => {
      let count = 0;
      for await (const event of execution.eventLogs) {
        if (event.type === 'StateEntered' || event.type === 'StateRetried') count += 1;
      }
      return count;
    })();
    const result = execution.result.then(
      async (output): Promise<ExecutionResult> => ({
        status: 'SUCCEEDED',
        output,
        transitions: await transitions,
      }),
      async (error: unknown): Promise<ExecutionResult> => {
        if (error instanceof ExecutionAbortedError) {
          await runTaskCall;
          return { status: 'ABORTED', transitions: await transitions };
        }
        if (error instanceof ExecutionError) {
          // The state's own error: a Fail state's, or one no Retry or Catch handled (or could).
          const caught = error.cause instanceof Error ? error.cause : error;
          return {
            status: 'FAILED',
            error: caught.name,
            cause: caught.message,
            transitions: await transitions,
          };
        }
        throw error;
      },
    );
    return {
      result,
      abort: () => {
        controller.abort();
        execution.abort();
      },
    };
  }
}
