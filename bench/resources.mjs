// Resource tests: what a long-lived Node server needs from quantkit, measured, not timed in
// unit tests. Run: `npm run bench:resources` (prints a table; --ci, as .ci/run passes it, is the
// same): the deterministic checks fail the run, the timing-dependent one (event-loop delay) is
// reported and fails only with --strict (CI machines share their cores with other jobs).
//
//   rss: RSS flat (< 10 % growth after warm-up) over 1,000,000 small calls, and over 10,000
//        PackedWeights / PackedWeightsF32 created and collected;
//   lag: event-loop delay p99 while a 2048^3 int8 gemmAsync runs, 1 and 4 calls in flight (output
//        created natively, a SharedArrayBuffer output written in place, an ArrayBuffer output
//        copied back): target < 5 ms;
//   workers: 4 worker_threads plus async calls on the main thread, all in flight together, give
//        the serial results bit for bit;
//   kill: kill -9 in the middle of a large saveModel always leaves the previous file intact and,
//        after the next save, no temporary file behind.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { root, table, fmt } from './common.mjs';

const require = createRequire(path.join(root, 'package.json'));
const args = new Set(process.argv.slice(2));
const STRICT = args.has('--strict');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const want = (name) => only.length === 0 || only.includes(name);
const entry = path.join(root, 'dist/cjs/index.js');
const qk = require(entry);

const cpu = (os.cpus()[0]?.model ?? 'unknown CPU').trim();
console.log(`quantkit resource tests on ${cpu}, ${os.availableParallelism()} CPUs, node ${process.version}`);
const rows = [];
let failed = 0;
function report(check, value, target, ok, hard = true) {
  rows.push([check, value, target, ok ? 'ok' : hard ? 'FAIL' : 'over (reported)']);
  if (!ok && (hard || STRICT)) failed++;
}
const mb = (b) => `${(b / 2 ** 20).toFixed(1)} MB`;

// ---- rss ----------------------------------------------------------------------------------------

