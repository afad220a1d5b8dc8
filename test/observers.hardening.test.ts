// Hardening of the calibration observers: every size that an argument or a serialized state
// controls is bounded and checked before anything is allocated.
//   * fromJSON: a few hundred bytes of state must not allocate gigabytes (groupShape [2**31]);
//     every field is validated, errors name the field.
//   * per-channel histograms: bounded by the memoryLimit option (documented default 1 GiB), checked
//     before the first allocation, so the channel count of the data cannot exhaust memory.
import { describe, expect, it } from 'vitest';
import { rng } from './helpers';
import {
  EntropyObserver, HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
  MSEObserver, Observer, PercentileObserver, PerChannelMinMaxObserver, SoftmaxCrossEntropyObserver,
} from '../lib/observers/index';

 
type Json = any;

function gaussian(n: number, seed: number, sigma = 1): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = sigma * Math.sqrt(-2 * Math.log(r() + 1e-300)) * Math.cos(2 * Math.PI * r());
  return x;
}

/** Runs fn, which must throw; returns the error, the time taken and the growth of ArrayBuffer memory. */
function throwsCheaply(fn: () => unknown): { err: Error; ms: number; grownBytes: number } {
  const before = process.memoryUsage().arrayBuffers;
  const t0 = performance.now();
  let err: Error | null = null;
  try {
    fn();
  } catch (e) {
    err = e as Error;
  }
  const ms = performance.now() - t0;
  const grownBytes = process.memoryUsage().arrayBuffers - before;
  if (err === null) throw new Error('expected an error');
  return { err, ms, grownBytes };
}

const FAST_MS = 250;
const SMALL_BYTES = 16 * 2 ** 20;
const DEFAULT_LIMIT = 2 ** 30;
/** The documented peak bytes per group of a histogram observer: bins * (16 * layers + 4) + 128. */
const perGroup = (bins: number, layers = 1) => bins * (16 * layers + 4) + 128;

const PER_CHANNEL_HIST: [string, (o?: Record<string, unknown>) => Observer][] = [
  ['PercentileObserver', (o) => new PercentileObserver({ granularity: { axis: 0 }, ...o })],
  ['MSEObserver', (o) => new MSEObserver({ granularity: { axis: 0 }, gridSize: 20, ...o })],
  ['EntropyObserver', (o) => new EntropyObserver({ granularity: { axis: 0 }, ...o })],
];

/** A state of each class as toJSON writes it after one batch of shape [4, 8] (per-channel classes: axis 0). */
function states(): [string, Json][] {
  const x = gaussian(32, 7);
  const shape = [4, 8];
  const obs: Observer[] = [
    new MinMaxObserver(), new MovingAverageMinMaxObserver(), new PerChannelMinMaxObserver(), new MovingAveragePerChannelMinMaxObserver(),
    new HistogramObserver({ bins: 16 }), new PercentileObserver({ bins: 16, granularity: { axis: 0 } }),
    new MSEObserver({ bins: 16, gridSize: 10, granularity: { axis: 0 } }), new EntropyObserver({ bins: 16, startBin: 4, granularity: { axis: 0 } }),
    new SoftmaxCrossEntropyObserver({ bins: 16, gridSize: 10 }),
  ];
  return obs.map((o) => [o.constructor.name, JSON.parse(JSON.stringify(o.observe(x, shape).toJSON()))]);
}

// ---- finding 4: a 300-byte state must not exhaust memory ---------------------------------------------

