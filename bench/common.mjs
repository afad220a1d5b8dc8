// Shared helpers for the benchmarks: loading quantkit (public API or raw binding) and
// onnxruntime-node, deterministic data, timing (median of repeated runs after warm-up; timeHot for
// libraries with thread pools timed side by side) and table formatting.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));

// ---- quantkit ---------------------------------------------------------------------------

/**
 * Load quantkit: the public API from dist/esm/index.mjs when it is built, else (or with
 * forceRaw: bench/quantize.mjs --raw, which measures the cost of the API layer) a thin adapter
 * over the raw addon (build/Release/quantkit.node) with the call shape of quantizeLinear /
 * dequantizeLinear.
 * @returns {Promise<{api: object, source: string, note?: string}>}
 */
export async function loadQuantkit({ forceRaw = false } = {}) {
  const dist = path.join(root, 'dist/esm/index.mjs');
  let note;
  if (forceRaw) {
    note = 'forced by --raw';
  } else if (existsSync(dist)) {
    try {
      const m = await import(pathToFileURL(dist).href);
      if (typeof m.quantizeLinear === 'function' && typeof m.dequantizeLinear === 'function') {
        return { api: m, source: 'public API (dist/esm/index.mjs)' };
      }
      note = 'dist/esm/index.mjs has no quantizeLinear/dequantizeLinear yet';
    } catch (e) {
      note = `dist/esm/index.mjs failed to load: ${e.message.split('\n')[0]}`;
    }
  } else {
    note = 'dist/ not built (npm run build:ts)';
  }
  const binding = loadRawBinding();
  return { api: rawAdapter(binding), source: 'raw binding (build/Release/quantkit.node)', note };
}

export function loadRawBinding() {
  const built = path.join(root, 'build/Release/quantkit.node');
  if (existsSync(built)) return require(built);
  try {
    return require('node-gyp-build')(root);
  } catch (e) {
    throw new Error(`quantkit native addon not found: build it with \`npm run build:native\` (${e.message})`);
  }
}

const RANGES = { int8: [-128, 127], uint8: [0, 255] };

/** Map (shape, axis, scale) to the addon's [outer, axisDim, inner] view. */
function geometry(n, scale, opts = {}) {
  const shape = opts.shape ?? [n];
  const perAxis = typeof scale !== 'number' && !(scale.length === 1 && opts.axis === undefined);
  if (!perAxis) return { outer: 1, axisDim: 1, inner: n, gran: 0 };
  let axis = opts.axis ?? 1;
  if (axis < 0) axis += shape.length;
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return { outer, axisDim: shape[axis], inner, gran: 1 };
}

/** The public API's call shape over the raw addon (byte dtypes only; what the bench needs). */
function rawAdapter(b) {
  return {
    raw: b,
    setNumThreads: (n) => b.setNumThreads(n),
    getNumThreads: () => b.getNumThreads(),
    cpuInfo: () => b.cpuInfo(),
    quantizeLinear(x, scale, zeroPoint = 0, opts = {}) {
      const dtype = opts.dtype ?? (zeroPoint instanceof Uint8Array ? 'uint8' : 'int8');
      const [qmin, qmax] = RANGES[dtype];
      const g = geometry(x.length, scale, opts);
      const out = opts.out ?? (dtype === 'uint8' ? new Uint8Array(x.length) : new Int8Array(x.length));
      b.quantize(x, out, scale, zeroPoint, 0, g.outer, g.axisDim, g.inner, g.gran, 0, qmin, qmax, 0);
      return out;
    },
    dequantizeLinear(q, scale, zeroPoint = 0, opts = {}) {
      const g = geometry(q.length, scale, opts);
      const out = opts.out ?? new Float32Array(q.length);
      const signed = opts.dtype ? opts.dtype === 'int8' : q instanceof Int8Array;
      b.dequantize(q, out, scale, zeroPoint, signed, 0, g.outer, g.axisDim, g.inner, g.gran, 0);
      return out;
    },
  };
}

