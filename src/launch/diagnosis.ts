import type { Container, Task } from '@aws-sdk/client-ecs';

/**
 * Why a stopped ECS task means a crashed flow run, in words a user can act on. Pure: the report function,
 * the launch state machine's failure path and the sweep all use it.
 *
 * It reads the evidence in order of strength: the stop code, the task's stop reason, each container's
 * reason and exit code (the flow's own container first, then its sidecars), the capacity provider and the
 * task's timestamps. On EC2 the cause often lives only in a container's reason (the task says no more than
 * "Essential container in task exited"), and a stop by a user, a host or AWS maintenance also leaves an
 * exit code (143 for the SIGTERM, 137 for the SIGKILL after the stop timeout), so a stop reason that names
 * such a cause wins over the exit code.
 *
 * Stop codes: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html#ECS-Type-Task-stopCode
 * Stop reasons: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
 * The events and their sources: test/fixtures/ecs-events/README.md.
 */

/** Whose problem the stop is; metrics group by it. */
export type DiagnosisCategory =
  /** The flow's process failed: a non-zero exit code, or out of memory. */
  | 'user-code'
  /** The task's configuration: image, registry credentials, secrets, log group, network, disk, memory. */
  | 'configuration'
  /** No capacity to place the task (RESOURCE:*, a capacity provider that could not place it). */
  | 'capacity'
  /** AWS's infrastructure: a host that went away, Fargate maintenance, a Spot interruption. */
  | 'infrastructure'
  /** Someone stopped it on purpose: StopTask, the launcher's cancellation, a scale-in. */
  | 'deliberate'
  /** The flow container exited 0: nothing crashed; the engine reports the run's outcome. */
  | 'none'
  /** Stopped, but nothing in the task says why. */
  | 'unknown';

export interface StoppedTaskDiagnosis {
  /** True when the flow run should be Crashed (unless it already reached a final state). */
  crashed: boolean;
  /** True when the task never started running the flow (pull failure, no capacity, …). */
  failedToStart: boolean;
  category: DiagnosisCategory;
  /** The cause in a few words, e.g. "Spot capacity was reclaimed (Fargate Spot interruption)". */
  cause: string;
  /** What to do about it, e.g. "the run can be retried on FARGATE". */
  action: string;
  /** The state message: one line naming the cause, at most MAX_STATE_MESSAGE characters. */
  message: string;
  /** `"{summary}: {detail} Resolution: {resolution}"` and the task's ARN, for the flow run's log. */
  explanation: string;
  /** The flow-run log level: a stop that is nobody's mistake in the run is a warning. */
  severity: 'error' | 'warning';
}

/**
 * Prefect stores a state message of any length, but the UI, notifications and automations show it as one
 * line; ECS's reasons run to 1,024 characters, so the quoted part is cut.
 */
export const MAX_STATE_MESSAGE = 300;
const MAX_QUOTE = 160;

const SUBMIT = 'Failed to submit flow run to infrastructure';
const NON_ZERO = 'The following containers stopped with a non-zero exit code';

export function flowContainerName(task: Task, fallback = 'prefect'): string {
  // The launcher always overrides the flow container's command, so the override that has one names it.
  const withCommand = task.overrides?.containerOverrides?.find((o) => o.command?.length);
  return withCommand?.name ?? fallback;
}

/** What one rule found: the cause, what to do, and how it is told. */
interface Finding {
  category: Exclude<DiagnosisCategory, 'none'>;
  cause: string;
  action: string;
  /** The text that proves it (a stop reason or a container's reason), quoted in the log. */
  evidence?: string;
  /** The cause is a failure to start the flow (the worker's "Failed to submit…" wording). */
  startFailure?: boolean;
  /** A longer resolution for the log; `action` when absent. */
  resolution?: string;
  /** The log line's summary, when prefect-aws's observer has its own words for the case. */
  summary?: string;
}

type Facts = {
  task: Task;
  stopCode: string;
  stoppedReason: string;
  flow: Container | undefined;
  flowName: string;
  /** The flow container first, then the sidecars. */
  ordered: Container[];
  /** Every reason ECS gave, task first, then each container's, in the order above. */
  reasons: string[];
  spot: boolean;
};

