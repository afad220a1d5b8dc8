// Behaviour of the calibration observers: the shared interface (observe / calculateQParams /
// reset / stats / toJSON / fromJSON / merge), pinned argument errors, and known-answer tests of
// the percentile, MSE, entropy and softmax cross-entropy searches against straightforward float64
// reference implementations written here.
import { describe, expect, it } from 'vitest';
import { rng } from './helpers';
import {
  EntropyObserver, HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
  MSEObserver, Observer, PercentileObserver, PerChannelMinMaxObserver, SoftmaxCrossEntropyObserver,
} from '../lib/observers/index';
import { computeQParams, cpuInfo, fakeQuantize, roundHalfEven, setIsa } from '../lib/index';
import { native as nativeObserve } from '../lib/binding'; // the raw addon: these tests pin its own checks
import { qparamsOne } from '../lib/qparams';
import { resolveSpec, QuantSpec } from '../lib/spec';

// ---- deterministic data -----------------------------------------------------------------------

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-300)) * Math.cos(2 * Math.PI * r());
}
function gaussian(n: number, seed: number, sigma = 1, mean = 0): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = mean + sigma * gauss(r);
  return x;
}
/** A Gaussian with a few large outliers: min-max wastes its range on them. */
function withOutliers(n: number, seed: number): Float32Array {
  const x = gaussian(n, seed);
  const r = rng(seed + 1);
  for (let k = 0; k < 6; k++) x[Math.floor(r() * n)] = (k % 2 ? -1 : 1) * (40 + 10 * r());
  return x;
}

// ---- float64 references -----------------------------------------------------------------------

type Spec = Partial<QuantSpec>;
function fq64(v: number, s: number, z: number, qmin: number, qmax: number): number {
  const q = Math.min(qmax, Math.max(qmin, roundHalfEven(v / s) + z));
  return (q - z) * s;
}
function mse64(x: Float32Array, scale: number, zp: number, spec: Spec): number {
  const { qmin, qmax } = resolveSpec('spec', spec);
  let e = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - fq64(x[i], scale, zp, qmin, qmax);
    e += d * d;
  }
  return e / x.length;
}
function mseOf(x: Float32Array, qp: { scale: Float32Array; zeroPoint: Int32Array }, spec: Spec): number {
  return mse64(x, qp.scale[0], qp.zeroPoint[0], spec);
}
/** Grid search on the raw data: symmetric ranges [-a, a], a = amax * k / G. */
function refMseSymmetric(x: Float32Array, spec: Spec, G: number): { a: number; mse: number } {
  const s = resolveSpec('spec', spec);
  let amax = 0;
  for (const v of x) amax = Math.max(amax, Math.abs(v));
  let best = { a: amax, mse: Infinity };
  for (let k = G; k >= 1; k--) {
    const a = (amax * k) / G;
    const [sc, z] = qparamsOne(Math.fround(-a), Math.fround(a), s);
    const m = mse64(x, sc, z, spec);
    if (m < best.mse) best = { a, mse: m };
  }
  return best;
}
/** numpy.percentile (linear) of |x|. */
function refPercentileAbs(x: Float32Array, p: number): number {
  const a = Float64Array.from(x, (v) => Math.abs(v)).sort();
  const pos = (p / 100) * (a.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(a.length - 1, lo + 1);
  return a[lo] + (pos - lo) * (a[hi] - a[lo]);
}
function refPercentile(x: Float32Array, p: number): number {
  const a = Float64Array.from(x).sort();
  const pos = (p / 100) * (a.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(a.length - 1, lo + 1);
  return a[lo] + (pos - lo) * (a[hi] - a[lo]);
}
/**
 * TensorRT entropy calibration, transcribed from NVIDIA pytorch-quantization's
 * _compute_amax_entropy (np.linspace / np.digitize / Counter, scipy.stats.entropy), without its
 * bins[0] = bins[1] tweak. Returns the chosen number of bins i.
 */
function refEntropyBins(bins: number[], levels: number, start: number): number {
  const n = bins.length;
  const div: number[] = [];
  const args: number[] = [];
  for (let i = start; i <= n; i++) {
    const space: number[] = [];
    for (let k = 0; k <= levels; k++) space.push(k * (i / levels));
    space[levels] = i;
    const dig: number[] = [];
    for (let j = 0; j < i; j++) {
      let d = 0;
      while (d < space.length && space[d] <= j) d++;
      dig.push(bins[j] === 0 ? -1 : d - 1);
    }
    const newCounts = new Array(levels).fill(0);
    const counter = new Map<number, number>();
    for (let j = 0; j < i; j++) {
      if (dig[j] !== -1) newCounts[dig[j]] += bins[j];
      counter.set(dig[j], (counter.get(dig[j]) ?? 0) + 1);
    }
    for (const [k, v] of counter) if (k !== -1) newCounts[k] /= v;
    const q = dig.map((d) => (d === -1 ? 0 : newCounts[d]));
    const p = bins.slice(0, i);
    p[i - 1] += bins.slice(i).reduce((a, b) => a + b, 0);
    const sp = p.reduce((a, b) => a + b, 0);
    const sq = q.reduce((a, b) => a + b, 0);
    let kl = 0;
    for (let j = 0; j < i; j++) {
      const pj = p[j] / sp;
      if (pj === 0) continue;
      const qj = q[j] / sq;
      kl = qj === 0 ? Infinity : kl + pj * Math.log(pj / qj);
    }
    div.push(kl);
    args.push(i);
  }
  let best = div.length - 1;
  for (let k = div.length - 1; k >= 0; k--) if (div[k] < div[best]) best = k;
  return args[best];
}
/** Mean over rows of KL(softmax(v) || softmax(fakeQuantize(v))), float64. */
function refSoftmaxKl(x: Float32Array, rows: number, C: number, s: number, z: number, qmin: number, qmax: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    let mq = -Infinity;
    const q = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      const v = x[r * C + c];
      q[c] = fq64(v, s, z, qmin, qmax);
      m = Math.max(m, v);
      mq = Math.max(mq, q[c]);
    }
    let zp = 0;
    let zq = 0;
    for (let c = 0; c < C; c++) {
      zp += Math.exp(x[r * C + c] - m);
      zq += Math.exp(q[c] - mq);
    }
    let kl = 0;
    for (let c = 0; c < C; c++) {
      const lp = x[r * C + c] - m - Math.log(zp);
      const lq = q[c] - mq - Math.log(zq);
      kl += Math.exp(lp) * (lp - lq);
    }
    total += kl;
  }
  return total / rows;
}
function argmaxAgreement(x: Float32Array, rows: number, C: number, y: Float32Array): number {
  let same = 0;
  for (let r = 0; r < rows; r++) {
    let a = 0;
    let b = 0;
    for (let c = 1; c < C; c++) {
      if (x[r * C + c] > x[r * C + a]) a = c;
      if (y[r * C + c] > y[r * C + b]) b = c;
    }
    if (a === b) same++;
  }
  return same / rows;
}

