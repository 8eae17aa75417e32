/** Everything written to stdout and stderr (the launcher's JSON log lines) until `restore()`. */
export function captureOutput(): { lines: string[]; restore(): void } {
  const lines: string[] = [];
  const capture = (chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  };
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(capture);
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(capture);
  return {
    lines,
    restore() {
      stdout.mockRestore();
      stderr.mockRestore();
    },
  };
}

/** The JSON lines written to stdout and stderr while `fn` runs, parsed. */
export async function jsonLinesOf(fn: () => unknown): Promise<Record<string, unknown>[]> {
  const output = captureOutput();
  try {
    await fn();
  } finally {
    output.restore();
  }
  return output.lines
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