describe('fromJSON bounds every size before allocating', () => {
  it('groupShape [2**31] in a tiny state: a RangeError naming the field, fast, nothing allocated (every class)', () => {
    for (const [name, good] of states()) {
      // (per-tensor classes: the wrong rank is caught first)
      const bad = { ...good, state: { ...good.state, groupShape: [2 ** 31] } };
      const text = JSON.stringify(bad.state.groupShape) + JSON.stringify(bad.options) + JSON.stringify(bad.spec);
      expect(text.length).toBeLessThan(300);
      const { err, ms, grownBytes } = throwsCheaply(() => Observer.fromJSON(bad));
      expect(err, name).toBeInstanceOf(RangeError);
      expect(err.message, name).toMatch(/for state\.state\.(groupShape|min|lo)\b/);
      expect(ms, name).toBeLessThan(FAST_MS);
      expect(grownBytes, name).toBeLessThan(SMALL_BYTES);
    }
  });

  it('the per-channel min/max state of finding 4 exactly: [2**31] groups with one min / max', () => {
    const good = JSON.parse(JSON.stringify(new PerChannelMinMaxObserver().observe(Float32Array.of(1, 2), [2, 1]).toJSON()));
    const bad = { ...good, state: { groupShape: [2 ** 31], min: [1], max: [2] } };
    expect(JSON.stringify(bad).length).toBeLessThan(400);
    const { err, ms, grownBytes } = throwsCheaply(() => PerChannelMinMaxObserver.fromJSON(bad));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toBe('Expected an array of length 2147483648 (one value per group: state.state.groupShape is [2147483648]) for state.state.min but received an array of length 1');
    expect(ms).toBeLessThan(FAST_MS);
    expect(grownBytes).toBeLessThan(SMALL_BYTES);
  });

  it('group counts beyond the documented maximum, bad dimensions and overflowing products', () => {
    // blocked granularity: the group shape has the data's rank
    const good = JSON.parse(JSON.stringify(new MinMaxObserver({ granularity: { axis: 0, blockSize: 2 } }).observe(gaussian(8, 1), [4, 2]).toJSON()));
    const cases: [unknown, RegExp | string, ErrorConstructor][] = [
      [[2 ** 31, 2 ** 31], 'Expected at most 2147483648 groups for state.state.groupShape but received [2147483648, 2147483648] (4611686018427388000 groups)', RangeError],
      [[2 ** 31 + 1], 'Expected an integer between 1 and 2147483648 for state.state.groupShape[0] but received 2147483649', RangeError],
      [[0, 3], 'Expected an integer between 1 and 2147483648 for state.state.groupShape[0] but received 0', RangeError],
      [[1.5], 'Expected an integer between 1 and 2147483648 for state.state.groupShape[0] but received 1.5', RangeError],
      [['2'], "Expected an integer between 1 and 2147483648 for state.state.groupShape[0] but received string '2'", TypeError],
      [[1e300, 1e300, 1e300].map(() => 2 ** 31), /^Expected at most 2147483648 groups for state\.state\.groupShape/, RangeError],
      [{ 0: 1 }, 'Expected an array of positive integers or null for state.state.groupShape but received object', TypeError],
    ];
    for (const [gs, msg, E] of cases) {
      const { err, ms, grownBytes } = throwsCheaply(() => Observer.fromJSON({ ...good, state: { ...good.state, groupShape: gs } }));
      expect(err, JSON.stringify(gs)).toBeInstanceOf(E);
      if (typeof msg === 'string') expect(err.message).toBe(msg);
      else expect(err.message).toMatch(msg);
      expect(ms).toBeLessThan(FAST_MS);
      expect(grownBytes).toBeLessThan(SMALL_BYTES);
    }
  });

  it('histogram states: groupShape, memoryLimit and every array length are checked before the histograms are allocated', () => {
    const good = states().find(([n]) => n === 'PercentileObserver')![1];
    // 2**24 channels: over the default memoryLimit
    let r = throwsCheaply(() => Observer.fromJSON({ ...good, state: { ...good.state, groupShape: [2 ** 24] } }));
    expect(r.err).toBeInstanceOf(RangeError);
    expect(r.err.message).toBe(`Expected at most ${Math.floor(DEFAULT_LIMIT / perGroup(16))} groups (memoryLimit ${DEFAULT_LIMIT} bytes, ${perGroup(16)} bytes per group at 16 bins) for state.state.groupShape but received [16777216] (16777216 groups); use fewer bins or a larger memoryLimit`);
    expect(r.ms).toBeLessThan(FAST_MS);
    expect(r.grownBytes).toBeLessThan(SMALL_BYTES);
    // a state that raises its own memoryLimit still cannot allocate more than its arrays hold
    r = throwsCheaply(() => Observer.fromJSON({ ...good, options: { ...good.options, memoryLimit: 2 ** 40 }, state: { ...good.state, groupShape: [2 ** 24] } }));
    expect(r.err).toBeInstanceOf(RangeError);
    expect(r.err.message).toBe('Expected an array of length 16777216 (one value per group: state.state.groupShape is [16777216]) for state.state.lo but received an array of length 4');
    expect(r.grownBytes).toBeLessThan(SMALL_BYTES);
    // lo / hi / dataMin / dataMax right, hist short: still nothing allocated
    const G = 2 ** 14;
    const inf = new Array(G).fill('Infinity');
    const ninf = new Array(G).fill('-Infinity');
    r = throwsCheaply(() => Observer.fromJSON({
      ...good, options: { ...good.options, memoryLimit: 2 ** 40, bins: 2 ** 20 },
      state: { groupShape: [G], lo: inf, hi: ninf, dataMin: inf, dataMax: ninf, hist: [0] },
    }));
    expect(r.err).toBeInstanceOf(RangeError);
    expect(r.err.message).toBe('Expected an array of length 17179869184 (1048576 bins for each of 16384 groups: state.state.groupShape is [16384]) for state.state.hist but received an array of length 1');
    expect(r.ms).toBeLessThan(FAST_MS);
    expect(r.grownBytes).toBeLessThan(SMALL_BYTES);
  });

  it('the group shape must fit the granularity', () => {
    const all = Object.fromEntries(states());
    expect(() => Observer.fromJSON({ ...all.HistogramObserver, state: { ...all.HistogramObserver.state, groupShape: [1] } }))
      .toThrow(new RangeError('Expected [] (one group: a per-tensor observer) for state.state.groupShape but received [1]'));
    expect(() => Observer.fromJSON({ ...all.MinMaxObserver, state: { ...all.MinMaxObserver.state, groupShape: [1, 1] } }))
      .toThrow(new RangeError('Expected [] (one group: a per-tensor observer) for state.state.groupShape but received [1, 1]'));
    expect(() => Observer.fromJSON({ ...all.PercentileObserver, state: { ...all.PercentileObserver.state, groupShape: [] } }))
      .toThrow(new RangeError('Expected one dimension [channels] (a per-channel observer) for state.state.groupShape but received []'));
    expect(() => Observer.fromJSON({ ...all.PerChannelMinMaxObserver, state: { ...all.PerChannelMinMaxObserver.state, groupShape: [2, 2] } }))
      .toThrow(new RangeError('Expected one dimension [channels] (a per-channel observer) for state.state.groupShape but received [2, 2]'));
  });
});

