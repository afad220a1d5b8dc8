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
import type { Binding } from '../binding';
import { native } from './binding';
import { checkInt, checkOneOf, checkOptions, checkTyped, describe, isTypedOf, rangeError, typeError } from './errors';

export type GemmDtype = 'int8' | 'uint8';
export type GemmOutput = 'int32' | 'float32' | 'int8' | 'uint8';
export type GemmZeroPoint = number | Int32Array | Int8Array | Uint8Array;
type Codes = Int8Array | Uint8Array;

// native/napi/gemm.cc (typed in binding.d.ts)
const nat = native;
const CODES = [Int8Array, Uint8Array] as const;
const F32 = [Float32Array] as const;
const I32 = [Int32Array] as const;
const MAX_DIM = 2 ** 40;
interface Internals { handle: unknown; zeroPoint: number | Int32Array; scale: number | Float32Array }
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

function checkDim(name: string, v: unknown, lo = 1): number {
  return checkInt(name, v, lo, MAX_DIM);
}

function checkZeroPoint(name: string, v: unknown, dtype: GemmDtype, n: number, what: string): GemmZeroPoint {
  const [lo, hi] = dtype === 'int8' ? [-128, 127] : [0, 255];
  if (v === undefined) return 0;
  if (typeof v === 'number') return checkInt(name, v, lo, hi);
  const z = checkTyped<Int32Array | Int8Array | Uint8Array>(name, v, [Int32Array, Int8Array, Uint8Array]);
  if (z.length !== 1 && z.length !== n) throw rangeError(name, `length 1 or ${n} (${what})`, describe(z));
  for (let i = 0; i < z.length; i++) {
    if (z[i] < lo || z[i] > hi) throw rangeError(`${name}[${i}]`, `an integer between ${lo} and ${hi}`, String(z[i]));
  }
  return z;
}

function checkScale(name: string, v: unknown, n: number, what: string): number | Float32Array {
  if (typeof v === 'number') {
    if (!(v > 0) || !Number.isFinite(v) || !(Math.fround(v) > 0) || !Number.isFinite(Math.fround(v))) {
      throw rangeError(name, 'a positive finite number', String(v));
    }
    return v;
  }
  if (!isTypedOf(v, 'Float32Array')) throw typeError(name, 'a number or Float32Array', v);
  if (v.length !== 1 && v.length !== n) throw rangeError(name, `length 1 or ${n} (${what})`, describe(v));
  for (let i = 0; i < v.length; i++) {
    if (!(v[i] > 0) || v[i] === Infinity) throw rangeError(`${name}[${i}]`, 'a positive finite number', String(v[i]));
  }
  return v;
}

