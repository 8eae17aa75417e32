import type { Logger } from '../log';
import type { PrefectClient } from '../prefect/client';
import { cancelledState, crashedState } from '../prefect/states';
import { LogLevel, type StateType } from '../prefect/types';
import { restoreDisplacedFinalState } from './displaced-final';
import { type CaughtError, describeLaunchFailure } from './failure';

export interface CrashInput {
  flowRunId: string;
  prepared?: { cluster?: string };
  error?: CaughtError;
}

export type CrashPrefect = Pick<
  PrefectClient,
  'readFlowRun' | 'readFlowRunStates' | 'setFlowRunState' | 'createFlowRunLogs'
>;

const ACTIVE: readonly StateType[] = ['PENDING', 'RUNNING'];

/**
 * The launch state machine's failure path: tells Prefect why the run could not be launched (or why its task
 * failed), unless the run has already moved on — a run the engine finished, or one that was cancelled, keeps
 * its state. Proposals are not forced, so the server's rules still protect final states.
 */
export async function reportLaunchFailure(
  deps: { prefect: CrashPrefect; log: Logger },
  input: CrashInput,
): Promise<{ action: 'crashed' | 'cancelled' | 'none'; message: string }> {
  const { prefect, log } = deps;
  const failure = describeLaunchFailure(
    input.error ?? { Error: 'Unknown', Cause: 'no error details' },
    input.prepared?.cluster,
  );
  const run = await prefect.readFlowRun(input.flowRunId);
  const type = run.state?.type ?? run.state_type;
  if (failure.action === 'none' || !type || !ACTIVE.includes(type)) {
    log.info('launch failure not reported: the run has moved on', {
      state: type,
      stateMessage: failure.message,
    });
    return { action: 'none', message: failure.message };
  }

  await prefect.createFlowRunLogs([
    { flowRunId: input.flowRunId, level: LogLevel.ERROR, message: failure.explanation },
  ]);
  if (failure.action === 'cancel') {
    await prefect.setFlowRunState(
      input.flowRunId,
      cancelledState(input.flowRunId, failure.message, run.state),
      {
        force: true,
      },
    );
    log.warn('flow run cancelled', { stateMessage: failure.message });
    return { action: 'cancelled', message: failure.message };
  }
  const result = await prefect.setFlowRunState(
    input.flowRunId,
    crashedState(input.flowRunId, failure.message),
    {
      force: false,
    },
  );
  log.error('flow run crashed', { stateMessage: failure.message, status: result.status });
  if (result.status !== 'ACCEPT') return { action: 'none', message: failure.message };
  // Accepted over a late claim that had displaced the flow's end: that end stands.
  const restored = await restoreDisplacedFinalState(prefect, log, input.flowRunId, result.state);
  return { action: restored ? 'none' : 'crashed', message: failure.message };
}
