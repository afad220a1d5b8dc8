// Int8 GEMM: ONNX MatMulInteger / QLinearMatMul, packed weights with fused epilogues, and
// dynamic-quantized linear layers. Numerics: native/core/gemm.h (and docs).
//
//   int32 results are exact (ONNX MatMulInteger). A call whose K could overflow the int32
//   accumulator (K * max|a - aZeroPoint| * max|b - bZeroPoint| > 2^31 - 1 over the dtype ranges)
//   throws a RangeError naming K instead of returning a wrapped value.
//   'float32' output: y = float32(acc) * (aScale[i] * bScale[j]) + bias[j] in float32, in that
//   order (no FMA); ReLU y > 0 ? y : 0. Identical bits on every kernel path.
//   'int8' / 'uint8' output: ONNX QLinearMatMul's reference: multiplier aScale * bScale / outScale
//   in float32, y = round_half_even((float64(acc) + bias[j]) * multiplier + outZeroPoint),
//   saturated (ReLU raises the lower bound to outZeroPoint); the optional bias is int32 with scale
//   aScale * bScale[j] and zero point 0 (ONNX QLinearConv / QGemm), 0 when none.
import { checkBias, checkBool, checkDim, checkScaleNumber, checkScales, checkZeroPoints, outArray } from './args';
import { checkInt, checkOneOf, checkOptions, checkTyped, describe, isTypedOf, rangeError, typeError } from './errors';
import * as native from './native';

export type GemmDtype = 'int8' | 'uint8';
export type GemmOutput = 'int32' | 'float32' | 'int8' | 'uint8';
export type GemmZeroPoint = number | Int32Array | Int8Array | Uint8Array;
type Codes = Int8Array | Uint8Array;

const CODES = [Int8Array, Uint8Array] as const;
interface Internals { handle: native.PackedHandle; zeroPoint: number | Int32Array; scale: number | Float32Array }
const internals = new WeakMap<PackedWeights, Internals>();

function dtypeOf(v: Codes): GemmDtype {
  return isTypedOf(v, 'Int8Array') ? 'int8' : 'uint8';
}

function checkCodes(name: string, v: unknown, dtype?: unknown): Codes {
  const c = checkTyped<Codes>(name, v, CODES);
  if (dtype !== undefined) {
    const d = checkOneOf(`opts.dtype`, dtype, ['int8', 'uint8'] as const);
    if (d !== dtypeOf(c)) throw typeError(name, d === 'int8' ? 'Int8Array (dtype int8)' : 'Uint8Array (dtype uint8)', v);
  }
  return c;
}

/** Zero points of codes of `dtype`: one, or `count` (one per row / column, as `what` says). */
function checkZeroPoint(name: string, v: unknown, dtype: GemmDtype, count: number, what: string): GemmZeroPoint {
  if (v === undefined) return 0;
  return dtype === 'int8' ? checkZeroPoints(name, v, -128, 127, count, true, what, undefined) : checkZeroPoints(name, v, 0, 255, count, true, what, undefined);
}

/** Rows M from the options or from the input length; checks length = M * K. */
function rowsOf(name: string, v: { length: number; constructor: { name: string } }, K: number, M: unknown): number {
  if (M === undefined) {
    if (v.length % K !== 0) throw rangeError(name, `a length that is a multiple of K = ${K}`, `${v.constructor.name} of length ${v.length}`);
    return v.length / K;
  }
  const m = checkDim('opts.M', M, 0);
  if (v.length !== m * K) throw rangeError(name, `length M * K = ${m * K}`, `${v.constructor.name} of length ${v.length}`);
  return m;
}

export interface PackWeightsOptions {
  /** Rows of B (the reduction dimension). */
  K: number;
  /** Columns of B (output features). */
  N: number;
  /** 'int8' or 'uint8'; must match b's type (default: from b's type). */
  dtype?: GemmDtype;
  /** b is N x K (PyTorch Linear's weight layout) instead of K x N. */
  transposed?: boolean;
  /** Zero point of B: one, or one per column (N). Default 0. */
  zeroPoint?: GemmZeroPoint;
  /** Scale of B: one, or one per column (N). Used by the float32 / int8 / uint8 outputs. Default 1. */
  scale?: number | Float32Array;
}

