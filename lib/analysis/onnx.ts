// analyzeOnnx: the analysis of analyzeModel for an ONNX model, run in onnxruntime-node. Per
// quantizable node (MatMul, Gemm, Conv with a constant float weight, in the main graph): the
// weight (as [out, in]) and the node's input activations through the same statistics, observers
// and SQNR code as analyzeModel (lib/analysis/analyze.ts, tensor-stats.ts); then sensitivity runs
// in which quantizeOnnx quantizes one node, all nodes, or all but one, and onnxruntime-node runs
// the result against the float model. measureOnnxPlan quantizes a plan of planMixedPrecision with
// quantizeOnnx and measures it the same way.
//
// Activations are streamed as in analyzeModel: pass 1 runs the calibration feeds with every
// analyzed node's input exposed as a graph output (moments and observers), pass 2 runs them again
// (display histograms and the squared error of every range). Conv inputs [N, C, spatial...] are
// laid out as rows [N x spatial, C] so that channels are the input channels.
//
// Static sensitivity runs calibrate on the float model once: the observers quantizeOnnx asks for
// are kept by tensor name, and later runs get them back frozen (one feed is still run, as
// quantizeOnnx's calibration needs one). Every run calibrates on the float model, as
// onnxruntime's quantizer does, so this gives the same qparams as calibrating each run afresh.
import { checkInt, checkOneOf, checkOptions, rangeError, typeError } from '../errors';
import { Observer, ObserverQParams, ObserverStats, ParsedOptions } from '../observers/base';
import { allGraphs, attrFloat, attrInt, GraphIndex, Names } from '../onnx-model/graph';
import { CalibrationFeeds, Feed, makeActivationObserver, OBSERVER_NAMES, OnnxObserverName, OrtValue, runWithOutputs } from '../onnx-model/calibrate';
import { DT, dtypeName, encodeModel, floatValue, LoadedModel, ModelP, NodeP, num, readModel, TypeP } from '../onnx-model/proto';
import { inlineExternalData, quantizeOnnx, QuantizeOnnxOptions } from '../onnx-model/quantize';
import {
  analyzeWeight, ANALYSIS_OBSERVERS, AnalysisObserverName, AnalysisProgress, checkBits, LayerAnalysis, ModelAnalysis, OnnxModelInfo,
  PER_CHANNEL_ACTIVATION_OBSERVERS, tensorAnalysis, TensorAnalysis, TensorObservers,
} from './analyze';
import type { LayerChoice, MixedPrecisionPlan, PlanMeasurement } from './plan';
import { compareOutputs, SensitivityAnalysis, SensitivityRun } from './sensitivity';
import { HistogramAcc, Moments, NoiseAcc, sqnrDb } from './tensor-stats';

/** Feeds that can be read more than once: an array, or a function returning a fresh (async) iterable. */
export type OnnxData = readonly Feed[] | (() => CalibrationFeeds);

/** Feeds to compare outputs on, with labels (one class index per output row) or a score function for accuracy. */
export interface OnnxEvalData {
  feeds: OnnxData;
  /** One class index per row of the compared output (rows: its first dimension, over every feed in order). */
  labels?: ArrayLike<number>;
  /** Accuracy of one feed's output (a fraction, 0..1), called on the float and on every quantized model's output. */
  score?: (output: { data: Float32Array; dims: number[] }, index: number) => number;
}

export interface AnalyzeOnnxOptions {
  /** Feeds ({ inputName: ort.Tensor | { data, dims } }) to calibrate on and measure activations with. */
  calibrationData: OnnxData;
  /** Feeds (or { feeds, labels | score }) the sensitivity runs compare outputs on. Default: the calibration feeds. */
  evalData?: OnnxData | OnnxEvalData;
  /** The graph output compared (default: the first float32 graph output). */
  output?: string;
  /** Bit widths of the observer ranges, 2..8 (default [8, 4]). Sensitivity: 8 runs int8 in `mode`; 4 and 2 run weight-only (MatMulNBits) on MatMul / Gemm nodes. */
  bits?: number[];
  /** Observers whose ranges are compared (default all five). */
  observers?: AnalysisObserverName[];
  /** How the 8-bit runs quantize: 'static' (default, QDQ, calibrated) or 'dynamic'. */
  mode?: 'static' | 'dynamic';
  /** Static: the activation observer of quantizeOnnx (default 'minmax', its default). */
  observer?: OnnxObserverName;
  /** Node names to analyze (default: every quantizable node). Others stay float in every run. */
  nodes?: string[];
  /** Run the sensitivity analysis (default true). */
  sensitivity?: boolean;
  /** Also run 'all but one' (default true; one run per node and width). */
  allButOne?: boolean;
  /** Weight-only runs: block size along K (default 32). */
  blockSize?: number;
  histogramBins?: number;
  perChannelActivations?: boolean;
  /** Folder of external data files when `model` is bytes. */
  baseDir?: string;
  /** onnxruntime-node session options for every run (e.g. { intraOpNumThreads: 1 }). */
  sessionOptions?: Record<string, unknown>;
  onProgress?: (p: AnalysisProgress) => void;
}