const SYM8: Spec = { scheme: 'symmetric', bits: 8, signed: true, range: 'restricted', formula: 'onnx' };
const ASYM8: Spec = { scheme: 'asymmetric', bits: 8, signed: false, formula: 'pytorch' };

const ALL: [string, (o?: Record<string, unknown>) => Observer][] = [
  ['MinMaxObserver', (o) => new MinMaxObserver(o)],
  ['MovingAverageMinMaxObserver', (o) => new MovingAverageMinMaxObserver(o)],
  ['PerChannelMinMaxObserver', (o) => new PerChannelMinMaxObserver(o)],
  ['MovingAveragePerChannelMinMaxObserver', (o) => new MovingAveragePerChannelMinMaxObserver(o)],
  ['HistogramObserver', (o) => new HistogramObserver(o)],
  ['PercentileObserver', (o) => new PercentileObserver(o)],
  ['MSEObserver', (o) => new MSEObserver({ gridSize: 40, ...o })],
  ['EntropyObserver', (o) => new EntropyObserver(o)],
  ['SoftmaxCrossEntropyObserver', (o) => new SoftmaxCrossEntropyObserver({ gridSize: 30, ...o })],
];

function sameQParams(a: { scale: Float32Array; zeroPoint: Int32Array; min: Float32Array; max: Float32Array }, b: typeof a): void {
  expect(Array.from(a.scale)).toEqual(Array.from(b.scale));
  expect(Array.from(a.zeroPoint)).toEqual(Array.from(b.zeroPoint));
  expect(Array.from(a.min)).toEqual(Array.from(b.min));
  expect(Array.from(a.max)).toEqual(Array.from(b.max));
}

// ---- the interface -------------------------------------------------------------------------------

