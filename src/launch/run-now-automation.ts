import { createHash } from 'node:crypto';
import { ConfigError } from '../errors';
import type { PrefectClient } from '../prefect/client';
import type { AutomationCreate, WorkPool } from '../prefect/types';
import type { JsonObject } from '../render/types';
import { MIN_TOKEN_LENGTH, RUN_NOW_HEADER } from './run-now';

/**
 * The Prefect automation behind "run now": when a flow run of the pool enters Scheduled, Prefect calls the
 * launcher's run-now entry point through a webhook block that carries the bearer token.
 *
 * Checked on Prefect 3.9.1's server (docs/deploy.md, "Run now"): a run created by hand or through the API
 * in Scheduled emits `prefect.flow-run.Scheduled` with the work pool among its related resources; runs the
 * scheduler service creates ahead of time emit no event (they are inserted in bulk) and are left to the
 * schedule, which claims them on time anyway. Runs the launcher itself puts back to Scheduled (its message
 * begins "prefect-ecs-launcher") are excluded, so a failing start cannot loop through the automation.
 */

const WEBHOOK_BLOCK_TYPE = 'webhook';
/** The launcher's state messages begin so (src/launch/poll.ts, returnToScheduled). */
const LAUNCHER_MESSAGE = 'prefect-ecs-launcher*';

/** The automation's and the webhook block's names, derived from the pool's so each pool has its own. */
export function runNowNames(pool: string): { automation: string; block: string } {
  // Block document names allow only lowercase letters, digits and dashes; a hash keeps distinct pools apart.
  const slug = pool
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  const hash = createHash('sha256').update(pool).digest('hex').slice(0, 8);
  return {
    automation: `prefect-ecs-launcher run-now ${pool}`,
    block: `prefect-ecs-launcher-run-now-${slug ? `${slug}-` : ''}${hash}`,
  };
}

/**
 * What the webhook block holds: where to call and the token to call with. Only the fields every Prefect 3
 * webhook schema has; the others keep their defaults (TLS verified).
 */
export function webhookBlockData(url: string, token: string): JsonObject {
  return {
    url,
    method: 'POST',
    headers: { [RUN_NOW_HEADER]: `Bearer ${token}`, 'content-type': 'application/json' },
  };
}

/** The automation: one reactive event trigger on the pool's Scheduled runs, one call-webhook action. */
export function runNowAutomation(pool: WorkPool, blockDocumentId: string): AutomationCreate {
  return {
    name: runNowNames(pool.name).automation,
    description:
      'Made by prefect-ecs-launcher: calls its run-now entry point when a flow run of this work pool is scheduled by hand, so it launches in seconds. Remove it with prefect-ecs-launcher pool update --no-run-now.',
    enabled: true,
    trigger: {
      type: 'event',
      posture: 'Reactive',
      expect: ['prefect.flow-run.Scheduled'],
      match: { 'prefect.resource.id': 'prefect.flow-run.*', 'prefect.state-message': `!${LAUNCHER_MESSAGE}` },
      match_related: { 'prefect.resource.id': `prefect.work-pool.${pool.id}` },
      threshold: 1,
      within: 0,
    },
    actions: [
      {
        type: 'call-webhook',
        block_document_id: blockDocumentId,
        // Only the run's id: the entry point reads everything else from Prefect itself.
        payload: '{"flow_run_id": "{{ flow_run.id }}"}',
      },
    ],
  };
}

export type RunNowPrefect = Pick<
  PrefectClient,
  | 'readBlockTypeId'
  | 'readBlockSchemaId'
  | 'readBlockDocumentId'
  | 'createBlockDocument'
  | 'replaceBlockDocumentData'
  | 'deleteBlockDocument'
  | 'readAutomationsByName'
  | 'createAutomation'
  | 'replaceAutomation'
  | 'deleteAutomation'
>;

/** Checks the entry point's URL: https, or http on loopback (the local stack). */
export function runNowUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (cause) {
    throw new ConfigError(`--run-now-url is not a URL: ${JSON.stringify(raw)}`, { cause });
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new ConfigError(
      `--run-now-url must be https:// (the RunNowUrl output of the deployed stack), got ${JSON.stringify(raw)}`,
    );
  }
  return url.toString();
}

/** Creates the pool's webhook block and automation, or brings existing ones up to date. */
export async function applyRunNowAutomation(
  prefect: RunNowPrefect,
  pool: WorkPool,
  settings: { url: string; token: string },
): Promise<{ automationId: string; created: boolean }> {
  if (settings.token.length < MIN_TOKEN_LENGTH) {
    throw new ConfigError(`the run-now token must be at least ${MIN_TOKEN_LENGTH} characters long`);
  }
  const names = runNowNames(pool.name);
  const data = webhookBlockData(runNowUrl(settings.url), settings.token);
  let blockId = await prefect.readBlockDocumentId(WEBHOOK_BLOCK_TYPE, names.block);
  if (blockId) {
    await prefect.replaceBlockDocumentData(blockId, data);
  } else {
    const typeId = await prefect.readBlockTypeId(WEBHOOK_BLOCK_TYPE);
    const schemaId = typeId && (await prefect.readBlockSchemaId(typeId));
    if (!typeId || !schemaId) {
      throw new ConfigError(
        "this Prefect server has no 'webhook' block type, which the run-now automation calls the entry point with; run-now needs a Prefect 3 server or Prefect Cloud",
      );
    }
    blockId = await prefect.createBlockDocument({
      name: names.block,
      block_type_id: typeId,
      block_schema_id: schemaId,
      data,
    });
  }
  const automation = runNowAutomation(pool, blockId);
  const [existing, ...duplicates] = await prefect.readAutomationsByName(names.automation);
  for (const extra of duplicates) await prefect.deleteAutomation(extra.id);
  if (existing) {
    await prefect.replaceAutomation(existing.id, automation);
    return { automationId: existing.id, created: false };
  }
  return { automationId: await prefect.createAutomation(automation), created: true };
}

/** Removes the pool's automation and webhook block; true when there was something to remove. */
export async function removeRunNowAutomation(prefect: RunNowPrefect, poolName: string): Promise<boolean> {
  const names = runNowNames(poolName);
  let removed = false;
  for (const automation of await prefect.readAutomationsByName(names.automation)) {
    removed = (await prefect.deleteAutomation(automation.id)) || removed;
  }
  const blockId = await prefect.readBlockDocumentId(WEBHOOK_BLOCK_TYPE, names.block);
  if (blockId) removed = (await prefect.deleteBlockDocument(blockId)) || removed;
  return removed;
}
