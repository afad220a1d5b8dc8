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
// safetensors reader; a float file is a plain PyTorch-style state dict. Each layer type's entry in
// the registry reads its spec and its quantized stages' tensors (linear.ts for Linear); a stage
// writes its own (Stage.toFile).
import { checkOptions, typeError } from '../errors';
import { describeValue } from '../io/tfjs';
import { MAX_TENSORS, parseJsonChecked } from '../io/json';
import { loadSafetensors, saveSafetensors, SafetensorsArray, SafetensorsTensor } from '../io/safetensors';
import { Module } from '../nn/module';
import { Sequential } from '../nn/sequential';
import { FileCtx, pfx, SavedLayer } from './file-parts';
import { checkLayerSpec, checkNesting, LayerSpec, leafLayers, paramShapes, sequentialFromSpecs } from './graph';
import { QuantizedModel } from './qmodel';
import { entryOf, typesWhere } from './registry';
import { FloatStage, LayerMode, linkStatic, Stage, stateTensors } from './stages';

export { weightTensors } from './file-parts';

export const GRAPH_KEY = 'quantkit.graph';
const GRAPH_VERSION = 1;

/** One layer in the graph: name, spec, how it runs, fused ReLUs, then its stage's fields (Linear: weight, input, output, activation, activationGranularity). */
interface LayerJSON {
  name: string;
  layer: LayerSpec;
  run: LayerMode;
  fused?: string[];
  [field: string]: unknown;
}

interface GraphJSON {
  version: number;
  kind: 'float' | 'quantized';
  mode?: string;
  layers: LayerJSON[];
}

/** The tensors and graph of a model, as saveModel writes them. */
export function modelTensors(model: Sequential | QuantizedModel): { tensors: Record<string, SafetensorsTensor>; graph: GraphJSON } {
  const tensors: Record<string, SafetensorsTensor> = {};
  if (model instanceof Sequential) {
    const layers = leafLayers(model).map(({ name, module, spec }) => {
      stateTensors(name, module, tensors);
      return { name, layer: spec, run: 'float' as const };
    });
    return { tensors, graph: { version: GRAPH_VERSION, kind: 'float', layers } };
  }
  if (!(model instanceof QuantizedModel)) throw typeError('model', 'a Sequential or a QuantizedModel', model);
  const layers: LayerJSON[] = [];
  for (const s of model.stages) {
    const L: LayerJSON = { name: s.name, layer: s.spec, run: s.mode };
    if (s.fused.length) L.fused = s.fused.slice();
    layers.push(Object.assign(L, s.toFile(tensors)));
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

/** The F32 tensors of a float layer, checked (dtype, shape) before anything is allocated for it. */
function floatState(c: FileCtx, name: string, spec: LayerSpec): Record<string, Float32Array> {
  const state: Record<string, Float32Array> = {};
  for (const [pn, shape] of paramShapes(spec)) state[pn] = c.tensor(pfx(name, pn), ['F32'], shape).data as Float32Array;
  return state;
}

function loadFloatModule(c: FileCtx, name: string, spec: LayerSpec): Module {
  const state = floatState(c, name, spec);
  const m = entryOf(spec).create(spec);
  m.loadStateDict(state);
  return m;
}

function parseGraph(c: FileCtx, meta: Record<string, string>): GraphJSON {
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
  const c: FileCtx = new FileCtx(file, tensors); // annotated: c.fail's never narrows
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
    const t = entryOf(spec);
    const run = j.run;
    if (run !== 'float' && run !== 'dynamic' && run !== 'static' && run !== 'weight-only') c.fail(`${field}.run`, `expected 'float', 'dynamic', 'static' or 'weight-only' but found ${describeValue(run)}`);
    if (run !== 'float' && !t.quantize) c.fail(`${field}.run`, `only ${typesWhere((x) => x.quantize !== undefined)} layers run quantized, found '${run}' for ${spec.type}`);
    if (run !== 'float' && !t.quantize!.modes.includes(run)) c.fail(`${field}.run`, `${spec.type} layers run ${t.quantize!.modes.map((m) => `'${m}'`).join(', ')} or 'float', found '${run}'`);
    if (!t.fusesRelu && j.fused !== undefined) c.fail(`${field}.fused`, `only ${typesWhere((x) => x.fusesRelu === true)} layers fuse a ReLU`);
    if ((j.fused as string[] | undefined)?.length && (j.fused as string[]).length > 1) c.fail(`${field}.fused`, 'at most one ReLU');
    const relu = (j.fused as string[] | undefined)?.length === 1;
    let st: Stage;
    if (run === 'float') {
      const fs = new FloatStage(name, spec, loadFloatModule(c, name, spec), t);
      fs.relu = relu;
      st = fs;
    } else st = t.quantize!.load(c, { name, spec, json: j, field } as SavedLayer, run, relu);
    if (j.fused !== undefined) st.fused.push(...(j.fused as string[]));
    stages.push(st);
  }
  // The static links must be those the graph implies.
  const saved = stages.map((s) => (s.emitsCodes ? s.codesOut : undefined));
  linkStatic(stages);
  stages.forEach((s, i) => {
    if (!s.emitsCodes) return;
    const a = saved[i], b = s.codesOut;
    if ((a === null) !== (b === null) || (a && b && (a.scale !== b.scale || a.zeroPoint !== b.zeroPoint))) {
      c.fail(`${layers[i].field}.output`, `expected ${b ? JSON.stringify(b) + " (the next static layer's input)" : 'null (the next layer takes float)'} but found ${describeValue(a)}`);
    }
  });
  checkUnused(c);
  return new QuantizedModel(mode, stages);
}

function checkUnused(c: FileCtx): void {
  const extra = Object.keys(c.tensors).filter((n) => !c.used.has(n));
  if (extra.length) c.fail(`tensors['${extra[0]}']`, `unexpected: no layer of the graph uses it${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}`);
}

export type { SafetensorsArray };