const OPTS = ['calibrationData', 'evalData', 'output', 'bits', 'observers', 'mode', 'observer', 'nodes', 'sensitivity', 'allButOne', 'blockSize',
  'histogramBins', 'perChannelActivations', 'baseDir', 'sessionOptions', 'onProgress'];
const WEIGHT_OPS = ['MatMul', 'Gemm', 'Conv'];
/** Widths that have a quantizeOnnx run: int8 (static / dynamic), and weight-only MatMulNBits widths ONNX Runtime runs. */
const RUN_BITS = [8, 4, 2];

// ---- the model -----------------------------------------------------------------------------------------

interface Candidate {
  node: NodeP;
  name: string;
  opType: string;
  weightName: string;
  weightShape: number[];
  /** The weight as [out, in], alpha folded in for Gemm. */
  w: Float32Array;
  out: number;
  inF: number;
  /** Float bytes of the weight and a constant bias. */
  floatBytes: number;
  /** The activation input and how its channels lie: 'last' ([..., K]) or 'nchw' ([N, C, ...]). */
  input: string;
  layout: 'last' | 'nchw';
}

/** The model ready for the runs: external data inlined, every unnamed node in every graph named (the names exclude lists need). */
export interface PreparedOnnx {
  lm: LoadedModel;
  model: ModelP;
  bytes: Uint8Array;
  renamed: string[];
  /** Names of every MatMul / Gemm / Conv node of every graph (what exclude lists are made of). */
  weightOpNames: string[];
}

export function prepareOnnx(model: unknown, baseDir: string | undefined): PreparedOnnx {
  if (typeof model !== 'string' && !(model instanceof Uint8Array)) throw typeError('model', 'an ONNX model (a file path or the bytes of a ModelProto)', model);
  const lm = readModel(model, { baseDir });
  inlineExternalData(lm);
  const m = lm.model;
  if (!m.graph) throw rangeError('model', 'an ONNX model with a graph', 'none');
  const names = new Names(m);
  const renamed: string[] = [];
  const weightOpNames: string[] = [];
  for (const { graph, depth } of allGraphs(m.graph)) {
    graph.node.forEach((n, i) => {
      if (!n.name) {
        n.name = names.fresh(depth === 0 ? `#${i} ${n.opType}` : `${n.opType}_${i}`);
        renamed.push(n.name);
      }
      if (WEIGHT_OPS.includes(n.opType ?? '') && (n.domain ?? '') === '') weightOpNames.push(n.name);
    });
  }
  return { lm, model: m, bytes: encodeModel(m), renamed, weightOpNames };
}

function transpose(w: Float32Array, rows: number, cols: number, scale = 1): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = scale === 1 ? w[r * cols + c] : Math.fround(w[r * cols + c] * scale);
  return t;
}

/** The main graph's MatMul / Gemm / Conv nodes with a constant float weight, and the reasons the others are not. */
function candidates(p: PreparedOnnx): { nodes: Candidate[]; skipped: { name: string; opType: string; reason: string }[] } {
  const g = p.model.graph!;
  const gi = new GraphIndex(g, null);
  const nodes: Candidate[] = [];
  const skipped: { name: string; opType: string; reason: string }[] = [];
  for (const n of g.node) {
    const op = n.opType ?? '';
    if (!WEIGHT_OPS.includes(op) || (n.domain ?? '') !== '') continue;
    const name = n.name!;
    const skip = (reason: string): void => { skipped.push({ name, opType: op, reason }); };
    const t = n.input[1] ? gi.constant(n.input[1]) : null;
    if (!t) { skip(`its weight '${n.input[1] ?? ''}' is not a constant`); continue; }
    if (t.dataType !== DT.FLOAT) { skip(`its weight is ${dtypeName(t.dataType)}, not float32`); continue; }
    if (!n.input[0] || gi.constant(n.input[0])) { skip('its input A is a constant'); continue; }
    const dims = t.dims.map((d) => num(d));
    const v = floatValue(t, p.lm, `initializer '${n.input[1]}'`)!;
    const bad = v.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) { skip(`its weight has a non-finite value at element ${bad}`); continue; }
    let w: Float32Array, out: number, inF: number;
    let layout: Candidate['layout'] = 'last';
    let biasElems = 0;
    if (op === 'Conv') {
      if (dims.length < 3) { skip(`its weight has rank ${dims.length}`); continue; }
      out = dims[0];
      inF = v.length / out;
      w = v;
      layout = 'nchw';
      if (n.input[2] && gi.constant(n.input[2])) biasElems = gi.constant(n.input[2])!.dims.reduce<number>((a, b) => a * num(b), 1);
    } else if (op === 'MatMul') {
      if (dims.length !== 2) { skip(`its weight has rank ${dims.length} (2-D weights only)`); continue; }
      [inF, out] = dims;
      w = transpose(v, inF, out);
    } else {
      if (dims.length !== 2) { skip(`its weight has rank ${dims.length}`); continue; }
      if (attrInt(n, 'transA', 0) !== 0) { skip('Gemm with transA = 1 is left float'); continue; }
      const alpha = attrFloat(n, 'alpha', 1);
      const transB = attrInt(n, 'transB', 0) !== 0;
      [out, inF] = transB ? dims : [dims[1], dims[0]];
      w = transB ? (alpha === 1 ? v : Float32Array.from(v, (x) => Math.fround(x * alpha))) : transpose(v, dims[0], dims[1], alpha);
      if (n.input[2] && gi.constant(n.input[2])) biasElems = gi.constant(n.input[2])!.dims.reduce<number>((a, b) => a * num(b), 1);
    }
    nodes.push({ node: n, name, opType: op, weightName: n.input[1], weightShape: dims, w, out, inF, floatBytes: (v.length + biasElems) * 4, input: n.input[0], layout });
  }
  return { nodes, skipped };
}

