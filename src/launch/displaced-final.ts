import type { Logger } from '../log';
import type { PrefectClient } from '../prefect/client';
import { flowRunState, isLateClaim, newestClaim } from '../prefect/states';
import type { State, StateType } from '../prefect/types';

/**
 * The server lets a final run go back to PENDING without force: `HandleFlowTerminalStateTransitions` allows
 * it for re-runs, unless a Completed run has a persisted result
 * (https://github.com/PrefectHQ/prefect/blob/main/src/prefect/server/orchestration/core_policy.py). No
 * proposal can be made conditional on the state it was decided from, so a claim from a read of the run
 * while it was Scheduled, which the run's own launch and end then overtook, reopens the ended run (a "late
 * claim", see `isLateClaim`). Launcher versions that proposed InfrastructurePending on ECS's PENDING event
 * did the same from a stale read (prefect-aws's observer has that race), and a Crashed proposed from an
 * equally stale read is then accepted too, where the server would have refused it over the flow's end.
 * Such a run gets its end back.
 */

const FINAL: readonly StateType[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED'];

export type DisplacedPrefect = Pick<PrefectClient, 'readFlowRun' | 'readFlowRunStates' | 'setFlowRunState'>;

/** A state that reopened an ended run: a late claim, or an older launcher's InfrastructurePending. */
function displacing(s: State): boolean {
  return isLateClaim(s) || (s.type === 'PENDING' && s.name === 'InfrastructurePending');
}

/**
 * Whether a run in this state may be one the launcher moved back from its end, worth reading the history
 * of. `anyActive` (the sweep, about to crash the run) looks at every Pending or Running run too.
 */
function mayBeDisplaced(current: State | null | undefined, anyActive: boolean): current is State {
  if (!current) return false;
  if (current.type === 'CRASHED' || displacing(current)) return true;
  return anyActive && (current.type === 'PENDING' || current.type === 'RUNNING');
}

/**
 * Puts back the final state the launcher displaced, and logs it; returns it, or null when there was none.
 * `seen` is the caller's view of the run's state, which says whether to look. Unless `seenNow` (the caller
 * has just read it), the decision is made on the run's state read again, as a stale view would take an
 * earlier restore, or a stale Crashed, for the run's end. `anyActive`: see `mayBeDisplaced`.
 * `beforeRestore` runs once the decision is made and before the restore, which ends the decision's grounds:
 * should it fail, a retry decides the same again.
 */
export async function restoreDisplacedFinalState(
  prefect: DisplacedPrefect,
  log: Logger,
  flowRunId: string,
  seen: State | null | undefined,
  options: {
    seenNow?: boolean;
    anyActive?: boolean;
    beforeRestore?: (displaced: State) => Promise<void>;
  } = {},
): Promise<State | null> {
  const anyActive = options.anyActive ?? false;
  if (!mayBeDisplaced(seen, anyActive)) return null;
  const [history, current] = await Promise.all([
    prefect.readFlowRunStates(flowRunId),
    options.seenNow ? seen : prefect.readFlowRun(flowRunId).then((run) => run.state),
  ]);
  const displaced =
    current && mayBeDisplaced(current, anyActive) ? displacedFinalState(history, current) : null;
  if (!displaced || !current) return null;
  await options.beforeRestore?.(displaced);
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
  log.warn('a late proposal had moved a finished flow run back from its end; its end is restored', {
    flowRunId,
    restored: displaced.name ?? displaced.type,
    displacedBy: [current, ...history].find(displacing)?.name ?? current.name,
  });
  return displaced;
}

/**
 * From the run's history and its current, non-final or Crashed, state: the final state that the launcher
 * displaced, or null. It looks after the run's newest claim from Scheduled, which starts its current attempt
 * (the current state aside, which may be that claim: then after the one before it, as the execution of a
 * claimed run may already have run the flow).
 * - The flow's own end (or a cancel) there is followed by nothing but what reopened the run: it is restored.
 * - A Crashed there is restored only when a late claim or InfrastructurePending reopened it; a run crashed
 *   before its task started is legitimately claimed again after a re-run.
 * - A late claim that follows no claim from Scheduled (the run ended without one) gives back the newest
 *   final state: it displaced that one.
 * Server timestamps follow the claim (everything else waits for it), but not always each other: a proposal
 * gets its timestamp when it arrives, and may commit after one that arrived later. So order among them is
 * not used, but to pick the newest of several final states, which all say how the flow ended, preferring
 * the flow's own end to a Crashed.
 */
export function displacedFinalState(history: readonly State[], current: State): State | null {
  if (FINAL.includes(current.type) && current.type !== 'CRASHED') return null;
  const at = (s: State) => Date.parse(s.timestamp);
  const others = history.filter((s) => s.id !== current.id);
  const claim = newestClaim(others);
  if (!claim && !isLateClaim(current)) return null;
  const since = claim ? others.filter((s) => at(s) > at(claim)) : others;
  const finals = since.filter((s) => FINAL.includes(s.type)).sort((a, b) => at(a) - at(b));
  const own = finals.filter((s) => s.type !== 'CRASHED').at(-1);
  if (own) return own;
  return displacing(current) || since.some(displacing) ? (finals.at(-1) ?? null) : null;
}
