// quantizeModel: post-training quantization of a Sequential (dynamic, static, weight-only), with
// per-layer overrides and calibration through any observer, in three steps that can be called one
// by one: planQuantization (options and model checked, each layer's settings decided),
// calibrateQuantization (the static layers' input qparams, from observers) and
// buildQuantizedModel (the stages, with calibrated or given qparams: what QAT conversion and
// model import need). Each layer type's quantization is its registry entry's (registry.ts).
import { checkInt, checkOneOf, checkOptions, checkTyped, describe, isTypedOf, rangeError, typeError } from '../errors';
import { checkShaped, Module } from '../nn/module';
import { Sequential } from '../nn/sequential';
import { Observer } from '../observers/base';
import { EntropyObserver } from '../observers/entropy';
import { HistogramObserver } from '../observers/histogram';
import { MinMaxObserver, MovingAverageMinMaxObserver } from '../observers/minmax';
import { MSEObserver } from '../observers/mse';
import { PercentileObserver } from '../observers/percentile';
import { inputFeatures, leafLayers } from './graph';
import { QuantizedModel } from './qmodel';
import { LayerSettings, LayerSpec, LayerType, QuantizeContext, typesWhere, WeightQParams } from './registry';
import { ActQParams, cloneLayer, FloatStage, LayerMode, linkStatic, QuantMode, runModule, Stage, Value, WeightGranularity } from './stages';

export { fitWeightForBias, quantizeWeight, weightQuantSpec } from './linear';
export type { LayerSettings, WeightQParams } from './registry';

export type ObserverName = 'minmax' | 'moving-average' | 'histogram' | 'percentile' | 'mse' | 'entropy';
/** An observer by name (configured for uint8 asymmetric activations), or a factory per layer. */
export type ObserverChoice = ObserverName | ((layer: string) => Observer);

/** Per-layer settings (keys of QuantizeModelOptions.layers are layer names such as '1' or '2.0'). */
export interface LayerOverride {
  /** How this Linear runs; 'float' keeps it in float32. */
  mode?: LayerMode;
  /** Weight bits (2..8). */
  bits?: number;
  granularity?: WeightGranularity;
  scheme?: 'symmetric' | 'asymmetric';
  /** Static mode: the observer of this layer's input. */
  observer?: ObserverChoice;
}

/**
 * Input rows (a Float32Array of rows x inFeatures), or batches of them: arrays or { x, batch?,
 * shape? } (shape: for layers that need one, batch first). A model whose first layer takes int32
 * ids (an Embedding) takes Int32Arrays instead; when its first layers do not fix the input
 * features, each batch says its size ({ x, batch } or { x, shape }).
 */
export type CalibrationData = Float32Array | Int32Array | Iterable<Float32Array | Int32Array | { x: Float32Array | Int32Array; batch?: number; shape?: readonly number[] }>;

export interface QuantizeProgress {
  phase: 'calibrate' | 'quantize';
  /** Calibration: rows seen; quantize: layers done. */
  done: number;
  /** Rows or layers in all, when known. */
  total: number | null;
}

