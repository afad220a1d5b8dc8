// analyzeOnnx, planMixedPrecision on its analysis, measureOnnxPlan and the report of an ONNX model:
// on the demo MLP exported with exportOnnxBytes (compared with analyzeModel of the same Sequential),
// on real third-party models (the openWakeWord head, the detypify CNN; skipped only when the npm
// registry is unreachable, as the other ONNX tests), on bad input, and through the CLI.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  analyzeModel, analyzeOnnx, data, demo, exportOnnxBytes, measureOnnxPlan, measurePlan, OnnxFileError, planMixedPrecision, renderReport,
} from '../lib/index';
import type { ModelAnalysis, nn } from '../lib/index';
import { main } from '../lib/cli/main';
import { makeNode } from '../lib/onnx-model/graph';
import { DT, encodeModel, makeTensor, ModelP } from '../lib/onnx-model/proto';
import { saveSafetensors } from '../lib/io/safetensors';
import { normal, realModels } from './onnx-helpers';
import { inputFor } from './onnx-real';

const real = realModels();
if (!real.paths) console.warn(`report-onnx real-model tests ${real.why}`);
const mnistDir = data.mnistDataDir();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-report-onnx-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type Feeds = { input: { data: Float32Array; dims: number[] } }[];
const feedsOf = (x: Float32Array, batch: number): Feeds =>
  Array.from({ length: x.length / 784 / batch }, (_, i) => ({ input: { data: x.subarray(i * batch * 784, (i + 1) * batch * 784), dims: [batch, 784] } }));

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const code = await main(argv, { out: (s) => { out += s; }, err: (s) => { err += s; }, isTTY: false });
  return { code, out, err };
}

/** A float model of one Relu (no quantizable node). */
function reluModel(): Uint8Array {
  const vi = (name: string) => ({ name, type: { tensorType: { elemType: DT.FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }] } } } });
  const m = {
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }], producerName: 'test',
    graph: { name: 'g', node: [makeNode('Relu', ['x'], ['y'], 'relu')], input: [vi('x')], output: [vi('y')], initializer: [], valueInfo: [], sparseInitializer: [], quantizationAnnotation: [], metadataProps: [] },
    metadataProps: [], functions: [], trainingInfo: [], configuration: [],
  } as unknown as ModelP;
  return encodeModel(m);
}

/** A MatMul whose weight is a graph input (not a constant: nothing to quantize). */
function matmulOfInputs(): Uint8Array {
  const vi = (name: string, d: number[]) => ({ name, type: { tensorType: { elemType: DT.FLOAT, shape: { dim: d.map((v) => ({ dimValue: v })) } } } });
  const m = {
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }], producerName: 'test',
    graph: { name: 'g', node: [makeNode('MatMul', ['x', 'w'], ['y'], 'mm')], input: [vi('x', [1, 4]), vi('w', [4, 2])], output: [vi('y', [1, 2])], initializer: [], valueInfo: [], sparseInitializer: [], quantizationAnnotation: [], metadataProps: [] },
    metadataProps: [], functions: [], trainingInfo: [], configuration: [],
  } as unknown as ModelP;
  return encodeModel(m);
}

/** x [B, 16] -> MatMul(W, unnamed) -> Relu -> MatMul(W2, unnamed): nodes without names. */
function unnamedModel(): Uint8Array {
  const vi = (name: string, d: (number | string)[]) => ({ name, type: { tensorType: { elemType: DT.FLOAT, shape: { dim: d.map((v) => (typeof v === 'number' ? { dimValue: v } : { dimParam: v })) } } } });
  const nodes = [makeNode('MatMul', ['x', 'W'], ['h'], ''), makeNode('Relu', ['h'], ['r'], ''), makeNode('MatMul', ['r', 'W2'], ['y'], '')];
  const m = {
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }], metadataProps: [], trainingInfo: [], functions: [],
    graph: {
      name: 'g', node: nodes, initializer: [makeTensor('W', DT.FLOAT, [16, 64], normal(1024, 7, 0.3)), makeTensor('W2', DT.FLOAT, [64, 4], normal(256, 8, 0.3))],
      input: [vi('x', ['batch', 16])], output: [vi('y', ['batch', 4])], valueInfo: [], sparseInitializer: [], quantizationAnnotation: [],
    },
  } as unknown as ModelP;
  return encodeModel(m);
}

