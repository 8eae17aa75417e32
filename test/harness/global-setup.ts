import { startLocalStack } from '../../src/local/stack';

/** Starts one real Prefect server and one moto server for the whole integration run. */
export default async function globalSetup(): Promise<void> {
  const stack = await startLocalStack();
  (globalThis as { __stack?: typeof stack }).__stack = stack;
  process.env.TEST_PREFECT_API_URL = stack.prefectApiUrl;
  process.env.TEST_MOTO_URL = stack.motoUrl;
  const versions = Object.entries(stack.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  process.stdout.write(
    `\nintegration stack: ${versions}; Prefect ${stack.prefectApiUrl}; moto ${stack.motoUrl}\n`,
  );
}
