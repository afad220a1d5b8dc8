#!/usr/bin/env node
// npm run bench:gemm [-- --json] [-- --quick]
//
// GOPS (2*M*N*K / time, median of interleaved rounds of hot samples) of quantkit's int8 GEMM
// (packWeights once, then gemm(..., { output: 'int32', out }) per call) and fp32 GEMM (matmulF32 with
// packWeightsF32) beside onnxruntime-node's MatMulInteger (u8s8, and s8s8 to show its slow path) and
// MatMul, all with B a constant initializer so ORT pre-packs it, at 1 and 2 threads; the percentage
// of this machine's peak (bench/peak.cc: in-register vpdpbusd / vpmaddubsw / FMA / tdpbusd loops,
// compiled and run here) for the kernel path quantkit selected; every x86 path forced in turn; and
// the issue's targets as PASS / MISS. Every quantkit result is checked against ORT before it is
// timed (int32 exactly, fp32 within a bound). See bench/README.md.
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import {
  root, loadQuantkit, loadOrt, ORT_INSTALL_HINT, rng, timeInterleavedStats, timeHot, fmt, table, ortOptions, ortAfter, ORT_SPIN_PAUSE_MS,
} from './common.mjs';
import { matMulIntegerModel, matMulModel } from './onnx-model.mjs';

const argv = process.argv.slice(2);
const flag = (f) => argv.includes(f);
const opt = (name) => {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? undefined : a.slice(name.length + 3);
};
if (flag('--help') || flag('-h')) {
  console.log(`usage: node bench/gemm.mjs [options]
  --json               machine-readable results on stdout (the tables go to stderr)
  --quick              about a minute: fewer samples, fewer forced-path shapes (noisier)
  --no-ort             skip onnxruntime-node
  --no-peak            skip the peak measurement (bench/peak.cc)
  --no-isa             skip the forced-path (QUANTKIT_ISA / setIsa) runs
  --no-checks          skip the extra small-shape correctness checks
  --threads=1,2        thread counts (default 1,2)
  --shapes=MxNxK,...   shapes instead of the issue's six (M rows, N columns, K depth)
  --isa-shapes=...     shapes for the forced-path runs (default 1x4096x4096,512x512x512,1024x1024x1024)
  --stat=best          report the fastest sample instead of the median (a shared, noisy machine)
  --api=FILE           load the quantkit API from this module instead of dist/esm/index.mjs
                       (e.g. another build, or a stand-in while the GEMM is being written)`);
  process.exit(0);
}
const JSON_OUT = flag('--json');
const QUICK = flag('--quick');
const NO_ORT = flag('--no-ort');
const NO_PEAK = flag('--no-peak');
const NO_ISA = flag('--no-isa');
const NO_CHECKS = flag('--no-checks');
const THREADS = (opt('threads') ?? '1,2').split(',').map(Number).filter((n) => n >= 1);
const STAT = opt('stat') ?? 'median';
if (!['median', 'best'].includes(STAT)) throw new Error(`--stat must be median or best, not ${STAT}`);
const say = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);

const parseShape = (s) => {
  const [M, N, K] = s.toLowerCase().split('x').map(Number);
  if (![M, N, K].every((v) => Number.isInteger(v) && v > 0)) throw new Error(`bad shape ${s} (want MxNxK)`);
  return { M, N, K };
};
// (M, N, K) from the issue
const SHAPES = opt('shapes')
  ? opt('shapes').split(',').map(parseShape)
  : [[1, 4096, 4096], [32, 4096, 4096], [128, 1024, 1024], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 2048]]
      .map(([M, N, K]) => ({ M, N, K }));
const ISA_SHAPES = opt('isa-shapes')
  ? opt('isa-shapes').split(',').map(parseShape)
  : (QUICK ? [[512, 512, 512], [1024, 1024, 1024]] : [[1, 4096, 4096], [512, 512, 512], [1024, 1024, 1024]])
      .map(([M, N, K]) => ({ M, N, K }));
const shapeName = ({ M, N, K }) => `${M}x${N}x${K}`;
const opsOf = ({ M, N, K }) => 2 * M * N * K;
// "the three largest shapes": by operation count
const LARGE = [...SHAPES].sort((a, b) => opsOf(b) - opsOf(a)).slice(0, 3).map(shapeName);

// Targets from the issue.
const T = { ortLarge: 1.5, ortAny: 1.0, scale2: 1.8, vnniPeak: 0.7, f32Ort: 1.0 };
// The Intel reference machine's limits from shared/reference/anchors.md (1 core / 2 threads).
const ANCHOR_PEAK = {
  vnni_zmm: [890, 1680], vnni_ymm: [500, 940], maddubs_ymm: [230, 440], amx: [6300, 12000], amx_l1: [5100, 10400], fma_zmm: [224, 446],
};

// Timing budgets. A sample is one call for the big shapes (batch = 1), or ~2 ms of calls.
const big = (s) => opsOf(s) >= 4e9;
const BUDGET = QUICK
  ? { warmup: 1, sampleNs: 1e6, minSamples: 3, maxSamples: 15, minTimeNs: 1.5e8, maxTimeNs: 4e9 }
  : { warmup: 2, sampleNs: 2e6, minSamples: 7, maxSamples: 31, minTimeNs: 6e8, maxTimeNs: 1e10 };
const BUDGET_BIG = QUICK
  ? { ...BUDGET, minSamples: 3, maxSamples: 5 }
  : { ...BUDGET, minSamples: 5, maxSamples: 9, minTimeNs: 3e8 };
// ORT's s8s8 path is 10-30x slower: a few samples are enough to show it.
const BUDGET_SLOW = QUICK
  ? { warmup: 1, sampleNs: 1e6, minSamples: 2, maxSamples: 7, minTimeNs: 1e8, maxTimeNs: 3e9 }
  : { warmup: 1, sampleNs: 2e6, minSamples: 3, maxSamples: 9, minTimeNs: 3e8, maxTimeNs: 6e9 };
const BUDGET_ISA = QUICK
  ? { warmup: 1, sampleNs: 2e6, minSamples: 3, maxSamples: 9, minTimeNs: 1.5e8, maxTimeNs: 2e9 }
  : { warmup: 2, sampleNs: 2e6, minSamples: 5, maxSamples: 15, minTimeNs: 4e8, maxTimeNs: 3e9 };
const budgetFor = (s) => (big(s) ? BUDGET_BIG : BUDGET);
// Side-by-side timings with ORT take every sample hot (common.mjs timeHot): each contestant is
// warmed up alone for WARM_MS, and right before each of its samples runs about PREROLL_MS (at
// least one call) of untimed calls, so its thread pool is awake when the sample starts.
const HOT = { warmMs: QUICK ? 25 : 60, prerollMs: 3, minPreroll: 1 };

const errors = [];
const problem = (msg) => {
  errors.push(msg);
};
const errMsg = (e) => (e && e.message ? e.message.split('\n')[0] : String(e));

// ---- quantkit -------------------------------------------------------------------------------------

const qk = opt('api')
  ? { api: await import(pathToFileURL(path.resolve(opt('api'))).href), source: `--api=${opt('api')}` }
  : await loadQuantkit();
const Q = qk.api;
const has = (name) => typeof Q[name] === 'function';
const HAS_I8 = has('packWeights') && has('gemm');
const HAS_MMI = has('matmulInteger');
const HAS_F32 = has('matmulF32');
const HAS_F32PACK = has('packWeightsF32');
const cpuInfo = () => (has('cpuInfo') ? Q.cpuInfo() : {});
const setThreads = (n) => {
  if (has('setNumThreads')) Q.setNumThreads(n);
};
const missingApi = ['matmulInteger', 'packWeights', 'gemm', 'gemmAsync', 'matmulF32', 'packWeightsF32', 'setNumThreads', 'cpuInfo', 'setIsa']
  .filter((n) => !has(n));

// Path order (lowest first), as native/dispatch/isa.def.
const ISA_ORDER = ['scalar', 'avx2', 'avx512', 'avxvnni', 'avx512vnni', 'amx', 'neon', 'neon-dotprod'];
const X86_PATHS = ['scalar', 'avx2', 'avx512', 'avxvnni', 'avx512vnni', 'amx'];
// The peak loop that bounds each path's inner product.
const INT8_PEAK_OF = { avx2: 'maddubs_ymm', avx512: 'maddubs_zmm', avxvnni: 'vnni_ymm', avx512vnni: 'vnni_zmm', amx: 'amx' };
const F32_PEAK_OF = { avx2: 'fma_ymm', avxvnni: 'fma_ymm', avx512: 'fma_zmm', avx512vnni: 'fma_zmm', amx: 'fma_zmm' };