export interface QuantizeModelOptions {
  /**
   * 'dynamic': int8 weights, activations quantized per batch (per row by default); float32 between layers.
   * 'static': activation ranges calibrated on calibrationData; uint8 activations flow between GEMMs
   * (requantizing epilogues, ReLU fused); only the model's input and output are float.
   * 'weight-only': int8 or int4 weights (per group by default), float activations and float GEMM
   * (groups of 16..256: the block-quantized GEMM matmulNBits with fp32 compute, docs/nbits.md).
   * 'float': nothing quantized; Linear weights packed once for the fp32 GEMM, bias and ReLU fused
   * (the fair float baseline to compare with; also a per-layer override to keep one layer float).
   */
  mode: QuantMode;
  /** Weight bits, 2..8 (default 8). Codes below 8 bits still run on the int8 GEMM; at 4 bits or fewer they are stored two per byte. */
  bits?: number;
  /** Weight granularity: default 'per-channel' (one scale per output feature), { groupSize: 32 } for weight-only. */
  granularity?: WeightGranularity;
  /** Weights: 'symmetric' (default; int codes, zero point 0, restricted range such as -127..127) or 'asymmetric' (uint codes, zero points). */
  scheme?: 'symmetric' | 'asymmetric';
  /**
   * Weight rounding and qparams arithmetic: 'onnx' (default: codes round(w / scale)) or 'pytorch'
   * (round(w * (1 / scale)), as torch.quantize_per_channel; PyTorch's scale formulas).
   */
  formula?: 'onnx' | 'pytorch';
  /** Static mode: input rows (Float32Array of rows x inFeatures), or batches of them (see CalibrationData). */
  calibrationData?: CalibrationData;
  /** Rows per calibration batch when calibrationData is one Float32Array (default 256). */
  calibrationBatchSize?: number;
  /** Static mode: activation observer (default 'histogram', PyTorch's default for static int8: L2-optimal range on a 2048-bin histogram). */
  observer?: ObserverChoice;
  /** Dynamic mode: 'uint8' (default, asymmetric) or 'int8' (symmetric) activations. */
  activation?: 'uint8' | 'int8';
  /** Dynamic mode: one activation scale 'per-row' (default) or 'per-tensor' (ONNX Runtime's DynamicQuantizeMatMul). */
  activationGranularity?: 'per-row' | 'per-tensor';
  /** Per-layer overrides by layer name. */
  layers?: Record<string, LayerOverride>;
  onProgress?: (p: QuantizeProgress) => void;
}

const OPTS = ['mode', 'bits', 'granularity', 'scheme', 'formula', 'calibrationData', 'calibrationBatchSize', 'observer', 'activation',
  'activationGranularity', 'layers', 'onProgress'] as const;
const LAYER_OPTS = ['mode', 'bits', 'granularity', 'scheme', 'observer'] as const;
const MODES = ['dynamic', 'static', 'weight-only', 'float'] as const;
const OBSERVERS = ['minmax', 'moving-average', 'histogram', 'percentile', 'mse', 'entropy'] as const;

/** Checks a weight granularity option. */
export function checkWeightGranularity(name: string, v: unknown): WeightGranularity {
  if (v === 'per-tensor' || v === 'per-channel') return v;
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = checkOptions(name, v, ['groupSize']);
    return { groupSize: checkInt(`${name}.groupSize`, o.groupSize, 1, 2 ** 31) };
  }
  throw typeError(name, "'per-channel', 'per-tensor' or { groupSize }", v);
}

function checkObserverChoice(name: string, v: unknown): ObserverChoice {
  if (typeof v === 'function') return v as (layer: string) => Observer;
  return checkOneOf(name, v, OBSERVERS);
}

/** A fresh per-tensor activation observer: uint8 (asymmetric 0..255, the default) or int8 (-128..127). */
export function makeObserver(choice: ObserverChoice, layer: string, activation: 'uint8' | 'int8' = 'uint8'): Observer {
  if (typeof choice === 'function') {
    const o = choice(layer);
    if (!(o instanceof Observer)) throw typeError(`observer('${layer}')`, 'an Observer', o);
    return o;
  }
  const spec = { scheme: 'asymmetric' as const, bits: 8, signed: activation === 'int8' };
  switch (choice) {
    case 'minmax': return new MinMaxObserver(spec);
    case 'moving-average': return new MovingAverageMinMaxObserver(spec);
    case 'histogram': return new HistogramObserver(spec);
    case 'percentile': return new PercentileObserver(spec);
    case 'mse': return new MSEObserver(spec);
    case 'entropy': return new EntropyObserver(spec);
  }
}


/** One leaf layer of a QuantizationPlan. */
export interface PlannedLayer {
  readonly name: string;
  readonly module: Module;
  readonly spec: LayerSpec;
  readonly layerType: LayerType;
  /** How it is quantized (mode 'float' included); null for a type that always runs float (no quantizer in its entry). */
  readonly settings: Readonly<LayerSettings> | null;
  /** Whether the settings came from options.layers[name]. */
  readonly override: boolean;
  /** It takes uint8 codes (static): its input needs activation qparams, calibrated or given. */
  readonly takesCodes: boolean;
  /** The ReLU after it that its stage fuses (that ReLU's name), or null. */
  readonly fusedRelu: string | null;
}

