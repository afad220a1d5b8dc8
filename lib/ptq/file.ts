// Model files: float (Sequential) and quantized (QuantizedModel) models as safetensors, with the
// layer graph and the scalar quantization parameters in __metadata__['quantkit.graph'] (JSON).
//
// Tensors of a quantized Linear named n (PyTorch state dict prefixes, '1', '2.0', ...):
//   n.weight             I8 [out, in] (signed codes), U8 [out, in] (unsigned codes), or
//                        U8 [ceil(out*in/2)] at 4 bits or fewer (two codes per byte, low nibble first)
//   n.weight_scale       F32 [1] per-tensor, [out] per-channel, [out, ceil(in/groupSize)] per group
//   n.weight_zero_point  U8 (unsigned codes, asymmetric only), the scale's shape
//   n.bias               F32 [out], or I32 [out] for a static layer that requantizes its output
//                        (ONNX convention: scale input.scale * weight_scale[j], zero point 0)
// Float layers keep their state dict tensors (F32 n.weight, n.bias). Every file loads in any
// safetensors reader; a float file is a plain PyTorch-style state dict.
import { checkOptions, isTypedOf, typeError } from '../errors';
import { WeightFileError, describeValue } from '../io/tfjs';
import { MAX_TENSORS, parseJsonChecked } from '../io/json';
import { loadSafetensors, saveSafetensors, SafetensorsArray, SafetensorsTensor } from '../io/safetensors';
import { granularityLayout } from '../layout';
import { Module } from '../nn/module';
import { Sequential } from '../nn/sequential';
import { resolveSpec, storageBytes } from '../spec';
import { QuantizedTensor } from '../tensor';
import { checkLayerSpec, checkNesting, layerSpec, LayerSpec, leafLayers, moduleFromSpec, paramShapes, sequentialFromSpecs } from './graph';
import {
  ActQParams, DynamicStage, FloatStage, gemmMaxK, QuantizedModel, QuantWeight, Stage, StaticStage, WeightGranularity, WeightOnlyStage,
} from './qmodel';
import { linkStatic } from './quantize-model';

export const GRAPH_KEY = 'quantkit.graph';
const GRAPH_VERSION = 1;

interface WeightJSON {
  bits: number;
  scheme: 'symmetric' | 'asymmetric';
  signed: boolean;
  range: 'restricted' | 'full';
  granularity: WeightGranularity;
}

interface LayerJSON {
  name: string;
  layer: LayerSpec;
  run: 'float' | 'dynamic' | 'static' | 'weight-only';
  fused?: string[];
  weight?: WeightJSON;
  input?: ActQParams;
  output?: ActQParams | null;
  activation?: 'uint8' | 'int8';
  activationGranularity?: 'per-row' | 'per-tensor';
}

interface GraphJSON {
  version: number;
  kind: 'float' | 'quantized';
  mode?: string;
  layers: LayerJSON[];
}

function pfx(name: string, t: string): string {
  return name === '' ? t : `${name}.${t}`;
}

/** Shape of a Linear weight's scale (and zero point) tensor: [1], [out] or [out, groups]. */
function scaleShape(g: WeightGranularity, N: number, K: number): number[] {
  return g === 'per-tensor' ? [1] : g === 'per-channel' ? [N] : [N, Math.ceil(K / g.groupSize)];
}

/**
 * Adds a quantized Linear weight's tensors under `name` ('1' -> '1.weight', '1.weight_scale',
 * '1.weight_zero_point' for unsigned codes) and returns its description for the graph.
 */