/** The kernel paths selected for the int8 and fp32 GEMM ops (cpuInfo().selected). */
function gemmPaths(info = cpuInfo()) {
  const sel = info.selected ?? {};
  const pick = (keys) => {
    const ks = keys.filter((k) => sel[k] !== undefined);
    if (!ks.length) return null;
    const paths = ks.map((k) => sel[k]);
    const best = paths.reduce((a, b) => (ISA_ORDER.indexOf(b) > ISA_ORDER.indexOf(a) ? b : a));
    return { path: best, ops: Object.fromEntries(ks.map((k) => [k, sel[k]])) };
  };
  const keys = Object.keys(sel);
  const isF32 = (k) => /sgemm|sgemv|f32|fp32|float/i.test(k);
  return {
    int8: pick(keys.filter((k) => /gemm|matmul|gemv/i.test(k) && !isF32(k))),
    fp32: pick(keys.filter((k) => isF32(k) && /gemm|gemv|matmul/i.test(k))),
  };
}

// ---- onnxruntime-node -------------------------------------------------------------------------------

const ortL = NO_ORT ? { ort: null, error: 'disabled by --no-ort' } : loadOrt();
const ort = ortL.ort;

// ---- peak (bench/peak.cc) ------------------------------------------------------------------------------

function buildPeak() {
  const src = path.join(root, 'bench/peak.cc');
  const cxx = process.env.CXX || 'c++';
  let version = '';
  try {
    version = execFileSync(cxx, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch (e) {
    return { error: `no C++ compiler (${cxx}): ${errMsg(e)}` };
  }
  const flags = ['-O2', '-std=c++17', '-pthread'];
  const hash = createHash('sha256').update(readFileSync(src)).update(version).update(flags.join(' ')).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), 'quantkit-bench-peak');
  const bin = path.join(dir, `peak-${hash}`);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    const r = spawnSync(cxx, [...flags, src, '-o', tmp], { encoding: 'utf8' });
    if (r.status !== 0) return { error: `${cxx} ${flags.join(' ')} bench/peak.cc failed:\n${(r.stderr || r.error?.message || '').slice(0, 2000)}` };
    renameSync(tmp, bin);
  }
  return { bin, compiler: version, cmd: `${cxx} ${flags.join(' ')} bench/peak.cc` };
}

function runPeak(threads) {
  if (process.arch !== 'x64') return { error: `peak loops are x86-64 only (arch ${process.arch})` };
  const b = buildPeak();
  if (b.error) return b;
  const args = [...threads.map(String), QUICK ? '--ms=5' : '--ms=8', QUICK ? '--reps=10' : '--reps=21'];
  const r = spawnSync(b.bin, args, { encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) return { ...b, error: `peak run failed (status ${r.status}): ${(r.stderr || r.error?.message || '').slice(0, 500)}` };
  const rows = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const byKernel = {};
  for (const row of rows) {
    byKernel[row.kernel] ??= { kernel: row.kernel, instr: row.instr, opsPerInstr: row.opsPerInstr, supported: row.supported, why: row.why, gops: {}, opsPerCycle: {}, ghz: {} };
    if (row.kernel === 'clock') byKernel.clock.ghz[row.threads] = row.ghz;
    else {
      byKernel[row.kernel].gops[row.threads] = row.gops;
      byKernel[row.kernel].opsPerCycle[row.threads] = row.opsPerCycle;
    }
  }
  return { ...b, args, kernels: byKernel };
}

// ---- data and checks ------------------------------------------------------------------------------------

function makeInt8Data({ M, N, K }, seed) {
  const r = rng(seed);
  const a = new Uint8Array(M * K); // full range: 0..255 (u8) / -128..127 (the same bytes as s8)
  for (let i = 0; i < a.length; i++) a[i] = (r() * 256) | 0;
  const b = new Int8Array(K * N);
  for (let i = 0; i < b.length; i++) b[i] = ((r() * 256) | 0) - 128;
  // A few extremes so that u8*s8 pair sums that overflow int16 (255*-128*2) occur: a path that
  // saturates (vpmaddubsw) shows up as a mismatch.
  for (let i = 0; i < Math.min(a.length, 64); i++) a[i] = 255;
  for (let i = 0; i < Math.min(b.length, 4 * N); i += N + 1) b[i] = -128;
  return { a, a8: new Int8Array(a.buffer), b };
}

function makeF32Data({ M, N, K }, seed) {
  const r = rng(seed);
  const a = new Float32Array(M * K);
  for (let i = 0; i < a.length; i++) a[i] = r() * 2 - 1;
  const b = new Float32Array(K * N);
  for (let i = 0; i < b.length; i++) b[i] = r() * 2 - 1;
  return { a, b };
}

function compareExact(got, want, N) {
  if (got.length !== want.length) return { mismatches: -1, note: `length ${got.length} != ${want.length}` };
  let mismatches = 0;
  let first = -1;
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      if (first < 0) first = i;
      mismatches++;
    }
  }
  const r = { mismatches };
  if (first >= 0) r.first = { i: Math.floor(first / N), j: first % N, got: got[first], want: want[first] };
  return r;
}

// fp32: |got - want| <= F32_TOL * (sum_k |a_ik|) * max_k |b_kj| for every element (the right side
// bounds sum_k |a_ik * b_kj|, so the test is independent of K and of summation order; a dropped or
// wrong k term is caught, rounding differences are ~100x below the bound).
const F32_TOL = 1e-5;
function compareF32(got, want, a, b, { M, N, K }) {
  if (got.length !== want.length) return { bad: -1, note: `length ${got.length} != ${want.length}` };
  const rowAbs = new Float64Array(M);
  for (let i = 0; i < M; i++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.abs(a[i * K + k]);
    rowAbs[i] = s;
  }
  const colMax = new Float64Array(N);
  for (let k = 0; k < K; k++) {
    for (let j = 0; j < N; j++) {
      const v = Math.abs(b[k * N + j]);
      if (v > colMax[j]) colMax[j] = v;
    }
  }
  let bad = 0;
  let maxAbs = 0;
  let maxRel = 0;
  let first = null;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      const g = got[i * N + j];
      const w = want[i * N + j];
      const d = Math.abs(g - w);
      const bound = rowAbs[i] * colMax[j] || 1e-30;
      const rel = Number.isNaN(d) ? Infinity : d / bound;
      if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? NaN : d;
      if (rel > maxRel) maxRel = rel;
      if (!(rel <= F32_TOL)) {
        bad++;
        first ??= { i, j, got: g, want: w };
      }
    }
  }
  return { bad, maxAbs, maxRel, first };
}

// Exact MatMulInteger values at a sample of elements (rows 0, M-1 and a few more, 16 columns
// each), computed in JS: ORT is checked against them, since its u8s8 kernels on CPUs without VNNI
// may saturate (vpmaddubsw); if ORT is off, quantkit is checked against this sample instead.
function exactSample(a, aZp, b, { M, N, K }, seed) {
  const r = rng(seed);
  const rows = [...new Set([0, M - 1, ...Array.from({ length: 4 }, () => Math.floor(r() * M))])];
  const out = [];
  for (const i of rows) {
    for (let c = 0; c < Math.min(N, 16); c++) {
      const j = c === 0 ? 0 : c === 1 ? N - 1 : Math.floor(r() * N);
      let acc = 0;
      for (let k = 0; k < K; k++) acc += (a[i * K + k] - aZp) * b[k * N + j];
      out.push({ i, j, v: acc });
    }
  }
  return out;
}
const ofText = (c, total) => (c.vsSample
  ? ` (checked against the exact JS sample) in ${c.mismatches} of ${c.sampled} sampled elements`
  : ` in ${c.mismatches} of ${total} elements`);
function compareSample(got, sample, N) {
  let mismatches = 0;
  let first;
  for (const { i, j, v } of sample) {
    if (got[i * N + j] !== v) {
      mismatches++;
      first ??= { i, j, got: got[i * N + j], want: v };
    }
  }
  return { mismatches, sampled: sample.length, first };
}

// A call given opts.out should write into it and return it (the timed calls rely on out).
function returnsOut(label, ret, out) {
  if (ret !== out) problem(`${label} with opts.out returned ${ret === undefined ? 'undefined' : 'a different array'} instead of opts.out`);
}

const describeMismatch = (c) => (c.first
  ? ` (first at [${c.first.i},${c.first.j}]: got ${c.first.got}, want ${c.first.want})`
  : c.note ? ` (${c.note})` : '');

// ---- header ----------------------------------------------------------------------------------------------

