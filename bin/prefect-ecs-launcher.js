#!/usr/bin/env node

// Runs the CLI from its TypeScript sources through tsx, so it works in a fresh clone after `npm ci`
// without a build step.
require('tsx/cjs');
const { main } = require('../src/cli/main.ts');

main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
}).then(
  (status) => {
    process.exitCode = status;
  },
  (err) => {
    process.stderr.write(`prefect-ecs-launcher: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