describe('observer interface (every class)', () => {
  const shape = [8, 16];
  const A = gaussian(128, 1, 1.5, 0.2);
  const B = gaussian(128, 2, 3, -0.5);
  for (const [name, make] of ALL) {
    it(`${name}: observe, calculateQParams, stats with NaN / Inf, reset`, () => {
      const o = make(SYM8);
      const empty = o.calculateQParams();
      expect(empty.scale).toBeInstanceOf(Float32Array);
      expect(empty.zeroPoint).toBeInstanceOf(Int32Array);
      if (empty.scale.length) expect([empty.scale[0], empty.zeroPoint[0]]).toEqual([1, 0]);
      const x = A.slice();
      x[3] = NaN;
      x[7] = Infinity;
      x[9] = -Infinity;
      expect(o.observe(x, shape)).toBe(o);
      o.observe(B, shape);
      o.observe(new Float32Array(0), [0, 16]);
      expect(o.stats()).toEqual({ batches: 2, count: 256, nanCount: 1, infCount: 2 });
      const q = o.calculateQParams();
      for (let i = 0; i < q.scale.length; i++) {
        expect(q.scale[i]).toBeGreaterThan(0);
        expect(Number.isFinite(q.min[i]) && Number.isFinite(q.max[i])).toBe(true);
      }
      o.reset();
      expect(o.stats()).toEqual({ batches: 0, count: 0, nanCount: 0, infCount: 0 });
      o.observe(B, shape);
      const fresh = make(SYM8);
      fresh.observe(B, shape);
      sameQParams(o.calculateQParams(), fresh.calculateQParams());
    });

    it(`${name}: toJSON is plain JSON with a version, fromJSON rebuilds it (and it keeps observing alike)`, () => {
      const o = make(ASYM8);
      o.observe(A, shape);
      const s = o.toJSON();
      expect(s.version).toBe(1);
      expect(s.type).toBe(name);
      const text = JSON.stringify(s);
      expect(JSON.parse(text)).toEqual(s); // nothing lost in JSON: no typed arrays, no Infinity
      const back = Observer.fromJSON(JSON.parse(text));
      expect(back).toBeInstanceOf(o.constructor);
      sameQParams(back.calculateQParams(), o.calculateQParams());
      expect(back.stats()).toEqual(o.stats());
      back.observe(B, shape);
      o.observe(B, shape);
      sameQParams(back.calculateQParams(), o.calculateQParams());
      // an empty observer round-trips too
      const e = Observer.fromJSON(JSON.parse(JSON.stringify(make(ASYM8).toJSON())));
      sameQParams(e.calculateQParams(), make(ASYM8).calculateQParams());
    });

    it(`${name}: merge — observing A then B equals observing A and B in two observers and merging`, () => {
      const seq = make(SYM8);
      seq.observe(A, shape).observe(B, shape);
      const a = make(SYM8).observe(A, shape);
      const b = make(SYM8).observe(B, shape);
      expect(a.merge(b)).toBe(a);
      expect(a.stats()).toEqual(seq.stats());
      const qa = a.calculateQParams();
      const qs = seq.calculateQParams();
      if (/MinMax/.test(name)) {
        sameQParams(qa, qs); // exact
      } else {
        // histogram observers: exact when the shards share the histogram range (next test);
        // otherwise the other shard's histogram is re-binned: same qparams within a few %
        for (let i = 0; i < qa.scale.length; i++) expect(Math.abs(qa.scale[i] - qs.scale[i]) / qs.scale[i]).toBeLessThan(0.05);
      }
      // merging an empty observer changes nothing; merging into an empty one copies
      const c = make(SYM8).observe(A, shape);
      c.merge(make(SYM8));
      sameQParams(c.calculateQParams(), make(SYM8).observe(A, shape).calculateQParams());
      const d = make(SYM8).merge(make(SYM8).observe(A, shape));
      sameQParams(d.calculateQParams(), make(SYM8).observe(A, shape).calculateQParams());
    });

    it(`${name}: merge of different options or classes is an error`, () => {
      const a = make(SYM8);
      expect(() => a.merge(make({ ...SYM8, bits: 4 }))).toThrow(/^Expected an observer with the same options for other but received /);
      const other = name === 'MinMaxObserver' ? new HistogramObserver() : new MinMaxObserver();
      expect(() => a.merge(other)).toThrow(TypeError);
      expect(() => a.merge(other)).toThrow(`Expected a ${name} for other but received a ${other.constructor.name}`);
    });
  }

  it('histogram merge is exact when the shards share the range', () => {
    const shape = [1000];
    const A1 = gaussian(1000, 11);
    const B1 = gaussian(1000, 12, 0.7);
    A1[0] = -5; A1[1] = 5; B1[0] = -5; B1[1] = 5; // same [min, max] in both shards
    for (const make of [() => new HistogramObserver(), () => new MSEObserver({ gridSize: 20 }), () => new PercentileObserver(), () => new EntropyObserver()]) {
      const seq = make().observe(A1, shape).observe(B1, shape);
      const m = make().observe(A1, shape).merge(make().observe(B1, shape));
      expect(m.toJSON().state).toEqual(seq.toJSON().state);
      sameQParams(m.calculateQParams(), seq.calculateQParams());
    }
  });

  it('moving average merge: exact for a one-batch shard, float rounding for longer shards', () => {
    const xs = [0, 1, 2, 3, 4].map((k) => gaussian(50, 100 + k, 1 + k));
    const seq = new MovingAverageMinMaxObserver({ averagingConstant: 0.2 });
    for (const x of xs) seq.observe(x);
    const a = new MovingAverageMinMaxObserver({ averagingConstant: 0.2 });
    for (const x of xs.slice(0, 2)) a.observe(x);
    const b = new MovingAverageMinMaxObserver({ averagingConstant: 0.2 });
    for (const x of xs.slice(2)) b.observe(x);
    a.merge(b);
    const qa = a.calculateQParams();
    const qs = seq.calculateQParams();
    expect(Math.abs(qa.min[0] - qs.min[0])).toBeLessThan(1e-5 * Math.abs(qs.min[0]));
    expect(Math.abs(qa.max[0] - qs.max[0])).toBeLessThan(1e-5 * Math.abs(qs.max[0]));
  });

  it('memory is bounded by the statistics, not by the data seen', () => {
    for (const [, make] of ALL) {
      const o = make(SYM8);
      o.observe(gaussian(1024, 5), [16, 64]);
      const numbers = () => JSON.stringify(o.toJSON().state).split(',').length;
      const size1 = numbers();
      for (let k = 0; k < 20; k++) o.observe(gaussian(1024 * (k + 1), 6 + k), [16, 64 * (k + 1)]);
      expect(numbers()).toBe(size1);
    }
  });
});

// ---- errors ----------------------------------------------------------------------------------------

