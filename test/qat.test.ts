// prepareQAT / QATLinear and the fake-quantize modules: structure, defaults, what conversion to int8
// needs (qparams, codes), training, and bad input (unknown options, bits and axes out of range,
// backward before forward, NaN / Inf in x or dy) with their documented errors or behaviour.
import { describe, expect, it } from 'vitest';
import {
  Adam, Dropout, FakeQuantize, Flatten, LearnableFakeQuantize, Linear, LSQ_SCALE_FLOOR, ReLU, Rng, SGD, Sequential, softmaxCrossEntropy, Tanh,
} from '../lib/nn';
import { prepareQAT, QATLinear, qatLayers } from '../lib/qat';
import { MinMaxObserver, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver, HistogramObserver } from '../lib/observers';
import { fakeQuantize } from '../lib/tensor';
import { FLOAT32_EPS } from '../lib/qparams';

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

function mlp(seed = 1): Sequential {
  return new Sequential(new Flatten(), new Linear(8, 6, { rng: seed }), new ReLU(), new Dropout(0.1), new Sequential(new Linear(6, 5, { rng: seed + 1 }), new Tanh()), new Linear(5, 3, { rng: seed + 2 }));
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

describe('prepareQAT', () => {
  it('copies the model: every Linear becomes a QATLinear, other layers copies, the float model untouched', () => {
    const m = mlp();
    const before = m.stateDict();
    const q = prepareQAT(m);
    expect(q).not.toBe(m);
    const layers = qatLayers(q);
    expect(layers.map((l) => l.name)).toEqual(['1', '4.0', '5']);
    expect(q.at(0)).toBeInstanceOf(Flatten);
    expect(q.at(2)).toBeInstanceOf(ReLU);
    expect(q.at(3)).toBeInstanceOf(Dropout);
    expect((q.at(4) as Sequential).at(1)).toBeInstanceOf(Tanh);
    expect(q.at(0)).not.toBe(m.at(0));
    for (const { name, layer } of layers) {
      const src = name === '4.0' ? (m.at(4) as Sequential).at(0) as Linear : m.at(Number(name)) as Linear;
      expect(layer.weight.data).toEqual(src.weight.data);
      expect(layer.weight.data).not.toBe(src.weight.data);
    }
    // training changes the copy only
    const opt = new SGD(q, { lr: 0.5 });
    const x = randn(new Rng(3), 4 * 8);
    const { grad } = softmaxCrossEntropy(q.forward(x, 4), [0, 1, 2, 0]);
    q.backward(grad);
    opt.step();
    const after = m.stateDict();
    for (const k of Object.keys(before)) expect(after[k].data).toEqual(before[k].data);
    expect(q.stateDict()['1.weight'].data).not.toEqual(before['1.weight'].data);
    expect(q.training).toBe(true);
  });

  it('defaults: weights symmetric int8 -127..127 per output feature (moving average, constant 1), inputs asymmetric uint8 per tensor (0.01)', () => {
    const q = prepareQAT(mlp());
    for (const { layer } of qatLayers(q)) {
      const w = layer.weightFakeQuant as FakeQuantize;
      const a = layer.inputFakeQuant as FakeQuantize;
      expect(w).toBeInstanceOf(FakeQuantize);
      expect([w.spec.scheme, w.spec.bits, w.spec.qmin, w.spec.qmax, w.spec.formula]).toEqual(['symmetric', 8, -127, 127, 'pytorch']);
      expect(w.spec.granularity).toEqual({ axis: 0 });
      expect(w.observer).toBeInstanceOf(MovingAveragePerChannelMinMaxObserver);
      expect(w.observer.toJSON().options.averagingConstant).toBe(1);
      expect([a.spec.scheme, a.spec.bits, a.spec.qmin, a.spec.qmax, a.spec.granularity]).toEqual(['asymmetric', 8, 0, 255, 'per-tensor']);
      expect(a.observer).toBeInstanceOf(MovingAverageMinMaxObserver);
      expect(a.observer.toJSON().options.averagingConstant).toBe(0.01);
    }
  });

  it('parameter names: weight, bias, and the learnable modules\' scale / zero_point', () => {
    expect(Object.keys(prepareQAT(mlp()).stateDict())).toEqual(['1.weight', '1.bias', '4.0.weight', '4.0.bias', '5.weight', '5.bias']);
    expect(Object.keys(prepareQAT(mlp(), { learnable: true }).stateDict())).toEqual([
      '1.weight', '1.bias', '1.input_fake_quant.scale', '1.input_fake_quant.zero_point', '1.weight_fake_quant.scale', '1.weight_fake_quant.zero_point',
      '4.0.weight', '4.0.bias', '4.0.input_fake_quant.scale', '4.0.input_fake_quant.zero_point', '4.0.weight_fake_quant.scale', '4.0.weight_fake_quant.zero_point',
      '5.weight', '5.bias', '5.input_fake_quant.scale', '5.input_fake_quant.zero_point', '5.weight_fake_quant.scale', '5.weight_fake_quant.zero_point',
    ]);
  });

  it('options: bits, granularity, observer, learnable, per-layer overrides (and mode float)', () => {
    const calls: string[] = [];
    const q = prepareQAT(mlp(), {
      weight: { bits: 4 },
      activation: { bits: 6 },
      observer: 'minmax',
      layers: {
        '4.0': { weight: { bits: 2, granularity: 'per-tensor' }, observer: (l, role) => { calls.push(`${l}:${role}`); return role === 'weight' ? new MinMaxObserver({ scheme: 'symmetric', bits: 2, formula: 'pytorch' }) : new HistogramObserver({ scheme: 'asymmetric', bits: 6, formula: 'pytorch' }); } },
        '5': { learnable: true, weight: { init: 'mse', gradScaling: false } },
      },
    });
    const [a, b, c] = qatLayers(q).map((l) => l.layer);
    q.forward(randn(new Rng(2), 16), 2);
    expect([a.weightFakeQuant.spec.bits, a.inputFakeQuant.spec.bits, a.inputFakeQuant.spec.qmax]).toEqual([4, 6, 63]);
    expect((a.weightFakeQuant as FakeQuantize).observer).toBeInstanceOf(PerChannelMinMaxObserver);
    expect((a.inputFakeQuant as FakeQuantize).observer).toBeInstanceOf(MinMaxObserver);
    expect(calls).toEqual(['4.0:weight', '4.0:activation']);
    expect(b.weightFakeQuant.spec.granularity).toBe('per-tensor');
    expect(b.qparams().weight.granularity).toBe('per-tensor');
    expect((b.inputFakeQuant as FakeQuantize).observer).toBeInstanceOf(HistogramObserver);
    expect(c.weightFakeQuant).toBeInstanceOf(LearnableFakeQuantize);
    expect((c.weightFakeQuant as LearnableFakeQuantize).gradScaling).toBe(false);
    expect((c.weightFakeQuant as LearnableFakeQuantize).init).toBe('mse');
    expect(c.inputFakeQuant).toBeInstanceOf(LearnableFakeQuantize);
    const f = prepareQAT(mlp(), { layers: { '5': { mode: 'float' } } });
    expect(qatLayers(f).map((l) => l.name)).toEqual(['1', '4.0']);
    expect(f.at(5)).toBeInstanceOf(Linear);
  });

  it('weight qparams exist right after prepareQAT (observed once); input qparams after a training forward', () => {
    const q = prepareQAT(mlp());
    const l = qatLayers(q)[0].layer;
    expect(() => l.qparams()).toThrow(/input fake-quant has no qparams yet/);
    q.eval();
    expect(() => q.forward(new Float32Array(8), 1)).toThrow(/FakeQuantize has no qparams: its observer has seen nothing \(eval mode freezes the observer\)/);
    q.train();
    q.forward(randn(new Rng(1), 16), 2);
    const p = l.qparams();
    expect(p.weight.scale.length).toBe(6);
    expect(Array.from(p.weight.zeroPoint)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(p.input.qmin).toBe(0);
    expect(p.input.qmax).toBe(255);
    // per-channel symmetric scales are absmax / 127 of each output row (PyTorch's formula)
    const w = l.weight.data;
    for (let j = 0; j < 6; j++) {
      let m = 0;
      for (let k = 0; k < 8; k++) m = Math.max(m, Math.abs(w[j * 8 + k]));
      expect(p.weight.scale[j]).toBe(Math.max(Math.fround(m / 127), FLOAT32_EPS));
    }
  });

  it('eval mode freezes the observers: the qparams stay, whatever the data', () => {
    const q = prepareQAT(mlp());
    const rng = new Rng(7);
    q.forward(randn(rng, 32), 4);
    q.eval();
    const p0 = qatLayers(q).map((l) => l.layer.qparams());
    q.forward(randn(rng, 32, 50), 4);
    const p1 = qatLayers(q).map((l) => l.layer.qparams());
    expect(p1).toEqual(p0);
    q.train();
    q.forward(randn(rng, 32, 50), 4);
    expect(qatLayers(q)[0].layer.qparams().input.scale).not.toBe(p0[0].input.scale);
  });

  for (const [bits, gran, learnable] of [[8, 'per-channel', false], [4, 'per-channel', false], [2, 'per-channel', false], [3, 'per-tensor', false], [4, 'per-channel', true], [2, 'per-tensor', true]] as const) {
    it(`quantizedWeight(): codes whose dequantize() is the forward's fake-quantized weight, bit for bit (${bits}-bit ${gran}${learnable ? ', LSQ' : ''})`, () => {
      const q = prepareQAT(mlp(), { weight: { bits, granularity: gran }, learnable });
      const rng = new Rng(bits);
      const opt = new Adam(q, { lr: 0.01 });
      for (let s = 0; s < 3; s++) {
        const { grad } = softmaxCrossEntropy(q.forward(randn(rng, 40), 5), [0, 1, 2, 1, 0]);
        q.zeroGrad();
        q.backward(grad);
        opt.step();
      }
      q.eval();
      for (const { layer } of qatLayers(q)) {
        const t = layer.quantizedWeight();
        expect(t.shape).toEqual([layer.outFeatures, layer.inFeatures]);
        expect(t.bits).toBe(bits);
        expect(t.dtype).toBe(bits <= 4 ? 'int4' : 'int8');
        const p = layer.qparams();
        expect(t.scale).toEqual(p.weight.scale);
        // the fake-quantized weight the eval forward multiplies by
        const fq = fakeQuantize(layer.weight.data, t.shape, { scale: p.weight.scale, zeroPoint: p.weight.zeroPoint }, {
          scheme: 'symmetric', bits, formula: 'pytorch', granularity: gran === 'per-channel' ? { axis: 0 } : 'per-tensor',
        });
        expect(sameBits(t.dequantize(), fq)).toBe(true);
        expect(sameBits(layer.weightFakeQuant.forward(layer.weight.data, layer.outFeatures), fq)).toBe(true);
      }
    });
  }

  it('the eval forward is fq(x) fq(W)^T + b at every Linear input (after ReLU, Tanh, Dropout), as the static int8 model quantizes', () => {
    const q = prepareQAT(mlp());
    const rng = new Rng(11);
    for (let s = 0; s < 3; s++) q.forward(randn(rng, 48), 6);
    q.eval();
    const x = randn(rng, 24);
    const y = q.forward(x, 3);
    // by hand
    const fqAct = (v: Float32Array, p: { scale: number; zeroPoint: number }) => fakeQuantize(v, [v.length], { scale: p.scale, zeroPoint: p.zeroPoint }, { scheme: 'asymmetric', formula: 'pytorch' });
    const lin = (v: Float32Array, l: QATLinear, batch: number) => {
      const p = l.qparams();
      const xv = fqAct(v, p.input);
      const w = l.weightFakeQuant.forward(l.weight.data, l.outFeatures);
      const out = new Float32Array(batch * l.outFeatures);
      for (let r = 0; r < batch; r++) {
        for (let j = 0; j < l.outFeatures; j++) {
          let s = 0;
          for (let k = 0; k < l.inFeatures; k++) s += xv[r * l.inFeatures + k] * w[j * l.inFeatures + k];
          out[r * l.outFeatures + j] = s + l.bias!.data[j];
        }
      }
      return out;
    };
    const [a, b, c] = qatLayers(q).map((l) => l.layer);
    let h = lin(x, a, 3).map((v) => Math.max(v, 0));
    h = lin(h, b, 3).map(Math.tanh);
    const want = lin(h, c, 3);
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - want[i])).toBeLessThanOrEqual(1e-5);
  });

  it('trains with the existing optimizers and losses: the loss falls (STE and LSQ)', () => {
    for (const learnable of [false, true]) {
      const rng = new Rng(5);
      const model = new Sequential(new Linear(4, 16, { rng: 1 }), new ReLU(), new Linear(16, 2, { rng: 2 }));
      const q = prepareQAT(model, { weight: { bits: 4 }, learnable });
      const opt = new Adam(q, { lr: 0.01 });
      const x = randn(rng, 64 * 4);
      const labels = Array.from({ length: 64 }, (_, i) => (x[i * 4] + x[i * 4 + 1] > 0 ? 1 : 0));
      let first = 0;
      let last = 0;
      for (let s = 0; s < 150; s++) {
        const { loss, grad } = softmaxCrossEntropy(q.forward(x, 64), labels);
        if (s === 0) first = loss;
        last = loss;
        opt.zeroGrad();
        q.backward(grad, { inputGrad: false });
        opt.step();
      }
      expect(last, `learnable ${learnable}`).toBeLessThan(first * 0.5);
      if (learnable) {
        const l = qatLayers(q)[0].layer;
        expect((l.inputFakeQuant as LearnableFakeQuantize).scale.grad.some((v) => v !== 0)).toBe(true);
      }
    }
  });

  it('a learnable input fake-quant gets its gradients even when the model does not need dL/dx', () => {
    const q = prepareQAT(new Sequential(new Linear(3, 2, { rng: 1 })), { learnable: true });
    const l = qatLayers(q)[0].layer;
    const y = q.forward(Float32Array.of(0.5, -1, 2, 1, 0.25, -0.5), 2);
    const out = q.backward(Float32Array.from(y, (_, i) => (i % 2 ? 1 : -1)), { inputGrad: false });
    expect(out.length).toBe(0);
    const a = l.inputFakeQuant as LearnableFakeQuantize;
    expect(a.scale.grad[0]).not.toBe(0);
  });
});

