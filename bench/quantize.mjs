#!/usr/bin/env node
// npm run bench:quantize [-- --json] [-- --quick]
//
// Effective bandwidth (bytes read + written per second, median of repeated timed runs after
// warm-up, one thread) of quantkit's quantizeLinear / dequantizeLinear beside, in the same run:
// a plain memcpy of the same bytes, onnxruntime-node's QuantizeLinear / DequantizeLinear on the
// same data, and a plain JavaScript loop. Also the per-call overhead on 64 elements.
// Every variant is checked once for equality with ORT and with the JS loop before it is timed.
// See bench/README.md.
import os from 'node:os';
import {
  loadQuantkit, loadRawBinding, loadOrt, ORT_INSTALL_HINT, ORT_SESSION_OPTIONS, rng, timeSync, timeAsync, timeInterleaved,
  fmt, fmtElems, table,
} from './common.mjs';
import { quantizeLinearModel, dequantizeLinearModel } from './onnx-model.mjs';

const argv = process.argv.slice(2);
const JSON_OUT = argv.includes('--json');
const QUICK = argv.includes('--quick');
const NO_ORT = argv.includes('--no-ort');
const RAW = argv.includes('--raw');
if (argv.includes('--help') || argv.includes('-h')) {
  console.log('usage: node bench/quantize.mjs [--json] [--quick] [--no-ort] [--raw]\n  --json    machine-readable results on stdout (the table goes to stderr)\n  --quick   shorter timing (noisier)\n  --no-ort  skip onnxruntime-node even when installed\n  --raw     call the raw addon (build/Release/quantkit.node) even when dist/ is built');
  process.exit(0);
}
const say = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);

const SIZES = [1 << 16, 1 << 24];
const C = 1024; // channel count of the per-axis variants
const OVERHEAD_N = 64;

// The targets (bench/README.md states the same table).
const T = { memcpy: 0.8, qTensorOrt: 1.2, dqOrt: 3, qInnerOrt: 10, callNs: 1000 };

// Timing budgets: [large tensors, small tensors, 64-element calls]
const BIG = QUICK
  ? { warmup: 1, sampleNs: 1, minSamples: 3, maxSamples: 7, minTimeNs: 2e8 }
  : { warmup: 2, sampleNs: 1, minSamples: 5, maxSamples: 15, minTimeNs: 6e8 };
const SMALL = QUICK
  ? { warmup: 50, sampleNs: 1e6, minSamples: 7, maxSamples: 31, minTimeNs: 5e7 }
  : { warmup: 200, sampleNs: 2e6, minSamples: 15, maxSamples: 61, minTimeNs: 2e8 };
const CALL = QUICK
  ? { warmup: 2000, sampleNs: 5e5, minSamples: 21, maxSamples: 101, minTimeNs: 5e7 }
  : { warmup: 20000, sampleNs: 1e6, minSamples: 51, maxSamples: 301, minTimeNs: 3e8 };
const budget = (n) => (n >= 1 << 22 ? BIG : SMALL);

// ---- setup ------------------------------------------------------------------------------------

const qk = await loadQuantkit({ forceRaw: RAW });
const K = qk.api;
if (typeof K.setNumThreads === 'function') K.setNumThreads(1);
const threads = typeof K.getNumThreads === 'function' ? K.getNumThreads() : undefined;
const cpu = typeof K.cpuInfo === 'function' ? K.cpuInfo() : {};
const ortL = NO_ORT ? { ort: null, binding: null, error: 'disabled by --no-ort' } : loadOrt();
const ort = ortL.ort;

const meta = {
  date: new Date().toISOString(),
  node: process.version,
  cpuModel: os.cpus()[0]?.model,
  logicalCpus: os.cpus().length,
  quantkit: { source: qk.source, note: qk.note, threads, selected: cpu.selected, supportedPaths: cpu.supportedPaths, builtPaths: cpu.builtPaths },
  ort: ort ? { version: ortL.version, sessionOptions: ORT_SESSION_OPTIONS } : { error: ortL.error },
  quick: QUICK,
};

