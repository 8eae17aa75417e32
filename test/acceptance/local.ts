import { createEcsClient } from '../../src/aws/ecs';
import { connectPrefect } from '../../src/cli/connect';
import { uniqueName } from '../harness/env';
import { npmStart, printed, within } from '../harness/npm-start';
import { type AcceptanceTarget, registerPool } from './scenarios';

/**
 * The acceptance target on this machine: a pool registered with the CLI on the Prefect server at `apiUrl`,
 * served by `npm start` (its poll, the deployed state machine executed locally, its own moto, each ECS task
 * a local process), with a cancel grace period of 15 s instead of 240 s so that the cancel scenario is quick
 * whether the engine or the launcher ends the run.
 */
export async function startLocalTarget(
  apiUrl: string,
  print: (line: string) => void,
): Promise<{ target: AcceptanceTarget; stop(): Promise<void> }> {
  const pool = uniqueName('acceptance');
  const env = { PREFECT_API_URL: apiUrl };
  await registerPool(pool, env, print);
  const launcher = npmStart(['--no-sample', '--pool', pool], { LAUNCHER_CANCEL_GRACE_SECONDS: '15' }, apiUrl);
  const stop = async () => {
    if (launcher.child.exitCode !== null) return;
    launcher.child.kill('SIGTERM');
    await within(20_000, 'stopping npm start', launcher.exited, launcher);
  };
  try {
    await within(90_000, 'npm start', printed(launcher, /polling every/), launcher);
    const motoUrl = (await printed(launcher, /moto {2,}(http:\/\/\S+)/))[1] as string;
    const { prefect } = await connectPrefect(env);
    const ecs = createEcsClient({
      endpoint: motoUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    print(`  npm start serves pool ${pool}; moto ${motoUrl}`);
    return {
      target: {
        prefect,
        pool,
        ecs,
        cluster: 'default',
        runTimeoutMs: 90_000,
        stopTimeoutMs: 30_000,
        pollMs: 500,
        print,
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
