// quantizeModel's three steps called one by one: planQuantization, calibrateQuantization,
// buildQuantizedModel, and build with given qparams (what QAT conversion and model import use):
// given the qparams quantizeModel computed, it builds the identical model (file bytes, outputs);
// given other weight qparams, the codes are exactly fakeQuantize's with the plan's spec.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildQuantizedModel, calibrateQuantization, fakeQuantize, GivenQParams, planQuantization, QuantizedModel, quantizeModel,
  QuantizeModelOptions, saveModel,
} from '../lib/index';
import { Flatten, Identity, Linear, manualSeed, ReLU, Rng, Sequential, Tanh } from '../lib/nn/index';
import { weightQuantSpec } from '../lib/ptq/index';
import type { StageDescription } from '../lib/ptq/index';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-plan-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const rand = (n: number, rng: Rng, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => rng.uniform(lo, hi));

function model(): Sequential {
  manualSeed(8);
  return new Sequential(new Flatten(), new Linear(10, 8), new ReLU(), new Identity(), new Linear(8, 6), new Tanh(), new Linear(6, 6), new ReLU(), new Linear(6, 3)).eval();
}
const cal = rand(40 * 10, new Rng(2), -2, 2);
const x = rand(7 * 10, new Rng(3), -2, 2);

function fileBytes(m: QuantizedModel, name: string): Buffer {
  const f = path.join(tmp, `${name}.safetensors`);
  saveModel(f, m);
  return fs.readFileSync(f);
}

/** The qparams a QuantizedModel runs with, as buildQuantizedModel takes them. */
function qparamsOf(q: QuantizedModel): Required<GivenQParams> {
  const inputQParams: GivenQParams['inputQParams'] = {};
  const weightQParams: GivenQParams['weightQParams'] = {};
  for (const d of q.describe()) {
    if (d.input) inputQParams![d.name] = d.input;
    if (d.weight) weightQParams![d.name] = { scale: d.weight.tensor.scale, zeroPoint: d.weight.tensor.zeroPoint, bits: d.weight.tensor.bits };
  }
  return { inputQParams: inputQParams!, weightQParams: weightQParams! };
}

const variants: [string, QuantizeModelOptions][] = [
  ['static', { mode: 'static', calibrationData: cal, observer: 'minmax' }],
  ['static histogram, asymmetric per-tensor, one layer dynamic', { mode: 'static', calibrationData: cal, scheme: 'asymmetric', granularity: 'per-tensor', layers: { '6': { mode: 'dynamic' } } }],
  ['dynamic int4', { mode: 'dynamic', bits: 4 }],
  ['weight-only int4 asymmetric groups', { mode: 'weight-only', bits: 4, scheme: 'asymmetric', granularity: { groupSize: 3 } }],
  ['float', { mode: 'float' }],
];

