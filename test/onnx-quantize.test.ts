// quantizeOnnx on models nobody here made (fetched from npm packages) and on small built graphs
// for the file-level cases: every mode's output runs in onnxruntime-node and agrees with the float
// model within thresholds justified by the measured table (README, docs/onnx.md) with margin.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxFileError, quantizeOnnx } from '../lib/index';
import { allGraphs, intAttr, makeNode } from '../lib/onnx-model/graph';
import { decodeModel, DT, encodeModel, makeTensor, ModelP, NodeP, TensorP } from '../lib/onnx-model/proto';
import { writeFileAtomicSync } from '../lib/io/atomic';
import { normal, realModels } from './onnx-helpers';
import { agreement, inputFor, optimizedOps, vadCalibrationFeeds } from './onnx-real';

const real = realModels();
if (!real.paths) console.warn(`onnx-quantize real-model tests ${real.why}`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-onnx-'));

function nodeCount(bytes: Uint8Array): number {
  return allGraphs(decodeModel(bytes, '<bytes>', null).model.graph!).reduce((a, g) => a + g.graph.node.length, 0);
}

describe.skipIf(!real.paths)('real models', () => {
  const P = real.paths!;
  let oww: Uint8Array, det: Uint8Array, vad: Uint8Array;
  beforeAll(() => {
    oww = fs.readFileSync(P.openwakeword);
    det = fs.readFileSync(P.detypify);
    vad = fs.readFileSync(P['silero-vad']);
  });

  it('openWakeWord head: dynamic, static and weight-only run, fuse as ORT does and agree with float', async () => {
    const cal = Array.from({ length: 32 }, (_, i) => inputFor('openwakeword', 'calibration', i));
    const cases = [
      { opts: { mode: 'dynamic' as const }, fused: 'DynamicQuantizeMatMul', corr: 0.999, agree: 0.97 },
      { opts: { mode: 'static' as const, calibrationData: cal }, fused: 'QGemm', corr: 0.999, agree: 0.97 },
      { opts: { mode: 'static' as const, calibrationData: cal, observer: 'histogram' as const }, fused: 'QGemm', corr: 0.995, agree: 0.95 },
      { opts: { mode: 'weight-only' as const }, fused: 'MatMulNBits', corr: 0.985, agree: 0.95 },
    ];
    for (const c of cases) {
      const r = await quantizeOnnx(oww, c.opts);
      const label = `${c.opts.mode} ${'observer' in c.opts ? c.opts.observer : ''}`;
      expect(r.summary.quantizedNodes, label).toBe(c.opts.mode === 'static' ? 3 : 3);
      expect(r.summary.nodes.length, label).toBe(nodeCount(oww));
      expect(r.model.length, label).toBeLessThan(oww.length * (c.opts.mode === 'weight-only' ? 0.2 : 0.3));
      const ops = await optimizedOps(r.model, path.join(tmp, 'oww.opt.onnx'));
      expect(ops[c.fused], `${label}: ${JSON.stringify(ops)}`).toBe(3);
      const ag = await agreement('openwakeword', oww, r.model, 100);
      expect(ag.cosine, label).toBeGreaterThan(c.corr);
      expect(ag.agreement, label).toBeGreaterThanOrEqual(c.agree);
    }
  });

  it('detypify CNN: static QDQ becomes 50 QLinearConv + QLinearAdd in ORT and keeps the logits', async () => {
    const cal = Array.from({ length: 12 }, (_, i) => inputFor('detypify', 'calibration', i));
    const r = await quantizeOnnx(det, { mode: 'static', calibrationData: cal });
    expect(r.summary.calibration).toEqual({ batches: 12, observer: 'minmax', tensors: expect.any(Number) });
    expect(r.summary.nodes.filter((n) => n.opType === 'Conv' && n.quantized)).toHaveLength(50);
    const conv = r.summary.nodes.find((n) => n.opType === 'Conv' && n.quantized)!;
    expect(conv.weight!.granularity).toBe('per-channel');
    expect(Object.values(conv.activations!).every((q) => q.scale > 0 && q.zeroPoint >= 0 && q.zeroPoint <= 255)).toBe(true);
    // the preprocessing's integer Adds are left float, with the reason
    expect(r.summary.nodes.some((n) => n.opType === 'Add' && !n.quantized && /not calibrated|constant/.test(n.reason ?? ''))).toBe(true);
    const ops = await optimizedOps(r.model, path.join(tmp, 'det.opt.onnx'));
    expect(ops.QLinearConv).toBe(50);
    expect(ops.QLinearAdd).toBeGreaterThanOrEqual(8);
    expect(ops.Conv ?? 0).toBe(0);
    const ag = await agreement('detypify', det, r.model, 24);
    expect(ag.cosine).toBeGreaterThan(0.998);
    expect(ag.minCosine).toBeGreaterThan(0.99);
    expect(r.model.length).toBeLessThan(det.length * 0.36);
  });

  it('detypify CNN: dynamic (Conv weights int8) and weight-only (the Gemm as MatMulNBits)', async () => {
    const dyn = await quantizeOnnx(det, { mode: 'dynamic' });
    expect(dyn.summary.nodes.filter((n) => n.quantized)).toHaveLength(51);
    const a1 = await agreement('detypify', det, dyn.model, 16);
    expect(a1.cosine).toBeGreaterThan(0.999);
    const wo = await quantizeOnnx(det, { mode: 'weight-only' });
    expect(wo.summary.nodes.find((n) => n.opType === 'Gemm')!.as).toBe('MatMulNBits');
    expect(wo.summary.nodes.find((n) => n.opType === 'Conv')!.reason).toMatch(/not quantized in mode 'weight-only'/);
    const a2 = await agreement('detypify', det, wo.model, 16);
    expect(a2.cosine).toBeGreaterThan(0.9995);
  });

  it('Silero VAD: Convs inside If branches quantized recursively (dynamic), LSTMs left float and listed', async () => {
    for (const dynamicConv of ['qdq', 'integer'] as const) {
      const r = await quantizeOnnx(vad, { mode: 'dynamic', dynamicConv });
      const convs = r.summary.nodes.filter((n) => n.opType === 'Conv');
      expect(convs.length).toBe(36);
      expect(convs.every((n) => n.quantized && n.graph.includes('If'))).toBe(true);
      expect(r.summary.nodes.filter((n) => n.opType === 'LSTM').every((n) => !n.quantized && /LSTM is not quantized/.test(n.reason!))).toBe(true);
      const ag = await agreement('silero-vad', vad, r.model, 2);
      expect(ag.agreement, dynamicConv).toBeGreaterThanOrEqual(0.97);
      expect(ag.meanAbsDiff, dynamicConv).toBeLessThan(0.02);
    }
    // static: subgraph tensors cannot be calibrated -> nothing changes, every Conv says why
    const feeds = await vadCalibrationFeeds(vad, 1);
    const s = await quantizeOnnx(vad, { mode: 'static', calibrationData: feeds.slice(0, 4) });
    expect(s.summary.quantizedNodes).toBe(0);
    expect(s.summary.nodes.filter((n) => n.opType === 'Conv').every((n) => /inside a subgraph/.test(n.reason!))).toBe(true);
    await ort.InferenceSession.create(s.model);
  });
});

// ---- small built graphs -----------------------------------------------------------------------------

function vi(name: string, dims: (number | string)[], elemType: number = DT.FLOAT) {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}

function model(nodes: NodeP[], inits: TensorP[], inputs: ReturnType<typeof vi>[], outputs: ReturnType<typeof vi>[], opset = 17, ir = 8): ModelP {
  return {
    irVersion: ir, opsetImport: [{ domain: '', version: opset }], metadataProps: [], trainingInfo: [], functions: [],
    graph: { node: nodes, initializer: inits, sparseInitializer: [], input: inputs, output: outputs, valueInfo: [], quantizationAnnotation: [], name: 'g' },
  };
}

/** x [B, 16] -> MatMul(W1) -> Relu -> MatMul(W2 shared) ... */
function mlpModel(opts: { constantNode?: boolean; opset?: number } = {}): Uint8Array {
  const W1 = makeTensor('W1', DT.FLOAT, [16, 16], normal(256, 3, 0.3));
  const nodes: NodeP[] = [];
  const inits: TensorP[] = [W1];
  if (opts.constantNode) {
    nodes.push({ ...makeNode('Constant', [], ['W2'], 'w2const'), attribute: [{ name: 'value', type: 4, t: makeTensor('', DT.FLOAT, [16, 8], normal(128, 4, 0.3)), floats: [], ints: [], strings: [], tensors: [], graphs: [] }] });
  } else inits.push(makeTensor('W2', DT.FLOAT, [16, 8], normal(128, 4, 0.3)));
  nodes.push(makeNode('MatMul', ['x', 'W1'], ['h'], 'mm1'), makeNode('Relu', ['h'], ['r'], 'relu'),
    makeNode('MatMul', ['r', 'W1'], ['h2'], 'mm_shared'), makeNode('MatMul', ['h2', 'W2'], ['y'], 'mm2'));
  return encodeModel(model(nodes, inits, [vi('x', ['batch', 16])], [vi('y', ['batch', 8])], opts.opset ?? 17));
}

async function runBoth(a: Uint8Array, b: Uint8Array, x: Float32Array): Promise<[Float32Array, Float32Array]> {
  const feeds = { x: new ort.Tensor('float32', x, [x.length / 16, 16]) };
  const sa = await ort.InferenceSession.create(a), sb = await ort.InferenceSession.create(b);
  return [(await sa.run(feeds)).y.data as Float32Array, (await sb.run(feeds)).y.data as Float32Array];
}

function maxRelErr(a: Float32Array, b: Float32Array): number {
  let m = 0, s = 0;
  for (let i = 0; i < a.length; i++) { m = Math.max(m, Math.abs(a[i] - b[i])); s = Math.max(s, Math.abs(a[i])); }
  return m / s;
}

describe('built graphs', () => {
  const x = normal(4 * 16, 11);

  it('shared weights are quantized once; Constant-node weights are quantized and the Constant dropped', async () => {
    for (const constantNode of [false, true]) {
      const f = mlpModel({ constantNode });
      for (const mode of ['dynamic', 'weight-only'] as const) {
        const r = await quantizeOnnx(f, { mode, ...(mode === 'weight-only' ? { blockSize: 16 } : {}) });
        const g = decodeModel(r.model, '<q>', null).model.graph!;
        expect(r.summary.quantizedNodes, `${mode} ${constantNode}`).toBe(3);
        expect(g.initializer.some((t) => t.name === 'W1' || t.name === 'W2')).toBe(false);
        expect(g.node.some((n) => n.opType === 'Constant')).toBe(false);
        expect(g.initializer.filter((t) => t.dataType === DT.INT8 || t.dataType === DT.UINT8).length, 'W1 shared: quantized once').toBe(mode === 'dynamic' ? 4 : 2);
        const [a, b] = await runBoth(f, r.model, x);
        expect(maxRelErr(a, b), mode).toBeLessThan(mode === 'dynamic' ? 0.03 : 0.15);
      }
      const cal = [0, 1, 2].map((i) => ({ x: { data: normal(8 * 16, 20 + i), dims: [8, 16] } }));
      const s = await quantizeOnnx(f, { mode: 'static', calibrationData: cal });
      expect(s.summary.quantizedNodes).toBe(3);
      const [a, b] = await runBoth(f, s.model, x);
      expect(maxRelErr(a, b)).toBeLessThan(0.05);
    }
  });

  it('exclude and opTypes leave nodes float with the reason; bad options are clear errors', async () => {
    const f = mlpModel();
    const r = await quantizeOnnx(f, { mode: 'dynamic', exclude: ['mm2'] });
    expect(r.summary.nodes.find((n) => n.name === 'mm2')).toMatchObject({ quantized: false, reason: 'excluded (options.exclude)' });
    expect(r.summary.nodes.find((n) => n.name === 'relu')).toMatchObject({ quantized: false, reason: "Relu is not quantized in mode 'dynamic'" });
    await expect(quantizeOnnx(f, { mode: 'static' })).rejects.toThrow('Expected feeds to calibrate on (static mode runs the float model on them) for options.calibrationData but received undefined');
    await expect(quantizeOnnx(f, { mode: 'dynamic', opTypes: ['Relu'] })).rejects.toThrow("Expected operator types mode 'dynamic' quantizes ('MatMul', 'Gemm', 'Conv') for options.opTypes but received 'Relu'");
    await expect(quantizeOnnx(f, { mode: 'weight-only', blockSize: 24 })).rejects.toThrow('Expected a power of two >= 16 (MatMulNBits) for options.blockSize but received 24');
    await expect(quantizeOnnx(f, { mode: 'dynamic', bits: 4 })).rejects.toThrow(/Expected 8 in mode 'dynamic'/);
    await expect(quantizeOnnx(f, { mode: 'static', calibrationData: [{ y: { data: new Float32Array(16), dims: [1, 16] } }] }))
      .rejects.toThrow("Expected graph input names ('x') for the keys of options.calibrationData[0] but received 'y'");
    await expect(quantizeOnnx(f, { mode: 'static', calibrationData: [{ x: { data: new Float32Array(15), dims: [1, 16] } }] }))
      .rejects.toThrow(/Expected 16 values \(dims \[1, 16\]\) for options.calibrationData\[0\]\['x'\].data but received Float32Array of length 15/);
  });

  it('opset 9: raised to 10 for dynamic; static falls back to per-tensor weights (raising to 13 would change MatMul)', async () => {
    const f = mlpModel({ opset: 9 });
    const d = await quantizeOnnx(f, { mode: 'dynamic' });
    expect(d.summary.opset).toEqual({ before: 9, after: 10 });
    const cal = [{ x: { data: normal(8 * 16, 5), dims: [8, 16] } }];
    const s = await quantizeOnnx(f, { mode: 'static', calibrationData: cal });
    expect(s.summary.opset).toEqual({ before: 9, after: 10 });
    expect(s.summary.notes.join(' ')).toMatch(/raising opset 9 would change .*MatMul-13.*: weights quantized per tensor/);
    expect(s.summary.nodes.find((n) => n.name === 'mm1')!.weight!.granularity).toBe('per-tensor');
    const [a, b] = await runBoth(f, s.model, x);
    expect(maxRelErr(a, b)).toBeLessThan(0.06);
    const q = await quantizeOnnx(f, { mode: 'weight-only', weightOnlyFormat: 'qdq', blockSize: 16 });
    expect(q.summary.quantizedNodes).toBe(0);
    expect(q.summary.nodes.find((n) => n.name === 'mm1')!.reason).toMatch(/needs ai.onnx opset 21 and raising it from 9 would change/);
  });

  it('weight-only as opset-21 blocked DequantizeLinear (int4) runs in ORT', async () => {
    const f = mlpModel();
    const r = await quantizeOnnx(f, { mode: 'weight-only', weightOnlyFormat: 'qdq', blockSize: 16 });
    expect(r.summary.opset).toEqual({ before: 17, after: 21 });
    const m = decodeModel(r.model, '<q>', null).model;
    expect(m.graph!.initializer.filter((t) => t.dataType === DT.INT4)).toHaveLength(2); // W1 shared by two MatMuls: quantized once
    const w = await quantizeOnnx(f, { mode: 'weight-only', blockSize: 16 });
    const [a, b] = await runBoth(f, r.model, x);
    const [, c] = await runBoth(f, w.model, x);
    expect(maxRelErr(a, b)).toBeLessThan(0.15);
    // same codes and scales as MatMulNBits; ORT fuses DQ + MatMul into MatMulNBits with accuracy level 4 (int8 activations)
    expect(maxRelErr(b, c)).toBeLessThan(0.02);
  });

  it('reads external data next to the model, refuses paths outside its folder, names corrupt files and fields', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ext-'));
    const lm = decodeModel(mlpModel(), '<m>', null);
    const w1 = lm.model.graph!.initializer[0];
    fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.concat([Buffer.alloc(16), Buffer.from(w1.rawData!)]));
    w1.rawData = undefined;
    w1.dataLocation = 1;
    w1.externalData = [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '16' }, { key: 'length', value: String(256 * 4) }];
    const file = path.join(dir, 'm.onnx');
    writeFileAtomicSync(file, (put) => put(encodeModel(lm.model)));
    const r = await quantizeOnnx(file, { mode: 'dynamic' });
    expect(r.summary.quantizedNodes).toBe(3);
    await expect(quantizeOnnx(fs.readFileSync(file), { mode: 'dynamic' })).rejects.toThrow(/the tensor's data is in the external file 'weights.bin': load the model from its path, or pass opts.baseDir/);
    expect((await quantizeOnnx(fs.readFileSync(file), { mode: 'dynamic', baseDir: dir })).summary.quantizedNodes).toBe(3);
    w1.externalData[0].value = '../weights.bin';
    writeFileAtomicSync(file, (put) => put(encodeModel(lm.model)));
    await expect(quantizeOnnx(file, { mode: 'dynamic' })).rejects.toThrow(`${file}: graph.initializer[0] 'W1'.external_data.location: expected a path inside the model's folder but found '../weights.bin'`);
    // corrupt files
    const bad = path.join(dir, 'bad.onnx');
    fs.writeFileSync(bad, mlpModel().subarray(0, 100));
    await expect(quantizeOnnx(bad, { mode: 'dynamic' })).rejects.toThrow(OnnxFileError);
    await expect(quantizeOnnx(bad, { mode: 'dynamic' })).rejects.toThrow(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a valid ONNX protobuf`));
    fs.writeFileSync(bad, Buffer.from('hello world, not a model'));
    await expect(quantizeOnnx(bad, { mode: 'dynamic' })).rejects.toThrow(/bad.onnx: /);
    await expect(quantizeOnnx(path.join(dir, 'missing.onnx'), { mode: 'dynamic' })).rejects.toThrow(/missing.onnx: cannot read it \(ENOENT\)/);
    const lm2 = decodeModel(mlpModel(), '<m>', null);
    lm2.model.graph!.initializer[0].rawData = new Uint8Array(12);
    await expect(quantizeOnnx(encodeModel(lm2.model), { mode: 'dynamic' })).rejects.toThrow("<bytes>: graph.initializer[0] 'W1'.raw_data: 12 bytes for 256 elements of float [16, 16] (expected 1024)");
    lm2.model.graph!.initializer[0].dims = [1e6, 1e6, 1e6];
    await expect(quantizeOnnx(encodeModel(lm2.model), { mode: 'dynamic' })).rejects.toThrow(/elements is above the limit of 4294967296/);
  });

  it('refuses subgraphs nested deeper than 16 levels', async () => {
    let g = model([makeNode('Identity', ['a'], ['b'], 'id')], [], [], [vi('b', [1])]).graph!;
    for (let i = 0; i < 20; i++) {
      const n = makeNode('If', ['c'], ['b'], `if${i}`, [{ name: 'then_branch', type: 5, g, floats: [], ints: [], strings: [], tensors: [], graphs: [] }]);
      g = model([n], [], [], [vi('b', [1])]).graph!;
    }
    const m = model(g.node, [], [vi('c', [], DT.BOOL), vi('a', [1])], [vi('b', [1])]);
    await expect(quantizeOnnx(encodeModel(m), { mode: 'dynamic' })).rejects.toThrow(/subgraphs nested deeper than 16 levels/);
  });

  it('writes atomically: no temporary files left, a directory is refused', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
    writeFileAtomicSync(path.join(dir, 'a.onnx'), (put) => put(Uint8Array.of(1, 2, 3)));
    expect(fs.readdirSync(dir)).toEqual(['a.onnx']);
    expect(() => writeFileAtomicSync(dir, (put) => put(Uint8Array.of(1)))).toThrow(/cannot write it: it is a directory/);
    expect(() => writeFileAtomicSync(path.join(dir, 'no', 'x.onnx'), (put) => put(Uint8Array.of(1)))).toThrow(/the folder .* does not exist/);
  });
});

export { intAttr };
