/**
 * The states the launcher proposes, shaped as the worker builds them (spec §1.4–§1.5). Each carries the run's
 * id and a fresh `transition_id`; reuse one object across retries of the same proposal so the server can
 * recognise a repeat (`PreventDuplicateTransitions`), and build a new one for every new proposal.
 */
import { randomUUID } from 'node:crypto';
import type { State, StateCreate, StateDetails, StateType } from './types';

/** A state to propose for a flow run. `name` defaults to the title-cased type, as the server does. */
export function flowRunState(
  flowRunId: string,
  type: StateType,
  options: { name?: string; message?: string | null; details?: StateDetails } = {},
): StateCreate {
  return {
    type,
    name: options.name ?? titleCase(type),
    message: options.message ?? null,
    state_details: { ...options.details, flow_run_id: flowRunId, transition_id: randomUUID() },
    data: null,
  };
}

/**
 * The claim: SCHEDULED → PENDING. The server ABORTs a second one (`PreventPendingTransitions`). The launcher
 * says who claimed it in the message, which is how its sweep recognises a claim whose launch never started.
 */
export function pendingState(flowRunId: string, message?: string): StateCreate {
  return flowRunState(flowRunId, 'PENDING', message ? { message } : {});
}

/**
 * Whether a state is a claim (a PENDING named "Pending") that the server accepted over a final state. The
 * server gives every claim from SCHEDULED the scheduled time (`CopyScheduledTime`), and refuses one from
 * PENDING, RUNNING, PAUSED and CANCELLED; it accepts one, without a scheduled time, only over COMPLETED
 * (without a persisted result), FAILED and CRASHED, as a re-run would. So an accepted claim without it
 * reopened an ended run: a claim from a read that the run's own launch and end overtook.
 */
export function isLateClaim(state: Pick<State, 'type' | 'name' | 'state_details'>): boolean {
  return state.type === 'PENDING' && state.name === 'Pending' && !state.state_details?.scheduled_time;
}

/**
 * The run's newest claim from Scheduled in its history (a PENDING named "Pending", as the launcher and the
 * worker claim), which starts its current attempt; a late claim starts none.
 */
export function newestClaim(history: readonly State[]): State | undefined {
  return history
    .filter((s) => s.type === 'PENDING' && s.name === 'Pending' && !isLateClaim(s))
    .sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp))
    .at(-1);
}

/**
 * PENDING named "Submitting", proposed before the infrastructure call (prefect ≥ 3.6.22). A Pending →
 * Pending transition is allowed only to a name other than "Pending"; older servers ABORT it, which is fine.
 */
export function submittingState(flowRunId: string): StateCreate {
  return flowRunState(flowRunId, 'PENDING', { name: 'Submitting' });
}

/** SCHEDULED at a given time, e.g. to hand a run back; the server requires `scheduled_time`. */
export function scheduledState(
  flowRunId: string,
  scheduledTime: Date,
  options: { name?: string; message?: string } = {},
): StateCreate {
  return flowRunState(flowRunId, 'SCHEDULED', {
    ...options,
    details: { scheduled_time: scheduledTime.toISOString() },
  });
}

/** CRASHED: the infrastructure failed, e.g. "Failed to submit flow run to infrastructure: …". */
export function crashedState(flowRunId: string, message: string): StateCreate {
  return flowRunState(flowRunId, 'CRASHED', { message });
}

/**
 * CANCELLED with a message. Like the worker, it copies the current state's details when there is one (so a
 * Cancelling run keeps them), but always with a fresh `transition_id`: reusing the current one would make
 * the server reject the proposal as a duplicate.
 */
export function cancelledState(flowRunId: string, message: string, current?: State | null): StateCreate {
  return flowRunState(flowRunId, 'CANCELLED', { message, details: current?.state_details ?? {} });
}

function titleCase(type: StateType): string {
  return type
    .split('_')
    .map((word) => word.charAt(0) + word.slice(1).toLowerCase())
    .join(' ');
}