describe('plan -> calibrate -> build', () => {
  it.each(variants)('%s: the steps give quantizeModel\'s model; its qparams given back give it again (file bytes, outputs)', (name, opts) => {
    const m = model();
    const q = quantizeModel(m, opts);
    const want = fileBytes(q, 'want');
    const plan = planQuantization(m, opts);
    const steps = buildQuantizedModel(plan, { inputQParams: calibrateQuantization(plan) });
    expect(fileBytes(steps, 'steps').equals(want), `${name}: steps`).toBe(true);
    const given = buildQuantizedModel(plan, qparamsOf(q));
    expect(fileBytes(given, 'given').equals(want), `${name}: given`).toBe(true);
    expect(Array.from(given.forward(x, 7))).toEqual(Array.from(q.forward(x, 7)));
    expect(given.summary()).toEqual(q.summary());
  });

  it('a bias that needed a widened weight scale: given the widened scales, the same model', () => {
    manualSeed(3);
    const l1 = new Linear(4, 3), l2 = new Linear(3, 2);
    l1.weight.data.set([1e-5, -1e-5, 2e-6, 0], 4);
    l1.bias!.data[1] = 3;
    const m = new Sequential(l1, new ReLU(), l2).eval();
    const opts: QuantizeModelOptions = { mode: 'static', calibrationData: rand(200 * 4, new Rng(1)), observer: 'minmax' };
    const q = quantizeModel(m, opts);
    const plan = planQuantization(m, opts);
    expect(fileBytes(buildQuantizedModel(plan, qparamsOf(q)), 'given').equals(fileBytes(q, 'want'))).toBe(true);
    // The scales before widening are not widened when given: refused.
    const unwidened = { ...qparamsOf(q).weightQParams, '0': { scale: Float32Array.from(l1.weight.data.reduce<number[]>((a, v, i) => { a[i >> 2] = Math.max(a[i >> 2] ?? 0, Math.abs(v) / 127); return a; }, [])) } };
    expect(() => buildQuantizedModel(plan, { inputQParams: qparamsOf(q).inputQParams, weightQParams: unwidened }))
      .toThrow(/^Expected a bias that fits int32 at scale inputScale \* weightScale \(.*\); the given weight qparams are used as they are, not widened for model layer '0' bias\[1\] but received 3$/);
  });

  it('plan: what is decided before any value (settings, codes taken, fused ReLUs)', () => {
    const plan = planQuantization(model(), { mode: 'static', calibrationData: cal, layers: { '6': { mode: 'weight-only', bits: 4 } } });
    expect(plan.layers.map((l) => [l.name, l.layerType.type, l.settings?.mode ?? null, l.takesCodes, l.fusedRelu])).toEqual([
      ['0', 'Flatten', null, false, null], ['1', 'Linear', 'static', true, '2'], ['2', 'ReLU', null, false, null], ['3', 'Identity', null, false, null],
      ['4', 'Linear', 'static', true, null], ['5', 'Tanh', null, false, null], ['6', 'Linear', 'weight-only', false, '7'], ['7', 'ReLU', null, false, null],
      ['8', 'Linear', 'static', true, null],
    ]);
    expect(plan.layers[6].settings).toMatchObject({ bits: 4, granularity: { groupSize: 32 }, scheme: 'symmetric' });
    expect(Object.isFrozen(plan)).toBe(true);
    expect(Object.keys(calibrateQuantization(plan))).toEqual(['1', '4', '8']);
    // Calibration data given to the step instead of the options.
    const p2 = planQuantization(model(), { mode: 'static', observer: 'minmax' });
    expect(calibrateQuantization(p2, cal)).toEqual(calibrateQuantization(planQuantization(model(), { mode: 'static', observer: 'minmax', calibrationData: cal })));
    expect(() => calibrateQuantization(p2)).toThrow('Expected input rows (Float32Array) or batches: static mode calibrates activation ranges on them for options.calibrationData but received undefined');
    expect(() => calibrateQuantization(p2, new Float32Array(3))).toThrow("Expected a length that is a multiple of 10 (the model's input features) for calibrationData but received Float32Array of length 3");
  });

  it('given weight qparams: the codes are fakeQuantize\'s with the plan\'s spec, exactly (what QAT conversion needs)', () => {
    const m = model();
    for (const opts of [{ mode: 'static', calibrationData: cal }, { mode: 'weight-only', bits: 3, scheme: 'asymmetric', granularity: { groupSize: 4 } }] as QuantizeModelOptions[]) {
      const plan = planQuantization(m, opts);
      const base = qparamsOf(buildQuantizedModel(plan, { inputQParams: calibrateQuantization(plan) }));
      // Other scales (x 1.37) and zero points than the computed ones.
      const weightQParams: GivenQParams['weightQParams'] = {};
      for (const [n, w] of Object.entries(base.weightQParams)) {
        weightQParams[n] = { scale: Float32Array.from(w.scale, (s) => s * 1.37), zeroPoint: w.zeroPoint };
      }
      const q = buildQuantizedModel(plan, { inputQParams: base.inputQParams, weightQParams });
      for (const d of q.describe()) {
        if (!d.weight) continue;
        const l = plan.layers.find((p) => p.name === d.name)!;
        const w = (m.modules[Number(d.name)] as Linear).weight;
        const g = weightQParams[d.name];
        const fq = fakeQuantize(w.data, [...w.shape], { scale: Float32Array.from(g.scale), zeroPoint: Int32Array.from(g.zeroPoint!) }, weightQuantSpec(l.settings!, plan.formula));
        expect(Array.from(d.weight.tensor.dequantize()), `layer ${d.name}`).toEqual(Array.from(fq));
      }
    }
  });

  it('given input qparams are the static layers\' inputs as given (float32 scale)', () => {
    const plan = planQuantization(model(), { mode: 'static', calibrationData: cal });
    const inputQParams = { '1': { scale: 0.02, zeroPoint: 128 }, '4': { scale: 0.01, zeroPoint: 0 }, '6': { scale: 0.04, zeroPoint: 3 }, '8': { scale: 0.03, zeroPoint: 100 } };
    const q = buildQuantizedModel(plan, { inputQParams });
    const s = q.summary().filter((r) => r.type === 'Linear');
    expect(s.map((r) => r.input)).toEqual([0.02, 0.01, 0.04, 0.03].map((v, i) => ({ scale: Math.fround(v), zeroPoint: [128, 0, 3, 100][i] })));
    expect(s[0].output).toEqual(s[1].input); // linked across the Identity
    expect(s[2].output).toEqual(s[3].input);
    expect(s[1].output).toBeNull(); // Tanh takes float
  });

  it('errors name what is wrong', () => {
    const m = model();
    const plan = planQuantization(m, { mode: 'static', calibrationData: cal });
    const inputQParams = calibrateQuantization(plan);
    const cases: [GivenQParams | object, string][] = [
      [{}, "Expected the input qparams { scale, zeroPoint } of static layer '1' (calibrateQuantization(plan) gives them) for given.inputQParams['1'] but received undefined"],
      [{ inputQParams: { ...inputQParams, '5': { scale: 1, zeroPoint: 0 } } }, "Expected names of layers that take codes (static) ('1', '4', '6', '8') for given.inputQParams but received '5'"],
      [{ inputQParams: { ...inputQParams, '4': { scale: 0, zeroPoint: 0 } } }, "Expected a positive finite float32 for given.inputQParams['4'].scale but received number 0"],
      [{ inputQParams: { ...inputQParams, '4': { scale: 1, zeroPoint: 256 } } }, "Expected an integer 0..255 (uint8 activations) for given.inputQParams['4'].zeroPoint but received number 256"],
      [{ inputQParams, weightQParams: { '2': { scale: [1] } } }, "Expected names of quantized layers ('1', '4', '6', '8') for given.weightQParams but received '2'"],
      [{ inputQParams, weightQParams: { '1': { scale: [1] } } }, "Expected 8 values (\"per-channel\" for a weight [8, 10]) for given.weightQParams['1'].scale but received 1"],
      [{ inputQParams, weightQParams: { '1': { scale: new Float32Array(8).fill(0.1), bits: 4 } } }, "Expected 8, the layer's bits (options.bits) for given.weightQParams['1'].bits but received number 4"],
      [{ inputQParams, weightQParams: { '1': { scale: new Float32Array(8).fill(0.1), zeroPoint: new Int32Array(8).fill(1) } } }, "Expected an integer 0..0 (symmetric, 8 bits) for given.weightQParams['1'].zeroPoint[0] but received 1"],
      [{ inputQParams, weightQParams: { '1': { scale: new Float32Array(8).fill(-1) } } }, "Expected a positive finite float32 for given.weightQParams['1'].scale[0] but received -1"],
      [{ inputQParams, weightQParams: { '1': { scale: new Float32Array(8).fill(0.1), zp: 1 } } }, "Unknown option 'zp' in given.weightQParams['1']; expected only 'scale', 'zeroPoint', 'bits'"],
      [{ input: {} }, "Unknown option 'input' in given; expected only 'inputQParams', 'weightQParams'"],
    ];
    for (const [g, msg] of cases) expect(() => buildQuantizedModel(plan, g as GivenQParams), msg).toThrow(msg);
    expect(() => buildQuantizedModel({ ...plan }, { inputQParams })).toThrow('Expected a plan from planQuantization for plan but received object');
    // Weights are checked again at build: a NaN since planning is refused.
    const m2 = model();
    const p2 = planQuantization(m2, { mode: 'dynamic' });
    (m2.at(4) as Linear).weight.data[3] = NaN;
    expect(() => buildQuantizedModel(p2)).toThrow("Expected finite values (quantize a trained model) for model layer '4' weight but received NaN at element 3");
  });
});

