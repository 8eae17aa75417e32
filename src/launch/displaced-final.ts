import type { Logger } from '../log';
import type { PrefectClient } from '../prefect/client';
import { flowRunState, newestClaim } from '../prefect/states';
import type { State, StateType } from '../prefect/types';

/**
 * The server lets a final run go back to PENDING without force: `HandleFlowTerminalStateTransitions` allows
 * it for re-runs, unless a Completed run has a persisted result
 * (https://github.com/PrefectHQ/prefect/blob/main/src/prefect/server/orchestration/core_policy.py). So an
 * InfrastructurePending proposed from a read the flow overtook (a quick flow went Running → Completed in
 * between, or a retried proposal whose first answer was lost) displaces the flow's own end; prefect-aws's
 * observer has the same race. Worse, a Crashed proposed from an equally stale read of the same run (its
 * STOPPED event, or the sweep) is then accepted too, where the server would have refused it over the flow's
 * end. Such a run gets its end back.
 */

const FINAL: readonly StateType[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED'];

export type DisplacedPrefect = Pick<PrefectClient, 'readFlowRun' | 'readFlowRunStates' | 'setFlowRunState'>;

/** Whether a run in this state may be one the launcher moved back from its end (and so is worth a look). */
function mayBeDisplaced(current: State | null | undefined): current is State {
  return (
    (current?.type === 'PENDING' && current.name === 'InfrastructurePending') || current?.type === 'CRASHED'
  );
}

/**
 * Puts back the final state the launcher displaced, and logs it; returns it, or null when there was none.
 * `seen` is the caller's view of the run's state, which says whether to look. Unless `seenNow` (the caller
 * has just read it), the decision is made on the run's state read again, as a stale view would take an
 * earlier restore, or a stale Crashed, for the run's end.
 */
export async function restoreDisplacedFinalState(
  prefect: DisplacedPrefect,
  log: Logger,
  flowRunId: string,
  seen: State | null | undefined,
  options: { seenNow?: boolean } = {},
): Promise<State | null> {
  if (!mayBeDisplaced(seen)) return null;
  const [history, current] = await Promise.all([
    prefect.readFlowRunStates(flowRunId),
    options.seenNow ? seen : prefect.readFlowRun(flowRunId).then((run) => run.state),
  ]);
  const displaced = current ? displacedFinalState(history, current) : null;
  if (!displaced) return null;
  await prefect.setFlowRunState(
    flowRunId,
    {
      ...flowRunState(flowRunId, displaced.type, {
        name: displaced.name ?? undefined,
        message: displaced.message,
        details: displaced.state_details,
      }),
      data: displaced.data ?? null,
    },
    { force: true },
  );
  log.warn(
    'a late ECS event had moved a finished flow run back to InfrastructurePending; its end is restored',
    {
      flowRunId,
      restored: displaced.name ?? displaced.type,
    },
  );
  return displaced;
}

/**
 * From the run's history and current state: the final state that the launcher displaced, or null. After the
 * run's newest claim, the history holds an
 * InfrastructurePending (only the launcher proposes one) and a final state other than the current one: the
 * run left that final state, which without force only the launcher's InfrastructurePending does. Server
 * timestamps follow the claim (everything else waits for it), but not always each other: a proposal gets its
 * timestamp when it arrives, and may commit after one that arrived later. So order among them is not used,
 * but to pick the newest of several final states, which all say how the flow ended, preferring the flow's
 * own end to a Crashed.
 */
export function displacedFinalState(history: readonly State[], current: State): State | null {
  if (!mayBeDisplaced(current)) return null;
  const at = (s: State) => Date.parse(s.timestamp);
  const claim = newestClaim(history);
  if (!claim) return null;
  const claimedAt = at(claim);
  const since = history.filter((s) => at(s) > claimedAt && s.id !== current.id);
  const displacing =
    current.type === 'PENDING' ||
    since.some((s) => s.type === 'PENDING' && s.name === 'InfrastructurePending');
  if (!displacing) return null;
  const finals = since.filter((s) => FINAL.includes(s.type)).sort((a, b) => at(a) - at(b));
  // The flow's own end over a Crashed the launcher proposed from a stale read of the displaced run.
  return finals.filter((s) => s.type !== 'CRASHED').at(-1) ?? finals.at(-1) ?? null;
}