function typeOf(t: TypeP | undefined): { type: string; shape: (number | string | null)[] | null } {
  if (!t?.tensorType) return { type: t ? 'non-tensor' : 'unknown', shape: null };
  const shape = t.tensorType.shape ? t.tensorType.shape.dim.map((d) => (d.dimValue !== undefined ? num(d.dimValue) : d.dimParam ?? null)) : null;
  return { type: dtypeName(t.tensorType.elemType), shape };
}

// ---- data ----------------------------------------------------------------------------------------------

function dataSource(name: string, d: unknown): () => CalibrationFeeds {
  if (Array.isArray(d)) return () => d as Feed[];
  if (typeof d === 'function') {
    return () => {
      const it = (d as () => unknown)();
      if (typeof it !== 'object' || it === null || (typeof (it as Iterable<unknown>)[Symbol.iterator] !== 'function' && typeof (it as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function')) {
        throw typeError(`${name}()`, 'an iterable or async iterable of feeds', it);
      }
      return it as CalibrationFeeds;
    };
  }
  if (typeof d === 'object' && d !== null && (typeof (d as Iterable<unknown>)[Symbol.iterator] === 'function' || typeof (d as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function')) {
    throw new TypeError(`Expected an array of feeds or a function returning feeds for ${name} but received a one-shot iterable: the analysis reads the data more than once (pass () => makeFeeds())`);
  }
  throw typeError(name, 'an array of feeds ({ inputName: ort.Tensor | { data, dims } }) or a function returning them', d);
}

/** Rows x channels of an activation: [..., K] as rows of K; [N, C, spatial...] as rows of C (N x spatial rows). */
function asRows(v: OrtValue, layout: Candidate['layout']): { x: Float32Array; rows: number; C: number } {
  const x = v.data as Float32Array;
  const dims = v.dims;
  if (layout === 'last' || dims.length < 3) {
    const C = dims.length ? dims[dims.length - 1] : 1;
    return { x, rows: C > 0 ? x.length / C : 0, C };
  }
  const N = dims[0], C = dims[1];
  const S = x.length / (N * C || 1);
  const out = new Float32Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const src = (n * C + c) * S;
      for (let s = 0; s < S; s++) out[(n * S + s) * C + c] = x[src + s];
    }
  }
  return { x: out, rows: N * S, C };
}

// ---- observers kept between static runs ---------------------------------------------------------------------

/** An observer that hands back another's qparams and ignores new values (a run calibrated on the same float model). */
class FrozenObserver extends Observer {
  constructor(private readonly inner: Observer) {
    super({ spec: inner.spec, specInput: (inner as unknown as { _specInput: ParsedOptions['specInput'] })._specInput, own: {} });
  }
  observe(): this { return this; }
  calculateQParams(): ObserverQParams { return this.inner.calculateQParams(); }
  override stats(): ObserverStats { return this.inner.stats(); }
  protected _resetState(): void { /* nothing */ }
  protected _ownJSON(): Record<string, unknown> { return {}; }
  protected _stateJSON(): Record<string, unknown> { return {}; }
  protected _loadState(): void { /* nothing */ }
  protected _mergeState(): void { /* nothing */ }
  protected _byteLength(): number { return 0; }
}

/** quantizeOnnx for the runs: one int8 pass (static or dynamic) and weight-only passes, each on a node set; static observers kept by tensor. */
export class OnnxRunner {
  private readonly cache = new Map<string, Observer>();
  private first: Feed | null = null;
  constructor(private readonly p: PreparedOnnx, private readonly cal: () => CalibrationFeeds, private readonly mode: 'static' | 'dynamic',
    private readonly observer: OnnxObserverName, private readonly blockSize: number) {}

  private async firstFeed(): Promise<Feed> {
    if (this.first) return this.first;
    for await (const f of this.cal() as AsyncIterable<Feed>) { this.first = f; return f; }
    throw rangeError('options.calibrationData', 'at least one feed', 'none');
  }

  private exclude(keep: readonly string[]): string[] {
    const k = new Set(keep);
    return this.p.weightOpNames.filter((n) => !k.has(n));
  }

  private async int8(bytes: Uint8Array, nodes: readonly string[]): Promise<Uint8Array> {
    const base: QuantizeOnnxOptions = { mode: this.mode, opTypes: WEIGHT_OPS, exclude: this.exclude(nodes) };
    if (this.mode === 'dynamic') return (await quantizeOnnx(bytes, base)).model;
    const attempt = async (full: boolean): Promise<{ model: Uint8Array; fresh: Map<string, Observer> }> => {
      const fresh = new Map<string, Observer>();
      const r = await quantizeOnnx(bytes, {
        ...base, calibrationData: full ? this.cal() : [await this.firstFeed()],
        observer: (t) => {
          const c = this.cache.get(t);
          if (c) return new FrozenObserver(c);
          const o = makeActivationObserver(this.observer, t, 'uint8');
          fresh.set(t, o);
          return o;
        },
      });
      return { model: r.model, fresh };
    };
    let r = await attempt(this.cache.size === 0);
    if (r.fresh.size > 0 && this.cache.size > 0) r = await attempt(true);
    for (const [t, o] of r.fresh) this.cache.set(t, o);
    return r.model;
  }

  /** The float model with `choice` applied: int8 nodes first (calibrated on the float model), then weight-only widths. */
  async quantize(choice: ReadonlyMap<string, number>): Promise<Uint8Array> {
    let bytes = this.p.bytes;
    const by = new Map<number, string[]>();
    for (const [n, b] of choice) by.set(b, [...(by.get(b) ?? []), n]);
    const n8 = by.get(8);
    if (n8?.length) bytes = await this.int8(bytes, n8);
    for (const [b, ns] of [...by].sort((x, y) => y[0] - x[0])) {
      if (b === 8) continue;
      bytes = (await quantizeOnnx(bytes, { mode: 'weight-only', bits: b, blockSize: this.blockSize, opTypes: ['MatMul', 'Gemm'], exclude: this.exclude(ns) })).model;
    }
    return bytes;
  }
}

// ---- comparing outputs ----------------------------------------------------------------------------------------

interface Outputs {
  parts: Float32Array[];
  dims: number[][];
  rows: number[];
}

/** Runs a model (bytes) over feeds and keeps one output per feed. */
async function runOutputs(bytes: Uint8Array, output: string, data: CalibrationFeeds, what: string, sessionOptions?: Record<string, unknown>): Promise<Outputs> {
  const o: Outputs = { parts: [], dims: [], rows: [] };
  await runWithOutputs(bytes, [], data, (out, i) => {
    const v = out[output];
    if (!v) throw new Error(`internal: output '${output}' missing`);
    if (v.type !== 'float32') throw rangeError('options.output', 'a float32 graph output', `'${output}' of type ${v.type} (feed ${i})`);
    o.parts.push((v.data as Float32Array).slice());
    o.dims.push(v.dims.slice());
    o.rows.push(v.dims.length >= 2 ? v.dims[0] : 1);
  }, { what, why: 'analyzeOnnx (it runs the model)', sessionOptions });
  return o;
}

function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const a = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) { a.set(p, off); off += p.length; }
  return a;
}