describe('fromJSON validates every field', () => {
  it('round trip: fromJSON(toJSON()) writes the same state again (every class, empty too)', () => {
    for (const [name, s] of states()) {
      const back = Observer.fromJSON(s);
      expect(back.constructor.name).toBe(name);
      expect(JSON.parse(JSON.stringify(back.toJSON()))).toEqual(s);
      back.reset();
      const e = JSON.parse(JSON.stringify(back.toJSON()));
      expect(JSON.parse(JSON.stringify(Observer.fromJSON(e).toJSON()))).toEqual(e);
    }
  });

  it('top level: version type, unknown fields, spec fields in the wrong place, the class a subclass asks for', () => {
    const s = Object.fromEntries(states());
    const h = s.PercentileObserver;
    expect(() => Observer.fromJSON({ ...h, version: '1' })).toThrow(new TypeError("Expected 1 for state.version but received string '1'"));
    expect(() => Observer.fromJSON({ ...h, extra: 1 })).toThrow(new TypeError("Unknown field 'extra' in state; expected only 'type', 'version', 'spec', 'options', 'stats', 'state'"));
    expect(() => Observer.fromJSON({ ...h, spec: { ...h.spec, percentile: 50 } })).toThrow(new TypeError("Unknown field 'percentile' in state.spec; expected only 'scheme', 'bits', 'signed', 'range', 'granularity', 'formula'"));
    expect(() => Observer.fromJSON({ ...h, options: { ...h.options, bits: 4 } })).toThrow(new TypeError("Expected the observer's own options for state.options but received the spec field 'bits' (it belongs in state.spec)"));
    expect(() => Observer.fromJSON({ ...h, state: { ...h.state, extra: [] } })).toThrow(new TypeError("Unknown field 'extra' in state.state; expected only 'groupShape', 'lo', 'hi', 'dataMin', 'dataMax', 'hist'"));
    expect(() => Observer.fromJSON({ ...s.MinMaxObserver, state: { ...s.MinMaxObserver.state, steps: [1] } })).toThrow(new TypeError("Unknown field 'steps' in state.state; expected only 'groupShape', 'min', 'max'"));
    expect(() => Observer.fromJSON({ ...h, stats: { ...h.stats, extra: 0 } })).toThrow(new TypeError("Unknown field 'extra' in state.stats; expected only 'batches', 'count', 'nanCount', 'infCount'"));
    // constructor errors keep their class (a bad value is a RangeError, a bad type a TypeError)
    expect(() => Observer.fromJSON({ ...h, spec: { ...h.spec, bits: 99 } })).toThrow(RangeError);
    expect(() => Observer.fromJSON({ ...h, options: { ...h.options, bins: '16' } })).toThrow(TypeError);
    // XObserver.fromJSON only makes an XObserver
    expect(PercentileObserver.fromJSON(h)).toBeInstanceOf(PercentileObserver);
    expect(() => PercentileObserver.fromJSON(s.MinMaxObserver)).toThrow(new RangeError("Expected 'PercentileObserver' for state.type but received 'MinMaxObserver'"));
    expect(() => MinMaxObserver.fromJSON(s.PerChannelMinMaxObserver)).toThrow(RangeError);
  });

  it('stats must be consistent', () => {
    const h = states()[0][1];
    expect(() => Observer.fromJSON({ ...h, stats: { batches: 1, count: 32, nanCount: 30, infCount: 3 } }))
      .toThrow(new RangeError('Expected at most 32 (state.stats.count) for state.stats.nanCount + state.stats.infCount but received 33'));
    expect(() => Observer.fromJSON({ ...h, stats: { batches: 33, count: 32, nanCount: 0, infCount: 0 } }))
      .toThrow(new RangeError('Expected at most 32 (state.stats.count) for state.stats.batches but received 33'));
  });

  it('min/max values: moving-average first batch values and steps', () => {
    const s = Object.fromEntries(states());
    const m = s.MovingAveragePerChannelMinMaxObserver;
    const fmn = m.state.firstMin.slice();
    fmn[1] = 'NaN';
    expect(() => Observer.fromJSON({ ...m, state: { ...m.state, firstMin: fmn } }))
      .toThrow(new RangeError('Expected float32 values with firstMin <= firstMax (or Infinity / -Infinity for an empty group) for state.state.firstMin[1] but received NaN, firstMax ' + m.state.firstMax[1]));
    expect(() => Observer.fromJSON({ ...m, state: { ...m.state, steps: [1, 1, 1] } }))
      .toThrow(new RangeError('Expected an array of length 4 (one value per group: state.state.groupShape is [4]) for state.state.steps but received an array of length 3'));
    const mm = s.PerChannelMinMaxObserver;
    expect(() => Observer.fromJSON({ ...mm, state: { ...mm.state, max: mm.state.max.slice(1) } }))
      .toThrow(new RangeError('Expected an array of length 4 (one value per group: state.state.groupShape is [4]) for state.state.max but received an array of length 3'));
    expect(() => Observer.fromJSON({ ...mm, state: { groupShape: null, min: [1], max: [2] } }))
      .toThrow(new RangeError('Expected an array of length 0 (nothing observed: state.state.groupShape is null) for state.state.min but received an array of length 1'));
  });

  it('histograms: a one-value range holds its mass in bin 0 only', () => {
    const o = new PercentileObserver({ bins: 16, mode: 'two-sided', granularity: { axis: 0 } }).observe(Float32Array.of(1, 1, 2, 3), [2, 2]);
    const s = JSON.parse(JSON.stringify(o.toJSON()));
    expect(s.state.lo[0]).toBe(s.state.hi[0]); // channel 0: |1|, |1|
    const hist = s.state.hist.slice();
    hist[5] = 1;
    expect(() => Observer.fromJSON({ ...s, state: { ...s.state, hist } }))
      .toThrow(new RangeError('Expected 0 (group 0 has a one-value range: its mass is in its bin 0) for state.state.hist[5] but received 1'));
  });
});

