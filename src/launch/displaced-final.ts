import type { PrefectClient } from '../prefect/client';
import { flowRunState } from '../prefect/states';
import type { State, StateType } from '../prefect/types';

/**
 * The server lets a final run go back to PENDING without force: `HandleFlowTerminalStateTransitions` allows
 * it for re-runs, unless a Completed run has a persisted result
 * (https://github.com/PrefectHQ/prefect/blob/main/src/prefect/server/orchestration/core_policy.py). So an
 * InfrastructurePending proposed from a read the flow overtook (a quick flow went Running → Completed in
 * between, or a retried proposal whose first answer was lost) displaces the flow's own end; prefect-aws's
 * observer has the same race. The launcher is the only one that proposes InfrastructurePending, so a run
 * sitting in it with a final state after its claim was moved back by the launcher, and gets that state back.
 */

const FINAL: readonly StateType[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED'];

export type DisplacedPrefect = Pick<PrefectClient, 'readFlowRunStates' | 'setFlowRunState'>;

/** Puts back the final state an InfrastructurePending displaced; returns it, or null when there was none. */
export async function restoreDisplacedFinalState(
  prefect: DisplacedPrefect,
  flowRunId: string,
  current: State | null | undefined,
): Promise<State | null> {
  if (current?.type !== 'PENDING' || current.name !== 'InfrastructurePending') return null;
  const displaced = displacedFinalState(await prefect.readFlowRunStates(flowRunId));
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
  return displaced;
}

/**
 * The newest final state after the run's newest claim (a PENDING named "Pending", as the launcher and the
 * worker claim), from its history. Claim, Running and the flow's end are causally ordered (the engine starts
 * only after the claim, and ends after it started), so their server timestamps are too.
 */
export function displacedFinalState(history: readonly State[]): State | null {
  const at = (s: State) => Date.parse(s.timestamp);
  const claims = history.filter((s) => s.type === 'PENDING' && s.name === 'Pending');
  const claimedAt = Math.max(...claims.map(at));
  if (!Number.isFinite(claimedAt)) return null;
  const finals = history
    .filter((s) => FINAL.includes(s.type) && at(s) > claimedAt)
    .sort((a, b) => at(a) - at(b));
  return finals.at(-1) ?? null;
}
