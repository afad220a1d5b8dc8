// fp32 GEMM: C = A x B (+ bias) (ReLU), with B row-major K x N or N x K (PyTorch Linear's weight
// layout), or packed once with packWeightsF32. Kernels: AVX-512 / AVX2 / NEON / scalar, threads
// from setNumThreads. Numerics (docs/numerics.md, "fp32 GEMM"): not bit-identical between paths;
// every path is within |c - exact| <= (K + 1) * 2^-23 * (sum_k |a_ik| |b_kj| + |bias_j|) of the
// exact product; the thread count never changes a result.
import { native } from './binding';
import { checkInt, checkOptions, checkTyped, describe, isTypedOf, rangeError, typeError } from './errors';

// native/napi/sgemm.cc (typed in binding.d.ts)
const nat = native;
const F32 = [Float32Array] as const;
const MAX_DIM = 2 ** 40;
const handles = new WeakMap<PackedWeightsF32, unknown>();

export interface PackWeightsF32Options {
  /** Rows of B (the reduction dimension). */
  K: number;
  /** Columns of B (output features). */
  N: number;
  /** b is N x K (PyTorch Linear's weight layout) instead of K x N. Default false. */
  transposed?: boolean;
}

/**
 * B re-laid out once for the fp32 kernels (32-column panels in blocks of 256 rows of K).
 * Immutable; usable from any thread and by many calls in flight together; freed by the garbage
 * collector (its native size is reported to the GC). One packed B serves every kernel path.
 */
export class PackedWeightsF32 {
  /** Rows of B. */
  readonly K: number;
  /** Columns of B. */
  readonly N: number;
  /** Whether the b given to packWeightsF32 was N x K. */
  readonly transposed: boolean;
  /** Bytes held natively. */
  readonly byteLength: number;

  private constructor(handle: unknown, byteLength: number, K: number, N: number, transposed: boolean) {
    this.K = K;
    this.N = N;
    this.transposed = transposed;
    this.byteLength = byteLength;
    handles.set(this, handle);
    Object.freeze(this);
  }

  /** @internal */
  static create(b: Float32Array, K: number, N: number, transposed: boolean): PackedWeightsF32 {
    const [handle, bytes] = nat.sgemmPack(b, K, N, transposed);
    return new PackedWeightsF32(handle, bytes, K, N, transposed);
  }
}

function checkDim(name: string, v: unknown): number {
  return checkInt(name, v, 0, MAX_DIM);
}

function checkBool(name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw typeError(name, 'a boolean', v);
  return v;
}

function overlaps(x: ArrayBufferView, y: ArrayBufferView): boolean {
  if (x.buffer !== y.buffer || x.byteLength === 0 || y.byteLength === 0) return false;
  return x.byteOffset < y.byteOffset + y.byteLength && y.byteOffset < x.byteOffset + x.byteLength;
}

const PACK_OPTS = ['K', 'N', 'transposed'] as const;

/** Packs B (K x N row-major, or N x K with transposed) for matmulF32 / matmulF32Async. */
export function packWeightsF32(b: Float32Array, opts: PackWeightsF32Options): PackedWeightsF32 {
  const bb = checkTyped<Float32Array>('b', b, F32);
  if (opts === undefined || opts === null) throw typeError('opts', 'an options object with K and N', opts);
  const o = checkOptions('opts', opts, PACK_OPTS);
  const K = checkDim('opts.K', o.K);
  const N = checkDim('opts.N', o.N);
  const transposed = checkBool('opts.transposed', o.transposed);
  if (bb.length !== K * N) {
    throw rangeError('b', `length K * N = ${K * N}${transposed ? ' (N x K)' : ' (K x N)'}`, describe(bb));
  }
  return PackedWeightsF32.create(bb, K, N, transposed);
}

export interface MatmulF32Options {
  /** Rows of A and C. */
  M: number;
  /** Columns of A, rows of B. Taken from a packed B (must match when given). */
  K?: number;
  /** Columns of B and C. Taken from a packed B (must match when given). */
  N?: number;
  /** b is N x K (PyTorch Linear's weight layout) instead of K x N. Not with a packed B. */
  transB?: boolean;
  /** Output (M x N) to fill instead of allocating; must not overlap a, b or bias. */
  out?: Float32Array;
  /** Added to every row of C (length N), after the products. */
  bias?: Float32Array;
  /** C = max(C, 0) after the bias (NaN stays NaN). */
  relu?: boolean;
}