/**
 * What quantizeModel will do, decided and checked before any value is computed: every leaf layer
 * in order (a fused ReLU too: it runs in calibration) with its settings, and the model-wide
 * options. Made by planQuantization; read-only.
 */
export interface QuantizationPlan {
  readonly mode: QuantMode;
  readonly formula: 'onnx' | 'pytorch';
  readonly activation: 'uint8' | 'int8';
  readonly activationGranularity: 'per-row' | 'per-tensor';
  readonly layers: readonly PlannedLayer[];
  readonly calibrationData: CalibrationData | undefined;
  readonly calibrationBatchSize: number;
  readonly onProgress: ((p: QuantizeProgress) => void) | undefined;
}

/** Qparams given to buildQuantizedModel instead of calibrated or computed (QAT conversion, imported models). */
export interface GivenQParams {
  /** The input qparams of every layer that takes codes (plan.layers[i].takesCodes: the static ones), by layer name. */
  inputQParams?: Record<string, ActQParams>;
  /** Weight qparams of any quantized layers, by layer name (the others compute theirs from their weights). */
  weightQParams?: Record<string, WeightQParams>;
}

const plans = new WeakSet<object>();

/**
 * Checks the options and the model and decides each layer's settings (options.layers applied).
 * The first of quantizeModel's steps; throws what quantizeModel throws for these options, except
 * calibration's errors.
 */
export function planQuantization(model: Sequential, options: QuantizeModelOptions): QuantizationPlan {
  if (!(model instanceof Sequential)) {
    if ((model as unknown) instanceof Module) throw new TypeError(`Expected a Sequential for model but received ${(model as object).constructor.name} (wrap it: new Sequential(layer))`);
    throw typeError('model', 'a Sequential', model);
  }
  if (options === undefined || options === null) throw typeError('options', "an options object with mode 'dynamic', 'static', 'weight-only' or 'float'", options);
  const o = checkOptions('options', options, OPTS);
  const mode = checkOneOf('options.mode', o.mode, MODES);
  const bits = o.bits === undefined ? 8 : checkInt('options.bits', o.bits, 2, 8);
  const defaultGranularity = (m: LayerMode): WeightGranularity => (m === 'weight-only' ? { groupSize: 32 } : 'per-channel');
  const granularity = o.granularity === undefined ? defaultGranularity(mode) : checkWeightGranularity('options.granularity', o.granularity);
  const scheme = o.scheme === undefined ? 'symmetric' : checkOneOf('options.scheme', o.scheme, ['symmetric', 'asymmetric'] as const);
  const formula = o.formula === undefined ? 'onnx' : checkOneOf('options.formula', o.formula, ['onnx', 'pytorch'] as const);
  const observer = o.observer === undefined ? 'histogram' : checkObserverChoice('options.observer', o.observer);
  const activation = o.activation === undefined ? 'uint8' : checkOneOf('options.activation', o.activation, ['uint8', 'int8'] as const);
  const actGran = o.activationGranularity === undefined ? 'per-row' : checkOneOf('options.activationGranularity', o.activationGranularity, ['per-row', 'per-tensor'] as const);
  const batchSize = o.calibrationBatchSize === undefined ? 256 : checkInt('options.calibrationBatchSize', o.calibrationBatchSize, 1, 2 ** 31);
  const progress = o.onProgress as QuantizeModelOptions['onProgress'];
  if (progress !== undefined && typeof progress !== 'function') throw typeError('options.onProgress', 'a function', progress);

  const layers = leafLayers(model);
  const quantizable = layers.filter((l) => l.layerType.quantize);
  const names = quantizable.map((l) => l.name);
  // Per-layer settings.
  const overrides = new Map<string, LayerSettings>();
  if (o.layers !== undefined) {
    if (typeof o.layers !== 'object' || o.layers === null || Array.isArray(o.layers)) throw typeError('options.layers', 'an object of per-layer overrides keyed by layer name', o.layers);
    for (const [name, v] of Object.entries(o.layers as Record<string, unknown>)) {
      const field = `options.layers['${name}']`;
      const l = quantizable.find((x) => x.name === name);
      if (!l) {
        const types = names.length ? [...new Set(quantizable.map((x) => x.layerType.type))].join(' or ') : typesWhere((t) => t.quantize !== undefined);
        throw rangeError('options.layers', `names of ${types} layers (${names.map((n) => `'${n}'`).join(', ')})`, `'${name}'`);
      }
      const lo = checkOptions(field, v, LAYER_OPTS);
      const lmode = lo.mode === undefined ? mode : checkOneOf(`${field}.mode`, lo.mode, MODES);
      const modes = l.layerType.quantize!.modes;
      if (lo.mode !== undefined && lmode !== 'float' && !modes.includes(lmode)) {
        throw rangeError(`${field}.mode`, `one of ${[...modes, 'float'].map((m) => `'${m}'`).join(', ')} (a ${l.layerType.type} layer)`, `'${lmode}'`);
      }
      overrides.set(name, {
        mode: modes.includes(lmode as never) ? lmode : 'float',
        bits: lo.bits === undefined ? bits : checkInt(`${field}.bits`, lo.bits, 2, 8),
        granularity: lo.granularity !== undefined ? checkWeightGranularity(`${field}.granularity`, lo.granularity)
          : o.granularity !== undefined ? granularity : defaultGranularity(lmode),
        scheme: lo.scheme === undefined ? scheme : checkOneOf(`${field}.scheme`, lo.scheme, ['symmetric', 'asymmetric'] as const),
        observer: lo.observer === undefined ? observer : checkObserverChoice(`${field}.observer`, lo.observer),
      });
    }
  }
  const plan: QuantizationPlan = {
    mode, formula, activation, activationGranularity: actGran, calibrationData: o.calibrationData as CalibrationData | undefined,
    calibrationBatchSize: batchSize, onProgress: progress,
    layers: layers.map((l, i) => {
      const q = l.layerType.quantize;
      // A model-wide mode the type lacks keeps the layer float.
      const settings = !q ? null : overrides.get(l.name) ?? { mode: q.modes.includes(mode as never) ? mode : 'float', bits, granularity, scheme, observer };
      const next = layers[i + 1];
      return Object.freeze({
        name: l.name, module: l.module, spec: l.spec, layerType: l.layerType, settings: settings && Object.freeze(settings),
        override: overrides.has(l.name), takesCodes: settings !== null && q!.takesCodes(settings),
        fusedRelu: l.layerType.fusesRelu && next?.layerType.relu ? next.name : null,
      });
    }),
  };
  for (const l of plan.layers) if (l.settings) l.layerType.quantize!.checkSettings?.(context(plan, l));
  checkValues(plan);
  plans.add(Object.freeze(plan));
  return plan;
}

