import type { SFNClient } from '@aws-sdk/client-sfn';
import { executionArnFor, listExecutions, readExecutionInput, stopExecution } from '../aws/sfn';
import type { ReconcileAws } from '../launch/reconcile';
import type { ExecutionResult, LocalLaunchMachine, RunningExecution } from './launch-machine';

/**
 * Plays Step Functions offline: moto records the executions the poll starts (with AWS's name idempotency)
 * but cannot run our definition, so this picks up each new execution and runs the very same definition
 * locally, once per execution name. A StopExecution in moto aborts the local run (which stops its task, as
 * Step Functions does); a local run's end is told to moto with StopExecution, the one way to end an
 * execution there, so that moto no longer lists it as RUNNING.
 */
export class LocalExecutor {
  private readonly running = new Map<string, RunningExecution>();
  private readonly finished = new Map<string, ExecutionResult & { stopDate: Date }>();
  /** One pick-up at a time: the poll's timer and run-now calls both ask, and none may start a run twice. */
  private picking: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly sfn: SFNClient,
    private readonly stateMachineArn: string,
    private readonly machine: LocalLaunchMachine,
    /** Executions run here at once; the rest wait for a slot (Step Functions has no such limit, a laptop does). */
    private readonly maxRunning = 16,
  ) {}

  /** Starts executions moto has that are not yet running here, up to the limit; returns how many it started. */
  pickUp(): Promise<number> {
    const next = this.picking.then(() => this.pickUpNow());
    this.picking = next.catch(() => undefined);
    return next;
  }

  private async pickUpNow(): Promise<number> {
    let started = 0;
    const listed = await listExecutions(this.sfn, this.stateMachineArn, 'RUNNING');
    const stillRunning = new Set(listed.map((e) => e.name));
    for (const [name, run] of this.running) if (!stillRunning.has(name)) run.abort();
    for (const execution of listed) {
      const name = execution.name;
      if (!name || !execution.executionArn || this.running.has(name) || this.finished.has(name)) continue;
      if (this.running.size >= this.maxRunning) break;
      const input = await readExecutionInput(this.sfn, execution.executionArn);
      const run = this.machine.start(name, input);
      this.running.set(name, run);
      started += 1;
      void run.result.then(async (result) => {
        this.running.delete(name);
        this.finished.set(name, { ...result, stopDate: new Date() });
        if (result.status !== 'ABORTED') {
          await stopExecution(
            this.sfn,
            executionArnFor(this.stateMachineArn, name),
            `ended locally: ${result.status}`,
          ).catch(() => undefined);
        }
      });
    }
    return started;
  }

  /** Aborts one execution, as StopExecution does on AWS. */
  abort(name: string): boolean {
    const run = this.running.get(name);
    run?.abort();
    return Boolean(run);
  }

  /** For shutting the local stack down: waits up to `graceMs` for the running executions, then aborts the rest. */
  async stop(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.running.values()].map((r) => r.result)),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
    for (const run of this.running.values()) run.abort();
  }

  /** Runs every execution moto has until none is left, `maxRunning` at a time. */
  async settle(): Promise<ReadonlyMap<string, ExecutionResult>> {
    await this.pickUp();
    while (this.running.size) {
      await Promise.race([...this.running.values()].map((r) => r.result));
      // Let the finished execution's bookkeeping run before looking for the next ones.
      await new Promise((resolve) => setImmediate(resolve));
      await this.pickUp();
    }
    return this.finished;
  }

  results(): ReadonlyMap<string, ExecutionResult> {
    return this.finished;
  }

  /** The sweep's view of executions with what ran here: a local run's own end status instead of moto's. */
  reconcileAws(base: ReconcileAws): ReconcileAws {
    return {
      ...base,
      describeExecution: async (name) => {
        const done = this.finished.get(name);
        if (!done) return base.describeExecution(name);
        const { status, stopDate, error, cause } = done;
        return { status, stopDate, ...(error ? { error } : {}), ...(cause ? { cause } : {}) };
      },
    };
  }
}
