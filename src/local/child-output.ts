import type { ChildProcess } from 'node:child_process';

/** The last `max` non-empty lines a child process wrote to stdout and stderr, kept up to date as it writes. */
export function keepLastLines(child: ChildProcess, max: number): string[] {
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - max));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return lines;
}