const info0 = cpuInfo();
const paths0 = gemmPaths(info0);
const meta = {
  date: new Date().toISOString(),
  node: process.version,
  cpuModel: os.cpus()[0]?.model,
  logicalCpus: os.cpus().length,
  quantkit: {
    source: qk.source, note: qk.note, missingApi, features: info0.features, builtPaths: info0.builtPaths,
    supportedPaths: info0.supportedPaths, selected: info0.selected, forced: info0.forced, gemmPaths: paths0,
  },
  ort: ort ? { version: ortL.version, sessionOptions: ortOptions(1) } : { error: ortL.error },
  quick: QUICK,
  stat: STAT,
  loadavgStart: os.loadavg(),
  threads: THREADS,
  timing: { ...HOT, ortSpinPauseMs: ORT_SPIN_PAUSE_MS },
};

say(`quantkit bench: int8 / fp32 GEMM, GOPS = 2*M*N*K / time (${STAT === 'best' ? 'fastest sample' : 'median'} of interleaved rounds; every sample hot: warm-up alone, then ~${HOT.prerollMs} ms of untimed calls right before it)`);
say(`node ${process.version}, ${meta.cpuModel} (${meta.logicalCpus} logical CPUs); load average at start ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}` +
  (os.loadavg()[0] > 0.5 * meta.logicalCpus ? ' (the machine is busy: expect noisy numbers, compare ratios)' : ''));
say(`quantkit: ${qk.source}${qk.note ? ` [${qk.note}]` : ''}`);
if (missingApi.length) say(`quantkit API not (yet) exported: ${missingApi.join(', ')}`);
say(`quantkit paths built: ${(info0.builtPaths ?? []).join(',')}; supported here: ${(info0.supportedPaths ?? []).join(',')}; forced: ${info0.forced ?? '?'}`);
const pathsLine = (p) => (p ? `${p.path} (${Object.entries(p.ops).map(([k, v]) => `${k}=${v}`).join(' ')})` : 'none selected (op not built)');
say(`quantkit GEMM kernels selected: int8 ${pathsLine(paths0.int8)}; fp32 ${pathsLine(paths0.fp32)}`);
if (ort) say(`onnxruntime-node ${ortL.version}: MatMulInteger (u8s8 and s8s8) / MatMul, opset 21, B a constant initializer (pre-packed), graphOptimizationLevel 'all', intraOpNumThreads = threads, session.run(feeds, { y: preallocated })`);
else say(`onnxruntime-node: NOT AVAILABLE (${ortL.error})\n${ORT_INSTALL_HINT}`);
say('');

// ---- peak ----------------------------------------------------------------------------------------------

let peak = null;
if (!NO_PEAK) {
  peak = runPeak([...new Set([1, ...THREADS])]);
  if (peak.error) problem(`peak: ${peak.error}`);
}
const peakGops = (kernel, threads) => peak?.kernels?.[kernel]?.gops?.[threads] ?? null;
const bestF32Peak = (threads) => peakGops('fma_zmm', threads) ?? peakGops('fma_ymm', threads);

if (peak?.kernels) {
  const ks = peak.kernels;
  const thr = [...new Set([1, ...THREADS])];
  say(`== machine peak (bench/peak.cc, built with \`${peak.cmd}\`; best of short in-register loops, all threads together) ==`);
  say(`clock estimate (dependent add chain): ${thr.map((t) => `${t} thread${t > 1 ? 's' : ''} ${fmt(ks.clock?.ghz?.[t])} GHz`).join(', ')}`);
  const rows = [];
  for (const k of Object.values(ks)) {
    if (k.kernel === 'clock') continue;
    const unit = k.kernel.startsWith('fma') ? 'GFLOPS' : 'GOPS';
    rows.push([
      `${k.instr} (${k.kernel})`, unit,
      ...thr.map((t) => (k.supported ? fmt(k.gops[t], 0) : 'n/a')),
      k.supported ? fmt(k.opsPerCycle[1], 1) : '',
      ANCHOR_PEAK[k.kernel] ? `${ANCHOR_PEAK[k.kernel][0]} / ${ANCHOR_PEAK[k.kernel][1]}` : '-',
      k.supported ? '' : k.why,
    ]);
  }
  say(table(['loop', 'unit', ...thr.map((t) => `${t} thr`), 'ops/cycle/core', 'Intel ref (anchors.md)', 'note'], rows,
    ['l', 'l', ...thr.map(() => 'r'), 'r', 'r', 'l']));
  say('');
}

// ---- main table: every shape x thread count -------------------------------------------------------------------

// GOPS from the median sample (default) or the fastest one (--stat=best); both go to the JSON.
function record(tr, contestants, t, ops) {
  for (const x of contestants) {
    const m = ops / t[x.name].ns;
    const b = ops / t[x.name].minNs;
    tr.gopsMedian[x.name] = m;
    tr.gopsBest[x.name] = b;
    tr.gops[x.name] = STAT === 'best' ? b : m;
    tr.samples[x.name] = t[x.name].samples;
  }
}