function hasExitCode(c: Container): c is Container & { exitCode: number } {
  return typeof c.exitCode === 'number';
}

function gatherFacts(task: Task, flowName: string): Facts {
  const containers = task.containers ?? [];
  const flow = containers.find((c) => c.name === flowName);
  const ordered = flow ? [flow, ...containers.filter((c) => c !== flow)] : containers;
  const stoppedReason = (task.stoppedReason ?? '').trim();
  const reasons = [stoppedReason, ...ordered.map((c) => (c.reason ?? '').trim())].filter(Boolean);
  return {
    task,
    stopCode: task.stopCode ?? '',
    stoppedReason,
    flow,
    flowName,
    ordered,
    reasons,
    spot: /SPOT/i.test(task.capacityProviderName ?? ''),
  };
}

/** The first reason matching `pattern`, task's first, then the flow container's, then the sidecars'. */
function reasonMatching(facts: Facts, pattern: RegExp): string | undefined {
  return facts.reasons.find((r) => pattern.test(r));
}

// --- The rules, strongest evidence first. Each returns a finding or nothing. ---

function spotInterruption(f: Facts): Finding | undefined {
  // Fargate Spot: stopCode SpotInterruption on STOPPED, TerminationNotice on the notice two minutes before;
  // users report the STOPPED event without a stop code too (aws/containers-roadmap#1565, reproio/wrapbox#53).
  // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html
  const said = reasonMatching(f, /Spot Task was interrupted/i);
  if (f.stopCode !== 'SpotInterruption' && !said) return undefined;
  return {
    category: 'infrastructure',
    cause: 'Spot capacity was reclaimed (Fargate Spot interruption)',
    action: 'the run can be retried on FARGATE',
    evidence: said ?? f.stoppedReason,
    resolution:
      'retry the flow run (Prefect retries it when the deployment sets retries), or run flows that must not be interrupted with launch_type FARGATE or a capacity provider strategy with an on-demand base.',
  };
}

function launcherStop(f: Facts): Finding | undefined {
  if (!/prefect-ecs-launcher/.test(f.stoppedReason)) return undefined;
  return {
    category: 'deliberate',
    cause: `prefect-ecs-launcher stopped the task ("${f.stoppedReason}")`,
    action: 'nothing to fix; the run was cancelled',
    evidence: f.stoppedReason,
  };
}

function hostGone(f: Facts): Finding | undefined {
  // "Host EC2 (instance i-…) stopped/terminated": the container instance went away under the task.
  // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-errors.html
  const said = reasonMatching(f, /^Host EC2 \(instance [^)]*\) (stopped|terminated)/i);
  if (!said) return undefined;
  const instance = /\(instance ([^)]*)\)/.exec(said)?.[1] ?? 'unknown';
  return {
    category: 'infrastructure',
    cause: `the task's EC2 host ${instance} was ${/stopped/i.test(said) ? 'stopped' : 'terminated'}`,
    action:
      'retry the run; protect instances with tasks from scale-in (managed termination protection), or use on-demand instances',
    evidence: said,
  };
}

function maintenance(f: Facts): Finding | undefined {
  // Fargate task retirement: AWS stops the task on or after the date its retirement notice gave.
  // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-maintenance.html
  const said = reasonMatching(f, /performing maintenance on the underlying infrastructure/i);
  if (!said) return undefined;
  return {
    category: 'infrastructure',
    cause: "AWS retired the task's Fargate host for maintenance",
    action: 'retry the run',
    evidence: said,
    resolution:
      'retry the flow run. AWS announces retirements in the AWS Health Dashboard; the account setting fargateTaskRetirementWaitPeriod chooses how long before it stops a task.',
  };
}

