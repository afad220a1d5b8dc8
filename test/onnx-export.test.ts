// exportOnnx: the demo's MLP (trained briefly here) as float, dynamic, static and weight-only
// ONNX models; onnxruntime-node must predict the same class as quantkit on >= 99.9% of the 10000
// MNIST test images.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx, exportOnnxBytes, QuantizedModel, quantizeModel } from '../lib/index';
import { trainMlp } from '../lib/demo/mnist-mlp';
import { imagesToFloat32, loadMnistSync, mnistDataDir } from '../lib/data/idx';
import { Sequential } from '../lib/nn/sequential';
import { GELU, LayerNorm, Linear, Tanh } from '../lib/nn/layers';
import { argmax } from './onnx-helpers';
import { optimizedOps } from './onnx-real';

const dir = mnistDataDir();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-export-'));

async function ortPredict(bytes: Uint8Array, x: Float32Array, rows: number, F: number): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  const out = new Float32Array(rows * 10);
  for (let r = 0; r < rows; r += 1000) {
    const n = Math.min(1000, rows - r);
    const y = (await s.run({ input: new ort.Tensor('float32', x.subarray(r * F, (r + n) * F), [n, F]) })).output.data as Float32Array;
    out.set(y, r * 10);
  }
  return out;
}

describe.skipIf(!dir)('exportOnnx', () => {
  let model: Sequential;
  let xTest: Float32Array, xTrain: Float32Array;
  beforeAll(() => {
    const tr = loadMnistSync(dir!, 'train'), te = loadMnistSync(dir!, 't10k');
    xTrain = imagesToFloat32(tr);
    xTest = imagesToFloat32(te);
    const n = 12000;
    model = trainMlp(xTrain.subarray(0, n * 784), (tr.labels as Uint8Array).subarray(0, n), xTest.subarray(0, 784), (te.labels as Uint8Array).subarray(0, 1), { epochs: 1, seed: 1 }).model;
    model.eval();
  }, 120000);

  it('float, dynamic, static and weight-only MLPs: ORT predicts quantkit\'s class on >= 99.9% of MNIST test images', async () => {
    const calX = xTrain.subarray(0, 1000 * 784);
    const variants: [string, Sequential | QuantizedModel, string | null][] = [
      ['float', model, null],
      ['dynamic', quantizeModel(model, { mode: 'dynamic', activationGranularity: 'per-tensor' }), 'DynamicQuantizeMatMul'],
      ['dynamic per-row', quantizeModel(model, { mode: 'dynamic' }), 'DynamicQuantizeMatMul'],
      ['static', quantizeModel(model, { mode: 'static', calibrationData: calX }), 'QGemm'],
      ['weight-only int4 g32', quantizeModel(model, { mode: 'weight-only', bits: 4, granularity: { groupSize: 32 } }), 'MatMulNBits'],
      ['weight-only int8 per-channel', quantizeModel(model, { mode: 'weight-only', bits: 8, granularity: 'per-channel' }), null],
    ];
    const rows = 10000;
    for (const [name, m, fused] of variants) {
      const file = path.join(tmp, `${name.replace(/\W+/g, '_')}.onnx`);
      exportOnnx(m, file);
      const bytes = fs.readFileSync(file);
      const y = await ortPredict(bytes, xTest, rows, 784);
      const ref = m.forward(xTest, rows);
      let same = 0;
      for (let r = 0; r < rows; r++) if (argmax(y, r * 10, 10) === argmax(ref, r * 10, 10)) same++;
      expect(same / rows, name).toBeGreaterThanOrEqual(0.999);
      if (fused) {
        const ops = await optimizedOps(bytes, `${file}.opt`);
        expect(ops[fused], `${name}: ${JSON.stringify(ops)}`).toBe(3);
      }
    }
  });

  it('exports GELU, Tanh and LayerNorm layers, and refuses what has no ONNX form', async () => {
    const m = new Sequential(new Linear(8, 16), new GELU(), new LayerNorm(16), new Linear(16, 4), new Tanh()).eval();
    const x = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i));
    const s = await ort.InferenceSession.create(exportOnnxBytes(m));
    const y = (await s.run({ input: new ort.Tensor('float32', x, [3, 8]) })).output.data as Float32Array;
    const ref = m.forward(x, 3);
    for (let i = 0; i < ref.length; i++) expect(Math.abs(y[i] - ref[i])).toBeLessThan(1e-5);
    const q = quantizeModel(new Sequential(new Linear(8, 4)), { mode: 'dynamic', activation: 'int8' });
    expect(() => exportOnnxBytes(q)).toThrow(/dynamic int8 activations have no ONNX form/);
    expect(() => exportOnnxBytes({} as Sequential)).toThrow('Expected a Sequential or a QuantizedModel for model but received object');
  });
});
