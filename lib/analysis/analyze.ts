// analyzeModel: per Linear layer of a float Sequential, for its weight and for its input
// activations: a histogram, moments, per-channel spread, the clipping range each observer picks
// at each bit width (per tensor and, where the observer has it, per channel) and the SQNR that
// range gives; then the sensitivity of the model's output to quantizing each layer.
//
// Activations are streamed: pass 1 runs the calibration batches through the float model and feeds
// moments and observers (fixed-size statistics), pass 2 runs them again to fill the display
// histograms and measure every range's squared error exactly. Nothing of the data is kept.
import { checkInt, checkOneOf, checkOptions, rangeError, typeError } from '../errors';
import {
  computeQParams, EntropyObserver, HistogramObserver, MinMaxObserver, MSEObserver, nn, Observer, PercentileObserver, PerChannelMinMaxObserver,
} from '../index';
import type { ObserverName, WeightGranularity } from '../index';
import { AnalysisData, batchesOf, checkEvalData, checkModel, EvalData, inEvalMode, inputWidth, Leaf, leaves } from './model';
import { Histogram, HistogramAcc, median, Moments, NoiseAcc, QuantConfig, sqnrDb } from './tensor-stats';
import { runSensitivity, SensitivityAnalysis, SensitivityMode } from './sensitivity';

/** The observers whose ranges the analysis compares. */
export type AnalysisObserverName = 'minmax' | 'percentile' | 'mse' | 'entropy' | 'histogram';
export const ANALYSIS_OBSERVERS: readonly AnalysisObserverName[] = ['minmax', 'percentile', 'mse', 'entropy', 'histogram'];
/** Observers that have a per-channel form (HistogramObserver and EntropyObserver are per tensor only): measured per channel on weights. */
export const PER_CHANNEL_OBSERVERS: readonly AnalysisObserverName[] = ['minmax', 'percentile', 'mse'];
/**
 * Measured per channel on activations: MSE's per-channel search over every input feature costs
 * seconds per layer and bit width (a 784-feature input: ~1 s), for a granularity quantizeModel
 * does not use on activations; min/max and percentile show the per-channel picture.
 */
export const PER_CHANNEL_ACTIVATION_OBSERVERS: readonly AnalysisObserverName[] = ['minmax', 'percentile'];
/** A channel whose max |x| is at least this many times the median channel's is an outlier. */
export const OUTLIER_RATIO = 4;

export interface AnalysisProgress {
  /** 'statistics': calibration rows through pass 1; 'sqnr': pass 2; 'ranges': layers whose ranges are computed; 'sensitivity': quantized models measured. */
  phase: 'statistics' | 'ranges' | 'sqnr' | 'sensitivity';
  done: number;
  total: number | null;
}

export interface AnalyzeOptions {
  /** Inputs to calibrate on and to measure activations with: rows, an array of batches, or a function returning batches. */
  calibrationData: AnalysisData;
  /** Rows (and labels, for accuracy) on which the sensitivity runs compare quantized outputs with float ones. Default: the calibration data. */
  evalData?: EvalData;
  /** Bit widths, 2..8 (default [8, 4, 2]). */
  bits?: number[];
  /** Observers whose ranges are compared (default all five). */
  observers?: AnalysisObserverName[];
  /** How quantizeModel runs the sensitivity runs and the plan: 'static' (default), 'dynamic' or 'weight-only'. */
  mode?: SensitivityMode;
  /** Weight granularity of those runs (quantizeModel's default for the mode when left out). */
  granularity?: WeightGranularity;
  /** Static mode: the activation observer of those runs (default 'histogram', quantizeModel's default). */
  observer?: ObserverName;
  /** Run the sensitivity analysis (default true). */
  sensitivity?: boolean;
  /** Bins of the display histograms (default 100). */
  histogramBins?: number;
  /** Rows per batch when the data is one Float32Array (default 256). */
  batchSize?: number;
  /** Observe activations per channel too (default true). */
  perChannelActivations?: boolean;
  onProgress?: (p: AnalysisProgress) => void;
}