describe.skipIf(!mnistDir)('the exported demo MLP: analyzeOnnx against analyzeModel of the Sequential', () => {
  let model: nn.Sequential;
  let bytes: Uint8Array;
  let cal: Float32Array, ex: Float32Array, ey: Uint8Array, xTe: Float32Array, yTe: Uint8Array;
  let seq: ModelAnalysis, onnx: ModelAnalysis;
  beforeAll(async () => {
    const tr = data.loadMnistSync(mnistDir!, 'train'), te = data.loadMnistSync(mnistDir!, 't10k');
    const xTr = data.imagesToFloat32(tr).subarray(0, 3000 * 784), yTr = (tr.labels as Uint8Array).subarray(0, 3000);
    xTe = data.imagesToFloat32(te).subarray(0, 1000 * 784);
    yTe = (te.labels as Uint8Array).subarray(0, 1000);
    model = demo.trainMlp(xTr, yTr, xTe.subarray(0, 200 * 784), yTe.subarray(0, 200), { epochs: 1, seed: 1 }).model;
    cal = xTr.subarray(0, 300 * 784);
    ex = xTe.subarray(0, 600 * 784);
    ey = yTe.subarray(0, 600);
    bytes = exportOnnxBytes(model);
    seq = analyzeModel(model, { calibrationData: cal, evalData: { x: ex, labels: ey }, bits: [8, 4], mode: 'static', observer: 'minmax' });
    onnx = await analyzeOnnx(bytes, { calibrationData: feedsOf(cal, 100), evalData: { feeds: feedsOf(ex, 200), labels: ey }, bits: [8, 4] });
  }, 120000);

  it('analyzes each Gemm as its Linear: identical weight SQNRs, the same activations', () => {
    expect(onnx.layers.map((l) => l.opType)).toEqual(['Gemm', 'Gemm', 'Gemm']);
    expect(onnx.layers.map((l) => [l.outFeatures, l.inFeatures])).toEqual(seq.layers.map((l) => [l.outFeatures, l.inFeatures]));
    expect(onnx.onnx).toMatchObject({ output: 'output', feeds: 3, blockSize: 32, renamed: [], skipped: [] });
    for (let i = 0; i < 3; i++) {
      const a = seq.layers[i], b = onnx.layers[i];
      // The weight is the same tensor through the same code: every range and SQNR bit for bit.
      expect(b.weight.ranges).toEqual(a.weight.ranges);
      expect(b.weight.histogram).toEqual(a.weight.histogram);
      expect(b.weight.channels.outliers).toEqual(a.weight.channels.outliers);
      // Activations come from ONNX Runtime's float kernels: equal up to float rounding.
      expect(b.input.shape).toEqual(a.input.shape);
      expect(b.input.mean).toBeCloseTo(a.input.mean, 5);
      expect(b.input.std).toBeCloseTo(a.input.std, 5);
      for (let k = 0; k < a.input.ranges.length; k++) {
        expect(b.input.ranges[k].observer).toBe(a.input.ranges[k].observer);
        // min/max ranges move with the float rounding only; the histogram searches (entropy, L2) may pick a neighbouring bin.
        const tol = ['minmax', 'percentile'].includes(a.input.ranges[k].observer) ? 0.01 : 0.5;
        expect(Math.abs(b.input.ranges[k].sqnrDb - a.input.ranges[k].sqnrDb), `${a.name} ${a.input.ranges[k].observer}`).toBeLessThan(tol);
      }
    }
  });

  it('sensitivity in ONNX Runtime orders the layers as quantizeModel does', () => {
    const s = onnx.sensitivity!, t = seq.sensitivity!;
    expect(s.float.accuracy).toBeCloseTo(t.float.accuracy!, 6);
    expect(s.uniform.map((r) => r.bits)).toEqual([8, 4]);
    expect(s.single).toHaveLength(6);
    expect(s.allBut).toHaveLength(6);
    // Layer indices from most to least sensitive.
    const order = (a: ModelAnalysis, runs: typeof s.single, b: number) => runs.filter((r) => r.bits === b).sort((x, y) => x.sqnrDb - y.sqnrDb).map((r) => a.layers.findIndex((l) => l.name === r.layer));
    // int8: the layer whose float copy helps most is the same. Single-layer int8 runs are not
    // compared one to one: ORT's QDQ form also quantizes the node's output activation (the next
    // node's input), quantizeModel only the layer's input, so one node alone carries more noise.
    expect(order(onnx, s.allBut, 8).at(-1)).toBe(order(seq, t.allBut, 8).at(-1));
    // Every layer at int8: the same activations are quantized in both (47.86 dB both in our run).
    expect(Math.abs(s.uniform[0].sqnrDb - t.uniform[0].sqnrDb)).toBeLessThan(0.5);
    for (const r of [...s.uniform, ...s.single, ...s.allBut]) {
      expect(r.sqnrDb).toBeGreaterThan(20);
      expect(r.cosine).toBeGreaterThan(0.99);
    }
  });

  it('int4 weight-only runs match quantizeModel weight-only with groups of 32 (same codes, same ordering)', () => {
    const wo = analyzeModel(model, { calibrationData: cal, evalData: { x: ex, labels: ey }, bits: [4], mode: 'weight-only', granularity: { groupSize: 32 }, sensitivity: true });
    const a = wo.sensitivity!.single, b = onnx.sensitivity!.single.filter((r) => r.bits === 4);
    for (let i = 0; i < 3; i++) expect(Math.abs(a[i].sqnrDb - b[i].sqnrDb), `layer ${i}`).toBeLessThan(0.5);
    const rank = (runs: typeof a) => runs.map((r, i) => [r.sqnrDb, i]).sort((x, y) => x[0] - y[0]).map(([, i]) => i);
    expect(rank(b)).toEqual(rank(a));
  });

  it('evalData.score gives the same accuracies as labels', async () => {
    const argmaxAcc = (o: { data: Float32Array; dims: number[] }, i: number) => {
      let ok = 0;
      for (let r = 0; r < o.dims[0]; r++) {
        let b = 0;
        for (let k = 1; k < 10; k++) if (o.data[r * 10 + k] > o.data[r * 10 + b]) b = k;
        if (b === ey[i * 200 + r]) ok++;
      }
      return ok / o.dims[0];
    };
    const a = await analyzeOnnx(bytes, { calibrationData: feedsOf(cal, 100), evalData: { feeds: feedsOf(ex, 200), score: argmaxAcc }, bits: [8], observers: ['minmax'], allButOne: false });
    const s = a.sensitivity!, t = onnx.sensitivity!;
    expect(s.labels).toBe(true);
    expect(s.float.accuracy).toBeCloseTo(t.float.accuracy!, 12);
    for (const r of s.single) expect(r.accuracy).toBeCloseTo(t.single.find((x) => x.layer === r.layer && x.bits === 8)!.accuracy!, 12);
  });

  it('a plan within 1 accuracy point, measured for real in ONNX Runtime; the report renders', async () => {
    const plan = planMixedPrecision(onnx, { budget: 1 });
    expect(plan.onnx).toMatchObject({ output: 'output', mode: 'static', observer: 'minmax', blockSize: 32 });
    expect(plan.feasible).toBe(true);
    const { model: q, measured } = await measureOnnxPlan(bytes, plan, { calibrationData: feedsOf(cal, 100), evalData: { feeds: feedsOf(xTe, 500), labels: yTe } });
    expect(measured.rows).toBe(1000);
    expect(q.length).toBe(measured.bytes);
    // Sizes are measured deltas of the encoded model: the prediction is within a few hundred bytes.
    expect(Math.abs(measured.bytes - plan.predicted.bytes)).toBeLessThan(2048);
    expect(measured.bytes).toBeLessThan(plan.float.bytes * 0.3);
    expect(measured.accuracyDrop!).toBeLessThan(1.5);
    expect(() => measurePlan(model, plan, { evalData: { x: ex } })).toThrow(/measureOnnxPlan/);
    const html = renderReport(onnx, { plan, measured, title: 'MLP as ONNX' });
    expect(html).toContain('Node 1_Gemm: Gemm');
    expect(html).toContain('quantizeOnnx passes');
    expect(html).toMatch(/int4 weight-only/);
  });
});