/**
 * B re-laid out once for the int8 kernels (64-column panels, K in groups of 4), with its column
 * sums, zero points and scales. Immutable; usable from any thread and by calls in flight together;
 * freed by the garbage collector (its native size is reported to the GC).
 */
export class PackedWeights {
  readonly K: number;
  readonly N: number;
  readonly dtype: GemmDtype;
  readonly transposed: boolean;
  /** Bytes held natively (packed B, column sums and qparams). */
  readonly byteLength: number;
  /** The zero point(s) given to packWeights (a fresh copy each time). */
  get zeroPoint(): number | Int32Array {
    const z = internals.get(this)!.zeroPoint;
    return typeof z === 'number' ? z : z.slice();
  }

  /** The scale(s) given to packWeights (a fresh copy each time). */
  get scale(): number | Float32Array {
    const s = internals.get(this)!.scale;
    return typeof s === 'number' ? s : s.slice();
  }

  private constructor(handle: native.PackedHandle, byteLength: number, K: number, N: number, dtype: GemmDtype, transposed: boolean,
    zeroPoint: number | Int32Array, scale: number | Float32Array) {
    this.K = K;
    this.N = N;
    this.dtype = dtype;
    this.transposed = transposed;
    this.byteLength = byteLength;
    internals.set(this, { handle, zeroPoint, scale });
    Object.freeze(this);
  }

  /** @internal */
  static create(b: Codes, o: { K: number; N: number; transposed: boolean; zeroPoint: GemmZeroPoint; scale: number | Float32Array }): PackedWeights {
    const dtype = dtypeOf(b);
    const { handle, byteLength } = native.gemmPack({
      b, signed: dtype === 'int8', K: o.K, N: o.N, transposed: o.transposed, zeroPoint: o.zeroPoint, scale: o.scale,
    });
    const zp = typeof o.zeroPoint === 'number' ? o.zeroPoint : Int32Array.from(o.zeroPoint);
    const sc = typeof o.scale === 'number' ? o.scale : Float32Array.from(o.scale);
    return new PackedWeights(handle, byteLength, o.K, o.N, dtype, o.transposed, zp, sc);
  }
}

/**
 * @internal The native handle of packed weights, for callers of lib/native.ts that checked their
 * arguments already (QuantizedModel's stages).
 */
export function packedHandle(p: PackedWeights): native.PackedHandle {
  return handleOf(p);
}

function handleOf(p: unknown): native.PackedHandle {
  const h = p instanceof PackedWeights ? internals.get(p) : undefined;
  if (h === undefined) throw typeError('packed', 'PackedWeights (from packWeights)', p);
  return h.handle;
}

const PACK_OPTS = ['K', 'N', 'dtype', 'transposed', 'zeroPoint', 'scale'] as const;

/** Packs B (K x N, or N x K with transposed) for gemm / linearDynamic. */
export function packWeights(b: Int8Array | Uint8Array, opts: PackWeightsOptions): PackedWeights {
  const codes = checkCodes('b', b);
  if (opts === undefined || opts === null) throw typeError('opts', 'an options object with K and N', opts);
  const o = checkOptions('opts', opts, PACK_OPTS);
  if (o.dtype !== undefined) checkCodes('b', b, o.dtype);
  const K = checkDim('opts.K', o.K);
  const N = checkDim('opts.N', o.N);
  if (codes.length !== K * N) throw rangeError('b', `length K * N = ${K * N}`, describe(codes));
  const transposed = checkBool('opts.transposed', o.transposed);
  const zeroPoint = checkZeroPoint('opts.zeroPoint', o.zeroPoint, dtypeOf(codes), N, 'one per column');
  const scale = o.scale === undefined ? 1 : checkScales('opts.scale', o.scale, N, true, 'one per column');
  return PackedWeights.create(codes, { K, N, transposed, zeroPoint, scale });
}