interface Reference {
  out: Outputs;
  ref: Float32Array;
  signal: number;
  rows: number;
  labels: Int32Array | null;
  score: OnnxEvalData['score'] | null;
  accuracy: number | null;
}

function accuracyOf(o: Outputs, r: Pick<Reference, 'labels' | 'score'>): number | null {
  if (r.score) {
    let s = 0, n = 0;
    o.parts.forEach((p, i) => {
      const v = r.score!({ data: p, dims: o.dims[i] }, i);
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw rangeError(`evalData.score(output, ${i})`, 'a fraction between 0 and 1', String(v));
      s += v * o.rows[i]; n += o.rows[i];
    });
    return n ? s / n : 0;
  }
  if (!r.labels) return null;
  const c = compareOutputs(forwardOf(o), rowsOf(o), concat(o.parts), r.labels);
  return c.accuracy;
}

const rowsOf = (o: Outputs): { x: Float32Array; batch: number }[] => o.rows.map((b) => ({ x: new Float32Array(0), batch: b }));
const forwardOf = (o: Outputs): ((x: Float32Array, b: number) => Float32Array) => {
  let i = 0;
  return () => o.parts[i++];
};

/** The compared numbers of one quantized model's outputs: noise against the float outputs, top-1 (or > 0.5) agreement, cosine, accuracy. */
function compare(q: Outputs, r: Reference): { noise: number; agreement: number; cosine: number; accuracy: number | null } {
  const y = concat(q.parts);
  if (y.length !== r.ref.length) throw new Error(`internal: quantized output has ${y.length} values, float ${r.ref.length}`);
  const c = compareOutputs(forwardOf(q), rowsOf(q), r.ref, r.labels);
  let agreement = c.agreement;
  const C = r.rows > 0 ? r.ref.length / r.rows : 0;
  if (C === 1) {
    let a = 0;
    for (let i = 0; i < y.length; i++) if ((y[i] > 0.5) === (r.ref[i] > 0.5)) a++;
    agreement = y.length ? a / y.length : 0;
  }
  let d = 0, xx = 0, yy = 0;
  for (let i = 0; i < y.length; i++) { d += y[i] * r.ref[i]; xx += y[i] * y[i]; yy += r.ref[i] * r.ref[i]; }
  const cosine = xx === 0 && yy === 0 ? 1 : xx === 0 || yy === 0 ? 0 : d / Math.sqrt(xx * yy);
  const accuracy = r.score ? accuracyOf(q, r) : c.accuracy;
  return { noise: c.noise, agreement, cosine, accuracy };
}

