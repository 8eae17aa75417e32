import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalTarget } from '../acceptance/local';
import { NO_CREDENTIALS } from '../acceptance/main';
import { runAcceptance } from '../acceptance/scenarios';
import { stackUrls } from '../harness/env';

/**
 * `npm run test:aws`'s scenarios against the local stack, as `npm run test:aws -- --local` runs them: the
 * same code that checks a deployed stage on a real account, with `npm start` as the launcher, so it cannot
 * rot between runs on AWS.
 */
describe('acceptance check on the local stack', () => {
  it('passes every scenario, and leaves no task running', async () => {
    const printed: string[] = [];
    const { target, stop } = await startLocalTarget(stackUrls().prefectApiUrl, (line) => printed.push(line));
    try {
      const results = await runAcceptance(target);
      const rows = results.map((r) => ({ name: r.name, got: r.got, problems: r.problems }));
      expect({ rows, printed: printed.join('\n') }).toEqual({
        rows: [
          { name: 'sample flow on Fargate', got: 'COMPLETED', problems: [] },
          { name: 'sample flow on Fargate Spot', got: 'COMPLETED', problems: [] },
          { name: 'image that cannot be pulled', got: 'CRASHED', problems: [] },
          { name: 'run cancelled while running', got: 'CANCELLED', problems: [] },
          { name: 'no task left running', got: '4 of 4 STOPPED', problems: [] },
        ],
        printed: expect.stringContaining('all 5 checks passed'),
      });
    } finally {
      await stop();
    }
  }, 180_000);

  it('refuses to run on AWS without credentials, with exit status 2 and before any deploy', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'test-aws-'));
    try {
      const run = await new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            '--import',
            'tsx',
            path.join(__dirname, '..', 'acceptance', 'main.ts'),
            '--stage',
            'ci',
            '--region',
            'eu-west-1',
          ],
          {
            cwd: path.resolve(__dirname, '..', '..'),
            // No credentials anywhere the SDK's chain looks: no variables, an empty home, no instance metadata.
            env: { PATH: process.env.PATH ?? '', HOME: home, AWS_EC2_METADATA_DISABLED: 'true' },
          },
          (err, stdout, stderr) => resolve({ status: err ? Number(err.code) : 0, stdout, stderr }),
        );
      });
      expect(run.status).toBe(2);
      expect(run.stderr.split('\n')[0]).toBe(NO_CREDENTIALS);
      expect(run.stdout).toBe('');
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
