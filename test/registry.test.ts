// The layer registry: a layer type added from outside the library is one registerLayer entry, and
// then round-trips through leafLayers, quantizeModel (kept float, or quantized by its own entry)
// and saveModel / loadModel. Two such types are defined here: TinyEmbedding, which takes int32 ids
// (a value that is not float rows, with a shape [N, L] -> [N, L, D]), and Scale (y = x * w per
// feature), which its entry quantizes weight-only into a stage of its own.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, loadSafetensors, QuantizedModel, quantizeModel, quantize, saveModel, saveSafetensors, WeightFileError } from '../lib/index';
import { Flatten, GELU, Linear, manualSeed, Module, Parameter, ReLU, Rng, Sequential } from '../lib/nn/index';
import type { Shaped } from '../lib/nn/index';
import { leafLayers } from '../lib/ptq/graph';
import {
  FileCtx, LayerSpec, LayerType, layerTypes, pfx, registerLayer, SavedLayer, specInt, Stage, toFloat, unregisterLayer, Value,
} from '../lib/ptq/index';
import type { LayerSummary } from '../lib/ptq/index';
import type { SafetensorsTensor } from '../lib/io/safetensors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-registry-'));
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  unregisterLayer('TinyEmbedding');
  unregisterLayer('Scale');
});

// ---- TinyEmbedding: int32 ids [N, L] -> rows of vectors [N, L, D] ---------------------------

class TinyEmbedding extends Module {
  readonly weight: Parameter;
  constructor(readonly numEmbeddings: number, readonly dim: number) {
    super();
    this.weight = new Parameter([numEmbeddings, dim]);
    this.ownParams.push(['weight', this.weight]);
  }
  private lookup(ids: ArrayLike<number>): Float32Array {
    const D = this.dim;
    const y = new Float32Array(ids.length * D);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.numEmbeddings) throw new RangeError(`id ${id} at ${i} is not below ${this.numEmbeddings}`);
      y.set(this.weight.data.subarray(id * D, id * D + D), i * D);
    }
    return y;
  }
  /** Rows of float ids (the row API). */
  forward(x: Float32Array): Float32Array {
    return this.lookup(x);
  }
  override forwardShaped(x: Shaped): Shaped {
    return { data: this.lookup(x.data), shape: [...x.shape, this.dim] };
  }
  backwardImpl(): Float32Array | null {
    throw new Error('TinyEmbedding: no backward in this test');
  }
  toString(): string {
    return `TinyEmbedding(${this.numEmbeddings}, ${this.dim})`;
  }
}

interface TinyEmbeddingSpec extends LayerSpec { type: 'TinyEmbedding'; numEmbeddings: number; dim: number }

/** The whole of what it takes to add the type. */
const TINY_EMBEDDING: LayerType<TinyEmbedding, TinyEmbeddingSpec> = {
  type: 'TinyEmbedding',
  module: TinyEmbedding,
  describe: (m) => ({ type: 'TinyEmbedding', numEmbeddings: m.numEmbeddings, dim: m.dim }),
  check: (f, v) => ({ type: 'TinyEmbedding', numEmbeddings: specInt(`${f}.numEmbeddings`, v.numEmbeddings), dim: specInt(`${f}.dim`, v.dim) }),
  create: (s) => new TinyEmbedding(s.numEmbeddings, s.dim),
  params: (s) => [['weight', [s.numEmbeddings, s.dim]]],
  input: 'int',
  inFeatures: () => 'any',
};

// ---- Scale: y = x * w per feature, quantized weight-only by its entry -------------------------

class Scale extends Module {
  readonly weight: Parameter;
  constructor(readonly features: number) {
    super();
    this.weight = new Parameter([features]);
    this.weight.data.fill(1);
    this.ownParams.push(['weight', this.weight]);
  }
  forward(x: Float32Array, batch: number): Float32Array {
    const F = this.features, w = this.weight.data;
    if (x.length !== batch * F) throw new RangeError('Scale: bad input');
    return Float32Array.from(x, (v, i) => v * w[i % F]);
  }
  backwardImpl(): Float32Array | null {
    throw new Error('Scale: no backward in this test');
  }
  toString(): string {
    return `Scale(${this.features})`;
  }
}

