/**
 * `prefect-ecs-launcher pool create|update NAME [--template FILE]`: an `ecs` work pool with prefect-aws's
 * default base job template (what `prefect work-pool create --type ecs` gives when prefect-aws is
 * installed) or the given one.
 */
import { createSecretsManagerClient } from '../aws/secrets';
import { parseRunNowToken } from '../config';
import { ConfigError } from '../errors';
import { runNowTokenReader } from '../launch/credential';
import {
  applyRunNowAutomation,
  removeRunNowAutomation,
  runNowNames,
  runNowUrl,
} from '../launch/run-now-automation';
import type { PrefectClient } from '../prefect/client';
import type { WorkPool } from '../prefect/types';
import defaultBaseJobTemplate from '../render/default-base-job-template.json';
import type { BaseJobTemplate, JsonObject } from '../render/types';
import {
  type CliContext,
  type Env,
  type FlagSpec,
  type ParsedFlags,
  PROGRAM,
  parseFlags,
  readTemplateFile,
  stringFlag,
} from './args';
import { connectPrefect } from './connect';

const FLAGS: FlagSpec = {
  help: { type: 'boolean', short: 'h' },
  template: { type: 'string' },
  'run-now-url': { type: 'string' },
  'run-now-token-secret-arn': { type: 'string' },
  'no-run-now': { type: 'boolean' },
  region: { type: 'string' },
};

export const POOL_HELP = `Usage:
  ${PROGRAM} pool create NAME [--template FILE] [RUN NOW]
  ${PROGRAM} pool update NAME [--template FILE] [RUN NOW | --no-run-now]

create: creates the work pool NAME of type ecs, whose base job template is FILE (a base_job_template:
  {"job_configuration": …, "variables": …}) or prefect-aws's default ECS template. Fails if the pool exists.
update: replaces the base job template of the existing ecs work pool NAME with FILE or the default
  (e.g. to bring a pool created from the Prefect UI's old ECS template up to date). Nothing else changes.
  With run-now flags and no --template, the template is left as it is.

RUN NOW (docs/deploy.md, "Run now"): the automation that calls the deployed stack's run-now function URL
when a run of the pool is scheduled by hand, so it launches in seconds rather than at the next poll.
  --run-now-url URL                  the stack's RunNowUrl output
  --run-now-token-secret-arn ARN     its RunNowTokenSecretArn output, read with your AWS credentials
                                     (or put the token itself in LAUNCHER_RUN_NOW_TOKEN)
  --region REGION                    where that secret is, if not in the ARN's region
  --no-run-now                       removes the automation and its webhook block
Applying again (e.g. after rotating the token) updates the automation in place.

Connects to PREFECT_API_URL with PREFECT_API_KEY, PREFECT_API_AUTH_STRING or their *_SECRET_ARN.
Prints what was done. Exit status: 0 done; 2 the pool, template or a setting is wrong, or the Prefect API
refused (one line on stderr says why); 1 anything else.
`;

type RunNowRequest =
  | { kind: 'apply'; url: string; token: () => Promise<string> }
  | { kind: 'remove' }
  | undefined;

/** What the run-now flags ask for; the token is read only once everything else checked out. */
function runNowRequest(parsed: ParsedFlags, env: Env): RunNowRequest {
  const url = stringFlag(parsed, 'run-now-url');
  const secretArn = stringFlag(parsed, 'run-now-token-secret-arn');
  const region = stringFlag(parsed, 'region');
  if (parsed.values['no-run-now']) {
    if (url || secretArn) {
      throw new ConfigError('--no-run-now removes the run-now automation; give it without --run-now-url');
    }
    return { kind: 'remove' };
  }
  if (!url) {
    if (secretArn) throw new ConfigError('--run-now-token-secret-arn needs --run-now-url');
    return undefined;
  }
  runNowUrl(url);
  const source = parseRunNowToken({
    LAUNCHER_RUN_NOW_TOKEN: env.LAUNCHER_RUN_NOW_TOKEN,
    LAUNCHER_RUN_NOW_TOKEN_SECRET_ARN: secretArn,
  });
  if (source.kind === 'none') {
    throw new ConfigError(
      '--run-now-url needs the token: --run-now-token-secret-arn (the RunNowTokenSecretArn output) or LAUNCHER_RUN_NOW_TOKEN',
    );
  }
  const secretRegion = region ?? (source.kind === 'secret' ? source.secretArn.split(':')[3] : undefined);
  return {
    kind: 'apply',
    url,
    token: runNowTokenReader(source, () =>
      createSecretsManagerClient(secretRegion ? { region: secretRegion } : {}),
    ),
  };
}

