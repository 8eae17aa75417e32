/**
 * The `prefect-ecs-launcher` command line (bin/prefect-ecs-launcher.js runs it from source). Every failure
 * is one line on stderr; see the exit statuses in `HELP`.
 */
import { LauncherError } from '../errors';
import { type CliContext, oneLine, PROGRAM } from './args';
import { POOL_HELP, poolCommand } from './pool';
import { RENDER_HELP, renderCommand } from './render';
import { STATUS_HELP, statusCommand } from './status';

export { type CliContext, POOL_HELP, RENDER_HELP, STATUS_HELP };

export const HELP = `Usage: ${PROGRAM} <command> [options]

Commands:
  render       print the ECS task definition and RunTask request the launcher would send for a flow run
  pool create  create an ecs work pool with prefect-aws's default base job template (or a given one)
  pool update  replace an ecs work pool's base job template
  status       the pool, the launcher's heartbeat, and what it is doing with the last hour's runs

Run '${PROGRAM} <command> --help' for a command's options.

Exit status: 0 success; 2 bad input, settings or job configuration (one line on stderr says which);
1 anything else.
`;

/** 2: the user must fix an input, a setting or the job; 1: anything unexpected. */
export function exitStatusFor(err: unknown): number {
  return err instanceof LauncherError ? 2 : 1;
}

function describe(err: unknown): string {
  if (err instanceof LauncherError) return err.message;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Runs one command line (without the program name); resolves to the exit status. */
export async function main(argv: string[], ctx: CliContext): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'render':
        return await renderCommand(args, ctx);
      case 'pool':
        return await poolCommand(args, ctx);
      case 'status':
        return await statusCommand(args, ctx);
      case '--help':
      case '-h':
      case 'help':
        ctx.stdout.write(HELP);
        return 0;
      case undefined:
        ctx.stderr.write(`${PROGRAM}: a command is needed; run '${PROGRAM} --help'\n`);
        return 2;
      default:
        ctx.stderr.write(`${PROGRAM}: unknown command ${JSON.stringify(command)}; run '${PROGRAM} --help'\n`);
        return 2;
    }
  } catch (err) {
    ctx.stderr.write(`${PROGRAM} ${command}: ${oneLine(describe(err))}\n`);
    return exitStatusFor(err);
  }
}
