/**
 * Prefect's `{{ placeholder }}` templating (`prefect.utilities.templating.apply_values`), as the worker
 * applies job variables to a work pool's base job template. Pure.
 * https://github.com/PrefectHQ/prefect/blob/main/src/prefect/utilities/templating/__init__.py
 */
import { pyRepr } from './pyrepr';
import type { Json, JsonObject } from './types';

/**
 * Python's `\s` and `\w` for str patterns are Unicode-aware and differ from JavaScript's: `\s` is
 * `str.isspace()` (which includes U+001C–U+001F and U+0085, but not U+FEFF), `\w` is `str.isalnum()` or `_`.
 */
const PY_SPACE =
  '\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_NAME = '\\p{L}\\p{N}_.\\-\\[\\]$';

/** Prefect's `PLACEHOLDER_CAPTURE_REGEX`, `({{\s*([\w\.\-\[\]$]+)\s*}})`. */
export function placeholderPattern(): RegExp {
  return new RegExp(`\\{\\{[${PY_SPACE}]*([${PY_NAME}]+)[${PY_SPACE}]*\\}\\}`, 'gu');
}

export const BLOCK_PLACEHOLDER_PREFIX = 'prefect.blocks.';
export const VARIABLE_PLACEHOLDER_PREFIX = 'prefect.variables.';

export type PlaceholderKind = 'standard' | 'block' | 'variable' | 'env';

export interface Placeholder {
  /** The whole `{{ … }}` text. */
  fullMatch: string;
  name: string;
  kind: PlaceholderKind;
}

function kindOf(name: string): PlaceholderKind {
  if (name.startsWith(BLOCK_PLACEHOLDER_PREFIX)) return 'block';
  if (name.startsWith(VARIABLE_PLACEHOLDER_PREFIX)) return 'variable';
  if (name.startsWith('$')) return 'env';
  return 'standard';
}

/** The distinct placeholders of a string, in order of first appearance (Prefect collects them in a set). */
export function findPlaceholders(text: string): Placeholder[] {
  const seen = new Map<string, Placeholder>();
  for (const match of text.matchAll(placeholderPattern())) {
    const [fullMatch, name] = match as unknown as [string, string];
    if (!seen.has(fullMatch)) seen.set(fullMatch, { fullMatch, name, kind: kindOf(name) });
  }
  return [...seen.values()];
}

/** The one placeholder a string consists of, if it is exactly one placeholder and nothing else. */
export function solePlaceholder(text: string): Placeholder | undefined {
  const found = findPlaceholders(text);
  return found.length === 1 && found[0]?.fullMatch === text ? found[0] : undefined;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Python's `int(key)` for the keys a placeholder path can contain (ASCII digits, `-`, `_` separators). */
function pyIndex(key: string): number | undefined {
  return /^-?\d+(_\d+)*$/.test(key) ? Number(key.replaceAll('_', '')) : undefined;
}

/**
 * Prefect's `get_from_dict(values, "a.b[0]")`: `[i]` is the same as `.i`; dicts are looked up by the exact
 * key, lists and strings by (possibly negative) index. Undefined when any step is missing, which is
 * Prefect's NotSet (an explicit `null` is a value).
 */
export function lookupPath(values: Json, path: string): Json | undefined {
  let value: Json = values;
  for (const key of path.replaceAll('[', '.').replaceAll(']', '').split('.')) {
    if (isJsonObject(value)) {
      if (!Object.hasOwn(value, key)) return undefined;
      value = value[key] as Json;
    } else if (Array.isArray(value) || typeof value === 'string') {
      const items: Json[] = typeof value === 'string' ? Array.from(value) : value;
      let index = pyIndex(key);
      if (index === undefined) return undefined;
      if (index < 0) index += items.length;
      if (index < 0 || index >= items.length) return undefined;
      value = items[index] as Json;
    } else {
      return undefined;
    }
  }
  return value;
}

/** Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
function pyFloat(value: number): string {
  const [mantissa = '', exponentText = '0'] = value.toExponential().split('e');
  const exponent = Number(exponentText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = negative ? '-' : '';
  if (exponent < -4 || exponent >= 16) {
    const fraction = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const exp = `${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
    return `${sign}${digits[0]}${fraction}e${exp}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
  const fraction = digits.slice(exponent + 1) || '0';
  return `${sign}${whole}.${fraction}`;
}

function pyReprValue(value: Json): string {
  if (typeof value === 'string') return pyRepr(value);
  if (Array.isArray(value)) return `[${value.map(pyReprValue).join(', ')}]`;
  if (isJsonObject(value)) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${pyRepr(k)}: ${pyReprValue(v)}`)
      .join(', ')}}`;
  }
  return pyStr(value);
}

/**
 * Python's `str()` of a JSON value, which Prefect uses to put values into text and to coerce `env` values:
 * `True`, `None`, `{'a': 1}`. Residual differences: JSON does not say whether `1.0` was a float, so
 * integral numbers print as ints (`1`, where Python prints `1.0`); integers beyond 2**53 have already lost
 * precision in JavaScript's JSON parsing; strings inside containers escape only ASCII and Latin-1 control
 * characters (Python's repr also escapes other non-printable characters).
 */
export function pyStr(value: Json): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') {
    // As Python would print the number parsed from JSON.stringify's text: an int below 1e21, else a float.
    return Number.isInteger(value) && Math.abs(value) < 1e21 ? String(value) : pyFloat(value);
  }
  if (typeof value === 'string') return value;
  return pyReprValue(value);
}

/**
 * Prefect's `apply_values(template, values)` (with `remove_notset=True`):
 * - a string that is exactly one placeholder becomes the value itself, keeping its type;
 * - a placeholder without a value makes the string missing, so its dict key or list item is dropped
 *   (undefined at the top level); a dict whose keys all dropped stays `{}`;
 * - placeholders inside text get `str(value)`, or "" when missing;
 * - `prefect.blocks.*` and `prefect.variables.*` placeholders are left for `resolveReferences`.
 * `{{ $NAME }}` reads the worker's own environment in Prefect; the launcher's environment holds its own
 * settings, which must not reach flow containers, so it is always treated as missing (""). Only the values
 * are templated, never the keys.
 */
export function applyValues(template: Json, values: JsonObject): Json | undefined {
  if (template === null || typeof template === 'number' || typeof template === 'boolean') return template;
  if (typeof template === 'string') return applyToString(template, values);
  if (Array.isArray(template)) {
    return template.map((item) => applyValues(item, values)).filter((item) => item !== undefined);
  }
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(template)) {
    const applied = applyValues(value, values);
    if (applied !== undefined) out[key] = applied;
  }
  return out;
}

function applyToString(template: string, values: JsonObject): Json | undefined {
  const placeholders = findPlaceholders(template);
  if (placeholders.length === 0) return template;
  const sole = solePlaceholder(template);
  if (sole?.kind === 'standard') return lookupPath(values, sole.name);
  const replacements = new Map<string, string>();
  for (const { fullMatch, name, kind } of placeholders) {
    if (kind === 'standard') {
      const value = lookupPath(values, name);
      replacements.set(fullMatch, value === undefined ? '' : pyStr(value));
    } else if (kind === 'env') {
      replacements.set(fullMatch, '');
    }
  }
  // One pass over the original text, so inserted values are never read as placeholders themselves.
  return template.replace(placeholderPattern(), (match) => replacements.get(match) ?? match);
}