/** The range one observer picks at one bit width, and what it gives. */
export interface RangeResult {
  observer: AnalysisObserverName;
  bits: number;
  granularity: 'per-tensor' | 'per-channel';
  /** Per tensor: the clipping range; per channel: the smallest min and the largest max over channels. */
  min: number;
  max: number;
  /** Per tensor: the scale and zero point. */
  scale?: number;
  zeroPoint?: number;
  /** Per channel: each channel's range. */
  channelMin?: number[];
  channelMax?: number[];
  /** 10 log10(sum x^2 / sum (x - fakeQuantize(x))^2), over the whole tensor; Infinity when exact. */
  sqnrDb: number;
  /** Per tensor: the fraction of values outside the representable range (clipped). */
  clipped?: number;
}

export interface ChannelAnalysis {
  /** The channel axis: 0 for weights [out, in] (output features), 1 for activations [rows, in] (input features). */
  axis: number;
  absMax: number[];
  std: number[];
  /** max |x| / std per channel: large values mark channels with rare large values. */
  spread: number[];
  medianAbsMax: number;
  /** Largest channel max |x| over the median channel's: what one per-tensor scale wastes on the others. */
  rangeRatio: number;
  /** Channels whose max |x| is at least OUTLIER_RATIO times the median channel's (largest first). */
  outliers: number[];
}

export interface TensorAnalysis {
  kind: 'weight' | 'activation';
  /** Weights: [out, in]; activations: [rows, in]. */
  shape: number[];
  /** How the ranges were computed: weights symmetric signed (restricted), activations asymmetric unsigned. */
  scheme: 'symmetric' | 'asymmetric';
  count: number;
  nonFinite: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  absMax: number;
  histogram: Histogram;
  ranges: RangeResult[];
  channels: ChannelAnalysis;
}

export interface LayerAnalysis {
  name: string;
  /** Weight [outFeatures, inFeatures] (ONNX Conv: output channels x input channels x kernel). */
  inFeatures: number;
  outFeatures: number;
  /** ONNX models: the node's operator ('MatMul', 'Gemm', 'Conv'), its weight initializer and the weight's shape as stored. */
  opType?: string;
  weightName?: string;
  weightShape?: number[];
  weight: TensorAnalysis;
  input: TensorAnalysis;
}

export interface ModelAnalysis {
  version: 1;
  options: {
    bits: number[];
    observers: AnalysisObserverName[];
    mode: SensitivityMode;
    granularity: WeightGranularity | null;
    observer: ObserverName;
    histogramBins: number;
  };
  model: {
    /** Every leaf layer in order (the names quantizeModel's `layers` option takes). */
    layers: { name: string; type: string; inFeatures?: number; outFeatures?: number }[];
    inFeatures: number;
    parameters: number;
    floatBytes: number;
  };
  calibration: { rows: number };
  layers: LayerAnalysis[];
  sensitivity: SensitivityAnalysis | null;
  /** Set by analyzeOnnx: what was analyzed in the ONNX model. */
  onnx?: OnnxModelInfo;
}

/** The ONNX side of an analysis (analyzeOnnx). */
export interface OnnxModelInfo {
  /** The graph output the sensitivity runs compare. */
  output: string;
  inputs: { name: string; type: string; shape: (number | string | null)[] | null }[];
  /** Calibration feeds run (calibration.rows counts the rows of the activations: batch x positions). */
  feeds: number;
  /** Weight-only runs: MatMulNBits block size along K. */
  blockSize: number;
  /** Nodes given a name by the analysis (the model had none for them): '#index opType' names, used the same way by measureOnnxPlan. */
  renamed: string[];
  /** MatMul / Gemm / Conv nodes not analyzed, with the reason. */
  skipped: { name: string; opType: string; reason: string }[];
  notes: string[];
}

// ---- observers -------------------------------------------------------------------------------

