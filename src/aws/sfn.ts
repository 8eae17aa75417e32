import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  type ExecutionListItem,
  type ExecutionStatus,
  ListExecutionsCommand,
  SFNClient,
  type SFNClientConfig,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';

/** The only importer of @aws-sdk/client-sfn. Create the client once per cold start; tests pass one for moto. */
export function createSfnClient(config: SFNClientConfig = {}): SFNClient {
  return new SFNClient(config);
}

/** A standard state machine (what CloudFormation creates on deploy; the local stack creates it in moto). */
export async function createStateMachine(
  client: SFNClient,
  name: string,
  definition: unknown,
  roleArn: string,
): Promise<string> {
  const out = await client.send(
    new CreateStateMachineCommand({
      name,
      definition: JSON.stringify(definition),
      roleArn,
      type: 'STANDARD',
    }),
  );
  if (!out.stateMachineArn) throw new Error(`CreateStateMachine returned no ARN for ${name}`);
  return out.stateMachineArn;
}

/** Input of one launch execution; kept small (Step Functions caps payloads at 256 KiB). */
export interface LaunchInput {
  flowRunId: string;
  /** The run's scheduled time, RFC 3339 UTC (`…Z`). */
  scheduledStartTime: string;
  /** When RunTask may go out: the scheduled time less the start lead, RFC 3339 UTC for the Wait state. */
  startAt: string;
  /** What the poll read of the run, for Prepare (src/launch/snapshot.ts keeps it under 128 KiB). */
  snapshot?: unknown;
}

/**
 * Starts the launch execution of one flow run, named after its id. Standard workflows treat the name as an
 * idempotency key for 90 days: the same name and input while running succeeds again, otherwise
 * ExecutionAlreadyExists, which means another poll already started it, so it counts as started.
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
 */
export async function startLaunchExecution(
  client: SFNClient,
  stateMachineArn: string,
  input: LaunchInput,
): Promise<{ executionArn: string; alreadyStarted: boolean }> {
  try {
    const out = await client.send(
      new StartExecutionCommand({ stateMachineArn, name: input.flowRunId, input: JSON.stringify(input) }),
    );
    return {
      executionArn: out.executionArn ?? executionArnFor(stateMachineArn, input.flowRunId),
      alreadyStarted: false,
    };
  } catch (err) {
    if (err instanceof ExecutionAlreadyExists) {
      return { executionArn: executionArnFor(stateMachineArn, input.flowRunId), alreadyStarted: true };
    }
    throw err;
  }
}

/** arn:aws:states:r:a:stateMachine:name → arn:aws:states:r:a:execution:name:<executionName> */
export function executionArnFor(stateMachineArn: string, executionName: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${executionName}`;
}

export async function listExecutions(
  client: SFNClient,
  stateMachineArn: string,
  statusFilter?: ExecutionStatus,
): Promise<ExecutionListItem[]> {
  const items: ExecutionListItem[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(new ListExecutionsCommand({ stateMachineArn, statusFilter, nextToken }));
    items.push(...(page.executions ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return items;
}

export async function readExecutionInput(client: SFNClient, executionArn: string): Promise<LaunchInput> {
  const out = await client.send(new DescribeExecutionCommand({ executionArn }));
  return JSON.parse(out.input ?? '{}') as LaunchInput;
}

/** What Step Functions knows of one execution; MISSING when it never existed (or its 90 days are over). */
export interface ExecutionFacts {
  status: ExecutionStatus | 'MISSING';
  stopDate?: Date;
  /** A failed execution's error name (e.g. States.Runtime) and cause. */
  error?: string;
  cause?: string;
}

/** Names of the state machine's RUNNING executions (ListExecutions pages hold up to 1,000). */
export async function runningExecutionNames(
  client: SFNClient,
  stateMachineArn: string,
): Promise<Set<string>> {
  const names = new Set<string>();
  for (const e of await listExecutions(client, stateMachineArn, 'RUNNING')) if (e.name) names.add(e.name);
  return names;
}

/**
 * An execution's status and end, or MISSING when Step Functions answers ExecutionDoesNotExist (never
 * started, or past its 90-day retention).
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
 */
export async function describeExecution(client: SFNClient, executionArn: string): Promise<ExecutionFacts> {
  try {
    const out = await client.send(new DescribeExecutionCommand({ executionArn }));
    return {
      status: out.status ?? 'RUNNING',
      ...(out.stopDate ? { stopDate: out.stopDate } : {}),
      ...(out.error ? { error: out.error } : {}),
      ...(out.cause ? { cause: out.cause } : {}),
    };
  } catch (err) {
    if (err instanceof ExecutionDoesNotExist) return { status: 'MISSING' };
    throw err;
  }
}

/**
 * Stops an execution; Step Functions then stops the ECS task its `.sync` state started (best effort).
 * Stopping one that has already ended is a no-op on AWS.
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html
 */
export async function stopExecution(client: SFNClient, executionArn: string, cause: string): Promise<void> {
  await client.send(new StopExecutionCommand({ executionArn, cause: cause.slice(0, 32768) }));
}
