// quantizeModel: post-training quantization of a Sequential (dynamic, static, weight-only), with
// per-layer overrides and calibration through any observer.
import { checkInt, checkOneOf, checkOptions, checkTyped, describe, isTypedOf, rangeError, typeError } from '../errors';
import { Linear, ReLU } from '../nn/layers';
import { Module } from '../nn/module';
import { Sequential } from '../nn/sequential';
import { Observer } from '../observers/base';
import { EntropyObserver } from '../observers/entropy';
import { HistogramObserver } from '../observers/histogram';
import { MinMaxObserver, MovingAverageMinMaxObserver } from '../observers/minmax';
import { MSEObserver } from '../observers/mse';
import { PercentileObserver } from '../observers/percentile';
import { granularityLayout } from '../layout';
import { resolveSpec } from '../spec';
import { quantize, quantizeWithQParams } from '../tensor';
import { inputFeatures, layerSpec, leafLayers, moduleFromSpec } from './graph';
import {
  ActQParams, DynamicStage, FloatStage, gemmMaxK, LayerMode, QuantizedModel, QuantMode, QuantWeight, Stage, StaticStage,
  WeightGranularity, WeightOnlyStage,
} from './qmodel';

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

export type CalibrationData = Float32Array | Iterable<Float32Array | { x: Float32Array; batch?: number }>;

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
   * 'weight-only': int8 or int4 weights (per group by default), float activations and float GEMM.
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
  /** Static mode: input rows (Float32Array of rows x inFeatures), or batches of them. */
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

/** A fresh activation observer: uint8 asymmetric, per tensor. */
export function makeObserver(choice: ObserverChoice, layer: string): Observer {
  if (typeof choice === 'function') {
    const o = choice(layer);
    if (!(o instanceof Observer)) throw typeError(`observer('${layer}')`, 'an Observer', o);
    return o;
  }
  const spec = { scheme: 'asymmetric' as const, bits: 8 };
  switch (choice) {
    case 'minmax': return new MinMaxObserver(spec);
    case 'moving-average': return new MovingAverageMinMaxObserver(spec);
    case 'histogram': return new HistogramObserver(spec);
    case 'percentile': return new PercentileObserver(spec);
    case 'mse': return new MSEObserver(spec);
    case 'entropy': return new EntropyObserver(spec);
  }
}

interface LayerPlan {
  mode: LayerMode;
  bits: number;
  granularity: WeightGranularity;
  scheme: 'symmetric' | 'asymmetric';
  observer: ObserverChoice;
}

/** Quantizes a Linear's weight [out, in] with a plan. */
export function quantizeWeight(w: Float32Array, outF: number, inF: number, p: Pick<LayerPlan, 'bits' | 'granularity' | 'scheme'> & { formula?: 'onnx' | 'pytorch' }): QuantWeight {
  const g = p.granularity;
  const granularity = g === 'per-tensor' ? 'per-tensor' as const : g === 'per-channel' ? { axis: 0 } : { axis: 1, blockSize: g.groupSize };
  const tensor = quantize(w, [outF, inF], { scheme: p.scheme, bits: p.bits, granularity, formula: p.formula ?? 'onnx' });
  return { tensor, granularity: g };
}

/**
 * Static layers add an int32 bias quantized with scale inScale * wScale[j]. When a channel's
 * weights are tiny next to its bias (a nearly dead unit), bias / (inScale * wScale[j]) would not
 * fit in int32: that channel's weight scale is widened until it fits (as onnxruntime's quantizer
 * does) and its codes recomputed. Returns the weight unchanged when every bias fits.
 */
export function fitWeightForBias(wf: Float32Array, outF: number, inF: number, qw: QuantWeight, bias: Float32Array, inScale: number, layer: string): QuantWeight {
  const t = qw.tensor;
  const fr = Math.fround;
  const LIM = 2 ** 30; // half of int32's range: margin for the float32 rounding of the scale
  const sc = t.scale.slice();
  let changed = false;
  for (let j = 0; j < bias.length; j++) {
    const g = sc.length === 1 ? 0 : j;
    if (Math.abs(bias[j]) <= fr(inScale * sc[g]) * LIM) continue;
    if (t.scheme !== 'symmetric' || typeof qw.granularity === 'object') {
      throw rangeError(`model layer '${layer}' bias[${j}]`, `a bias that fits int32 at scale inputScale * weightScale (${inScale} * ${sc[g]}); use scheme 'symmetric' or keep the layer float`, String(bias[j]));
    }
    sc[g] = fr((Math.abs(bias[j]) / (inScale * LIM)) * (1 + 2 ** -20));
    changed = true;
  }
  if (!changed) return qw;
  const granularity = qw.granularity === 'per-tensor' ? 'per-tensor' as const : { axis: 0 };
  const spec = resolveSpec('weight', { scheme: t.scheme, bits: t.bits, signed: t.signed, granularity, formula: t.formula });
  const L = granularityLayout('weight', granularity, [outF, inF], wf.length);
  return { tensor: quantizeWithQParams(wf, [outF, inF], spec, L, sc, t.zeroPoint.slice()), granularity: qw.granularity };
}

