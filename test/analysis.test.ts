// analyzeModel, the sensitivity runs and planMixedPrecision (lib/analysis): observer ranges and
// SQNR against direct computation on known tensors, a constructed model with one fragile layer,
// plans on real MNIST and Fashion-MNIST models (small subsets), and bad input.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  analyzeModel, data, demo, EntropyObserver, HistogramObserver, measurePlan, MinMaxObserver, MSEObserver, nn, PercentileObserver,
  PerChannelMinMaxObserver, planMixedPrecision, quantizeModel,
} from '../lib/index';
import type { ModelAnalysis, Observer, RangeResult } from '../lib/index';

const f32 = Math.fround;
function rhe(v: number): number {
  const f = Math.floor(v), d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}
/** SQNR (dB) of fake-quantizing x with per-group scale / zero point, written out here (onnx formula: round(x / s)). */
function directSqnr(x: Float32Array, group: (i: number) => number, scale: ArrayLike<number>, zp: ArrayLike<number>, qmin: number, qmax: number): number {
  let sig = 0, noise = 0;
  for (let i = 0; i < x.length; i++) {
    const g = group(i);
    const q = Math.min(qmax, Math.max(qmin, rhe(f32(x[i] / scale[g])) + zp[g]));
    const d = x[i] - f32((q - zp[g]) * scale[g]);
    sig += x[i] * x[i];
    noise += d * d;
  }
  return noise === 0 ? Infinity : 10 * Math.log10(sig / noise);
}
/** A normal draw with this mean and standard deviation (Rng.normal is the standard one). */
const gauss = (rng: nn.Rng, mean: number, sd: number) => mean + sd * rng.normal();
const find = (rs: RangeResult[], observer: string, bits: number, g: 'per-tensor' | 'per-channel') =>
  rs.find((r) => r.observer === observer && r.bits === bits && r.granularity === g)!;

function linear(inF: number, outF: number, w: (o: number, i: number) => number, b: (o: number) => number = () => 0): nn.Linear {
  const l = new nn.Linear(inF, outF);
  for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) l.weight.data[o * inF + i] = w(o, i);
  for (let o = 0; o < outF; o++) l.bias!.data[o] = b(o);
  return l;
}