// ---- finding 6: per-channel histograms bounded by memoryLimit -------------------------------------------

describe('per-channel histogram memory is bounded (memoryLimit)', () => {
  it('262,144 channels (finding 6): a RangeError before anything is allocated, with the default limit', () => {
    const C = 262144;
    const x = new Float32Array(C);
    for (const [name, make] of PER_CHANNEL_HIST) {
      const o = make();
      const { err, ms, grownBytes } = throwsCheaply(() => o.observe(x, [C, 1]));
      expect(err, name).toBeInstanceOf(RangeError);
      expect(err.message).toBe(`Expected at most 26132 groups (memoryLimit 1073741824 bytes, 41088 bytes per group at 2048 bins) for shape but received [262144, 1] (262144 groups); use fewer bins or a larger memoryLimit`);
      expect(ms).toBeLessThan(FAST_MS);
      expect(grownBytes).toBeLessThan(SMALL_BYTES);
      // nothing was observed: the observer is still usable
      expect(o.stats().count).toBe(0);
      o.observe(gaussian(64, 3), [4, 16]);
      expect(o.calculateQParams().scale.length).toBe(4);
    }
    expect(Math.floor(DEFAULT_LIMIT / perGroup(2048))).toBe(26132);
  });

  it('the limit is exact: the largest channel count that fits works and its memory stays within the limit', () => {
    const bins = 16;
    const fit = 2340;
    const limit = fit * perGroup(bins) + perGroup(bins) - 1; // one byte short of fit + 1 groups
    for (const [name, make] of PER_CHANNEL_HIST) {
      const o = make({ bins, memoryLimit: limit, ...(name === 'EntropyObserver' ? { startBin: 4 } : {}) });
      for (let k = 0; k < 4; k++) o.observe(gaussian(fit * 8, 10 + k, 1 + k), [fit, 8]);
      expect(o.byteLength).toBe(fit * (bins * 8 + 16));
      expect(o.byteLength).toBeLessThanOrEqual(limit);
      expect(o.calculateQParams().scale.length).toBe(fit);
      expect(() => make({ bins, memoryLimit: limit }).observe(new Float32Array((fit + 1) * 2), [fit + 1, 2]))
        .toThrow(new RangeError(`Expected at most ${fit} groups (memoryLimit ${limit} bytes, ${perGroup(bins)} bytes per group at ${bins} bins) for shape but received [${fit + 1}, 2] (${fit + 1} groups); use fewer bins or a larger memoryLimit`));
    }
  });

  it('byteLength: the statistics held, which do not grow with the data', () => {
    const x = gaussian(64 * 32, 5);
    const p = new PercentileObserver({ granularity: { axis: 1 } }).observe(x, [64, 32]);
    expect(p.byteLength).toBe(32 * (2048 * 8 + 16));
    for (let k = 0; k < 5; k++) p.observe(gaussian(64 * 32 * (k + 2), 20 + k, 3 + k), [64 * (k + 2), 32]);
    expect(p.byteLength).toBe(32 * (2048 * 8 + 16));
    expect(new SoftmaxCrossEntropyObserver({ bins: 100 }).observe(x, [64, 32]).byteLength).toBe(2 * 100 * 8 + 16);
    expect(new PerChannelMinMaxObserver({ axis: 1 }).observe(x, [64, 32]).byteLength).toBe(32 * 8);
    expect(new MovingAveragePerChannelMinMaxObserver({ axis: 1 }).observe(x, [64, 32]).byteLength).toBe(32 * 24);
    expect(new MinMaxObserver().byteLength).toBe(0);
    p.reset();
    expect(p.byteLength).toBe(0);
  });

  it('per-tensor observers never reach the default limit (largest bins, two layers)', () => {
    expect(perGroup(2 ** 20, 2)).toBeLessThan(DEFAULT_LIMIT);
    const o = new SoftmaxCrossEntropyObserver({ bins: 2 ** 20, gridSize: 2 });
    o.observe(gaussian(100, 1), [10, 10]);
    expect(o.byteLength).toBe(2 * 2 ** 20 * 8 + 16);
  });

  it('results do not depend on memoryLimit; per-channel equals each channel observed alone', () => {
    const C = 5;
    const n = 3000;
    const x = new Float32Array(C * n);
    for (let c = 0; c < C; c++) x.set(gaussian(n, 40 + c, 0.5 + c), c * n);
    for (const [name, make] of PER_CHANNEL_HIST) {
      const a = make().observe(x, [C, n]).calculateQParams();
      const b = make({ memoryLimit: C * perGroup(2048) }).observe(x, [C, n]).calculateQParams();
      expect(b, name).toEqual(a);
      for (let c = 0; c < C; c++) {
        const alone = make({ granularity: 'per-tensor' }).observe(x.slice(c * n, (c + 1) * n)).calculateQParams();
        expect([a.scale[c], a.zeroPoint[c], a.min[c], a.max[c]], `${name} channel ${c}`).toEqual([alone.scale[0], alone.zeroPoint[0], alone.min[0], alone.max[0]]);
      }
    }
  });

  it('merge and fromJSON honour the limit; it is not part of merge compatibility', () => {
    const x = gaussian(3000 * 2, 9);
    const big = new PercentileObserver({ granularity: { axis: 0 }, bins: 16 }).observe(x, [3000, 2]);
    const small = () => new PercentileObserver({ granularity: { axis: 0 }, bins: 16, memoryLimit: 100000 });
    const r = throwsCheaply(() => small().merge(big));
    expect(r.err).toBeInstanceOf(RangeError);
    expect(r.err.message).toBe(`Expected at most 223 groups (memoryLimit 100000 bytes, ${perGroup(16)} bytes per group at 16 bins) for other but received [3000] (3000 groups); use fewer bins or a larger memoryLimit`);
    const s = JSON.parse(JSON.stringify(big.toJSON()));
    expect(s.options.memoryLimit).toBe(DEFAULT_LIMIT);
    expect(() => Observer.fromJSON({ ...s, options: { ...s.options, memoryLimit: 100000 } })).toThrow(/^Expected at most 223 groups .* for state\.state\.groupShape but received \[3000\] \(3000 groups\)/);
    // different limits, same numerics: merge is allowed
    const a = new PercentileObserver({ granularity: { axis: 0 }, bins: 16, memoryLimit: 2 ** 31 }).observe(x, [3000, 2]);
    expect(() => a.merge(big)).not.toThrow();
  });

  it('options that size memory have documented maxima', () => {
    expect(() => new PercentileObserver({ memoryLimit: 0 } as never)).toThrow(new RangeError('Expected an integer between 1 and 1099511627776 for memoryLimit but received 0'));
    expect(() => new PercentileObserver({ memoryLimit: 2 ** 41 } as never)).toThrow(RangeError);
    expect(() => new PercentileObserver({ memoryLimit: '1' } as never)).toThrow(new TypeError("Expected an integer between 1 and 1099511627776 for memoryLimit but received string '1'"));
    expect(() => new HistogramObserver({ bins: 2 ** 20 + 1 })).toThrow(new RangeError('Expected an integer between 1 and 1048576 for bins but received 1048577'));
    expect(() => new MSEObserver({ upsampleRate: 4097 })).toThrow(new RangeError('Expected an integer between 1 and 4096 for upsampleRate but received 4097'));
    expect(() => new MSEObserver({ gridSize: 100001 })).toThrow(RangeError);
    expect(() => new EntropyObserver({ levels: 2 ** 16 + 1 })).toThrow(RangeError);
  });
});

describe('searches are bounded in time, not only memory (#14)', () => {
  it('bins x levels (entropy) and bins x gridSize (MSE, softmax) above 2^28 are refused up front', () => {
    expect(() => new EntropyObserver({ bins: 2 ** 20, levels: 2 ** 16 }))
      .toThrow('Expected bins x levels of at most 268435456 (the entropy threshold search takes that many steps per group) but received 1048576 x 65536 = 68719476736');
    expect(() => new MSEObserver({ bins: 2 ** 20, gridSize: 100000 })).toThrow(RangeError);
    expect(() => new SoftmaxCrossEntropyObserver({ bins: 2 ** 20, gridSize: 100000 })).toThrow('softmax cross-entropy grid');
    // the largest allowed work still completes
    const o = new MSEObserver({ bins: 2 ** 14, gridSize: 2 ** 14 });
    o.observe(Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i)));
    expect(o.calculateQParams().scale[0]).toBeGreaterThan(0);
    // and so does a state file asking for more
    const state = JSON.parse(JSON.stringify(new EntropyObserver().toJSON()));
    state.options.bins = 2 ** 20;
    state.options.levels = 2 ** 16;
    expect(() => Observer.fromJSON(state)).toThrow(RangeError);
  });
});
