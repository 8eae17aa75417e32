import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Packaging the service (scripts/package.sh) and reading its CloudFormation template the way
 * CloudFormation would for given parameter values, so tests can assert what a deploy creates.
 */

const root = path.resolve(__dirname, '..', '..');

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface Resource {
  Type: string;
  Condition?: string;
  DependsOn?: string | string[];
  Properties?: JsonObject;
}

export interface Template {
  Parameters: Record<string, JsonObject & { Default?: string }>;
  Conditions: Record<string, Json>;
  Resources: Record<string, Resource>;
  Outputs: Record<string, JsonObject>;
}

export interface Packaged {
  dir: string;
  template: Template;
  /** What `npm run package` printed (stdout and stderr). */
  output: string;
}

/**
 * `scripts/package.sh --package <tmp> <args>`: offline build, bundle sizes, cfn-lint. `env` adds to the
 * environment it runs in (as a user's shell would).
 */
export async function packageService(
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<Packaged> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'launcher-package-'));
  let stdout: string;
  let stderr: string;
  try {
    ({ stdout, stderr } = await promisify(execFile)(
      'bash',
      ['scripts/package.sh', '--package', dir, ...args],
      {
        cwd: root,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, ...options.env },
      },
    ));
  } catch (err) {
    const { stdout: out = '', stderr: errOut = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`scripts/package.sh failed:\n${out}\n${errOut}`, { cause: err });
  }
  const template = JSON.parse(
    fs.readFileSync(path.join(dir, 'cloudformation-template-update-stack.json'), 'utf8'),
  ) as Template;
  return { dir, template, output: `${stdout}\n${stderr}` };
}

/** cfn-lint from the project's virtualenv, every finding as JSON. */
export async function cfnLint(file: string): Promise<unknown[]> {
  try {
    const { stdout } = await promisify(execFile)(
      path.join(root, '.venv', 'bin', 'cfn-lint'),
      ['--format', 'json', file],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    return JSON.parse(stdout || '[]') as unknown[];
  } catch (err) {
    // cfn-lint exits non-zero when it has findings (2 errors, 4 warnings, 8 informational).
    const { stdout } = err as { stdout?: string };
    if (stdout) return JSON.parse(stdout) as unknown[];
    throw err;
  }
}

const NO_VALUE = Symbol('AWS::NoValue');

export const pseudoParameters: Record<string, string> = {
  'AWS::Partition': 'aws',
  'AWS::Region': 'us-east-1',
  'AWS::AccountId': '123456789012',
  'AWS::StackName': 'prefect-ecs-launcher-dev',
  'AWS::URLSuffix': 'amazonaws.com',
};

function isObject(node: unknown): node is Record<string, unknown> {
  return typeof node === 'object' && node !== null && !Array.isArray(node);
}

function single(node: Record<string, unknown>): [string, unknown] | undefined {
  const keys = Object.keys(node);
  return keys.length === 1 && keys[0] ? [keys[0], node[keys[0]]] : undefined;
}

/**
 * The template as CloudFormation resolves it for some parameter values: conditions decided, `Fn::If`
 * chosen, `AWS::NoValue` dropped, parameters and pseudo parameters filled in. What exists only after
 * creation stays symbolic: `Ref: X` of a resource reads `<X>`, `Fn::GetAtt: [X, Arn]` reads `<X.Arn>`.
 */
export class StackView {
  readonly parameters: Record<string, string>;
  private readonly pseudo: Record<string, string>;

  /** `pseudo` overrides the pseudo parameters above, e.g. the `AWS::StackName` of another stage. */
  constructor(
    readonly template: Template,
    values: Record<string, string> = {},
    pseudo: Record<string, string> = {},
  ) {
    this.pseudo = { ...pseudoParameters, ...pseudo };
    this.parameters = {};
    for (const [name, spec] of Object.entries(template.Parameters)) {
      const value = values[name] ?? spec.Default;
      if (value === undefined) throw new Error(`parameter ${name} has no value`);
      this.parameters[name] = String(value);
    }
    for (const name of Object.keys(values)) {
      if (!(name in template.Parameters)) throw new Error(`the template has no parameter ${name}`);
    }
  }

  condition(name: string): boolean {
    const spec = this.template.Conditions[name];
    if (spec === undefined) throw new Error(`no condition ${name}`);
    return this.truth(spec);
  }

  private truth(node: unknown): boolean {
    const entry = isObject(node) ? single(node) : undefined;
    if (!entry) throw new Error(`not a condition: ${JSON.stringify(node)}`);
    const [fn, args] = entry;
    const list = Array.isArray(args) ? args : [];
    switch (fn) {
      case 'Condition':
        return this.condition(String(args));
      case 'Fn::Equals':
        return JSON.stringify(this.resolve(list[0])) === JSON.stringify(this.resolve(list[1]));
      case 'Fn::Not':
        return !this.truth(list[0]);
      case 'Fn::Or':
        return list.some((c) => this.truth(c));
      case 'Fn::And':
        return list.every((c) => this.truth(c));
      default:
        throw new Error(`unsupported condition function ${fn}`);
    }
  }

  /** Resources that exist for these parameter values, their properties resolved. */
  resources(): Record<string, Resource> {
    const out: Record<string, Resource> = {};
    for (const [id, resource] of Object.entries(this.template.Resources)) {
      if (resource.Condition && !this.condition(resource.Condition)) continue;
      out[id] = { ...resource, Properties: (this.resolve(resource.Properties ?? {}) ?? {}) as JsonObject };
    }
    return out;
  }

  resource(id: string): Resource {
    const found = this.resources()[id];
    if (!found) throw new Error(`no resource ${id} for these parameters`);
    return found;
  }

  resolve(node: unknown): Json | undefined {
    const value = this.evaluate(node);
    return value === NO_VALUE ? undefined : (value as Json);
  }

  private evaluate(node: unknown): unknown {
    if (Array.isArray(node)) return node.map((n) => this.evaluate(n)).filter((n) => n !== NO_VALUE);
    if (!isObject(node)) return node;
    const entry = single(node);
    if (entry) {
      const [fn, args] = entry;
      const list = Array.isArray(args) ? args : [];
      switch (fn) {
        case 'Ref':
          return this.ref(String(args));
        case 'Fn::GetAtt':
          return `<${list.join('.')}>`;
        case 'Fn::If':
          return this.evaluate(this.condition(String(list[0])) ? list[1] : list[2]);
        case 'Fn::Sub':
          return typeof args === 'string'
            ? this.sub(args, {})
            : this.sub(String(list[0]), (this.evaluate(list[1]) ?? {}) as Record<string, unknown>);
        case 'Fn::Join':
          return (this.evaluate(list[1]) as unknown[]).join(String(list[0]));
        case 'Fn::Split':
          return String(this.evaluate(list[1])).split(String(list[0]));
        case 'Fn::Select':
          return (this.evaluate(list[1]) as unknown[])[Number(this.evaluate(list[0]))];
      }
      if (fn.startsWith('Fn::')) throw new Error(`unsupported function ${fn}`);
    }
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      const resolved = this.evaluate(value);
      if (resolved !== NO_VALUE) out[key] = resolved;
    }
    return out;
  }

  private ref(name: string): unknown {
    if (name === 'AWS::NoValue') return NO_VALUE;
    if (name in this.parameters) return this.parameters[name];
    const pseudo = this.pseudo[name];
    if (pseudo !== undefined) return pseudo;
    if (name in this.template.Resources) return `<${name}>`;
    throw new Error(`Ref to unknown ${name}`);
  }

  private sub(text: string, vars: Record<string, unknown>): string {
    return text.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
      if (name in vars) return String(vars[name]);
      if (name.includes('.')) return `<${name}>`;
      return String(this.ref(name));
    });
  }
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: Json;
  Condition?: JsonObject;
  Principal?: Json;
}

