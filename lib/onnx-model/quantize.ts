// quantizeOnnx: quantizes the MatMul / Gemm / Conv weights (and, in static mode, activations) of an
// ONNX model into graphs ONNX Runtime runs and fuses:
//   dynamic      DynamicQuantizeLinear + MatMulInteger / ConvInteger + scale Muls (what
//                onnxruntime.quantization.quantize_dynamic writes; ORT fuses the MatMul form into
//                DynamicQuantizeMatMul)
//   static       QDQ: QuantizeLinear / DequantizeLinear around calibrated activations, int8 weights
//                per channel through DequantizeLinear, int32 biases (ORT fuses into QLinearConv,
//                QGemm, QLinearMatMul, QLinearAdd)
//   weight-only  com.microsoft MatMulNBits (lib/formats/matmulnbits.ts), or opset-21 blocked
//                DequantizeLinear + MatMul
// Everything not quantized stays as it was and is listed, with the reason, in the summary.
import { checkInt, checkOneOf, checkOptions, rangeError, typeError } from '../errors';
import { quantizeMatMulNBits } from '../formats/matmulnbits';
import { roundHalfEven } from '../qparams';
import { quantize, QuantizedTensor } from '../tensor';
import { calibrate, CalibrationFeeds, makeActivationObserver, OBSERVER_NAMES, OnnxObserverChoice } from './calibrate';
import {
  allGraphs, attrFloat, attrInt, GraphIndex, intAttr, makeNode, Names, opsetVersion, raiseOpset, scalarF32, setOpset,
  tensorInit,
} from './graph';
import {
  DT, dtypeName, encodeModel, floatValue, GraphP, LoadedModel, LoadOptions, makeTensor, ModelP, NodeP, num, readModel, TensorP, tensorValue,
} from './proto';

export type OnnxQuantMode = 'dynamic' | 'static' | 'weight-only';

export interface QuantizeOnnxProgress {
  phase: 'calibrate' | 'quantize';
  /** Calibration: feeds run; quantize: nodes looked at. */
  done: number;
  total: number | null;
}

export interface QuantizeOnnxOptions {
  mode: OnnxQuantMode;
  /** Operator types to quantize. Default: ['MatMul', 'Gemm', 'Conv'] (static adds 'Add'); weight-only: ['MatMul', 'Gemm']. */
  opTypes?: string[];
  /** Node names to leave float. */
  exclude?: string[];
  /** int8 weights per output channel (default true) or per tensor. */
  perChannel?: boolean;
  /** Dynamic and static weights: 'int8' (default, symmetric, -127..127) or 'uint8' (asymmetric, zero points). */
  weightType?: 'int8' | 'uint8';
  /** Static activations: 'uint8' (default, asymmetric 0..255) or 'int8' (asymmetric -128..127). Dynamic: uint8 only (DynamicQuantizeLinear). */
  activationType?: 'uint8' | 'int8';
  /** Static: the activation observer by name or a factory per tensor (default 'minmax', ONNX Runtime's default calibration). */
  observer?: OnnxObserverChoice;
  /** Static: feeds to calibrate on (iterable or async iterable of { inputName: Tensor | { data, dims } }). */
  calibrationData?: CalibrationFeeds;
  /** Weight-only: bits per weight, 2..8 (default 4). */
  bits?: number;
  /** Weight-only: block size along K, a power of two >= 16 (default 32). */
  blockSize?: number;
  /** Weight-only: symmetric codes without zero points (default true) or asymmetric with a zero point per block. */
  symmetric?: boolean;
  /** Weight-only: 'matmulnbits' (default, com.microsoft MatMulNBits) or 'qdq' (opset-21 blocked DequantizeLinear + MatMul). */
  weightOnlyFormat?: 'matmulnbits' | 'qdq';
  /** Weight-only MatMulNBits accuracy_level (0: unset, 1: fp32, 4: activations in int8). Default 0. */
  accuracyLevel?: number;
  /**
   * Dynamic mode, Conv: 'qdq' (default) stores the weight as int8 per channel through
   * DequantizeLinear and runs the Conv in float (ORT folds the DequantizeLinear at load: 4x smaller,
   * float speed); 'integer' uses ConvInteger on DynamicQuantizeLinear activations, as
   * onnxruntime's quantize_dynamic does (ORT's ConvInteger kernel is much slower than its float Conv).
   */
  dynamicConv?: 'qdq' | 'integer';
  /** Folder of external data files when `model` is bytes. */
  baseDir?: string;
  onProgress?: (p: QuantizeOnnxProgress) => void;
  /** Extra onnxruntime-node session options for calibration. */
  sessionOptions?: Record<string, unknown>;
}

export interface OnnxActQParams {
  scale: number;
  zeroPoint: number;
  type: 'uint8' | 'int8';
}

export interface OnnxNodeSummary {
  /** Node name ('' when the node has none). */
  name: string;
  opType: string;
  /** Which graph: 'graph' or the path of a subgraph. */
  graph: string;
  quantized: boolean;
  /** What it became, e.g. 'MatMulInteger', 'ConvInteger', 'QDQ', 'MatMulNBits'. */
  as?: string;
  /** Why it was left float. */
  reason?: string;
  weight?: { name: string; shape: number[]; type: string; granularity: string; bits: number; blockSize?: number };
  /** Static: qparams of the node's quantized activations by tensor name. */
  activations?: Record<string, OnnxActQParams>;
  /** Bytes of the node's constant weights (and bias) before and after. */
  bytesBefore: number;
  bytesAfter: number;
}

export interface OnnxQuantizeSummary {
  mode: OnnxQuantMode;
  /** ai.onnx opset before and after (raised only when the output needs it and nothing changes meaning). */
  opset: { before: number | null; after: number | null };
  irVersion: { before: number; after: number };
  /** Other operator sets the output imports (e.g. com.microsoft for MatMulNBits). */
  addedDomains: string[];
  nodes: OnnxNodeSummary[];
  quantizedNodes: number;
  /** Encoded model sizes. */
  bytesBefore: number;
  bytesAfter: number;
  calibration?: { batches: number; observer: string; tensors: number };
  /** Notes on choices made (fallbacks, opset decisions). */
  notes: string[];
}

const OPTS = ['mode', 'opTypes', 'exclude', 'perChannel', 'weightType', 'activationType', 'observer', 'calibrationData', 'bits', 'blockSize',
  'symmetric', 'weightOnlyFormat', 'accuracyLevel', 'dynamicConv', 'baseDir', 'onProgress', 'sessionOptions'] as const;
const SUPPORTED_OPS: Record<OnnxQuantMode, string[]> = {
  dynamic: ['MatMul', 'Gemm', 'Conv'],
  static: ['MatMul', 'Gemm', 'Conv', 'Add'],
  'weight-only': ['MatMul', 'Gemm'],
};
const REMOVABLE_ACT = new Set(['Relu', 'Clip']);
const SHARE_SCALE = new Set(['Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze', 'MaxPool', 'Identity']);

interface Resolved {
  mode: OnnxQuantMode;
  opTypes: Set<string>;
  exclude: Set<string>;
  perChannel: boolean;
  weightType: 'int8' | 'uint8';
  activationType: 'uint8' | 'int8';
  observer: OnnxObserverChoice;
  bits: number;
  blockSize: number;
  symmetric: boolean;
  wFormat: 'matmulnbits' | 'qdq';
  accuracyLevel: number;
  dynamicConv: 'qdq' | 'integer';
}