describe.skipIf(!real.paths)('real ONNX models', () => {
  it('openWakeWord head: every Gemm analyzed, runs in ORT, a plan measured within its SQNR budget', async () => {
    const P = real.paths!.openwakeword;
    const cal = Array.from({ length: 16 }, (_, i) => inputFor('openwakeword', 'calibration', i));
    const ev = Array.from({ length: 32 }, (_, i) => inputFor('openwakeword', 'eval', i));
    const phases = new Set<string>();
    const a = await analyzeOnnx(P, { calibrationData: cal, evalData: ev, onProgress: (p) => phases.add(p.phase) });
    expect([...phases]).toEqual(['statistics', 'ranges', 'sqnr', 'sensitivity']);
    expect(a.layers.map((l) => [l.name, l.opType, l.weightShape])).toEqual([
      ['/layer1/Gemm', 'Gemm', [32, 2400]], ['/blocks.0/fcn_layer/Gemm', 'Gemm', [32, 32]], ['/last_layer/Gemm', 'Gemm', [1, 32]],
    ]);
    for (const l of a.layers) {
      expect(l.weight.histogram.counts.reduce((x, y) => x + y, 0)).toBe(l.outFeatures * l.inFeatures);
      expect(l.weight.channels.absMax).toHaveLength(l.outFeatures);
      expect(l.input.channels.absMax).toHaveLength(l.inFeatures);
      expect(l.input.ranges.some((r) => r.granularity === 'per-channel')).toBe(true);
    }
    expect(a.onnx!.output).toBe('39');
    const s = a.sensitivity!;
    expect(s.data).toBe('eval');
    expect(s.rows).toBe(32);
    expect(s.uniform).toHaveLength(2);
    expect(s.single).toHaveLength(6);
    expect(s.allBut).toHaveLength(6);
    expect(s.uniform[0].sqnrDb).toBeGreaterThan(30);
    const plan = planMixedPrecision(a, { budget: { sqnrDb: 30 } });
    const { measured } = await measureOnnxPlan(P, plan, { calibrationData: cal, evalData: ev });
    expect(Math.abs(measured.bytes - plan.predicted.bytes)).toBeLessThan(1024);
    expect(measured.bytes).toBeLessThan(a.model.floatBytes * 0.35);
    expect(measured.sqnrDb).toBeGreaterThan(28);
    expect(measured.agreement).toBeGreaterThanOrEqual(0.9);
  }, 120000);

  it('detypify CNN: Conv weights per output channel, inputs per input channel, Conv int8 only, the Gemm also int4', async () => {
    const P = real.paths!.detypify;
    const cal = Array.from({ length: 6 }, (_, i) => inputFor('detypify', 'calibration', i));
    const ev = Array.from({ length: 6 }, (_, i) => inputFor('detypify', 'eval', i));
    const nodes = ['node_Conv_694', 'node_Conv_696', 'node_Conv_788', 'node_linear'];
    const a = await analyzeOnnx(P, { calibrationData: cal, evalData: ev, nodes, observers: ['minmax', 'percentile'], allButOne: false });
    expect(a.layers.map((l) => l.name)).toEqual(nodes);
    const conv = a.layers[0];
    expect(conv.opType).toBe('Conv');
    const [M, Cg, kh, kw] = conv.weightShape!;
    expect([conv.outFeatures, conv.inFeatures]).toEqual([M, Cg * kh * kw]);
    expect(conv.input.shape[1]).toBe(Cg); // a group-1 Conv: its input channels
    expect(conv.input.shape[0]).toBe(6 * 224 * 224); // rows: batch x positions
    expect(a.onnx!.notes[0]).toMatch(/4 of 51 quantizable nodes analyzed/);
    const s = a.sensitivity!;
    expect(s.single.map((r) => `${r.layer}@${r.bits}`)).toEqual(['node_Conv_694@8', 'node_Conv_696@8', 'node_Conv_788@8', 'node_linear@8', 'node_linear@4']);
    expect(s.allBut).toEqual([]);
    const plan = planMixedPrecision(a, { budget: { sqnrDb: 25 } });
    for (const l of plan.layers) if (l.name.startsWith('node_Conv')) expect(l.choice === 'float' || l.choice === 8).toBe(true);
    const { measured } = await measureOnnxPlan(P, plan, { calibrationData: cal, evalData: ev });
    expect(Math.abs(measured.bytes - plan.predicted.bytes)).toBeLessThan(4096);
    expect(measured.cosine).toBeGreaterThan(0.99);
  }, 180000);
});