function infrastructureOther(f: Facts): Finding | undefined {
  const draining = reasonMatching(f, /instance draining|DRAINING state/i);
  if (draining) {
    return {
      category: 'infrastructure',
      cause: "the task's container instance was drained",
      action: 'retry the run',
      evidence: draining,
    };
  }
  // CannotInspectContainerError: the agent could not describe the container through the host's runtime.
  // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cannot-inspect-container.html
  const inspect = reasonMatching(f, /CannotInspectContainerError/);
  if (inspect) {
    return {
      category: 'infrastructure',
      cause: "the container runtime on the task's host did not answer (CannotInspectContainerError)",
      action:
        "retry the run; if it recurs, check the instance's Docker daemon, disk I/O and ECS agent version",
      evidence: inspect,
    };
  }
  if (f.stopCode === 'InfrastructureHealth') {
    return {
      category: 'infrastructure',
      cause: 'ECS stopped the task because its infrastructure was unhealthy',
      action: 'retry the run',
      evidence: f.stoppedReason || f.stopCode,
    };
  }
  return undefined;
}

function deliberateStop(f: Facts): Finding | undefined {
  const scaling = reasonMatching(f, /^Scaling activity initiated by/i);
  if (scaling) {
    return {
      category: 'deliberate',
      cause: 'an ECS service scaled the task in',
      action: 'run flows as standalone tasks, not in a service',
      evidence: scaling,
    };
  }
  const deregistered = reasonMatching(f, /deregistration forced by user/i);
  if (deregistered) {
    return {
      category: 'deliberate',
      cause: "the task's container instance was deregistered",
      action: 'retry the run',
      evidence: deregistered,
    };
  }
  if (f.stopCode === 'UserInitiated') {
    // StopTask's default reason is "Task stopped by user"; a caller may pass its own.
    // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html
    const reason = f.stoppedReason || 'Task stopped by user';
    return {
      category: 'deliberate',
      cause: `someone stopped the task (StopTask: ${quote(reason)})`,
      action: 'nothing to fix if intended; CloudTrail names who called ecs:StopTask',
      evidence: reason,
    };
  }
  return undefined;
}

function imagePull(f: Facts): Finding | undefined {
  const said = reasonMatching(f, /CannotPullContainerError|CannotPullImageManifestError|pull image manifest/);
  if (!said) return undefined;
  const base = {
    category: 'configuration' as const,
    evidence: said,
    startFailure: true,
    summary: 'Container image pull failed',
  };
  // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_cannot_pull_image.html
  if (/no space left on device/i.test(said)) {
    return {
      ...base,
      cause: "the task's host ran out of disk space while pulling the image",
      action: "free or enlarge the instance's Docker volume",
      resolution:
        "free or enlarge the container instance's Docker volume (prune old images with the agent's automated image cleanup), or use a smaller image.",
    };
  }
  if (/toomanyrequests|rate limit/i.test(said)) {
    return {
      ...base,
      cause: "the registry's pull rate limit was reached",
      action: 'pull with credentials (repositoryCredentials) or from a mirror such as ECR',
    };
  }
  if (/\b40[13]\b|unauthorized|denied|forbidden|authentication required|no basic auth/i.test(said)) {
    return {
      ...base,
      cause: 'the registry refused the image pull',
      action: 'let the execution role pull the image (ECR policy) or give the task registry credentials',
    };
  }
  if (/i\/o timeout|request canceled|dial tcp|context deadline|connection/i.test(said)) {
    return {
      ...base,
      cause: 'the task could not reach the image registry',
      action: 'give the task a public IP, a NAT gateway or VPC endpoints for ECR and S3',
    };
  }
  if (/not found|manifest unknown|does not exist|404/i.test(said)) {
    return {
      ...base,
      cause: 'the image does not exist',
      action: 'check the `image` job variable and that the tag is pushed',
    };
  }
  return {
    ...base,
    cause: 'the image could not be pulled',
    action: 'check the `image` job variable, the execution role and the network route to the registry',
  };
}