const results = []; // one per shape
for (const s of SHAPES) {
  const name = shapeName(s);
  const ops = opsOf(s);
  const { M, N, K } = s;
  const seed = 0x51ed + M * 131 + N * 7 + K;
  const d8 = makeInt8Data(s, seed);
  const df = makeF32Data(s, seed ^ 0x7777);
  const aZp = 131; // u8 activations' zero point
  const aZp8 = 3; // s8 activations' zero point
  const res = { shape: s, name, ops, info: {}, checks: {}, threads: {} };

  // quantkit: pack B once per shape (its time and size are reported)
  let packed = null;
  let packedF32 = null;
  if (HAS_I8) {
    try {
      const t0 = process.hrtime.bigint();
      packed = Q.packWeights(d8.b, { K, N, dtype: 'int8', zeroPoint: 0 });
      res.info.packMs = Number(process.hrtime.bigint() - t0) / 1e6;
      res.info.packedBytes = packed?.byteLength;
    } catch (e) {
      problem(`${name}: packWeights threw: ${errMsg(e)}`);
    }
  }
  if (HAS_F32 && HAS_F32PACK) {
    try {
      const t0 = process.hrtime.bigint();
      packedF32 = Q.packWeightsF32(df.b, { K, N });
      res.info.packF32Ms = Number(process.hrtime.bigint() - t0) / 1e6;
      res.info.packedF32Bytes = packedF32?.byteLength;
    } catch (e) {
      problem(`${name}: packWeightsF32 threw: ${errMsg(e)}`);
    }
  }

  // ORT references (computed once, 1 thread): the exact MatMulInteger results and MatMul.
  let refU8 = null;
  let refS8 = null;
  let refF32 = null;
  const models = {};
  if (ort) {
    try {
      models.u8s8 = matMulIntegerModel({ M, K, N, b: d8.b, aSigned: false, aZeroPoint: aZp });
      models.s8s8 = matMulIntegerModel({ M, K, N, b: d8.b, aSigned: true, aZeroPoint: aZp8 });
      models.f32 = matMulModel({ M, K, N, b: df.b });
    } catch (e) {
      problem(`${name}: building the ONNX models failed: ${errMsg(e)}`);
    }
  }
  const sampleU8 = exactSample(d8.a, aZp, d8.b, s, seed + 1);
  const sampleS8 = exactSample(d8.a8, aZp8, d8.b, s, seed + 2);
  // the reference the quantkit int32 results are compared with: ORT's full output when ORT is
  // exact on the sample, else the sample alone
  const vsRef = (got, ref, sample) => (ref && !ref.inexact ? compareExact(got, ref, N) : { ...compareSample(got, sample, N), vsSample: true });

  for (const threads of THREADS) {
    setThreads(threads);
    const tr = { threads, gops: {}, gopsMedian: {}, gopsBest: {}, samples: {}, check: {} };
    res.threads[threads] = tr;

    // ORT sessions for this thread count
    const sess = {};
    const feeds = {};
    const fetches = {};
    if (ort && models.u8s8) {
      for (const [kind, model] of Object.entries(models)) {
        try {
          sess[kind] = await ort.InferenceSession.create(model, ortOptions(threads));
          const isF = kind === 'f32';
          feeds[kind] = { a: new ort.Tensor(isF ? 'float32' : kind === 'u8s8' ? 'uint8' : 'int8', isF ? df.a : kind === 'u8s8' ? d8.a : d8.a8, [M, K]) };
          fetches[kind] = { y: new ort.Tensor(isF ? 'float32' : 'int32', isF ? new Float32Array(M * N) : new Int32Array(M * N), [M, N]) };
          const out = (await sess[kind].run(feeds[kind])).y.data;
          if (kind !== 'f32' && (kind === 'u8s8' ? !refU8 : !refS8)) {
            const c = compareSample(out, kind === 'u8s8' ? sampleU8 : sampleS8, N);
            if (c.mismatches) {
              out.inexact = true;
              problem(`${name}: ORT MatMulInteger ${kind} differs from the exact value in ${c.mismatches} of ${c.sampled} sampled elements${describeMismatch(c)} ` +
                '(a saturating kernel?): quantkit is checked against the JS sample instead');
            }
          }
          if (kind === 'u8s8') refU8 ??= out;
          if (kind === 's8s8') refS8 ??= out;
          if (kind === 'f32') refF32 ??= out;
          // ORT itself must agree across thread counts
          const ref = kind === 'u8s8' ? refU8 : kind === 's8s8' ? refS8 : null;
          if (ref && ref !== out) {
            const c = compareExact(out, ref, N);
            if (c.mismatches) problem(`${name}: ORT ${kind} at ${threads} threads differs from 1 thread in ${c.mismatches} elements`);
          }
        } catch (e) {
          problem(`${name} ${threads}T: ORT ${kind} failed: ${errMsg(e)}`);
          sess[kind] = null;
        }
      }
    }

    // quantkit int8: verify, then time
    const out32 = new Int32Array(M * N);
    const out32u = new Int32Array(M * N);
    const out32s = new Int32Array(M * N);
    let qkOk = false;
    let qkUnpackedOk = false;
    let qkS8Ok = false;
    const runQk = () => Q.gemm(d8.a, packed, { M, aZeroPoint: aZp, output: 'int32', out: out32 });
    const runQkS8 = () => Q.gemm(d8.a8, packed, { M, aZeroPoint: aZp8, output: 'int32', out: out32s });
    const runQkUnpacked = () => Q.matmulInteger(d8.a, d8.b, { M, K, N, aZeroPoint: aZp, bZeroPoint: 0, out: out32u });
    if (packed) {
      try {
        returnsOut(`${name} ${threads}T: gemm`, runQk(), out32);
        {
          const c = vsRef(out32, refU8, sampleU8);
          tr.check.gemm = c;
          if (c.mismatches) problem(`${name} ${threads}T: gemm (u8 A, packed s8 B, int32) != ORT MatMulInteger u8s8${ofText(c, M * N)}${describeMismatch(c)}`);
          qkOk = c.mismatches === 0;
        }
      } catch (e) {
        tr.check.gemm = { error: errMsg(e) };
        problem(`${name} ${threads}T: gemm threw: ${errMsg(e)}`);
      }
      try {
        returnsOut(`${name} ${threads}T: gemm (s8 A)`, runQkS8(), out32s);
        {
          const c = vsRef(out32s, refS8, sampleS8);
          tr.check.gemmS8 = c;
          if (c.mismatches) problem(`${name} ${threads}T: gemm (s8 A, packed s8 B, int32) != ORT MatMulInteger s8s8${ofText(c, M * N)}${describeMismatch(c)}`);
          qkS8Ok = c.mismatches === 0;
        }
      } catch (e) {
        tr.check.gemmS8 = { error: errMsg(e) };
        problem(`${name} ${threads}T: gemm with s8 A threw: ${errMsg(e)}`);
      }
    }
    if (HAS_MMI) {
      try {
        returnsOut(`${name} ${threads}T: matmulInteger`, runQkUnpacked(), out32u);
        {
          const c = vsRef(out32u, refU8, sampleU8);
          tr.check.matmulInteger = c;
          if (c.mismatches) problem(`${name} ${threads}T: matmulInteger (unpacked) != ORT MatMulInteger u8s8${ofText(c, M * N)}${describeMismatch(c)}`);
          qkUnpackedOk = c.mismatches === 0;
        }
      } catch (e) {
        tr.check.matmulInteger = { error: errMsg(e) };
        problem(`${name} ${threads}T: matmulInteger threw: ${errMsg(e)}`);
      }
    }

    const B = budgetFor(s);
    {
      // ORT first (see timeHot): the rounds start after quantkit's warm-up, not in ORT's spinning
      const c = [];
      if (sess.u8s8) c.push({ name: 'ortU8', fn: () => sess.u8s8.run(feeds.u8s8, fetches.u8s8), async: true, after: ortAfter(threads) });
      if (qkOk) c.push({ name: 'qk', fn: runQk });
      if (qkUnpackedOk) c.push({ name: 'qkUnpacked', fn: runQkUnpacked });
      if (c.length) {
        const t = await timeHot(c, { ...B, ...HOT });
        record(tr, c, t, ops);
      }
    }
    {
      const c = [];
      if (sess.s8s8) c.push({ name: 'ortS8', fn: () => sess.s8s8.run(feeds.s8s8, fetches.s8s8), async: true, after: ortAfter(threads) });
      if (qkS8Ok) c.push({ name: 'qkS8', fn: runQkS8 });
      if (c.length) {
        const t = await timeHot(c, { ...BUDGET_SLOW, ...HOT });
        record(tr, c, t, ops);
      }
    }

    // quantkit fp32: verify, then time
    const outF = new Float32Array(M * N);
    const outFu = new Float32Array(M * N);
    let f32Ok = false;
    let f32UnpackedOk = false;
    const runF32 = () => Q.matmulF32(df.a, packedF32, { M, K, N, out: outF });
    const runF32Unpacked = () => Q.matmulF32(df.a, df.b, { M, K, N, out: outFu });
    const checkF32 = (label, key, fn, got) => {
      try {
        returnsOut(`${name} ${threads}T: ${label}`, fn(), got);
        if (!refF32) return true;
        const c = compareF32(got, refF32, df.a, df.b, s);
        tr.check[key] = c;
        if (c.bad) problem(`${name} ${threads}T: ${label} differs from ORT MatMul beyond ${F32_TOL} x sum|a||b| in ${c.bad} of ${M * N} elements${describeMismatch(c)}`);
        return c.bad === 0;
      } catch (e) {
        tr.check[key] = { error: errMsg(e) };
        problem(`${name} ${threads}T: ${label} threw: ${errMsg(e)}`);
        return false;
      }
    };
    if (packedF32) f32Ok = checkF32('matmulF32 (packed B)', 'matmulF32', runF32, outF);
    if (HAS_F32) f32UnpackedOk = checkF32('matmulF32 (unpacked B)', 'matmulF32Unpacked', runF32Unpacked, outFu);
    {
      const c = [];
      if (sess.f32) c.push({ name: 'ortF32', fn: () => sess.f32.run(feeds.f32, fetches.f32), async: true, after: ortAfter(threads) });
      if (f32Ok) c.push({ name: 'qkF32', fn: runF32 });
      if (f32UnpackedOk) c.push({ name: 'qkF32Unpacked', fn: runF32Unpacked });
      if (c.length) {
        const t = await timeHot(c, { ...B, ...HOT });
        record(tr, c, t, ops);
      }
    }
    for (const x of Object.values(sess)) if (x) await x.release();

    // ratios and % of peak
    const g = tr.gops;
    const p = gemmPaths();
    tr.int8Path = p.int8?.path ?? null;
    tr.fp32Path = p.fp32?.path ?? null;
    tr.ratio = {
      qkVsOrtU8: g.qk && g.ortU8 ? g.qk / g.ortU8 : null,
      qkS8VsOrtS8: g.qkS8 && g.ortS8 ? g.qkS8 / g.ortS8 : null,
      unpackedVsOrtU8: g.qkUnpacked && g.ortU8 ? g.qkUnpacked / g.ortU8 : null,
      f32VsOrt: g.qkF32 && g.ortF32 ? g.qkF32 / g.ortF32 : null,
    };
    const ik = INT8_PEAK_OF[tr.int8Path];
    const fk = F32_PEAK_OF[tr.fp32Path];
    tr.peak = {
      int8Kernel: ik ?? null, int8Gops: ik ? peakGops(ik, threads) : null,
      fp32Kernel: fk ?? null, fp32Gops: fk ? peakGops(fk, threads) : null,
      // ORT against the best int8 loop this CPU has (what its VNNI kernel is bounded by)
      bestInt8Kernel: ['amx', 'vnni_zmm', 'vnni_ymm', 'maddubs_zmm', 'maddubs_ymm'].find((k) => peakGops(k, threads)) ?? null,
    };
    tr.peak.bestInt8Gops = tr.peak.bestInt8Kernel ? peakGops(tr.peak.bestInt8Kernel, threads) : null;
    tr.pctPeak = {
      qk: g.qk && tr.peak.int8Gops ? g.qk / tr.peak.int8Gops : null,
      ortU8: g.ortU8 && tr.peak.bestInt8Gops ? g.ortU8 / tr.peak.bestInt8Gops : null,
      qkF32: g.qkF32 && tr.peak.fp32Gops ? g.qkF32 / tr.peak.fp32Gops : null,
      ortF32: g.ortF32 && bestF32Peak(threads) ? g.ortF32 / bestF32Peak(threads) : null,
    };
  }
  results.push(res);
  if (global.gc) global.gc();
}
setThreads(THREADS.includes(os.cpus().length) ? os.cpus().length : THREADS[THREADS.length - 1]);

