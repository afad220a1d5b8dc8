// The thread count a process starts with: QUANTKIT_NUM_THREADS, 1 in node:cluster workers, else
// the CPUs available. Each case runs in a fresh process (the count is set when quantkit loads).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');
const CJS = path.join(ROOT, 'dist', 'cjs', 'index.js');

function run(code: string, env: Record<string, string> = {}): { status: number | null; out: string; err: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-threads-'));
  const file = path.join(dir, 'main.js');
  fs.writeFileSync(file, code);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', env: { ...process.env, QUANTKIT_NUM_THREADS: '', ...env }, timeout: 60_000 });
  fs.rmSync(dir, { recursive: true, force: true });
  return { status: r.status, out: r.stdout.trim(), err: r.stderr };
}

const REPORT = `const q = require(${JSON.stringify(CJS)}); const i = q.cpuInfo();
console.log(JSON.stringify([q.getNumThreads(), i.threadsFrom, i.defaultThreads]));`;

describe('initial thread count', () => {
  it('is the CPUs this process may run on by default', () => {
    const r = run(REPORT);
    expect(r.status, r.err).toBe(0);
    const [n, from, cpus] = JSON.parse(r.out);
    expect(from).toBe('cpus');
    expect(n).toBe(cpus);
    expect(n).toBeGreaterThanOrEqual(1);
  });

  it('QUANTKIT_NUM_THREADS sets it, and setNumThreads says it was set', () => {
    expect(JSON.parse(run(REPORT, { QUANTKIT_NUM_THREADS: '3' }).out).slice(0, 2)).toEqual([3, 'QUANTKIT_NUM_THREADS']);
    const r = run(`const q = require(${JSON.stringify(CJS)}); q.setNumThreads(5); console.log(JSON.stringify([q.getNumThreads(), q.cpuInfo().threadsFrom]));`);
    expect(JSON.parse(r.out)).toEqual([5, 'setNumThreads']);
  });

  it.each(['0', '-1', '1.5', 'abc', '1025', '2 threads'])('QUANTKIT_NUM_THREADS=%j is an error at load naming the variable', (v) => {
    const r = run(REPORT, { QUANTKIT_NUM_THREADS: v });
    expect(r.status).not.toBe(0);
    expect(r.err).toContain(`RangeError: Expected QUANTKIT_NUM_THREADS to be an integer from 1 to 1024 but received '${v}'`);
  });

  it('is 1 in a node:cluster worker (one process per core), unless QUANTKIT_NUM_THREADS says otherwise', () => {
    const code = `const cluster = require('node:cluster');
if (cluster.isPrimary) {
  const w = cluster.fork(); w.on('message', (m) => { console.log(JSON.stringify(m)); w.kill(); });
} else {
  const q = require(${JSON.stringify(CJS)}); process.send([q.getNumThreads(), q.cpuInfo().threadsFrom]);
}`;
    expect(JSON.parse(run(code).out)).toEqual([1, 'cluster-worker']);
    expect(JSON.parse(run(code, { QUANTKIT_NUM_THREADS: '2' }).out)).toEqual([2, 'QUANTKIT_NUM_THREADS']);
  });
});
