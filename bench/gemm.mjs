#!/usr/bin/env node
// npm run bench:gemm [-- --json] [-- --quick]
//
// GOPS (2*M*N*K / time, median of interleaved rounds of hot samples) of quantkit's int8 GEMM
// (packWeights once, then gemm(..., { output: 'int32', out }) per call) and fp32 GEMM (matmulF32 with
// packWeightsF32) beside onnxruntime-node's MatMulInteger (u8s8, and s8s8 to show its slow path) and
// MatMul, all with B a constant initializer so ORT pre-packs it, at 1 and 2 threads; the percentage
// of this machine's peak (bench/peak.cc) for the kernel path quantkit selected; every path the addon
// supports forced in turn; and the targets (bench/gemm/targets.mjs) as PASS / MISS. Every result
// is checked against ORT before it is timed (int32 exactly, fp32 within a bound); the wider
// correctness checks against ORT are vitest tests (test/gemm.ort.test.ts). See bench/README.md.
//
// The pieces: bench/gemm/shapes.mjs (shapes, data), compare.mjs (checks), peer.mjs (ORT
// references), peak.mjs (peak loops), paths.mjs (kernel paths from the addon), targets.mjs,
// report.mjs (the tables).
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadQuantkit, loadOrt, ORT_INSTALL_HINT, timeInterleavedStats, timeHot, ortOptions, ortAfter, ORT_SPIN_PAUSE_MS } from './common.mjs';
import { matMulIntegerModel, matMulModel } from './onnx-model.mjs';
import { compareExact, compareF32, compareSample, describeMismatch, exactSample, F32_TOL, ofText } from './gemm/compare.mjs';
import { gemmPaths, forcedPaths } from './gemm/paths.mjs';
import { INT8_LOOPS_BEST_FIRST, PEAK_LOOP_OF, runPeak } from './gemm/peak.mjs';
import { ortMatMulInteger } from './gemm/peer.mjs';
import { printForced, printPeak, printShapes, printTargets } from './gemm/report.mjs';
import { ISA_SHAPES, ISA_SHAPES_QUICK, largest, makeF32Data, makeInt8Data, opsOf, parseShape, SHAPES, shapeName } from './gemm/shapes.mjs';
import { evaluateTargets, LARGEST, thresholds, VNNI_PEAK_AT } from './gemm/targets.mjs';

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
  --no-isa             skip the forced-path (setIsa) runs
  --threads=1,2        thread counts (default 1,2)
  --shapes=MxNxK,...   shapes instead of the six of bench/gemm/shapes.mjs (M rows, N columns, K depth)
  --isa-shapes=...     shapes for the forced-path runs (default 1x4096x4096,512x512x512,1024x1024x1024)
  --stat=best          report the fastest sample instead of the median (a shared, noisy machine)
  --api=FILE           load the quantkit API from this module instead of dist/esm/index.mjs
                       (another build, to compare two builds on the same machine)
