/**
 * Job variables: the work pool's defaults, overlaid by the deployment's and then the flow run's
 * `job_variables`, merged as Prefect's `BaseJobConfiguration.resolve_for_flow_run` and
 * `from_template_and_values` merge them, and type-checked against the pool's variables schema. Pure.
 * https://github.com/PrefectHQ/prefect/blob/main/src/prefect/workers/base.py
 */
import { JobConfigurationError } from '../errors';
import { pyTruthy } from './task-definition';
import { isJsonObject } from './template';
import type { BaseJobTemplate, Json, JsonObject } from './types';

/** Where a set of job variables came from, for error messages. */
export type JobVariablesSource = 'deployment' | 'flow run';

export interface MergedJobVariables {
  /** The pool's `job_configuration`, with the variables' `env` merged in when it is a literal object. */
  jobConfiguration: JsonObject;
  /** The values to apply to it. */
  variables: JsonObject;
}

/** What carries job variables: a deployment or a flow run (or nothing, for a run without a deployment). */
export type JobVariablesCarrier = { job_variables?: JsonObject | null } | null | undefined;

function templateError(problem: string): JobConfigurationError {
  return new JobConfigurationError(
    `The work pool's base job template is malformed: ${problem}. Fix the work pool's base job template (prefect work-pool update --base-job-template).`,
  );
}

/** The parts of the pool's template the launcher reads, checked for shape. */
export function checkTemplate(template: BaseJobTemplate): {
  jobConfiguration: JsonObject;
  properties: { [name: string]: JsonObject };
} {
  if (!isJsonObject(template as unknown as Json)) throw templateError('it is not an object');
  if (!isJsonObject(template.job_configuration)) throw templateError('`job_configuration` must be an object');
  if (!isJsonObject(template.variables)) throw templateError('`variables` must be an object (a JSON schema)');
  const properties = template.variables.properties ?? {};
  if (!isJsonObject(properties)) throw templateError('`variables.properties` must be an object');
  for (const [name, schema] of Object.entries(properties)) {
    if (!isJsonObject(schema)) throw templateError(`the schema of variable '${name}' must be an object`);
  }
  return { jobConfiguration: template.job_configuration, properties };
}

/**
 * The pool's defaults: every variable's schema `default` that is not null (Prefect drops null defaults so
 * that a missing placeholder drops its key instead of rendering null).
 */
export function poolDefaults(template: BaseJobTemplate): JsonObject {
  const { properties } = checkTemplate(template);
  const defaults: JsonObject = {};
  for (const [name, schema] of Object.entries(properties)) {
    if (Object.hasOwn(schema, 'default') && schema.default !== null) {
      defaults[name] = structuredClone(schema.default as Json);
    }
  }
  return defaults;
}

/** Prefect's `deep_merge`: nested objects merge, anything else in `overlay` replaces. */
function deepMerge(base: JsonObject, overlay: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(overlay)) {
    const current = out[key];
    out[key] = isJsonObject(current) && isJsonObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

/**
 * Prefect's handling of dotted keys (`"env.FOO": "x"` → `{"env": {"FOO": "x"}}`; `[i]` counts as `.i`):
 * dotted keys are expanded first, in order; a plain key then replaces the expanded value, except that
 * two objects deep-merge with the plain key's entries winning.
 */
export function expandDottedKeys(values: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(values)) {
    if (!key.includes('.')) continue;
    const path = key.replaceAll('[', '.').replaceAll(']', '').split('.');
    let target = out;
    for (const part of path.slice(0, -1)) {
      const next = Object.hasOwn(target, part) ? target[part] : undefined;
      if (next === undefined) {
        const created: JsonObject = {};
        target[part] = created;
        target = created;
      } else if (isJsonObject(next)) {
        target = next;
      } else {
        throw new JobConfigurationError(
          `Job variable '${key}' sets a key inside '${part}', but an earlier dotted job variable already set '${part}' to ${JSON.stringify(next)}. Remove one of the two job variables.`,
        );
      }
    }
    target[path[path.length - 1] as string] = value;
  }
  for (const [key, value] of Object.entries(values)) {
    if (key.includes('.')) continue;
    const expanded = out[key];
    out[key] = isJsonObject(expanded) && isJsonObject(value) ? deepMerge(expanded, value) : value;
  }
  return out;
}

function variablesOf(carrier: JobVariablesCarrier, source: JobVariablesSource): JsonObject {
  const values = carrier?.job_variables;
  if (values === undefined || values === null) return {};
  if (!isJsonObject(values)) {
    throw new JobConfigurationError(
      `The ${source}'s job_variables must be an object, got ${describeValue(values)}. Fix the ${source}'s job variables.`,
    );
  }
  return values;
}

function envError(what: string, value: Json): JobConfigurationError {
  return new JobConfigurationError(
    `${what} must be an object of environment variable names to values, got ${describeValue(value)}.`,
  );
}