export interface GemmOptions {
  /** Rows of A (default: a.length / K). */
  M?: number;
  /** Zero point of A: one, or one per row (M). Default 0. */
  aZeroPoint?: GemmZeroPoint;
  /** Scale of A: one, or one per row (M). Default 1. Used by the float32 / int8 / uint8 outputs. */
  aScale?: number | Float32Array;
  /** 'int32' (default: the exact accumulator), 'float32', 'int8' or 'uint8' (requantized). */
  output?: GemmOutput;
  /**
   * Added per column (N). output 'float32': a Float32Array added to y. output 'int8' / 'uint8': an
   * Int32Array quantized with scale aScale * bScale[j] and zero point 0 (the ONNX QLinearConv /
   * QGemm convention), added to the int32 accumulator (exactly, in float64) before requantization.
   * Not allowed with output 'int32'.
   */
  bias?: Float32Array | Int32Array;
  /** int8 / uint8 output: scale and zero point of the output. */
  outScale?: number;
  outZeroPoint?: number;
  /** float32 / int8 / uint8 outputs: clamp at 0 (at outZeroPoint for int8 / uint8). */
  relu?: boolean;
  /** Output to fill (M * N elements of the output's type) instead of allocating. */
  out?: Int32Array | Float32Array | Int8Array | Uint8Array;
}

const GEMM_OPTS = ['M', 'aZeroPoint', 'aScale', 'output', 'bias', 'outScale', 'outZeroPoint', 'relu', 'out'] as const;
const OUT_KIND = {
  int32: native.OutputKind.Int32, float32: native.OutputKind.Float32, int8: native.OutputKind.Int8, uint8: native.OutputKind.Uint8,
} as const;
const OUT_CTORS = { int32: [Int32Array], float32: [Float32Array], int8: [Int8Array], uint8: [Uint8Array] } as const;

type GemmResult<O extends GemmOptions | undefined> = O extends { output: 'float32' } ? Float32Array
  : O extends { output: 'int8' } ? Int8Array : O extends { output: 'uint8' } ? Uint8Array
  : O extends { output: GemmOutput } ? Int32Array | Float32Array | Int8Array | Uint8Array : Int32Array;

function gemmArgs(a: unknown, packed: unknown, opts: unknown, async = false): native.GemmArgs {
  const codes = checkCodes('a', a);
  const h = handleOf(packed);
  const p = packed as PackedWeights;
  const o = checkOptions('opts', opts, GEMM_OPTS);
  const M = rowsOf('a', codes, p.K, o.M);
  const dtype = dtypeOf(codes);
  const output = o.output === undefined ? 'int32' : checkOneOf('opts.output', o.output, ['int32', 'float32', 'int8', 'uint8'] as const);
  const aZeroPoint = checkZeroPoint('opts.aZeroPoint', o.aZeroPoint, dtype, M, 'one per row');
  const aScale = o.aScale === undefined ? null : checkScales('opts.aScale', o.aScale, M, true, 'one per row');
  if (output === 'int32') {
    for (const k of ['aScale', 'bias', 'relu', 'outScale', 'outZeroPoint'] as const) {
      if (o[k] !== undefined) throw new TypeError(`Option '${k}' needs output 'float32', 'int8' or 'uint8'; output is 'int32'`);
    }
  }
  let bias: Float32Array | Int32Array | null = null;
  if (o.bias !== undefined) {
    if (output !== 'float32' && !isTypedOf(o.bias, 'Int32Array')) {
      throw typeError('opts.bias', `Int32Array (output '${output}' bias, scale aScale * bScale, zero point 0)`, o.bias);
    }
    bias = output === 'float32' ? checkBias('opts.bias', o.bias, 'Float32Array', p.N) : checkBias('opts.bias', o.bias, 'Int32Array', p.N);
  }
  let outScale = 1;
  let outZeroPoint = 0;
  if (output === 'int8' || output === 'uint8') {
    if (o.outScale === undefined) throw typeError('opts.outScale', `a positive finite number (needed by output '${output}')`, undefined);
    outScale = checkScaleNumber('opts.outScale', o.outScale);
    const [lo, hi] = output === 'int8' ? [-128, 127] : [0, 255];
    outZeroPoint = o.outZeroPoint === undefined ? 0 : checkInt('opts.outZeroPoint', o.outZeroPoint, lo, hi);
  } else if (o.outScale !== undefined || o.outZeroPoint !== undefined) {
    throw new TypeError(`Options 'outScale' and 'outZeroPoint' need output 'int8' or 'uint8'; output is '${output}'`);
  }
  const relu = checkBool('opts.relu', o.relu);
  const out = outArray<ArrayBufferView>('opts.out', o.out, OUT_CTORS[output] as never, M * p.N, async);
  return {
    a: codes, aSigned: dtype === 'int8', M, packed: h, aZeroPoint, output: OUT_KIND[output], out, aScale, bias, relu, outScale, outZeroPoint,
  };
}

