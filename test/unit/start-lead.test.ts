import { provisioningSeconds, runTaskLatenessSeconds } from '../../src/launch/report';
import { startAtOf, startLeadOf } from '../../src/launch/start-lead';

describe('the start lead', () => {
  it("is the launcher's unless the flow run's or the deployment's job variables set it, the run's first", () => {
    expect(startLeadOf(undefined, undefined, 20)).toEqual({ seconds: 20 });
    expect(startLeadOf({}, { start_lead_seconds: 45 }, 20)).toEqual({ seconds: 45 });
    expect(startLeadOf({ start_lead_seconds: 0 }, { start_lead_seconds: 45 }, 20)).toEqual({ seconds: 0 });
    expect(startLeadOf({ start_lead_seconds: '30' }, null, 0)).toEqual({ seconds: 30 });
    expect(startLeadOf({ start_lead_seconds: null }, { start_lead_seconds: 10 }, 5)).toEqual({ seconds: 10 });
  });

  it.each([[-1], [601], [1.5], ['soon'], [''], [true], [[30]]])(
    'falls back to the launcher lead, saying why, for %j',
    (bad) => {
      const lead = startLeadOf({ start_lead_seconds: bad }, undefined, 15);
      expect(lead.seconds).toBe(15);
      expect(lead.problem).toBe(
        `job variable start_lead_seconds must be a whole number of seconds from 0 to 600, got ${JSON.stringify(bad)}; the launcher's start lead (15 s) applies`,
      );
    },
  );

  it('moves the start that many seconds before the scheduled time, in the form the Wait state reads', () => {
    expect(startAtOf('2026-12-04T10:00:00.000Z', 45)).toBe('2026-12-04T09:59:15.000Z');
    expect(startAtOf('2026-12-04T10:00:00.000Z', 0)).toBe('2026-12-04T10:00:00.000Z');
  });
});

describe('provisioningSeconds', () => {
  it('is the time from RunTask to RUNNING, when both are known', () => {
    expect(
      provisioningSeconds({
        createdAt: '2026-12-04T10:00:00.000Z' as unknown as Date,
        startedAt: '2026-12-04T10:00:42.500Z' as unknown as Date,
      }),
    ).toBe(42.5);
    expect(provisioningSeconds({ createdAt: new Date(0), startedAt: new Date(3000) })).toBe(3);
    expect(provisioningSeconds({ createdAt: new Date(0) })).toBeUndefined();
    expect(provisioningSeconds({ createdAt: new Date(5000), startedAt: new Date(0) })).toBeUndefined();
  });
});

describe('runTaskLatenessSeconds', () => {
  it("is the time from the run's scheduled start to RunTask, below zero when a start lead sent it early", () => {
    const run = { expected_start_time: '2026-12-04T10:00:00.000Z' };
    expect(runTaskLatenessSeconds({ createdAt: '2026-12-04T10:00:02.250Z' as unknown as Date }, run)).toBe(
      2.25,
    );
    expect(runTaskLatenessSeconds({ createdAt: new Date('2026-12-04T09:59:30.000Z') }, run)).toBe(-30);
    expect(runTaskLatenessSeconds({}, run)).toBeUndefined();
    expect(runTaskLatenessSeconds({ createdAt: new Date(0) }, { expected_start_time: null })).toBeUndefined();
  });
});