export function weightTensors(name: string, w: QuantWeight, out: Record<string, SafetensorsTensor>): WeightJSON {
  const t = w.tensor;
  const [N, K] = t.shape;
  const nib = t.bits <= 4;
  if (nib) out[pfx(name, 'weight')] = { dtype: 'U8', shape: [t.data.length], data: t.data };
  else out[pfx(name, 'weight')] = { dtype: t.signed ? 'I8' : 'U8', shape: [N, K], data: t.data };
  const g = w.granularity;
  const sshape = scaleShape(g, N, K);
  out[pfx(name, 'weight_scale')] = { dtype: 'F32', shape: sshape, data: t.scale };
  if (t.scheme === 'asymmetric' || !t.signed) out[pfx(name, 'weight_zero_point')] = { dtype: 'U8', shape: sshape, data: Uint8Array.from(t.zeroPoint) };
  const spec = resolveSpec('weight', { scheme: t.scheme, bits: t.bits, signed: t.signed });
  return { bits: t.bits, scheme: t.scheme, signed: t.signed, range: t.qmin === spec.qmin ? 'restricted' : 'full', granularity: g };
}

function floatTensors(name: string, m: Module, out: Record<string, SafetensorsTensor>): void {
  for (const [n, s] of Object.entries(m.stateDict())) out[pfx(name, n)] = s;
}

/** The tensors and graph of a model, as saveModel writes them. */
export function modelTensors(model: Sequential | QuantizedModel): { tensors: Record<string, SafetensorsTensor>; graph: GraphJSON } {
  const tensors: Record<string, SafetensorsTensor> = {};
  if (model instanceof Sequential) {
    const layers = leafLayers(model).map(({ name, module }) => {
      floatTensors(name, module, tensors);
      return { name, layer: layerSpec(module, 'layer'), run: 'float' as const };
    });
    return { tensors, graph: { version: GRAPH_VERSION, kind: 'float', layers } };
  }
  if (!(model instanceof QuantizedModel)) throw typeError('model', 'a Sequential or a QuantizedModel', model);
  const layers: LayerJSON[] = [];
  for (const s of model.stages) {
    const L: LayerJSON = { name: s.name, layer: s.spec, run: s.mode };
    if (s.fused.length) L.fused = s.fused.slice();
    if (s instanceof FloatStage) floatTensors(s.name, s.module, tensors);
    else if (s instanceof DynamicStage || s instanceof WeightOnlyStage) {
      L.weight = weightTensors(s.name, s.weight, tensors);
      if (s.bias) tensors[pfx(s.name, 'bias')] = { dtype: 'F32', shape: [s.bias.length], data: s.bias };
      if (s instanceof DynamicStage) {
        L.activation = s.activation;
        L.activationGranularity = s.activationGranularity;
      }
    } else if (s instanceof StaticStage) {
      L.weight = weightTensors(s.name, s.weight, tensors);
      L.input = { ...s.input };
      L.output = s.output ? { ...s.output } : null;
      if (s.biasF) {
        tensors[pfx(s.name, 'bias')] = s.output
          ? { dtype: 'I32', shape: [s.biasQ!.length], data: s.biasQ! }
          : { dtype: 'F32', shape: [s.biasF.length], data: s.biasF };
      }
    }
    layers.push(L);
  }
  return { tensors, graph: { version: GRAPH_VERSION, kind: 'quantized', mode: model.mode, layers } };
}

/**
 * Saves a float Sequential or a QuantizedModel as safetensors (atomically: temp file + rename),
 * the graph in __metadata__['quantkit.graph'], plus any string metadata given.
 */
export function saveModel(file: string, model: Sequential | QuantizedModel, opts?: { metadata?: Record<string, string> }): void {
  const o = checkOptions('opts', opts, ['metadata']);
  const meta: Record<string, string> = {};
  if (o.metadata !== undefined) {
    if (typeof o.metadata !== 'object' || o.metadata === null || Array.isArray(o.metadata)) throw typeError('opts.metadata', 'an object of strings', o.metadata);
    for (const [k, v] of Object.entries(o.metadata as Record<string, unknown>)) {
      if (k.startsWith('quantkit.')) throw new RangeError(`Expected a key not starting with 'quantkit.' in opts.metadata but received '${k}' (reserved)`);
      if (typeof v !== 'string') throw typeError(`opts.metadata['${k}']`, 'a string', v);
      meta[k] = v;
    }
  }
  const { tensors, graph } = modelTensors(model);
  meta.format = meta.format ?? 'pt';
  meta[GRAPH_KEY] = JSON.stringify(graph);
  saveSafetensors(file, tensors, meta);
}