say(`quantkit bench: quantize / dequantize, one thread, GB/s = (bytes read + bytes written) / time, median of repeated runs after warm-up`);
say(`node ${process.version}, ${meta.cpuModel} (${meta.logicalCpus} logical CPUs)`);
say(`quantkit: ${qk.source}${qk.note ? ` [${qk.note}]` : ''}; threads=${threads}`);
say(`quantkit kernels selected: ${cpu.selected ? Object.entries(cpu.selected).map(([k, v]) => `${k}=${v}`).join(' ') : '?'}`);
say(`quantkit paths built: ${(cpu.builtPaths ?? []).join(',')}; supported here: ${(cpu.supportedPaths ?? []).join(',')}`);
if (ort) say(`onnxruntime-node ${ortL.version}: intraOpNumThreads=1, graphOptimizationLevel='all', QuantizeLinear/DequantizeLinear opset 21, scale/zero point as initializers`);
else say(`onnxruntime-node: NOT AVAILABLE (${ortL.error})\n${ORT_INSTALL_HINT}`);
say('');

// ---- reference JS loops -------------------------------------------------------------------------
// x / scale is computed in double and rounded to float32 (Math.fround): that is the correctly
// rounded float32 quotient the ONNX spec asks for. (v + 1.5*2^52) - 1.5*2^52 rounds a double with
// |v| < 2^51 to the nearest integer, ties to even (the default FP rounding mode).

const MAGIC = 6755399441055744; // 1.5 * 2^52

function jsQuantTensor(x, s, zp, qmin, qmax, out) {
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const v = Math.fround(x[i] / s);
    const r = v + MAGIC - MAGIC + zp;
    out[i] = r < qmin ? qmin : r > qmax ? qmax : r;
  }
}

function jsQuantInner(x, rows, cols, scale, zp, qmin, qmax, out) {
  for (let r = 0, i = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, i++) {
      const v = Math.fround(x[i] / scale[c]);
      const q = v + MAGIC - MAGIC + zp[c];
      out[i] = q < qmin ? qmin : q > qmax ? qmax : q;
    }
  }
}

function jsQuantOuter(x, rows, cols, scale, zp, qmin, qmax, out) {
  for (let r = 0, i = 0; r < rows; r++) {
    const s = scale[r];
    const z = zp[r];
    for (let c = 0; c < cols; c++, i++) {
      const v = Math.fround(x[i] / s);
      const q = v + MAGIC - MAGIC + z;
      out[i] = q < qmin ? qmin : q > qmax ? qmax : q;
    }
  }
}

function jsDequantTensor(q, s, zp, out) {
  const n = q.length;
  for (let i = 0; i < n; i++) out[i] = (q[i] - zp) * s; // exact in double, one rounding to f32
}

function jsDequantInner(q, rows, cols, scale, zp, out) {
  for (let r = 0, i = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, i++) out[i] = (q[i] - zp[c]) * scale[c];
  }
}

// ---- data ---------------------------------------------------------------------------------------

function makeData(n) {
  const rand = rng(0x5eed + n);
  const x = new Float32Array(n);
  // Mostly within range, ~2% saturating, and every 64th element an exact rounding tie for the
  // per-tensor scale (k + 0.5) * s, s a power of two.
  for (let i = 0; i < n; i++) x[i] = (rand() * 2 - 1) * 2.1;
  const sTensor = 2 / 128; // 0.015625: ties are exact
  for (let i = 0; i < n; i += 64) x[i] = (Math.floor(rand() * 200) - 100 + 0.5) * sTensor;
  const zTensor = -3;
  const scaleC = new Float32Array(C);
  const zpC = new Int8Array(C);
  for (let c = 0; c < C; c++) {
    scaleC[c] = Math.fround(0.004 + 0.013 * rand()); // arbitrary, non power of two
    zpC[c] = (c % 23) - 11;
  }
  return { x, sTensor, zTensor, scaleC, zpC };
}

// ---- measurement helpers -----------------------------------------------------------------------