interface ScaleSpec extends LayerSpec { type: 'Scale'; features: number }

/** Weight-only Scale: int8 symmetric codes and one scale; x * (code * scale). */
class ScaleStage extends Stage {
  readonly mode = 'weight-only' as const;
  readonly w: Float32Array;
  constructor(name: string, spec: ScaleSpec, readonly codes: Int8Array, readonly scale: number) {
    super(name, spec);
    this.w = Float32Array.from(codes, (c) => c * scale);
  }
  run(v: Value, batch: number): Value {
    const x = toFloat(v), F = this.codes.length;
    if (x.length !== batch * F) throw new RangeError('Scale: bad input');
    return { f: Float32Array.from(x, (u, i) => u * this.w[i % F]) };
  }
  bytes(): number {
    return this.codes.length + 4;
  }
  toFile(t: Record<string, SafetensorsTensor>): Record<string, unknown> {
    t[pfx(this.name, 'weight')] = { dtype: 'I8', shape: [this.codes.length], data: this.codes };
    t[pfx(this.name, 'weight_scale')] = { dtype: 'F32', shape: [1], data: Float32Array.of(this.scale) };
    return { bits: 8 };
  }
  override summaryRow(): LayerSummary {
    return { ...super.summaryRow(), bits: 8, granularity: 'per-tensor' };
  }
}

const SCALE: LayerType<Scale, ScaleSpec> = {
  type: 'Scale',
  module: Scale,
  describe: (m) => ({ type: 'Scale', features: m.features }),
  check: (f, v) => ({ type: 'Scale', features: specInt(`${f}.features`, v.features) }),
  create: (s) => new Scale(s.features),
  params: (s) => [['weight', [s.features]]],
  quantize: {
    modes: ['weight-only'],
    takesCodes: () => false,
    build: (ctx) => {
      const t = quantize(ctx.module.weight.data, [ctx.spec.features], { scheme: 'symmetric', bits: 8 });
      return new ScaleStage(ctx.name, ctx.spec, t.data as Int8Array, t.scale[0]);
    },
    load: (c: FileCtx, l: SavedLayer<ScaleSpec>) => {
      if (l.json.bits !== 8) c.fail(`${l.field}.bits`, `expected 8 but found ${String(l.json.bits)}`);
      const codes = c.tensor(pfx(l.name, 'weight'), ['I8'], [l.spec.features]).data as Int8Array;
      const scale = (c.tensor(pfx(l.name, 'weight_scale'), ['F32'], [1]).data as Float32Array)[0];
      return new ScaleStage(l.name, l.spec, codes, scale);
    },
  },
};

const rand = (n: number, rng: Rng, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => rng.uniform(lo, hi));