/**
 * A (M x K, int8 or uint8 codes) times packed B, with a fused epilogue: 'int32' (exact
 * accumulator), 'float32' (acc * aScale * bScale + bias, optional ReLU) or 'int8' / 'uint8'
 * (requantized as ONNX QLinearMatMul, after adding an optional int32 bias as QLinearConv / QGemm).
 * Runs on the shared thread pool (setNumThreads).
 */
export function gemm<O extends GemmOptions | undefined = undefined>(a: Int8Array | Uint8Array, packed: PackedWeights, opts?: O): GemmResult<O> {
  const g = gemmArgs(a, packed, opts);
  native.gemm(g);
  return g.out as GemmResult<O>;
}

/**
 * gemm off the event loop: the inputs are copied (natively) when the call is made, so changing,
 * detaching or transferring them afterwards is harmless; resolves to the output once done
 * (opts.out when given: filled when the work is done; a rejection if it was detached or resized
 * meanwhile).
 */
export function gemmAsync<O extends GemmOptions | undefined = undefined>(a: Int8Array | Uint8Array, packed: PackedWeights, opts?: O): Promise<GemmResult<O>> {
  try {
    return native.gemmAsync(gemmArgs(a, packed, opts, true)) as Promise<GemmResult<O>>;
  } catch (e) {
    return Promise.reject(e);
  }
}

export interface MatMulIntegerOptions {
  M?: number;
  K?: number;
  N?: number;
  /** One, or one per row of A (M). Default 0. */
  aZeroPoint?: GemmZeroPoint;
  /** One, or one per column of B (N). Default 0. */
  bZeroPoint?: GemmZeroPoint;
  out?: Int32Array;
}

const MMI_OPTS = ['M', 'K', 'N', 'aZeroPoint', 'bZeroPoint', 'out'] as const;

/** Works out M, K, N from the options and the lengths (two of them, or K alone when a and b allow it). */
function shapeOf(aLen: number, bLen: number, o: Record<string, unknown>): [number, number, number] {
  let K: number;
  if (o.K !== undefined) K = checkDim('opts.K', o.K);
  else if (o.M !== undefined) {
    const M = checkDim('opts.M', o.M);
    if (aLen % M !== 0) throw rangeError('a', `a length that is a multiple of M = ${M}`, `length ${aLen}`);
    K = aLen / M;
  } else if (o.N !== undefined) {
    const N = checkDim('opts.N', o.N);
    if (bLen % N !== 0) throw rangeError('b', `a length that is a multiple of N = ${N}`, `length ${bLen}`);
    K = bLen / N;
  } else {
    throw typeError('opts', 'an options object with K (or M or N)', o.K);
  }
  if (K < 1) throw rangeError('opts.K', 'a positive integer', String(K));
  if (bLen % K !== 0) throw rangeError('b', `a length that is a multiple of K = ${K}`, `length ${bLen}`);
  const N = bLen / K;
  if (o.N !== undefined && checkDim('opts.N', o.N) !== N) throw rangeError('b', `length K * N = ${K * (o.N as number)}`, `length ${bLen}`);
  if (aLen % K !== 0) throw rangeError('a', `a length that is a multiple of K = ${K}`, `length ${aLen}`);
  const M = aLen / K;
  if (o.M !== undefined && checkDim('opts.M', o.M, 0) !== M) throw rangeError('a', `length M * K = ${(o.M as number) * K}`, `length ${aLen}`);
  return [M, K, N];
}