// ---------------------------------------------------------------------------------------------
// Loading

class Ctx {
  constructor(readonly file: string, readonly tensors: Record<string, SafetensorsTensor>) {}
  used = new Set<string>();
  fail(field: string, msg: string, cause?: unknown): never {
    throw new WeightFileError(this.file, field, msg, cause === undefined ? undefined : { cause });
  }
  obj(field: string, v: unknown): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, `expected an object but found ${describeValue(v)}`);
    return v as Record<string, unknown>;
  }
  tensor(name: string, dtypes: string[], shape: number[] | null): SafetensorsTensor {
    const t = Object.prototype.hasOwnProperty.call(this.tensors, name) ? this.tensors[name] : undefined;
    if (!t) this.fail(`tensors['${name}']`, 'missing (the graph needs it)');
    if (!dtypes.includes(t.dtype)) this.fail(`tensors['${name}'].dtype`, `expected ${dtypes.map((d) => `'${d}'`).join(' or ')} but found '${t.dtype}'`);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      this.fail(`tensors['${name}'].shape`, `expected [${shape.join(', ')}] but found [${t.shape.join(', ')}]`);
    }
    this.used.add(name);
    return t;
  }
  has(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.tensors, name);
  }
}

function checkAct(c: Ctx, field: string, v: unknown): ActQParams {
  const o = c.obj(field, v);
  const s = o.scale;
  if (typeof s !== 'number' || !(s > 0) || !Number.isFinite(Math.fround(s)) || Math.fround(s) === 0) c.fail(`${field}.scale`, `expected a positive finite float32 but found ${describeValue(s)}`);
  const z = o.zeroPoint;
  if (typeof z !== 'number' || !Number.isInteger(z) || z < 0 || z > 255) c.fail(`${field}.zeroPoint`, `expected an integer 0..255 but found ${describeValue(z)}`);
  return { scale: Math.fround(s), zeroPoint: z };
}

function checkWeightJSON(c: Ctx, field: string, v: unknown, mode: string): WeightJSON {
  const o = c.obj(field, v);
  const bits = o.bits;
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 2 || bits > 8) c.fail(`${field}.bits`, `expected an integer 2..8 but found ${describeValue(bits)}`);
  if (o.scheme !== 'symmetric' && o.scheme !== 'asymmetric') c.fail(`${field}.scheme`, `expected 'symmetric' or 'asymmetric' but found ${describeValue(o.scheme)}`);
  if (typeof o.signed !== 'boolean') c.fail(`${field}.signed`, `expected a boolean but found ${describeValue(o.signed)}`);
  if (o.range !== 'restricted' && o.range !== 'full') c.fail(`${field}.range`, `expected 'restricted' or 'full' but found ${describeValue(o.range)}`);
  const g = o.granularity;
  let gran: WeightGranularity;
  if (g === 'per-tensor' || g === 'per-channel') gran = g;
  else if (typeof g === 'object' && g !== null && !Array.isArray(g) && Object.keys(g).length === 1 && Number.isInteger((g as { groupSize?: unknown }).groupSize) && (g as { groupSize: number }).groupSize >= 1) {
    gran = { groupSize: (g as { groupSize: number }).groupSize };
    if (mode !== 'weight-only') c.fail(`${field}.granularity`, `groups are only for weight-only layers, found ${describeValue(g)} in a ${mode} layer`);
  } else c.fail(`${field}.granularity`, `expected 'per-tensor', 'per-channel' or { groupSize } but found ${describeValue(g)}`);
  return { bits, scheme: o.scheme, signed: o.signed, range: o.range, granularity: gran };
}