describe('the registry', () => {
  it('refuses an unregistered module in one place, naming the registered types; registerLayer checks entries', () => {
    class Mystery extends Module {
      forward(x: Float32Array): Float32Array { return x; }
      backwardImpl(): Float32Array | null { return null; }
      toString(): string { return 'Mystery()'; }
    }
    const m = new Sequential(new Linear(2, 2), new Mystery());
    const err = "Expected a Sequential of nn layers (Linear, ReLU, Tanh, Sigmoid, Softmax, Flatten, Identity, GELU, LayerNorm, Dropout; other types need registerLayer) for model layer '1' but received object";
    expect(() => quantizeModel(m, { mode: 'dynamic' })).toThrow(new TypeError(err));
    expect(() => saveModel(path.join(tmp, 'mystery.safetensors'), m)).toThrow(new TypeError(err));
    expect(() => leafLayers(m)).toThrow(new TypeError(err));
    // Entries are checked when registered.
    expect(() => registerLayer({ ...TINY_EMBEDDING, type: 'Linear' })).toThrow("Expected a type not registered yet for layerType.type but received 'Linear' (registered)");
    expect(() => registerLayer({ ...TINY_EMBEDDING, module: Linear as never })).toThrow('Expected a class no other type has for layerType.module but received Linear');
    expect(() => registerLayer({ ...TINY_EMBEDDING, module: Object as never })).toThrow('Expected an nn Module class for layerType.module');
    expect(() => registerLayer({ ...SCALE, fusesRelu: true })).toThrow('fusesRelu needs it');
    expect(() => registerLayer({ ...SCALE, quantize: { ...SCALE.quantize!, modes: ['int3' as never] } })).toThrow("Expected a list of 'dynamic', 'static', 'weight-only' for layerType.quantize.modes");
    expect(() => unregisterLayer('Linear')).toThrow("Expected a type added with registerLayer (built-in types stay) for type but received 'Linear'");
    expect(unregisterLayer('Nothing')).toBe(false);
    expect(layerTypes().map((t) => t.type)).toEqual(['Linear', 'ReLU', 'Tanh', 'Sigmoid', 'Softmax', 'Flatten', 'Identity', 'GELU', 'LayerNorm', 'Dropout', 'Sequential']);
  });
});

