/**
 * The launcher's errors are part of its API: the state machine's Retry and Catch match on these names
 * (a Lambda error's `errorType` is the thrown error's `name`), and a test checks every `ErrorEquals` name
 * there exists here. Keep names stable; add new classes rather than renaming.
 */
export abstract class LauncherError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    // `name` must survive minification (esbuild renames classes), so each subclass sets it literally.
    Object.defineProperty(this, 'name', {
      value: new.target.errorName,
      enumerable: false,
      configurable: true,
    });
  }
  static readonly errorName: string = 'LauncherError';
}

/** A setting of the launcher itself (environment, CLI flags) is missing or malformed. */
export class ConfigError extends LauncherError {
  static override readonly errorName = 'ConfigError';
}

/** The Prefect API answered with an error status; `status` and `route` say which. */
export class PrefectApiError extends LauncherError {
  static override readonly errorName = 'PrefectApiError';
  constructor(
    message: string,
    readonly route: string,
    readonly status: number,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The Prefect API could not be reached (connection refused, DNS, timeout) after all retries. */
export class PrefectUnavailableError extends LauncherError {
  static override readonly errorName = 'PrefectUnavailableError';
}

/** The pool's base job template or a deployment / flow-run job variable is invalid for ECS. */
export class JobConfigurationError extends LauncherError {
  static override readonly errorName = 'JobConfigurationError';
}

/** An AWS API kept throttling the launcher after the SDK's own retries; the state machine retries later. */
export class AwsThrottledError extends LauncherError {
  static override readonly errorName = 'AwsThrottledError';
}

/** The flow run left Pending before it was prepared (cancelled, deleted or taken over); nothing to launch. */
export class FlowRunNotPendingError extends LauncherError {
  static override readonly errorName = 'FlowRunNotPendingError';
}

/** The flow run's deployment was deleted; the worker cancels such runs and so does the launcher. */
export class DeploymentNotFoundError extends LauncherError {
  static override readonly errorName = 'DeploymentNotFoundError';
}

/**
 * ECS would not register (or let the launcher look up) the job's task definition, for a reason other than
 * throttling: an invalid definition, missing permissions, or repeated concurrent-revision conflicts.
 */
export class TaskDefinitionRegistrationError extends LauncherError {
  static override readonly errorName = 'TaskDefinitionRegistrationError';
}

/** A Lambda was invoked with an event it does not understand; the message names what is wrong. */
export class InvalidEventError extends LauncherError {
  static override readonly errorName = 'InvalidEventError';
}

/** Every class above, by name: what the state machine may refer to in ErrorEquals. */
export const launcherErrorNames: readonly string[] = [
  ConfigError,
  PrefectApiError,
  PrefectUnavailableError,
  JobConfigurationError,
  AwsThrottledError,
  FlowRunNotPendingError,
  DeploymentNotFoundError,
  TaskDefinitionRegistrationError,
  InvalidEventError,
].map((c) => c.errorName);