/**
 * The job configuration and the values to apply to it, from the pool's template and the deployment's and
 * flow run's job variables. Precedence: pool defaults < deployment < flow run. `env` merges name by name
 * (a `null` value unsets the variable later); every other variable replaces the lower one whole. A literal
 * `job_configuration.env` object is merged with the pool's default env and then the variables' env.
 * Deployment and flow-run values are type-checked against the pool's schema first (`checkJobVariables`).
 * Never mutates its arguments.
 */
export function mergeJobVariables(
  template: BaseJobTemplate,
  deployment: JobVariablesCarrier,
  flowRun: JobVariablesCarrier,
): MergedJobVariables {
  const jobConfiguration = structuredClone(checkTemplate(template).jobConfiguration);
  const deploymentValues = structuredClone(variablesOf(deployment, 'deployment'));
  const flowRunValues = structuredClone(variablesOf(flowRun, 'flow run'));
  checkJobVariables(template, deploymentValues, 'deployment');
  checkJobVariables(template, flowRunValues, 'flow run');

  // resolve_for_flow_run: the flow run's env is merged into the deployment's when that is an object.
  const values: JsonObject = { ...deploymentValues };
  const { env: flowRunEnv, ...flowRunRest } = flowRunValues;
  if (isJsonObject(values.env) && flowRunEnv !== undefined) {
    // Fix: Prefect raises TypeError on a flow-run `"env": null`; here it changes nothing.
    if (flowRunEnv !== null && !isJsonObject(flowRunEnv)) throw envError("The flow run's env", flowRunEnv);
    values.env = { ...values.env, ...(flowRunEnv ?? {}) };
    Object.assign(values, flowRunRest);
  } else {
    Object.assign(values, flowRunValues);
  }

  // from_template_and_values: pool defaults, then the pool's default env into the template's env.
  const variables = poolDefaults(template);
  if (pyTruthy(variables.env)) {
    if (isJsonObject(jobConfiguration.env)) {
      if (!isJsonObject(variables.env))
        throw envError("The work pool's default for env", variables.env as Json);
      jobConfiguration.env = { ...jobConfiguration.env, ...variables.env };
    } else {
      jobConfiguration.env = variables.env as Json;
    }
  }
  Object.assign(variables, expandDottedKeys(values));
  if (isJsonObject(jobConfiguration.env) && pyTruthy(variables.env)) {
    if (!isJsonObject(variables.env)) throw envError('The env job variable', variables.env as Json);
    jobConfiguration.env = { ...jobConfiguration.env, ...variables.env };
  }
  return { jobConfiguration, variables };
}

// ---------------------------------------------------------------------------------------------------------
// Type checks against the pool's variables schema.

interface Problem {
  path: string;
  message: string;
}

type Schema = JsonObject;

/** A value as JSON, shortened, for error messages. */
export function describeValue(value: Json | undefined): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function typeMatches(type: string, value: Json): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isJsonObject(value);
    default:
      return true;
  }
}

const TYPE_NAMES: { [type: string]: string } = {
  null: 'null',
  boolean: 'a boolean (true or false)',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  array: 'a list',
  object: 'an object',
};

function typesOf(schema: Schema): string[] {
  const { type } = schema;
  if (typeof type === 'string') return [type];
  if (Array.isArray(type)) return type.filter((t): t is string => typeof t === 'string');
  return [];
}

/**
 * Checks values as Prefect's server does (`prefect.utilities.schema_tools.validate` with
 * `preprocess=True, allow_none_with_default=True`): structure and types (`type`, `enum`, `const`,
 * `anyOf`/`oneOf`/`allOf`, local `$ref`s, `properties`, `additionalProperties`, `items`, and `required`
 * below the top level), where a property that is not required also accepts null. Block-typed variables
 * (such as `aws_credentials`) only need to be objects. Formats, ranges and patterns are not checked, nor
 * are top-level `required` variables (the worker does not check them either).
 */
class SchemaChecker {
  constructor(private readonly root: Schema) {}

  private deref(schema: Schema): Schema {
    let current = schema;
    for (let depth = 0; typeof current.$ref === 'string'; depth++) {
      const ref = current.$ref;
      const match = /^#\/(definitions|\$defs)\/(.+)$/.exec(ref);
      const container = match ? this.root[match[1] as string] : undefined;
      const target = match && isJsonObject(container) ? container[match[2] as string] : undefined;
      if (!isJsonObject(target) || depth > 20) {
        throw templateError(`the variables schema refers to '${ref}', which it does not define`);
      }
      current = target;
    }
    return current;
  }