describe('analyzeModel: ranges and SQNR against direct computation', () => {
  const rng = new nn.Rng(7);
  // Weight [6, 12] with an outlier row (channel 4), inputs 300 rows of 12.
  const l0 = linear(12, 6, (o, i) => (o === 4 ? 8 : 1) * gauss(rng, 0, 0.2) + (o === 4 && i === 3 ? 3 : 0), (o) => 0.1 * o);
  const model = new nn.Sequential(l0, new nn.ReLU(), linear(6, 3, () => gauss(rng, 0, 0.5)));
  const rows = 300;
  const x = Float32Array.from({ length: rows * 12 }, () => gauss(rng, 0.2, 1));
  const a = analyzeModel(model, { calibrationData: x, bits: [8, 4, 3], batchSize: 64, sensitivity: false, histogramBins: 40 });

  it('describes the model and its layers', () => {
    expect(a.model.layers.map((l) => `${l.name}:${l.type}`)).toEqual(['0:Linear', '1:ReLU', '2:Linear']);
    expect(a.layers.map((l) => l.name)).toEqual(['0', '2']);
    expect(a.calibration.rows).toBe(rows);
    expect(a.model.parameters).toBe(12 * 6 + 6 + 6 * 3 + 3);
    expect(a.sensitivity).toBeNull();
  });

  it('weights: min/max, moments, histogram and per-channel statistics', () => {
    const w = l0.weight.data;
    const t = a.layers[0].weight;
    let mn = Infinity, mx = -Infinity, s = 0, ss = 0;
    for (const v of w) { mn = Math.min(mn, v); mx = Math.max(mx, v); s += v; ss += v * v; }
    expect(t.min).toBe(mn);
    expect(t.max).toBe(mx);
    expect(t.mean).toBeCloseTo(s / w.length, 12);
    expect(t.std).toBeCloseTo(Math.sqrt(ss / w.length - (s / w.length) ** 2), 10);
    expect(t.histogram.counts.reduce((p, q) => p + q, 0)).toBe(w.length);
    expect(t.histogram.counts.length).toBe(40);
    const rowMax = [...Array(6).keys()].map((o) => Math.max(...Array.from(w.subarray(o * 12, o * 12 + 12), Math.abs)));
    expect(t.channels.axis).toBe(0);
    expect(t.channels.absMax.map((v) => f32(v))).toEqual(rowMax.map((v) => f32(v)));
    expect(t.channels.outliers).toEqual([4]);
    const sorted = rowMax.slice().sort((p, q) => p - q);
    expect(t.channels.rangeRatio).toBeCloseTo(rowMax[4] / ((sorted[2] + sorted[3]) / 2), 10);
  });

  it('weights: each observer range is the observer run directly, and its SQNR is computed exactly', () => {
    const w = l0.weight.data;
    const t = a.layers[0].weight;
    const direct: Record<string, (bits: number) => Observer> = {
      minmax: (bits) => new MinMaxObserver({ scheme: 'symmetric', bits }), percentile: (bits) => new PercentileObserver({ scheme: 'symmetric', bits }),
      mse: (bits) => new MSEObserver({ scheme: 'symmetric', bits }), entropy: (bits) => new EntropyObserver({ scheme: 'symmetric', bits }),
      histogram: (bits) => new HistogramObserver({ scheme: 'symmetric', bits }),
    };
    for (const bits of [8, 4, 3]) {
      const qmax = 2 ** (bits - 1) - 1;
      for (const [name, make] of Object.entries(direct)) {
        const q = make(bits).observe(w).calculateQParams();
        const r = find(t.ranges, name, bits, 'per-tensor');
        expect([r.min, r.max, r.scale, r.zeroPoint]).toEqual([q.min[0], q.max[0], q.scale[0], q.zeroPoint[0]]);
        expect(r.sqnrDb).toBeCloseTo(directSqnr(w, () => 0, q.scale, q.zeroPoint, -qmax, qmax), 9);
      }
      // min/max per tensor: scale = max|w| / qmax, written out.
      const amax = Math.max(-t.min, t.max);
      expect(find(t.ranges, 'minmax', bits, 'per-tensor').scale).toBe(f32(amax / qmax));
      // per channel (one scale per output row)
      const pc = new PerChannelMinMaxObserver({ scheme: 'symmetric', bits, axis: 0 }).observe(w, [6, 12]).calculateQParams();
      const r = find(t.ranges, 'minmax', bits, 'per-channel');
      expect(r.channelMax).toEqual(Array.from(pc.max));
      expect(r.sqnrDb).toBeCloseTo(directSqnr(w, (i) => Math.floor(i / 12), pc.scale, pc.zeroPoint, -qmax, qmax), 9);
      const pm = new MSEObserver({ scheme: 'symmetric', bits, granularity: { axis: 0 } }).observe(w, [6, 12]).calculateQParams();
      expect(find(t.ranges, 'mse', bits, 'per-channel').sqnrDb).toBeCloseTo(directSqnr(w, (i) => Math.floor(i / 12), pm.scale, pm.zeroPoint, -qmax, qmax), 9);
      // per channel is never worse than per tensor for min/max; the outlier row makes it much better at 8 bits
      expect(r.sqnrDb).toBeGreaterThan(find(t.ranges, 'minmax', bits, 'per-tensor').sqnrDb);
    }
  });

  it('activations: observers fed the same batches, SQNR over every row, per-channel statistics', () => {
    // The input of layer 2: ReLU(l0(x)), in the analysis' batches of 64 rows.
    const batches: Float32Array[] = [];
    for (let r = 0; r < rows; r += 64) {
      const n = Math.min(64, rows - r);
      batches.push(new nn.ReLU().forward(l0.forward(x.subarray(r * 12, (r + n) * 12), n), n).slice());
    }
    const all = new Float32Array(rows * 6);
    batches.reduce((off, b) => { all.set(b, off); return off + b.length; }, 0);
    const t = a.layers[1].input;
    expect(t.shape).toEqual([rows, 6]);
    expect(t.count).toBe(rows * 6);
    expect(t.min).toBe(0);
    expect(t.channels.axis).toBe(1);
    for (const bits of [8, 4, 3]) {
      for (const name of ['minmax', 'percentile', 'mse', 'entropy', 'histogram'] as const) {
        const ob = name === 'minmax' ? new MinMaxObserver({ scheme: 'asymmetric', bits }) : name === 'percentile' ? new PercentileObserver({ scheme: 'asymmetric', bits })
          : name === 'mse' ? new MSEObserver({ scheme: 'asymmetric', bits }) : name === 'entropy' ? new EntropyObserver({ scheme: 'asymmetric', bits }) : new HistogramObserver({ scheme: 'asymmetric', bits });
        for (const b of batches) ob.observe(b);
        const q = ob.calculateQParams();
        const r = find(t.ranges, name, bits, 'per-tensor');
        expect([r.min, r.max, r.scale, r.zeroPoint]).toEqual([q.min[0], q.max[0], q.scale[0], q.zeroPoint[0]]);
        expect(r.sqnrDb).toBeCloseTo(directSqnr(all, () => 0, q.scale, q.zeroPoint, 0, 2 ** bits - 1), 9);
        let clipped = 0;
        const lo = (0 - q.zeroPoint[0]) * q.scale[0], hi = (2 ** bits - 1 - q.zeroPoint[0]) * q.scale[0];
        for (const v of all) if (v < lo || v > hi) clipped++;
        expect(r.clipped).toBeCloseTo(clipped / all.length, 12);
      }
      const pc = new PerChannelMinMaxObserver({ scheme: 'asymmetric', bits, axis: 1 });
      for (const b of batches) pc.observe(b, [b.length / 6, 6]);
      const q = pc.calculateQParams();
      expect(find(t.ranges, 'minmax', bits, 'per-channel').sqnrDb).toBeCloseTo(directSqnr(all, (i) => i % 6, q.scale, q.zeroPoint, 0, 2 ** bits - 1), 9);
      expect(find(t.ranges, 'mse', bits, 'per-channel')).toBeUndefined(); // activations: min/max and percentile per channel
    }
  });

  it('data given as batches (an array or a function) gives the same analysis as rows', () => {
    const arr = [0, 64, 128, 192, 256].map((r) => x.subarray(r * 12, Math.min(rows, r + 64) * 12));
    const b1 = analyzeModel(model, { calibrationData: arr, bits: [8, 4, 3], sensitivity: false, histogramBins: 40 });
    const b2 = analyzeModel(model, { calibrationData: () => arr.map((v) => ({ x: v })), bits: [8, 4, 3], sensitivity: false, histogramBins: 40 });
    expect(b1).toEqual(a);
    expect(b2).toEqual(a);
  });
});

