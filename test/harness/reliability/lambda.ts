import { createPrefectClient } from '../../../src/prefect/client';
import { type AwsClientSettings, createRuntime, type Runtime } from '../../../src/runtime';

/**
 * One Lambda container of the launcher: the runtime a cold start builds, whose every call out (Prefect by
 * fetch, AWS by SDK middleware) can be frozen for good — what a Lambda that hits its timeout or is killed
 * looks like from outside: it stops mid-way, and nothing it had not yet sent is ever sent, nothing it was
 * waiting for is ever read.
 */
export interface LambdaContainer {
  rt: Runtime;
  readonly dead: boolean;
  /** Resolves when the container is killed. */
  killed: Promise<void>;
  kill(): void;
}

/** A call a container is about to make; `killWhen` may decide the container dies right there. */
export type OutgoingCall =
  | { service: 'prefect'; method: string; url: string }
  | { service: 'aws'; command: string; input: Record<string, unknown> };

const never = () => new Promise<never>(() => undefined);

/** How the Prefect client backs off between retries (the suite compresses the launcher's clock). */
export type Backoff = { backoffBaseMs: number; maxDelayMs: number };

export async function lambdaContainer(
  env: Record<string, string>,
  aws: AwsClientSettings,
  options: { killWhen?: (call: OutgoingCall) => boolean; backoff?: Backoff } = {},
): Promise<LambdaContainer> {
  const { killWhen } = options;
  const rt = await createRuntime(env, aws);
  let dead = false;
  let onKill: () => void = () => undefined;
  const killed = new Promise<void>((resolve) => {
    onKill = resolve;
  });
  const kill = () => {
    if (dead) return;
    dead = true;
    onKill();
  };

  const fetchOrFreeze: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (dead || killWhen?.({ service: 'prefect', method: init?.method ?? 'GET', url })) {
      kill();
      return never();
    }
    const response = await fetch(input, init);
    return dead ? never() : response;
  };
  // The same client the runtime built (same connection settings), with the container's fetch.
  rt.prefect = createPrefectClient(
    rt.config.prefect,
    { kind: 'none' },
    { fetch: fetchOrFreeze, ...options.backoff },
  );

  const freeze = {
    // biome-ignore lint/suspicious/noExplicitAny: one middleware for three SDK clients of different types.
    middleware: (next: any, context: { commandName?: string }) => async (args: { input: unknown }) => {
      const call: OutgoingCall = {
        service: 'aws',
        command: context.commandName ?? '',
        input: (args.input ?? {}) as Record<string, unknown>,
      };
      if (dead || killWhen?.(call)) {
        kill();
        return never();
      }
      const out = await next(args);
      return dead ? never() : out;
    },
    options: { step: 'initialize' as const, name: 'lambdaContainerFreeze' },
  };
  rt.aws.sfn.middlewareStack.add(freeze.middleware, freeze.options);
  rt.aws.ecs.middlewareStack.add(freeze.middleware, freeze.options);
  (await rt.aws.ec2.client()).middlewareStack.add(freeze.middleware, freeze.options);

  return {
    rt,
    get dead() {
      return dead;
    },
    killed,
    kill,
  };
}

/** Resolves after `ms` unless cancelled first, so that no timer outlives the suite. */
export function deadline(ms: number): { passed: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const passed = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return { passed, cancel: () => clearTimeout(timer) };
}

/**
 * What Step Functions gets from a Lambda function that ran out of time: the error `Sandbox.Timedout`, which
 * the launch definition does not retry. https://docs.aws.amazon.com/lambda/latest/dg/services-stepfunctions.html
 */
export function lambdaTimedOut(deployedTimeoutSeconds: number): Error {
  const error = new Error(
    JSON.stringify({
      errorMessage: `RequestId: 00000000-0000-0000-0000-000000000000 Error: Task timed out after ${deployedTimeoutSeconds.toFixed(2)} seconds`,
    }),
  );
  error.name = 'Sandbox.Timedout';
  return error;
}

/**
 * One Lambda function: each invocation runs in a warm container if one is free, else in a cold one (Lambda
 * scales out per concurrent invocation); an invocation still running at the timeout, or whose container is
 * killed, fails with `Sandbox.Timedout` and its container is discarded, frozen.
 */
export class LambdaFunction {
  private readonly warm: LambdaContainer[] = [];
  timedOut = 0;

  constructor(
    private readonly coldStart: () => Promise<LambdaContainer>,
    private readonly timeoutMs: number,
    private readonly deployedTimeoutSeconds: number,
  ) {}

  async invoke<T>(handler: (rt: Runtime) => Promise<T>): Promise<T> {
    const container = this.warm.pop() ?? (await this.coldStart());
    const timeout = deadline(this.timeoutMs);
    const outcome = await Promise.race([
      handler(container.rt).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      container.killed.then(() => 'dead' as const),
      timeout.passed.then(() => 'dead' as const),
    ]);
    timeout.cancel();
    if (outcome === 'dead') {
      container.kill();
      this.timedOut += 1;
      throw lambdaTimedOut(this.deployedTimeoutSeconds);
    }
    this.warm.push(container);
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  }
}
