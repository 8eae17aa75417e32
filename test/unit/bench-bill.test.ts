import { HOURS_PER_MONTH, launcherBill, PRICES, workerBill } from '../../src/bench/bill';

describe('the estimated AWS bill', () => {
  it("prices the launcher's measured invocations and transitions per 1,000 runs, and its idle polls per month", () => {
    const bill = launcherBill({
      runs: 100,
      memoryMb: 1024,
      // 2 busy polls of 1.5 s where an idle one takes 0.5 s: 2 s of extra work.
      busyPolls: { count: 2, totalMs: 3000 },
      prepare: { count: 100, totalMs: 100 * 200 },
      report: { count: 100, totalMs: 100 * 100 },
      transitions: 500,
      idlePollMs: 500,
      pollsPerHour: 60,
    });
    const gbSecond = PRICES.lambdaPerGbSecond;
    const request = PRICES.lambdaPerRequest;
    expect(bill.lines['poll Lambda beyond idle polls (per 1,000 runs)']).toBeCloseTo(2 * gbSecond * 10, 12);
    expect(bill.lines['Prepare Lambda (per 1,000 runs)']).toBeCloseTo(
      (100 * request + 20 * gbSecond) * 10,
      12,
    );
    expect(bill.lines['report Lambda (per 1,000 runs)']).toBeCloseTo(
      (100 * request + 10 * gbSecond) * 10,
      12,
    );
    expect(bill.lines['Step Functions transitions (per 1,000 runs)']).toBeCloseTo(5000 * 0.000025, 12);
    expect(bill.per1000Runs).toBeCloseTo(
      (2 * gbSecond + 100 * request + 20 * gbSecond + 100 * request + 10 * gbSecond) * 10 + 0.125,
      12,
    );
    const polls = 60 * HOURS_PER_MONTH;
    expect(bill.idleMonth).toBeCloseTo(
      polls * request +
        polls * 0.5 * gbSecond +
        polls * PRICES.schedulerPerInvocation +
        PRICES.secretPerMonth,
      9,
    );
  });

  it('never counts busy polls below an idle one as negative work', () => {
    const bill = launcherBill({
      runs: 10,
      memoryMb: 256,
      busyPolls: { count: 1, totalMs: 100 },
      prepare: { count: 0, totalMs: 0 },
      report: { count: 0, totalMs: 0 },
      transitions: 0,
      idlePollMs: 300,
      pollsPerHour: 60,
    });
    expect(bill.lines['poll Lambda beyond idle polls (per 1,000 runs)']).toBe(0);
  });

  it("prices the guide's resident worker by the hour: about $21 a month, nothing more per run", () => {
    const bill = workerBill();
    expect(bill.per1000Runs).toBe(0);
    expect(bill.idleMonth).toBeCloseTo((0.5 * 0.04048 + 0.004445 + 0.005) * 730, 9);
    expect(bill.idleMonth).toBeGreaterThan(21);
    expect(bill.idleMonth).toBeLessThan(22);
  });
});
