/**
 * The CLI's small shared pieces: flag parsing on node:util's parseArgs with one-line messages, reading
 * the JSON files flags name, and the streams and environment a command runs with.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors';
import { checkTemplate } from '../render/job-variables';
import { isJsonObject } from '../render/template';
import type { BaseJobTemplate, Json, JsonObject } from '../render/types';

export type Env = Record<string, string | undefined>;

/** Where a command writes and what it reads besides its arguments (the process's own, or a test's). */
export interface CliContext {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** The launcher's settings (PREFECT_API_URL, LAUNCHER_*…). The AWS SDK reads its own from the process. */
  env: Env;
  /** Relative file names are resolved against it. */
  cwd: string;
}

export const PROGRAM = 'prefect-ecs-launcher';

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface ParsedFlags {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * The option's name in a parseArgs error message: `--template` in "Option '--template <value>' argument
 * missing", `--help` in "Option '-h, --help' does not take an argument", `-x` in "Unknown option '-x'".
 */
function optionIn(message: string): string {
  return /(--[^'\s=,]+)/.exec(message)?.[1] ?? /'(-[^'\s,]+)/.exec(message)?.[1] ?? 'an option';
}

/**
 * Parses `args` strictly: unknown flags and flags without their value are ConfigErrors that name the flag
 * and the command's help.
 */
export function parseFlags(args: string[], flags: FlagSpec, command: string): ParsedFlags {
  try {
    const { values, positionals } = parseArgs({ args, options: flags, strict: true, allowPositionals: true });
    return { values: values as ParsedFlags['values'], positionals };
  } catch (err) {
    const code = (err as { code?: string }).code;
    const message = err instanceof Error ? err.message : String(err);
    const help = `see ${PROGRAM} ${command} --help`;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new ConfigError(`unknown option ${optionIn(message)}; ${help}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const option = optionIn(message);
      throw new ConfigError(
        flags[option.replace(/^-+/, '')]?.type === 'boolean'
          ? `${option} takes no value; ${help}`
          : `${option} needs a value; ${help}`,
      );
    }
    throw new ConfigError(`${message.replace(/\s+/g, ' ')}; ${help}`);
  }
}

/** A string flag's value; an empty one is refused, naming the flag. */
export function stringFlag(parsed: ParsedFlags, name: string): string | undefined {
  const value = parsed.values[name];
  if (value === undefined || typeof value !== 'string') return undefined;
  if (!value.trim()) throw new ConfigError(`--${name} is empty; give it a value`);
  return value;
}

/** The JSON object in the file a flag names; every failure names the flag and the file. */
export function readJsonObject(file: string, flag: string, cwd: string): JsonObject {
  const where = `--${flag} ${file}`;
  let text: string;
  try {
    text = readFileSync(path.resolve(cwd, file), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory, not a file'
          : code === 'EACCES'
            ? 'permission denied'
            : `cannot be read (${code ?? (err as Error).message})`;
    throw new ConfigError(`${where}: ${reason}`, { cause: err });
  }
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch (err) {
    throw new ConfigError(`${where}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (!isJsonObject(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new ConfigError(`${where}: must hold a JSON object, got ${got}`);
  }
  return value;
}

/**
 * The base job template in the file `--template` names, checked for shape. A whole work pool (what
 * `prefect work-pool inspect NAME --output json` prints) is refused with the way to its template, since
 * its missing `job_configuration` would otherwise be all the message says.
 */
export function readTemplateFile(file: string, cwd: string): BaseJobTemplate {
  const value = readJsonObject(file, 'template', cwd);
  if (isJsonObject(value.base_job_template) && value.job_configuration === undefined) {
    throw new ConfigError(
      `--template ${file}: holds a work pool, not its base job template; pass the pool's base_job_template, e.g. prefect work-pool inspect NAME --output json | jq .base_job_template > template.json`,
    );
  }
  const template = value as unknown as BaseJobTemplate;
  try {
    checkTemplate(template);
  } catch (err) {
    throw new ConfigError(`--template ${file}: ${(err as Error).message}`, { cause: err });
  }
  return template;
}

/** The message of any error on one line, as the CLI prints it. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