function compare(a, b) {
  let mismatches = 0;
  let maxDiff = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
      mismatches++;
      const d = Math.abs(a[i] - b[i]);
      if (d > maxDiff) maxDiff = d;
      if (first < 0) first = i;
    }
  }
  return { mismatches, maxDiff, firstIndex: first };
}

const gbps = (bytes, ns) => bytes / ns; // bytes per ns == GB/s

function result(bytes, t) {
  return { ns: t.ns, gbps: gbps(bytes, t.ns), samples: t.samples, batch: t.batch };
}

async function ortSession(model) {
  return ort.InferenceSession.create(model, ORT_SESSION_OPTIONS);
}

// ---- per-size bandwidth ------------------------------------------------------------------------------

const sizes = [];
const errors = [];

for (const n of SIZES) {
  const B = budget(n);
  const R = n / C;
  const d = makeData(n);
  const bytes = 5 * n; // 4n f32 + n int8, either direction

  // memcpy references: TypedArray.set of same-typed arrays and Buffer.copy are both a memmove;
  // the faster of the two (f32-sized: 4n bytes copied, 8n counted) is timed beside every variant.
  const src32 = new Uint8Array(d.x.buffer);
  const dst32 = new Uint8Array(4 * n);
  const src8 = new Uint8Array(n).fill(7);
  const dst8 = new Uint8Array(n);
  const bsrc = Buffer.from(d.x.buffer);
  const bdst = Buffer.from(dst32.buffer);
  const mt = await timeInterleaved([
    { name: 'set', fn: () => dst32.set(src32) },
    { name: 'copy', fn: () => bsrc.copy(bdst) },
    { name: 'i8', fn: () => dst8.set(src8) },
  ], { ...B, minTimeNs: B.minTimeNs / 2 });
  const memcpyKind = mt.copy.ns < mt.set.ns ? 'Buffer.copy' : 'TypedArray.set';
  const memcpyFn = mt.copy.ns < mt.set.ns ? () => bsrc.copy(bdst) : () => dst32.set(src32);
  const memcpy = {
    kind: memcpyKind,
    f32Set: result(8 * n, mt.set),
    f32BufferCopy: result(8 * n, mt.copy),
    i8Set: result(2 * n, mt.i8),
  };

  // dequantize inputs: the quantized data of each granularity (computed by the JS reference)
  const qTensor = new Int8Array(n);
  jsQuantTensor(d.x, d.sTensor, d.zTensor, -128, 127, qTensor);
  const qInner = new Int8Array(n);
  jsQuantInner(d.x, R, C, d.scaleC, d.zpC, -128, 127, qInner);

  const variants = [
    {
      id: 'quantize/per-tensor', op: 'quantize', label: 'quantize per-tensor f32->s8',
      shape: [n], scale: d.sTensor, zp: d.zTensor, input: d.x,
      qk: (out) => K.quantizeLinear(d.x, d.sTensor, d.zTensor, { dtype: 'int8', out }),
      js: (out) => jsQuantTensor(d.x, d.sTensor, d.zTensor, -128, 127, out),
    },
    {
      id: 'quantize/per-axis-inner', op: 'quantize', label: `quantize per-axis, innermost ([${fmtElems(R)},${C}] axis 1)`,
      shape: [R, C], axis: 1, scale: d.scaleC, zp: d.zpC, input: d.x,
      qk: (out) => K.quantizeLinear(d.x, d.scaleC, d.zpC, { shape: [R, C], axis: 1, dtype: 'int8', out }),
      js: (out) => jsQuantInner(d.x, R, C, d.scaleC, d.zpC, -128, 127, out),
    },
    {
      id: 'quantize/per-axis-0', op: 'quantize', label: `quantize per-axis, axis 0 ([${C},${fmtElems(R)}])`,
      shape: [C, R], axis: 0, scale: d.scaleC, zp: d.zpC, input: d.x,
      qk: (out) => K.quantizeLinear(d.x, d.scaleC, d.zpC, { shape: [C, R], axis: 0, dtype: 'int8', out }),
      js: (out) => jsQuantOuter(d.x, C, R, d.scaleC, d.zpC, -128, 127, out),
    },
    {
      id: 'dequantize/per-tensor', op: 'dequantize', label: 'dequantize per-tensor s8->f32',
      shape: [n], scale: d.sTensor, zp: d.zTensor, input: qTensor,
      qk: (out) => K.dequantizeLinear(qTensor, d.sTensor, d.zTensor, { dtype: 'int8', out }),
      qkAlloc: () => K.dequantizeLinear(qTensor, d.sTensor, d.zTensor, { dtype: 'int8' }),
      js: (out) => jsDequantTensor(qTensor, d.sTensor, d.zTensor, out),
    },
    {
      id: 'dequantize/per-axis-inner', op: 'dequantize', label: `dequantize per-axis, innermost ([${fmtElems(R)},${C}] axis 1)`,
      shape: [R, C], axis: 1, scale: d.scaleC, zp: d.zpC, input: qInner,
      qk: (out) => K.dequantizeLinear(qInner, d.scaleC, d.zpC, { shape: [R, C], axis: 1, dtype: 'int8', out }),
      js: (out) => jsDequantInner(qInner, R, C, d.scaleC, d.zpC, out),
    },
  ];

  const vres = [];
  for (const v of variants) {
    const isQ = v.op === 'quantize';
    const mkOut = () => (isQ ? new Int8Array(n) : new Float32Array(n));
    const r = { id: v.id, label: v.label, op: v.op, shape: v.shape, axis: v.axis ?? null, bytes, results: {}, verify: {} };

    // quantkit (with a reusable out)
    const qkOut = mkOut();
    let qkOk = true;
    try {
      v.qk(qkOut);
    } catch (e) {
      qkOk = false;
      r.results.quantkit = { error: e.message };
      errors.push(`${fmtElems(n)} ${v.id}: quantkit threw: ${e.message}`);
    }

    // JS reference
    const jsOut = mkOut();
    v.js(jsOut);
    if (qkOk) r.verify.js = compare(qkOut, jsOut);

    // ORT
    let sess = null;
    let ortOut = null;
    let feeds = null;
    let fetches = null;
    if (ort) {
      try {
        const model = (isQ ? quantizeLinearModel : dequantizeLinearModel)({
          shape: v.shape, scale: v.scale, zeroPoint: v.zp, axis: v.axis ?? 1, signed: true,
        });
        sess = await ortSession(model);
        feeds = { x: new ort.Tensor(isQ ? 'float32' : 'int8', v.input, v.shape) };
        ortOut = mkOut();
        fetches = { y: new ort.Tensor(isQ ? 'int8' : 'float32', ortOut, v.shape) };
        const res = await sess.run(feeds); // allocating path, for the check
        await sess.run(feeds, fetches); // writes ortOut
        const a = compare(res.y.data, ortOut);
        if (a.mismatches) errors.push(`${fmtElems(n)} ${v.id}: ORT's preallocated and allocated outputs differ (${a.mismatches})`);
        if (qkOk) r.verify.ort = compare(qkOut, ortOut);
        r.verify.jsVsOrt = compare(jsOut, ortOut);
      } catch (e) {
        r.results.ort = { error: e.message };
        errors.push(`${fmtElems(n)} ${v.id}: ORT failed: ${e.message.split('\n')[0]}`);
        sess = null;
      }
    }
    for (const [who, c] of Object.entries(r.verify)) {
      if (c.mismatches) {
        errors.push(`${fmtElems(n)} ${v.id}: ${who === 'jsVsOrt' ? 'JS vs ORT' : `quantkit vs ${who === 'ort' ? 'ORT' : 'JS'}`}: ` +
          `${c.mismatches} of ${n} elements differ (max |diff| ${c.maxDiff}, first at ${c.firstIndex})`);
      }
    }

    // timing: all contestants of this variant interleaved, round by round
    const contestants = [];
    if (qkOk) contestants.push({ name: 'quantkit', fn: () => v.qk(qkOut) });
    contestants.push({ name: 'memcpy', fn: memcpyFn });
    if (sess) {
      contestants.push({ name: 'ortPrealloc', fn: () => sess.run(feeds, fetches), async: true });
      contestants.push({ name: 'ortAlloc', fn: () => sess.run(feeds), async: true });
    }
    contestants.push({ name: 'js', fn: () => v.js(jsOut) });
    if (qkOk && v.qkAlloc) contestants.push({ name: 'quantkitAlloc', fn: v.qkAlloc });
    const t = await timeInterleaved(contestants, B);
    for (const c of contestants) {
      r.results[c.name] = result(c.name === 'memcpy' ? 8 * n : bytes, t[c.name]);
    }
    if (sess) await sess.release();

    // ratios
    const q = r.results.quantkit?.gbps;
    const ortBest = Math.max(r.results.ortPrealloc?.gbps ?? 0, r.results.ortAlloc?.gbps ?? 0) || undefined;
    r.ratios = {
      memcpy: q !== undefined ? q / r.results.memcpy.gbps : undefined,
      ort: q !== undefined && ortBest ? q / ortBest : undefined,
      js: q !== undefined ? q / r.results.js.gbps : undefined,
      quantkitAllocVsMemcpy: r.results.quantkitAlloc ? r.results.quantkitAlloc.gbps / r.results.memcpy.gbps : undefined,
      quantkitAllocVsOrt: r.results.quantkitAlloc && ortBest ? r.results.quantkitAlloc.gbps / ortBest : undefined,
    };
    vres.push(r);
    if (global.gc) global.gc();
  }
  sizes.push({ n, memcpy, variants: vres });
}