function resolveOptions(options: unknown): Resolved & { raw: QuantizeOnnxOptions } {
  if (options === undefined || options === null) throw typeError('options', "an options object with mode 'dynamic', 'static' or 'weight-only'", options);
  const o = checkOptions('options', options, OPTS) as unknown as QuantizeOnnxOptions;
  const mode = checkOneOf('options.mode', o.mode, ['dynamic', 'static', 'weight-only'] as const);
  let opTypes = SUPPORTED_OPS[mode];
  if (o.opTypes !== undefined) {
    if (!Array.isArray(o.opTypes) || !o.opTypes.every((t) => typeof t === 'string')) throw typeError('options.opTypes', 'an array of operator type names', o.opTypes);
    for (const t of o.opTypes) {
      if (!SUPPORTED_OPS[mode].includes(t)) throw rangeError('options.opTypes', `operator types mode '${mode}' quantizes (${SUPPORTED_OPS[mode].map((s) => `'${s}'`).join(', ')})`, `'${t}'`);
    }
    opTypes = o.opTypes;
  }
  if (o.exclude !== undefined && (!Array.isArray(o.exclude) || !o.exclude.every((t) => typeof t === 'string'))) throw typeError('options.exclude', 'an array of node names', o.exclude);
  const bool = (name: string, v: unknown, d: boolean): boolean => {
    if (v === undefined) return d;
    if (typeof v !== 'boolean') throw typeError(`options.${name}`, 'a boolean', v);
    return v;
  };
  const activationType = o.activationType === undefined ? 'uint8' : checkOneOf('options.activationType', o.activationType, ['uint8', 'int8'] as const);
  if (mode === 'dynamic' && activationType !== 'uint8') throw rangeError('options.activationType', "'uint8' in dynamic mode (DynamicQuantizeLinear makes uint8 codes)", `'${activationType}'`);
  const observer = o.observer === undefined ? 'minmax' : typeof o.observer === 'function' ? o.observer : checkOneOf('options.observer', o.observer, OBSERVER_NAMES);
  const bits = o.bits === undefined ? (mode === 'weight-only' ? 4 : 8) : checkInt('options.bits', o.bits, 2, 8);
  if (mode !== 'weight-only' && bits !== 8) throw rangeError('options.bits', `8 in mode '${mode}' (int8 kernels); fewer bits need mode 'weight-only'`, String(bits));
  const blockSize = o.blockSize === undefined ? 32 : checkInt('options.blockSize', o.blockSize, 16, 2 ** 20);
  if ((blockSize & (blockSize - 1)) !== 0) throw rangeError('options.blockSize', 'a power of two >= 16 (MatMulNBits)', String(blockSize));
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw typeError('options.onProgress', 'a function', o.onProgress);
  if (mode === 'static' && o.calibrationData === undefined) {
    throw typeError('options.calibrationData', 'feeds to calibrate on (static mode runs the float model on them)', undefined);
  }
  if (mode !== 'static' && o.calibrationData !== undefined) throw rangeError('options.calibrationData', "nothing outside mode 'static'", 'calibration data');
  return {
    raw: o, mode, opTypes: new Set(opTypes), exclude: new Set(o.exclude ?? []),
    perChannel: bool('perChannel', o.perChannel, true),
    weightType: o.weightType === undefined ? 'int8' : checkOneOf('options.weightType', o.weightType, ['int8', 'uint8'] as const),
    activationType, observer, bits, blockSize, symmetric: bool('symmetric', o.symmetric, true),
    wFormat: o.weightOnlyFormat === undefined ? 'matmulnbits' : checkOneOf('options.weightOnlyFormat', o.weightOnlyFormat, ['matmulnbits', 'qdq'] as const),
    accuracyLevel: o.accuracyLevel === undefined ? 0 : checkInt('options.accuracyLevel', o.accuracyLevel, 0, 4),
    dynamicConv: o.dynamicConv === undefined ? 'qdq' : checkOneOf('options.dynamicConv', o.dynamicConv, ['qdq', 'integer'] as const),
  };
}

// ---- weights ------------------------------------------------------------------------------------------

interface QWeight {
  q: QuantizedTensor;
  /** Codes as stored (Int8Array for int8, Uint8Array for uint8). */
  codes: Int8Array | Uint8Array;
  dims: number[];
  axis: number | null;
}

/** int8 symmetric (-127..127) or uint8 asymmetric weights, per channel along `axis` or per tensor. */
function quantizeWeight8(w: Float32Array, dims: number[], axis: number | null, weightType: 'int8' | 'uint8', scaleOverride?: Float32Array): QWeight {
  const granularity = axis === null ? 'per-tensor' as const : { axis };
  const spec = weightType === 'int8' ? { scheme: 'symmetric' as const, bits: 8, signed: true } : { scheme: 'asymmetric' as const, bits: 8, signed: false };
  let q = quantize(w, dims, { ...spec, granularity });
  if (scaleOverride) {
    // Widened scales (int32 bias overflow): codes round(w / scale) with the new scales, ONNX arithmetic.
    const codes = new Int8Array(w.length);
    const L = axisLayout(dims, axis);
    for (let o = 0; o < L.outer; o++) {
      for (let c = 0; c < L.axisDim; c++) {
        const s = scaleOverride[axis === null ? 0 : c];
        for (let i = 0; i < L.inner; i++) {
          const idx = (o * L.axisDim + c) * L.inner + i;
          codes[idx] = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(w[idx] / s))));
        }
      }
    }
    q = Object.assign(Object.create(Object.getPrototypeOf(q)), q, { data: codes, scale: scaleOverride }) as QuantizedTensor;
  }
  return { q, codes: q.data, dims, axis };
}

function axisLayout(dims: number[], axis: number | null): { outer: number; axisDim: number; inner: number } {
  if (axis === null) return { outer: 1, axisDim: 1, inner: dims.reduce((a, b) => a * b, 1) };
  return {
    outer: dims.slice(0, axis).reduce((a, b) => a * b, 1),
    axisDim: dims[axis],
    inner: dims.slice(axis + 1).reduce((a, b) => a * b, 1),
  };
}

function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

/** int32 bias of the ONNX tools: round_half_even(float32(b / float32(sIn * sW[j]))). */
function quantizeBias(b: Float32Array, sIn: number, sW: Float32Array): { q: Int32Array; scale: Float32Array } {
  const f = Math.fround;
  const q = new Int32Array(b.length);
  const scale = new Float32Array(b.length);
  for (let j = 0; j < b.length; j++) {
    const s = f(f(sIn) * sW[sW.length === 1 ? 0 : j]);
    scale[j] = s;
    q[j] = Math.max(-2147483648, Math.min(2147483647, roundHalfEven(f(b[j] / s))));
  }
  return { q, scale };
}

/**
 * Weight scales widened where bias / (sIn * sW[j]) would not fit in int32 (a nearly dead channel
 * next to a large bias), as onnxruntime's quantizer and quantizeModel do; null when all fit.
 */
function widenForBias(sW: Float32Array, bias: Float32Array, sIn: number): Float32Array | null {
  const f = Math.fround;
  const LIM = 2 ** 30;
  let out: Float32Array | null = null;
  for (let j = 0; j < bias.length; j++) {
    const g = sW.length === 1 ? 0 : j;
    const cur = out ? out[g] : sW[g];
    if (Math.abs(bias[j]) <= f(sIn * cur) * LIM) continue;
    out ??= sW.slice();
    out[g] = f((Math.abs(bias[j]) / (sIn * LIM)) * (1 + 2 ** -20));
  }
  return out;
}