// ---- forced paths ----------------------------------------------------------------------------------------------

const isaRuns = [];
const isaEnvChecks = [];
const isaOdd = []; // per forced path: small odd-shape checks (int8 and fp32) vs ORT
if (!NO_ISA && HAS_I8 && has('setIsa')) {
  const supported = (cpuInfo().supportedPaths ?? []).filter((p) => X86_PATHS.includes(p));
  const refs = new Map(); // ORT u8s8 results per ISA shape (1 thread)
  for (const s of ISA_SHAPES) {
    const name = shapeName(s);
    const d8 = makeInt8Data(s, 0x15a + s.M * 131 + s.N * 7 + s.K);
    let ref = null;
    if (ort) {
      try {
        const sessI = await ort.InferenceSession.create(matMulIntegerModel({ ...s, b: d8.b, aZeroPoint: 131 }), ortOptions(1));
        ref = (await sessI.run({ a: new ort.Tensor('uint8', d8.a, [s.M, s.K]) })).y.data;
        await sessI.release();
        const sample = exactSample(d8.a, 131, d8.b, s, 0x5a);
        if (compareSample(ref, sample, s.N).mismatches) {
          problem(`forced paths ${name}: ORT MatMulInteger u8s8 is not exact here (saturating kernel?); quantkit is checked against a JS sample`);
          ref.inexact = true;
          ref.sample = sample;
        }
      } catch (e) {
        problem(`forced paths ${name}: ORT failed: ${errMsg(e)}`);
      }
    }
    refs.set(name, { d8, ref });
  }
  // Small odd shapes (edges of every blocking loop) for each forced path: int8 u8s8 / s8u8 with
  // zero points on both sides, and fp32, against ORT.
  const oddCases = [];
  if (ort) {
    for (const [i, s] of [{ M: 3, N: 17, K: 33 }, { M: 17, N: 31, K: 65 }, { M: 33, N: 130, K: 257 }, { M: 5, N: 1000, K: 3 }, { M: 1, N: 200, K: 1000 }].entries()) {
      const r = rng(0x0dd + i);
      const aSigned = i % 2 === 1;
      const a = aSigned ? new Int8Array(s.M * s.K) : new Uint8Array(s.M * s.K);
      for (let k = 0; k < a.length; k++) a[k] = ((r() * 256) | 0) - (aSigned ? 128 : 0);
      const b = aSigned ? new Uint8Array(s.K * s.N) : new Int8Array(s.K * s.N);
      for (let k = 0; k < b.length; k++) b[k] = ((r() * 256) | 0) - (aSigned ? 0 : 128);
      const aZp = aSigned ? -7 : 200;
      const bZp = aSigned ? 131 : 5;
      const f = makeF32Data(s, 0x0dd + i);
      try {
        const si = await ort.InferenceSession.create(matMulIntegerModel({ ...s, b, aSigned, aZeroPoint: aZp, bZeroPoint: bZp }), ortOptions(1));
        const ref = (await si.run({ a: new ort.Tensor(aSigned ? 'int8' : 'uint8', a, [s.M, s.K]) })).y.data;
        await si.release();
        const sf = await ort.InferenceSession.create(matMulModel({ ...s, b: f.b }), ortOptions(1));
        const refF = (await sf.run({ a: new ort.Tensor('float32', f.a, [s.M, s.K]) })).y.data;
        await sf.release();
        oddCases.push({ s, a, b, aZp, bZp, ref, f, refF, label: `${shapeName(s)} ${aSigned ? 's8u8' : 'u8s8'} za=${aZp} zb=${bZp}` });
      } catch (e) {
        problem(`forced paths: ORT failed on ${shapeName(s)}: ${errMsg(e)}`);
      }
    }
  }
  setThreads(1);
  for (const p of supported) {
    try {
      Q.setIsa(p);
    } catch (e) {
      problem(`setIsa('${p}') threw although cpuInfo().supportedPaths lists it: ${errMsg(e)}`);
      continue;
    }
    const sel = gemmPaths();
    const odd = { path: p, int8Path: sel.int8?.path ?? null, fp32Path: sel.fp32?.path ?? null, ok: 0, total: 0, failures: [] };
    isaOdd.push(odd);
    for (const oc of oddCases) {
      const { M, N, K } = oc.s;
      const tries = [
        ['gemm', () => compareExact(Q.gemm(oc.a, Q.packWeights(oc.b, { K, N, zeroPoint: oc.bZp }), { M, aZeroPoint: oc.aZp }), oc.ref, N)],
        ['matmulF32', () => {
          const c = compareF32(Q.matmulF32(oc.f.a, oc.f.b, { M, K, N }), oc.refF, oc.f.a, oc.f.b, oc.s);
          return { ...c, mismatches: c.bad };
        }],
      ];
      for (const [what, fn] of tries) {
        if (what === 'gemm' ? !HAS_I8 : !HAS_F32) continue;
        odd.total++;
        try {
          const c = fn();
          if (c.mismatches) {
            odd.failures.push(`${what} ${oc.label}: ${c.mismatches} differ${describeMismatch(c)}`);
            problem(`forced path ${p}: ${what} ${oc.label} differs from ORT in ${c.mismatches} elements${describeMismatch(c)}`);
          } else odd.ok++;
        } catch (e) {
          odd.failures.push(`${what} ${oc.label}: threw ${errMsg(e)}`);
          problem(`forced path ${p}: ${what} ${oc.label} threw: ${errMsg(e)}`);
        }
      }
    }
    for (const s of ISA_SHAPES) {
      const name = shapeName(s);
      const { d8, ref } = refs.get(name);
      const row = { path: p, selected: sel.int8?.path ?? null, selectedFp32: sel.fp32?.path ?? null, shape: s, name };
      isaRuns.push(row);
      // scalar on the big shapes would take most of the time budget: one shape is enough there
      if (p === 'scalar' && opsOf(s) > 6e8) {
        row.skipped = 'scalar: skipped on shapes over 0.6 GOP';
        continue;
      }
      const out = new Int32Array(s.M * s.N);
      let pk;
      try {
        pk = Q.packWeights(d8.b, { K: s.K, N: s.N, dtype: 'int8', zeroPoint: 0 });
        Q.gemm(d8.a, pk, { M: s.M, aZeroPoint: 131, output: 'int32', out });
      } catch (e) {
        row.error = errMsg(e);
        problem(`forced path ${p}, ${name}: gemm threw: ${row.error}`);
        continue;
      }
      if (ref) {
        const c = ref.inexact ? { ...compareSample(out, ref.sample, s.N), vsSample: true } : compareExact(out, ref, s.N);
        row.check = c;
        if (c.mismatches) {
          problem(`forced path ${p}, ${name}: gemm != ORT MatMulInteger u8s8${ofText(c, s.M * s.N)}${describeMismatch(c)}`);
          continue;
        }
      }
      const t = (await timeInterleavedStats([{ name: 'gemm', fn: () => Q.gemm(d8.a, pk, { M: s.M, aZeroPoint: 131, output: 'int32', out }) }], BUDGET_ISA)).gemm;
      row.gopsMedian = opsOf(s) / t.ns;
      row.gopsBest = opsOf(s) / t.minNs;
      row.gops = STAT === 'best' ? row.gopsBest : row.gopsMedian;
      const k = INT8_PEAK_OF[row.selected ?? p];
      row.peakKernel = k ?? null;
      row.peakGops = k ? peakGops(k, 1) : null;
      row.pctPeak = row.peakGops ? row.gops / row.peakGops : null;
    }
  }
  try {
    Q.setIsa('auto');
  } catch (e) {
    problem(`setIsa('auto') threw: ${errMsg(e)}`);
  }
  // QUANTKIT_ISA at load must select what setIsa selects (a child process per path, cpuInfo only).
  const apiFile = opt('api') ? path.resolve(opt('api')) : path.join(root, 'dist/esm/index.mjs');
  if (existsSync(apiFile)) {
    for (const p of supported) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e',
        `const m = await import(${JSON.stringify(pathToFileURL(apiFile).href)}); console.log(JSON.stringify(m.cpuInfo()));`],
      { encoding: 'utf8', env: { ...process.env, QUANTKIT_ISA: p }, timeout: 30000 });
      let env = null;
      try {
        env = JSON.parse(r.stdout);
      } catch {
        const lines = (r.stderr || r.error?.message || '').split('\n').filter((l) => l.trim());
        problem(`QUANTKIT_ISA=${p}: child process failed: ${(lines.find((l) => /Error/.test(l)) ?? lines[lines.length - 1] ?? `status ${r.status}`).trim()}`);
        continue;
      }
      const viaEnv = gemmPaths(env);
      const viaSet = isaRuns.find((x) => x.path === p);
      const same = (viaEnv.int8?.path ?? null) === (viaSet?.selected ?? null);
      isaEnvChecks.push({ path: p, forced: env.forced, int8: viaEnv.int8?.path ?? null, fp32: viaEnv.fp32?.path ?? null, sameAsSetIsa: same });
      if (!same) problem(`QUANTKIT_ISA=${p} selects int8 GEMM path ${viaEnv.int8?.path} but setIsa('${p}') selected ${viaSet?.selected}`);
    }
  }
  setThreads(THREADS[THREADS.length - 1]);
}