// ---- per-call overhead on 64 elements ------------------------------------------------------------

const overhead = {};
{
  const n = OVERHEAD_N;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (i - 32) * 0.37;
  const s = 0.05;
  const z = 0;
  const qOut = new Int8Array(n);
  const fOut = new Float32Array(n);
  const q = new Int8Array(n);
  for (let i = 0; i < n; i++) q[i] = i * 3 - 96;
  try {
    overhead.quantizeLinear = timeSync(() => K.quantizeLinear(x, s, z, { dtype: 'int8', out: qOut }), CALL);
  } catch (e) {
    overhead.quantizeLinear = { error: e.message };
  }
  try {
    overhead.dequantizeLinear = timeSync(() => K.dequantizeLinear(q, s, z, { dtype: 'int8', out: fOut }), CALL);
  } catch (e) {
    overhead.dequantizeLinear = { error: e.message };
  }
  try {
    overhead.dequantizeLinearAlloc = timeSync(() => K.dequantizeLinear(q, s, z, { dtype: 'int8' }), CALL);
  } catch (e) {
    overhead.dequantizeLinearAlloc = { error: e.message };
  }
  if (!K.raw) {
    // The raw addon under the public API (no JS-side checks): what the API layer itself costs.
    try {
      const b = loadRawBinding();
      overhead.rawQuantize = timeSync(() => b.quantize(x, qOut, s, z, 0, 1, 1, n, 0, 0, -128, 127, 0), CALL);
      overhead.rawDequantize = timeSync(() => b.dequantize(q, fOut, s, z, true, 0, 1, 1, n, 0, 0), CALL);
    } catch (e) {
      overhead.rawQuantize = { error: e.message };
    }
  }
  if (ort) {
    const ASYNC = { ...CALL, warmup: Math.ceil(CALL.warmup / 10), minTimeNs: CALL.minTimeNs / 2, maxSamples: Math.min(CALL.maxSamples, 101) };
    for (const [name, model, feed, outT] of [
      ['ortQuantize', quantizeLinearModel({ shape: [n], scale: s, zeroPoint: z }), new ort.Tensor('float32', x, [n]), new ort.Tensor('int8', new Int8Array(n), [n])],
      ['ortDequantize', dequantizeLinearModel({ shape: [n], scale: s, zeroPoint: z }), new ort.Tensor('int8', q, [n]), new ort.Tensor('float32', new Float32Array(n), [n])],
    ]) {
      try {
        const sess = await ortSession(model);
        const feeds = { x: feed };
        overhead[name + 'Run'] = await timeAsync(() => sess.run(feeds), ASYNC);
        overhead[name + 'RunPrealloc'] = await timeAsync(() => sess.run(feeds, { y: outT }), ASYNC);
        await sess.release();
        if (ortL.binding) {
          // The addon's synchronous run() under the public async session.run (internal API):
          // ORT's own cost without the setImmediate + promise hop.
          const S = new ortL.binding.InferenceSession();
          S.loadModel(model.buffer, model.byteOffset, model.byteLength, ORT_SESSION_OPTIONS);
          overhead[name + 'BindingSync'] = timeSync(() => S.run(feeds, { y: outT }, {}), CALL);
          S.dispose?.();
        }
      } catch (e) {
        overhead[name + 'Run'] = { error: e.message };
      }
    }
  }
}

