import type { TaskStateChangeEvent } from '../../../src/local/ecs-events';

/**
 * EventBridge between ECS and the report function, with its faults: an event may be lost, delivered twice,
 * or late (so that a later event of the same task arrives first). Delivery is asynchronous, as EventBridge's
 * asynchronous Lambda invocation is: the sender never waits, and a report that throws is retried twice
 * (Lambda's default for asynchronous invocations), then dropped.
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
 */
export interface EventFaultRates {
  lose: number;
  duplicate: number;
  /** Chance that an event is held back for up to `maxDelayMs`. */
  delay: number;
  maxDelayMs: number;
}

export const NO_EVENT_FAULTS: EventFaultRates = { lose: 0, duplicate: 0, delay: 0, maxDelayMs: 0 };

export class FaultyEventBus {
  rates: EventFaultRates = NO_EVENT_FAULTS;
  readonly counts = {
    sent: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    delayed: 0,
    /** Delivered after a later event of the same task. */
    reordered: 0,
    reportErrors: 0,
    /** Dropped after the report failed three times. */
    reportGaveUp: 0,
  };
  private readonly pending = new Set<Promise<void>>();
  private readonly sequence = new Map<string, number>();
  private readonly lastDelivered = new Map<string, number>();

  constructor(
    private readonly report: (event: TaskStateChangeEvent) => Promise<unknown>,
    private readonly random: () => number,
  ) {}

  /** What `withTaskStateChangeEvents` calls; never waits for the report. */
  readonly send = async (event: TaskStateChangeEvent): Promise<void> => {
    this.counts.sent += 1;
    const task = event.resources[0] ?? '';
    const seq = (this.sequence.get(task) ?? 0) + 1;
    this.sequence.set(task, seq);
    if (this.random() < this.rates.lose) {
      this.counts.lost += 1;
      return;
    }
    const copies = this.random() < this.rates.duplicate ? 2 : 1;
    if (copies === 2) this.counts.duplicated += 1;
    for (let i = 0; i < copies; i++) {
      const delayed = this.random() < this.rates.delay;
      if (delayed) this.counts.delayed += 1;
      const wait = delayed ? this.random() * this.rates.maxDelayMs : 0;
      this.track(this.deliver(event, task, seq, wait));
    }
  };

  /** Waits until every event sent so far has been delivered or dropped. */
  async drain(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  private track(delivery: Promise<void>): void {
    this.pending.add(delivery);
    void delivery.finally(() => this.pending.delete(delivery));
  }

  private async deliver(event: TaskStateChangeEvent, task: string, seq: number, waitMs: number) {
    if (waitMs > 0) await sleep(waitMs);
    if (seq < (this.lastDelivered.get(task) ?? 0)) this.counts.reordered += 1;
    this.lastDelivered.set(task, Math.max(seq, this.lastDelivered.get(task) ?? 0));
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await this.report(event);
        this.counts.delivered += 1;
        return;
      } catch {
        this.counts.reportErrors += 1;
        await sleep(200 * attempt);
      }
    }
    this.counts.reportGaveUp += 1;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
