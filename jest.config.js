/** Two projects: `unit` needs nothing running; `integration` starts a real Prefect server and moto once per run. */
const transform = { '^.+\\.ts$': ['ts-jest', {}] };

module.exports = {
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      transform,
      setupFiles: ['<rootDir>/test/harness/polyfills.ts', '<rootDir>/test/harness/quiet-logs.ts'],
    },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      transform,
      setupFiles: ['<rootDir>/test/harness/polyfills.ts', '<rootDir>/test/harness/quiet-logs.ts'],
      globalSetup: '<rootDir>/test/harness/global-setup.ts',
      globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
      testTimeout: 60000,
    },
  ],
};