describe('sensitivity: a model with one fragile layer', () => {
  // Layer '2' has a column of 100s on an input feature that is always 0 (layer 0's unit 0 is dead):
  // it changes nothing in float, but sets every row's weight scale so that the other weights
  // (|w| ~ 0.3) round to 0 or to +-0.8 at 8 bits and below. Layers '0' and '4' are ordinary.
  const rng = new nn.Rng(3);
  const l0 = linear(16, 16, (o) => (o === 0 ? 0 : gauss(rng, 0, 0.4)), (o) => (o === 0 ? -1 : 0.1));
  const l2 = linear(16, 16, (_o, i) => (i === 0 ? 100 : gauss(rng, 0, 0.3)));
  const l4 = linear(16, 4, () => gauss(rng, 0, 0.4));
  const model = new nn.Sequential(l0, new nn.ReLU(), l2, new nn.ReLU(), l4);
  const x = Float32Array.from({ length: 400 * 16 }, () => gauss(rng, 0, 1));
  const y = model.forward(x, 400);
  const labels = Array.from({ length: 400 }, (_, i) => { let b = 0; for (let k = 1; k < 4; k++) if (y[i * 4 + k] > y[i * 4 + b]) b = k; return b; });
  const a = analyzeModel(model, { calibrationData: x.subarray(0, 200 * 16), evalData: { x: x.subarray(200 * 16), labels: labels.slice(200) }, bits: [8, 4] });
  const s = a.sensitivity!;

  it('ranks the fragile layer worst alone and best kept float, at every bit width', () => {
    expect(s.layers).toEqual(['0', '2', '4']);
    expect(s.float.accuracy).toBe(1);
    for (const b of [8, 4]) {
      const single = (l: string) => s.single.find((r) => r.layer === l && r.bits === b)!;
      const allBut = (l: string) => s.allBut.find((r) => r.layer === l && r.bits === b)!;
      expect(single('2').sqnrDb).toBeLessThan(single('0').sqnrDb - 10);
      expect(single('2').sqnrDb).toBeLessThan(single('4').sqnrDb - 10);
      expect(allBut('2').sqnrDb).toBeGreaterThan(allBut('0').sqnrDb + 10);
      expect(allBut('2').sqnrDb).toBeGreaterThan(allBut('4').sqnrDb + 10);
      expect(single('2').accuracyDrop!).toBeGreaterThanOrEqual(Math.max(single('0').accuracyDrop!, single('4').accuracyDrop!));
    }
  });

  it('the runs are real quantizeModel models: sizes and outputs match', () => {
    const q = quantizeModel(model, { mode: 'static', bits: 4, calibrationData: x.subarray(0, 200 * 16), observer: 'histogram', layers: { '0': { mode: 'float' }, '4': { mode: 'float' } } });
    const r = s.single.find((v) => v.layer === '2' && v.bits === 4)!;
    expect(r.bytes).toBe(q.byteLength);
    const out = q.forward(x.subarray(200 * 16), 200), ref = model.forward(x.subarray(200 * 16), 200);
    let noise = 0;
    for (let i = 0; i < out.length; i++) noise += (out[i] - ref[i]) ** 2;
    expect(r.noise).toBeCloseTo(noise, 6);
  });

  it('an SQNR budget keeps the fragile layer float and quantizes the others', () => {
    const plan = planMixedPrecision(a, { budget: { sqnrDb: 30 } });
    expect(plan.feasible).toBe(true);
    expect(plan.layers.map((l) => l.choice === 'float')).toEqual([false, true, false]);
    expect(plan.predicted.sqnrDb).toBeGreaterThanOrEqual(30);
    const m = measurePlan(model, plan, { calibrationData: x.subarray(0, 200 * 16), evalData: { x: x.subarray(200 * 16), labels: labels.slice(200) } });
    expect(m.measured.bytes).toBe(plan.predicted.bytes);
    expect(Math.abs(m.measured.sqnrDb - plan.predicted.sqnrDb)).toBeLessThan(3);
  });
});