/** ONNX MatMulInteger: int32 sum_k (a[i,k] - aZeroPoint) * (b[k,j] - bZeroPoint), exact. */
export function matmulInteger(a: Int8Array | Uint8Array, b: Int8Array | Uint8Array, opts: MatMulIntegerOptions): Int32Array {
  const ac = checkCodes('a', a);
  const bc = checkCodes('b', b);
  const o = checkOptions('opts', opts, MMI_OPTS);
  const [M, K, N] = shapeOf(ac.length, bc.length, o);
  const bZeroPoint = checkZeroPoint('opts.bZeroPoint', o.bZeroPoint, dtypeOf(bc), N, 'one per column');
  const aZeroPoint = checkZeroPoint('opts.aZeroPoint', o.aZeroPoint, dtypeOf(ac), M, 'one per row');
  const out = outArray('opts.out', o.out, [Int32Array], M * N);
  // A one-shot B: packed for this call and freed when it returns (nothing left for the GC).
  native.gemm({
    a: ac, aSigned: dtypeOf(ac) === 'int8', M, packed: { b: bc, K, N, zeroPoint: bZeroPoint, scale: 1 }, aZeroPoint,
    output: native.OutputKind.Int32, out, aScale: null, bias: null, relu: false, outScale: 1, outZeroPoint: 0,
  });
  return out;
}

export interface QLinearMatMulOptions {
  M?: number;
  K?: number;
  N?: number;
  /** Output type when yZeroPoint is a number (default: a's type). */
  dtype?: GemmDtype;
  out?: Int8Array | Uint8Array;
}

const QLMM_OPTS = ['M', 'K', 'N', 'dtype', 'out'] as const;

function scalarZeroPoint(name: string, v: unknown): { value: number; dtype?: GemmDtype } {
  if (typeof v === 'number') return { value: v };
  if (isTypedOf(v, 'Int8Array') || isTypedOf(v, 'Uint8Array')) {
    if (v.length !== 1) throw rangeError(name, 'length 1', describe(v));
    return { value: v[0], dtype: dtypeOf(v) };
  }
  throw typeError(name, 'a number, Int8Array or Uint8Array', v);
}

/**
 * ONNX QLinearMatMul: y = saturate(round_half_even((a - aZeroPoint) @ (b - bZeroPoint) *
 * (aScale * bScale / yScale)) + yZeroPoint). Scales / zero points per tensor, per row of a (M) or
 * per column of b (N). The output type is yZeroPoint's (Int8Array / Uint8Array), else opts.dtype,
 * else a's type.
 */