function resourceInitialization(f: Facts): Finding | undefined {
  // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/resource-initialization-error.html
  const said = reasonMatching(f, /ResourceInitializationError/);
  if (!said) return undefined;
  const base = { category: 'configuration' as const, evidence: said, startFailure: true };
  const unreachable = /timeout|timed out|send request failed|dial tcp|network/i.test(said);
  if (/ecr registry auth/i.test(said)) {
    return {
      ...base,
      cause: 'the task could not get ECR credentials',
      action: unreachable
        ? 'give the task a public IP, a NAT gateway or VPC endpoints for ECR'
        : 'let the execution role call ecr:GetAuthorizationToken',
    };
  }
  if (/asm|ssm|secret from|parameter/i.test(said)) {
    return {
      ...base,
      cause: 'the task could not fetch its secrets or registry credentials',
      action: unreachable
        ? 'give the task a route to Secrets Manager / SSM (public IP, NAT or VPC endpoints)'
        : 'check that the execution role may read the secret and that the task can reach Secrets Manager / SSM',
    };
  }
  if (/log/i.test(said)) {
    return {
      ...base,
      cause: 'the task could not set up its logging',
      action: 'create the log group and let the execution role write to it',
    };
  }
  return {
    ...base,
    cause: 'the task could not initialise its resources',
    action: "check the execution role's permissions and the task's network route to AWS services",
  };
}

function containerStart(f: Facts): Finding | undefined {
  const logging = reasonMatching(f, /failed to initialize logging driver|log group does not exist/i);
  if (logging) {
    const denied = /AccessDenied/i.test(logging);
    return {
      category: 'configuration',
      cause: denied
        ? 'the CloudWatch log group could not be created (access denied)'
        : "the task's CloudWatch log group does not exist",
      action: denied
        ? 'create the log group, or let the role call logs:CreateLogGroup'
        : 'create the log group, or set awslogs-create-group to true',
      evidence: logging,
      startFailure: true,
    };
  }
  const oom = reasonMatching(f, /OOM-killed|memory limit too low/i);
  if (oom) {
    return {
      category: 'configuration',
      cause: "the container's memory limit is too low for it to start",
      action: 'raise the `memory` job variable',
      evidence: oom,
      startFailure: true,
    };
  }
  const eni = reasonMatching(f, /network interface|\bENI\b/i);
  if (eni) {
    return {
      category: 'configuration',
      cause: "the task's network interface could not be set up",
      action: "check the subnets' free IP addresses and the account's ENI quota, then retry",
      evidence: eni,
      startFailure: true,
    };
  }
  const start = reasonMatching(f, /CannotStartContainerError|CannotCreateContainerError/);
  if (start) {
    return {
      category: 'configuration',
      cause: 'a container could not be started',
      action: 'check the task definition against the reason ECS gave',
      evidence: start,
      startFailure: true,
    };
  }
  return undefined;
}

function capacity(f: Facts): Finding | undefined {
  // TaskFailedToStart: RESOURCE:* (DescribeTasks) and a capacity provider that gave up after ~30 minutes.
  // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html
  const resource = reasonMatching(f, /RESOURCE:[A-Z_]+/);
  const unavailable = reasonMatching(
    f,
    /capacity is unavailable|insufficient capacity|no container instance/i,
  );
  const unplaced = f.stopCode === 'TaskFailedToStart' && !f.ordered.length && !f.stoppedReason;
  if (!resource && !unavailable && !unplaced) return undefined;
  return {
    category: 'capacity',
    cause: 'no capacity could be found to place the task',
    action: f.spot
      ? 'retry later, or use FARGATE beside FARGATE_SPOT in the capacity provider strategy'
      : "raise the capacity provider's maximum, lower cpu/memory, or use another capacity provider",
    evidence: resource ?? unavailable,
    startFailure: true,
  };
}

const SIGNALS: Record<number, string> = { 134: 'SIGABRT', 137: 'SIGKILL', 139: 'SIGSEGV', 143: 'SIGTERM' };

