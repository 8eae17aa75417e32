import { startLocalStack } from '../../src/local/stack';

/**
 * Starts one real Prefect server and one moto server for the whole integration run; the server from
 * TEST_PREFECT_SERVER_VENV when set (`npm run test:servers`), else the project's pinned one.
 */
export default async function globalSetup(): Promise<void> {
  const prefectVenv = process.env.TEST_PREFECT_SERVER_VENV;
  const stack = await startLocalStack(prefectVenv ? { prefectVenv } : {});
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