describe('observer argument errors (pinned messages)', () => {
  it('options', () => {
    expect(() => new MinMaxObserver({ foo: 1 } as never)).toThrow("Unknown option 'foo' in options; expected only 'scheme', 'bits', 'signed', 'range', 'granularity', 'formula'");
    expect(() => new MinMaxObserver({ bits: 9 })).toThrow('Expected an integer between 2 and 8 for options.bits but received 9');
    expect(() => new MovingAverageMinMaxObserver({ averagingConstant: 0 })).toThrow('Expected a number > 0 and <= 1 for averagingConstant but received 0');
    expect(() => new MovingAverageMinMaxObserver({ averagingConstant: '0.1' as never })).toThrow(TypeError);
    expect(() => new PercentileObserver({ percentile: 120 })).toThrow('Expected a number > 0 and <= 100 for percentile but received 120');
    expect(() => new PercentileObserver({ mode: 'left' as never })).toThrow("Expected one of 'symmetric', 'two-sided' for mode but received 'left'");
    expect(() => new HistogramObserver({ bins: 0 })).toThrow('Expected an integer between 1 and 1048576 for bins but received 0');
    expect(() => new HistogramObserver({ granularity: { axis: 0 } } as never)).toThrow("Expected 'per-tensor' (use the per-channel observer for { axis }) for granularity but received {\"axis\":0}");
    expect(() => new MSEObserver({ granularity: { axis: 0, blockSize: 32 } } as never)).toThrow("Expected 'per-tensor' or { axis } (no blocks for this observer) for granularity but received {\"axis\":0,\"blockSize\":32}");
    expect(() => new PerChannelMinMaxObserver({ axis: 1, granularity: { axis: 0 } })).toThrow('Expected { axis: 1 } (the axis option) for options.granularity but received {"axis":0}');
    expect(() => new PerChannelMinMaxObserver({ axis: 1.5 })).toThrow('Expected an integer for options.axis but received number 1.5');
  });

  it('observe', () => {
    const o = new PerChannelMinMaxObserver({ axis: 0 });
    expect(() => o.observe([1, 2] as never)).toThrow('Expected Float32Array for x but received Array of length 2');
    expect(() => o.observe(new Float32Array(6), [4])).toThrow('Expected a shape with 6 elements (the length of x) for shape but received [4] (4 elements)');
    o.observe(new Float32Array(6), [2, 3]);
    expect(() => o.observe(new Float32Array(6), [3, 2])).toThrow('Expected a shape giving 2 groups of shape [2] (as the earlier batches) for shape but received [3, 2] (groups [3])');
    expect(() => new PerChannelMinMaxObserver({ axis: 2 }).observe(new Float32Array(6), [2, 3])).toThrow('Expected an axis between -2 and 1 for granularity.axis but received 2 (shape of rank 2)');
  });

  it('fromJSON validates the state', () => {
    const o = new HistogramObserver();
    o.observe(gaussian(100, 3));
    const good = JSON.parse(JSON.stringify(o.toJSON()));
    expect(() => Observer.fromJSON(null)).toThrow('Expected an object for state but received null');
    expect(() => Observer.fromJSON({ ...good, version: 2 })).toThrow('Expected 1 for state.version but received number 2');
    expect(() => Observer.fromJSON({ ...good, type: 'Nope' })).toThrow(/^Expected one of 'MinMaxObserver', .* for state.type but received 'Nope'$/);
    expect(() => Observer.fromJSON({ ...good, state: { ...good.state, hist: good.state.hist.slice(1) } })).toThrow('Expected an array of length 2048 (2048 bins for each of 1 group: state.state.groupShape is []) for state.state.hist but received an array of length 2047');
    const neg = good.state.hist.slice();
    neg[5] = -1;
    expect(() => Observer.fromJSON({ ...good, state: { ...good.state, hist: neg } })).toThrow('Expected a non-negative finite number for state.state.hist[5] but received number -1');
    expect(() => Observer.fromJSON({ ...good, state: { ...good.state, lo: [5], hi: [1] } })).toThrow(/^Expected float32 values with lo <= hi/);
    expect(() => Observer.fromJSON({ ...good, spec: { ...good.spec, bits: 99 } })).toThrow(/^Expected valid options in state.spec \/ state.options but received an error: Expected an integer between 2 and 8/);
    expect(() => Observer.fromJSON({ ...good, stats: { ...good.stats, count: -1 } })).toThrow('Expected an integer between 0 and 9007199254740991 for state.stats.count but received -1');
    const mm = JSON.parse(JSON.stringify(new MinMaxObserver().observe(Float32Array.of(1, 2)).toJSON()));
    expect(() => Observer.fromJSON({ ...mm, state: { ...mm.state, min: [null] } })).toThrow("Expected a finite number or 'Infinity', '-Infinity', 'NaN' for state.state.min[0] but received null");
    expect(() => Observer.fromJSON({ ...mm, state: { ...mm.state, min: [3] } })).toThrow(/^Expected float32 values with min <= max/);
  });
});

// ---- known answers ----------------------------------------------------------------------------------

