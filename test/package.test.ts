// The package entry points: require() and import both work from the compiled dist/, and expose
// the same functions.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const run = (args: string[]) => spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });

describe('package entry points', () => {
  it('require("quantkit") works (CommonJS)', () => {
    const r = run(['-e', "const q = require('quantkit'); console.log(Array.from(q.quantizeLinear(new Float32Array([0, 1.5, -2.5, 300]), 1, 0, { dtype: 'int8' })).join(','))"]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('0,2,-2,127');
  });

  it('import { ... } from "quantkit" works (ES module) with the same exports', () => {
    const r = run(['--input-type=module', '-e',
      "import * as m from 'quantkit'; import { createRequire } from 'node:module'; const c = createRequire(import.meta.url)('quantkit');" +
      "const names = Object.keys(c).filter((k) => k !== 'default').sort(); const esm = Object.keys(m).filter((k) => k !== 'default').sort();" +
      "console.log(JSON.stringify({ same: JSON.stringify(names) === JSON.stringify(esm), n: esm.length, q: Array.from(m.quantizeLinear(new Float32Array([2.5]), 1, 0, { dtype: 'int8' })) }))"]);
    expect(r.stderr).toBe('');
    const o = JSON.parse(r.stdout);
    expect(o.same).toBe(true);
    expect(o.n).toBeGreaterThan(10);
    expect(o.q).toEqual([2]);
  });
});