/** A fresh observer of one kind for a spec; per channel along `axis` when given. */
export function makeAnalysisObserver(name: AnalysisObserverName, scheme: 'symmetric' | 'asymmetric', bits: number, axis: number | null): Observer {
  const spec = { scheme, bits };
  const g = axis === null ? 'per-tensor' as const : { axis };
  switch (name) {
    case 'minmax': return axis === null ? new MinMaxObserver(spec) : new PerChannelMinMaxObserver({ ...spec, axis });
    case 'percentile': return new PercentileObserver({ ...spec, granularity: g });
    case 'mse': return new MSEObserver({ ...spec, granularity: g });
    case 'entropy':
      if (axis !== null) throw rangeError('observer', 'a per-tensor observer', "'entropy' per channel");
      return new EntropyObserver(spec);
    case 'histogram':
      if (axis !== null) throw rangeError('observer', 'a per-tensor observer', "'histogram' per channel");
      return new HistogramObserver(spec);
  }
}

interface Slot {
  observer: AnalysisObserverName;
  bits: number;
  granularity: 'per-tensor' | 'per-channel';
}

/** Observers whose range does not depend on the bit width: one instance serves every width. */
const RANGE_ONLY: readonly AnalysisObserverName[] = ['minmax', 'percentile'];

/**
 * Observers of one tensor: per tensor, one per (observer, bits); per channel (along `axis`), one
 * per observer for min/max and percentile (their range does not depend on the bits: the qparams
 * of each width come from that range, as the observer computes them) and one per (observer, bits)
 * for MSE. `perChannel` lists the per-channel observers wanted.
 */
export class TensorObservers {
  private readonly slots: (Slot & { obs: Observer; shared: boolean })[] = [];
  constructor(names: readonly AnalysisObserverName[], private readonly bits: readonly number[], readonly scheme: 'symmetric' | 'asymmetric',
    readonly axis: number | null, perChannel: readonly AnalysisObserverName[]) {
    for (const n of names) {
      for (const b of bits) this.slots.push({ observer: n, bits: b, granularity: 'per-tensor', obs: makeAnalysisObserver(n, scheme, b, null), shared: false });
    }
    if (axis === null) return;
    for (const n of names) {
      if (!perChannel.includes(n)) continue;
      if (RANGE_ONLY.includes(n)) this.slots.push({ observer: n, bits: bits[0], granularity: 'per-channel', obs: makeAnalysisObserver(n, scheme, bits[0], axis), shared: true });
      else for (const b of bits) this.slots.push({ observer: n, bits: b, granularity: 'per-channel', obs: makeAnalysisObserver(n, scheme, b, axis), shared: false });
    }
  }
  observe(x: Float32Array, shape: number[]): void {
    for (const s of this.slots) {
      if (s.granularity === 'per-tensor') s.obs.observe(x);
      else s.obs.observe(x, shape);
    }
  }
  /** Every (observer, bits, granularity) with its qparams: per tensor first, then per channel, each in observer then bits order. */
  results(): { slot: Slot; cfg: QuantConfig; min: Float32Array; max: Float32Array }[] {
    const out: { slot: Slot; cfg: QuantConfig; min: Float32Array; max: Float32Array }[] = [];
    for (const s of this.slots) {
      const axis = s.granularity === 'per-tensor' ? null : this.axis;
      const q = s.obs.calculateQParams();
      const widths = s.shared ? this.bits : [s.bits];
      for (const b of widths) {
        const qp = b === s.bits ? q : computeQParams(q.min, q.max, { scheme: this.scheme, bits: b });
        out.push({ slot: { observer: s.observer, bits: b, granularity: s.granularity }, cfg: { scheme: this.scheme, bits: b, axis, scale: qp.scale, zeroPoint: qp.zeroPoint }, min: q.min, max: q.max });
      }
    }
    return out;
  }
}

