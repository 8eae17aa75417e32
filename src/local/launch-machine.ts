import './polyfills';
import { ExecutionAbortedError, ExecutionError, StateMachine } from 'aws-local-stepfunctions';
import { loadLaunchDefinition, localFunctionArns } from './definition';
import { type EcsTaskApi, runTaskSync } from './run-task-sync';

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
  error?: string;
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
  private readonly machine = new StateMachine(loadLaunchDefinition(localFunctionArns()) as never, {
    validationOptions: { checkPaths: true, checkArn: true },
  });

  constructor(
    private readonly bindings: LaunchBindings,
    private readonly options: { retryIntervalMs?: number; pollIntervalMs?: number } = {},
  ) {}

  start(executionName: string, input: unknown): RunningExecution {
    const controller = new AbortController();
    // The RunTask call in flight, so that an aborted execution ends only after it stopped its task.
    let runTaskCall: Promise<unknown> = Promise.resolve();
    const retry = this.options.retryIntervalMs;
    const execution = this.machine.run(input as JsonValue, {
      context: { Execution: { Name: executionName, Input: input as JsonValue } } as never,
      overrides: {
        taskResourceLocalHandlers: {
          Prepare: (i) => this.bindings.prepare(i) as Promise<JsonValue>,
          Crash: (i) => this.bindings.crash(i) as Promise<JsonValue>,
          RunTask: (i) => {
            const call = runTaskSync(this.bindings.ecs, i, {
              signal: controller.signal,
              pollIntervalMs: this.options.pollIntervalMs,
            });
            runTaskCall = call.catch(() => undefined);
            return call as Promise<JsonValue>;
          },
        },
        ...(retry === undefined
          ? {}
          : { retryIntervalOverrides: { Prepare: retry, RunTask: retry, Crash: retry } }),
      },
    });
    const result = execution.result.then(
      (output): ExecutionResult => ({ status: 'SUCCEEDED', output }),
      async (error: unknown): Promise<ExecutionResult> => {
        if (error instanceof ExecutionAbortedError) {
          await runTaskCall;
          return { status: 'ABORTED' };
        }
        if (error instanceof ExecutionError) return { status: 'FAILED', error: error.message };
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
