import { displacedFinalState } from '../../src/launch/displaced-final';
import type { State, StateType } from '../../src/prefect/types';

let second = 0;
/** A state of the history, each one second after the one before. */
function state(type: StateType, name: string): State {
  second += 1;
  return {
    id: `00000000-0000-4000-8000-${String(second).padStart(12, '0')}`,
    type,
    name,
    timestamp: new Date(Date.UTC(2026, 10, 28, 12, 0, second)).toISOString(),
    message: null,
    state_details: {},
  };
}

/** A run's history, oldest first, and its current state: the newest. */
function run(...history: State[]): { history: State[]; current: State } {
  return { history, current: history.at(-1) as State };
}

describe('displacedFinalState', () => {
  it('finds the flow’s end that the current InfrastructurePending displaced', () => {
    const { history, current } = run(
      state('SCHEDULED', 'Scheduled'),
      state('PENDING', 'Pending'),
      state('RUNNING', 'Running'),
      state('COMPLETED', 'Completed'),
      state('PENDING', 'InfrastructurePending'),
    );
    expect(displacedFinalState(history, current)).toBe(history[3]);
  });

  it('finds it under a Crashed that a stale read proposed over the displacing InfrastructurePending', () => {
    const { history, current } = run(
      state('PENDING', 'Pending'),
      state('RUNNING', 'Running'),
      state('FAILED', 'Failed'),
      state('PENDING', 'InfrastructurePending'),
      state('CRASHED', 'Crashed'),
    );
    expect(displacedFinalState(history, current)).toBe(history[2]);
  });

  it('leaves a run that crashed after it was InfrastructurePending, as a task that never started does', () => {
    const { history, current } = run(
      state('PENDING', 'Pending'),
      state('PENDING', 'InfrastructurePending'),
      state('RUNNING', 'Running'),
      state('CRASHED', 'Crashed'),
    );
    expect(displacedFinalState(history, current)).toBeNull();
  });

  it('finds it when the displacing InfrastructurePending arrived before the end it displaced, and committed after', () => {
    const { history, current } = run(
      state('PENDING', 'Pending'),
      state('RUNNING', 'Running'),
      state('PENDING', 'InfrastructurePending'),
      state('FAILED', 'Failed'),
      state('CRASHED', 'Crashed'),
    );
    expect(displacedFinalState(history, current)).toBe(history[3]);
  });

  it('prefers the flow’s own end to a Crashed proposed from a stale read, even a newer one', () => {
    const { history, current } = run(
      state('PENDING', 'Pending'),
      state('RUNNING', 'Running'),
      state('FAILED', 'Failed'),
      state('PENDING', 'InfrastructurePending'),
      state('CRASHED', 'Crashed'),
      state('PENDING', 'InfrastructurePending'),
    );
    expect(displacedFinalState(history, current)).toBe(history[2]);
  });

  it('reads the history in time order, whatever order it is listed in', () => {
    const claim = state('PENDING', 'Pending');
    const failed = state('FAILED', 'Failed');
    const cancelled = state('CANCELLED', 'Cancelled');
    const current = state('PENDING', 'InfrastructurePending');
    expect(displacedFinalState([cancelled, current, failed, claim], current)).toBe(cancelled);
  });

  it('ignores the final states of an earlier attempt, before a re-run’s claim', () => {
    const { history, current } = run(
      state('PENDING', 'Pending'),
      state('RUNNING', 'Running'),
      state('FAILED', 'Failed'),
      state('SCHEDULED', 'Scheduled'),
      state('PENDING', 'Pending'),
      state('PENDING', 'InfrastructurePending'),
    );
    expect(displacedFinalState(history, current)).toBeNull();
  });

  it('finds nothing for a run in another state, never claimed, or never ended', () => {
    const completed = run(
      state('PENDING', 'Pending'),
      state('RUNNING', 'Running'),
      state('COMPLETED', 'Completed'),
    );
    expect(displacedFinalState(completed.history, completed.current)).toBeNull();
    const unclaimed = run(state('SCHEDULED', 'Scheduled'), state('PENDING', 'InfrastructurePending'));
    expect(displacedFinalState(unclaimed.history, unclaimed.current)).toBeNull();
    const pending = run(state('PENDING', 'Pending'), state('PENDING', 'InfrastructurePending'));
    expect(displacedFinalState(pending.history, pending.current)).toBeNull();
  });
});