// ---- the rewriting context ----------------------------------------------------------------------------

interface Ctx {
  lm: LoadedModel;
  model: ModelP;
  names: Names;
  opt: Resolved;
  nodes: OnnxNodeSummary[];
  notes: string[];
  /** Original constants replaced by quantized ones (removed at the end when nothing reads them). */
  replaced: Set<string>;
  addedDomains: Set<string>;
  /** Per-axis QuantizeLinear / DequantizeLinear available (opset >= 13). */
  perAxisOk: boolean;
  /** Quantized weights already made, per graph and weight layout: a weight shared by several nodes is quantized once. */
  wcache: Map<GraphIndex, Map<string, string[]>>;
}

/** The names made for a weight the first time (`fresh` true), or those made before. */
function cachedWeight(ctx: Ctx, gi: GraphIndex, key: string, make: () => string[]): { names: string[]; fresh: boolean } {
  let m = ctx.wcache.get(gi);
  if (!m) ctx.wcache.set(gi, (m = new Map()));
  const hit = m.get(key);
  if (hit) return { names: hit, fresh: false };
  const names = make();
  m.set(key, names);
  return { names, fresh: true };
}

interface Rewrite {
  /** Nodes replacing the node (in order). */
  nodes: NodeP[];
  inits: TensorP[];
  summary: Partial<OnnxNodeSummary>;
}

function f32Bytes(t: TensorP | null): number {
  return t ? t.dims.reduce<number>((a, b) => a * num(b), 1) * 4 : 0;
}
function bytesOf(...ts: TensorP[]): number {
  return ts.reduce((a, t) => a + (t.rawData?.length ?? 0), 0);
}

/** A float constant input of a node: its TensorProto and values, or a reason it is not one. */
function floatConst(ctx: Ctx, gi: GraphIndex, name: string, what: string): { t: TensorP; v: Float32Array; dims: number[] } | string {
  if (!name) return `no ${what}`;
  const t = gi.constant(name);
  if (!t) return `${what} '${name}' is not a constant (an initializer or Constant node)`;
  if (t.dataType !== DT.FLOAT) return `${what} '${name}' is ${dtypeName(t.dataType)}, not float32`;
  const v = floatValue(t, ctx.lm, `initializer '${name}'`)!;
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return `${what} '${name}' has a non-finite value (${v[i]}) at element ${i}`;
  return { t, v, dims: t.dims.map((d) => num(d)) };
}

// ---- dynamic ------------------------------------------------------------------------------------------

function dynamicNode(ctx: Ctx, gi: GraphIndex, n: NodeP, dql: Map<string, [string, string, string]>, pre: NodeP[]): Rewrite | string {
  const op = n.opType!;
  const base = n.name || n.output[0];
  const A = n.input[0];
  let W: Float32Array, K: number, N: number;
  let wConst: TensorP;
  let biasAdd: { c: string | Float32Array; cDims: number[] } | null = null;
  if (op === 'Conv') return ctx.opt.dynamicConv === 'integer' ? dynamicConv(ctx, gi, n, dql, pre) : convWeightQdq(ctx, gi, n);
  if (op === 'MatMul') {
    const w = floatConst(ctx, gi, n.input[1], 'weight (input B)');
    if (typeof w === 'string') return w;
    if (w.dims.length !== 2) return `weight '${n.input[1]}' has rank ${w.dims.length} (2-D weights only)`;
    [K, N] = w.dims;
    W = w.v;
    wConst = w.t;
  } else {
    if (attrInt(n, 'transA', 0) !== 0) return 'Gemm with transA = 1 is left float';
    const w = floatConst(ctx, gi, n.input[1], 'weight (input B)');
    if (typeof w === 'string') return w;
    if (w.dims.length !== 2) return `weight '${n.input[1]}' has rank ${w.dims.length}`;
    wConst = w.t;
    const alpha = attrFloat(n, 'alpha', 1);
    const transB = attrInt(n, 'transB', 0) !== 0;
    W = transB ? transpose2d(w.v, w.dims[0], w.dims[1]) : w.v.slice();
    [K, N] = transB ? [w.dims[1], w.dims[0]] : w.dims;
    if (alpha !== 1) for (let i = 0; i < W.length; i++) W[i] = Math.fround(W[i] * alpha);
    if (n.input[2]) {
      const beta = attrFloat(n, 'beta', 1);
      const c = gi.constant(n.input[2]);
      if (c && c.dataType === DT.FLOAT) {
        const cv = floatValue(c, ctx.lm, `initializer '${n.input[2]}'`)!.slice();
        if (beta !== 1) for (let i = 0; i < cv.length; i++) cv[i] = Math.fround(cv[i] * beta);
        biasAdd = { c: cv, cDims: c.dims.map((d) => num(d)) };
      } else if (beta === 1) biasAdd = { c: n.input[2], cDims: [] };
      else return 'Gemm with a non-constant C and beta != 1 is left float';
    }
  }
  const axis = ctx.opt.perChannel ? 1 : null;
  let made: TensorP[] = [];
  const key = `mmi|${n.input[1]}|${op === 'Gemm' ? `${attrInt(n, 'transB', 0)}|${attrFloat(n, 'alpha', 1)}` : ''}`;
  const { names: [wqName, wsName, wzName], fresh } = cachedWeight(ctx, gi, key, () => {
    const qw = quantizeWeight8(W, [K, N], axis, ctx.opt.weightType);
    const wq = tensorInit(ctx.names.fresh(`${n.input[1]}_quantized`), ctx.opt.weightType === 'int8' ? DT.INT8 : DT.UINT8, [K, N], qw.codes);
    const ws = tensorInit(ctx.names.fresh(`${n.input[1]}_scale`), DT.FLOAT, axis === null ? [] : [N], qw.q.scale);
    // Symmetric int8: one zero point 0 for every column (scales stay per column: they are applied after the integer product).
    const sym = ctx.opt.weightType === 'int8';
    const zpData = sym ? Int8Array.of(0) : Uint8Array.from(qw.q.zeroPoint);
    const wz = tensorInit(ctx.names.fresh(`${n.input[1]}_zero_point`), sym ? DT.INT8 : DT.UINT8, sym || axis === null ? [] : [N], zpData);
    made = [wq, ws, wz];
    return [wq.name!, ws.name!, wz.name!];
  });
  const [aq, as, az] = dqlFor(ctx, A, dql, pre);
  const yi = ctx.names.fresh(`${base}_MatMulInteger_output`);
  const sc = ctx.names.fresh(`${base}_scales_mul`);
  const yf = ctx.names.fresh(`${base}_output_float`);
  const out = n.output[0];
  const ym = biasAdd ? ctx.names.fresh(`${base}_MatMul_output`) : out;
  const nodes: NodeP[] = [
    makeNode('MatMulInteger', [aq, wqName, az, wzName], [yi], ctx.names.fresh(`${base}_MatMulInteger`)),
    makeNode('Mul', [as, wsName], [sc], ctx.names.fresh(`${base}_scales_mul`)),
    makeNode('Cast', [yi], [yf], ctx.names.fresh(`${base}_cast`), [intAttr('to', DT.FLOAT)]),
    makeNode('Mul', [yf, sc], [ym], ctx.names.fresh(`${base}_scale_mul`)),
  ];
  const inits = made;
  if (biasAdd) {
    let cName: string;
    if (typeof biasAdd.c === 'string') cName = biasAdd.c;
    else {
      const ct = tensorInit(ctx.names.fresh(`${n.input[2]}_bias`), DT.FLOAT, biasAdd.cDims, biasAdd.c);
      inits.push(ct);
      cName = ct.name!;
      ctx.replaced.add(n.input[2]);
    }
    nodes.push(makeNode('Add', [ym, cName], [out], ctx.names.fresh(`${base}_bias_add`)));
  }
  ctx.replaced.add(n.input[1]);
  const gran = axis === null ? 'per-tensor' : 'per-channel';
  return {
    nodes, inits,
    summary: {
      as: 'DynamicQuantizeLinear + MatMulInteger', bytesBefore: fresh ? f32Bytes(wConst) : 0, bytesAfter: bytesOf(...made),
      weight: { name: n.input[1], shape: [K, N], type: ctx.opt.weightType, granularity: gran, bits: 8 },
    },
  };
}

