import type { JsonObject } from '../render/types';

/**
 * The start lead: how many seconds before a run's scheduled time its RunTask goes out, so that the flow's
 * engine begins near its second instead of 30 to 90 s after it (Fargate pulls the image and attaches the
 * ENI first). Prefect still records the run as Running when the engine starts, not when the task does.
 *
 * LAUNCHER_START_LEAD_SECONDS sets it for the pool; a deployment's or flow run's job variable
 * `start_lead_seconds` overrides it for that run (the flow run's over the deployment's). Pure.
 */
export const START_LEAD_VARIABLE = 'start_lead_seconds';
export const MAX_START_LEAD_SECONDS = 600;

export interface StartLead {
  seconds: number;
  /** Why a job variable was not used, for the run's log; absent when all was well. */
  problem?: string;
}

function fromJobVariables(variables: JsonObject | null | undefined): unknown {
  return variables && Object.hasOwn(variables, START_LEAD_VARIABLE)
    ? variables[START_LEAD_VARIABLE]
    : undefined;
}

export function startLeadOf(
  runVariables: JsonObject | null | undefined,
  deploymentVariables: JsonObject | null | undefined,
  launcherDefault: number,
): StartLead {
  const raw = fromJobVariables(runVariables) ?? fromJobVariables(deploymentVariables);
  if (raw === undefined || raw === null) return { seconds: launcherDefault };
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_START_LEAD_SECONDS) {
    return { seconds: value };
  }
  return {
    seconds: launcherDefault,
    problem: `job variable ${START_LEAD_VARIABLE} must be a whole number of seconds from 0 to ${MAX_START_LEAD_SECONDS}, got ${JSON.stringify(raw)}; the launcher's start lead (${launcherDefault} s) applies`,
  };
}

/** When RunTask may go out: `lead` seconds before the scheduled time (RFC 3339 UTC, for the Wait state). */
export function startAtOf(scheduledStartTime: string, leadSeconds: number): string {
  return new Date(new Date(scheduledStartTime).getTime() - leadSeconds * 1000).toISOString();
}