function exitCodes(f: Facts): Finding | undefined {
  const failed = f.ordered.filter((c) => hasExitCode(c) && c.exitCode !== 0) as Array<
    Container & { exitCode: number }
  >;
  const first = failed[0];
  if (!first) return undefined;
  const sidecar = first !== f.flow && Boolean(f.flow);
  const who = sidecar ? `the sidecar '${first.name}'` : `the flow container '${first.name}'`;
  const oom = /OutOfMemory/i.test(first.reason ?? '');
  if (oom || first.exitCode === 137) {
    return {
      category: sidecar ? 'configuration' : 'user-code',
      cause: oom
        ? `${who} ran out of memory (exit code 137)`
        : `${who} was killed (exit code 137, SIGKILL: out of memory, or a stop that outlasted the stop timeout)`,
      action: sidecar ? `raise the memory of '${first.name}'` : 'raise the `memory` job variable',
      evidence: first.reason || `exit code ${first.exitCode}`,
    };
  }
  const signal = SIGNALS[first.exitCode];
  return {
    category: sidecar ? 'configuration' : 'user-code',
    cause: `${who} exited with code ${first.exitCode}${signal ? ` (${signal})` : ''}`,
    action: sidecar
      ? `read the logs of '${first.name}', or mark it not essential`
      : "read the container's logs for the error",
    evidence: first.reason || f.stoppedReason || `exit code ${first.exitCode}`,
    resolution: sidecar
      ? `read the logs of '${first.name}'; an essential sidecar that exits stops the flow with it.`
      : "read the container's logs (configure_cloudwatch_logs); a flow that raised is reported by the engine, so this is the process itself failing: a missing module, a bad command, a crash.",
  };
}

function startFailureCode(f: Facts): Finding | undefined {
  if (f.stopCode !== 'TaskFailedToStart') return undefined;
  return {
    category: 'unknown',
    cause: 'ECS could not start the task',
    action: 'see the stopped task in the ECS console',
    evidence: f.stoppedReason || f.stopCode,
    startFailure: true,
  };
}

/** The rules in order of evidence: a named cause in a reason beats a stop code, which beats an exit code. */
const RULES: ReadonlyArray<(f: Facts) => Finding | undefined> = [
  spotInterruption,
  launcherStop,
  hostGone,
  maintenance,
  infrastructureOther,
  imagePull,
  resourceInitialization,
  containerStart,
  capacity,
  deliberateStop,
  exitCodes,
  startFailureCode,
];

export function diagnoseStoppedTask(
  task: Task,
  containerName = flowContainerName(task),
): StoppedTaskDiagnosis {
  const facts = gatherFacts(task, containerName);
  const containers = task.containers ?? [];
  // The observer's rule for what crashed the run: the flow container's (or, without it, every container's)
  // exit code is missing or non-zero, or no container ever ran.
  const watched = facts.flow ? [facts.flow] : containers;
  const crashed = !containers.length || watched.some((c) => !hasExitCode(c) || c.exitCode !== 0);
  const finding = RULES.reduce<Finding | undefined>((found, rule) => found ?? rule(facts), undefined);

  if (!crashed) {
    const said = finding ? `${finding.cause}; ` : '';
    return {
      crashed: false,
      failedToStart: false,
      // A stop from outside (a user, AWS) keeps its category; a container's exit is nothing when the flow's was 0.
      category:
        finding?.category === 'infrastructure' || finding?.category === 'deliberate'
          ? finding.category
          : 'none',
      cause: `the flow container exited with code 0 (${said}${facts.stoppedReason || 'no reason given'})`,
      action: 'nothing; the engine reports the run',
      message: `ECS task stopped: ${facts.stoppedReason || 'no reason given'}`,
      explanation: `ECS task stopped normally: ${said}${facts.stoppedReason || 'no reason given'}. ${taskLine(task, facts)}`,
      severity: 'warning',
    };
  }

  const found: Finding = finding ?? {
    category: 'unknown',
    cause: facts.stoppedReason
      ? `ECS stopped the task before its containers exited (${quote(facts.stoppedReason)})`
      : 'ECS stopped the task before its containers exited, and gave no reason',
    action: 'see the stopped task in the ECS console',
    evidence: facts.stoppedReason || undefined,
  };
  const failedToStart = Boolean(found.startFailure) || task.stopCode === 'TaskFailedToStart';
  return {
    crashed: true,
    failedToStart,
    category: found.category,
    cause: found.cause,
    action: found.action,
    message: stateMessage(found, facts, failedToStart),
    explanation: explanation(found, facts),
    severity: found.category === 'infrastructure' || found.category === 'deliberate' ? 'warning' : 'error',
  };
}