// ---- targets ----------------------------------------------------------------------------------------

// The targets are stated for 16M elements on one thread; the 64K rows are information
// (there memcpy runs from L2 at ~100 GB/s, a different regime).
const targets = [];
const largest = Math.max(...sizes.map((s) => s.n));
for (const sz of sizes.filter((s) => s.n === largest)) {
  const tag = fmtElems(sz.n);
  for (const v of sz.variants) {
    if (v.ratios.memcpy !== undefined) {
      targets.push({ name: `${tag} ${v.id}: quantkit >= ${T.memcpy}x memcpy`, value: v.ratios.memcpy, threshold: T.memcpy, pass: v.ratios.memcpy >= T.memcpy });
    }
  }
  const at = (id) => sz.variants.find((v) => v.id === id);
  const ortT = (id, th, what) => {
    const r = at(id)?.ratios.ort;
    targets.push({ name: `${tag} ${what}: quantkit >= ${th}x ORT`, value: r ?? null, threshold: th, pass: r === undefined ? null : r >= th });
  };
  ortT('quantize/per-tensor', T.qTensorOrt, 'quantize per-tensor');
  ortT('dequantize/per-tensor', T.dqOrt, 'dequantize per-tensor');
  ortT('dequantize/per-axis-inner', T.dqOrt, 'dequantize per-axis innermost');
  ortT('quantize/per-axis-inner', T.qInnerOrt, 'quantize per-axis innermost');
}
for (const [k, label] of [['quantizeLinear', 'quantizeLinear'], ['dequantizeLinear', 'dequantizeLinear']]) {
  const ns = overhead[k]?.ns;
  targets.push({ name: `${label} on ${OVERHEAD_N} elements (with out) < ${T.callNs} ns per call`, value: ns ?? null, threshold: T.callNs, pass: ns === undefined ? null : ns < T.callNs });
}