describe('QuantizedModel.describe(): what each stage computes, for exporters', () => {
  it('static, dynamic, weight-only and float stages', () => {
    const q = quantizeModel(model(), { mode: 'static', calibrationData: cal, layers: { '6': { mode: 'dynamic' }, '8': { mode: 'float' } } });
    const d = q.describe();
    const pick = (s: StageDescription) => ({
      name: s.name, type: s.spec.type, mode: s.mode, fused: s.fused, relu: s.relu, passThrough: s.passThrough,
      has: ['weight', 'bias', 'biasQ', 'input', 'output', 'activation', 'params'].filter((k) => (s as unknown as Record<string, unknown>)[k] !== undefined),
    });
    expect(d.map(pick)).toEqual([
      { name: '0', type: 'Flatten', mode: 'float', fused: [], relu: false, passThrough: true, has: ['params'] },
      { name: '1', type: 'Linear', mode: 'static', fused: ['2'], relu: true, passThrough: false, has: ['weight', 'bias', 'biasQ', 'input', 'output'] },
      { name: '3', type: 'Identity', mode: 'float', fused: [], relu: false, passThrough: true, has: ['params'] },
      { name: '4', type: 'Linear', mode: 'static', fused: [], relu: false, passThrough: false, has: ['weight', 'bias', 'biasQ', 'input', 'output'] },
      { name: '5', type: 'Tanh', mode: 'float', fused: [], relu: false, passThrough: false, has: ['params'] },
      { name: '6', type: 'Linear', mode: 'dynamic', fused: ['7'], relu: true, passThrough: false, has: ['weight', 'bias', 'activation'] },
      { name: '8', type: 'Linear', mode: 'float', fused: [], relu: false, passThrough: false, has: ['params'] },
    ]);
    expect(d[1].output).toEqual(d[3].input); // requantized for the next static layer (past the Identity)
    expect(d[3].output).toBeNull(); // Tanh takes float
    expect(d[5]).toMatchObject({ activation: 'uint8', activationGranularity: 'per-row' });
    expect(Object.keys(d[6].params!)).toEqual(['weight', 'bias']);
  });
});