// ---- extra correctness checks: small and odd shapes, every dtype combination and option -----------------------

const extra = [];
if (!NO_CHECKS && ort && (HAS_I8 || HAS_MMI || HAS_F32)) {
  const cases = [
    { M: 1, N: 1, K: 1 }, { M: 3, N: 17, K: 33 }, { M: 7, N: 64, K: 100 }, { M: 17, N: 31, K: 65 },
    { M: 64, N: 48, K: 256 }, { M: 5, N: 1000, K: 3 }, { M: 33, N: 130, K: 257 }, { M: 200, N: 80, K: 96 },
  ];
  const combos = [
    { aSigned: false, bSigned: true, aZp: 131, bZp: 0 },
    { aSigned: false, bSigned: true, aZp: 0, bZp: -7 },
    { aSigned: true, bSigned: true, aZp: -5, bZp: 9 },
    { aSigned: false, bSigned: false, aZp: 255, bZp: 128 },
    { aSigned: true, bSigned: false, aZp: 127, bZp: 3 },
  ];
  let ci = 0;
  for (const s of cases) {
    for (const cb of combos) {
      ci++;
      const { M, N, K } = s;
      const r = rng(0xabc + ci);
      const a = cb.aSigned ? new Int8Array(M * K) : new Uint8Array(M * K);
      for (let i = 0; i < a.length; i++) a[i] = ((r() * 256) | 0) - (cb.aSigned ? 128 : 0);
      const b = cb.bSigned ? new Int8Array(K * N) : new Uint8Array(K * N);
      for (let i = 0; i < b.length; i++) b[i] = ((r() * 256) | 0) - (cb.bSigned ? 128 : 0);
      const bT = cb.bSigned ? new Int8Array(N * K) : new Uint8Array(N * K);
      for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) bT[j * K + k] = b[k * N + j];
      const label = `${shapeName(s)} ${cb.aSigned ? 's8' : 'u8'}${cb.bSigned ? 's8' : 'u8'} za=${cb.aZp} zb=${cb.bZp}`;
      let ref;
      try {
        const sess = await ort.InferenceSession.create(matMulIntegerModel({ M, K, N, b, aSigned: cb.aSigned, aZeroPoint: cb.aZp, bZeroPoint: cb.bZp }), ortOptions(1));
        ref = (await sess.run({ a: new ort.Tensor(cb.aSigned ? 'int8' : 'uint8', a, [M, K]) })).y.data;
        await sess.release();
      } catch (e) {
        extra.push({ label, what: 'ORT', error: errMsg(e) });
        continue;
      }
      const dtype = cb.bSigned ? 'int8' : 'uint8';
      const variants = [];
      if (HAS_MMI) variants.push(['matmulInteger', () => Q.matmulInteger(a, b, { M, K, N, aZeroPoint: cb.aZp, bZeroPoint: cb.bZp })]);
      if (HAS_I8) {
        variants.push(['gemm', () => Q.gemm(a, Q.packWeights(b, { K, N, dtype, zeroPoint: cb.bZp }), { M, aZeroPoint: cb.aZp, output: 'int32' })]);
        variants.push(['gemm transposed B', () => Q.gemm(a, Q.packWeights(bT, { K, N, dtype, zeroPoint: cb.bZp, transposed: true }), { M, aZeroPoint: cb.aZp, output: 'int32' })]);
        variants.push(['gemm 2 threads', () => {
          setThreads(2);
          try {
            return Q.gemm(a, Q.packWeights(b, { K, N, dtype, zeroPoint: cb.bZp }), { M, aZeroPoint: cb.aZp, output: 'int32' });
          } finally {
            setThreads(1);
          }
        }]);
        if (has('gemmAsync')) variants.push(['gemmAsync', () => Q.gemmAsync(a, Q.packWeights(b, { K, N, dtype, zeroPoint: cb.bZp }), { M, aZeroPoint: cb.aZp, output: 'int32' })]);
      }
      setThreads(1);
      for (const [what, fn] of variants) {
        try {
          const got = await fn();
          const c = compareExact(got, ref, N);
          extra.push({ label, what, mismatches: c.mismatches, first: c.first });
          if (c.mismatches) problem(`check ${label}: ${what} != ORT MatMulInteger in ${c.mismatches} of ${M * N} elements${describeMismatch(c)}`);
        } catch (e) {
          extra.push({ label, what, error: errMsg(e) });
          problem(`check ${label}: ${what} threw: ${errMsg(e)}`);
        }
      }
      // Fused epilogues, against the documented formulas applied in JS to ORT's exact int32 result
      // (lib/gemm.ts, native/core/ref_gemm.h: bit-identical on every path):
      //   float32: y = f32(f32(acc) * f32(aScale * bScale)) + bias (f32 each step), ReLU y > 0 ? y : 0
      //   int8/uint8: mult = f32(f32(aScale * bScale) / outScale); q = clamp(rint(acc * mult + zp)) (double,
      //   half to even), ReLU raises the lower bound to zp.
      if (HAS_I8) {
        const relu = ci % 2 === 1;
        const perRow = ci % 3 === 0;
        const aScale = perRow ? Float32Array.from({ length: M }, (_, i) => 0.01 + 0.001 * (i % 7)) : 0.0123;
        const bScale = Float32Array.from({ length: N }, (_, j) => 0.02 + 0.0005 * (j % 11));
        const bias = Float32Array.from({ length: N }, (_, j) => (j % 5) - 2.25);
        const f = Math.fround;
        const asOf = (i) => (perRow ? aScale[i] : f(aScale));
        const RINT = 6755399441055744; // 1.5 * 2^52: (v + RINT) - RINT rounds half to even
        const epis = [
          ['gemm float32 out', { output: 'float32', aScale, bias, relu }, Float32Array, (acc, i, j) => {
            let y = f(f(f(acc) * f(asOf(i) * bScale[j])) + bias[j]);
            if (relu) y = y > 0 ? y : 0;
            return y;
          }],
          ...[['int8', -128, 127, -3, Int8Array], ['uint8', 0, 255, 120, Uint8Array]].map(([dt, qmin, qmax, zp, C]) =>
            [`gemm ${dt} out`, { output: dt, aScale, outScale: 0.37, outZeroPoint: zp, relu }, C, (acc, i, j) => {
              const mult = f(f(asOf(i) * bScale[j]) / f(0.37));
              const v = (acc * mult + zp + RINT) - RINT;
              const lo = relu ? Math.max(qmin, zp) : qmin;
              return v < lo ? lo : v > qmax ? qmax : v;
            }]),
        ];
        for (const [what, o, C, formula] of epis) {
          try {
            const pk = Q.packWeights(b, { K, N, dtype, zeroPoint: cb.bZp, scale: bScale });
            const got = Q.gemm(a, pk, { M, aZeroPoint: cb.aZp, ...o });
            const want = new C(M * N);
            for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) want[i * N + j] = formula(ref[i * N + j], i, j);
            const c = compareExact(got, want, N);
            const lbl = `${label}${perRow ? ' per-row aScale' : ''}${relu ? ' relu' : ''}`;
            extra.push({ label: lbl, what, mismatches: c.mismatches, first: c.first });
            if (c.mismatches) problem(`check ${lbl}: ${what} != the documented formula in ${c.mismatches} of ${M * N} elements${describeMismatch(c)}`);
          } catch (e) {
            extra.push({ label, what, error: errMsg(e) });
            problem(`check ${label}: ${what} threw: ${errMsg(e)}`);
          }
        }
      }
    }
    // fp32 on the same shape
    if (HAS_F32) {
      const { M, N, K } = s;
      const df = makeF32Data(s, 0xf32 + M + N + K);
      const bT = new Float32Array(N * K);
      for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) bT[j * K + k] = df.b[k * N + j];
      const label = `${shapeName(s)} f32`;
      let ref;
      try {
        const sess = await ort.InferenceSession.create(matMulModel({ M, K, N, b: df.b }), ortOptions(1));
        ref = (await sess.run({ a: new ort.Tensor('float32', df.a, [M, K]) })).y.data;
        await sess.release();
      } catch (e) {
        extra.push({ label, what: 'ORT', error: errMsg(e) });
        continue;
      }
      const variants = [['matmulF32', () => Q.matmulF32(df.a, df.b, { M, K, N })],
        ['matmulF32 transB', () => Q.matmulF32(df.a, bT, { M, K, N, transB: true })]];
      if (HAS_F32PACK) {
        variants.push(['matmulF32 packed', () => Q.matmulF32(df.a, Q.packWeightsF32(df.b, { K, N }), { M, K, N })]);
        variants.push(['matmulF32 packed transposed', () => Q.matmulF32(df.a, Q.packWeightsF32(bT, { K, N, transposed: true }), { M, K, N })]);
        variants.push(['matmulF32 packed 2 threads', () => {
          setThreads(2);
          try {
            return Q.matmulF32(df.a, Q.packWeightsF32(df.b, { K, N }), { M, K, N });
          } finally {
            setThreads(1);
          }
        }]);
      }
      for (const [what, fn] of variants) {
        try {
          const got = fn();
          const c = compareF32(got, ref, df.a, df.b, s);
          extra.push({ label, what, mismatches: c.bad, maxRel: c.maxRel, first: c.first });
          if (c.bad) problem(`check ${label}: ${what} differs from ORT MatMul beyond ${F32_TOL} x sum|a||b| in ${c.bad} of ${M * N} elements${describeMismatch(c)}`);
        } catch (e) {
          extra.push({ label, what, error: errMsg(e) });
          problem(`check ${label}: ${what} threw: ${errMsg(e)}`);
        }
      }
    }
  }
  // Long K up to the documented int32 bound (K * max|a - za| * max|b - zb| <= 2^31 - 1), with
  // extreme codes: u8s8 zero points 0 at K = 65536 (255 * 128 * 65536 = 2139095040), u8u8 at
  // K = 33025 (255 * 255 * 33025 = 2147450625), at 1 and 2 threads; and one K past the bound must
  // throw a RangeError.
  if (HAS_I8) {
    for (const [M, N, K, aSigned, bSigned] of [[7, 70, 65536, false, true], [5, 33, 33025, false, false]]) {
      const r = rng(0xb0 + K);
      const a = new Uint8Array(M * K);
      for (let i = 0; i < a.length; i++) a[i] = r() < 0.7 ? 255 : (r() * 256) | 0;
      const b = bSigned ? new Int8Array(K * N) : new Uint8Array(K * N);
      for (let i = 0; i < b.length; i++) b[i] = r() < 0.7 ? (bSigned ? -128 : 255) : ((r() * 256) | 0) - (bSigned ? 128 : 0);
      const label = `${M}x${N}x${K} u8${bSigned ? 's8' : 'u8'} extremes, zero points 0 (int32 bound)`;
      let ref;
      try {
        const sess = await ort.InferenceSession.create(matMulIntegerModel({ M, K, N, b, aSigned, aZeroPoint: 0, bZeroPoint: 0 }), ortOptions(1));
        ref = (await sess.run({ a: new ort.Tensor('uint8', a, [M, K]) })).y.data;
        await sess.release();
      } catch (e) {
        extra.push({ label, what: 'ORT', error: errMsg(e) });
        continue;
      }
      for (const th of [1, 2]) {
        const what = `gemm ${th} thread${th > 1 ? 's' : ''}`;
        try {
          setThreads(th);
          const c = compareExact(Q.gemm(a, Q.packWeights(b, { K, N }), { M }), ref, N);
          extra.push({ label, what, mismatches: c.mismatches, first: c.first });
          if (c.mismatches) problem(`check ${label}: ${what} != ORT MatMulInteger in ${c.mismatches} of ${M * N} elements${describeMismatch(c)}`);
        } catch (e) {
          extra.push({ label, what, error: errMsg(e) });
          problem(`check ${label}: ${what} threw: ${errMsg(e)}`);
        }
      }
      setThreads(1);
      if (!bSigned) {
        const K2 = K + 1;
        const what = `gemm K = ${K2} (past the bound) must throw RangeError`;
        try {
          Q.gemm(new Uint8Array(K2), Q.packWeights(new Uint8Array(K2), { K: K2, N: 1 }), { M: 1 });
          extra.push({ label, what, error: 'did not throw' });
          problem(`check ${label}: ${what}, but it returned`);
        } catch (e) {
          const ok = e instanceof RangeError;
          extra.push({ label, what, mismatches: ok ? 0 : 1, note: ok ? undefined : `threw ${e?.name}: ${errMsg(e)}` });
          if (!ok) problem(`check ${label}: ${what}, but threw ${e?.name}: ${errMsg(e)}`);
        }
      }
    }
  }
  setThreads(THREADS[THREADS.length - 1]);
}