function loadWeight(c: Ctx, name: string, field: string, w: WeightJSON, N: number, K: number): QuantWeight {
  const spec = resolveSpec('weight', { scheme: w.scheme, bits: w.bits, signed: w.signed, range: w.range });
  const g = w.granularity;
  const sshape = scaleShape(g, N, K);
  const nib = w.bits <= 4;
  const wt = nib
    ? c.tensor(pfx(name, 'weight'), ['U8'], [storageBytes(spec.dtype, N * K)])
    : c.tensor(pfx(name, 'weight'), [spec.signed ? 'I8' : 'U8'], [N, K]);
  const sc = c.tensor(pfx(name, 'weight_scale'), ['F32'], sshape).data as Float32Array;
  for (let i = 0; i < sc.length; i++) {
    if (!(sc[i] > 0) || !Number.isFinite(sc[i])) c.fail(`tensors['${pfx(name, 'weight_scale')}'][${i}]`, `expected a positive finite scale but found ${sc[i]}`);
  }
  const zp = new Int32Array(sc.length);
  if (w.scheme === 'asymmetric' || !w.signed) {
    const z = c.tensor(pfx(name, 'weight_zero_point'), ['U8'], sshape).data as Uint8Array;
    for (let i = 0; i < z.length; i++) {
      if (z[i] < spec.qmin || z[i] > spec.qmax) c.fail(`tensors['${pfx(name, 'weight_zero_point')}'][${i}]`, `expected ${spec.qmin}..${spec.qmax} but found ${z[i]}`);
      zp[i] = z[i];
    }
  }
  const data = wt.data as Int8Array | Uint8Array;
  // Codes inside the scheme's range (a wrong code would silently change results).
  const n = N * K;
  for (let i = 0; i < n; i++) {
    let v: number;
    if (nib) {
      const b = data[i >> 1];
      v = i & 1 ? b >> 4 : b & 15;
      if (spec.signed && v >= 8) v -= 16;
    } else v = data[i];
    if (v < spec.qmin || v > spec.qmax) c.fail(`tensors['${pfx(name, 'weight')}']`, `code ${v} at element ${i} is outside ${spec.qmin}..${spec.qmax} (${field})`);
  }
  const granularity = g === 'per-tensor' ? 'per-tensor' as const : g === 'per-channel' ? { axis: 0 } : { axis: 1, blockSize: g.groupSize };
  const s2 = resolveSpec('weight', { scheme: w.scheme, bits: w.bits, signed: w.signed, range: w.range, granularity });
  const layout = granularityLayout('weight', granularity, [N, K], n);
  const tensor = new QuantizedTensor({ data, shape: [N, K], spec: s2, scale: sc, zeroPoint: zp, layout });
  return { tensor, granularity: g };
}

/** The F32 tensors of a float layer, checked (dtype, shape) before anything is allocated for it. */
function floatState(c: Ctx, name: string, spec: LayerSpec): Record<string, Float32Array> {
  const state: Record<string, Float32Array> = {};
  for (const [pn, shape] of paramShapes(spec)) state[pn] = c.tensor(pfx(name, pn), ['F32'], shape).data as Float32Array;
  return state;
}

function loadFloatModule(c: Ctx, name: string, spec: LayerSpec): Module {
  const state = floatState(c, name, spec);
  const m = moduleFromSpec(spec);
  m.loadStateDict(state);
  return m;
}

function parseGraph(c: Ctx, meta: Record<string, string>): GraphJSON {
  const raw = meta[GRAPH_KEY];
  const f = `__metadata__['${GRAPH_KEY}']`;
  if (raw === undefined) c.fail(f, 'missing: not a quantkit model file (for a plain state dict of F32 weights use loadSafetensorsInto(model, file))');
  // Nesting checked by a flat scan before parsing (at most JSON_MAX_DEPTH levels).
  const g = parseJsonChecked(raw, { field: f, fail: (field, msg, cause) => c.fail(field, msg, cause) });
  const o = c.obj(f, g);
  if (o.version !== GRAPH_VERSION) c.fail(`${f}.version`, `expected ${GRAPH_VERSION} but found ${describeValue(o.version)}`);
  if (o.kind !== 'float' && o.kind !== 'quantized') c.fail(`${f}.kind`, `expected 'float' or 'quantized' but found ${describeValue(o.kind)}`);
  if (!Array.isArray(o.layers)) c.fail(`${f}.layers`, `expected an array but found ${describeValue(o.layers)}`);
  if (o.layers.length > MAX_TENSORS) c.fail(`${f}.layers`, `more than ${MAX_TENSORS} layers (the limit)`);
  return o as unknown as GraphJSON;
}