describe('known answers: a Gaussian with outliers (min-max must lose, the others must win)', () => {
  // 20000 N(0, 1) values plus 6 outliers at +-40..50. Min-max spends its range on the outliers:
  // its error on the Gaussian bulk (the inliers) is ~100x that of a range fitted to the bulk.
  const n = 20000;
  const x = gaussian(n, 42);
  const r = rng(43);
  const outlier = new Uint8Array(n);
  for (let k = 0; k < 6; k++) {
    const i = Math.floor(r() * n);
    x[i] = (k % 2 ? -1 : 1) * (40 + 10 * r());
    outlier[i] = 1;
  }
  const inliers = x.filter((_, i) => !outlier[i]);
  const batches = [x.subarray(0, 7000), x.subarray(7000, 12345), x.subarray(12345)];
  const feed = (o: Observer) => {
    for (const b of batches) o.observe(b);
    return o.calculateQParams();
  };
  const SYM4: Spec = { scheme: 'symmetric', bits: 4, signed: true, range: 'restricted', formula: 'onnx' };
  const mm = feed(new MinMaxObserver(SYM8));
  const inlierMinMax = mseOf(inliers, mm, SYM8);

  it('MSEObserver: within 1 % of a float64 grid search on the raw data (int8 and int4)', () => {
    for (const spec of [SYM8, SYM4]) {
      const q = feed(new MSEObserver({ ...spec, gridSize: 200 }));
      const ref = refMseSymmetric(x, spec, 200);
      expect(mseOf(x, q, spec)).toBeLessThan(ref.mse * 1.01);
    }
  });

  it('MSEObserver at 4 bits clips the outliers: about half the total error of min-max', () => {
    for (const spec of [SYM4, { scheme: 'asymmetric', bits: 4, signed: false } as Spec]) {
      const q = feed(new MSEObserver({ ...spec, gridSize: 100 }));
      const base = feed(new MinMaxObserver(spec));
      expect(mseOf(x, q, spec)).toBeLessThan(mseOf(x, base, spec) / 1.8);
      expect(q.max[0]).toBeLessThan(20);
    }
  });

  it('PercentileObserver: the 99.9th percentile of |x| (numpy linear) within two histogram bins', () => {
    const q = feed(new PercentileObserver({ ...SYM8, percentile: 99.9 }));
    const ref = refPercentileAbs(x, 99.9);
    const binW = (2 * 50) / 2048; // the |x| histogram spans at most ~2 * max|x| after re-binning
    expect(Math.abs(q.max[0] - ref)).toBeLessThan(2 * binW);
    expect(q.min[0]).toBeCloseTo(-q.max[0], 6);
    expect(mseOf(inliers, q, SYM8)).toBeLessThan(inlierMinMax / 20);
  });

  it('PercentileObserver two-sided: both tails', () => {
    const q = feed(new PercentileObserver({ ...ASYM8, percentile: 99 }));
    const binW = 100 / 2048 * 2;
    expect(Math.abs(q.max[0] - refPercentile(x, 99))).toBeLessThan(2 * binW);
    expect(Math.abs(q.min[0] - refPercentile(x, 1))).toBeLessThan(2 * binW);
  });

  it('EntropyObserver: the float64 transcription picks the same threshold on the same histogram; fits the bulk', () => {
    const o = new EntropyObserver(SYM8);
    const q = feed(o);
    const st = o.toJSON().state as { hist: number[]; lo: number[]; hi: number[] };
    const i = refEntropyBins(st.hist, 128, 128);
    expect(q.max[0]).toBeCloseTo(st.lo[0] + (i * (st.hi[0] - st.lo[0])) / 2048, 4);
    expect(q.max[0]).toBeLessThan(10);
    expect(q.max[0]).toBeGreaterThan(2.5);
    expect(mseOf(inliers, q, SYM8)).toBeLessThan(inlierMinMax / 20);
  });

  it('EntropyObserver on a small histogram matches the reference exactly (int4 levels)', () => {
    const o = new EntropyObserver({ scheme: 'symmetric', bits: 4, bins: 300, startBin: 20 });
    o.observe(x);
    const st = o.toJSON().state as { hist: number[]; lo: number[]; hi: number[] };
    const i = refEntropyBins(st.hist, 8, 20);
    const q = o.calculateQParams();
    expect(q.max[0]).toBeCloseTo((i * st.hi[0]) / 300, 5);
  });

  it('HistogramObserver (PyTorch L2 search): never worse than min-max in total error', () => {
    // (its search stops at the first increase of the error, so it cannot trim past isolated
    // outliers: PyTorch's method, reproduced as is)
    for (const spec of [SYM8, SYM4]) {
      const q = feed(new HistogramObserver(spec));
      expect(mseOf(x, q, spec)).toBeLessThanOrEqual(mseOf(x, feed(new MinMaxObserver(spec)), spec) * 1.01);
    }
  });
});