const MM_OPTS = ['M', 'K', 'N', 'transB', 'out', 'bias', 'relu'] as const;

type Prepared = [Float32Array, Float32Array | unknown, Float32Array, number, number, number, boolean, Float32Array | null, boolean];

function prepare(a: unknown, b: unknown, opts: unknown, async = false): Prepared {
  const aa = checkTyped<Float32Array>('a', a, F32);
  let bArg: Float32Array | unknown;
  let packed: PackedWeightsF32 | null = null;
  if (b instanceof PackedWeightsF32) {
    packed = b;
    bArg = handles.get(b);
  } else if (isTypedOf(b, 'Float32Array')) {
    bArg = checkTyped<Float32Array>('b', b, F32);
  } else {
    throw typeError('b', 'Float32Array or PackedWeightsF32', b);
  }
  if (opts === undefined || opts === null) throw typeError('opts', 'an options object with M, K and N', opts);
  const o = checkOptions('opts', opts, MM_OPTS);
  const M = checkDim('opts.M', o.M);
  let K: number;
  let N: number;
  let transB = false;
  if (packed) {
    K = o.K === undefined ? packed.K : checkDim('opts.K', o.K);
    N = o.N === undefined ? packed.N : checkDim('opts.N', o.N);
    if (K !== packed.K) throw rangeError('opts.K', `${packed.K} (the packed B's K) or no K`, String(K));
    if (N !== packed.N) throw rangeError('opts.N', `${packed.N} (the packed B's N) or no N`, String(N));
    if (o.transB !== undefined) {
      throw new TypeError("Unknown option 'transB' with a packed B: the layout is fixed by packWeightsF32({ transposed })");
    }
  } else {
    K = checkDim('opts.K', o.K);
    N = checkDim('opts.N', o.N);
    transB = checkBool('opts.transB', o.transB);
    const bb = bArg as Float32Array;
    if (bb.length !== K * N) throw rangeError('b', `length K * N = ${K * N}${transB ? ' (N x K)' : ' (K x N)'}`, describe(bb));
  }
  if (aa.length !== M * K) throw rangeError('a', `length M * K = ${M * K}`, describe(aa));
  let bias: Float32Array | null = null;
  if (o.bias !== undefined && o.bias !== null) {
    bias = checkTyped<Float32Array>('opts.bias', o.bias, F32);
    if (bias.length !== N) throw rangeError('opts.bias', `length N = ${N}`, describe(bias));
  }
  const relu = checkBool('opts.relu', o.relu);
  let out: Float32Array;
  if (o.out === undefined) {
    out = async ? (null as unknown as Float32Array) : new Float32Array(M * N); // async: created natively
  } else {
    out = checkTyped<Float32Array>('opts.out', o.out, F32);
    if (out.length !== M * N) throw rangeError('opts.out', `length M * N = ${M * N}`, describe(out));
    const others: [string, ArrayBufferView | null][] = [['a', aa], ['b', packed ? null : (bArg as Float32Array)], ['opts.bias', bias]];
    for (const [name, v] of others) {
      if (v && overlaps(out, v)) {
        throw rangeError('opts.out', `an array that does not overlap ${name}`, `views sharing bytes with ${name}`);
      }
    }
  }
  return [aa, bArg, out, M, K, N, transB, bias, relu];
}

/**
 * C = A x B (+ bias) (ReLU) in float32. A is M x K row-major; B is K x N row-major, N x K with
 * transB (PyTorch Linear's weight), or a PackedWeightsF32 (then K and N come from it). Returns
 * opts.out when given, else a new Float32Array of M x N.
 */
export function matmulF32(a: Float32Array, b: Float32Array | PackedWeightsF32, opts: MatmulF32Options): Float32Array {
  const args = prepare(a, b, opts);
  nat.sgemm(...args);
  return args[2];
}

/**
 * matmulF32 on a worker thread (libuv's pool), off the event loop. The inputs are copied (natively)
 * when the call is made, so changing, detaching or transferring them afterwards is harmless;
 * opts.out is filled when the work is done (the promise rejects if it was detached or resized
 * meanwhile), else a new array is returned.
 */
export function matmulF32Async(a: Float32Array, b: Float32Array | PackedWeightsF32, opts: MatmulF32Options): Promise<Float32Array> {
  try {
    return nat.sgemmAsync(...prepare(a, b, opts, true));
  } catch (e) {
    return Promise.reject(e);
  }
}