function rssChild(code) {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', code], { encoding: 'utf8', timeout: 600000 });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

if (want('rss')) {
  // 1,000,000 small calls of every kind that allocates natively or packs on the fly.
  const small = rssChild(`
    const qk = require(${JSON.stringify(entry)});
    const x = new Float32Array(64).map((_, i) => Math.sin(i));
    const a = new Int8Array(64).fill(1), b = new Int8Array(64 * 32).fill(2);
    const packed = qk.packWeights(b, { K: 64, N: 32 });
    const fq = { scale: 0.05, zeroPoint: 0 };
    const calls = [
      () => qk.quantize(x, [64], { bits: 8 }),
      () => qk.quantizeLinear(x, 0.05, 0, { dtype: 'int8' }),
      () => qk.fakeQuantize(x, [64], fq),
      () => qk.matmulInteger(a, b, { K: 64 }),
      () => qk.qlinearMatMul(a, 0.1, 0, b, 0.1, 0, 0.5, 0, { K: 64 }),
      () => qk.gemm(a, packed, { output: 'float32', aScale: 0.1 }),
      () => qk.dynamicQuantizeLinear(x),
    ];
    const run = (n) => { for (let i = 0; i < n; i++) calls[i % calls.length](); };
    run(1000000); global.gc();
    const r0 = process.memoryUsage().rss;
    run(1000000); global.gc();
    const r1 = process.memoryUsage().rss;
    console.log(JSON.stringify({ r0, r1 }));`);
  const g = (small.r1 - small.r0) / small.r0;
  report('rss: 1,000,000 small calls', `${mb(small.r0)} -> ${mb(small.r1)} (${fmt(100 * g, 1)} %)`, '< 10 %', g < 0.1);

  // 10,000 packed weights, created and collected: every 100, a GC and a turn of the event loop
  // (N-API runs finalizers there); RSS after the last of 10,000 more vs after the warm-up.
  const packs = rssChild(`
    const qk = require(${JSON.stringify(entry)});
    const b8 = new Int8Array(256 * 256).fill(1), bf = new Float32Array(256 * 256).fill(1);
    async function run(n) {
      for (let i = 0; i < n; i++) {
        qk.packWeights(b8, { K: 256, N: 256 });
        qk.packWeightsF32(bf, { K: 256, N: 256 });
        if (i % 100 === 99) {
          global.gc();
          await new Promise((r) => setImmediate(r));
        }
      }
      return process.memoryUsage().rss;
    }
    (async () => {
      const r0 = await run(3000);
      const r1 = await run(10000);
      console.log(JSON.stringify({ r0, r1 }));
    })();`);
  const gp = (packs.r1 - packs.r0) / packs.r0;
  report('rss: 10,000 PackedWeights + PackedWeightsF32 ', `${mb(packs.r0)} -> ${mb(packs.r1)} (${fmt(100 * gp, 1)} %)`, '< 10 %', gp < 0.1);
}

// ---- lag ----------------------------------------------------------------------------------------

if (want('lag')) {
  const n = 2048;
  const a = new Int8Array(n * n).fill(3);
  const packed = qk.packWeights(new Int8Array(n * n).fill(2), { K: n, N: n });
  const expect = 6 * n;
  for (const inflight of [1, 4]) {
    for (const kind of ['created', 'shared', 'copied']) {
      const outs = Array.from({ length: inflight }, () =>
        kind === 'shared' ? new Int32Array(new SharedArrayBuffer(n * n * 4)) : kind === 'copied' ? new Int32Array(n * n) : undefined);
      // warm-up (thread pool, pages of the outputs)
      await Promise.all(outs.map((out) => qk.gemmAsync(a, packed, out ? { out } : undefined)));
      const h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      const t0 = performance.now();
      let calls = 0;
      while (performance.now() - t0 < 2000) {
        const res = await Promise.all(outs.map((out) => qk.gemmAsync(a, packed, out ? { out } : undefined)));
        calls += res.length;
        if (res[0][n * n - 1] !== expect) throw new Error('wrong result');
      }
      h.disable();
      const ms = (performance.now() - t0) / calls;
      const p99 = h.percentile(99) / 1e6;
      report(`lag: gemmAsync 2048^3, ${inflight} in flight, output ${kind}`,
        `p99 ${fmt(p99)} ms (max ${fmt(h.max / 1e6)}; ${fmt(ms, 1)} ms/call)`, '< 5 ms', p99 < 5, false);
    }
  }
}

// ---- workers ------------------------------------------------------------------------------------

if (want('workers')) {
  const M = 96, K = 384, N = 160;
  const r = (s) => () => { s = (s * 1103515245 + 12345) >>> 0; return s >>> 16; };
  const rnd = r(7);
  const a8 = Int8Array.from({ length: M * K }, () => (rnd() % 255) - 127);
  const b8 = Int8Array.from({ length: K * N }, () => (rnd() % 255) - 127);
  const af = Float32Array.from({ length: M * K }, () => (rnd() % 2001) / 1000 - 1);
  const bf = Float32Array.from({ length: K * N }, () => (rnd() % 2001) / 1000 - 1);
  const serial = () => {
    const p = qk.packWeights(b8, { K, N, scale: 0.01 });
    const pf = qk.packWeightsF32(bf, { K, N });
    return [qk.gemm(a8, p), qk.gemm(a8, p, { output: 'float32', aScale: 0.02 }), qk.matmulF32(af, pf, { M }),
      qk.linearDynamic(af, p)];
  };
  const want0 = serial().map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength).toString('base64'));
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const qk = require(workerData.entry);
    const { a8, b8, af, bf, M, K, N } = workerData;
    (async () => {
      const p = qk.packWeights(b8, { K, N, scale: 0.01 });
      const pf = qk.packWeightsF32(bf, { K, N });
      const out = [];
      for (let i = 0; i < 20; i++) {
        const r = await Promise.all([qk.gemmAsync(a8, p), qk.gemmAsync(a8, p, { output: 'float32', aScale: 0.02 }),
          qk.matmulF32Async(af, pf, { M }), qk.linearDynamicAsync(af, p)]);
        out.push(r.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength).toString('base64')));
      }
      parentPort.postMessage(out);
    })();`;
  const workers = Array.from({ length: 4 }, () => new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { entry, a8, b8, af, bf, M, K, N } });
    w.once('message', resolve);
    w.once('error', reject);
  }));
  const p = qk.packWeights(b8, { K, N, scale: 0.01 });
  const pf = qk.packWeightsF32(bf, { K, N });
  const mains = [];
  for (let i = 0; i < 20; i++) {
    mains.push(Promise.all([qk.gemmAsync(a8, p), qk.gemmAsync(a8, p, { output: 'float32', aScale: 0.02 }),
      qk.matmulF32Async(af, pf, { M }), qk.linearDynamicAsync(af, p)])
      .then((r) => r.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength).toString('base64'))));
  }
  const all = [...(await Promise.all(workers)).flat(), ...(await Promise.all(mains))];
  const bad = all.filter((r) => r.some((s, i) => s !== want0[i])).length;
  report('workers: 4 worker_threads + main async, 100 x 4 calls', `${all.length - bad} / ${all.length} identical`, 'all identical', bad === 0);
}

// ---- kill -9 during saveModel -------------------------------------------------------------------

if (want('kill')) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-kill-'));
  const file = path.join(dir, 'model.safetensors');
  const writer = `
    const qk = require(${JSON.stringify(entry)});
    const m = new qk.nn.Sequential(new qk.nn.Linear(2048, 2048, { rng: Number(process.argv[1]) }), new qk.nn.ReLU(), new qk.nn.Linear(2048, 1024, { rng: 2 }));
    process.send('ready');
    qk.saveModel(${JSON.stringify(file)}, m);
    process.disconnect();`;
  // The exit promise is made at spawn: a fast child can exit before its 'ready' message is read,
  // and a listener attached after that would wait forever.
  const save = (seed) => new Promise((resolve) => {
    const c = spawn(process.execPath, ['-e', writer, String(seed)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const exited = new Promise((r) => c.on('exit', r));
    c.on('message', (m) => resolve({ child: c, msg: m, exited }));
  });
  // A first complete save: the file every killed save must leave intact.
  const first = await save(1);
  await first.exited;
  let prev = fs.readFileSync(file);
  let kills = 0, intact = 0;
  for (let i = 0; i < 12; i++) {
    const { child, exited } = await save(100 + i);
    await new Promise((r) => setTimeout(r, 20 + ((i * 37) % 200)));
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); kills++; }
    await exited;
    const now = fs.readFileSync(file);
    if (now.equals(prev)) intact++;
    else {
      // The save finished before the kill: the file must be the complete new model.
      try { qk.loadModel(file); intact++; } catch { /* corrupt: counted as not intact */ }
      prev = now;
    }
  }
  // The next successful save removes what killed writers left behind.
  const last = await save(999);
  await last.exited;
  const left = fs.readdirSync(dir).filter((f) => f !== 'model.safetensors');
  report('kill: kill -9 during saveModel (12 runs)', `${kills} killed, ${intact} / 12 intact, ${left.length} temp files left`,
    'intact, none left', intact === 12 && left.length === 0);
  fs.rmSync(dir, { recursive: true, force: true });
}

console.log(table(['check', 'measured', 'target', 'result'], rows));
if (failed) {
  console.error(`${failed} resource check(s) failed`);
  process.exit(1);
}