describe('per-channel MSE', () => {
  it('one search per channel: each channel within 2 % of its float64 grid optimum', () => {
    const C = 4;
    const n = 3000;
    const x = new Float32Array(C * n);
    const chans: Float32Array[] = [];
    for (let c = 0; c < C; c++) {
      const ch = c % 2 ? withOutliers(n, 70 + c) : gaussian(n, 70 + c, 1 + c);
      chans.push(ch);
      x.set(ch, c * n);
    }
    const o = new MSEObserver({ ...SYM8, granularity: { axis: 0 }, gridSize: 100 });
    o.observe(x, [C, n]);
    const q = o.calculateQParams();
    expect(q.scale.length).toBe(C);
    for (let c = 0; c < C; c++) {
      const ref = refMseSymmetric(chans[c], SYM8, 100);
      expect(mse64(chans[c], q.scale[c], q.zeroPoint[c], SYM8)).toBeLessThan(ref.mse * 1.02);
    }
    // innermost channel axis (the gathered path) gives the same
    const xt = new Float32Array(C * n);
    for (let c = 0; c < C; c++) for (let i = 0; i < n; i++) xt[i * C + c] = x[c * n + i];
    const o2 = new MSEObserver({ ...SYM8, granularity: { axis: -1 }, gridSize: 100 });
    o2.observe(xt, [n, C]);
    sameQParams(o2.calculateQParams(), q);
  });
});

describe('SoftmaxCrossEntropyObserver: logits before a softmax', () => {
  // rows of logits: N(0, 1.5), one clear winner per row around 7, and 2 % very negative outliers
  const rows = 400;
  const C = 32;
  const x = new Float32Array(rows * C);
  const r = rng(5);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < C; c++) x[i * C + c] = 1.5 * gauss(r);
    const w = Math.floor(r() * C);
    x[i * C + w] = 7 + gauss(r);
    const w2 = (w + 1 + Math.floor(r() * (C - 1))) % C;
    x[i * C + w2] = 6 + gauss(r); // a runner-up close to the winner: its order matters
    if (r() < 0.6) x[i * C + ((w + 5) % C)] = -40 - 20 * r();
  }
  const spec: Spec = { scheme: 'asymmetric', bits: 4, signed: false, formula: 'pytorch' };
  const { qmin, qmax } = resolveSpec('spec', spec);
  const kl = (q: { scale: Float32Array; zeroPoint: Int32Array }) => refSoftmaxKl(x, rows, C, q.scale[0], q.zeroPoint[0], qmin, qmax);
  const agree = (q: { scale: Float32Array; zeroPoint: Int32Array }) => argmaxAgreement(x, rows, C, fakeQuantize(x, [rows, C], q, spec));

  it('minimises the cross entropy: close to a float64 grid search over (min, max) on the raw rows', () => {
    const o = new SoftmaxCrossEntropyObserver({ ...spec, gridSize: 60 });
    o.observe(x.subarray(0, 200 * C), [200, C]).observe(x.subarray(200 * C), [rows - 200, C]);
    const q = o.calculateQParams();
    // reference: exact mean per-row KL over a 2-D grid of ranges (lo = min * i / G, hi = max * j / G)
    let mn = Infinity;
    let mx = -Infinity;
    for (const v of x) { mn = Math.min(mn, v); mx = Math.max(mx, v); }
    const G = 24;
    let best = Infinity;
    const s = resolveSpec('spec', spec);
    for (let i = 1; i <= G; i++) {
      for (let j = 1; j <= G; j++) {
        const [sc, z] = qparamsOne(Math.fround((mn * i) / G), Math.fround((mx * j) / G), s);
        best = Math.min(best, refSoftmaxKl(x, rows, C, sc, z, qmin, qmax));
      }
    }
    const got = kl(q);
    expect(got).toBeLessThan(best * 1.1);
    // and it beats min-max and a two-sided percentile
    const mm = new MinMaxObserver(spec).observe(x, [rows, C]).calculateQParams();
    const pc = new PercentileObserver({ ...spec, percentile: 99 }).observe(x, [rows, C]).calculateQParams();
    expect(got).toBeLessThan(kl(mm) / 2);
    expect(got).toBeLessThan(kl(pc) / 2);
  });

  it('keeps the order of the largest values (percentile clipping does not)', () => {
    const o = new SoftmaxCrossEntropyObserver({ ...spec, gridSize: 60 });
    const q = o.observe(x, [rows, C]).calculateQParams();
    const pc = new PercentileObserver({ ...spec, percentile: 99 }).observe(x, [rows, C]).calculateQParams();
    expect(agree(q)).toBeGreaterThan(agree(pc));
    expect(q.max[0]).toBeGreaterThan(8);
    expect(q.min[0]).toBeGreaterThan(-30); // the very negative logits are clipped
  });

  it('honours the softmax axis', () => {
    const xt = new Float32Array(rows * C);
    for (let i = 0; i < rows; i++) for (let c = 0; c < C; c++) xt[c * rows + i] = x[i * C + c];
    const a = new SoftmaxCrossEntropyObserver({ ...spec, gridSize: 30 }).observe(x, [rows, C]).calculateQParams();
    const b = new SoftmaxCrossEntropyObserver({ ...spec, gridSize: 30, axis: 0 }).observe(xt, [C, rows]).calculateQParams();
    sameQParams(a, b);
  });
});

