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

describe('displacedFinalState', () => {
  it('finds the flow’s end that an InfrastructurePending after it displaced', () => {
    const history = [
      state('SCHEDULED', 'Scheduled'),
      state('PENDING', 'Pending'),
      state('RUNNING', 'Running'),
      state('COMPLETED', 'Completed'),
      state('PENDING', 'InfrastructurePending'),
    ];
    expect(displacedFinalState(history)).toBe(history[3]);
  });

  it('takes the newest final state after the claim, in whatever order the history lists them', () => {
    const claim = state('PENDING', 'Pending');
    const failed = state('FAILED', 'Failed');
    const cancelled = state('CANCELLED', 'Cancelled');
    expect(displacedFinalState([cancelled, state('PENDING', 'InfrastructurePending'), failed, claim])).toBe(
      cancelled,
    );
  });

  it('ignores the final states of an earlier attempt, before a re-run’s claim', () => {
    const history = [
      state('PENDING', 'Pending'),
      state('RUNNING', 'Running'),
      state('FAILED', 'Failed'),
      state('SCHEDULED', 'Scheduled'),
      state('PENDING', 'Pending'),
      state('PENDING', 'InfrastructurePending'),
    ];
    expect(displacedFinalState(history)).toBeNull();
  });

  it('finds nothing in a run that was never claimed, or never ended', () => {
    expect(
      displacedFinalState([state('SCHEDULED', 'Scheduled'), state('COMPLETED', 'Completed')]),
    ).toBeNull();
    expect(
      displacedFinalState([state('PENDING', 'Pending'), state('PENDING', 'InfrastructurePending')]),
    ).toBeNull();
    expect(displacedFinalState([])).toBeNull();
  });
});
