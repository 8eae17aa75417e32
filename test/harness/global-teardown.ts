import type { RunningStack } from '../../src/local/stack';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __stack?: RunningStack }).__stack?.stop();
}