describe('MinMax observers equal quantize()/computeQParams on the same data', () => {
  it('per-tensor and per-channel', () => {
    const x = gaussian(600, 77, 2, 0.3);
    for (const spec of [SYM8, ASYM8]) {
      let mn = Infinity;
      let mx = -Infinity;
      for (const v of x) { mn = Math.min(mn, v); mx = Math.max(mx, v); }
      const ref = computeQParams(mn, mx, spec);
      const q = new MinMaxObserver(spec).observe(x).calculateQParams();
      expect(Array.from(q.scale)).toEqual(Array.from(ref.scale));
      expect(Array.from(q.zeroPoint)).toEqual(Array.from(ref.zeroPoint));
      const pc = new PerChannelMinMaxObserver({ ...spec, axis: 1 }).observe(x, [20, 30]).calculateQParams();
      expect(pc.scale.length).toBe(30);
    }
  });
});

describe('native histogram: every path gives the same observers; argument checks', () => {
  it('observer states are identical under every usable path', () => {
    const x = withOutliersLocal();
    const paths = cpuInfo().supportedPaths;
    const states: string[] = [];
    try {
      for (const p of paths) {
        setIsa(p);
        const hs = [new HistogramObserver(), new EntropyObserver(), new MSEObserver({ granularity: { axis: 1 }, gridSize: 10 }), new MinMaxObserver()];
        for (const h of hs) h.observe(x, [100, 50]).observe(x.map((v) => v * 3), [100, 50]);
        states.push(JSON.stringify(hs.map((h) => h.toJSON())));
      }
    } finally {
      setIsa('auto');
    }
    for (const s of states) expect(s).toBe(states[0]);
  });

  it('native histogram() rejects bad arguments', () => {
    const x = new Float32Array(10);
    const c = new Float64Array(4);
    const one = (v: number) => Float32Array.of(v);
    expect(() => nativeObserve.histogram(x, c, one(1), one(0), 4, 0, 1, 1, 10, 0)).toThrow('Expected a value greater than lo[0] (1) for hi[0] but received 0');
    expect(() => nativeObserve.histogram(x, c, one(NaN), one(1), 4, 0, 1, 1, 10, 0)).toThrow('Expected a finite number for lo[0] but received NaN');
    expect(() => nativeObserve.histogram(x, new Float64Array(3), one(0), one(1), 4, 0, 1, 1, 10, 0)).toThrow('Expected length 4 for counts but received Float64Array of length 3');
    expect(() => nativeObserve.histogram(x, c, one(0), one(1), 0, 0, 1, 1, 10, 0)).toThrow('Expected an integer between 1 and 16777216 for nbins but received number 0');
    expect(() => nativeObserve.histogram(x, new Float32Array(4) as never, one(0), one(1), 4, 0, 1, 1, 10, 0)).toThrow('Expected Float64Array for counts but received Float32Array of length 4');
    expect(() => nativeObserve.histogram(x, c, one(0), one(1), 4, 0, 1, 1, 9, 0)).toThrow('Expected length 9 for x but received Float32Array of length 10');
  });

  it('per-channel percentile and entropy: one range per channel', () => {
    const C = 3;
    const n = 4000;
    const x = new Float32Array(C * n);
    for (let c = 0; c < C; c++) x.set(gaussian(n, 300 + c, 1 + c), c * n);
    const p = new PercentileObserver({ ...SYM8, percentile: 99, granularity: { axis: 0 } }).observe(x, [C, n]).calculateQParams();
    const e = new EntropyObserver({ ...SYM8, granularity: { axis: 0 } }).observe(x, [C, n]).calculateQParams();
    for (let c = 0; c < C; c++) {
      const ref = refPercentileAbs(x.subarray(c * n, (c + 1) * n), 99);
      expect(Math.abs(p.max[c] - ref)).toBeLessThan(((1 + c) * 5 * 2) / 2048);
      expect(e.max[c]).toBeGreaterThan(2 * (1 + c));
    }
  });
});

function withOutliersLocal(): Float32Array {
  const x = gaussian(5000, 99);
  x[17] = 30;
  x[4000] = -25;
  x[5] = NaN;
  x[6] = -Infinity;
  return x;
}

describe('min/max observers: blocked granularity and batches without finite values', () => {
  it('blocked MinMaxObserver equals quantize()', async () => {
    const { quantize } = await import('../lib/index');
    const x = gaussian(6 * 70, 501, 2);
    for (const g of [{ axis: 1, blockSize: 32 }, { axis: 0, blockSize: 4 }]) {
      const spec = { ...SYM8, granularity: g };
      const q = new MinMaxObserver(spec).observe(x, [6, 70]).calculateQParams();
      const t = quantize(x, [6, 70], spec);
      expect(Array.from(q.scale)).toEqual(Array.from(t.scale));
      expect(Array.from(q.zeroPoint)).toEqual(Array.from(t.zeroPoint));
    }
  });

  it('a batch of only NaN / Inf is counted but changes no range', () => {
    for (const [, make] of ALL) {
      const o = make(ASYM8);
      o.observe(Float32Array.of(NaN, Infinity, NaN, -Infinity), [2, 2]);
      expect(o.stats()).toEqual({ batches: 1, count: 4, nanCount: 2, infCount: 2 });
      const q = o.calculateQParams();
      for (let i = 0; i < q.scale.length; i++) expect([q.scale[i], q.zeroPoint[i]]).toEqual([1, 0]);
      o.observe(Float32Array.of(1, 2, 3, 4), [2, 2]);
      const fresh = make(ASYM8).observe(Float32Array.of(1, 2, 3, 4), [2, 2]).calculateQParams();
      sameQParams(o.calculateQParams(), fresh);
    }
  });
});

