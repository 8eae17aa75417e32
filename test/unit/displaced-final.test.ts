import { displacedFinalState } from '../../src/launch/displaced-final';
import type { State, StateType } from '../../src/prefect/types';

/** A state by its name, as a history lists it; the type follows from the name. */
const TYPES: Record<string, StateType> = {
  Scheduled: 'SCHEDULED',
  Pending: 'PENDING',
  LateClaim: 'PENDING',
  InfrastructurePending: 'PENDING',
  Running: 'RUNNING',
  Completed: 'COMPLETED',
  Failed: 'FAILED',
  Crashed: 'CRASHED',
  Cancelled: 'CANCELLED',
};

/**
 * A history from state names, one second apart, oldest first. A claim from Scheduled ("Pending") carries
 * the scheduled time, as the server copies it; a "LateClaim" is a claim accepted over a final state.
 */
function history(names: string[]): State[] {
  return names.map((name, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    type: TYPES[name] ?? 'PENDING',
    name: name === 'LateClaim' ? 'Pending' : name,
    timestamp: new Date(Date.UTC(2026, 10, 28, 12, 0, i)).toISOString(),
    message: null,
    state_details: name === 'Pending' ? { scheduled_time: '2026-11-28T11:59:00.000Z' } : {},
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
    [
      'the flow’s end that a late claim displaced',
      ['Scheduled', 'Pending', 'Running', 'Completed', 'LateClaim'],
      3,
    ],
    [
      'the flow’s end under an InfrastructurePending over a late claim (the newest claim is no attempt)',
      ['Scheduled', 'Pending', 'Running', 'Completed', 'LateClaim', 'InfrastructurePending'],
      3,
    ],
    [
      'the flow’s end under a Crashed that landed over a late claim',
      ['Scheduled', 'Pending', 'Running', 'Failed', 'LateClaim', 'Crashed'],
      3,
    ],
    ['the Crashed that a late claim displaced', ['Scheduled', 'Pending', 'Crashed', 'LateClaim'], 2],
    ['the end of a run never claimed, that a late claim displaced', ['Scheduled', 'Failed', 'LateClaim'], 1],
    [
      'the flow’s end under a claim from Scheduled that a Scheduled over the end allowed',
      ['Scheduled', 'Pending', 'Running', 'Completed', 'Scheduled', 'Pending'],
      3,
    ],
    ['the flow’s end under a Running that reopened it', ['Pending', 'Running', 'Completed', 'Running'], 2],
    ['nothing for a first claim', ['Scheduled', 'Pending'], null],
    [
      'nothing for a claim after a crash before the task started',
      ['Scheduled', 'Pending', 'Crashed', 'Scheduled', 'Pending'],
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

  it('finds the end a late claim displaced when the claim was stamped before it (it waited for the lock)', () => {
    const states = history(['Scheduled', 'Pending', 'Running', 'LateClaim', 'Completed']);
    const [, , , late, completed] = states;
    if (!late || !completed) throw new Error('five states');
    expect(displacedFinalState(states, late)).toBe(completed);
  });
});
