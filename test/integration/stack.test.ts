import { awsTestConfig, prefectRaw, resetMoto, stackUrls } from '../harness/env';

describe('test stack', () => {
  it('serves the real Prefect API and moto on loopback', async () => {
    expect(stackUrls().prefectApiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api$/);
    expect(await prefectRaw('GET', '/health')).toBe(true);
    await resetMoto();
    const res = await fetch(`${awsTestConfig().endpoint}/moto-api/data.json`);
    expect(res.ok).toBe(true);
  });
});
