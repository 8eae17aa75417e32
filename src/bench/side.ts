/** What the scenario runner gives each side and gets back: both sides launch the same pool's runs. */
export interface SideContext {
  /** The scenario's work pool (type `ecs`) and ECS cluster, already created. */
  pool: string;
  cluster: string;
  /** The Prefect API and the AWS endpoint the side must use: the scenario's counting proxies. */
  prefectApiUrl: string;
  awsEndpoint: string;
  /** moto itself, for what AWS would do on its own (the Step Functions service) and is not counted. */
  motoUrl: string;
  pollSeconds: number;
  lookaheadSeconds: number;
  log(line: string): void;
}

export interface RunningSide {
  /** Why the side cannot go on (its process exited), or undefined while it runs. */
  failure(): string | undefined;
  /** Errors it met and went on from (a failed poll, a failed report), each once. */
  problems(): string[];
  /** What the side can tell of its own work (e.g. the launcher's poll outcomes), for the results. */
  facts(): Record<string, number>;
  /** The launcher's function invocations and state transitions, for its bill (src/bench/bill.ts). */
  usage?(): SideUsage;
  /** Stops polling and launching; resolves once nothing of it runs any more. */
  stop(): Promise<void>;
}

export interface SideUsage {
  /** Polls that found runs due; the others are idle polls. */
  busyPolls: { count: number; totalMs: number };
  prepare: { count: number; totalMs: number };
  report: { count: number; totalMs: number };
  transitions: number;
  /** Durations of the polls that found nothing due, in ms. */
  idlePollsMs: number[];
}

export interface Side {
  name: string;
  /** How many seconds before a run's time the side means to start its task (the launcher's start lead). */
  startLeadSeconds?: number;
  /** What the side was given, for the results. */
  describe(settings: { pollSeconds: number; lookaheadSeconds: number }): Record<string, string | number>;
  start(context: SideContext): Promise<RunningSide>;
}

/** moto accepts any non-numeric key pair and maps it to its one account (../shared/reference/test-infra.md §1.1). */
export const BENCH_AWS = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
} as const;
