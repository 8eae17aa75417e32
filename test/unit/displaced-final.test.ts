import { displacedFinalState } from '../../src/launch/displaced-final';
import type { State, StateType } from '../../src/prefect/types';

/** A state by its name, as a history lists it; the type follows from the name. */
const TYPES: Record<string, StateType> = {
  Scheduled: 'SCHEDULED',
  Pending: 'PENDING',
  InfrastructurePending: 'PENDING',
  Running: 'RUNNING',
  Completed: 'COMPLETED',
  Failed: 'FAILED',
  Crashed: 'CRASHED',
  Cancelled: 'CANCELLED',
};

/** A history from state names, one second apart, oldest first. */
function history(names: string[]): State[] {
  return names.map((name, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    type: TYPES[name] ?? 'PENDING',
    name,
    timestamp: new Date(Date.UTC(2026, 10, 28, 12, 0, i)).toISOString(),
    message: null,
    state_details: {},
  }));
}

describe('displacedFinalState: the run is in its newest state; which final state to put back', () => {
  it.each<[string, string[], number | null]>([
    [
      'the flow’s end that the current InfrastructurePending displaced',
      ['Scheduled', 'Pending', 'Running', 'Completed', 'InfrastructurePending'],
      3,
    ],
    [
      'the end under a Crashed proposed from a stale read over the displacing InfrastructurePending',
      ['Pending', 'Running', 'Failed', 'InfrastructurePending', 'Crashed'],
      2,
    ],
    [
      'the end, when the displacing InfrastructurePending arrived before it and committed after',
      ['Pending', 'Running', 'InfrastructurePending', 'Failed', 'Crashed'],
      3,
    ],
    [
      'the flow’s own end rather than a newer Crashed from a stale read',
      ['Pending', 'Running', 'Failed', 'InfrastructurePending', 'Crashed', 'InfrastructurePending'],
      2,
    ],
    [
      'nothing for a run that crashed after InfrastructurePending, as a task that never started does',
      ['Pending', 'InfrastructurePending', 'Running', 'Crashed'],
      null,
    ],
    [
      'nothing from an earlier attempt, before a re-run’s claim',
      ['Pending', 'Running', 'Failed', 'Scheduled', 'Pending', 'InfrastructurePending'],
      null,
    ],
    ['nothing for a run in its end', ['Pending', 'Running', 'Completed'], null],
    ['nothing for a run never claimed', ['Scheduled', 'InfrastructurePending'], null],
    ['nothing for a run that never ended', ['Pending', 'InfrastructurePending'], null],
  ])('%s', (_, names, expected) => {
    const states = history(names);
    const current = states.at(-1) as State;
    expect(displacedFinalState(states, current)).toBe(expected === null ? null : states[expected]);
  });

  it('reads the history in time order, whatever order it is listed in', () => {
    const [claim, failed, cancelled, current] = history([
      'Pending',
      'Failed',
      'Cancelled',
      'InfrastructurePending',
    ]);
    if (!claim || !failed || !cancelled || !current) throw new Error('four states');
    expect(displacedFinalState([cancelled, current, failed, claim], current)).toBe(cancelled);
  });
});