function channelAnalysis(axis: number, m: Moments): ChannelAnalysis {
  const pc = m.perChannel();
  const med = median(pc.absMax);
  let top = 0;
  for (const a of pc.absMax) if (a > top) top = a;
  const outliers = pc.absMax.map((a, i) => [a, i]).filter(([a]) => med > 0 ? a >= OUTLIER_RATIO * med : a > 0 && pc.absMax.length > 1)
    .sort((p, q) => q[0] - p[0]).map(([, i]) => i);
  return { axis, absMax: pc.absMax, std: pc.std, spread: pc.spread, medianAbsMax: med, rangeRatio: med > 0 ? top / med : top > 0 ? Infinity : 1, outliers };
}

function rangeResult(r: { slot: Slot; cfg: QuantConfig; min: Float32Array; max: Float32Array }, acc: NoiseAcc, signal: number, count: number): RangeResult {
  const perTensor = r.slot.granularity === 'per-tensor';
  let mn = Infinity, mx = -Infinity;
  for (const v of r.min) if (v < mn) mn = v;
  for (const v of r.max) if (v > mx) mx = v;
  const out: RangeResult = { observer: r.slot.observer, bits: r.slot.bits, granularity: r.slot.granularity, min: mn, max: mx, sqnrDb: sqnrDb(signal, acc.noise) };
  if (perTensor) {
    out.scale = r.cfg.scale[0];
    out.zeroPoint = r.cfg.zeroPoint[0];
    out.clipped = count > 0 ? acc.clipped / count : 0;
  } else {
    out.channelMin = Array.from(r.min);
    out.channelMax = Array.from(r.max);
  }
  return out;
}

export function tensorAnalysis(kind: 'weight' | 'activation', shape: number[], scheme: 'symmetric' | 'asymmetric', m: Moments, hist: HistogramAcc,
  res: ReturnType<TensorObservers['results']>, accs: NoiseAcc[], axis: number): TensorAnalysis {
  const t = m.total();
  return {
    kind, shape, scheme, count: t.count, nonFinite: m.nonFinite, min: t.min, max: t.max, mean: t.mean, std: t.std, absMax: t.absMax,
    histogram: hist.result(),
    ranges: res.map((r, i) => rangeResult(r, accs[i], t.sumSq, t.count)),
    channels: channelAnalysis(axis, m),
  };
}

/** A weight [out, in]: everything computed on the tensor at once (symmetric signed, per output channel). */
export function analyzeWeight(w: Float32Array, outF: number, inF: number, names: readonly AnalysisObserverName[], bits: readonly number[], bins: number): TensorAnalysis {
  const shape = [outF, inF];
  const m = new Moments(outF);
  m.add(w, true);
  const t = m.total();
  const obs = new TensorObservers(names, bits, 'symmetric', 0, PER_CHANNEL_OBSERVERS);
  obs.observe(w, shape);
  const res = obs.results();
  const accs = res.map((r) => new NoiseAcc(r.cfg));
  for (const a of accs) a.add(w, shape);
  const hist = new HistogramAcc(t.min, t.max, bins);
  hist.add(w);
  return tensorAnalysis('weight', shape, 'symmetric', m, hist, res, accs, 0);
}

const OPTS = ['calibrationData', 'evalData', 'bits', 'observers', 'mode', 'granularity', 'observer', 'sensitivity', 'histogramBins', 'batchSize',
  'perChannelActivations', 'onProgress'];

/** Checks a list of bit widths (2..8, no repeats); `name` names it in errors. */
export function checkBits(name: string, v: unknown): number[] {
  if (!Array.isArray(v) || v.length === 0) throw typeError(name, 'a non-empty array of bit widths (2..8)', v);
  const out = v.map((b, i) => checkInt(`${name}[${i}]`, b, 2, 8));
  if (new Set(out).size !== out.length) throw rangeError(name, 'distinct bit widths', JSON.stringify(out));
  return out;
}