function context(plan: QuantizationPlan, l: PlannedLayer): QuantizeContext {
  return {
    name: l.name, module: l.module, spec: l.spec, settings: l.settings as LayerSettings, formula: plan.formula, activation: plan.activation,
    activationGranularity: plan.activationGranularity,
    field: (key) => (l.override ? `options.layers['${l.name}'].${key}` : `options.${key}`),
  };
}

/** The value checks (finite weights, accumulator bounds) of the layers that will be quantized. */
function checkValues(plan: QuantizationPlan): void {
  for (const l of plan.layers) if (l.settings && l.settings.mode !== 'float') l.layerType.quantize!.checkValues?.(context(plan, l));
}

function checkPlan(plan: unknown): QuantizationPlan {
  if (typeof plan !== 'object' || plan === null || !plans.has(plan)) throw typeError('plan', 'a plan from planQuantization', plan);
  return plan as QuantizationPlan;
}

/** The kind of input a model's layers take first: 'int' when the first layer past pass-throughs takes int32 ids. */
function inputKindOf(layers: readonly PlannedLayer[]): 'float' | 'int' {
  return layers.find((l) => !l.layerType.passThrough)?.layerType.input ?? 'float';
}

function* calibrationBatches(data: CalibrationData, features: number | null, batchSize: number, field: string, kind: 'float' | 'int'): Generator<{ v: Value; batch: number }> {
  const arr = kind === 'int' ? 'Int32Array' : 'Float32Array';
  const isX = (a: unknown): a is Float32Array | Int32Array => isTypedOf(a, arr);
  const value = (x: Float32Array | Int32Array, shape?: readonly number[]): Value => (kind === 'int' ? { i: x as Int32Array, shape } : { f: x as Float32Array, shape });
  if (isX(data)) {
    if (features === null) throw rangeError(field, "batches { x, batch } (the model's first layers do not fix its input features, so rows cannot be told apart)", describe(data));
    if (data.length % features !== 0) throw rangeError(field, `a length that is a multiple of ${features} (the model's input features)`, describe(data));
    const rows = data.length / features;
    for (let r = 0; r < rows; r += batchSize) {
      const n = Math.min(batchSize, rows - r);
      yield { v: value(data.subarray(r * features, (r + n) * features)), batch: n };
    }
    return;
  }
  if (ArrayBuffer.isView(data) || typeof data !== 'object' || data === null || typeof (data as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw typeError(field, `a ${arr} of input rows or an iterable of batches`, data);
  }
  let i = 0;
  for (const b of data as Iterable<unknown>) {
    const f = `${field}[${i++}]`;
    if (ArrayBuffer.isView(b) && !isX(b)) throw typeError(f, `a ${arr} or { x, batch? }`, b);
    const x = isX(b) ? b : checkTyped<Float32Array | Int32Array>(`${f}.x`, (b as { x?: unknown } | null)?.x, kind === 'int' ? [Int32Array] : [Float32Array]);
    const given = isX(b) ? undefined : (b as { batch?: unknown }).batch;
    const sh = isX(b) ? undefined : (b as { shape?: unknown }).shape;
    const shape = sh === undefined ? undefined : checkShaped(f, { data: x, shape: sh }).shape;
    let batch: number;
    if (shape !== undefined) batch = shape[0];
    else if (features !== null) {
      if (x.length % features !== 0) throw rangeError(isX(b) ? f : `${f}.x`, `a length that is a multiple of ${features} (the model's input features)`, describe(x));
      batch = x.length / features;
    } else {
      if (isX(b)) throw typeError(f, "{ x, batch } or { x, shape } (the model's first layers do not fix its input features)", b);
      batch = checkInt(`${f}.batch`, given, 0, 2 ** 31);
      if (batch === 0 ? x.length !== 0 : x.length % batch !== 0) throw rangeError(`${f}.x`, `a length that is a multiple of batch ${batch}`, describe(x));
    }
    if (given !== undefined && given !== batch) {
      throw rangeError(`${f}.batch`, shape ? `the number ${batch} (shape[0])` : `the number ${batch} (x.length / ${features})`, describe(given));
    }
    if (batch > 0) yield { v: value(x, shape), batch };
  }
}

/**
 * The input qparams of every layer of the plan that takes codes (the static ones), by layer name:
 * the plan's calibration data (options.calibrationData), or `calibrationData` when given, run
 * through the float model (eval mode, restored afterwards) into each layer's observer.
 */
export function calibrateQuantization(plan: QuantizationPlan, calibrationData?: CalibrationData): Record<string, ActQParams> {
  const p = checkPlan(plan);
  const layers = p.layers;
  const out: Record<string, ActQParams> = {};
  const staticIdx = layers.map((l, i) => (l.takesCodes ? i : -1)).filter((i) => i >= 0);
  if (staticIdx.length === 0) return out;
  const field = calibrationData === undefined ? 'options.calibrationData' : 'calibrationData';
  const data = calibrationData ?? p.calibrationData;
  if (data === undefined) {
    throw typeError(field, "input rows (Float32Array) or batches: static mode calibrates activation ranges on them", undefined);
  }
  const features = inputFeatures(layers.map((l) => l.spec));
  const obs = new Map<number, Observer>();
  for (const i of staticIdx) {
    const name = layers[i].name;
    const ob = makeObserver(layers[i].settings!.observer, name);
    const where = `observer('${name}')`;
    if ([...obs.values()].includes(ob)) throw new TypeError(`Expected a new Observer for ${where} but received the one of another layer (each layer needs its own)`);
    if (ob.stats().count > 0) throw new TypeError(`Expected a new Observer for ${where} but received one that has seen ${ob.stats().count} values (reset() it first)`);
    const sp = ob.spec;
    if (sp.qmin !== 0 || sp.qmax !== 255 || sp.granularity !== 'per-tensor') {
      throw rangeError(where, "an observer of uint8 activations: per-tensor, { scheme: 'asymmetric', bits: 8 } (codes 0..255)", `codes ${sp.qmin}..${sp.qmax}, granularity ${JSON.stringify(sp.granularity)}`);
    }
    obs.set(i, ob);
  }
  const last = staticIdx[staticIdx.length - 1];
  const wasTraining = layers.map((l) => l.module.training);
  for (const l of layers) l.module.training = false;
  const total = features !== null && (isTypedOf(data, 'Float32Array') || isTypedOf(data, 'Int32Array')) ? data.length / features : null;
  let rows = 0;
  try {
    for (const { v: x, batch } of calibrationBatches(data, features, p.calibrationBatchSize, field, inputKindOf(layers))) {
      let v = x;
      for (let i = 0; i <= last; i++) {
        const ob = obs.get(i);
        if (ob) {
          if ('i' in v) throw typeError(field, `float32 values at the input of layer '${layers[i].name}' (it takes codes; it received int32 ids)`, v.i);
          ob.observe((v as { f: Float32Array }).f);
        }
        v = runModule(layers[i].module, v, batch);
      }
      rows += batch;
      p.onProgress?.({ phase: 'calibrate', done: rows, total });
    }
  } finally {
    layers.forEach((l, i) => { l.module.training = wasTraining[i]; });
  }
  if (rows === 0) throw rangeError(field, 'at least one input row', 'none');
  for (const [i, ob] of obs) {
    const st = ob.stats();
    if (st.count - st.nanCount - st.infCount <= 0) {
      throw rangeError(field, `finite values at the input of layer '${layers[i].name}'`, `${st.count} values, ${st.nanCount} NaN, ${st.infCount} infinite`);
    }
    const q = ob.calculateQParams();
    if (q.scale.length !== 1) throw rangeError(`observer of layer '${layers[i].name}'`, 'a per-tensor observer (one scale)', `${q.scale.length} scales`);
    const s = q.scale[0], z = q.zeroPoint[0];
    if (!(s > 0) || !Number.isFinite(s) || !(z >= 0 && z <= 255)) {
      throw rangeError(`observer of layer '${layers[i].name}'`, 'uint8 qparams (scale > 0, zero point 0..255; spec { scheme: "asymmetric", bits: 8 })', `scale ${s}, zero point ${z}`);
    }
    out[layers[i].name] = { scale: s, zeroPoint: z };
  }
  return out;
}

/**
 * Given input qparams: an object { scale, zeroPoint, qmin?, qmax?, formula? } of uint8 activations
 * (scale a positive finite float32, zero point qmin..qmax; codes qmin..qmax, default 0..255;
 * formula 'onnx' (default) or 'pytorch': how a float input is rounded).
 */
function checkInputQParams(field: string, v: unknown): ActQParams {
  const o = checkOptions(field, v, ['scale', 'zeroPoint', 'qmin', 'qmax', 'formula']);
  if (typeof v !== 'object' || v === null) throw typeError(field, 'input qparams { scale, zeroPoint }', v);
  const s = o.scale, z = o.zeroPoint;
  if (typeof s !== 'number' || !(Math.fround(s) > 0) || !Number.isFinite(Math.fround(s))) throw rangeError(`${field}.scale`, 'a positive finite float32', describe(s));
  const lo = o.qmin === undefined ? 0 : checkInt(`${field}.qmin`, o.qmin, 0, 254);
  const hi = o.qmax === undefined ? 255 : checkInt(`${field}.qmax`, o.qmax, lo + 1, 255);
  if (typeof z !== 'number' || !Number.isInteger(z) || z < lo || z > hi) throw rangeError(`${field}.zeroPoint`, `an integer ${lo}..${hi} (uint8 activations${lo === 0 && hi === 255 ? '' : ', qmin..qmax'})`, describe(z));
  const out: ActQParams = { scale: Math.fround(s), zeroPoint: z };
  if (lo !== 0) out.qmin = lo;
  if (hi !== 255) out.qmax = hi;
  const f = o.formula === undefined ? 'onnx' : checkOneOf(`${field}.formula`, o.formula, ['onnx', 'pytorch'] as const);
  if (f === 'pytorch') out.formula = 'pytorch';
  return out;
}

/** Checks that the keys of a given record are names of layers for which `ok` holds. */
function checkNames(field: string, rec: unknown, plan: QuantizationPlan, ok: (l: PlannedLayer) => boolean, what: string): Record<string, unknown> {
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec) || ArrayBuffer.isView(rec)) throw typeError(field, 'an object keyed by layer name', rec);
  const names = plan.layers.filter(ok).map((l) => l.name);
  for (const k of Object.keys(rec)) if (!names.includes(k)) throw rangeError(field, `names of ${what} (${names.map((n) => `'${n}'`).join(', ')})`, `'${k}'`);
  return rec as Record<string, unknown>;
}

