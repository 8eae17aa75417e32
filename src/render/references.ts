/**
 * Block and variable references in a templated job configuration, resolved as Prefect's
 * `resolve_block_document_references` and then `resolve_variables` do. The only I/O is through the
 * `TemplateReferenceReader`; each distinct reference is read once per call, and reads run concurrently.
 * https://github.com/PrefectHQ/prefect/blob/main/src/prefect/utilities/templating/__init__.py
 */
import { JobConfigurationError, PrefectApiError } from '../errors';
import {
  BLOCK_PLACEHOLDER_PREFIX,
  findPlaceholders,
  isJsonObject,
  lookupPath,
  type Placeholder,
  placeholderPattern,
  pyStr,
  solePlaceholder,
  VARIABLE_PLACEHOLDER_PREFIX,
} from './template';
import type { Json, JsonObject, TemplateReferenceReader } from './types';

/** Memoised reads: one request per distinct block or variable, shared by every place that refers to it. */
class CachedReader {
  private readonly blocksById = new Map<string, Promise<JsonObject>>();
  private readonly blocksByName = new Map<string, Promise<JsonObject | null>>();
  private readonly variables = new Map<string, Promise<Json | undefined>>();

  constructor(private readonly reader: TemplateReferenceReader) {}

  blockById(id: string): Promise<JsonObject> {
    return memo(this.blocksById, id, () => this.reader.readBlockDocumentData(id));
  }

  blockByName(slug: string, name: string): Promise<JsonObject | null> {
    return memo(this.blocksByName, `${slug}\u0000${name}`, () =>
      this.reader.readBlockDocumentDataByName(slug, name),
    );
  }

  variable(name: string): Promise<Json | undefined> {
    return memo(this.variables, name, () => this.reader.readVariableValue(name));
  }
}

function memo<T>(cache: Map<string, Promise<T>>, key: string, read: () => Promise<T>): Promise<T> {
  let pending = cache.get(key);
  if (!pending) {
    pending = read();
    cache.set(key, pending);
  }
  return pending;
}

/**
 * Like Promise.all, but waits for every item and then throws the first failure in item order, so the
 * reported error does not depend on which request happened to fail first.
 */
async function settleInOrder<T>(items: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(items);
  return settled.map((result) => {
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  });
}

function where(path: string): string {
  return path ? `job configuration field '${path}'` : 'the job configuration';
}

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

function isMissing(err: unknown): err is PrefectApiError {
  // 422: the API could not parse the ID as a UUID, so no such block exists either.
  return err instanceof PrefectApiError && (err.status === 404 || err.status === 422);
}

const FIX_REFERENCE =
  "Create the block again, or change the reference in the deployment's job variables or the work pool's base job template.";

/**
 * Resolves, in Prefect's order, `{"$ref": {"block_document_id": id}}` objects and
 * `{{ prefect.blocks.<type-slug>.<name>[.path] }}` placeholders to block data, then
 * `{{ prefect.variables.<name> }}` placeholders to variable values. A missing block is a
 * JobConfigurationError naming the reference; a missing variable becomes "" (as in Prefect).
 */
export async function resolveReferences(template: Json, reader: TemplateReferenceReader): Promise<Json> {
  const cached = new CachedReader(reader);
  const withBlocks = await resolveBlocks(template, cached, '');
  return resolveVariables(withBlocks, cached);
}

async function resolveBlocks(node: Json, reader: CachedReader, path: string): Promise<Json> {
  if (Array.isArray(node)) {
    return settleInOrder(node.map((item, i) => resolveBlocks(item, reader, child(path, i))));
  }
  if (isJsonObject(node)) {
    if (Object.hasOwn(node, '$ref')) {
      const ref = node.$ref;
      if (!isJsonObject(ref)) {
        throw new JobConfigurationError(
          `A block reference at ${where(path)} must look like {"$ref": {"block_document_id": "<block document ID>"}}, got {"$ref": ${JSON.stringify(ref)}}. Fix the reference in the deployment's job variables or the work pool's base job template.`,
        );
      }
      const id = ref.block_document_id;
      // Prefect treats a `$ref` without a (truthy) block_document_id as ordinary data.
      if (id !== undefined && id !== null && id !== '' && id !== 0 && id !== false) {
        if (typeof id !== 'string') {
          throw new JobConfigurationError(
            `The block reference at ${where(path)} has block_document_id ${JSON.stringify(id)}; it must be a block document ID (a UUID string). ${FIX_REFERENCE}`,
          );
        }
        return readBlockById(id, reader, path);
      }
    }
    const entries = Object.entries(node);
    const values = await settleInOrder(
      entries.map(([key, value]) => resolveBlocks(value, reader, child(path, key))),
    );
    return Object.fromEntries(entries.map(([key], i) => [key, values[i] as Json]));
  }
  if (typeof node !== 'string') return node;
  const placeholders = findPlaceholders(node).filter((p) => p.kind === 'block');
  if (placeholders.length === 0) return node;
  const sole = solePlaceholder(node);
  if (sole?.kind === 'block') return resolveBlockPlaceholder(sole, node, reader, path);
  const values = await settleInOrder(placeholders.map((p) => resolveBlockPlaceholder(p, node, reader, path)));
  const replacements = new Map<string, string>();
  placeholders.forEach((p, i) => {
    const value = values[i] as Json;
    if (value !== null && typeof value === 'object') {
      const type = Array.isArray(value) ? 'list' : 'dict';
      throw new JobConfigurationError(
        `Invalid template: ${JSON.stringify(node)}. Block placeholder '${p.fullMatch}' resolved to a ${type}, which cannot be used for inline string substitution. Resolve a scalar attribute instead (e.g., '.value' or '.url'). At ${where(path)}.`,
      );
    }
    replacements.set(p.fullMatch, pyStr(value));
  });
  // Other placeholders stay for the variable pass.
  return node.replace(placeholderPattern(), (match) => replacements.get(match) ?? match);
}