/** Loads a model file written by saveModel: a Sequential (float) or a QuantizedModel. */
export function loadModel(file: string): Sequential | QuantizedModel {
  const { tensors, metadata } = loadSafetensors(file);
  const c: Ctx = new Ctx(file, tensors);
  const g = parseGraph(c, metadata);
  const f = `__metadata__['${GRAPH_KEY}'].layers`;
  const layers: { name: string; spec: LayerSpec; j: Record<string, unknown>; field: string }[] = [];
  for (let i = 0; i < g.layers.length; i++) {
    const field = `${f}[${i}]`;
    const j = c.obj(field, g.layers[i]);
    if (typeof j.name !== 'string') c.fail(`${field}.name`, `expected a string but found ${describeValue(j.name)}`);
    let spec: LayerSpec;
    try {
      spec = checkLayerSpec(`${field}.layer`, j.layer);
    } catch (e) {
      c.fail('', (e as Error).message);
    }
    layers.push({ name: j.name, spec, j, field });
  }
  // Names and nesting (the same rules as a Sequential's state dict).
  const all: { name: string; spec: LayerSpec }[] = [];
  for (const l of layers) {
    all.push(l);
    const fused = l.j.fused;
    if (fused !== undefined) {
      if (!Array.isArray(fused) || fused.some((x) => typeof x !== 'string')) c.fail(`${l.field}.fused`, `expected an array of names but found ${describeValue(fused)}`);
      for (const n of fused as string[]) all.push({ name: n, spec: { type: 'ReLU' } });
    }
  }
  try {
    checkNesting(f, all);
  } catch (e) {
    c.fail('', (e as Error).message);
  }
  if (g.kind === 'float') {
    for (const l of layers) {
      if (l.j.run !== 'float') c.fail(`${l.field}.run`, `expected 'float' in a float model but found ${describeValue(l.j.run)}`);
      if (l.j.fused !== undefined) c.fail(`${l.field}.fused`, 'not allowed in a float model');
    }
    const state: Record<string, Float32Array> = {};
    for (const l of layers) Object.assign(state, Object.fromEntries(Object.entries(floatState(c, l.name, l.spec)).map(([k, v]) => [pfx(l.name, k), v])));
    checkUnused(c);
    const { model } = sequentialFromSpecs(f, all);
    model.loadStateDict(state);
    return model;
  }
  const mode = g.mode;
  if (mode !== 'dynamic' && mode !== 'static' && mode !== 'weight-only' && mode !== 'float') c.fail(`__metadata__['${GRAPH_KEY}'].mode`, `expected 'dynamic', 'static', 'weight-only' or 'float' but found ${describeValue(mode)}`);
  const stages: Stage[] = [];
  for (const l of layers) {
    const { j, field, spec, name } = l;
    const run = j.run;
    if (run !== 'float' && run !== 'dynamic' && run !== 'static' && run !== 'weight-only') c.fail(`${field}.run`, `expected 'float', 'dynamic', 'static' or 'weight-only' but found ${describeValue(run)}`);
    if (run !== 'float' && spec.type !== 'Linear') c.fail(`${field}.run`, `only Linear layers run quantized, found '${run}' for ${spec.type}`);
    if (spec.type !== 'Linear' && j.fused !== undefined) c.fail(`${field}.fused`, 'only Linear layers fuse a ReLU');
    if ((j.fused as string[] | undefined)?.length && (j.fused as string[]).length > 1) c.fail(`${field}.fused`, 'at most one ReLU');
    let st: Stage;
    if (run === 'float') {
      const fs = new FloatStage(name, spec, loadFloatModule(c, name, spec));
      fs.relu = (j.fused as string[] | undefined)?.length === 1;
      st = fs;
    }
    else {
      const ls = spec as Extract<LayerSpec, { type: 'Linear' }>;
      const N = ls.outFeatures, K = ls.inFeatures;
      const wj = checkWeightJSON(c, `${field}.weight`, j.weight, run);
      let w: QuantWeight;
      try {
        w = loadWeight(c, name, `${field}.weight`, wj, N, K);
      } catch (e) {
        if (e instanceof WeightFileError) throw e;
        c.fail(`${field}.weight`, (e as Error).message);
      }
      const relu = (j.fused as string[] | undefined)?.length === 1;
      if (run === 'dynamic' || run === 'static') {
        const kmax = gemmMaxK(j.activation === 'int8', w.tensor.signed);
        if (K > kmax) c.fail(`${field}.layer.inFeatures`, `${K} is too large for an int8 GEMM layer (at most ${kmax}: the int32 accumulator)`);
      }
      const bname = pfx(name, 'bias');
      if (!ls.bias && c.has(bname)) c.fail(`tensors['${bname}']`, 'unexpected: the layer has no bias');
      if (run === 'static') {
        const input = checkAct(c, `${field}.input`, j.input);
        const out = j.output === null || j.output === undefined ? null : checkAct(c, `${field}.output`, j.output);
        const bias = ls.bias ? c.tensor(bname, [out ? 'I32' : 'F32'], [N]).data as Float32Array | Int32Array : null;
        if (isTypedOf(bias, 'Float32Array') && bias.some((v) => !Number.isFinite(v))) c.fail(`tensors['${bname}']`, 'a value is not finite');
        if (out) {
          const ws = w.tensor.scale;
          for (let k = 0; k < ws.length; k++) {
            const mult = Math.fround(Math.fround(input.scale * ws[k]) / out.scale);
            if (!(mult > 0) || !Number.isFinite(mult)) c.fail(`tensors['${pfx(name, 'weight_scale')}'][${k}]`, `input scale * weight scale / output scale must be a positive finite float32, found ${input.scale} * ${ws[k]} / ${out.scale}`);
          }
        }
        const s = new StaticStage(name, spec, w, input, bias, relu);
        s.output = out;
        st = s;
      } else {
        const bias = ls.bias ? c.tensor(bname, ['F32'], [N]).data as Float32Array : null;
        if (bias && bias.some((v) => !Number.isFinite(v))) c.fail(`tensors['${bname}']`, 'a value is not finite');
        if (run === 'dynamic') {
          const act = j.activation, ag = j.activationGranularity;
          if (act !== 'uint8' && act !== 'int8') c.fail(`${field}.activation`, `expected 'uint8' or 'int8' but found ${describeValue(act)}`);
          if (ag !== 'per-row' && ag !== 'per-tensor') c.fail(`${field}.activationGranularity`, `expected 'per-row' or 'per-tensor' but found ${describeValue(ag)}`);
          st = new DynamicStage(name, spec, w, bias, relu, act, ag);
        } else st = new WeightOnlyStage(name, spec, w, bias, relu);
      }
    }
    if (j.fused !== undefined) st.fused.push(...(j.fused as string[]));
    stages.push(st);
  }
  // The static links must be those the graph implies.
  const saved = stages.map((s) => (s instanceof StaticStage ? s.output : undefined));
  linkStatic(stages);
  stages.forEach((s, i) => {
    if (!(s instanceof StaticStage)) return;
    const a = saved[i], b = s.output;
    if ((a === null) !== (b === null) || (a && b && (a.scale !== b.scale || a.zeroPoint !== b.zeroPoint))) {
      c.fail(`${layers[i].field}.output`, `expected ${b ? JSON.stringify(b) + " (the next static layer's input)" : 'null (the next layer takes float)'} but found ${describeValue(a)}`);
    }
  });
  checkUnused(c);
  return new QuantizedModel(mode, stages);
}

function checkUnused(c: Ctx): void {
  const extra = Object.keys(c.tensors).filter((n) => !c.used.has(n));
  if (extra.length) c.fail(`tensors['${extra[0]}']`, `unexpected: no layer of the graph uses it${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}`);
}

export type { SafetensorsArray };