describe('analyzeOnnx: a built graph with unnamed nodes', () => {
  it('names them by index and operator, analyzes, plans and measures with those names', async () => {
    const b = unnamedModel();
    const feeds = Array.from({ length: 4 }, (_, i) => ({ x: { data: normal(8 * 16, 20 + i), dims: [8, 16] } }));
    const a = await analyzeOnnx(b, { calibrationData: feeds, bits: [8, 4, 2, 3] });
    expect(a.layers.map((l) => l.name)).toEqual(['#0 MatMul', '#2 MatMul']);
    expect(a.onnx!.renamed).toEqual(['#0 MatMul', '#1 Relu', '#2 MatMul']);
    expect(a.onnx!.notes.join(' ')).toMatch(/sensitivity runs at 8, 4, 2 bits/);
    expect(a.layers[0].weight.ranges.filter((r) => r.granularity === 'per-tensor').map((r) => r.bits)).toContain(3);
    const s = a.sensitivity!;
    expect(s.data).toBe('calibration');
    expect(s.rows).toBe(32);
    expect(s.single.map((r) => `${r.layer}@${r.bits}`)).toEqual(['#0 MatMul@8', '#0 MatMul@4', '#0 MatMul@2', '#2 MatMul@8', '#2 MatMul@4', '#2 MatMul@2']);
    // Fewer bits, more noise.
    for (const l of a.layers) {
      const q = s.single.filter((r) => r.layer === l.name).map((r) => r.sqnrDb);
      expect(q[0]).toBeGreaterThan(q[1]);
      expect(q[1]).toBeGreaterThan(q[2]);
    }
    const plan = planMixedPrecision(a, { budget: { sqnrDb: 20 } });
    const { measured } = await measureOnnxPlan(b, plan, { calibrationData: feeds, evalData: feeds });
    expect(measured.sqnrDb).toBeGreaterThan(plan.predicted.sqnrDb - 3);
    expect(measured.withinBudget).toBe(true);
  }, 60000);
});