function checkBool(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw typeError(name, 'a boolean', v);
  return v;
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

/** opts.out checked, or a new array (sync), or null for an async call to create its own. */
function outArray<T extends ArrayBufferView & { length: number }>(
  out: unknown, ctor: { new (n: number): T; name: string }, n: number, async = false,
): T {
  if (out === undefined) return async ? (null as unknown as T) : new ctor(n);
  const o = checkTyped<T>('opts.out', out, [ctor]);
  if (o.length !== n) throw rangeError('opts.out', `length ${n}`, describe(o));
  return o;
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

  private constructor(handle: unknown, byteLength: number, K: number, N: number, dtype: GemmDtype, transposed: boolean,
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
    const [handle, bytes] = nat.gemmPack(b, dtype === 'int8', o.K, o.N, o.transposed, o.zeroPoint, o.scale);
    const zp = typeof o.zeroPoint === 'number' ? o.zeroPoint : Int32Array.from(o.zeroPoint);
    const sc = typeof o.scale === 'number' ? o.scale : Float32Array.from(o.scale);
    return new PackedWeights(handle, bytes, o.K, o.N, dtype, o.transposed, zp, sc);
  }
}

/** @internal The native handle of packed weights (for callers that checked their arguments already). */
export function packedHandle(p: PackedWeights): unknown {
  return handleOf(p);
}

function handleOf(p: unknown): unknown {
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
  const transposed = checkBool('opts.transposed', o.transposed, false);
  const zeroPoint = checkZeroPoint('opts.zeroPoint', o.zeroPoint, dtypeOf(codes), N, 'one per column');
  const scale = o.scale === undefined ? 1 : checkScale('opts.scale', o.scale, N, 'one per column');
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
const OUT_KIND: Record<GemmOutput, number> = { int32: 0, float32: 1, int8: 2, uint8: 3 };
const OUT_CTOR = { int32: Int32Array, float32: Float32Array, int8: Int8Array, uint8: Uint8Array } as const;

type GemmResult<O extends GemmOptions | undefined> = O extends { output: 'float32' } ? Float32Array
  : O extends { output: 'int8' } ? Int8Array : O extends { output: 'uint8' } ? Uint8Array
  : O extends { output: GemmOutput } ? Int32Array | Float32Array | Int8Array | Uint8Array : Int32Array;

type NativeGemmArgs = Parameters<Binding['gemm']>;

function gemmArgs(a: unknown, packed: unknown, opts: unknown, async = false): NativeGemmArgs {
  const codes = checkCodes('a', a);
  const h = handleOf(packed);
  const p = packed as PackedWeights;
  const o = checkOptions('opts', opts, GEMM_OPTS);
  const M = rowsOf('a', codes, p.K, o.M);
  const dtype = dtypeOf(codes);
  const output = o.output === undefined ? 'int32' : checkOneOf('opts.output', o.output, ['int32', 'float32', 'int8', 'uint8'] as const);
  const aZeroPoint = checkZeroPoint('opts.aZeroPoint', o.aZeroPoint, dtype, M, 'one per row');
  const aScale = o.aScale === undefined ? null : checkScale('opts.aScale', o.aScale, M, 'one per row');
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
    bias = checkTyped<Float32Array | Int32Array>('opts.bias', o.bias, output === 'float32' ? F32 : I32);
    if (bias.length !== p.N) throw rangeError('opts.bias', `length N = ${p.N}`, describe(bias));
  }
  let outScale = 1;
  let outZeroPoint = 0;
  if (output === 'int8' || output === 'uint8') {
    if (o.outScale === undefined) throw typeError('opts.outScale', `a positive finite number (needed by output '${output}')`, undefined);
    outScale = checkScale('opts.outScale', o.outScale, 1, 'one') as number;
    if (typeof outScale !== 'number') throw typeError('opts.outScale', 'a number', o.outScale);
    const [lo, hi] = output === 'int8' ? [-128, 127] : [0, 255];
    outZeroPoint = o.outZeroPoint === undefined ? 0 : checkInt('opts.outZeroPoint', o.outZeroPoint, lo, hi);
  } else if (o.outScale !== undefined || o.outZeroPoint !== undefined) {
    throw new TypeError(`Options 'outScale' and 'outZeroPoint' need output 'int8' or 'uint8'; output is '${output}'`);
  }
  const relu = checkBool('opts.relu', o.relu, false);
  const out = outArray<ArrayBufferView & { length: number }>(o.out, OUT_CTOR[output] as never, M * p.N, async);
  return [codes, dtype === 'int8', M, h, aZeroPoint, OUT_KIND[output], out, aScale, bias, relu, outScale, outZeroPoint];
}

/**
 * A (M x K, int8 or uint8 codes) times packed B, with a fused epilogue: 'int32' (exact
 * accumulator), 'float32' (acc * aScale * bScale + bias, optional ReLU) or 'int8' / 'uint8'
 * (requantized as ONNX QLinearMatMul, after adding an optional int32 bias as QLinearConv / QGemm).
 * Runs on the shared thread pool (setNumThreads).
 */
export function gemm<O extends GemmOptions | undefined = undefined>(a: Int8Array | Uint8Array, packed: PackedWeights, opts?: O): GemmResult<O> {
  const args = gemmArgs(a, packed, opts);
  nat.gemm(...args);
  return args[6] as GemmResult<O>;
}

/**
 * gemm off the event loop: the inputs are copied (natively) when the call is made, so changing,
 * detaching or transferring them afterwards is harmless; resolves to the output once done
 * (opts.out when given: filled when the work is done; a rejection if it was detached or resized
 * meanwhile).
 */
export function gemmAsync<O extends GemmOptions | undefined = undefined>(a: Int8Array | Uint8Array, packed: PackedWeights, opts?: O): Promise<GemmResult<O>> {
  try {
    return nat.gemmAsync(...gemmArgs(a, packed, opts, true)) as Promise<GemmResult<O>>;
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
  const out = outArray(o.out, Int32Array, M * N);
  // A one-shot B: packed for this call and freed when it returns (nothing left for the GC).
  nat.gemm(ac, dtypeOf(ac) === 'int8', M, { b: bc, K, N, zeroPoint: bZeroPoint, scale: 1 }, aZeroPoint, 0, out, null, null, false, 1, 0);
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
  const as = checkScale('aScale', aScale, M, 'one per row');
  const az = checkZeroPoint('aZeroPoint', aZeroPoint, dtypeOf(ac), M, 'one per row');
  const bs = checkScale('bScale', bScale, N, 'one per column');
  const bz = checkZeroPoint('bZeroPoint', bZeroPoint, dtypeOf(bc), N, 'one per column');
  let ys: number;
  if (isTypedOf(yScale, 'Float32Array')) {
    if (yScale.length !== 1) throw rangeError('yScale', 'length 1', describe(yScale));
    ys = checkScale('yScale', yScale[0], 1, 'one') as number;
  } else {
    ys = checkScale('yScale', yScale, 1, 'one') as number;
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
  const out: Int8Array | Uint8Array = dtype === 'int8' ? outArray(o.out, Int8Array, M * N) : outArray(o.out, Uint8Array, M * N);
  nat.gemm(ac, dtypeOf(ac) === 'int8', M, { b: bc, K, N, zeroPoint: bz, scale: bs }, az, dtype === 'int8' ? 2 : 3, out, as, null, false, ys, yzp);
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

type NativeLinearArgs = Parameters<Binding['linearDynamic']>;

function linearArgs(x: unknown, packed: unknown, opts: unknown, async = false): NativeLinearArgs {
  const xs = checkTyped<Float32Array>('x', x, F32);
  const h = handleOf(packed);
  const p = packed as PackedWeights;
  const o = checkOptions('opts', opts, LD_OPTS);
  const M = rowsOf('x', xs, p.K, o.M);
  let bias: Float32Array | null = null;
  if (o.bias !== undefined) {
    bias = checkTyped<Float32Array>('opts.bias', o.bias, F32);
    if (bias.length !== p.N) throw rangeError('opts.bias', `length N = ${p.N}`, describe(bias));
  }
  const relu = checkBool('opts.relu', o.relu, false);
  const act = o.activation === undefined ? 'uint8' : checkOneOf('opts.activation', o.activation, ['uint8', 'int8'] as const);
  const gran = o.granularity === undefined ? 'per-row' : checkOneOf('opts.granularity', o.granularity, ['per-row', 'per-tensor'] as const);
  const out = outArray(o.out, Float32Array, M * p.N, async);
  return [xs, M, h, bias, relu, gran === 'per-row', act === 'int8', out];
}

/**
 * Dynamic-quantized linear layer (ORT DynamicQuantizeMatMul, PyTorch dynamic Linear): x (M x K
 * float32) quantized on the fly, int8 GEMM with packed weights, float32 out (+ bias, ReLU).
 */
export function linearDynamic(x: Float32Array, packed: PackedWeights, opts?: LinearDynamicOptions): Float32Array {
  const args = linearArgs(x, packed, opts);
  nat.linearDynamic(...args);
  return args[7];
}

/** linearDynamic off the event loop; inputs and output handled as gemmAsync does. */
export function linearDynamicAsync(x: Float32Array, packed: PackedWeights, opts?: LinearDynamicOptions): Promise<Float32Array> {
  try {
    return nat.linearDynamicAsync(...linearArgs(x, packed, opts, true));
  } catch (e) {
    return Promise.reject(e);
  }
}