// ---- report --------------------------------------------------------------------------------------------

const verdict = (p) => (p === null ? 'n/a' : p ? 'PASS' : 'MISS');
const checkCell = (v) => {
  const parts = [];
  if (v.verify.ort) parts.push(v.verify.ort.mismatches ? `ORT:${v.verify.ort.mismatches} differ` : '=ORT');
  if (v.verify.js) parts.push(v.verify.js.mismatches ? `JS:${v.verify.js.mismatches} differ` : '=JS');
  return parts.join(' ') || '-';
};

for (const sz of sizes) {
  const mib = (b) => `${(b / 1048576).toFixed(b >= 1048576 ? 0 : 2)} MiB`;
  say(`== ${fmtElems(sz.n)} elements: each op reads + writes ${mib(5 * sz.n)} (f32 ${mib(4 * sz.n)} + int8 ${mib(sz.n)}); GB/s = 1e9 bytes/s ==`);
  say(`memcpy reference: copy of the f32 tensor (${mib(4 * sz.n)} copied, ${mib(8 * sz.n)} counted read+write) with ${sz.memcpy.kind}, ` +
    `re-timed beside each variant (the memcpy column). Up front: TypedArray.set ${fmt(sz.memcpy.f32Set.gbps)}, ` +
    `Buffer.copy ${fmt(sz.memcpy.f32BufferCopy.gbps)} GB/s; int8-sized copy (${mib(sz.n)}) ${fmt(sz.memcpy.i8Set.gbps)} GB/s (info)`);
  const rows = [];
  for (const v of sz.variants) {
    const R = v.results;
    rows.push([
      v.label, fmt(R.quantkit?.gbps), fmt(R.memcpy?.gbps), fmt(R.ortPrealloc?.gbps), fmt(R.ortAlloc?.gbps), fmt(R.js?.gbps),
      fmt(v.ratios.memcpy), fmt(v.ratios.ort), fmt(v.ratios.js), checkCell(v),
    ]);
    if (R.quantkitAlloc) {
      rows.push([
        '  same, quantkit WITHOUT out (allocates)', fmt(R.quantkitAlloc.gbps), '', '', '', '',
        fmt(v.ratios.quantkitAllocVsMemcpy), fmt(v.ratios.quantkitAllocVsOrt), fmt(R.quantkitAlloc.gbps / R.js.gbps), '',
      ]);
    }
  }
  say(table(
    ['variant (GB/s)', 'quantkit(out)', 'memcpy', 'ORT prealloc', 'ORT alloc', 'JS loop', 'qk/memcpy', 'qk/ORT', 'qk/JS', 'check'],
    rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
  ));
  say('');
}
say(`quantkit(out): reusable output passed as opts.out. ORT prealloc: session.run(feeds, { y: preallocated Tensor }) ` +
  `(ORT writes into it, but onnxruntime-node still returns a new copy); ORT alloc: session.run(feeds). ` +
  `qk/ORT uses the faster of the two ORT columns. JS loop: Math.fround(x / s) rounded with the 1.5*2^52 trick (ties to even), writes into a reused array.`);