/**
 * The QuantizedModel of a plan: each layer's stage, quantizing the weights as they are now. Layers
 * that take codes use `given.inputQParams` (from calibrateQuantization, or learned: QAT); layers in
 * `given.weightQParams` are quantized with those scales and zero points instead of computing them
 * (with the plan's bits, scheme and granularity). quantizeModel(model, options) is
 * buildQuantizedModel(plan, { inputQParams: calibrateQuantization(plan) }) for
 * plan = planQuantization(model, options).
 */
export function buildQuantizedModel(plan: QuantizationPlan, given?: GivenQParams): QuantizedModel {
  const p = checkPlan(plan);
  const g = checkOptions('given', given, ['inputQParams', 'weightQParams']);
  const inputs: Record<string, ActQParams> = {};
  const gi = checkNames('given.inputQParams', g.inputQParams ?? {}, p, (l) => l.takesCodes, 'layers that take codes (static)');
  for (const l of p.layers) {
    if (!l.takesCodes) continue;
    const f = `given.inputQParams['${l.name}']`;
    if (gi[l.name] === undefined) throw typeError(f, `the input qparams { scale, zeroPoint } of static layer '${l.name}' (calibrateQuantization(plan) gives them)`, undefined);
    inputs[l.name] = checkInputQParams(f, gi[l.name]);
  }
  const weights = checkNames('given.weightQParams', g.weightQParams ?? {}, p, (l) => l.settings !== null && l.settings.mode !== 'float', 'quantized layers') as Record<string, WeightQParams>;
  checkValues(p);
  return build(p, inputs, weights);
}