describe('analyzeOnnx: bad input', () => {
  const feed = (name: string) => [{ [name]: { data: new Float32Array(4), dims: [1, 4] } }];
  it('not an ONNX file', async () => {
    await expect(analyzeOnnx(new Uint8Array([1, 2, 3, 4, 5]), { calibrationData: feed('x') })).rejects.toThrow(OnnxFileError);
    await expect(analyzeOnnx(path.join(tmp, 'missing.onnx'), { calibrationData: feed('x') })).rejects.toThrow(/missing.onnx/);
  });
  it('no quantizable node', async () => {
    await expect(analyzeOnnx(reluModel(), { calibrationData: feed('x') })).rejects.toThrow(/MatMul, Gemm or Conv node .* none \(operators: Relu\)/);
    await expect(analyzeOnnx(matmulOfInputs(), { calibrationData: feed('x') })).rejects.toThrow(/MatMul 'mm': its weight 'w' is not a constant/);
  });
  it.skipIf(!mnistDir)('feeds whose names are not the graph inputs; one-shot iterables; options', async () => {
    const { model } = demo.trainMlp(new Float32Array(64 * 784), new Uint8Array(64), new Float32Array(784), new Uint8Array(1), { epochs: 1, seed: 1 });
    const b = exportOnnxBytes(model);
    const x = { data: new Float32Array(2 * 784), dims: [2, 784] };
    await expect(analyzeOnnx(b, { calibrationData: [{ image: x }] })).rejects.toThrow(/Expected graph input names \('input'\) for the keys of options.calibrationData\[0\] but received 'image'/);
    await expect(analyzeOnnx(b, { calibrationData: [{ input: x }], evalData: [{ inputs: x }] })).rejects.toThrow(/options.evalData\[0\] but received 'inputs'/);
    await expect(analyzeOnnx(b, { calibrationData: [] })).rejects.toThrow(/at least one feed/);
    await expect(analyzeOnnx(b, { calibrationData: [{ input: x }][Symbol.iterator]() as never })).rejects.toThrow(/one-shot iterable/);
    await expect(analyzeOnnx(b, { calibrationData: [{ input: x }], nodes: ['nope'] })).rejects.toThrow(/options.nodes.*'nope'/);
    await expect(analyzeOnnx(b, { calibrationData: [{ input: x }], output: 'nope' })).rejects.toThrow(/options.output/);
    await expect(analyzeOnnx(b, { calibrationData: [{ input: x }], evalData: { feeds: [{ input: x }], labels: [1] } })).rejects.toThrow(/2 labels/);
    await expect(analyzeOnnx(b, { calibrationData: [{ input: x }], mode: 'weight-only' as never })).rejects.toThrow(/options.mode/);
    expect(() => analyzeModel(b as never, { calibrationData: new Float32Array(784) })).toThrow(/analyzeOnnx/);
  });
});