function checkGranularity(v: unknown): WeightGranularity {
  if (v === 'per-tensor' || v === 'per-channel') return v;
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = checkOptions('options.granularity', v, ['groupSize']);
    return { groupSize: checkInt('options.granularity.groupSize', o.groupSize, 1, 2 ** 31) };
  }
  throw typeError('options.granularity', "'per-channel', 'per-tensor' or { groupSize }", v);
}

/**
 * Analyzes a float Sequential: per Linear layer, its weight and its input activations (histograms,
 * ranges and SQNR per observer and bit width, per tensor and per channel, per-channel spread), and
 * (unless sensitivity is false) how much the model's output changes when one layer is quantized,
 * and when all but one are. The model is not changed.
 */
export function analyzeModel(model: unknown, options: AnalyzeOptions): ModelAnalysis {
  const seq = checkModel(model);
  if (options === undefined || options === null) throw typeError('options', 'an options object with calibrationData', options);
  const o = checkOptions('options', options, OPTS);
  const bits = o.bits === undefined ? [8, 4, 2] : checkBits('options.bits', o.bits);
  let names: AnalysisObserverName[] = ANALYSIS_OBSERVERS.slice();
  if (o.observers !== undefined) {
    if (!Array.isArray(o.observers) || o.observers.length === 0) throw typeError('options.observers', 'a non-empty array of observer names', o.observers);
    names = o.observers.map((n, i) => checkOneOf(`options.observers[${i}]`, n, ANALYSIS_OBSERVERS));
    names = [...new Set(names)];
  }
  const mode = o.mode === undefined ? 'static' : checkOneOf('options.mode', o.mode, ['static', 'dynamic', 'weight-only'] as const);
  const granularity = o.granularity === undefined ? null : checkGranularity(o.granularity);
  if (granularity !== null && typeof granularity === 'object' && mode !== 'weight-only') {
    throw rangeError('options.granularity', `'per-channel' or 'per-tensor' for mode '${mode}' (groups need mode 'weight-only')`, JSON.stringify(granularity));
  }
  const actObserver = o.observer === undefined ? 'histogram' : checkOneOf('options.observer', o.observer, ['minmax', 'moving-average', 'histogram', 'percentile', 'mse', 'entropy'] as const);
  const doSens = o.sensitivity === undefined ? true : o.sensitivity;
  if (typeof doSens !== 'boolean') throw typeError('options.sensitivity', 'a boolean', doSens);
  const perChannelAct = o.perChannelActivations === undefined ? true : o.perChannelActivations;
  if (typeof perChannelAct !== 'boolean') throw typeError('options.perChannelActivations', 'a boolean', perChannelAct);
  const bins = o.histogramBins === undefined ? 100 : checkInt('options.histogramBins', o.histogramBins, 2, 4096);
  const batchSize = o.batchSize === undefined ? 256 : checkInt('options.batchSize', o.batchSize, 1, 2 ** 31);
  const progress = o.onProgress as AnalyzeOptions['onProgress'];
  if (progress !== undefined && typeof progress !== 'function') throw typeError('options.onProgress', 'a function', progress);

  const ls = leaves(seq);
  const features = inputWidth(ls);
  if (o.calibrationData === undefined) throw typeError('options.calibrationData', 'input rows (a Float32Array of rows x features) or an array of batches: activations are measured on them', undefined);
  const cal = batchesOf('options.calibrationData', o.calibrationData, features, batchSize);
  const evalData = o.evalData === undefined ? null : checkEvalData('options.evalData', o.evalData, features);
  const linIdx = ls.map((l, i) => (l.module instanceof nn.Linear ? i : -1)).filter((i) => i >= 0);
  for (const i of linIdx) {
    const lin = ls[i].module as InstanceType<typeof nn.Linear>;
    for (const [pn, p] of lin.namedParameters()) {
      const bad = p.data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw rangeError(`model layer '${ls[i].name}' ${pn}`, 'finite values', `${p.data[bad]} at element ${bad}`);
    }
  }

  return inEvalMode(seq, () => {
    // Pass 1: moments and observers of every Linear's input.
    const moments = new Map<number, Moments>();
    const observers = new Map<number, TensorObservers>();
    for (const i of linIdx) {
      const inF = (ls[i].module as InstanceType<typeof nn.Linear>).inFeatures;
      moments.set(i, new Moments(inF));
      observers.set(i, new TensorObservers(names, bits, 'asymmetric', perChannelAct ? 1 : null, PER_CHANNEL_ACTIVATION_OBSERVERS));
    }
    const last = linIdx[linIdx.length - 1];
    const forEachInput = (phase: 'statistics' | 'sqnr', fn: (i: number, x: Float32Array, batch: number) => void): number => {
      let rows = 0;
      for (const { x, batch } of cal.read()) {
        let v = x;
        for (let i = 0; i <= last; i++) {
          if (moments.has(i)) fn(i, v, batch);
          v = ls[i].module.forward(v, batch);
        }
        rows += batch;
        progress?.({ phase, done: rows, total: cal.rows });
      }
      return rows;
    };
    const rows = forEachInput('statistics', (i, x, batch) => {
      moments.get(i)!.add(x);
      observers.get(i)!.observe(x, [batch, x.length / batch]);
    });
    if (rows === 0) throw rangeError('options.calibrationData', 'at least one input row', 'none');

    // Ranges and qparams of every observer, then pass 2: histograms and squared errors.
    const results = new Map<number, { res: ReturnType<TensorObservers['results']>; accs: NoiseAcc[]; hist: HistogramAcc }>();
    let done = 0;
    for (const i of linIdx) {
      const t = moments.get(i)!.total();
      if (t.count === 0) throw rangeError('options.calibrationData', `finite values at the input of layer '${ls[i].name}'`, `${moments.get(i)!.nonFinite} non-finite values`);
      const res = observers.get(i)!.results();
      results.set(i, { res, accs: res.map((r) => new NoiseAcc(r.cfg)), hist: new HistogramAcc(t.min, t.max, bins) });
      progress?.({ phase: 'ranges', done: ++done, total: linIdx.length });
    }
    observers.clear();
    forEachInput('sqnr', (i, x, batch) => {
      const r = results.get(i)!;
      r.hist.add(x);
      const shape = [batch, x.length / batch];
      for (const a of r.accs) a.add(x, shape);
    });

    const layers: LayerAnalysis[] = linIdx.map((i) => {
      const lin = ls[i].module as InstanceType<typeof nn.Linear>;
      const r = results.get(i)!;
      return {
        name: ls[i].name,
        inFeatures: lin.inFeatures,
        outFeatures: lin.outFeatures,
        weight: analyzeWeight(lin.weight.data, lin.outFeatures, lin.inFeatures, names, bits, bins),
        input: tensorAnalysis('activation', [rows, lin.inFeatures], 'asymmetric', moments.get(i)!, r.hist, r.res, r.accs, 1),
      };
    });

    const sensitivity = doSens
      ? runSensitivity(seq, ls, {
        calibrationData: cal, evalData: evalData ?? null, bits, mode, granularity, observer: actObserver, batchSize,
        onProgress: (d, total) => progress?.({ phase: 'sensitivity', done: d, total }),
      })
      : null;

    return {
      version: 1 as const,
      options: { bits, observers: names, mode, granularity, observer: actObserver, histogramBins: bins },
      model: {
        layers: ls.map((l) => describeLayer(l)),
        inFeatures: features,
        parameters: seq.numParameters(),
        floatBytes: seq.numParameters() * 4,
      },
      calibration: { rows },
      layers,
      sensitivity,
    };
  });
}

function describeLayer(l: Leaf): { name: string; type: string; inFeatures?: number; outFeatures?: number } {
  const m = l.module;
  if (m instanceof nn.Linear) return { name: l.name, type: 'Linear', inFeatures: m.inFeatures, outFeatures: m.outFeatures };
  const type = m.constructor.name;
  return { name: l.name, type };
}