function build(plan: QuantizationPlan, inputs: Record<string, ActQParams>, weights: Record<string, WeightQParams>): QuantizedModel {
  const stages: Stage[] = [];
  const layers = plan.layers;
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    let st: Stage;
    if (!l.settings || l.settings.mode === 'float') {
      // Kept float: a copy of the layer (on its type's float kernel, with a fused ReLU, if it has one).
      const fs = new FloatStage(l.name, l.spec, cloneLayer(l.module, l.layerType), l.layerType);
      fs.relu = l.fusedRelu !== null;
      st = fs;
    } else {
      st = l.layerType.quantize!.build({
        ...context(plan, l), relu: l.fusedRelu !== null, input: l.takesCodes ? inputs[l.name] : null,
        weight: weights[l.name] ?? null, weightField: `given.weightQParams['${l.name}']`,
      });
    }
    if (l.fusedRelu !== null) {
      st.fused.push(l.fusedRelu);
      i++;
    }
    stages.push(st);
    if (l.settings) plan.onProgress?.({ phase: 'quantize', done: stages.length, total: null });
  }
  linkStatic(stages);
  return new QuantizedModel(plan.mode, stages);
}

/**
 * Post-training quantization of a Sequential of nn layers. Returns a QuantizedModel; the float
 * model is not changed (float layers are copied). The steps: planQuantization, then
 * calibrateQuantization (static layers), then buildQuantizedModel.
 */
export function quantizeModel(model: Sequential, options: QuantizeModelOptions): QuantizedModel {
  const plan = planQuantization(model, options);
  return build(plan, calibrateQuantization(plan), {});
}