/** A detached copy of a layer (same parameters), in eval mode. */
function cloneLayer(m: Module): Module {
  const c = moduleFromSpec(layerSpec(m, 'layer'));
  c.loadStateDict(m.stateDict());
  return c.eval();
}

function* calibrationBatches(data: CalibrationData, features: number, batchSize: number): Generator<{ x: Float32Array; batch: number }> {
  if (isTypedOf(data, 'Float32Array')) {
    if (data.length % features !== 0) throw rangeError('options.calibrationData', `a length that is a multiple of ${features} (the model's input features)`, describe(data));
    const rows = data.length / features;
    for (let r = 0; r < rows; r += batchSize) {
      const n = Math.min(batchSize, rows - r);
      yield { x: data.subarray(r * features, (r + n) * features), batch: n };
    }
    return;
  }
  if (ArrayBuffer.isView(data) || typeof data !== 'object' || data === null || typeof (data as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw typeError('options.calibrationData', 'a Float32Array of input rows or an iterable of batches', data);
  }
  let i = 0;
  for (const b of data as Iterable<unknown>) {
    const field = `options.calibrationData[${i++}]`;
    if (ArrayBuffer.isView(b) && !isTypedOf(b, 'Float32Array')) throw typeError(field, 'a Float32Array or { x, batch? }', b);
    const x = isTypedOf(b, 'Float32Array') ? b : checkTyped<Float32Array>(`${field}.x`, (b as { x?: unknown } | null)?.x, [Float32Array]);
    if (x.length % features !== 0) throw rangeError(isTypedOf(b, 'Float32Array') ? field : `${field}.x`, `a length that is a multiple of ${features} (the model's input features)`, describe(x));
    const batch = x.length / features;
    const given = isTypedOf(b, 'Float32Array') ? undefined : (b as { batch?: unknown }).batch;
    if (given !== undefined && given !== batch) throw rangeError(`${field}.batch`, `the number ${batch} (x.length / ${features})`, describe(given));
    if (batch > 0) yield { x, batch };
  }
}

/**
 * Post-training quantization of a Sequential of nn layers. Returns a QuantizedModel; the float
 * model is not changed (float layers are copied).
 */
export function quantizeModel(model: Sequential, options: QuantizeModelOptions): QuantizedModel {
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
  const linearNames = layers.filter((l) => l.module instanceof Linear).map((l) => l.name);
  // Per-layer plans.
  const overrides = new Map<string, LayerPlan>();
  if (o.layers !== undefined) {
    if (typeof o.layers !== 'object' || o.layers === null || Array.isArray(o.layers)) throw typeError('options.layers', 'an object of per-layer overrides keyed by layer name', o.layers);
    for (const [name, v] of Object.entries(o.layers as Record<string, unknown>)) {
      const field = `options.layers['${name}']`;
      if (!linearNames.includes(name)) {
        throw rangeError('options.layers', `names of Linear layers (${linearNames.map((n) => `'${n}'`).join(', ')})`, `'${name}'`);
      }
      const lo = checkOptions(field, v, LAYER_OPTS);
      const lmode = lo.mode === undefined ? mode : checkOneOf(`${field}.mode`, lo.mode, MODES);
      overrides.set(name, {
        mode: lmode,
        bits: lo.bits === undefined ? bits : checkInt(`${field}.bits`, lo.bits, 2, 8),
        granularity: lo.granularity !== undefined ? checkWeightGranularity(`${field}.granularity`, lo.granularity)
          : o.granularity !== undefined ? granularity : defaultGranularity(lmode),
        scheme: lo.scheme === undefined ? scheme : checkOneOf(`${field}.scheme`, lo.scheme, ['symmetric', 'asymmetric'] as const),
        observer: lo.observer === undefined ? observer : checkObserverChoice(`${field}.observer`, lo.observer),
      });
    }
  }
  const planOf = (name: string): LayerPlan => overrides.get(name) ?? { mode, bits, granularity, scheme, observer };
  for (const n of linearNames) {
    const p = planOf(n);
    if (p.mode !== 'weight-only' && p.mode !== 'float' && typeof p.granularity === 'object') {
      const where = overrides.has(n) ? `options.layers['${n}'].granularity` : 'options.granularity';
      throw rangeError(where, `'per-channel' or 'per-tensor' for mode '${p.mode}' (groups need mode 'weight-only': the int8 GEMM takes one scale per output column)`, JSON.stringify(p.granularity));
    }
  }

  for (const { name, module: m } of layers) {
    if (!(m instanceof Linear)) continue;
    const p = planOf(name);
    if (p.mode === 'float') continue;
    for (const [pn, prm] of m.namedParameters()) {
      const bad = prm.data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw rangeError(`model layer '${name}' ${pn}`, 'finite values (quantize a trained model)', `${prm.data[bad]} at element ${bad}`);
    }
    if (p.mode === 'dynamic' || p.mode === 'static') {
      // The int32 accumulator bound of the GEMM: K * max|a - za| * max|w - zw| < 2^31.
      const int8Act = p.mode === 'dynamic' && activation === 'int8';
      const kmax = gemmMaxK(int8Act, p.scheme === 'symmetric');
      if (m.inFeatures > kmax) {
        throw rangeError(`model layer '${name}' inFeatures`, `at most ${kmax} for mode '${p.mode}' (int32 accumulation: K * ${int8Act ? 127 : 255} * ${p.scheme === 'symmetric' ? 128 : 255} < 2^31); keep it float or weight-only with layers: { '${name}': { mode: 'weight-only' } }`, String(m.inFeatures));
      }
    }
  }

  // Static layers: calibrate their inputs' ranges.
  const staticIdx = layers.map((l, i) => (l.module instanceof Linear && planOf(l.name).mode === 'static' ? i : -1)).filter((i) => i >= 0);
  const inputQ = new Map<number, ActQParams>();
  if (staticIdx.length > 0) {
    if (o.calibrationData === undefined) {
      throw typeError('options.calibrationData', "input rows (Float32Array) or batches: static mode calibrates activation ranges on them", undefined);
    }
    const features = inputFeatures(layers.map((l) => layerSpec(l.module, 'layer')))!;
    const obs = new Map<number, Observer>();
    for (const i of staticIdx) {
      const name = layers[i].name;
      const ob = makeObserver(planOf(name).observer, name);
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
    const total = isTypedOf(o.calibrationData, 'Float32Array') ? o.calibrationData.length / features : null;
    let rows = 0;
    try {
      for (const { x, batch } of calibrationBatches(o.calibrationData as CalibrationData, features, batchSize)) {
        let v = x;
        for (let i = 0; i <= last; i++) {
          const ob = obs.get(i);
          if (ob) ob.observe(v);
          v = layers[i].module.forward(v, batch);
        }
        rows += batch;
        progress?.({ phase: 'calibrate', done: rows, total });
      }
    } finally {
      layers.forEach((l, i) => { l.module.training = wasTraining[i]; });
    }
    if (rows === 0) throw rangeError('options.calibrationData', 'at least one input row', 'none');
    for (const [i, ob] of obs) {
      const st = ob.stats();
      if (st.count - st.nanCount - st.infCount <= 0) {
        throw rangeError('options.calibrationData', `finite values at the input of layer '${layers[i].name}'`, `${st.count} values, ${st.nanCount} NaN, ${st.infCount} infinite`);
      }
      const q = ob.calculateQParams();
      if (q.scale.length !== 1) throw rangeError(`observer of layer '${layers[i].name}'`, 'a per-tensor observer (one scale)', `${q.scale.length} scales`);
      const s = q.scale[0], z = q.zeroPoint[0];
      if (!(s > 0) || !Number.isFinite(s) || !(z >= 0 && z <= 255)) {
        throw rangeError(`observer of layer '${layers[i].name}'`, 'uint8 qparams (scale > 0, zero point 0..255; spec { scheme: "asymmetric", bits: 8 })', `scale ${s}, zero point ${z}`);
      }
      inputQ.set(i, { scale: s, zeroPoint: z });
    }
  }

  // Stages.
  const stages: Stage[] = [];
  for (let i = 0; i < layers.length; i++) {
    const { name, module: m } = layers[i];
    const spec = layerSpec(m, `model layer '${name}'`);
    if (!(m instanceof Linear)) {
      stages.push(new FloatStage(name, spec, cloneLayer(m)));
      continue;
    }
    const p = planOf(name);
    const fuse = i + 1 < layers.length && layers[i + 1].module instanceof ReLU;
    let st: Stage;
    if (p.mode === 'float') {
      const fs = new FloatStage(name, spec, cloneLayer(m));
      fs.relu = fuse;
      st = fs;
    } else {
      const w = quantizeWeight(m.weight.data, m.outFeatures, m.inFeatures, { ...p, formula });
      const bias = m.bias ? m.bias.data.slice() : null;
      if (p.mode === 'dynamic') st = new DynamicStage(name, spec, w, bias, fuse, activation, actGran);
      else if (p.mode === 'weight-only') st = new WeightOnlyStage(name, spec, w, bias, fuse);
      else {
        const inq = inputQ.get(i)!;
        st = new StaticStage(name, spec, bias ? fitWeightForBias(m.weight.data, m.outFeatures, m.inFeatures, w, bias, inq.scale, name) : w, inq, bias, fuse);
      }
    }
    if (fuse) {
      st.fused.push(layers[i + 1].name);
      i++;
    }
    stages.push(st);
    progress?.({ phase: 'quantize', done: stages.length, total: null });
  }
  linkStatic(stages);
  return new QuantizedModel(mode, stages);
}

/** A static stage whose next real consumer (past pass-through layers) is a static stage hands it codes. */
export function linkStatic(stages: Stage[]): void {
  for (let i = 0; i < stages.length; i++) {
    const s = stages[i];
    if (!(s instanceof StaticStage)) continue;
    let j = i + 1;
    while (j < stages.length && stages[j] instanceof FloatStage && (stages[j] as FloatStage).passThrough) j++;
    const next = stages[j];
    s.output = next instanceof StaticStage ? next.input : null;
  }
}