// Real data: small MLPs trained here on subsets (two epochs), analyzed on a few hundred rows.
const FASHION = '/usr/share/datasets/fashion-mnist';
const sets: [string, string | null][] = [['mnist', data.mnistDataDir()], ['fashion', fs.existsSync(path.join(FASHION, 'train-images-idx3-ubyte.gz')) ? FASHION : null]];

describe.each(sets)('planMixedPrecision on %s', (name, dir) => {
  it.skipIf(dir === null)('honours its budget (measured on 5000 test images) and is smaller than float', () => {
    const tr = data.loadMnistSync(dir!, 'train'), te = data.loadMnistSync(dir!, 't10k');
    const xTr = data.imagesToFloat32(tr).subarray(0, 8000 * 784), yTr = (tr.labels as Uint8Array).subarray(0, 8000);
    const xTe = data.imagesToFloat32(te).subarray(0, 5000 * 784), yTe = (te.labels as Uint8Array).subarray(0, 5000);
    const { model } = demo.trainMlp(xTr, yTr, xTe.subarray(0, 1000 * 784), yTe.subarray(0, 1000), { epochs: 2, seed: 1 });
    const cal = xTr.subarray(0, 300 * 784);
    const a = analyzeModel(model, { calibrationData: cal, evalData: { x: xTe.subarray(0, 1000 * 784), labels: yTe.subarray(0, 1000) }, observers: ['minmax', 'mse'] });
    for (const budget of [0.5, 1]) {
      const plan = planMixedPrecision(a, { budget });
      expect(plan.feasible).toBe(true);
      expect(plan.predicted.accuracyDropBound!).toBeLessThanOrEqual(budget);
      expect(plan.predicted.bytes).toBeLessThan(0.5 * plan.float.bytes);
      const m = measurePlan(model, plan, { calibrationData: cal, evalData: { x: xTe, labels: yTe } });
      expect(m.measured.bytes).toBe(plan.predicted.bytes);
      expect(m.measured.accuracyDrop!).toBeLessThanOrEqual(budget);
      expect(m.measured.withinBudget).toBe(true);
      expect(Math.abs(m.measured.sqnrDb - plan.predicted.sqnrDb)).toBeLessThan(2);
    }
    // A budget of 0 points: only configurations predicted lossless (e.g. every layer float, or 8 bits where no row flips).
    const strict = planMixedPrecision(a, { budget: 0 });
    expect(strict.predicted.accuracyDrop).toBe(0);
  }, 120000);
});