describe('initialRange: exact sharded histograms', () => {
  it('shards with the same initialRange merge exactly, whatever their own ranges', () => {
    const shape = [200, 10];
    const A1 = gaussian(2000, 21, 0.5, -1);
    const B1 = gaussian(2000, 22, 2, 1);
    const makers: (() => Observer)[] = [
      () => new HistogramObserver({ initialRange: [-10, 10] }),
      () => new PercentileObserver({ initialRange: [-10, 10] }),
      () => new MSEObserver({ initialRange: [-10, 10], gridSize: 20, granularity: { axis: 1 } }),
      () => new EntropyObserver({ initialRange: [-10, 10], scheme: 'asymmetric' }),
      () => new SoftmaxCrossEntropyObserver({ initialRange: [-10, 10], gridSize: 10 }),
    ];
    for (const make of makers) {
      const seq = make().observe(A1, shape).observe(B1, shape);
      const m = make().observe(A1, shape).merge(make().observe(B1, shape));
      expect(m.toJSON()).toEqual(seq.toJSON());
      sameQParams(m.calculateQParams(), seq.calculateQParams());
      // a range still grows past initialRange when the data does
      const wide = make().observe(A1.map((v) => v * -20), shape);
      expect((wide.toJSON().state as { hi: number[] }).hi[0]).toBeGreaterThan(10);
      // and it round-trips through JSON
      const back = Observer.fromJSON(JSON.parse(JSON.stringify(seq.toJSON())));
      sameQParams(back.calculateQParams(), seq.calculateQParams());
    }
    expect(new HistogramObserver({ initialRange: [-1, 1] }).calculateQParams().scale[0]).toBe(1);
  });

  it('rejects a bad initialRange', () => {
    expect(() => new HistogramObserver({ initialRange: [1, 1] })).toThrow('Expected an array [lo, hi] of finite numbers with lo < hi for initialRange but received [1,1]');
    expect(() => new HistogramObserver({ initialRange: 3 as never })).toThrow('Expected an array [lo, hi] of finite numbers with lo < hi for initialRange but received number 3');
  });
});

describe('edge cases: constant data, huge and tiny ranges', () => {
  const hist = (): [string, () => Observer][] => ALL.filter(([n]) => !/MinMax/.test(n)).map(([n, m]) => [n, () => m(ASYM8)]);
  it('constant batches, then a wider one: the constant mass is kept', () => {
    for (const [name, make] of hist()) {
      const o = make();
      o.observe(new Float32Array(100).fill(2), [10, 10]);
      const q1 = o.calculateQParams();
      expect(q1.scale[0], name).toBeGreaterThan(0);
      expect(Number.isFinite(q1.scale[0])).toBe(true);
      o.observe(new Float32Array(100).fill(2), [10, 10]);
      o.observe(Float32Array.from({ length: 100 }, (_, i) => i / 25 - 2), [10, 10]);
      const st = o.toJSON().state as { hist: number[] };
      const total = st.hist.slice(0, 2048).reduce((a, b) => a + b, 0);
      expect(Math.round(total), name).toBe(300);
    }
  });

  it('huge (+-3e38) and tiny (denormal) ranges neither crash nor lose counts', () => {
    for (const [name, make] of hist()) {
      const o = make();
      o.observe(Float32Array.of(3e38, -3e38, 1, 0, -1, 2e38), [2, 3]);
      o.observe(Float32Array.of(5, -5, 0, 1e-40, 3.4e38, -3.4e38), [2, 3]);
      const q = o.calculateQParams();
      // (a range as wide as +-3.4e38 has no finite float32 scale: Infinity is what computeQParams gives)
      expect(q.scale[0] > 0 && Number.isFinite(q.min[0]) && Number.isFinite(q.max[0]), name).toBe(true);
      const t = make();
      t.observe(Float32Array.of(1e-40, 2e-40, 3e-40, -1e-40, 0, 5e-41), [2, 3]);
      t.observe(Float32Array.of(1e-39, 2e-40, 3e-40, -1e-40, 0, 5e-41), [2, 3]);
      const qt = t.calculateQParams();
      expect(qt.scale[0] > 0 && Number.isFinite(qt.scale[0]), name).toBe(true);
      const st = t.toJSON().state as { hist: number[] };
      expect(Math.round(st.hist.slice(0, 2048).reduce((a, b) => a + b, 0)), name).toBe(12);
    }
  });
});

describe('threads', () => {
  it('the thread count never changes an observer (large inputs are split over threads)', async () => {
    const { setNumThreads, getNumThreads } = await import('../lib/index');
    const x = gaussian((1 << 21) + 77, 1234, 2);
    x[10] = 0;
    const saved = getNumThreads();
    const states: string[] = [];
    try {
      for (const t of [1, 2, 3]) {
        setNumThreads(t);
        states.push(JSON.stringify([new HistogramObserver(), new EntropyObserver(), new MinMaxObserver()].map((o) => o.observe(x).observe(x.subarray(5)).toJSON())));
      }
    } finally {
      setNumThreads(saved);
    }
    expect(states[1]).toBe(states[0]);
    expect(states[2]).toBe(states[0]);
  });
});