describe('a layer type taking int32 ids (TinyEmbedding), added with one registerLayer call', () => {
  beforeAll(() => registerLayer(TINY_EMBEDDING));
  manualSeed(4);
  const L = 4, D = 3;
  const emb = new TinyEmbedding(10, D);
  emb.weight.data.set(rand(30, new Rng(1)));
  const model = new Sequential(emb, new Flatten(), new Linear(L * D, 5), new ReLU(), new Linear(5, 2)).eval();
  const ids = (n: number, seed: number) => Int32Array.from({ length: n * L }, (_, i) => (i * 7 + seed) % 10);
  const x = ids(6, 3);

  it('leafLayers describes it; the float model runs on shaped ids and round-trips through a file', () => {
    expect(leafLayers(model).map((l) => l.spec)).toEqual([
      { type: 'TinyEmbedding', numEmbeddings: 10, dim: 3 }, { type: 'Flatten' },
      { type: 'Linear', inFeatures: 12, outFeatures: 5, bias: true }, { type: 'ReLU' }, { type: 'Linear', inFeatures: 5, outFeatures: 2, bias: true },
    ]);
    const y = model.forwardShaped({ data: x, shape: [6, L] });
    expect(y.shape).toEqual([6, 2]);
    expect(Array.from(emb.forwardShaped({ data: x, shape: [6, L] }).shape)).toEqual([6, L, D]);
    // The row API still works (ids as float32 rows).
    expect(Array.from(model.forward(Float32Array.from(x), 6))).toEqual(Array.from(y.data));
    const file = path.join(tmp, 'emb-float.safetensors');
    saveModel(file, model);
    expect(loadSafetensors(file).tensors['0.weight']).toMatchObject({ dtype: 'F32', shape: [10, 3] });
    const back = loadModel(file) as Sequential;
    expect(back.toString()).toBe(model.toString());
    expect(Array.from(back.eval().forwardShaped({ data: x, shape: [6, L] }).data)).toEqual(Array.from(y.data));
  });

  it('static quantization calibrates on ids; the model equals the same Linears quantized on the embedded rows, bit for bit', () => {
    const cal = [{ x: ids(8, 1), shape: [8, L] }, { x: ids(5, 2), batch: 5 }];
    const q = quantizeModel(model, { mode: 'static', calibrationData: cal, observer: 'minmax' });
    expect(q.inputKind).toBe('int');
    expect(q.inFeatures).toBeNull();
    expect(q.summary().map((r) => [r.name, r.type, r.mode])).toEqual([
      ['0', 'TinyEmbedding', 'float'], ['1', 'Flatten', 'float'], ['2', 'Linear', 'static'], ['3', 'ReLU', 'fused'], ['4', 'Linear', 'static'],
    ]);
    // Reference: the layers after the embedding, calibrated on the embedded rows.
    const rest = new Sequential(model.at(1)!, model.at(2)!, model.at(3)!, model.at(4)!);
    const embRows = (b: { x: Int32Array; shape?: number[]; batch?: number }) => emb.forwardShaped({ data: b.x, shape: [b.x.length / L, L] }).data as Float32Array;
    const qr = quantizeModel(rest, { mode: 'static', calibrationData: cal.map((b) => ({ x: embRows(b) })), observer: 'minmax' });
    const y = q.forwardShaped({ data: x, shape: [6, L] });
    expect(y.shape).toEqual([6, 2]);
    expect(Array.from(y.data)).toEqual(Array.from(qr.forward(embRows({ x }), 6)));
    // forward(x, batch) with float ids gives the same.
    expect(Array.from(q.forward(Float32Array.from(x), 6))).toEqual(Array.from(y.data));
    // Saved and loaded: same outputs and summary; the embedding's table is an F32 tensor.
    const file = path.join(tmp, 'emb-static.safetensors');
    saveModel(file, q);
    const back = loadModel(file) as QuantizedModel;
    expect(back.summary()).toEqual(q.summary());
    expect(Array.from(back.forwardShaped({ data: x, shape: [6, L] }).data)).toEqual(Array.from(y.data));
    // Dynamic and weight-only too.
    for (const mode of ['dynamic', 'weight-only'] as const) {
      const qm = quantizeModel(model, { mode });
      saveModel(file, qm);
      expect(Array.from((loadModel(file) as QuantizedModel).forwardShaped({ data: x, shape: [6, L] }).data)).toEqual(Array.from(qm.forwardShaped({ data: x, shape: [6, L] }).data));
    }
  });

  it('errors: rows without a batch size, float data for ids, an unregistered type in a file', () => {
    expect(() => quantizeModel(model, { mode: 'static', calibrationData: ids(4, 1) })).toThrow("Expected batches { x, batch } (the model's first layers do not fix its input features, so rows cannot be told apart) for options.calibrationData but received Int32Array of length 16");
    expect(() => quantizeModel(model, { mode: 'static', calibrationData: [ids(4, 1)] })).toThrow("Expected { x, batch } or { x, shape } (the model's first layers do not fix its input features) for options.calibrationData[0] but received Int32Array of length 16");
    expect(() => quantizeModel(model, { mode: 'static', calibrationData: [{ x: ids(2, 1), shape: [3, 4] }] })).toThrow('Expected length 12 (shape [3, 4]) for options.calibrationData[0].data but received Int32Array of length 8');
    const q = quantizeModel(model, { mode: 'dynamic' });
    expect(() => q.forwardShaped({ data: Float32Array.from(x), shape: [6, L] })).toThrow('Expected an Int32Array of ids (the first layer takes int32 ids) for x.data but received Float32Array of length 24');
    const file = path.join(tmp, 'emb-gone.safetensors');
    saveModel(file, q);
    unregisterLayer('TinyEmbedding');
    try {
      expect(() => loadModel(file)).toThrow(WeightFileError);
      expect(() => loadModel(file)).toThrow(/^.*: Expected one of 'Linear', .*'Sequential' for __metadata__\['quantkit\.graph'\]\.layers\[0\]\.layer\.type but received "TinyEmbedding"$/);
    } finally {
      registerLayer(TINY_EMBEDDING);
    }
    expect(loadModel(file)).toBeInstanceOf(QuantizedModel);
  });
});

