import { createLogger } from '../../src/log';

describe('createLogger', () => {
  it('writes one JSON object per line with the base fields, errors flattened with their cause', () => {
    const lines: string[] = [];
    const log = createLogger({ service: 's' }, { level: 'info', write: (line) => lines.push(line) });
    log.info('hello', { error: new Error('outer', { cause: new Error('inner') }) });
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'info',
      message: 'hello',
      service: 's',
      error: { name: 'Error', message: 'outer', cause: { message: 'inner' } },
    });
  });

  it('keeps the level it was created with in its children, whatever the environment says later', () => {
    const lines: string[] = [];
    const log = createLogger({}, { level: 'warn', write: (line) => lines.push(line) });
    process.env.LAUNCHER_LOG_LEVEL = 'debug';
    const child = log.child({ flowRunId: 'x' });
    child.info('dropped');
    child.warn('kept');
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(['kept']);
    expect(JSON.parse(lines[0] ?? '').flowRunId).toBe('x');
  });

  it('falls back to info for an unknown LAUNCHER_LOG_LEVEL', () => {
    const lines: string[] = [];
    process.env.LAUNCHER_LOG_LEVEL = 'verbose';
    const log = createLogger({}, { write: (line) => lines.push(line) });
    log.debug('dropped');
    log.info('kept');
    expect(lines).toHaveLength(1);
  });
});