async function readBlockById(id: string, reader: CachedReader, path: string): Promise<Json> {
  try {
    return structuredClone(await reader.blockById(id));
  } catch (err) {
    if (!isMissing(err)) throw err;
    throw new JobConfigurationError(
      `Block not found: ID '${id}'. This block was referenced in the deployment or work pool configuration ({"$ref": {"block_document_id": "${id}"}} at ${where(path)}) but no longer exists; it may have been deleted. ${FIX_REFERENCE}`,
      { cause: err },
    );
  }
}

/** Python's `text.split(sep, maxsplit)`. */
function splitMax(text: string, sep: string, maxsplit: number): string[] {
  const parts: string[] = [];
  let rest = text;
  while (parts.length < maxsplit) {
    const at = rest.indexOf(sep);
    if (at < 0) break;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + sep.length);
  }
  parts.push(rest);
  return parts;
}

async function resolveBlockPlaceholder(
  placeholder: Placeholder,
  template: string,
  reader: CachedReader,
  path: string,
): Promise<Json> {
  const [slug, name, keypath] = splitMax(placeholder.name.replaceAll(BLOCK_PLACEHOLDER_PREFIX, ''), '.', 2);
  if (slug === undefined || name === undefined) {
    throw new JobConfigurationError(
      `Invalid block placeholder format: '${placeholder.name}' at ${where(path)}. Expected format: prefect.blocks.<block-type-slug>.<block-document-name>`,
    );
  }
  let data: JsonObject | null;
  try {
    data = await reader.blockByName(slug, name);
  } catch (err) {
    if (!isMissing(err)) throw err;
    data = null;
  }
  if (data === null) {
    throw new JobConfigurationError(
      `Block not found: '${name}' of type '${slug}'. This block was referenced in the deployment or work pool configuration (${placeholder.fullMatch} at ${where(path)}) but no longer exists; it may have been deleted. ${FIX_REFERENCE}`,
    );
  }
  let value: Json = data;
  // A block with nothing but `value` (Secret, String, JSON…) stands for that value, unless the path names it.
  const keys = Object.keys(data);
  const pointsIntoValue =
    keypath !== undefined &&
    (keypath === 'value' || keypath.startsWith('value.') || keypath.startsWith('value['));
  if (keys.length === 1 && keys[0] === 'value' && !pointsIntoValue) value = data.value as Json;
  if (keypath !== undefined) {
    const found = lookupPath(value, keypath);
    if (found === undefined) {
      throw new JobConfigurationError(
        `Invalid template: ${JSON.stringify(template)}. Could not resolve the keypath in the block document data: the block '${name}' of type '${slug}' has no '${keypath}' (at ${where(path)}).`,
      );
    }
    value = found;
  }
  return structuredClone(value);
}

async function resolveVariables(node: Json, reader: CachedReader): Promise<Json> {
  if (Array.isArray(node)) return settleInOrder(node.map((item) => resolveVariables(item, reader)));
  if (isJsonObject(node)) {
    const entries = Object.entries(node);
    const values = await settleInOrder(entries.map(([, value]) => resolveVariables(value, reader)));
    return Object.fromEntries(entries.map(([key], i) => [key, values[i] as Json]));
  }
  if (typeof node !== 'string') return node;
  const placeholders = findPlaceholders(node).filter((p) => p.kind === 'variable');
  if (placeholders.length === 0) return node;
  const values = await settleInOrder(
    placeholders.map((p) => reader.variable(p.name.replaceAll(VARIABLE_PLACEHOLDER_PREFIX, ''))),
  );
  const sole = solePlaceholder(node);
  if (sole?.kind === 'variable') return values[0] === undefined ? '' : structuredClone(values[0]);
  const replacements = new Map<string, string>();
  placeholders.forEach((p, i) => {
    const value = values[i];
    replacements.set(p.fullMatch, value === undefined ? '' : pyStr(value));
  });
  return node.replace(placeholderPattern(), (match) => replacements.get(match) ?? match);
}
