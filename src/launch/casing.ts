/**
 * Step Functions' optimized ECS integration takes and returns the ECS API in PascalCase, while the ECS API
 * (and @aws-sdk/client-ecs) is camelCase. Every ECS member name is lowerCamelCase and no RunTask or
 * DescribeTasks member holds a map with user-chosen keys, so changing the first letter of each key
 * converts losslessly both ways.
 * https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html
 */
type Keyed = { [key: string]: unknown };

function mapKeys(value: unknown, rename: (key: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => mapKeys(v, rename));
  // Step Functions renders ECS timestamps as epoch milliseconds.
  if (value instanceof Date) return value.getTime();
  if (value !== null && typeof value === 'object') {
    const out: Keyed = {};
    for (const [k, v] of Object.entries(value as Keyed)) out[rename(k)] = mapKeys(v, rename);
    return out;
  }
  return value;
}

export function toPascalCase<T>(value: T): unknown {
  return mapKeys(value, (k) => k.charAt(0).toUpperCase() + k.slice(1));
}

export function toCamelCase<T = unknown>(value: unknown): T {
  return mapKeys(value, (k) => k.charAt(0).toLowerCase() + k.slice(1)) as T;
}
