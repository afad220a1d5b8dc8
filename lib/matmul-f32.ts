// fp32 GEMM: C = A x B (+ bias) (ReLU), with B row-major K x N or N x K (PyTorch Linear's weight
// layout), or packed once with packWeightsF32. Kernels: AVX-512 / AVX2 / NEON / scalar, threads
// from setNumThreads. Numerics (docs/numerics.md, "fp32 GEMM"): not bit-identical between paths;
// every path is within |c - exact| <= (K + 1) * 2^-23 * (sum_k |a_ik| |b_kj| + |bias_j|) of the
// exact product; the thread count never changes a result.
import { checkBias, checkBool, checkDim, outArray, overlaps } from './args';
import { checkOptions, checkTyped, describe, isTypedOf, rangeError, typeError } from './errors';
import * as native from './native';

const F32 = [Float32Array] as const;
const handles = new WeakMap<PackedWeightsF32, native.PackedF32Handle>();

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

  private constructor(handle: native.PackedF32Handle, byteLength: number, K: number, N: number, transposed: boolean) {
    this.K = K;
    this.N = N;
    this.transposed = transposed;
    this.byteLength = byteLength;
    handles.set(this, handle);
    Object.freeze(this);
  }

  /** @internal */
  static create(b: Float32Array, K: number, N: number, transposed: boolean): PackedWeightsF32 {
    const { handle, byteLength } = native.sgemmPack(b, K, N, transposed);
    return new PackedWeightsF32(handle, byteLength, K, N, transposed);
  }
}

const PACK_OPTS = ['K', 'N', 'transposed'] as const;

/** Packs B (K x N row-major, or N x K with transposed) for matmulF32 / matmulF32Async. */
export function packWeightsF32(b: Float32Array, opts: PackWeightsF32Options): PackedWeightsF32 {
  const bb = checkTyped<Float32Array>('b', b, F32);
  if (opts === undefined || opts === null) throw typeError('opts', 'an options object with K and N', opts);
  const o = checkOptions('opts', opts, PACK_OPTS);
  const K = checkDim('opts.K', o.K, 0);
  const N = checkDim('opts.N', o.N, 0);
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

function prepare(a: unknown, b: unknown, opts: unknown, async = false): native.SgemmArgs {
  const aa = checkTyped<Float32Array>('a', a, F32);
  let bArg: Float32Array | native.PackedF32Handle;
  let packed: PackedWeightsF32 | null = null;
  if (b instanceof PackedWeightsF32) {
    packed = b;
    bArg = handles.get(b)!;
  } else if (isTypedOf(b, 'Float32Array')) {
    bArg = checkTyped<Float32Array>('b', b, F32);
  } else {
    throw typeError('b', 'Float32Array or PackedWeightsF32', b);
  }
  if (opts === undefined || opts === null) throw typeError('opts', 'an options object with M, K and N', opts);
  const o = checkOptions('opts', opts, MM_OPTS);
  const M = checkDim('opts.M', o.M, 0);
  let K: number;
  let N: number;
  let transB = false;
  if (packed) {
    K = o.K === undefined ? packed.K : checkDim('opts.K', o.K, 0);
    N = o.N === undefined ? packed.N : checkDim('opts.N', o.N, 0);
    if (K !== packed.K) throw rangeError('opts.K', `${packed.K} (the packed B's K) or no K`, String(K));
    if (N !== packed.N) throw rangeError('opts.N', `${packed.N} (the packed B's N) or no N`, String(N));
    if (o.transB !== undefined) {
      throw new TypeError("Unknown option 'transB' with a packed B: the layout is fixed by packWeightsF32({ transposed })");
    }
  } else {
    K = checkDim('opts.K', o.K, 0);
    N = checkDim('opts.N', o.N, 0);
    transB = checkBool('opts.transB', o.transB);
    const bb = bArg as Float32Array;
    if (bb.length !== K * N) throw rangeError('b', `length K * N = ${K * N}${transB ? ' (N x K)' : ' (K x N)'}`, describe(bb));
  }
  if (aa.length !== M * K) throw rangeError('a', `length M * K = ${M * K}`, describe(aa));
  const bias = o.bias === undefined || o.bias === null ? null : checkBias('opts.bias', o.bias, 'Float32Array', N);
  const relu = checkBool('opts.relu', o.relu);
  const out = outArray('opts.out', o.out, F32, M * N, async, 'M * N = '); // async: null, created natively
  if (o.out !== undefined) {
    const others: [string, ArrayBufferView | null][] = [['a', aa], ['b', packed ? null : (bArg as Float32Array)], ['opts.bias', bias]];
    for (const [name, v] of others) {
      if (v && overlaps(out, v)) {
        throw rangeError('opts.out', `an array that does not overlap ${name}`, `views sharing bytes with ${name}`);
      }
    }
  }
  return { a: aa, b: bArg, out, M, K, N, transB, bias, relu };
}

/**
 * C = A x B (+ bias) (ReLU) in float32. A is M x K row-major; B is K x N row-major, N x K with
 * transB (PyTorch Linear's weight), or a PackedWeightsF32 (then K and N come from it). Returns
 * opts.out when given, else a new Float32Array of M x N.
 */
export function matmulF32(a: Float32Array, b: Float32Array | PackedWeightsF32, opts: MatmulF32Options): Float32Array {
  const s = prepare(a, b, opts);
  native.sgemm(s);
  return s.out;
}

/**
 * matmulF32 on a worker thread (libuv's pool), off the event loop. The inputs are copied (natively)
 * when the call is made, so changing, detaching or transferring them afterwards is harmless;
 * opts.out is filled when the work is done (the promise rejects if it was detached or resized
 * meanwhile), else a new array is returned.
 */
export function matmulF32Async(a: Float32Array, b: Float32Array | PackedWeightsF32, opts: MatmulF32Options): Promise<Float32Array> {
  try {
    return native.sgemmAsync(prepare(a, b, opts, true));
  } catch (e) {
    return Promise.reject(e);
  }
}
