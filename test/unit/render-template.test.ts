import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fc from 'fast-check';
import { applyValues, findPlaceholders, lookupPath, pyStr } from '../../src/render/template';
import type { Json, JsonObject } from '../../src/render/types';

const values: JsonObject = {
  image: 'prefecthq/prefect:3-latest',
  cpu: 1024,
  flag: true,
  off: false,
  nothing: null,
  ratio: 0.5,
  env: { A: '1', B: null },
  list: ['x', { y: [10, 20] }],
  nested: { 'with-dash': { deep: 'v' }, '2026': 'year' },
};

describe('findPlaceholders', () => {
  it('finds each distinct placeholder once, with its kind', () => {
    expect(
      findPlaceholders(
        '{{ a }}-{{a}}-{{ a }}-{{ prefect.blocks.s.n }}-{{ prefect.variables.v }}-{{ $HOME }}',
      ),
    ).toEqual([
      { fullMatch: '{{ a }}', name: 'a', kind: 'standard' },
      { fullMatch: '{{a}}', name: 'a', kind: 'standard' },
      { fullMatch: '{{ prefect.blocks.s.n }}', name: 'prefect.blocks.s.n', kind: 'block' },
      { fullMatch: '{{ prefect.variables.v }}', name: 'prefect.variables.v', kind: 'variable' },
      { fullMatch: '{{ $HOME }}', name: '$HOME', kind: 'env' },
    ]);
  });

  it('uses Python’s Unicode \\w and \\s', () => {
    expect(findPlaceholders('{{\u3000größe_1[0]\u001c}}').map((p) => p.name)).toEqual(['größe_1[0]']);
    expect(findPlaceholders('{{ a b }} {{ a+b }} {{}} { { a } }')).toEqual([]);
  });
});

describe('lookupPath', () => {
  it.each<[string, Json | undefined]>([
    ['image', 'prefecthq/prefect:3-latest'],
    ['nothing', null],
    ['env.B', null],
    ['list[1].y[0]', 10],
    ['list.1.y.1', 20],
    ['list[-1].y[-1]', 20],
    ['list[2]', undefined],
    ['list[x]', undefined],
    ['nested.with-dash.deep', 'v'],
    ['nested.2026', 'year'],
    ['image[0]', 'p'],
    ['image[-6]', 'latest'.slice(0, 1)],
    ['cpu.x', undefined],
    ['flag[0]', undefined],
    ['missing', undefined],
    ['env.', undefined],
  ])('%s', (key, expected) => {
    expect(lookupPath(values, key)).toEqual(expected);
  });
});

describe('applyValues', () => {
  it('replaces a sole placeholder with the raw value, keeping its type', () => {
    expect(
      applyValues(
        {
          cpu: '{{ cpu }}',
          flag: '{{flag}}',
          env: '{{ env }}',
          list: '{{ list }}',
          nothing: '{{ nothing }}',
          number: 7,
          boolean: false,
          null: null,
        },
        values,
      ),
    ).toEqual({
      cpu: 1024,
      flag: true,
      env: { A: '1', B: null },
      list: ['x', { y: [10, 20] }],
      nothing: null,
      number: 7,
      boolean: false,
      null: null,
    });
  });

  it('drops dict keys and list items whose sole placeholder has no value, keeping emptied containers', () => {
    expect(
      applyValues(
        { a: '{{ missing }}', b: ['{{ missing }}', 'kept', '{{ cpu }}'], c: { d: '{{ missing }}' } },
        values,
      ),
    ).toEqual({ b: ['kept', 1024], c: {} });
    expect(applyValues('{{ missing }}', values)).toBeUndefined();
  });

  it('puts Python str() of values into text, and "" for missing ones', () => {
    expect(
      applyValues(
        '{{ image }}|{{ cpu }}|{{ flag }}|{{ off }}|{{ nothing }}|{{ ratio }}|{{ env }}|{{ list }}|{{ missing }}|',
        values,
      ),
    ).toBe(
      "prefecthq/prefect:3-latest|1024|True|False|None|0.5|{'A': '1', 'B': None}|['x', {'y': [10, 20]}]||",
    );
  });

  it('leaves block and variable placeholders for the reference pass, and never reads the environment', () => {
    process.env.TEMPLATE_TEST_SECRET = 'do-not-leak';
    try {
      expect(applyValues('{{ prefect.blocks.secret.x }}', values)).toBe('{{ prefect.blocks.secret.x }}');
      expect(applyValues('{{ prefect.variables.v }}:{{ cpu }}', values)).toBe(
        '{{ prefect.variables.v }}:1024',
      );
      expect(applyValues('{{ $TEMPLATE_TEST_SECRET }}', values)).toBe('');
      expect(applyValues('x{{ $TEMPLATE_TEST_SECRET }}y', values)).toBe('xy');
    } finally {
      delete process.env.TEMPLATE_TEST_SECRET;
    }
  });

  it('never reads inserted text as placeholders', () => {
    expect(applyValues('{{ a }}{{ b }}', { a: '{{ b }}', b: 'B' })).toBe('{{ b }}B');
  });

  it('does not template keys', () => {
    expect(applyValues({ '{{ cpu }}': 'x' }, values)).toEqual({ '{{ cpu }}': 'x' });
  });

  it('returns templates without placeholders unchanged', () => {
    const noBraces = fc.string().filter((s) => !s.includes('{{'));
    const json = fc.letrec<{ v: Json }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        noBraces,
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(fc.string(), tie('v'), { maxKeys: 4 }),
      ),
    })).v;
    fc.assert(fc.property(json, (template) => expect(applyValues(template, values)).toEqual(template)));
  });
});

describe('pyStr', () => {
  it.each<[Json, string]>([
    ['text', 'text'],
    [true, 'True'],
    [null, 'None'],
    [3, '3'],
    [-0.5, '-0.5'],
    [1e-5, '1e-05'],
    [123456.789, '123456.789'],
    [2 ** 60, '1152921504606847000'],
    [1e21, '1e+21'],
    [
      { a: ["it's", 'say "hi"', 'both \' "'], b: { c: [] } },
      `{'a': ["it's", 'say "hi"', 'both \\' "'], 'b': {'c': []}}`,
    ],
  ])('%j → %s', (value, expected) => {
    expect(pyStr(value)).toBe(expected);
  });

  it('agrees with Python’s str() on generated JSON values', () => {
    const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => Math.abs(n) < 1e21);
    const json = fc.letrec<{ v: Json }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        finite,
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('v'), { maxLength: 3 }),
        fc.dictionary(fc.string(), tie('v'), { maxKeys: 3 }),
      ),
    })).v;
    // Python's repr escapes non-printable characters beyond ASCII controls; keep to printable text.
    const printable = (v: Json): boolean =>
      typeof v === 'string'
        ? /^[\x20-\x7e\u00a0-\u024f]*$/.test(v)
        : Array.isArray(v)
          ? v.every(printable)
          : v !== null && typeof v === 'object'
            ? Object.entries(v).every(([k, x]) => printable(k) && printable(x))
            : true;
    const samples = fc.sample(json.filter(printable), { numRuns: 300, seed: 42 });
    const python = path.join(__dirname, '..', '..', '.venv', 'bin', 'python');
    const out = execFileSync(
      python,
      ['-c', 'import json,sys; print(json.dumps([str(v) for v in json.load(sys.stdin)]))'],
      {
        input: JSON.stringify(samples),
      },
    );
    expect(samples.map(pyStr)).toEqual(JSON.parse(out.toString()));
  });
});