// ---- onnxruntime-node -------------------------------------------------------------------

export const ORT_VERSION = '1.30.0';
export const ORT_INSTALL_HINT =
  `onnxruntime-node is not installed; for the ORT columns run:\n` +
  `  ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node@${ORT_VERSION} --ignore-scripts\n` +
  `(the CPU binary ships inside the npm package; the skipped install script only fetches CUDA files)`;

/** @returns {{ort: object|null, binding: object|null, version?: string, error?: string}} */
export function loadOrt() {
  try {
    const ort = require('onnxruntime-node');
    let binding = null;
    try {
      binding = require('onnxruntime-node/dist/binding').binding; // internal: synchronous run()
    } catch {
      binding = null;
    }
    let version;
    try {
      version = require('onnxruntime-node/package.json').version;
    } catch {
      version = ort.env?.versions?.node;
    }
    return { ort, binding, version };
  } catch (e) {
    return { ort: null, binding: null, error: e.message.split('\n')[0] };
  }
}

export const ORT_SESSION_OPTIONS = Object.freeze({
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});

/** ORT_SESSION_OPTIONS with `threads` intra-op threads. */
export const ortOptions = (threads) => ({ ...ORT_SESSION_OPTIONS, intraOpNumThreads: threads });

// onnxruntime's intra-op worker threads spin-wait for a while after each run (its default
// session.intra_op.allow_spinning), holding a CPU: on a 2-CPU machine the contestant timed right
// after an ORT sample would run at half speed on 2 threads. With more than one thread every ORT
// sample is therefore followed by an untimed pause (a contestant's `after` hook) so the spinning
// ends before the next contestant starts; ORT keeps its default settings.
export const ORT_SPIN_PAUSE_MS = 60;
export const ortAfter = (threads) => (threads > 1 ? () => new Promise((r) => setTimeout(r, ORT_SPIN_PAUSE_MS)) : undefined);

// ---- data ---------------------------------------------------------------------------------

/** xorshift32 PRNG returning floats in [0, 1). */
export function rng(seed = 0x9e3779b9) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** The CPU's model name (Linux /proc/cpuinfo, else os.cpus()), to print beside every table. */
export function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch { /* not Linux */ }
  return os.cpus()[0]?.model?.trim() ?? 'unknown CPU';
}

// ---- timing -------------------------------------------------------------------------------

const now = () => Number(process.hrtime.bigint()); // ns

export function median(a) {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// The loop of timeSync / timeAsync, written once: it yields how many calls to run (the caller
// runs them, awaited or not) and times each yield.
function* timingSteps({ warmup = 2, sampleNs = 2e6, minSamples = 5, maxSamples = 31, minTimeNs = 3e8, maxTimeNs = 4e9 } = {}) {
  let t0 = now();
  yield warmup;
  const per = Math.max(1, (now() - t0) / Math.max(1, warmup));
  const batch = Math.max(1, Math.round(sampleNs / per));
  const samples = [];
  const start = now();
  while (samples.length < maxSamples) {
    t0 = now();
    yield batch;
    samples.push((now() - t0) / batch);
    const el = now() - start;
    if (samples.length >= minSamples && (el >= minTimeNs || el >= maxTimeNs)) break;
  }
  return { ns: median(samples), samples: samples.length, batch };
}

/**
 * Time a synchronous function: warm-up, then samples of `batch` calls each (batch picked so a
 * sample lasts about `sampleNs`), until `minSamples` samples and `minTimeNs` elapsed, or
 * `maxSamples`. Returns the median time per call in ns and the sample count.
 */
export function timeSync(fn, budget) {
  const steps = timingSteps(budget);
  for (let r = steps.next(); ; r = steps.next()) {
    if (r.done) return r.value;
    for (let i = 0; i < r.value; i++) fn();
  }
}

/** Same as timeSync for a function returning a promise (each call awaited in turn). */
export async function timeAsync(fn, budget) {
  const steps = timingSteps(budget);
  for (let r = steps.next(); ; r = steps.next()) {
    if (r.done) return r.value;
    for (let i = 0; i < r.value; i++) await fn();
  }
}

/**
 * Time several contestants interleaved: after each one's warm-up, every round takes one sample
 * (a batch of calls lasting about `sampleNs`) of each contestant in turn, so slow drifts of a
 * shared machine hit them alike and their ratios stay meaningful. Rounds continue until
 * `minSamples` rounds and `minTimeNs` elapsed, or `maxSamples` rounds, or `maxTimeNs`.
 * Contestants with `async: true` are awaited call by call.
 * @param {{name: string, fn: () => any, async?: boolean}[]} contestants
 * @returns {Promise<Record<string, {ns: number, samples: number, batch: number}>>} median ns per call
 */
export async function timeInterleaved(contestants, budget = {}) {
  const r = await timeInterleavedStats(contestants, budget);
  const out = {};
  for (const [name, { ns, samples, batch }] of Object.entries(r)) out[name] = { ns, samples, batch };
  return out;
}

// ---- formatting -----------------------------------------------------------------------------

export function fmtElems(n) {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n >> 20}M`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n >> 10}K`;
  return String(n);
}

