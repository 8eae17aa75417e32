/**
 * `prefect-ecs-launcher pool create|update NAME [--template FILE]`: an `ecs` work pool with prefect-aws's
 * default base job template (what `prefect work-pool create --type ecs` gives when prefect-aws is
 * installed) or the given one.
 */
import { ConfigError } from '../errors';
import defaultBaseJobTemplate from '../render/default-base-job-template.json';
import type { BaseJobTemplate, JsonObject } from '../render/types';
import { type CliContext, type FlagSpec, PROGRAM, parseFlags, readTemplateFile, stringFlag } from './args';
import { connectPrefect } from './connect';

const FLAGS: FlagSpec = { help: { type: 'boolean', short: 'h' }, template: { type: 'string' } };

export const POOL_HELP = `Usage:
  ${PROGRAM} pool create NAME [--template FILE]
  ${PROGRAM} pool update NAME [--template FILE]

create: creates the work pool NAME of type ecs, whose base job template is FILE (a base_job_template:
  {"job_configuration": …, "variables": …}) or prefect-aws's default ECS template. Fails if the pool exists.
update: replaces the base job template of the existing ecs work pool NAME with FILE or the default
  (e.g. to bring a pool created from the Prefect UI's old ECS template up to date). Nothing else changes.

Connects to PREFECT_API_URL with PREFECT_API_KEY, PREFECT_API_AUTH_STRING or their *_SECRET_ARN.
Prints what was done. Exit status: 0 done; 2 the pool, template or a setting is wrong, or the Prefect API
refused (one line on stderr says why); 1 anything else.
`;

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
  const { template, source } = templateFrom(stringFlag(parsed, 'template'), ctx.cwd);
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
  await prefect.updateWorkPool(name, { base_job_template: baseJobTemplate });
  ctx.stdout.write(
    `updated work pool '${name}' (type ecs, id ${existing.id}): base job template is now ${source}\n`,
  );
  return 0;
}