describe.skipIf(!real.paths)('quantkit report MODEL.onnx', () => {
  it('random feeds when no calibration file (said in the report), a safetensors calibration file, JSON, bad names', async () => {
    const oww = real.paths!.openwakeword;
    const html = path.join(tmp, 'oww.html');
    const r = await run(['report', oww, '-o', html, '--single-only']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/oww.html: plan .*size \d+ bytes \(0\.\d+x float\).*within the budget \(random calibration feeds\)/);
    const page = fs.readFileSync(html, 'utf8');
    expect(page).toContain('16 feeds of random normal values (seed 1)');
    expect(page).toContain('Node /layer1/Gemm: Gemm');
    const cal = path.join(tmp, 'cal.safetensors');
    saveSafetensors(cal, { 'onnx::Flatten_0': { dtype: 'F32', shape: [8, 25, 96], data: normal(8 * 2400, 5) } });
    const j = await run(['report', oww, '--calibration', cal, '--json', '--bits', '8', '--mode', 'dynamic', '--eval-rows', '4']);
    expect(j.code, j.err).toBe(0);
    const parsed = JSON.parse(j.out);
    expect(parsed.analysis.onnx.feeds).toBe(8);
    // Without --eval the runs compare the first --eval-rows calibration rows.
    expect(parsed.analysis.sensitivity).toMatchObject({ rows: 4, data: 'calibration' });
    expect(parsed.measured.rows).toBe(4);
    expect(parsed.analysis.options).toMatchObject({ bits: [8], mode: 'dynamic' });
    expect(parsed.plan.onnx.mode).toBe('dynamic');
    expect(parsed.measured.bytes).toBeGreaterThan(0);
    const bad = path.join(tmp, 'bad.safetensors');
    saveSafetensors(bad, { image: { dtype: 'F32', shape: [2, 25, 96], data: normal(2 * 2400, 5) } });
    const e = await run(['report', oww, '--calibration', bad, '--json']);
    expect(e.code).toBe(1);
    expect(e.err).toMatch(/tensor 'image' is not a graph input \(inputs: onnx::Flatten_0\)/);
    const u = await run(['report', oww, '--json', '--mode', 'weight-only']);
    expect(u.code).toBe(2);
  }, 120000);
});
