import { prefectRaw } from '../env';

/**
 * A Prefect call of the suite's own actors (the flow engine, the user, the run creator, the judge), outside
 * the proxies: retried on the test server's 503s and dropped connections as Prefect's client retries them,
 * so that the actors do not fail where the launcher is under test. Creations carry an idempotency key, so a
 * retry after a lost answer creates nothing twice.
 */
export async function prefectCall<T>(method: string, route: string, body?: unknown): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await prefectRaw<T>(method, route, body);
    } catch (error) {
      if (attempt >= 10 || !/-> 503|fetch failed/.test(String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}
