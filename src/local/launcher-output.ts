import fs from 'node:fs';
import path from 'node:path';

/**
 * `npm start`'s terminal shows the run summary; the launcher's own output, its JSON log lines and EMF
 * metrics (what CloudWatch Logs gets from the Lambdas), goes to `file`. Powertools writes it to
 * process.stdout and process.stderr; warnings and errors (stderr) still show on the terminal too.
 */
export function divertLauncherOutput(file: string): {
  /** A line on the terminal. */
  print(line: string): void;
  /** Puts stdout and stderr back and closes the file. */
  close(): Promise<void>;
} {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const log = fs.createWriteStream(file);
  const stdout = process.stdout.write;
  const stderr = process.stderr.write;
  const terminal = stdout.bind(process.stdout);
  const toFile = (chunk: string | Uint8Array) => log.write(chunk);
  process.stdout.write = toFile as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    toFile(chunk);
    return stderr.call(process.stderr, chunk);
  }) as typeof process.stderr.write;
  return {
    print: (line) => {
      terminal(`${line}\n`);
    },
    close: () => {
      process.stdout.write = stdout;
      process.stderr.write = stderr;
      return new Promise((resolve) => log.end(resolve));
    },
  };
}