describe('a layer type quantized by its own entry (Scale, weight-only)', () => {
  beforeAll(() => registerLayer(SCALE));
  manualSeed(6);
  const sc = new Scale(3);
  sc.weight.data.set([0.5, -2, 1.25]);
  const model = new Sequential(new Linear(4, 3), sc, new GELU(), new Linear(3, 2)).eval();
  const x = rand(5 * 4, new Rng(3));

  it('weight-only: its stage runs x * dequantized w; saved and loaded bit for bit; other modes keep it float', () => {
    const q = quantizeModel(model, { mode: 'weight-only' });
    expect(q.summary().map((r) => [r.name, r.type, r.mode, r.bits])).toEqual([
      ['0', 'Linear', 'weight-only', 8], ['1', 'Scale', 'weight-only', 8], ['2', 'GELU', 'float', undefined], ['3', 'Linear', 'weight-only', 8],
    ]);
    expect(q.toString()).toContain('(1): Scale [weight-only, int8 per-tensor]');
    const st = q.stages[1] as ScaleStage;
    expect(st.scale).toBe(Math.fround(2 / 127));
    const h = Float32Array.from(rand(2 * 3, new Rng(9)));
    expect(Array.from(toFloat(st.run({ f: h }, 2)))).toEqual(Array.from(h, (v, i) => Math.fround(v * Math.fround(st.codes[i % 3] * st.scale))));
    const y = q.forward(x, 5), yf = model.forward(x, 5);
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - yf[i])).toBeLessThan(0.05);
    const file = path.join(tmp, 'scale-wo.safetensors');
    saveModel(file, q);
    const t = loadSafetensors(file).tensors;
    expect(t['1.weight']).toMatchObject({ dtype: 'I8', shape: [3] });
    expect(JSON.parse(loadSafetensors(file).metadata['quantkit.graph']).layers[1]).toEqual({ name: '1', layer: { type: 'Scale', features: 3 }, run: 'weight-only', bits: 8 });
    const back = loadModel(file) as QuantizedModel;
    expect(back.summary()).toEqual(q.summary());
    expect(Array.from(back.forward(x, 5))).toEqual(Array.from(y));
    // A model-wide mode the type lacks keeps it float (a plain float stage, saved as state dict tensors).
    const d = quantizeModel(model, { mode: 'dynamic' });
    expect(d.summary().map((r) => r.mode)).toEqual(['dynamic', 'float', 'float', 'dynamic']);
    saveModel(file, d);
    expect(loadSafetensors(file).tensors['1.weight']).toMatchObject({ dtype: 'F32', shape: [3] });
    expect(Array.from((loadModel(file) as QuantizedModel).forward(x, 5))).toEqual(Array.from(d.forward(x, 5)));
  });

  it('per-layer settings name it; a mode it lacks is refused; a file cannot claim one', () => {
    expect(() => quantizeModel(model, { mode: 'dynamic', layers: { '2': { mode: 'float' } } }))
      .toThrow(new RangeError("Expected names of Linear or Scale layers ('0', '1', '3') for options.layers but received '2'"));
    expect(() => quantizeModel(model, { mode: 'weight-only', layers: { '1': { mode: 'static' } } }))
      .toThrow(new RangeError("Expected one of 'weight-only', 'float' (a Scale layer) for options.layers['1'].mode but received 'static'"));
    expect(quantizeModel(model, { mode: 'weight-only', layers: { '1': { mode: 'float' } } }).summary()[1].mode).toBe('float');
    const file = path.join(tmp, 'scale-bad.safetensors');
    saveModel(file, quantizeModel(model, { mode: 'weight-only' }));
    const f = loadSafetensors(file);
    const g = JSON.parse(f.metadata['quantkit.graph']);
    g.layers[1].run = 'dynamic';
    const bad = path.join(tmp, 'scale-bad2.safetensors');
    saveSafetensors(bad, f.tensors, { ...f.metadata, 'quantkit.graph': JSON.stringify(g) });
    expect(() => loadModel(bad)).toThrow("__metadata__['quantkit.graph'].layers[1].run: Scale layers run 'weight-only' or 'float', found 'dynamic'");
    g.layers[1].run = 'weight-only';
    g.layers[2].run = 'static';
    saveSafetensors(bad, f.tensors, { ...f.metadata, 'quantkit.graph': JSON.stringify(g) });
    expect(() => loadModel(bad)).toThrow("__metadata__['quantkit.graph'].layers[2].run: only Linear, Scale layers run quantized, found 'static' for GELU");
  });
});