// ---- targets --------------------------------------------------------------------------------------------------------

const targets = [];
const addT = (name, value, threshold, pass, unit = 'x', note) => targets.push({ name, value, threshold, pass, unit, note });
const at = (name, threads) => results.find((r) => r.name === name)?.threads[threads];
for (const t of THREADS) {
  for (const n of LARGE) {
    const x = at(n, t);
    const v = x?.ratio.qkVsOrtU8 ?? null;
    // Is the target reachable on this CPU? 1.5x ORT needs 1.5 * ORT's GOPS; above the best int8
    // peak loop measured here (at this thread count) no kernel can get there.
    const need = x?.gops.ortU8 ? T.ortLarge * x.gops.ortU8 : null;
    const best = x?.peak.bestInt8Gops ?? null;
    const note = need && best && need > best
      ? `needs ${need.toFixed(0)} GOPS > this CPU's ${x.peak.bestInt8Kernel} peak ${best.toFixed(0)}: unreachable here` : undefined;
    addT(`int8 ${n}, ${t}T: quantkit >= ${T.ortLarge}x ORT MatMulInteger u8s8`, v, T.ortLarge, v === null ? null : v >= T.ortLarge, 'x', note);
  }
  const all = results.map((r) => [r.name, r.threads[t]?.ratio.qkVsOrtU8 ?? null]);
  const known = all.filter(([, v]) => v !== null);
  const worst = known.reduce((a, b) => (b[1] < a[1] ? b : a), known[0] ?? [null, null]);
  addT(`int8 every shape, ${t}T: quantkit >= ${T.ortAny}x ORT u8s8 (lowest shown)`, worst[1], T.ortAny,
    known.length < all.length ? (known.some(([, v]) => v < T.ortAny) ? false : null) : worst[1] >= T.ortAny, 'x', worst[0] ? `at ${worst[0]}` : undefined);
}
if (THREADS.includes(1) && THREADS.includes(2)) {
  for (const n of LARGE) {
    const a = at(n, 1)?.gops.qk;
    const b = at(n, 2)?.gops.qk;
    const v = a && b ? b / a : null;
    // Before this process started, other processes' load of >= 1 CPU leaves 2 threads no second CPU.
    const busy = meta.loadavgStart[0] >= Math.max(1, meta.logicalCpus / 2)
      ? `load average ${meta.loadavgStart[0].toFixed(1)} on ${meta.logicalCpus} CPUs before the run: other processes held CPUs` : undefined;
    addT(`int8 ${n}: quantkit 2 threads >= ${T.scale2}x 1 thread`, v, T.scale2, v === null ? null : v >= T.scale2, 'x', busy);
  }
}
{
  const cpuHasVnni = (info0.features ?? []).includes('avx512vnni');
  const row = isaRuns.find((r) => r.path === 'avx512vnni' && r.name === '1024x1024x1024');
  let pass = null;
  let note;
  if (row?.pctPeak !== undefined && row?.pctPeak !== null) pass = row.pctPeak >= T.vnniPeak;
  else if (NO_ISA || NO_PEAK) note = 'not measured (--no-isa / --no-peak)';
  else if (!cpuHasVnni) note = 'CPU has no AVX512-VNNI';
  else if (!HAS_I8) note = 'quantkit int8 GEMM not available';
  else if (!(info0.supportedPaths ?? []).includes('avx512vnni')) {
    pass = false;
    note = 'quantkit offers no avx512vnni path, though the CPU has AVX512-VNNI';
  } else if (row?.error) {
    pass = false;
    note = `gemm threw: ${row.error}`;
  } else if (row?.check?.mismatches) {
    pass = false;
    note = 'wrong results (see problems)';
  } else note = 'not measured (1024x1024x1024 not among --isa-shapes?)';
  addT(`int8 1024x1024x1024, avx512vnni path forced, 1T: >= ${T.vnniPeak * 100}% of measured vpdpbusd zmm peak`, row?.pctPeak ?? null, T.vnniPeak, pass, '%', note);
}
for (const t of THREADS) {
  const all = results.map((r) => [r.name, r.threads[t]?.ratio.f32VsOrt ?? null]);
  const known = all.filter(([, v]) => v !== null);
  const worst = known.reduce((a, b) => (b[1] < a[1] ? b : a), known[0] ?? [null, null]);
  addT(`fp32 every shape, ${t}T: quantkit >= ${T.f32Ort}x ORT MatMul (lowest shown)`, worst[1], T.f32Ort,
    known.length < all.length ? (known.some(([, v]) => v < T.f32Ort) ? false : null) : worst[1] >= T.f32Ort, 'x', worst[0] ? `at ${worst[0]}` : undefined);
}