function dqlFor(ctx: Ctx, A: string, dql: Map<string, [string, string, string]>, pre: NodeP[]): [string, string, string] {
  let d = dql.get(A);
  if (!d) {
    d = [ctx.names.fresh(`${A}_quantized`), ctx.names.fresh(`${A}_scale`), ctx.names.fresh(`${A}_zero_point`)];
    pre.push(makeNode('DynamicQuantizeLinear', [A], [...d], ctx.names.fresh(`${A}_DynamicQuantizeLinear`)));
    dql.set(A, d);
  }
  return d;
}

function dynamicConv(ctx: Ctx, gi: GraphIndex, n: NodeP, dql: Map<string, [string, string, string]>, pre: NodeP[]): Rewrite | string {
  const w = floatConst(ctx, gi, n.input[1], 'weight (input W)');
  if (typeof w === 'string') return w;
  if (w.dims.length < 3) return `weight '${n.input[1]}' has rank ${w.dims.length}`;
  const M = w.dims[0];
  const base = n.name || n.output[0];
  // ONNX Runtime's ConvInteger takes one weight zero point: per-channel scales need symmetric int8 weights (zero point 0).
  const axis = ctx.opt.perChannel && ctx.opt.weightType === 'int8' ? 0 : null;
  const qw = quantizeWeight8(w.v, w.dims, axis, ctx.opt.weightType);
  const wt = ctx.opt.weightType === 'int8' ? DT.INT8 : DT.UINT8;
  const wq = tensorInit(ctx.names.fresh(`${n.input[1]}_quantized`), wt, w.dims, qw.codes);
  const wz = tensorInit(ctx.names.fresh(`${n.input[1]}_zero_point`), wt, [],
    ctx.opt.weightType === 'int8' ? Int8Array.of(0) : Uint8Array.of(qw.q.zeroPoint[0]));
  // Scales broadcast over [batch, M, spatial...]: shape [M, 1, ...].
  const bshape = [M, ...w.dims.slice(2).map(() => 1)];
  const ws = tensorInit(ctx.names.fresh(`${n.input[1]}_scale`), DT.FLOAT, axis === null ? [] : bshape, qw.q.scale);
  const [xq, xs, xz] = dqlFor(ctx, n.input[0], dql, pre);
  const yi = ctx.names.fresh(`${base}_ConvInteger_output`);
  const sc = ctx.names.fresh(`${base}_scales_mul`);
  const yf = ctx.names.fresh(`${base}_output_float`);
  const out = n.output[0];
  const hasBias = Boolean(n.input[2]);
  const ym = hasBias ? ctx.names.fresh(`${base}_Conv_output`) : out;
  const attrs = n.attribute.filter((a) => ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'].includes(a.name ?? ''));
  const nodes: NodeP[] = [
    makeNode('ConvInteger', [xq, wq.name!, xz, wz.name!], [yi], ctx.names.fresh(`${base}_ConvInteger`), attrs),
    makeNode('Mul', [xs, ws.name!], [sc], ctx.names.fresh(`${base}_scales_mul`)),
    makeNode('Cast', [yi], [yf], ctx.names.fresh(`${base}_cast`), [intAttr('to', DT.FLOAT)]),
    makeNode('Mul', [yf, sc], [ym], ctx.names.fresh(`${base}_scale_mul`)),
  ];
  const inits = [wq, ws, wz];
  let bBefore = 0, bAfter = 0;
  if (hasBias) {
    const b = floatConst(ctx, gi, n.input[2], 'bias (input B)');
    let bName: string;
    if (typeof b === 'string') {
      // A computed bias: reshape it at run time.
      const shp = tensorInit(ctx.names.fresh(`${base}_bias_shape`), DT.INT64, [bshape.length], BigInt64Array.from(bshape.map((d, i) => BigInt(i === 0 ? -1 : d))));
      inits.push(shp);
      bName = ctx.names.fresh(`${base}_bias_reshaped`);
      nodes.push(makeNode('Reshape', [n.input[2], shp.name!], [bName], ctx.names.fresh(`${base}_bias_reshape`)));
    } else {
      const bt = tensorInit(ctx.names.fresh(`${n.input[2]}_reshaped`), DT.FLOAT, bshape, b.v);
      inits.push(bt);
      bName = bt.name!;
      ctx.replaced.add(n.input[2]);
      bBefore = f32Bytes(b.t);
      bAfter = bytesOf(bt);
    }
    nodes.push(makeNode('Add', [ym, bName], [out], ctx.names.fresh(`${base}_bias_add`)));
  }
  ctx.replaced.add(n.input[1]);
  return {
    nodes, inits,
    summary: {
      as: 'DynamicQuantizeLinear + ConvInteger', bytesBefore: f32Bytes(w.t) + bBefore, bytesAfter: bytesOf(wq, ws, wz) + bAfter,
      weight: { name: n.input[1], shape: w.dims, type: ctx.opt.weightType, granularity: axis === null ? 'per-tensor' : 'per-channel', bits: 8 },
    },
  };
}

/** Conv with its weight int8 per output channel through DequantizeLinear (float activations). */
function convWeightQdq(ctx: Ctx, gi: GraphIndex, n: NodeP): Rewrite | string {
  const w = floatConst(ctx, gi, n.input[1], 'weight (input W)');
  if (typeof w === 'string') return w;
  if (w.dims.length < 3) return `weight '${n.input[1]}' has rank ${w.dims.length}`;
  const axis = ctx.opt.perChannel && ctx.perAxisOk ? 0 : null;
  const qw = quantizeWeight8(w.v, w.dims, axis, ctx.opt.weightType);
  const wt = ctx.opt.weightType === 'int8' ? DT.INT8 : DT.UINT8;
  const C = axis === null ? 1 : w.dims[0];
  const wq = tensorInit(ctx.names.fresh(`${n.input[1]}_quantized`), wt, w.dims, qw.codes);
  const ws = tensorInit(ctx.names.fresh(`${n.input[1]}_scale`), DT.FLOAT, axis === null ? [] : [C], qw.q.scale);
  const wz = tensorInit(ctx.names.fresh(`${n.input[1]}_zero_point`), wt, axis === null ? [] : [C],
    wt === DT.INT8 ? Int8Array.from(qw.q.zeroPoint) : Uint8Array.from(qw.q.zeroPoint));
  const wd = ctx.names.fresh(`${n.input[1]}_DequantizeLinear_Output`);
  const dq = makeNode('DequantizeLinear', [wq.name!, ws.name!, wz.name!], [wd], ctx.names.fresh(`${n.input[1]}_DequantizeLinear`), axis === null ? [] : [intAttr('axis', axis)]);
  ctx.replaced.add(n.input[1]);
  n.input[1] = wd;
  return {
    nodes: [dq, n], inits: [wq, ws, wz],
    summary: {
      as: 'DequantizeLinear weight + float Conv', bytesBefore: f32Bytes(w.t), bytesAfter: bytesOf(wq, ws, wz),
      weight: { name: wq.name!.replace(/_quantized$/, ''), shape: w.dims, type: ctx.opt.weightType, granularity: axis === null ? 'per-tensor' : 'per-channel', bits: 8 },
    },
  };
}

// ---- weight-only --------------------------------------------------------------------------------------

function weightOnlyNode(ctx: Ctx, gi: GraphIndex, n: NodeP): Rewrite | string {
  const op = n.opType!;
  const base = n.name || n.output[0];
  const w = floatConst(ctx, gi, n.input[1], 'weight (input B)');
  if (typeof w === 'string') return w;
  if (w.dims.length !== 2) return `weight '${n.input[1]}' has rank ${w.dims.length} (2-D weights only)`;
  let W: Float32Array, K: number, N: number;
  let c: { name: string | null; v: Float32Array | null; dims: number[] } | null = null;
  if (op === 'MatMul') {
    [K, N] = w.dims;
    W = w.v;
  } else {
    if (attrInt(n, 'transA', 0) !== 0) return 'Gemm with transA = 1 is left float';
    const transB = attrInt(n, 'transB', 0) !== 0;
    W = transB ? transpose2d(w.v, w.dims[0], w.dims[1]) : w.v.slice();
    [K, N] = transB ? [w.dims[1], w.dims[0]] : w.dims;
    const alpha = attrFloat(n, 'alpha', 1);
    if (alpha !== 1) for (let i = 0; i < W.length; i++) W[i] = Math.fround(W[i] * alpha);
    if (n.input[2]) {
      const beta = attrFloat(n, 'beta', 1);
      const ct = gi.constant(n.input[2]);
      if (ct && ct.dataType === DT.FLOAT) {
        const cv = floatValue(ct, ctx.lm, `initializer '${n.input[2]}'`)!.slice();
        if (beta !== 1) for (let i = 0; i < cv.length; i++) cv[i] = Math.fround(cv[i] * beta);
        c = { name: null, v: cv, dims: ct.dims.map((d) => num(d)) };
      } else if (beta === 1) c = { name: n.input[2], v: null, dims: [] };
      else return 'Gemm with a non-constant C and beta != 1 is left float';
    }
  }
  const out = n.output[0];
  const ym = c ? ctx.names.fresh(`${base}_MatMul_output`) : out;
  const nodes: NodeP[] = [];
  const inits: TensorP[] = [];
  const bs = ctx.opt.blockSize;
  let as: string;
  let bytesAfter = 0;
  const key = `wo|${n.input[1]}|${op === 'Gemm' ? `${attrInt(n, 'transB', 0)}|${attrFloat(n, 'alpha', 1)}` : ''}`;
  if (ctx.opt.wFormat === 'matmulnbits') {
    const { names } = cachedWeight(ctx, gi, key, () => {
      const p = quantizeMatMulNBits(W, K, N, { bits: ctx.opt.bits, blockSize: bs, symmetric: ctx.opt.symmetric });
      const kb = Math.ceil(K / bs);
      const bq = tensorInit(ctx.names.fresh(`${n.input[1]}_Q${ctx.opt.bits}`), DT.UINT8, [N, kb, (bs * ctx.opt.bits) / 8], p.B);
      const sc = tensorInit(ctx.names.fresh(`${n.input[1]}_scales`), DT.FLOAT, [N * kb], p.scales);
      inits.push(bq, sc);
      if (p.zeroPoints) inits.push(tensorInit(ctx.names.fresh(`${n.input[1]}_zero_points`), DT.UINT8, [p.zeroPoints.length], p.zeroPoints));
      return inits.map((t) => t.name!);
    });
    const attrs = [intAttr('K', K), intAttr('N', N), intAttr('bits', ctx.opt.bits), intAttr('block_size', bs)];
    if (ctx.opt.accuracyLevel) attrs.push(intAttr('accuracy_level', ctx.opt.accuracyLevel));
    nodes.push(makeNode('MatMulNBits', [n.input[0], ...names], [ym], ctx.names.fresh(`${base}_MatMulNBits`), attrs, 'com.microsoft'));
    ctx.addedDomains.add('com.microsoft');
    as = 'MatMulNBits';
  } else {
    // Blocked DequantizeLinear (opset 21): int4/uint4 (or int8/uint8 above 4 bits) codes [K, N] blocked along K.
    const { names: [wd] } = cachedWeight(ctx, gi, key, () => {
      const nb = ctx.opt.bits <= 4;
      const signed = ctx.opt.symmetric;
      const q = quantize(W, [K, N], {
        scheme: signed ? 'symmetric' : 'asymmetric', bits: ctx.opt.bits, signed, granularity: { axis: 0, blockSize: bs },
      });
      const dt = nb ? (signed ? DT.INT4 : DT.UINT4) : (signed ? DT.INT8 : DT.UINT8);
      const kb = Math.ceil(K / bs);
      const wq: TensorP = nb ? { ...makeTensor(ctx.names.fresh(`${n.input[1]}_quantized`), DT.UINT8, [K, N], q.data), dataType: dt }
        : tensorInit(ctx.names.fresh(`${n.input[1]}_quantized`), dt, [K, N], q.data);
      const sc = tensorInit(ctx.names.fresh(`${n.input[1]}_scale`), DT.FLOAT, [kb, N], q.scale);
      inits.push(wq, sc);
      const ins = [wq.name!, sc.name!];
      if (!signed) {
        const zcodes = Uint8Array.from(q.zeroPoint);
        const zp = nb ? makeTensor(ctx.names.fresh(`${n.input[1]}_zero_point`), DT.UINT4, [kb, N], zcodes)
          : tensorInit(ctx.names.fresh(`${n.input[1]}_zero_point`), DT.UINT8, [kb, N], zcodes);
        inits.push(zp);
        ins.push(zp.name!);
      }
      const out = ctx.names.fresh(`${n.input[1]}_dequantized`);
      nodes.push(makeNode('DequantizeLinear', ins, [out], ctx.names.fresh(`${base}_weight_DequantizeLinear`), [intAttr('axis', 0), intAttr('block_size', bs)]));
      return [out];
    });
    nodes.push(makeNode('MatMul', [n.input[0], wd], [ym], ctx.names.fresh(`${base}_MatMul`)));
    as = 'blocked DequantizeLinear + MatMul';
  }
  bytesAfter = bytesOf(...inits);
  if (c) {
    let cName = c.name;
    if (cName === null) {
      const ct = tensorInit(ctx.names.fresh(`${n.input[2]}_bias`), DT.FLOAT, c.dims, c.v!);
      inits.push(ct);
      cName = ct.name!;
      ctx.replaced.add(n.input[2]);
    }
    nodes.push(makeNode('Add', [ym, cName], [out], ctx.names.fresh(`${base}_bias_add`)));
  }
  ctx.replaced.add(n.input[1]);
  return {
    nodes, inits,
    summary: {
      as, bytesBefore: inits.length ? f32Bytes(w.t) : 0, bytesAfter,
      weight: { name: n.input[1], shape: w.dims, type: `${ctx.opt.symmetric ? 'int' : 'uint'}${ctx.opt.bits}`, granularity: `block ${bs}`, bits: ctx.opt.bits, blockSize: bs },
    },
  };
}

// ---- static (QDQ) -------------------------------------------------------------------------------------

interface StaticPlan {
  /** Node -> activation inputs to quantize. */
  nodes: Map<NodeP, string[]>;
  /** Every tensor that gets QuantizeLinear -> DequantizeLinear. */
  points: Set<string>;
  /** Tensor -> the tensor whose qparams it shares (itself for calibrated ones). */
  root: Map<string, string>;
}

function staticPlan(ctx: Ctx, gi: GraphIndex, why: Map<NodeP, string>): StaticPlan {
  const nodes = new Map<NodeP, string[]>();
  const points = new Set<string>();
  const g = gi.graph;
  for (const n of g.node) {
    const op = n.opType!;
    if (!ctx.opt.opTypes.has(op) || (n.domain ?? '') !== '') continue;
    if (n.name && ctx.opt.exclude.has(n.name)) { why.set(n, 'excluded (options.exclude)'); continue; }
    let acts: string[];
    if (op === 'Add') {
      if (n.input.length !== 2 || n.input.some((i) => !i || gi.constant(i) !== null)) { why.set(n, 'Add of a constant is left float (only Adds of two activations become QLinearAdd)'); continue; }
      acts = n.input.slice();
    } else if (op === 'MatMul') {
      const w = floatConst(ctx, gi, n.input[1], 'weight (input B)');
      if (typeof w !== 'string' && w.dims.length !== 2) { why.set(n, `weight '${n.input[1]}' has rank ${w.dims.length} (2-D weights only)`); continue; }
      if (typeof w === 'string' && gi.constant(n.input[1]) !== null) { why.set(n, w); continue; }
      acts = typeof w === 'string' ? [n.input[0], n.input[1]] : [n.input[0]];
      if (gi.constant(n.input[0]) !== null) { why.set(n, 'input A is a constant'); continue; }
    } else {
      if (op === 'Gemm' && attrInt(n, 'transA', 0) !== 0) { why.set(n, 'Gemm with transA = 1 is left float'); continue; }
      const w = floatConst(ctx, gi, n.input[1], op === 'Conv' ? 'weight (input W)' : 'weight (input B)');
      if (typeof w === 'string') { why.set(n, w); continue; }
      if (op === 'Conv' && w.dims.length < 3) { why.set(n, `weight of rank ${w.dims.length}`); continue; }
      if (op === 'Gemm' && w.dims.length !== 2) { why.set(n, `weight of rank ${w.dims.length}`); continue; }
      acts = [n.input[0]];
    }
    nodes.set(n, acts);
    for (const a of acts) points.add(a);
    // The output, moved past a Relu / Clip that is its only consumer (ORT folds those into the quantized range).
    let t = n.output[0];
    for (;;) {
      const cs = gi.consumers.get(t) ?? [];
      if (cs.length !== 1 || gi.graphOutputs.has(t) || gi.outerUses.has(t) || !REMOVABLE_ACT.has(cs[0].opType!) || (cs[0].domain ?? '') !== '') break;
      t = cs[0].output[0];
    }
    if (!gi.graphOutputs.has(t)) points.add(t);
  }
  // Shared scales through shape / pooling ops between quantized tensors.
  const root = new Map<string, string>();
  const find = (t: string): string => {
    const r = root.get(t);
    if (r !== undefined && r !== t) return find(r);
    return t;
  };
  for (const t of points) root.set(t, t);
  for (const t of points) {
    const p = gi.producer.get(t);
    if (p && SHARE_SCALE.has(p.opType!) && (p.domain ?? '') === '' && points.has(p.input[0]) && p.output.length === 1) root.set(t, p.input[0]);
  }
  for (const t of points) root.set(t, find(t));
  return { nodes, points, root };
}

// ---- main ---------------------------------------------------------------------------------------------

/**
 * Quantizes an ONNX model (a path or the bytes of a ModelProto). Returns the new model's bytes and
 * a summary of every node. Static mode runs the float model in onnxruntime-node on
 * options.calibrationData.
 */
export async function quantizeOnnx(model: string | Uint8Array, options: QuantizeOnnxOptions): Promise<{ model: Uint8Array; summary: OnnxQuantizeSummary }> {
  const opt = resolveOptions(options);
  const lm = readModel(model, { baseDir: opt.raw.baseDir } as LoadOptions);
  const externalBytes = inlineExternalData(lm);
  const m = lm.model;
  const ctx: Ctx = {
    lm, model: m, names: new Names(m), opt, nodes: [], notes: [], replaced: new Set(), addedDomains: new Set(), perAxisOk: true, wcache: new Map(),
  };
  const opsetBefore = opsetVersion(m, '');
  const irBefore = num(m.irVersion);
  const progress = opt.raw.onProgress;

  // The ai.onnx opset the output needs.
  let need = opt.mode === 'weight-only' ? (opt.wFormat === 'qdq' ? 21 : 1) : opt.mode === 'dynamic' ? 10 : (opt.perChannel ? 13 : 10);
  const usesConvQdq = opt.mode === 'dynamic' && opt.dynamicConv === 'qdq' && opt.opTypes.has('Conv') && allGraphs(m.graph!).some(({ graph }) => graph.node.some((n) => n.opType === 'Conv'));
  if ((opt.mode === 'static' || usesConvQdq) && opt.perChannel) {
    const r = raiseOpset(m, 13);
    if (!r.ok) {
      ctx.notes.push(`per-channel weights need opset 13 (DequantizeLinear axis); raising opset ${r.from} would change ${r.blockers.join(', ')}: weights quantized per tensor`);
      ctx.perAxisOk = false;
      need = 10;
    }
  }
  const raised = raiseOpset(m, need);
  let blocked: string | null = null;
  if (!raised.ok) blocked = `the output needs ai.onnx opset ${need} and raising it from ${raised.from} would change ${raised.blockers.join(', ')}`;
  else if (opsetVersion(m, '') !== opsetBefore) ctx.notes.push(`ai.onnx opset raised from ${opsetBefore} to ${opsetVersion(m, '')} (no operator of the model changes meaning between them)`);
  if (opt.mode === 'dynamic' && !opt.perChannel) ctx.perAxisOk = false;

  const graphs = allGraphs(m.graph!);
  const indices = new Map<GraphP, GraphIndex>();
  const parentOf = new Map<GraphP, GraphP | null>();
  // Parent graph of each subgraph: the graph holding its owner node.
  for (const { graph } of graphs) {
    for (const nd of graph.node) for (const a of nd.attribute) for (const sg of a.g ? [a.g] : a.graphs) parentOf.set(sg, graph);
  }
  const indexOf = (g: GraphP): GraphIndex => {
    let gi = indices.get(g);
    if (!gi) {
      const p = parentOf.get(g);
      gi = new GraphIndex(g, p ? indexOf(p) : null);
      indices.set(g, gi);
    }
    return gi;
  };

  // Static: plan and calibrate (main graph only: subgraph tensors cannot be exposed as outputs).
  let plan: StaticPlan | null = null;
  const why = new Map<NodeP, string>();
  const qparams = new Map<string, OnnxActQParams>();
  let calibration: OnnxQuantizeSummary['calibration'];
  if (opt.mode === 'static' && blocked === null) {
    const gi = indexOf(m.graph!);
    plan = staticPlan(ctx, gi, why);
    const roots = [...new Set(plan.root.values())];
    if (roots.length > 0) {
      const obsName = typeof opt.observer === 'function' ? 'custom' : opt.observer;
      const seen = new Set<unknown>();
      const cal = await calibrate(m, roots, opt.raw.calibrationData!, (t) => {
        const ob = makeActivationObserver(opt.observer, t, opt.activationType);
        if (seen.has(ob)) throw new TypeError(`Expected a new Observer for observer('${t}') but received one already given for another tensor`);
        seen.add(ob);
        const sp = ob.spec;
        const want = opt.activationType === 'uint8' ? [0, 255] : [-128, 127];
        if (sp.qmin !== want[0] || sp.qmax !== want[1] || sp.granularity !== 'per-tensor') {
          throw rangeError(`observer('${t}')`, `a per-tensor observer of ${opt.activationType} codes ${want[0]}..${want[1]}`, `codes ${sp.qmin}..${sp.qmax}, granularity ${JSON.stringify(sp.granularity)}`);
        }
        return ob;
      }, { onProgress: (d) => progress?.({ phase: 'calibrate', done: d, total: null }), sessionOptions: opt.raw.sessionOptions });
      calibration = { batches: cal.batches, observer: obsName, tensors: roots.length };
      for (const [t, ob] of cal.observers) {
        if (cal.notFloat.includes(t)) continue;
        const st = ob.stats();
        if (st.count - st.nanCount - st.infCount <= 0) { ctx.notes.push(`tensor '${t}' had no finite values in calibration: left float`); continue; }
        const q = ob.calculateQParams();
        const s = q.scale[0], z = q.zeroPoint[0];
        if (!(s > 0) || !Number.isFinite(s)) { ctx.notes.push(`tensor '${t}': observer gave scale ${s}: left float`); continue; }
        qparams.set(t, { scale: s, zeroPoint: z, type: opt.activationType });
      }
      for (const t of cal.notFloat) ctx.notes.push(`tensor '${t}' is not float32 at run time: left float`);
    }
  }

  let done = 0;
  for (const { graph, where, depth } of graphs) {
    const gi = indexOf(graph);
    const out: NodeP[] = [];
    const newInits: TensorP[] = [];
    const dql = new Map<string, [string, string, string]>();
    const isMain = depth === 0;
    // Static: Q/DQ of graph inputs first.
    const qdqOf = new Map<string, string>(); // tensor -> its dequantized name
    const emitQdq = (t: string): NodeP[] => {
      if (!plan || !isMain || !plan.points.has(t) || qdqOf.has(t)) return [];
      const qp = qparams.get(plan.root.get(t)!);
      if (!qp) return [];
      const s = scalarF32(ctx.names.fresh(`${t}_scale`), qp.scale);
      const z = tensorInit(ctx.names.fresh(`${t}_zero_point`), qp.type === 'uint8' ? DT.UINT8 : DT.INT8, [], qp.type === 'uint8' ? Uint8Array.of(qp.zeroPoint) : Int8Array.of(qp.zeroPoint));
      newInits.push(s, z);
      const tq = ctx.names.fresh(`${t}_QuantizeLinear_Output`);
      const td = ctx.names.fresh(`${t}_DequantizeLinear_Output`);
      qdqOf.set(t, td);
      return [
        makeNode('QuantizeLinear', [t, s.name!, z.name!], [tq], ctx.names.fresh(`${t}_QuantizeLinear`)),
        makeNode('DequantizeLinear', [tq, s.name!, z.name!], [td], ctx.names.fresh(`${t}_DequantizeLinear`)),
      ];
    };
    if (plan && isMain) for (const i of graph.input) if (i.name) out.push(...emitQdq(i.name));
    for (const n of graph.node) {
      const op = n.opType ?? '';
      const row: OnnxNodeSummary = { name: n.name ?? '', opType: op, graph: where, quantized: false, bytesBefore: 0, bytesAfter: 0 };
      ctx.nodes.push(row);
      progress?.({ phase: 'quantize', done: ++done, total: null });
      // Static: consumers read the dequantized activations.
      if (plan && isMain) n.input = n.input.map((i) => qdqOf.get(i) ?? i);
      const inScope = ctx.opt.opTypes.has(op) && (n.domain ?? '') === '';
      let rw: Rewrite | string | null = null;
      if (!inScope) {
        row.reason = reasonNotQuantized(op, n.domain ?? '', opt.mode);
      } else if (n.name && opt.exclude.has(n.name)) {
        row.reason = 'excluded (options.exclude)';
      } else if (blocked) {
        row.reason = blocked;
      } else if (opt.mode === 'dynamic') {
        const pre: NodeP[] = [];
        rw = dynamicNode(ctx, gi, n, dql, pre);
        out.push(...pre);
      } else if (opt.mode === 'weight-only') {
        rw = weightOnlyNode(ctx, gi, n);
      } else if (!isMain) {
        row.reason = 'inside a subgraph: its activations cannot be exposed to calibrate them (left float)';
      } else if (plan) {
        rw = why.has(n) ? why.get(n)! : staticNode(ctx, gi, n, plan, qparams, qdqOf);
      }
      if (typeof rw === 'string') {
        row.reason = rw;
        out.push(n);
      } else if (rw) {
        Object.assign(row, rw.summary, { quantized: true });
        out.push(...rw.nodes);
        newInits.push(...rw.inits);
      } else out.push(n);
      // Static: Q/DQ after the node for its outputs that are quantization points.
      if (plan && isMain) for (const o of n.output) out.push(...emitQdq(o));
    }
    // Graph outputs keep their float producers; only consumers were rewired.
    graph.node = out;
    graph.initializer.push(...newInits);
  }
  if (plan) {
    // Activation qparams into the summary rows of static nodes.
    for (const row of ctx.nodes) {
      if (!row.quantized || row.graph !== 'graph') continue;
      const n = [...plan.nodes.keys()].find((x) => (x.name ?? '') === row.name && x.opType === row.opType);
      if (!n) continue;
      const acts: Record<string, OnnxActQParams> = {};
      for (const t of [...plan.nodes.get(n)!, ...n.output]) {
        const qp = plan.root.has(t) ? qparams.get(plan.root.get(t)!) : undefined;
        if (qp) acts[t] = qp;
      }
      row.activations = acts;
    }
  }
  removeUnused(m, ctx.replaced);
  for (const d of ctx.addedDomains) if (opsetVersion(m, d) === null) setOpset(m, d, 1);
  if (ctx.addedDomains.size > 0 && num(m.irVersion) < 4) m.irVersion = 4;
  const bytes = encodeModel(m);
  const summary: OnnxQuantizeSummary = {
    mode: opt.mode,
    opset: { before: opsetBefore, after: opsetVersion(m, '') },
    irVersion: { before: irBefore, after: num(m.irVersion) },
    addedDomains: [...ctx.addedDomains],
    nodes: ctx.nodes,
    quantizedNodes: ctx.nodes.filter((r) => r.quantized).length,
    bytesBefore: lm.bytes + externalBytes,
    bytesAfter: bytes.length,
    notes: ctx.notes,
  };
  if (calibration) summary.calibration = calibration;
  return { model: bytes, summary };
}

function staticNode(ctx: Ctx, gi: GraphIndex, n: NodeP, plan: StaticPlan, qparams: Map<string, OnnxActQParams>, qdqOf: Map<string, string>): Rewrite | string {
  const acts = plan.nodes.get(n);
  if (!acts) return 'not planned';
  for (const a of acts) {
    if (!qparams.has(plan.root.get(a)!)) return `input '${a}' was not calibrated`;
    if (!qdqOf.has(a)) return `input '${a}' has no QuantizeLinear (internal)`;
  }
  const op = n.opType!;
  if (op === 'Add' || (op === 'MatMul' && acts.length === 2)) {
    return { nodes: [n], inits: [], summary: { as: 'QDQ (activations)', bytesBefore: 0, bytesAfter: 0 } };
  }
  const base = n.name || n.output[0];
  const sIn = qparams.get(plan.root.get(acts[0])!)!.scale;
  const w = floatConst(ctx, gi, n.input[1], 'weight')!;
  if (typeof w === 'string') return w;
  let W = w.v;
  const dims = w.dims;
  let axis: number | null;
  let biasV: Float32Array | null = null;
  let biasT: TensorP | null = null;
  if (op === 'Conv') {
    axis = 0;
    if (n.input[2]) {
      const b = floatConst(ctx, gi, n.input[2], 'bias');
      if (typeof b !== 'string' && b.dims.length === 1 && b.dims[0] === dims[0]) { biasV = b.v; biasT = b.t; }
    }
  } else if (op === 'Gemm') {
    const transB = attrInt(n, 'transB', 0) !== 0;
    axis = transB ? 0 : 1;
    const alpha = attrFloat(n, 'alpha', 1);
    if (alpha !== 1) {
      W = Float32Array.from(W, (v) => Math.fround(v * alpha));
      n.attribute = n.attribute.filter((a) => a.name !== 'alpha');
    }
    const N = transB ? dims[0] : dims[1];
    if (n.input[2]) {
      const b = floatConst(ctx, gi, n.input[2], 'bias');
      const beta = attrFloat(n, 'beta', 1);
      if (typeof b !== 'string' && b.dims.length === 1 && b.dims[0] === N) {
        biasV = beta === 1 ? b.v : Float32Array.from(b.v, (v) => Math.fround(v * beta));
        biasT = b.t;
        if (beta !== 1) n.attribute = n.attribute.filter((a) => a.name !== 'beta');
      }
    }
  } else {
    axis = 1;
  }
  if (!ctx.perAxisOk || !ctx.opt.perChannel) axis = null;
  let qw = quantizeWeight8(W, dims, axis, ctx.opt.weightType);
  if (biasV && ctx.opt.weightType === 'int8') {
    const widened = widenForBias(qw.q.scale, biasV, sIn);
    if (widened) {
      qw = quantizeWeight8(W, dims, axis, ctx.opt.weightType, widened);
      ctx.notes.push(`node '${base}': weight scales widened so the int32 bias fits`);
    }
  }
  const wt = ctx.opt.weightType === 'int8' ? DT.INT8 : DT.UINT8;
  const C = axis === null ? 1 : dims[axis];
  const wq = tensorInit(ctx.names.fresh(`${n.input[1]}_quantized`), wt, dims, qw.codes);
  const ws = tensorInit(ctx.names.fresh(`${n.input[1]}_scale`), DT.FLOAT, axis === null ? [] : [C], qw.q.scale);
  const wz = tensorInit(ctx.names.fresh(`${n.input[1]}_zero_point`), wt, axis === null ? [] : [C],
    wt === DT.INT8 ? Int8Array.from(qw.q.zeroPoint) : Uint8Array.from(qw.q.zeroPoint));
  const wd = ctx.names.fresh(`${n.input[1]}_DequantizeLinear_Output`);
  const nodes: NodeP[] = [
    makeNode('DequantizeLinear', [wq.name!, ws.name!, wz.name!], [wd], ctx.names.fresh(`${n.input[1]}_DequantizeLinear`), axis === null ? [] : [intAttr('axis', axis)]),
  ];
  const inits = [wq, ws, wz];
  n.input[1] = wd;
  let bBefore = 0, bAfter = 0;
  if (biasV && biasT) {
    const { q: bq, scale: bs } = quantizeBias(biasV, sIn, qw.q.scale);
    const perCh = qw.q.scale.length > 1;
    const bqi = tensorInit(ctx.names.fresh(`${n.input[2]}_quantized`), DT.INT32, [bq.length], bq);
    const bsi = tensorInit(ctx.names.fresh(`${n.input[2]}_scale`), DT.FLOAT, perCh ? [bs.length] : [], perCh ? bs : bs.subarray(0, 1));
    const bzi = tensorInit(ctx.names.fresh(`${n.input[2]}_zero_point`), DT.INT32, perCh ? [bs.length] : [], new Int32Array(perCh ? bs.length : 1));
    const bd = ctx.names.fresh(`${n.input[2]}_DequantizeLinear_Output`);
    nodes.push(makeNode('DequantizeLinear', [bqi.name!, bsi.name!, bzi.name!], [bd], ctx.names.fresh(`${n.input[2]}_DequantizeLinear`), perCh ? [intAttr('axis', 0)] : []));
    inits.push(bqi, bsi, bzi);
    ctx.replaced.add(n.input[2]);
    n.input[2] = bd;
    bBefore = f32Bytes(biasT);
    bAfter = bytesOf(bqi, bsi, bzi);
  }
  ctx.replaced.add(w.t.name ?? '');
  nodes.push(n);
  return {
    nodes, inits,
    summary: {
      as: 'QDQ', bytesBefore: f32Bytes(w.t) + bBefore, bytesAfter: bytesOf(wq, ws, wz) + bAfter,
      weight: { name: w.t.name ?? '', shape: dims, type: ctx.opt.weightType, granularity: axis === null ? 'per-tensor' : 'per-channel', bits: 8 },
    },
  };
}

function reasonNotQuantized(op: string, domain: string, mode: OnnxQuantMode): string {
  if (domain !== '' && domain !== 'ai.onnx') return `operator of domain '${domain}': left as is`;
  if (op === 'LSTM' || op === 'GRU' || op === 'RNN') return `${op} is not quantized (no ai.onnx integer form; left float)`;
  if (SUPPORTED_OPS[mode].includes(op)) return `not in options.opTypes`;
  return `${op} is not quantized in mode '${mode}'`;
}

/** Drops replaced constants (initializers, Constant nodes, graph inputs of IR < 4) that nothing reads any more. */
function removeUnused(m: ModelP, replaced: Set<string>): void {
  if (replaced.size === 0) return;
  const used = new Set<string>();
  for (const { graph } of allGraphs(m.graph!)) {
    for (const n of graph.node) for (const i of n.input) used.add(i);
    for (const o of graph.output) if (o.name) used.add(o.name);
  }
  for (const { graph } of allGraphs(m.graph!)) {
    graph.initializer = graph.initializer.filter((t) => !(replaced.has(t.name ?? '') && !used.has(t.name ?? '')));
    graph.node = graph.node.filter((n) => !(n.opType === 'Constant' && n.output.length === 1 && replaced.has(n.output[0]) && !used.has(n.output[0])));
    const inits = new Set(graph.initializer.map((t) => t.name));
    graph.input = graph.input.filter((v) => !(replaced.has(v.name ?? '') && !used.has(v.name ?? '') && !inits.has(v.name)));
  }
}

/** Loads external data into raw_data (quantizing reads and rewrites the weights anyway). */
export function inlineExternalData(lm: LoadedModel): number {
  let ext = 0;
  for (const { graph, where } of allGraphs(lm.model.graph!)) {
    for (const [i, t] of graph.initializer.entries()) {
      if (t.dataLocation === 1 || t.externalData.length > 0) {
        const v = tensorValue(t, lm, `${where}.initializer[${i}] '${t.name ?? ''}'`);
        const fresh = makeTensor(t.name ?? '', t.dataType!, v.dims, v.data);
        ext += fresh.rawData!.length;
        graph.initializer[i] = fresh;
      }
    }
  }
  return ext;
}