export function qlinearMatMul(
  a: Int8Array | Uint8Array, aScale: number | Float32Array, aZeroPoint: GemmZeroPoint,
  b: Int8Array | Uint8Array, bScale: number | Float32Array, bZeroPoint: GemmZeroPoint,
  yScale: number | Float32Array, yZeroPoint: number | Int8Array | Uint8Array, opts?: QLinearMatMulOptions,
): Int8Array | Uint8Array {
  const ac = checkCodes('a', a);
  const bc = checkCodes('b', b);
  const o = checkOptions('opts', opts, QLMM_OPTS);
  const [M, K, N] = shapeOf(ac.length, bc.length, o);
  const as = checkScales('aScale', aScale, M, true, 'one per row');
  const az = checkZeroPoint('aZeroPoint', aZeroPoint, dtypeOf(ac), M, 'one per row');
  const bs = checkScales('bScale', bScale, N, true, 'one per column');
  const bz = checkZeroPoint('bZeroPoint', bZeroPoint, dtypeOf(bc), N, 'one per column');
  let ys: number;
  if (isTypedOf(yScale, 'Float32Array')) {
    if (yScale.length !== 1) throw rangeError('yScale', 'length 1', describe(yScale));
    ys = checkScaleNumber('yScale', yScale[0]);
  } else {
    ys = checkScaleNumber('yScale', yScale);
  }
  const yz = scalarZeroPoint('yZeroPoint', yZeroPoint);
  let dtype: GemmDtype = yz.dtype ?? dtypeOf(ac);
  if (o.dtype !== undefined) {
    const d = checkOneOf('opts.dtype', o.dtype, ['int8', 'uint8'] as const);
    if (yz.dtype !== undefined && yz.dtype !== d) throw typeError('yZeroPoint', d === 'int8' ? 'Int8Array (opts.dtype int8)' : 'Uint8Array (opts.dtype uint8)', yZeroPoint);
    dtype = d;
  }
  const [lo, hi] = dtype === 'int8' ? [-128, 127] : [0, 255];
  const yzp = checkInt('yZeroPoint', yz.value, lo, hi);
  const out = outArray<Int8Array | Uint8Array>('opts.out', o.out, dtype === 'int8' ? [Int8Array] : [Uint8Array], M * N);
  native.gemm({
    a: ac, aSigned: dtypeOf(ac) === 'int8', M, packed: { b: bc, K, N, zeroPoint: bz, scale: bs }, aZeroPoint: az,
    output: OUT_KIND[dtype], out, aScale: as, bias: null, relu: false, outScale: ys, outZeroPoint: yzp,
  });
  return out;
}

export interface LinearDynamicOptions {
  /** Rows of x (default: x.length / K). */
  M?: number;
  /** Added per output column (N). */
  bias?: Float32Array;
  relu?: boolean;
  /**
   * How x is quantized on the fly: 'uint8' (default): asymmetric, ONNX DynamicQuantizeLinear's
   * formula; 'int8': symmetric -127..127, scale = absmax / 127, zero point 0.
   */
  activation?: GemmDtype;
  /** 'per-row' (default: one scale per row of x, the most accurate) or 'per-tensor' (as ORT's DynamicQuantizeMatMul). */
  granularity?: 'per-row' | 'per-tensor';
  out?: Float32Array;
}

const LD_OPTS = ['M', 'bias', 'relu', 'activation', 'granularity', 'out'] as const;

function linearArgs(x: unknown, packed: unknown, opts: unknown, async = false): native.LinearDynamicArgs {
  const xs = checkTyped<Float32Array>('x', x, [Float32Array]);
  const h = handleOf(packed);
  const p = packed as PackedWeights;
  const o = checkOptions('opts', opts, LD_OPTS);
  const M = rowsOf('x', xs, p.K, o.M);
  const bias = o.bias === undefined ? null : checkBias('opts.bias', o.bias, 'Float32Array', p.N);
  const relu = checkBool('opts.relu', o.relu);
  const act = o.activation === undefined ? 'uint8' : checkOneOf('opts.activation', o.activation, ['uint8', 'int8'] as const);
  const gran = o.granularity === undefined ? 'per-row' : checkOneOf('opts.granularity', o.granularity, ['per-row', 'per-tensor'] as const);
  const out = outArray('opts.out', o.out, OUT_CTORS.float32, M * p.N, async);
  return { x: xs, M, packed: h, bias, relu, perRow: gran === 'per-row', actSigned: act === 'int8', out };
}

/**
 * Dynamic-quantized linear layer (ORT DynamicQuantizeMatMul, PyTorch dynamic Linear): x (M x K
 * float32) quantized on the fly, int8 GEMM with packed weights, float32 out (+ bias, ReLU).
 */
export function linearDynamic(x: Float32Array, packed: PackedWeights, opts?: LinearDynamicOptions): Float32Array {
  const l = linearArgs(x, packed, opts);
  native.linearDynamic(l);
  return l.out;
}

/** linearDynamic off the event loop; inputs and output handled as gemmAsync does. */
export function linearDynamicAsync(x: Float32Array, packed: PackedWeights, opts?: LinearDynamicOptions): Promise<Float32Array> {
  try {
    return native.linearDynamicAsync(linearArgs(x, packed, opts, true));
  } catch (e) {
    return Promise.reject(e);
  }
}
