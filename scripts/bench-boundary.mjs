// Small-call micro-benchmark for the native boundary: ns per call of tiny quantize / gemm /
// forward calls, where argument handling (not kernels) dominates.
//   node scripts/bench-boundary.mjs TREE_A TREE_B [runs] [case filter]
// (TREE: a checkout with dist/ and build/Release built; run pinned, e.g. taskset -c 1, on a quiet machine)
// Each run is a fresh process that loads both trees (their own dist/ and addon) and, case by case,
// alternates samples of A and B (100 samples of n/100 calls each, order swapped every sample), so
// both see the same machine load; samples are CPU time; per run and case the fastest sample
// counts, and the table shows the median over runs.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const child = String.raw`
const trees = JSON.parse(process.argv[1]);
const only = process.argv[2];
function setup(root) {
  const qk = require(root + '/dist/cjs/index.js');
  qk.setNumThreads(1);
  const f32 = (n, s = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s) * 2);
  const x64 = f32(64);
  const zp = Uint8Array.of(128);
  const spec = { bits: 8, scheme: 'asymmetric' };
  const q64 = qk.quantizeLinear(x64, 0.02, zp);
  const K = 64, N = 32;
  const packed = qk.packWeights(Int8Array.from({ length: K * N }, (_, i) => (i * 7) % 255 - 127), { K, N, scale: 0.01 });
  const a = Uint8Array.from({ length: K }, (_, i) => (i * 13) % 256);
  const pf = qk.packWeightsF32(f32(K * N, 3), { K, N });
  const outI = new Int32Array(N), outF = new Float32Array(N), outU = new Uint8Array(N);
  const { nn } = qk;
  nn.manualSeed(1);
  const model = new nn.Sequential(new nn.Linear(64, 32), new nn.ReLU(), new nn.Linear(32, 10));
  const qs = qk.quantizeModel(model, { mode: 'static', calibrationData: f32(64 * 64, 5), observer: 'minmax' });
  const qd = qk.quantizeModel(model, { mode: 'dynamic' });
  return {
    'quantizeLinear 64': () => qk.quantizeLinear(x64, 0.02, zp),
    'dequantizeLinear 64': () => qk.dequantizeLinear(q64, 0.02, zp),
    'quantize (scheme) 64': () => qk.quantize(x64, [64], spec),
    'fakeQuantize 64': () => qk.fakeQuantize(x64, [64], { scale: 0.02, zeroPoint: 0 }),
    'minMax 64': () => qk.minMax(x64),
    'gemm 1x64x32 int32': () => qk.gemm(a, packed, { out: outI }),
    'gemm 1x64x32 uint8': () => qk.gemm(a, packed, { output: 'uint8', aScale: 0.02, aZeroPoint: 3, outScale: 0.5, outZeroPoint: 10, out: outU }),
    'linearDynamic 1x64x32': () => qk.linearDynamic(x64, packed, { out: outF }),
    'matmulF32 1x64x32': () => qk.matmulF32(x64, pf, { M: 1, out: outF }),
    'QuantizedModel static b1': () => qs.forward(x64, 1),
    'QuantizedModel dynamic b1': () => qd.forward(x64, 1),
  };
}
const sets = trees.map(setup);
const res = trees.map(() => ({}));
// CPU time of this thread's process (user + system), not wall time: on a shared machine the
// process is often descheduled, which wall time would count.
function sample(fn, n) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}
for (const name of Object.keys(sets[0])) {
  if (only && !name.includes(only)) continue;
  const n = (name.startsWith('QuantizedModel') ? 400000 : 2000000) / 100;
  for (const s of sets) sample(s[name], 20 * n);
  const best = sets.map(() => Infinity);
  for (let k = 0; k < 100; k++) {
    for (const t of (k % 2 ? [1, 0] : [0, 1])) best[t] = Math.min(best[t], sample(sets[t][name], n));
  }
  best.forEach((b, t) => { res[t][name] = b; });
}
console.log(JSON.stringify(res));
`;

const trees = process.argv.slice(2, 4).map((t) => path.resolve(t));
const runs = Number(process.argv[4] ?? 5);
const only = process.argv[5] ?? '';
const all = trees.map(() => ({}));
for (let r = 0; r < runs; r++) {
  const p = spawnSync(process.execPath, ['-e', child, JSON.stringify(trees), only], { encoding: 'utf8' });
  if (p.status !== 0) throw new Error(p.stderr);
  JSON.parse(p.stdout).forEach((res, t) => {
    for (const [k, v] of Object.entries(res)) (all[t][k] ??= []).push(v);
  });
  process.stderr.write(`run ${r + 1}/${runs}\n`);
}
const med = (a) => { const s = a.slice().sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
console.log(`| case | ${path.basename(trees[0])} ns/call | ${path.basename(trees[1])} ns/call | ratio |`);
console.log('| --- | ---: | ---: | ---: |');
for (const k of Object.keys(all[0])) {
  const a = med(all[0][k]), b = med(all[1][k]);
  console.log(`| ${k} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(3)} |`);
}