export function list<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function statementsOf(document: unknown): Statement[] {
  if (!isObject(document)) throw new Error(`not a policy document: ${JSON.stringify(document)}`);
  return list(document.Statement as Statement | Statement[] | undefined);
}

/** Every policy statement a stack grants through a role: its inline policies and attached managed ones. */
export function roleStatements(view: StackView, roleId: string): Statement[] {
  const resources = view.resources();
  const role = resources[roleId];
  if (!role) throw new Error(`no role ${roleId}`);
  const inline = list(role.Properties?.Policies as JsonObject[] | undefined).flatMap((p) =>
    statementsOf(p.PolicyDocument),
  );
  const attached = list(role.Properties?.ManagedPolicyArns as string[] | undefined).flatMap((arn) => {
    const id = /^<(\w+)>$/.exec(arn)?.[1];
    const policy = id ? resources[id] : undefined;
    if (!policy) throw new Error(`${roleId} attaches ${arn}, which this stack does not define`);
    return statementsOf(policy.Properties?.PolicyDocument);
  });
  return [...inline, ...attached];
}

/**
 * Every statement of every policy document in the template, in every variant its `Fn::If`s allow
 * (both branches of each), without deciding any condition.
 */
export function allStatementVariants(template: Template): { where: string; statement: JsonObject }[] {
  const found: { where: string; statement: JsonObject }[] = [];
  const documents: [string, unknown][] = [];
  for (const [id, resource] of Object.entries(template.Resources)) {
    const props = resource.Properties ?? {};
    if (props.PolicyDocument) documents.push([id, props.PolicyDocument]);
    for (const policy of list(props.Policies as JsonObject[] | undefined)) {
      documents.push([`${id}/${String(policy.PolicyName)}`, policy.PolicyDocument]);
    }
  }
  for (const [where, document] of documents) {
    const statements = isObject(document) ? list(document.Statement as unknown[] | undefined) : [];
    for (const statement of statements.flatMap(branches)) found.push({ where, statement });
  }
  return found;
}

/** A node with every `Fn::If` expanded into both alternatives; `AWS::NoValue` gives none. */
function branches(node: unknown): JsonObject[] {
  if (!isObject(node)) return [];
  const entry = single(node);
  if (entry?.[0] === 'Fn::If') {
    const [, a, b] = entry[1] as unknown[];
    return [...branches(a), ...branches(b)];
  }
  if (entry?.[0] === 'Ref' && entry[1] === 'AWS::NoValue') return [];
  return [node as JsonObject];
}

/** The plain strings a value can take over every `Fn::If` branch (intrinsics other than If read as `<fn>`). */
export function leafStrings(node: unknown): string[] {
  if (typeof node === 'string') return [node];
  if (Array.isArray(node)) return node.flatMap(leafStrings);
  if (!isObject(node)) return [];
  const entry = single(node);
  if (entry?.[0] === 'Fn::If') return (entry[1] as unknown[]).slice(1).flatMap(leafStrings);
  if (entry?.[0] === 'Ref' && entry[1] === 'AWS::NoValue') return [];
  return entry?.[0].startsWith('Fn::') || entry?.[0] === 'Ref' ? [`<${entry[0]}>`] : [];
}