  expected(schemaIn: Schema, nullable: boolean): string {
    const schema = this.deref(schemaIn);
    let alternatives: string[];
    if (Array.isArray(schema.enum)) {
      alternatives = [`one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`];
    } else if (Object.hasOwn(schema, 'const')) {
      alternatives = [`exactly ${JSON.stringify(schema.const)}`];
    } else if (Array.isArray(schema.anyOf ?? schema.oneOf)) {
      const branches = (schema.anyOf ?? schema.oneOf) as Json[];
      alternatives = branches.filter(isJsonObject).map((b) => this.expected(b, false));
    } else if (schema.block_type_slug !== undefined) {
      alternatives = [`a block document's data or {"$ref": {"block_document_id": "<ID>"}}`];
    } else {
      alternatives = typesOf(schema).map((t) => TYPE_NAMES[t] ?? t);
    }
    const restricted = Array.isArray(schema.enum) || Object.hasOwn(schema, 'const');
    if (nullable && !restricted) alternatives.push('null');
    return [...new Set(alternatives)].join(' or ') || 'a valid value';
  }

  check(value: Json, schemaIn: Schema, path: string, nullable: boolean, topLevel = false): Problem | null {
    const schema = this.deref(schemaIn);
    const mismatch = (): Problem => ({
      path,
      message: `must be ${this.expected(schema, nullable)}, got ${describeValue(value)}`,
    });
    if (schema.block_type_slug !== undefined) return isJsonObject(value) ? null : mismatch();
    if (value === null && nullable && !Array.isArray(schema.enum) && !Object.hasOwn(schema, 'const')) {
      return null;
    }
    const types = typesOf(schema);
    if (types.length > 0 && !types.some((t) => typeMatches(t, value))) return mismatch();
    if (Array.isArray(schema.enum) && !schema.enum.some((v) => sameJson(v, value))) return mismatch();
    if (Object.hasOwn(schema, 'const') && !sameJson(schema.const as Json, value)) return mismatch();

    const branches = (schema.anyOf ?? schema.oneOf) as Json | undefined;
    if (Array.isArray(branches)) {
      const schemas = branches.filter(isJsonObject);
      const problems = schemas.map((b) => this.check(value, b, path, false));
      if (!problems.some((p) => p === null)) {
        // Where exactly one alternative has the value's type, its own problem is the most precise one.
        const sameType = schemas
          .map((b, i) => ({ b: this.deref(b), p: problems[i] }))
          .filter(({ b }) => typesOf(b).some((t) => typeMatches(t, value)));
        return sameType.length === 1 && sameType[0]?.p ? sameType[0].p : mismatch();
      }
    }
    if (Array.isArray(schema.allOf)) {
      for (const part of schema.allOf.filter(isJsonObject)) {
        const problem = this.check(value, part, path, nullable);
        if (problem) return problem;
      }
    }
    if (isJsonObject(value)) return this.checkObject(value, schema, path, topLevel);
    if (Array.isArray(value) && isJsonObject(schema.items)) {
      const items = schema.items;
      for (const [i, item] of value.entries()) {
        const problem = this.check(item, items, `${path}[${i}]`, false);
        if (problem) return problem;
      }
    }
    return null;
  }

  private checkObject(value: JsonObject, schema: Schema, path: string, topLevel: boolean): Problem | null {
    const properties = isJsonObject(schema.properties) ? schema.properties : {};
    const required = Array.isArray(schema.required) ? schema.required : [];
    const at = (key: string) => (path ? `${path}.${key}` : key);
    for (const [key, item] of Object.entries(value)) {
      const property = Object.hasOwn(properties, key) ? properties[key] : undefined;
      let problem: Problem | null = null;
      if (isJsonObject(property)) {
        problem = this.check(item, property, at(key), !required.includes(key) && hasOwnType(property));
      } else if (schema.additionalProperties === false) {
        problem = { path: at(key), message: 'is not a variable of this work pool' };
      } else if (isJsonObject(schema.additionalProperties)) {
        problem = this.check(item, schema.additionalProperties, at(key), false);
      }
      if (problem) return problem;
    }
    if (!topLevel) {
      for (const key of required) {
        if (typeof key === 'string' && !Object.hasOwn(value, key)) {
          return { path: at(key), message: 'is required' };
        }
      }
    }
    return null;
  }
}

/** Prefect makes a property nullable only when its schema has a `type` (not `$ref`/`anyOf` alone). */
function hasOwnType(schema: Schema): boolean {
  return schema.type !== undefined && schema.type !== 'null';
}

function sameJson(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (isJsonObject(a) && isJsonObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]))
    );
  }
  return false;
}

/**
 * Type-checks one set of job variables (a deployment's or a flow run's) against the pool's variables
 * schema, as Prefect's server does when the deployment or flow run is created. Runs again here because
 * values can predate a change of the pool's template, and some API paths skip the server's check.
 * Throws a JobConfigurationError naming the variable, the expected type and where to fix it.
 */
export function checkJobVariables(
  template: BaseJobTemplate,
  values: JsonObject,
  source: JobVariablesSource,
): void {
  checkTemplate(template);
  const problem = new SchemaChecker(template.variables).check(values, template.variables, '', false, true);
  if (problem) {
    throw new JobConfigurationError(
      `The ${source}'s job variable '${problem.path}' ${problem.message}. Fix the ${source}'s job variables, or the work pool's variables schema if it is wrong.`,
    );
  }
}