The correctness checks beyond the timed shapes are vitest tests: npx vitest run test/gemm.ort.test.ts`);
  process.exit(0);
}
const JSON_OUT = flag('--json');
const QUICK = flag('--quick');
const NO_ORT = flag('--no-ort');
const NO_PEAK = flag('--no-peak');
const NO_ISA = flag('--no-isa');
const THREADS = (opt('threads') ?? '1,2').split(',').map(Number).filter((n) => n >= 1);
const STAT = opt('stat') ?? 'median';
if (!['median', 'best'].includes(STAT)) throw new Error(`--stat must be median or best, not ${STAT}`);
if (flag('--no-checks')) console.error('--no-checks: the extra correctness checks moved to test/gemm.ort.test.ts; nothing to skip');
const say = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);

const SHAPES_RUN = opt('shapes') ? opt('shapes').split(',').map(parseShape) : SHAPES;
const ISA_SHAPES_RUN = opt('isa-shapes') ? opt('isa-shapes').split(',').map(parseShape) : QUICK ? ISA_SHAPES_QUICK : ISA_SHAPES;
const LARGE = largest(SHAPES_RUN, LARGEST);

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

// ---- quantkit and onnxruntime-node ----------------------------------------------------------------

const qk = opt('api')
  ? { api: await import(pathToFileURL(path.resolve(opt('api'))).href), source: `--api=${opt('api')}` }
  : await loadQuantkit();
const Q = qk.api;
const cpuInfo = () => Q.cpuInfo();
const setThreads = (n) => Q.setNumThreads(n);

const ortL = NO_ORT ? { ort: null, error: 'disabled by --no-ort' } : loadOrt();
const ort = ortL.ort;

// A call given opts.out should write into it and return it (the timed calls rely on out).
function returnsOut(label, ret, out) {
  if (ret !== out) problem(`${label} with opts.out returned ${ret === undefined ? 'undefined' : 'a different array'} instead of opts.out`);
}

// ---- header ----------------------------------------------------------------------------------------------

const info0 = cpuInfo();
const paths0 = gemmPaths(info0);
const meta = {
  date: new Date().toISOString(),
  node: process.version,
  cpuModel: os.cpus()[0]?.model,
  logicalCpus: os.cpus().length,
  quantkit: {
    source: qk.source, note: qk.note, features: info0.features, builtPaths: info0.builtPaths,
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
say(`quantkit paths built: ${(info0.builtPaths ?? []).join(',')}; supported here: ${(info0.supportedPaths ?? []).join(',')}; forced: ${info0.forced ?? '?'}`);
const pathsLine = (p) => (p ? `${p.path} (${Object.entries(p.ops).map(([k, v]) => `${k}=${v}`).join(' ')})` : 'none selected (op not built)');
say(`quantkit GEMM kernels selected: int8 ${pathsLine(paths0.int8)}; fp32 ${pathsLine(paths0.fp32)}`);
if (ort) say(`onnxruntime-node ${ortL.version}: MatMulInteger (u8s8 and s8s8) / MatMul, opset 21, B a constant initializer (pre-packed), graphOptimizationLevel 'all', intraOpNumThreads = threads, session.run(feeds, { y: preallocated })`);
else say(`onnxruntime-node: NOT AVAILABLE (${ortL.error})\n${ORT_INSTALL_HINT}`);
say('');

// ---- peak ----------------------------------------------------------------------------------------------

let peak = null;
if (!NO_PEAK) {
  peak = runPeak([...new Set([1, ...THREADS])], { quick: QUICK });
  if (peak.error) problem(`peak: ${peak.error}`);
}
const peakGops = (kernel, threads) => peak?.kernels?.[kernel]?.gops?.[threads] ?? null;
const bestF32Peak = (threads) => peakGops('fma_zmm', threads) ?? peakGops('fma_ymm', threads);
if (peak?.kernels) printPeak(say, peak, THREADS);

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
for (const s of SHAPES_RUN) {
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
  try {
    const t0 = process.hrtime.bigint();
    packed = Q.packWeights(d8.b, { K, N, dtype: 'int8', zeroPoint: 0 });
    res.info.packMs = Number(process.hrtime.bigint() - t0) / 1e6;
    res.info.packedBytes = packed?.byteLength;
  } catch (e) {
    problem(`${name}: packWeights threw: ${errMsg(e)}`);
  }
  try {
    const t0 = process.hrtime.bigint();
    packedF32 = Q.packWeightsF32(df.b, { K, N });
    res.info.packF32Ms = Number(process.hrtime.bigint() - t0) / 1e6;
    res.info.packedF32Bytes = packedF32?.byteLength;
  } catch (e) {
    problem(`${name}: packWeightsF32 threw: ${errMsg(e)}`);
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
    // Each call is checked before it is timed: int32 exactly against ORT (or the exact sample).
    const checkInt32 = (label, key, fn, got, ref, sample, vs) => {
      try {
        returnsOut(`${name} ${threads}T: ${label}`, fn(), got);
        const c = vsRef(got, ref, sample);
        tr.check[key] = c;
        if (c.mismatches) problem(`${name} ${threads}T: ${label} != ORT MatMulInteger ${vs}${ofText(c, M * N)}${describeMismatch(c)}`);
        return c.mismatches === 0;
      } catch (e) {
        tr.check[key] = { error: errMsg(e) };
        problem(`${name} ${threads}T: ${label} threw: ${errMsg(e)}`);
        return false;
      }
    };
    if (packed) {
      qkOk = checkInt32('gemm (u8 A, packed s8 B, int32)', 'gemm', runQk, out32, refU8, sampleU8, 'u8s8');
      qkS8Ok = checkInt32('gemm (s8 A, packed s8 B, int32)', 'gemmS8', runQkS8, out32s, refS8, sampleS8, 's8s8');
    }
    qkUnpackedOk = checkInt32('matmulInteger (unpacked)', 'matmulInteger', runQkUnpacked, out32u, refU8, sampleU8, 'u8s8');

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
    f32UnpackedOk = checkF32('matmulF32 (unpacked B)', 'matmulF32Unpacked', runF32Unpacked, outFu);
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
    const p = gemmPaths(cpuInfo());
    tr.int8Path = p.int8?.path ?? null;
    tr.fp32Path = p.fp32?.path ?? null;
    tr.ratio = {
      qkVsOrtU8: g.qk && g.ortU8 ? g.qk / g.ortU8 : null,
      qkS8VsOrtS8: g.qkS8 && g.ortS8 ? g.qkS8 / g.ortS8 : null,
      unpackedVsOrtU8: g.qkUnpacked && g.ortU8 ? g.qkUnpacked / g.ortU8 : null,
      f32VsOrt: g.qkF32 && g.ortF32 ? g.qkF32 / g.ortF32 : null,
    };
    const ik = PEAK_LOOP_OF.int8[tr.int8Path];
    const fk = PEAK_LOOP_OF.fp32[tr.fp32Path];
    tr.peak = {
      int8Kernel: ik ?? null, int8Gops: ik ? peakGops(ik, threads) : null,
      fp32Kernel: fk ?? null, fp32Gops: fk ? peakGops(fk, threads) : null,
      // ORT against the best int8 loop this CPU has (what its VNNI kernel is bounded by)
      bestInt8Kernel: INT8_LOOPS_BEST_FIRST.find((k) => peakGops(k, threads)) ?? null,
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

// Each path the addon supports, forced with setIsa (1 thread): gemm checked against ORT on the
// forced-path shapes, then timed. The paths and their order come from cpuInfo().
const isaRuns = [];
if (!NO_ISA) {
  const refs = new Map(); // ORT u8s8 results per ISA shape (1 thread)
  for (const s of ISA_SHAPES_RUN) {
    const name = shapeName(s);
    const d8 = makeInt8Data(s, 0x15a + s.M * 131 + s.N * 7 + s.K);
    let ref = null;
    if (ort) {
      try {
        ref = await ortMatMulInteger(ort, { ...s, b: d8.b, aZeroPoint: 131 }, d8.a);
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
  setThreads(1);
  // ORT u8s8 on the same data at 1 thread, beside every forced path's row of the shape.
  const ortIsa = new Map();
  if (ort) {
    for (const s of ISA_SHAPES_RUN) {
      const name = shapeName(s);
      const { d8, ref } = refs.get(name);
      if (!ref) continue;
      let sess = null;
      try {
        sess = await ort.InferenceSession.create(matMulIntegerModel({ ...s, b: d8.b, aSigned: false, aZeroPoint: 131 }), ortOptions(1));
        const feeds = { a: new ort.Tensor('uint8', d8.a, [s.M, s.K]) };
        const fetches = { y: new ort.Tensor('int32', new Int32Array(s.M * s.N), [s.M, s.N]) };
        const t = (await timeInterleavedStats([{ name: 'ort', fn: () => sess.run(feeds, fetches), async: true }], BUDGET_ISA)).ort;
        ortIsa.set(name, STAT === 'best' ? opsOf(s) / t.minNs : opsOf(s) / t.ns);
      } catch (e) {
        problem(`forced paths ${name}: timing ORT failed: ${errMsg(e)}`);
      } finally {
        if (sess) await sess.release();
      }
    }
  }
  for (const p of forcedPaths(info0)) {
    try {
      Q.setIsa(p);
    } catch (e) {
      problem(`setIsa('${p}') threw although cpuInfo().supportedPaths lists it: ${errMsg(e)}`);
      continue;
    }
    const sel = gemmPaths(cpuInfo());
    for (const s of ISA_SHAPES_RUN) {
      const name = shapeName(s);
      const { d8, ref } = refs.get(name);
      const row = { path: p, selected: sel.int8?.path ?? null, selectedFp32: sel.fp32?.path ?? null, shape: s, name, ortGops: ortIsa.get(name) ?? null };
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
      const k = PEAK_LOOP_OF.int8[row.selected ?? p];
      row.peakKernel = k ?? null;
      row.peakGops = k ? peakGops(k, 1) : null;
      row.pctPeak = row.peakGops ? row.gops / row.peakGops : null;
      row.vsOrt = row.ortGops ? row.gops / row.ortGops : null;
    }
  }
  try {
    Q.setIsa('auto');
  } catch (e) {
    problem(`setIsa('auto') threw: ${errMsg(e)}`);
  }
  setThreads(THREADS[THREADS.length - 1]);
}

// ---- targets and report ------------------------------------------------------------------------------------------------

const targets = evaluateTargets({
  results, isaRuns, threads: THREADS, large: LARGE, loadavgStart: meta.loadavgStart, logicalCpus: meta.logicalCpus,
  why: {
    notMeasured: NO_ISA || NO_PEAK ? 'not measured (--no-isa / --no-peak)' : null,
    cpuHasVnni: (info0.features ?? []).includes('avx512vnni'),
    pathSupported: (info0.supportedPaths ?? []).includes(VNNI_PEAK_AT.path),
  },
});

printShapes(say, results, THREADS);
if (isaRuns.length) printForced(say, isaRuns);
meta.loadavgEnd = os.loadavg();
printTargets(say, targets, meta.loadavgEnd, meta.logicalCpus);
if (!ort) say(`\n${ORT_INSTALL_HINT}`);
if (errors.length) {
  say('\n== problems ==');
  for (const e of errors.slice(0, 60)) say(`- ${e}`);
  if (errors.length > 60) say(`- ... ${errors.length - 60} more (see --json)`);
}

if (JSON_OUT) {
  console.log(JSON.stringify({ meta, targetsSpec: thresholds(), peak, shapes: results, isa: isaRuns, targets, errors },
    (k, v) => (v === undefined ? null : v), 2));
}