say('');

const ns = (k) => (overhead[k]?.ns !== undefined ? `${fmt(overhead[k].ns, 0)} ns` : overhead[k]?.error ? `error: ${overhead[k].error}` : '-');
say(`== per-call overhead, ${OVERHEAD_N} elements, per-tensor int8 (median over samples of ~${CALL.sampleNs / 1e6} ms of back-to-back calls, nothing subtracted) ==`);
say(table(['call', 'quantize', 'dequantize'], [
  ['quantkit quantizeLinear / dequantizeLinear with out', ns('quantizeLinear'), ns('dequantizeLinear')],
  ['quantkit dequantizeLinear without out (allocates)', '', ns('dequantizeLinearAlloc')],
  ...(overhead.rawQuantize ? [['quantkit raw addon quantize()/dequantize() under the API (info)', ns('rawQuantize'), ns('rawDequantize')]] : []),
  ['ORT await session.run(feeds)', ns('ortQuantizeRun'), ns('ortDequantizeRun')],
  ['ORT await session.run(feeds, {y: prealloc})', ns('ortQuantizeRunPrealloc'), ns('ortDequantizeRunPrealloc')],
  ['ORT binding run(), synchronous (internal API, info)', ns('ortQuantizeBindingSync'), ns('ortDequantizeBindingSync')],
], ['l', 'r', 'r']));
say('');

say('== targets ==');
say(table(['target', 'measured', 'verdict'], targets.map((t) => [
  t.name, t.value === null ? '-' : t.name.includes(' ns ') ? `${fmt(t.value, 0)} ns` : `${fmt(t.value)}x`, verdict(t.pass),
]), ['l', 'r', 'l']));
const pass = targets.filter((t) => t.pass === true).length;
const miss = targets.filter((t) => t.pass === false).length;
say(`${pass} PASS, ${miss} MISS${targets.some((t) => t.pass === null) ? `, ${targets.filter((t) => t.pass === null).length} n/a` : ''}` +
  (cpu.selected && Object.values(cpu.selected).includes('scalar') ? ' (note: some quantkit kernels are on the scalar path)' : ''));
if (!ort) say(`\n${ORT_INSTALL_HINT}`);
if (errors.length) {
  say('\n== problems ==');
  for (const e of errors) say(`- ${e}`);
}

if (JSON_OUT) {
  console.log(JSON.stringify({ meta, targetsSpec: T, sizes, overhead, targets, errors }, (k, v) => (v === undefined ? null : v), 2));
}