function checkEval(d: unknown, cal: () => CalibrationFeeds): { feeds: () => CalibrationFeeds; labels: Int32Array | null; score: OnnxEvalData['score'] | null; given: boolean } {
  if (d === undefined) return { feeds: cal, labels: null, score: null, given: false };
  if (Array.isArray(d) || typeof d === 'function') return { feeds: dataSource('options.evalData', d), labels: null, score: null, given: true };
  if (typeof d !== 'object' || d === null) throw typeError('options.evalData', 'feeds, or { feeds, labels?, score? }', d);
  const o = checkOptions('options.evalData', d, ['feeds', 'labels', 'score']);
  const feeds = dataSource('options.evalData.feeds', o.feeds);
  if (o.labels !== undefined && o.score !== undefined) throw rangeError('options.evalData', 'labels or score, not both', 'both');
  if (o.score !== undefined && typeof o.score !== 'function') throw typeError('options.evalData.score', 'a function (output, index) => fraction correct', o.score);
  let labels: Int32Array | null = null;
  if (o.labels !== undefined) {
    const l = o.labels as ArrayLike<number>;
    if (typeof l !== 'object' || l === null || typeof l.length !== 'number') throw typeError('options.evalData.labels', 'an array of class indices', l);
    labels = new Int32Array(l.length);
    for (let i = 0; i < l.length; i++) {
      const v = l[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw rangeError(`options.evalData.labels[${i}]`, 'a class index (an integer >= 0)', String(v));
      labels[i] = v;
    }
  }
  return { feeds, labels, score: (o.score as OnnxEvalData['score']) ?? null, given: true };
}

async function reference(bytes: Uint8Array, output: string, ev: ReturnType<typeof checkEval>, so?: Record<string, unknown>): Promise<Reference> {
  const out = await runOutputs(bytes, output, ev.feeds(), ev.given ? 'options.evalData' : 'options.calibrationData', so);
  if (out.parts.length === 0) throw rangeError(ev.given ? 'options.evalData' : 'options.calibrationData', 'at least one feed', 'none');
  const ref = concat(out.parts);
  const rows = out.rows.reduce((a, b) => a + b, 0);
  if (ev.labels && ev.labels.length !== rows) throw rangeError('options.evalData.labels', `${rows} labels (one per row of output '${output}' over the eval feeds)`, String(ev.labels.length));
  let signal = 0;
  for (let i = 0; i < ref.length; i++) signal += ref[i] * ref[i];
  const r: Reference = { out, ref, signal, rows, labels: ev.labels, score: ev.score, accuracy: null };
  r.accuracy = accuracyOf(out, r);
  return r;
}

// ---- analyzeOnnx ----------------------------------------------------------------------------------------------

/**
 * Analyzes an ONNX model (a path or bytes) in onnxruntime-node: per quantizable node, its weight
 * and input activations (histograms, observer ranges and SQNR per bit width, per tensor and per
 * channel, channel spread), and (unless sensitivity is false) how the chosen output changes when
 * quantizeOnnx quantizes one node, every node, or all but one. The result is a ModelAnalysis that
 * planMixedPrecision, renderReport and writeReport take; measureOnnxPlan measures a plan of it.
 */
export async function analyzeOnnx(model: string | Uint8Array, options: AnalyzeOnnxOptions): Promise<ModelAnalysis> {
  if (options === undefined || options === null) throw typeError('options', 'an options object with calibrationData', options);
  const o = checkOptions('options', options, OPTS);
  const bits = o.bits === undefined ? [8, 4] : checkBits('options.bits', o.bits);
  let names: AnalysisObserverName[] = ANALYSIS_OBSERVERS.slice();
  if (o.observers !== undefined) {
    if (!Array.isArray(o.observers) || o.observers.length === 0) throw typeError('options.observers', 'a non-empty array of observer names', o.observers);
    names = [...new Set(o.observers.map((n, i) => checkOneOf(`options.observers[${i}]`, n, ANALYSIS_OBSERVERS)))];
  }
  const mode = o.mode === undefined ? 'static' : checkOneOf('options.mode', o.mode, ['static', 'dynamic'] as const);
  const observer = o.observer === undefined ? 'minmax' : checkOneOf('options.observer', o.observer, OBSERVER_NAMES);
  const bool = (k: string, d: boolean): boolean => {
    const v = o[k];
    if (v === undefined) return d;
    if (typeof v !== 'boolean') throw typeError(`options.${k}`, 'a boolean', v);
    return v;
  };
  const doSens = bool('sensitivity', true);
  const allBut = bool('allButOne', true);
  const perChannelAct = bool('perChannelActivations', true);
  const bins = o.histogramBins === undefined ? 100 : checkInt('options.histogramBins', o.histogramBins, 2, 4096);
  const blockSize = o.blockSize === undefined ? 32 : checkInt('options.blockSize', o.blockSize, 16, 2 ** 20);
  if ((blockSize & (blockSize - 1)) !== 0) throw rangeError('options.blockSize', 'a power of two >= 16 (MatMulNBits)', String(blockSize));
  const progress = o.onProgress as AnalyzeOnnxOptions['onProgress'];
  if (progress !== undefined && typeof progress !== 'function') throw typeError('options.onProgress', 'a function', progress);
  const so = o.sessionOptions as Record<string, unknown> | undefined;
  if (so !== undefined && (typeof so !== 'object' || so === null)) throw typeError('options.sessionOptions', 'an object', so);
  if (o.baseDir !== undefined && typeof o.baseDir !== 'string') throw typeError('options.baseDir', 'a folder path', o.baseDir);
  if (o.calibrationData === undefined) throw typeError('options.calibrationData', 'feeds to calibrate on (an array of { inputName: ort.Tensor | { data, dims } })', undefined);
  const cal = dataSource('options.calibrationData', o.calibrationData);
  const ev = checkEval(o.evalData, cal);

  const p = prepareOnnx(model, o.baseDir as string | undefined);
  const g = p.model.graph!;
  const { nodes: all, skipped } = candidates(p);
  let nodes = all;
  if (o.nodes !== undefined) {
    if (!Array.isArray(o.nodes) || o.nodes.length === 0 || !o.nodes.every((n) => typeof n === 'string')) throw typeError('options.nodes', 'a non-empty array of node names', o.nodes);
    for (const n of o.nodes) {
      if (!all.some((c) => c.name === n)) {
        const why = skipped.find((s) => s.name === n);
        throw rangeError('options.nodes', `names of quantizable nodes (${all.slice(0, 8).map((c) => `'${c.name}'`).join(', ')}${all.length > 8 ? ', ...' : ''})`, `'${n}'${why ? `: ${why.reason}` : ''}`);
      }
    }
    const want = new Set(o.nodes as string[]);
    nodes = all.filter((c) => want.has(c.name));
  }
  if (nodes.length === 0) {
    const ops = [...new Set(g.node.map((n) => n.opType))].slice(0, 12).join(', ');
    throw rangeError('model', 'an ONNX model with a MatMul, Gemm or Conv node whose weight is a constant float32 tensor in the main graph',
      skipped.length ? `none (${skipped.map((s) => `${s.opType} '${s.name}': ${s.reason}`).slice(0, 3).join('; ')})` : `none (operators: ${ops || 'no nodes'})`);
  }
  const inits = new Set(g.initializer.map((t) => t.name));
  const floatOuts = g.output.filter((v) => typeOf(v.type).type === 'float');
  let output: string;
  if (o.output !== undefined) {
    if (typeof o.output !== 'string' || !g.output.some((v) => v.name === o.output)) {
      throw rangeError('options.output', `a graph output (${g.output.map((v) => `'${v.name}'`).join(', ')})`, JSON.stringify(o.output) ?? String(o.output));
    }
    output = o.output;
  } else {
    if (floatOuts.length === 0 && g.output.length === 0) throw rangeError('model', 'a graph output', 'none');
    output = (floatOuts[0] ?? g.output[0]).name!;
  }

  // Pass 1 and 2 over the calibration feeds: each analyzed node's input, by tensor and layout.
  const tensors = new Map<string, { layout: Candidate['layout']; m: Moments | null; obs: TensorObservers | null; C: number; rows: number; res?: ReturnType<TensorObservers['results']>; accs?: NoiseAcc[]; hist?: HistogramAcc; nonFloat?: string }>();
  for (const c of nodes) if (!tensors.has(c.input)) tensors.set(c.input, { layout: c.layout, m: null, obs: null, C: 0, rows: 0 });
  const pass = async (phase: 'statistics' | 'sqnr', fn: (t: string, x: Float32Array, rows: number, C: number) => void): Promise<number> => {
    return runWithOutputs(p.model, [...tensors.keys()], cal(), (out, i) => {
      for (const [t, st] of tensors) {
        const v = out[t];
        if (!v || v.type !== 'float32') { st.nonFloat = v ? v.type : 'missing'; continue; }
        const r = asRows(v, st.layout);
        if (r.rows === 0) continue;
        fn(t, r.x, r.rows, r.C);
      }
      progress?.({ phase, done: i + 1, total: Array.isArray(o.calibrationData) ? (o.calibrationData as Feed[]).length : null });
    }, { why: 'analyzeOnnx (it runs the model)', sessionOptions: so });
  };
  const feeds = await pass('statistics', (t, x, rows, C) => {
    const st = tensors.get(t)!;
    if (!st.m) {
      st.C = C;
      st.m = new Moments(C);
      st.obs = new TensorObservers(names, bits, 'asymmetric', perChannelAct ? 1 : null, PER_CHANNEL_ACTIVATION_OBSERVERS);
    } else if (st.C !== C) throw rangeError('options.calibrationData', `feeds giving tensor '${t}' the same channel count`, `${C} channels after ${st.C}`);
    st.m.add(x);
    st.obs!.observe(x, [rows, C]);
    st.rows += rows;
  });
  if (feeds === 0) throw rangeError('options.calibrationData', 'at least one feed', 'none');
  let done = 0;
  for (const [t, st] of tensors) {
    if (!st.m || st.m.total().count === 0) {
      throw rangeError('options.calibrationData', `finite float32 values at tensor '${t}' (the input of node ${nodes.filter((c) => c.input === t).map((c) => `'${c.name}'`).join(', ')})`, st.nonFloat ? `type ${st.nonFloat}` : 'none');
    }
    const tot = st.m.total();
    st.res = st.obs!.results();
    st.accs = st.res.map((r) => new NoiseAcc(r.cfg));
    st.hist = new HistogramAcc(tot.min, tot.max, bins);
    st.obs = null;
    progress?.({ phase: 'ranges', done: ++done, total: tensors.size });
  }
  await pass('sqnr', (t, x, rows, C) => {
    const st = tensors.get(t)!;
    st.hist!.add(x);
    for (const a of st.accs!) a.add(x, [rows, C]);
  });
  const inputAnalysis = new Map<string, TensorAnalysis>();
  for (const [t, st] of tensors) inputAnalysis.set(t, tensorAnalysis('activation', [st.rows, st.C], 'asymmetric', st.m!, st.hist!, st.res!, st.accs!, 1));

  const layers: LayerAnalysis[] = nodes.map((c) => ({
    name: c.name, inFeatures: c.inF, outFeatures: c.out, opType: c.opType, weightName: c.weightName, weightShape: c.weightShape,
    weight: analyzeWeight(c.w, c.out, c.inF, names, bits, bins),
    input: inputAnalysis.get(c.input)!,
  }));

  let parameters = 0;
  for (const t of g.initializer) if (t.dataType === DT.FLOAT) parameters += t.dims.reduce<number>((a, b) => a * num(b), 1);
  const sensitivity = doSens ? await onnxSensitivity(p, nodes, {
    cal, ev, output, bits: bits.filter((b) => RUN_BITS.includes(b)), mode, observer, blockSize, allBut, so,
    onProgress: (d, total) => progress?.({ phase: 'sensitivity', done: d, total }),
  }) : null;
  const info: OnnxModelInfo = {
    output,
    inputs: g.input.filter((v) => !inits.has(v.name)).map((v) => ({ name: v.name ?? '', ...typeOf(v.type) })),
    feeds, blockSize, renamed: p.renamed, skipped,
    notes: [
      ...(o.nodes !== undefined ? [`${nodes.length} of ${all.length} quantizable nodes analyzed (options.nodes); the others stay float in every run`] : []),
      ...(bits.some((b) => !RUN_BITS.includes(b)) ? [`sensitivity runs at ${bits.filter((b) => RUN_BITS.includes(b)).join(', ') || 'no'} bits (quantizeOnnx runs int8, and weight-only at 4 and 2 bits)`] : []),
    ],
  };
  return {
    version: 1 as const,
    options: { bits, observers: names, mode, granularity: null, observer, histogramBins: bins },
    model: {
      layers: nodes.map((c) => ({ name: c.name, type: c.opType, inFeatures: c.inF, outFeatures: c.out })),
      inFeatures: layers[0].inFeatures,
      parameters,
      floatBytes: p.bytes.length,
    },
    calibration: { rows: Math.max(...[...tensors.values()].map((s) => s.rows)) },
    layers,
    sensitivity,
    onnx: info,
  };
}

interface SensInput {
  cal: () => CalibrationFeeds;
  ev: ReturnType<typeof checkEval>;
  output: string;
  bits: number[];
  mode: 'static' | 'dynamic';
  observer: OnnxObserverName;
  blockSize: number;
  allBut: boolean;
  so?: Record<string, unknown>;
  onProgress: (done: number, total: number) => void;
}

/** A node's run widths: 8 for every node, fewer bits (weight-only) for MatMul / Gemm. */
const widthsOf = (c: Candidate, bits: readonly number[]): number[] => bits.filter((b) => b === 8 || c.opType !== 'Conv');

async function onnxSensitivity(p: PreparedOnnx, nodes: Candidate[], s: SensInput): Promise<SensitivityAnalysis> {
  const r = await reference(p.bytes, s.output, s.ev, s.so);
  const runner = new OnnxRunner(p, s.cal, s.mode, s.observer, s.blockSize);
  const floatBytes = p.bytes.length;
  const layerBytes: SensitivityAnalysis['layerBytes'] = {};
  for (const c of nodes) layerBytes[c.name] = { float: c.floatBytes, bits: {} };
  const otherBytes = floatBytes - nodes.reduce((a, c) => a + c.floatBytes, 0);
  const bitsRun = s.bits.filter((b) => nodes.some((c) => widthsOf(c, [b]).length));
  const perWidth = (b: number) => nodes.filter((c) => widthsOf(c, [b]).length).length;
  const total = bitsRun.length + nodes.reduce((a, c) => a + widthsOf(c, bitsRun).length, 0)
    + (s.allBut && nodes.length > 1 ? nodes.reduce((a, c) => a + widthsOf(c, bitsRun).filter((b) => perWidth(b) > 1).length, 0) : 0);
  let done = 0;
  const measure = async (kind: SensitivityRun['kind'], layer: string | null, bits: number, choice: Map<string, number>): Promise<SensitivityRun> => {
    const bytes = await runner.quantize(choice);
    const q = await runOutputs(bytes, s.output, s.ev.feeds(), 'options.evalData', s.so);
    const c = compare(q, r);
    s.onProgress(++done, total);
    return {
      kind, layer, bits, bytes: bytes.length, noise: c.noise, sqnrDb: sqnrDb(r.signal, c.noise), agreement: c.agreement, cosine: c.cosine,
      accuracy: c.accuracy, accuracyDrop: c.accuracy === null || r.accuracy === null ? null : (r.accuracy - c.accuracy) * 100,
    };
  };
  const uniform: SensitivityRun[] = [], single: SensitivityRun[] = [], allBut: SensitivityRun[] = [];
  for (const b of bitsRun) {
    const choice = new Map(nodes.filter((c) => widthsOf(c, [b]).length).map((c) => [c.name, b] as const));
    uniform.push(await measure('uniform', null, b, choice));
  }
  for (const c of nodes) {
    for (const b of widthsOf(c, bitsRun)) {
      const run = await measure('single', c.name, b, new Map([[c.name, b]]));
      layerBytes[c.name].bits[String(b)] = c.floatBytes + run.bytes - floatBytes;
      single.push(run);
    }
  }
  if (s.allBut && nodes.length > 1) {
    for (const c of nodes) {
      for (const b of widthsOf(c, bitsRun)) {
        const choice = new Map(nodes.filter((x) => x !== c && widthsOf(x, [b]).length).map((x) => [x.name, b] as const));
        // The only node with this width (detypify's Gemm at 4 bits): all but it is the float model.
        if (choice.size === 0) continue;
        allBut.push(await measure('all-but', c.name, b, choice));
      }
    }
  }
  return {
    data: s.ev.given ? 'eval' : 'calibration', rows: r.rows, labels: r.labels !== null || r.score !== null, mode: s.mode, bits: bitsRun, weightOnlyBelow8: true,
    layers: nodes.map((c) => c.name), signal: r.signal, float: { accuracy: r.accuracy, bytes: floatBytes }, layerBytes, otherBytes, uniform, single, allBut,
  };
}

// ---- measureOnnxPlan ----------------------------------------------------------------------------------------------

/**
 * Quantizes an ONNX model as a plan of planMixedPrecision (on an analyzeOnnx analysis) says: the
 * int8 nodes with quantizeOnnx in the analysis' mode (static: calibrated on calibrationData), then
 * the weight-only nodes (MatMulNBits); runs it and the float model in onnxruntime-node on the eval
 * feeds and measures size, output SQNR, agreement and, with labels or a score, accuracy.
 */
export async function measureOnnxPlan(model: string | Uint8Array, plan: MixedPrecisionPlan,
  data: { calibrationData?: OnnxData; evalData: OnnxData | OnnxEvalData; baseDir?: string; sessionOptions?: Record<string, unknown> }):
  Promise<{ model: Uint8Array; measured: PlanMeasurement }> {
  if (typeof plan !== 'object' || plan === null || !plan.onnx) throw typeError('plan', 'the result of planMixedPrecision on an analyzeOnnx analysis', plan);
  const d = checkOptions('data', data, ['calibrationData', 'evalData', 'baseDir', 'sessionOptions']);
  if (d.evalData === undefined) throw typeError('data.evalData', 'feeds to measure the plan on', undefined);
  const so = d.sessionOptions as Record<string, unknown> | undefined;
  const p = prepareOnnx(model, d.baseDir as string | undefined);
  const known = new Set(p.weightOpNames);
  const choice = new Map<string, number>();
  for (const l of plan.layers) {
    if (!known.has(l.name)) throw rangeError('plan', `node names of this model`, `'${l.name}'`);
    if (l.choice !== 'float') choice.set(l.name, l.choice);
  }
  const on = plan.onnx;
  const needsCal = on.mode === 'static' && [...choice.values()].includes(8);
  if (needsCal && d.calibrationData === undefined) throw typeError('data.calibrationData', 'feeds to calibrate the static plan on', undefined);
  const cal = d.calibrationData === undefined ? () => [] as Feed[] : dataSource('data.calibrationData', d.calibrationData);
  const ev = checkEval(d.evalData, cal);
  const r = await reference(p.bytes, on.output, ev, so);
  const runner = new OnnxRunner(p, cal, on.mode, on.observer, on.blockSize);
  const bytes = await runner.quantize(choice);
  const q = await runOutputs(bytes, on.output, ev.feeds(), 'data.evalData', so);
  const c = compare(q, r);
  const drop = c.accuracy === null || r.accuracy === null ? null : (r.accuracy - c.accuracy) * 100;
  const sq = sqnrDb(r.signal, c.noise);
  const within = 'accuracyDrop' in plan.budget ? drop !== null && drop <= plan.budget.accuracyDrop + 1e-9 : sq >= plan.budget.sqnrDb;
  return {
    model: bytes,
    measured: { rows: r.rows, bytes: bytes.length, sqnrDb: sq, agreement: c.agreement, cosine: c.cosine, accuracy: c.accuracy, floatAccuracy: r.accuracy, accuracyDrop: drop, withinBudget: within },
  };
}

/** The quantizeOnnx passes a plan's choices make (what measureOnnxPlan runs). */
export function onnxPlanSteps(a: ModelAnalysis, choices: ReadonlyMap<string, LayerChoice>): MixedPrecisionPlan['onnx'] {
  const int8: string[] = [];
  const weightOnly: Record<string, string[]> = {};
  for (const [n, c] of choices) {
    if (c === 'float') continue;
    if (c === 8) int8.push(n);
    else (weightOnly[String(c)] ??= []).push(n);
  }
  const o = a.onnx!;
  return { output: o.output, mode: a.options.mode === 'dynamic' ? 'dynamic' : 'static', observer: a.options.observer as OnnxObserverName, blockSize: o.blockSize, int8, weightOnly };
}