// ---- report -------------------------------------------------------------------------------------------------------------

const pct = (v) => (v === null || v === undefined ? '-' : `${(v * 100).toFixed(0)}%`);
const g0 = (v) => (v === null || v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const x2 = (v) => (v === null || v === undefined ? '-' : `${v.toFixed(2)}x`);
const checkCell = (c) => {
  if (!c) return '-';
  if (c.error) return 'threw';
  if (c.bad !== undefined) return c.bad ? `${c.bad} off` : `ok (${c.maxRel.toExponential(0)})`;
  return c.mismatches ? `${c.mismatches} differ` : c.vsSample ? '=exact*' : '=ORT';
};

for (const t of THREADS) {
  const r0 = results[0]?.threads[t];
  say(`== int8 GEMM, ${t} thread${t > 1 ? 's' : ''}: GOPS; quantkit = packWeights once + gemm(output 'int32', out); ` +
    `%peak: quantkit vs the ${r0?.peak.int8Kernel ?? '?'} loop (path ${r0?.int8Path ?? '?'}), ORT vs the ${r0?.peak.bestInt8Kernel ?? '?'} loop ==`);
  const rows = results.map((r) => {
    const x = r.threads[t];
    return [
      r.name, g0(x.gops.qk), pct(x.pctPeak.qk), g0(x.gops.ortU8), pct(x.pctPeak.ortU8), x2(x.ratio.qkVsOrtU8),
      g0(x.gops.qkS8), g0(x.gops.ortS8), x2(x.ratio.qkS8VsOrtS8), g0(x.gops.qkUnpacked),
      t === THREADS[0] && r.info.packMs !== undefined ? `${fmt(r.info.packMs, 1)}` : '',
      [checkCell(x.check.gemm), checkCell(x.check.gemmS8), checkCell(x.check.matmulInteger)].join(' '),
    ];
  });
  say(table(['M x N x K', 'quantkit', '%peak', 'ORT u8s8', '%peak', 'qk/ORT', 'qk s8s8', 'ORT s8s8', 'qk/ORT s8', 'matmulInteger', 'pack ms', 'check u8s8 s8s8 unpacked'],
    rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l']));
  say('');
  say(`== fp32 GEMM, ${t} thread${t > 1 ? 's' : ''}: GFLOPS; quantkit = packWeightsF32 once + matmulF32(out); ` +
    `%peak vs the ${r0?.peak.fp32Kernel ?? 'fma_zmm'} loop (path ${r0?.fp32Path ?? '?'}) ==`);
  const frows = results.map((r) => {
    const x = r.threads[t];
    return [r.name, g0(x.gops.qkF32), pct(x.pctPeak.qkF32), g0(x.gops.ortF32), pct(x.pctPeak.ortF32), x2(x.ratio.f32VsOrt),
      g0(x.gops.qkF32Unpacked), `${checkCell(x.check.matmulF32)} ${checkCell(x.check.matmulF32Unpacked)}`];
  });
  say(table(['M x N x K', 'quantkit', '%peak', 'ORT MatMul', '%peak', 'qk/ORT', 'unpacked B', 'check packed unpacked'],
    frows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l']));
  say('');
}
if (THREADS.length > 1) {
  const [t1, t2] = [THREADS[0], THREADS[THREADS.length - 1]];
  say(`== thread scaling: GOPS at ${t2} threads / GOPS at ${t1} thread${t1 > 1 ? 's' : ''} ==`);
  const sc = (r, k) => {
    const a = r.threads[t1]?.gops[k];
    const b = r.threads[t2]?.gops[k];
    return a && b ? x2(b / a) : '-';
  };
  say(table(['M x N x K', 'quantkit int8', 'ORT u8s8', 'quantkit fp32', 'ORT fp32'],
    results.map((r) => [r.name, sc(r, 'qk'), sc(r, 'ortU8'), sc(r, 'qkF32'), sc(r, 'ortF32')]), ['l', 'r', 'r', 'r', 'r']));
  say('');
}
if (isaRuns.length) {
  say('== int8 gemm with each path forced (setIsa; 1 thread), GOPS and % of that path\'s peak loop ==');
  say(table(['forced', 'selected', 'M x N x K', 'GOPS', 'peak loop', 'peak', '%peak', 'check'], isaRuns.map((r) => [
    r.path, r.selected ?? '?', r.name, r.skipped ? 'skipped' : r.error ? 'threw' : g0(r.gops), r.peakKernel ?? '-', g0(r.peakGops), pct(r.pctPeak),
    r.check ? checkCell(r.check) : r.skipped ?? '-',
  ])));
  if (isaOdd.some((o) => o.total)) {
    say(`small odd shapes vs ORT under each forced path (gemm u8s8/s8u8 with zero points, matmulF32): ` +
      isaOdd.map((o) => `${o.path} (int8 ${o.int8Path}, fp32 ${o.fp32Path}) ${o.ok}/${o.total}`).join(', '));
  }
  if (isaEnvChecks.length) {
    say(`QUANTKIT_ISA=<path> in a child process selects the same int8 path as setIsa: ${isaEnvChecks.every((c) => c.sameAsSetIsa) ? 'yes' : 'NO'} ` +
      `(${isaEnvChecks.map((c) => `${c.path}->${c.int8}`).join(', ')})`);
  }
  say('');
} else if (!NO_ISA) {
  say(`== forced paths: not run (${!HAS_I8 ? 'quantkit int8 GEMM not available' : 'setIsa not exported'}) ==\n`);
}
if (extra.length) {
  const bad = extra.filter((e) => e.error || e.mismatches);
  say(`== extra checks vs ORT (small/odd shapes, u8/s8 A and B, zero points, transposed B, 2 threads, gemmAsync, ` +
    `float32/int8/uint8 fused outputs vs their formulas, fp32 variants): ` +
    `${extra.length - bad.length} of ${extra.length} ok ==`);
  if (bad.length) {
    say(table(['case', 'call', 'result'], bad.slice(0, 40).map((e) => [e.label, e.what, e.error ? `threw: ${e.error}` : `${e.mismatches} differ${describeMismatch(e)}`])));
    if (bad.length > 40) say(`... ${bad.length - 40} more`);
  }
  say('');
}

meta.loadavgEnd = os.loadavg();
const verdict = (p) => (p === null ? 'n/a' : p ? 'PASS' : 'MISS');
say(`== targets (from the issue) ==  (load average at the end ${meta.loadavgEnd.map((v) => v.toFixed(1)).join(' ')} on ${meta.logicalCpus} CPUs)`);
say(table(['target', 'measured', 'verdict', 'note'], targets.map((t) => [
  t.name, t.value === null ? '-' : t.unit === '%' ? pct(t.value) : x2(t.value), verdict(t.pass), t.note ?? '',
]), ['l', 'r', 'l', 'l']));
const npass = targets.filter((t) => t.pass === true).length;
const nmiss = targets.filter((t) => t.pass === false).length;
const nna = targets.filter((t) => t.pass === null).length;
say(`${npass} PASS, ${nmiss} MISS${nna ? `, ${nna} n/a` : ''}`);
if (!ort) say(`\n${ORT_INSTALL_HINT}`);
if (errors.length) {
  say('\n== problems ==');
  for (const e of errors.slice(0, 60)) say(`- ${e}`);
  if (errors.length > 60) say(`- ... ${errors.length - 60} more (see --json)`);
}

if (JSON_OUT) {
  console.log(JSON.stringify({ meta, targetsSpec: T, peak, shapes: results, isa: isaRuns, isaOddShapes: isaOdd, isaEnv: isaEnvChecks, extraChecks: extra, targets, errors },
    (k, v) => (v === undefined ? null : v), 2));
}
