import fs from 'node:fs';
import path from 'node:path';

/** The deployed launch state machine definition; tests and the local stack execute this very file. */
export const launchDefinitionPath = path.resolve(__dirname, '..', '..', 'statemachines', 'launch.asl.json');

/**
 * Reads the definition and fills its `${Name}` placeholders, as CloudFormation's DefinitionSubstitutions
 * does on deploy. An unknown or unfilled placeholder is an error, so the file and its callers stay in step.
 */
export function loadLaunchDefinition(substitutions: Record<string, string>): Record<string, unknown> {
  const raw = fs.readFileSync(launchDefinitionPath, 'utf8');
  const filled = raw.replace(/\$\{(\w+)\}/g, (_, name: string) => {
    const value = substitutions[name];
    if (value === undefined) throw new Error(`no substitution for \${${name}} in ${launchDefinitionPath}`);
    return value;
  });
  return JSON.parse(filled) as Record<string, unknown>;
}

/** The placeholders the definition uses, in order of first use. */
export function launchDefinitionPlaceholders(): string[] {
  const raw = fs.readFileSync(launchDefinitionPath, 'utf8');
  return [...new Set([...raw.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1] as string))];
}

/** Lambda ARNs shaped like real ones, for validating and running the definition offline. */
export function localFunctionArns(): Record<string, string> {
  return Object.fromEntries(
    launchDefinitionPlaceholders().map((name) => [
      name,
      `arn:aws:lambda:us-east-1:123456789012:function:prefect-ecs-launcher-local-${name.replace(/FunctionArn$/, '').toLowerCase()}`,
    ]),
  );
}