async function applyRunNow(
  request: RunNowRequest,
  prefect: PrefectClient,
  pool: WorkPool,
  ctx: CliContext,
): Promise<void> {
  if (request?.kind === 'apply') {
    const { created } = await applyRunNowAutomation(prefect, pool, {
      url: request.url,
      token: await request.token(),
    });
    const { automation } = runNowNames(pool.name);
    ctx.stdout.write(
      `${created ? 'created' : 'updated'} automation '${automation}': runs of '${pool.name}' scheduled by hand are launched at once through ${request.url}\n`,
    );
  } else if (request?.kind === 'remove') {
    const removed = await removeRunNowAutomation(prefect, pool.name);
    ctx.stdout.write(
      removed
        ? `removed the run-now automation of '${pool.name}'; its runs wait for the schedule's poll again\n`
        : `work pool '${pool.name}' had no run-now automation\n`,
    );
  }
}

function templateFrom(file: string | undefined, cwd: string): { template: BaseJobTemplate; source: string } {
  if (file === undefined) {
    return {
      template: defaultBaseJobTemplate as unknown as BaseJobTemplate,
      source: "prefect-aws's default ECS base job template",
    };
  }
  return { template: readTemplateFile(file, cwd), source: `the base job template in ${file}` };
}

function poolName(positionals: string[], action: string): string {
  const [name, extra] = positionals;
  if (!name) throw new ConfigError(`pool ${action} needs the work pool's NAME; see ${PROGRAM} pool --help`);
  if (extra !== undefined) {
    throw new ConfigError(`pool ${action} takes one NAME, got also ${JSON.stringify(extra)}`);
  }
  // The worker's rule for names that go into API paths (and LAUNCHER_WORK_POOL's).
  if (/[/%]/.test(name))
    throw new ConfigError(`work pool name ${JSON.stringify(name)} must not contain '/' or '%'`);
  return name;
}

export async function poolCommand(args: string[], ctx: CliContext): Promise<number> {
  const [action, ...rest] = args;
  if (action === '--help' || action === '-h') {
    ctx.stdout.write(POOL_HELP);
    return 0;
  }
  if (action === undefined) {
    throw new ConfigError(`pool needs a command, create or update; see ${PROGRAM} pool --help`);
  }
  if (action !== 'create' && action !== 'update') {
    throw new ConfigError(`unknown pool command ${JSON.stringify(action)}; use pool create or pool update`);
  }
  const parsed = parseFlags(rest, FLAGS, `pool ${action}`);
  if (parsed.values.help) {
    ctx.stdout.write(POOL_HELP);
    return 0;
  }
  const name = poolName(parsed.positionals, action);
  const templateFile = stringFlag(parsed, 'template');
  const { template, source } = templateFrom(templateFile, ctx.cwd);
  const runNow = runNowRequest(parsed, ctx.env);
  if (action === 'create' && runNow?.kind === 'remove') {
    throw new ConfigError('--no-run-now is for pool update; a new pool has no automation to remove');
  }
  const { prefect, connection } = await connectPrefect(ctx.env);
  const existing = await prefect.readWorkPool(name);
  const baseJobTemplate = template as unknown as JsonObject;
  if (action === 'create') {
    if (existing) {
      throw new ConfigError(
        `work pool '${name}' already exists (type ${existing.type}) at ${connection.apiUrl}; use ${PROGRAM} pool update ${name} to replace its base job template`,
      );
    }
    const pool = await prefect.createWorkPool({ name, type: 'ecs', base_job_template: baseJobTemplate });
    ctx.stdout.write(`created work pool '${pool.name}' (type ecs, id ${pool.id}) with ${source}\n`);
    await applyRunNow(runNow, prefect, pool, ctx);
    return 0;
  }
  if (!existing) {
    throw new ConfigError(
      `work pool '${name}' does not exist at ${connection.apiUrl}; create it with ${PROGRAM} pool create ${name}`,
    );
  }
  if (existing.type !== 'ecs') {
    throw new ConfigError(
      `work pool '${name}' is of type ${existing.type}, not ecs; the launcher serves only ecs pools`,
    );
  }
  if (templateFile !== undefined || !runNow) {
    await prefect.updateWorkPool(name, { base_job_template: baseJobTemplate });
    ctx.stdout.write(
      `updated work pool '${name}' (type ecs, id ${existing.id}): base job template is now ${source}\n`,
    );
  }
  await applyRunNow(runNow, prefect, existing, ctx);
  return 0;
}