describe('planMixedPrecision: the predictor', () => {
  const rng = new nn.Rng(11);
  const model = new nn.Sequential(linear(8, 8, () => gauss(rng, 0, 0.5)), new nn.ReLU(), linear(8, 3, () => gauss(rng, 0, 0.5)));
  const x = Float32Array.from({ length: 100 * 8 }, () => gauss(rng, 0, 1));
  const a: ModelAnalysis = analyzeModel(model, { calibrationData: x, bits: [8, 4, 2] });

  it('sums single-layer noise: the predicted SQNR of a configuration is signal / sum of its layers\' noise', () => {
    const s = a.sensitivity!;
    const plan = planMixedPrecision(a, { budget: { sqnrDb: -1000 } });
    // the smallest model: both layers at the smallest size (4 and 2 bits pack alike; ties go to the better SQNR)
    const n = (l: string, b: number) => s.single.find((r) => r.layer === l && r.bits === b)!.noise;
    const choice = plan.layers.map((l) => l.choice);
    expect(choice.every((c) => c === 4 || c === 2)).toBe(true);
    const noise = n('0', choice[0] as number) + n('2', choice[1] as number);
    expect(plan.predicted.sqnrDb).toBeCloseTo(10 * Math.log10(s.signal / noise), 9);
    expect(plan.predicted.accuracyDrop).toBeNull(); // no labels
    expect(plan.quantizeOptions).toEqual({ mode: 'static', observer: 'histogram', layers: { '0': { bits: choice[0] }, '2': { bits: choice[1] } } });
    expect(plan.frontier[0].bytes).toBe(plan.predicted.bytes);
  });

  it('a budget nothing meets keeps every layer float', () => {
    expect(planMixedPrecision(a, { budget: { sqnrDb: 1000 } }).layers.map((l) => l.choice)).toEqual(['float', 'float']); // exact
    const plan = planMixedPrecision(a, { budget: { sqnrDb: 1000 }, candidates: [8, 4, 2] });
    expect(plan.feasible).toBe(false);
    expect(plan.layers.map((l) => l.choice)).toEqual(['float', 'float']);
    expect(plan.quantizeOptions.layers).toEqual({ '0': { mode: 'float' }, '2': { mode: 'float' } });
  });

  it('refuses an accuracy budget without labels, and bad budgets', () => {
    expect(() => planMixedPrecision(a, { budget: 0.5 })).toThrow(/an accuracy budget needs labels/);
    expect(() => planMixedPrecision(a, { budget: -1 })).toThrow(RangeError);
    expect(() => planMixedPrecision(a, { budget: { sqnrDb: 20, accuracyDrop: 1 } as never })).toThrow(/one of \{ accuracyDrop \} or \{ sqnrDb \}/);
    expect(() => planMixedPrecision(a, { budget: { sqnrDb: 20 }, candidates: [3] })).toThrow(/a bit width the analysis measured \(8, 4, 2\)/);
    expect(() => planMixedPrecision({ ...a, sensitivity: null }, { budget: { sqnrDb: 20 } })).toThrow(/sensitivity runs/);
  });
});