describe('FakeQuantize / LearnableFakeQuantize as Modules', () => {
  it('sit inside a Sequential: forward, backward, train / eval, parameters', () => {
    const fq = new FakeQuantize({ bits: 6 });
    const lsq = new LearnableFakeQuantize({ scheme: 'symmetric', bits: 4, granularity: { axis: 1 }, channels: 3 });
    const m = new Sequential(fq, new Linear(4, 3, { rng: 1 }), lsq, new ReLU(), new Linear(3, 2, { rng: 2 }));
    expect(Object.keys(m.stateDict())).toEqual(['1.weight', '1.bias', '2.scale', '2.zero_point', '4.weight', '4.bias']);
    const opt = new SGD(m, { lr: 0.1 });
    const x = randn(new Rng(4), 20);
    const { grad } = softmaxCrossEntropy(m.forward(x, 5), [0, 1, 1, 0, 1]);
    const dx = m.backward(grad);
    expect(dx.length).toBe(20);
    expect(lsq.scale.grad.some((v) => v !== 0)).toBe(true);
    const s0 = lsq.scale.data.slice();
    opt.step();
    expect(lsq.scale.data).not.toEqual(s0);
    m.eval();
    expect(fq.training).toBe(false);
    expect(lsq.training).toBe(false);
    const q0 = fq.qparams;
    m.forward(randn(new Rng(5), 20, 10), 5);
    expect(fq.qparams).toEqual(q0);
    expect(String(m)).toMatch(/FakeQuantize\(fake_quant_enabled=true, observer_enabled=true, quant_min=0, quant_max=63/);
    expect(String(m)).toMatch(/LearnableFakeQuantize\(quant_min=-7, quant_max=7, scheme=symmetric, granularity=axis 1, channels=3/);
  });

  it('an observer instance that has already seen data gives qparams at once (eval works without training)', () => {
    const ob = new MinMaxObserver({ scheme: 'asymmetric', formula: 'pytorch' });
    ob.observe(Float32Array.of(-1, 3));
    const f = new FakeQuantize({ observer: ob }).eval();
    expect(f.qparams!.scale[0]).toBe(Math.fround(Math.fround(4) / 255));
    expect(f.calculateQParams()).toEqual(f.qparams);
    const y = f.forward(Float32Array.of(0.5, 10), 1);
    expect(y[1]).toBe(Math.fround((255 - f.qparams!.zeroPoint[0]) * f.qparams!.scale[0]));
  });
});

describe('bad input: FakeQuantize and LearnableFakeQuantize', () => {
  it('unknown options, bits out of range, axis out of range, wrong granularities: clear errors', () => {
    expect(() => new FakeQuantize({ bogus: 1 } as never)).toThrow(TypeError);
    expect(() => new FakeQuantize({ bogus: 1 } as never)).toThrow(/Unknown option 'bogus' in opts/);
    for (const bits of [1, 9, 2.5, 0]) expect(() => new FakeQuantize({ bits })).toThrow(RangeError);
    expect(() => new FakeQuantize({ bits: 9 })).toThrow(/an integer between 2 and 8 for opts.bits/);
    for (const axis of [2, -3, 7]) {
      expect(() => new FakeQuantize({ granularity: { axis } })).toThrow(RangeError);
      expect(() => new LearnableFakeQuantize({ granularity: { axis }, channels: 2 })).toThrow(RangeError);
    }
    expect(() => new FakeQuantize({ granularity: { axis: 2 } })).toThrow(/an axis between -2 and 1 \(inputs are \[batch, features\]\) for opts.granularity.axis but received 2/);
    expect(() => new FakeQuantize({ granularity: { axis: 0.5 } })).toThrow(TypeError);
    expect(() => new FakeQuantize({ granularity: { axis: 0, blockSize: 4 } as never })).toThrow(/Unknown option 'blockSize'/);
    expect(() => new FakeQuantize({ granularity: 'per-channel' as never })).toThrow(TypeError);
    expect(() => new FakeQuantize({ observer: 'histogram' as never })).toThrow(/one of 'moving-average', 'minmax' for opts.observer/);
    expect(() => new FakeQuantize({ observer: 'minmax', averagingConstant: 0.1 })).toThrow(TypeError);
    expect(() => new FakeQuantize({ averagingConstant: 0 })).toThrow(RangeError);
    expect(() => new FakeQuantize({ averagingConstant: 1.5 })).toThrow(RangeError);
    expect(() => new FakeQuantize({ observer: new MinMaxObserver({ bits: 8 }), bits: 4 })).toThrow(/for opts.bits but received/);
    expect(() => new FakeQuantize({ observer: new MinMaxObserver(), averagingConstant: 0.5 })).toThrow(TypeError);
    expect(() => new LearnableFakeQuantize({ bogus: true } as never)).toThrow(/Unknown option 'bogus'/);
    expect(() => new LearnableFakeQuantize({ bits: 12 })).toThrow(RangeError);
    expect(() => new LearnableFakeQuantize({ formula: 'onnx' })).toThrow(/'pytorch' \(the learnable ops multiply/);
    expect(() => new LearnableFakeQuantize({ granularity: { axis: 1 } })).toThrow(/for opts.channels/);
    expect(() => new LearnableFakeQuantize({ granularity: { axis: 1 }, scale: Float32Array.of(1, 2), channels: 3 })).toThrow(RangeError);
    expect(() => new LearnableFakeQuantize({ scale: 0 })).toThrow(RangeError);
    expect(() => new LearnableFakeQuantize({ scale: -1 })).toThrow(RangeError);
    expect(() => new LearnableFakeQuantize({ scale: NaN })).toThrow(RangeError);
    expect(() => new LearnableFakeQuantize({ zeroPoint: 3 })).toThrow(/zeroPoint is given/);
    expect(() => new LearnableFakeQuantize({ scheme: 'symmetric', scale: 0.1, zeroPoint: 2 })).toThrow(/fixes the zero point/);
    expect(() => new LearnableFakeQuantize({ init: 'histogram' as never })).toThrow(RangeError);
    expect(() => new LearnableFakeQuantize({ gradScaling: 1 as never })).toThrow(TypeError);
  });

  it('backward before forward, wrong dy length: errors', () => {
    expect(() => new FakeQuantize().backward(new Float32Array(2))).toThrow('FakeQuantize.backward called before forward');
    expect(() => new LearnableFakeQuantize({ scale: 0.1 }).backward(new Float32Array(2))).toThrow('LearnableFakeQuantize.backward called before forward');
    const q = prepareQAT(new Sequential(new Linear(2, 2, { rng: 1 })));
    expect(() => q.backward(new Float32Array(2))).toThrow('QATLinear.backward called before forward');
    const f = new FakeQuantize();
    f.forward(Float32Array.of(1, 2, 3, 4), 2);
    expect(() => f.backward(new Float32Array(3))).toThrow(/length 4/);
    expect(() => f.backward(new Float64Array(4) as never)).toThrow(TypeError);
  });

  it('NaN in x: RangeError naming the element (both modules, training and eval)', () => {
    const x = Float32Array.of(1, 2, NaN, 4);
    expect(() => new FakeQuantize().forward(x, 2)).toThrow(/for x\[2\] but received NaN/);
    const l = new LearnableFakeQuantize({ scale: 0.1 });
    expect(() => l.forward(x, 2)).toThrow(/for x\[2\] but received NaN/);
    expect(() => l.eval().forward(x, 2)).toThrow(RangeError);
  });

  it('NaN or Infinity in dy: RangeError naming the element', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const f = new FakeQuantize();
      f.forward(Float32Array.of(1, 2, 3, 4), 2);
      expect(() => f.backward(Float32Array.of(0, bad, 0, 0))).toThrow(/for dy\[1\]/);
      const l = new LearnableFakeQuantize({ scale: 0.1 });
      l.forward(Float32Array.of(1, 2, 3, 4), 2);
      expect(() => l.backward(Float32Array.of(0, 0, bad, 0))).toThrow(/for dy\[2\]/);
      expect(l.scale.grad[0]).toBe(0); // nothing accumulated
    }
  });

  it('+-Infinity in x: FakeQuantize skips it in the observer, clips it to the range edge, gradient 0', () => {
    const f = new FakeQuantize({ observer: 'minmax' });
    const y = f.forward(Float32Array.of(-1, 0, 3, Infinity, -Infinity, 1), 1);
    expect(f.observer.stats().infCount).toBe(2);
    const q = f.qparams!;
    expect(q.scale[0]).toBe(Math.fround(Math.fround(4) / 255));
    expect(y[3]).toBe(Math.fround((255 - q.zeroPoint[0]) * q.scale[0]));
    expect(y[4]).toBe(Math.fround((0 - q.zeroPoint[0]) * q.scale[0]));
    const dx = f.backward(Float32Array.of(1, 1, 1, 1, -1, 1));
    expect(Array.from(dx)).toEqual([1, 1, 1, 0, -0, 1]);
  });

  it('+-Infinity in x: LearnableFakeQuantize clips it, dx 0, and its scale / zero-point terms are the clipped ones (finite)', () => {
    const l = new LearnableFakeQuantize({ scale: 0.5, zeroPoint: 10, bits: 4, gradScaling: false });
    const y = l.forward(Float32Array.of(Infinity, -Infinity), 1);
    expect(Array.from(y)).toEqual([Math.fround((15 - 10) * 0.5), Math.fround((0 - 10) * 0.5)]);
    const dx = l.backward(Float32Array.of(1, 1));
    expect(Array.from(dx)).toEqual([0, 0]);
    expect(l.scale.grad[0]).toBe((15 - 10) + (0 - 10));
    expect(l.zeroPoint.grad[0]).toBe(-0.5 * 2);
  });

  it('eval forward before any observation / initialisation: an error saying what to do', () => {
    expect(() => new FakeQuantize().eval().forward(new Float32Array(4), 2)).toThrow(/has no qparams/);
    expect(() => new FakeQuantize().enableObserver(false).forward(new Float32Array(4), 2)).toThrow(/the observer is disabled/);
    expect(() => new LearnableFakeQuantize().eval().forward(new Float32Array(4), 2)).toThrow(/run a training forward/);
    // with fake-quant off nothing is needed: x passes through
    const x = Float32Array.of(1, 2);
    expect(new FakeQuantize().eval().enableFakeQuant(false).forward(x, 1)).toBe(x);
  });

  it('per-channel: a batch whose channel count differs is a RangeError', () => {
    const f = new FakeQuantize({ granularity: { axis: 1 } });
    f.forward(new Float32Array(6), 2);
    expect(() => f.forward(new Float32Array(6), 3)).toThrow(RangeError);
    const l = new LearnableFakeQuantize({ granularity: { axis: 0 }, channels: 2 });
    expect(() => l.forward(new Float32Array(6), 3)).toThrow(/a batch with 2 rows/);
  });

  it(`the learnable scale never becomes zero, negative or NaN: clamped at ${LSQ_SCALE_FLOOR} (float32 eps) in place, NaN / Infinity refused`, () => {
    expect(LSQ_SCALE_FLOOR).toBe(2 ** -23);
    const l = new LearnableFakeQuantize({ scale: Float32Array.of(0.1, 0.2), granularity: { axis: 1 } });
    const x = Float32Array.of(0.01, 0.3);
    l.scale.data.set([0, -5]);
    l.forward(x, 1);
    expect(Array.from(l.scale.data)).toEqual([LSQ_SCALE_FLOOR, LSQ_SCALE_FLOOR]);
    expect(Array.from(l.calculateQParams().scale)).toEqual([LSQ_SCALE_FLOOR, LSQ_SCALE_FLOOR]);
    l.scale.data[1] = NaN;
    expect(() => l.forward(x, 1)).toThrow(/for scale\[1\] but received NaN/);
    l.scale.data[1] = Infinity;
    expect(() => l.forward(x, 1)).toThrow(RangeError);
    l.scale.data[1] = 0.2;
    l.zeroPoint.data[0] = NaN;
    expect(() => l.forward(x, 1)).toThrow(/for zeroPoint\[0\]/);
    // a huge learning rate drives the scale negative: the next forward clamps it
    const m = new LearnableFakeQuantize({ scale: 0.1 });
    m.forward(Float32Array.of(50, -5, 0.3), 1); // 50 clips at 255: scale gradient 255 * gf
    m.backward(Float32Array.of(1, 1, 1));
    expect(m.scale.grad[0]).toBeGreaterThan(0);
    new SGD([m.scale], { lr: 1e6 }).step();
    expect(m.scale.data[0]).toBeLessThan(0);
    m.forward(Float32Array.of(50, -5, 0.3), 1);
    expect(m.scale.data[0]).toBe(LSQ_SCALE_FLOOR);
  });

  it('symmetric learnable: the zero point is fixed (not learned, requiresGrad false)', () => {
    const l = new LearnableFakeQuantize({ scheme: 'symmetric', scale: 0.1 });
    expect(l.zeroPoint.requiresGrad).toBe(false);
    l.zeroPoint.data[0] = 3;
    l.forward(Float32Array.of(1, -1), 1);
    expect(l.zeroPoint.data[0]).toBe(0);
    expect(Array.from(l.calculateQParams().zeroPoint)).toEqual([0]);
  });

  it('FakeQuantize with fake-quant off: forward returns x itself and backward dy (observer still runs)', () => {
    const f = new FakeQuantize().enableFakeQuant(false);
    const x = Float32Array.of(1, 2, 3);
    expect(f.forward(x, 1)).toBe(x);
    expect(f.qparams).not.toBeNull();
    const dy = Float32Array.of(1, -1, 2);
    expect(f.backward(dy)).toBe(dy);
  });
});

describe('bad input: prepareQAT', () => {
  const m = () => new Sequential(new Linear(4, 3, { rng: 1 }), new ReLU(), new Linear(3, 2, { rng: 2 }));
  it('model and options', () => {
    expect(() => prepareQAT(new Linear(2, 2) as never)).toThrow(/wrap it: new Sequential\(layer\)/);
    expect(() => prepareQAT({} as never)).toThrow(TypeError);
    expect(() => prepareQAT(m(), { mode: 'static' } as never)).toThrow(/Unknown option 'mode' in options/);
    expect(() => prepareQAT(m(), { weight: { bits: 9 } })).toThrow(/between 2 and 8 for options.weight.bits/);
    expect(() => prepareQAT(m(), { activation: { bits: 1 } })).toThrow(/for options.activation.bits/);
    expect(() => prepareQAT(m(), { weight: { granularity: { axis: 0 } as never } })).toThrow(TypeError);
    expect(() => prepareQAT(m(), { weight: { blockSize: 2 } as never })).toThrow(/Unknown option 'blockSize' in options.weight/);
    expect(() => prepareQAT(m(), { activation: { granularity: 'per-channel' } })).toThrow(/'per-tensor' \(the int8 GEMM takes one input scale/);
    expect(() => prepareQAT(m(), { activation: { signed: true } })).toThrow(/for options.activation.signed/);
    expect(() => prepareQAT(m(), { learnable: 'yes' as never })).toThrow(TypeError);
    expect(() => prepareQAT(m(), { learnable: true, weight: { observer: 'minmax' } })).toThrow(/learnable fake-quant has no observer/);
    expect(() => prepareQAT(m(), { weight: { init: 'mse' } })).toThrow(/learnable is false/);
    expect(() => prepareQAT(m(), { learnable: true, weight: { formula: 'onnx' } })).toThrow(/for options.weight.formula/);
    expect(() => prepareQAT(m(), { observer: 'entropy' as never })).toThrow(RangeError);
    expect(() => prepareQAT(m(), { layers: { '1': {} } })).toThrow(/names of Linear layers \('0', '2'\)/);
    expect(() => prepareQAT(m(), { layers: { '0': { mode: 'dynamic' as never } } })).toThrow(RangeError);
    expect(() => prepareQAT(m(), { layers: { '0': { bits: 4 } as never } })).toThrow(/Unknown option 'bits' in options.layers\['0'\]/);
    expect(() => prepareQAT(m(), { layers: { '0': { weight: { bits: 10 } } } })).toThrow(/for options.layers\['0'\].weight.bits/);
    expect(() => prepareQAT(m(), { observer: () => ({}) as never })).toThrow(/Expected an Observer for observer\('0', 'weight'\)/);
    const shared = new MinMaxObserver({ formula: 'pytorch', scheme: 'asymmetric' });
    expect(() => prepareQAT(m(), { layers: { '0': { observer: () => shared }, '2': { observer: () => shared } }, weight: { granularity: 'per-tensor', scheme: 'asymmetric', bits: 8 } })).toThrow(/each needs its own|Expected a new Observer/);
  });

  it('non-finite weights and an already prepared model', () => {
    const bad = m();
    (bad.at(2) as Linear).weight.data[1] = NaN;
    expect(() => prepareQAT(bad)).toThrow(/model layer '2' weight/);
    const q = prepareQAT(m());
    expect(() => prepareQAT(q)).toThrow(/already prepared for QAT/);
  });

  it('QATLinear checks its fake-quant modules', () => {
    const lin = new Linear(3, 2, { rng: 1 });
    expect(() => new QATLinear(lin, { weight: new FakeQuantize(), input: new FakeQuantize({ granularity: { axis: 1 } }) })).toThrow(/per-tensor fake-quant of unsigned codes/);
    expect(() => new QATLinear(lin, { weight: new FakeQuantize({ granularity: { axis: 1 } }), input: new FakeQuantize() })).toThrow(/\{ axis: 0 \}/);
    const f = new FakeQuantize();
    expect(() => new QATLinear(lin, { weight: f, input: f })).toThrow(/two different modules/);
    expect(() => new QATLinear(lin, { weight: new LearnableFakeQuantize({ granularity: { axis: 0 }, channels: 3, scheme: 'symmetric' }), input: new FakeQuantize() })).toThrow(/with 2 channels/);
    expect(() => new QATLinear(lin, { weight: {} as never, input: new FakeQuantize() })).toThrow(TypeError);
  });
});