/**
 * One line. Failures to start keep prefect-aws's "Failed to submit flow run to infrastructure: TaskFailedToStart:
 * …" and a crash of the flow's own process the observer's "The following containers stopped with a non-zero
 * exit code: […]", which users match on; every other stop says "ECS task stopped: {cause}".
 */
function stateMessage(found: Finding, facts: Facts, failedToStart: boolean): string {
  if (failedToStart) {
    const head = `${SUBMIT}: TaskFailedToStart: ${capitalize(found.cause)}; ${found.action}`;
    const evidence = found.evidence?.replace(/^TaskFailedToStart:\s*/, '');
    if (!evidence) return clip(head);
    // The cause and what to do come first; ECS's own words fill what room is left.
    const room = MAX_STATE_MESSAGE - head.length - 3;
    return room > 20 ? `${head} (${cut(evidence, room)})` : clip(head);
  }
  if (found.category === 'user-code') {
    const names = facts.ordered.filter((c) => hasExitCode(c) && c.exitCode !== 0).map((c) => c.name ?? '?');
    const watched = facts.flow ? names.filter((n) => n === facts.flowName) : names;
    return clip(`${NON_ZERO}: ${pythonListRepr(watched)}: ${found.cause}; ${found.action}`);
  }
  return clip(`ECS task stopped: ${found.cause}; ${found.action}`);
}

function explanation(found: Finding, facts: Facts): string {
  const evidence = found.evidence ? ` ECS said: ${found.evidence.replace(/\.$/, '')}.` : '';
  const exits = facts.ordered
    .map(
      (c) => `'${c.name ?? '?'}' ${hasExitCode(c) ? `exited with code ${c.exitCode}` : 'has no exit code'}`,
    )
    .join(', ');
  const detail = `${capitalize(found.cause)}.${evidence}${exits ? ` Containers: ${exits}.` : ''}${ranFor(facts)}`;
  const resolution = found.resolution ?? `${found.action}.`;
  return `${summaryOf(found)}: ${detail} Resolution: ${resolution} ${taskLine(facts.task, facts)}`;
}

/** prefect-aws's observer's summaries where they fit (users search logs for them), ours elsewhere. */
function summaryOf(found: Finding): string {
  if (found.summary) return found.summary;
  if (found.startFailure) return 'ECS task failed to start';
  switch (found.category) {
    case 'user-code':
    case 'configuration':
      return 'Container exited with non-zero exit code';
    case 'infrastructure':
      return 'Task stopped by AWS infrastructure';
    case 'deliberate':
      return 'Task stopped on purpose';
    default:
      return 'ECS task stopped';
  }
}

/** The task's ARN and the tail of the flow container's awslogs stream (`{prefix}/{container}/{task id}`). */
function taskLine(task: Task, facts: Facts): string {
  const arn = task.taskArn ?? 'unknown';
  const id = arn.split('/').at(-1);
  return `ECS task ${arn}; the flow container's CloudWatch log stream ends in ${facts.flowName}/${id}.`;
}

/** How long the flow ran, from the task's timestamps (ISO strings in events, epoch milliseconds from Step Functions). */
function ranFor(facts: Facts): string {
  const { task } = facts;
  const started = toTime(task.startedAt);
  const stopped = toTime(task.executionStoppedAt) ?? toTime(task.stoppingAt) ?? toTime(task.stoppedAt);
  if (started === undefined) {
    const exited = facts.ordered.some(hasExitCode);
    return task.createdAt !== undefined && !exited ? ' The containers never started.' : '';
  }
  if (stopped === undefined || stopped < started) return '';
  const seconds = Math.round((stopped - started) / 1000);
  return ` It ran for ${seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${seconds} s`}.`;
}

function toTime(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const time = new Date(value as string | number | Date).getTime();
  return Number.isNaN(time) ? undefined : time;
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function quote(text: string): string {
  return cut(text, MAX_QUOTE);
}

function clip(message: string): string {
  return cut(message, MAX_STATE_MESSAGE);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function pythonListRepr(names: string[]): string {
  return `[${names.map((n) => `'${n}'`).join(', ')}]`;
}