describe('analyzeModel: bad input', () => {
  const model = new nn.Sequential(new nn.Linear(4, 3), new nn.ReLU(), new nn.Linear(3, 2));
  const x = new Float32Array(40).fill(0.5);

  it('names what is wrong', () => {
    expect(() => analyzeModel(model, { calibrationData: new Float32Array(0) })).toThrow('Expected at least one input row for options.calibrationData but received none');
    expect(() => analyzeModel(model, { calibrationData: [] })).toThrow('Expected at least one input row for options.calibrationData but received none');
    expect(() => analyzeModel(model, { calibrationData: new Float32Array(10) })).toThrow("Expected a length that is a multiple of 4 (the model's input features) for options.calibrationData but received Float32Array of length 10");
    expect(() => analyzeModel(model, { calibrationData: [x, new Float32Array(6)] })).toThrow(/multiple of 4 .* for options.calibrationData\[1\]/);
    expect(() => analyzeModel(model, { calibrationData: x, evalData: { x: new Float32Array(8), labels: [0, 1, 1] } })).toThrow('Expected 2 labels (one per row of options.evalData.x) for options.evalData.labels but received 3');
    expect(() => analyzeModel(model, { calibrationData: x, evalData: { x: new Float32Array(7) } })).toThrow(/multiple of 4 .* options\.evalData\.x/);
    expect(() => analyzeModel(model, { calibrationData: x, evalData: { x: new Float32Array(8), labels: [0, -1] } })).toThrow(/class index .* options.evalData.labels\[1\]/);
    expect(() => analyzeModel(model, {} as never)).toThrow(/for options.calibrationData but received undefined/);
    expect(() => analyzeModel(model, { calibrationData: (function* () { yield x; })() as never })).toThrow(/one-shot iterable/);
    expect(() => analyzeModel(model, { calibrationData: x, bits: [8, 9] })).toThrow('Expected an integer between 2 and 8 for options.bits[1] but received 9');
    expect(() => analyzeModel(model, { calibrationData: x, observers: ['kl' as never] })).toThrow(/options.observers\[0\]/);
    expect(() => analyzeModel(model, { calibrationData: x, colour: 1 } as never)).toThrow("Unknown option 'colour'");
    expect(() => analyzeModel('model.onnx', { calibrationData: x })).toThrow(/analyzed by analyzeOnnx/);
    expect(() => analyzeModel(new nn.Linear(4, 3), { calibrationData: x })).toThrow(/wrap it: new Sequential/);
    expect(() => analyzeModel(new nn.Sequential(new nn.ReLU()), { calibrationData: x })).toThrow(/at least one Linear layer/);
    expect(() => analyzeModel(model, { calibrationData: new Float32Array(8).fill(NaN), sensitivity: false })).toThrow(/finite values at the input of layer '0'/);
  });

  it('leaves the model as it was (training mode, weights)', () => {
    model.train();
    const before = model.stateDict();
    analyzeModel(model, { calibrationData: x });
    expect(model.training).toBe(true);
    expect(model.stateDict()).toEqual(before);
  });
});
