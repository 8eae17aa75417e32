/** Two projects: `unit` needs nothing running; `integration` starts a real Prefect server and moto once per run. */
const transform = {
  '^.+\\.ts$': ['ts-jest', {}],
  // @middy/core ships ES modules only; jest runs CommonJS, so compile it like our sources (esbuild does the
  // same when bundling the Lambdas).
  '^.+/node_modules/@middy/.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true } }],
};
const transformIgnorePatterns = ['/node_modules/(?!@middy/)'];
const setupFiles = ['<rootDir>/test/harness/polyfills.ts', '<rootDir>/test/harness/quiet-logs.ts'];

module.exports = {
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      transform,
      transformIgnorePatterns,
      setupFiles,
    },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      transform,
      transformIgnorePatterns,
      setupFiles,
      globalSetup: '<rootDir>/test/harness/global-setup.ts',
      globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
    },
  ],
  // A root option (projects do not take it): integration tests wait on real servers, on 2 shared cores in CI.
  testTimeout: 60000,
};