export const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));

/** Render rows (arrays of strings) as an aligned text table with a header row. */
export function table(header, rows, align) {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const cell = (s, i) => {
    s = String(s ?? '');
    return (align?.[i] ?? 'l') === 'r' ? s.padStart(w[i]) : s.padEnd(w[i]);
  };
  const line = (r) => r.map(cell).join('  ').trimEnd();
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * timeInterleaved, also returning each contestant's fastest sample (`minNs`) beside the median
 * (`ns`): on a shared machine the fastest sample is the better estimate of the uncontended speed,
 * the median of the typical one. Same options and rounds as timeInterleaved. A contestant may
 * have an `after` function (awaited, not timed) run after each of its samples, e.g. a pause that
 * lets a library's spinning worker threads go to sleep before the next contestant is timed.
 * @returns {Promise<Record<string, {ns: number, minNs: number, samples: number, batch: number}>>}
 */
export async function timeInterleavedStats(contestants, { warmup = 2, sampleNs = 2e6, minSamples = 5, maxSamples = 31, minTimeNs = 3e8, maxTimeNs = 2e10 } = {}) {
  const batches = [];
  for (const c of contestants) {
    const half = Math.ceil(warmup / 2);
    for (let i = 0; i < warmup - half; i++) { if (c.async) await c.fn(); else c.fn(); }
    const t0 = now();
    for (let i = 0; i < half; i++) { if (c.async) await c.fn(); else c.fn(); }
    const per = Math.max(1, (now() - t0) / half);
    batches.push(Math.max(1, Math.round(sampleNs / per)));
  }
  const samples = contestants.map(() => []);
  const start = now();
  for (let round = 0; round < maxSamples; round++) {
    for (let k = 0; k < contestants.length; k++) {
      const { fn } = contestants[k];
      const batch = batches[k];
      const t0 = now();
      if (contestants[k].async) for (let i = 0; i < batch; i++) await fn();
      else for (let i = 0; i < batch; i++) fn();
      samples[k].push((now() - t0) / batch);
      if (contestants[k].after) await contestants[k].after();
    }
    const el = now() - start;
    if ((round + 1 >= minSamples && el >= minTimeNs) || el >= maxTimeNs) break;
  }
  const out = {};
  contestants.forEach((c, k) => {
    out[c.name] = { ns: median(samples[k]), minNs: Math.min(...samples[k]), samples: samples[k].length, batch: batches[k] };
  });
  return out;
}

/**
 * timeInterleavedStats with every sample taken hot: the form to use when libraries with their own
 * thread pools are timed side by side (bench/gemm.mjs, bench/models.mjs).
 * - Each contestant is first warmed up alone for about `warmMs` (chunks of 4 calls, at least 3
 *   chunks), then its `after` hook runs (for ORT at 2 threads: the pause that lets its spinning
 *   workers go to sleep). Its time per call is the fastest of the last half of those chunks, so
 *   the estimate is neither a cold first call nor slowed by another library's spinning threads.
 * - From that estimate the calls per sample are fixed (n, about `sampleNs`) and each contestant
 *   runs as one function of n calls, so timeInterleavedStats takes one such sample per
 *   contestant per round (rounds interleave the contestants; same stop rules).
 * - Between samples, in the untimed `after` hook, once the previous contestant's own `after` is
 *   over, the NEXT contestant runs untimed calls for about `prerollMs` (at least `minPreroll`
 *   calls): after a pause a 2-thread pool is asleep, and on a 2-vCPU VM the first calls of a pool
 *   woken from idle run several times slower (quantkit's pool spins only ~50 µs before sleeping,
 *   ORT's ~25 ms). So every contestant is measured in the state of back-to-back calls, as a busy
 *   service would run it.
 * Order: the rounds start right after the warm-up calls of the last contestant, without its
 * `after` hook, so put contestants whose workers spin long after a run (ORT) first.
 * @param {{name: string, fn: () => any, async?: boolean, after?: () => any}[]} contestants
 * @param {{warmMs?: number, prerollMs?: number, minPreroll?: number, sampleNs?: number,
 *   minSamples?: number, maxSamples?: number, minTimeNs?: number, maxTimeNs?: number}} budget
 *   warmMs / prerollMs in ms (default 60 / 3); the rest as timeInterleavedStats (warmup is ignored)
 * @returns {Promise<Record<string, {ns: number, minNs: number, samples: number, batch: number}>>}
 *   median and fastest-sample ns per call, the number of samples, and the calls per sample
 */
export async function timeHot(contestants, { warmMs = 60, prerollMs = 3, minPreroll = 2, ...budget } = {}) {
  const sampleNs = budget.sampleNs ?? 2e6;
  const wrapped = [];
  for (const c of contestants) {
    const one = c.async ? async () => { await c.fn(); } : () => { c.fn(); };
    const chunks = [];
    const start = now();
    while (now() - start < warmMs * 1e6 || chunks.length < 3) {
      const t0 = now();
      for (let i = 0; i < 4; i++) { if (c.async) await one(); else one(); }
      chunks.push((now() - t0) / 4);
    }
    if (c.after) await c.after();
    const per = Math.min(...chunks.slice(-Math.ceil(chunks.length / 2)));
    const n = Math.max(1, Math.round(sampleNs / per));
    const pre = Math.max(minPreroll, Math.ceil((prerollMs * 1e6) / per));
    const fn = c.async
      ? async () => { for (let i = 0; i < n; i++) await c.fn(); }
      : () => { for (let i = 0; i < n; i++) c.fn(); };
    const preroll = async () => { for (let i = 0; i < pre; i++) { if (c.async) await c.fn(); else c.fn(); } };
    wrapped.push({ name: c.name, fn, async: c.async, n, own: c.after, preroll });
  }
  wrapped.forEach((w, k) => {
    const next = wrapped[(k + 1) % wrapped.length];
    w.after = async () => {
      if (w.own) await w.own();
      await next.preroll();
    };
  });
  // warmup 1: one call of each fn (n calls) before the rounds; sampleNs 1: one fn call per sample
  const r = await timeInterleavedStats(wrapped, { ...budget, warmup: 1, sampleNs: 1 });
  const out = {};
  for (const w of wrapped) {
    const x = r[w.name];
    out[w.name] = { ns: x.ns / w.n, minNs: x.minNs / w.n, samples: x.samples, batch: w.n };
  }
  return out;
}
