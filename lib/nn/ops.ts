// Matrix products for the nn layers: the library's fp32 GEMM (matmulF32, native and
// multi-threaded) when the addon has it, else a blocked JavaScript fallback.
import { hasSgemm } from '../native';
import { checkOneOf } from '../errors';
import { matmulF32 } from '../matmul-f32';

export type MatmulBackend = 'native' | 'js';

// An older prebuilt binary may lack the fp32 GEMM: then the JS fallback is used.
const nativeAvailable = hasSgemm;

function initialBackend(): MatmulBackend {
  const env = typeof process !== 'undefined' ? process.env.QUANTKIT_NN_MATMUL : undefined;
  if (env === 'js') return 'js';
  return nativeAvailable ? 'native' : 'js';
}

let backend: MatmulBackend = initialBackend();

/**
 * Chooses the matrix product used by the nn layers: 'native' (matmulF32) or 'js' (the fallback),
 * or 'auto' (native when the addon has it). QUANTKIT_NN_MATMUL=js at load selects 'js'.
 */
export function setMatmulBackend(b: 'auto' | MatmulBackend): void {
  const v = checkOneOf('backend', b, ['auto', 'native', 'js'] as const);
  if (v === 'native' && !nativeAvailable) throw new Error('The native addon has no fp32 GEMM (sgemm); rebuild it or use the js backend');
  backend = v === 'auto' ? (nativeAvailable ? 'native' : 'js') : v;
}

export function getMatmulBackend(): MatmulBackend {
  return backend;
}

/** Transposes a rows x cols (row-major) into out (cols x rows). */
export function transpose(a: Float32Array, rows: number, cols: number, out: Float32Array = new Float32Array(rows * cols)): Float32Array {
  const T = 32;
  for (let i0 = 0; i0 < rows; i0 += T) {
    const i1 = Math.min(rows, i0 + T);
    for (let j0 = 0; j0 < cols; j0 += T) {
      const j1 = Math.min(cols, j0 + T);
      for (let i = i0; i < i1; i++) {
        const r = i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = a[r + j];
      }
    }
  }
  return out;
}

function overlaps(x: Float32Array, y: Float32Array): boolean {
  if (x.buffer !== y.buffer || x.length === 0 || y.length === 0) return false;
  return x.byteOffset < y.byteOffset + y.byteLength && y.byteOffset < x.byteOffset + x.byteLength;
}

function addBias(out: Float32Array, bias: Float32Array, M: number, N: number): void {
  for (let i = 0; i < M; i++) {
    const o = i * N;
    for (let j = 0; j < N; j++) out[o + j] += bias[j];
  }
}

/**
 * out[M x N] = op(A) x op(B) (+ bias[N] on every row), overwriting out. op(A) is M x K: A is
 * stored M x K, or K x M with transA. op(B) is K x N: B is stored K x N, or N x K with transB
 * (PyTorch Linear's weight). Internal: sizes are trusted (the layers check their inputs).
 */
export function matmul(
  a: Float32Array, b: Float32Array, M: number, K: number, N: number,
  transA: boolean, transB: boolean, out: Float32Array = new Float32Array(M * N), bias?: Float32Array | null,
): Float32Array {
  if (M === 0 || N === 0) return out;
  if (K === 0) {
    out.fill(0);
    if (bias) addBias(out, bias, M, N);
    return out;
  }
  const aa = transA ? transpose(a, K, M) : a;
  if (backend === 'native') {
    const opts = bias ? { M, K, N, transB, bias } : { M, K, N, transB };
    if (overlaps(out, aa) || overlaps(out, b) || (bias && overlaps(out, bias))) {
      out.set(matmulF32(aa, b, opts));
      return out;
    }
    return matmulF32(aa, b, { ...opts, out });
  }
  // The JS kernel takes B as N x K (rows of B^T), so each output is a dot product of two rows.
  const bt = transB ? b : transpose(b, K, N);
  matmulJs(aa, bt, M, K, N, out);
  if (bias) addBias(out, bias, M, N);
  return out;
}

/**
 * out = A[M x K] x B^T, with bt = B^T stored N x K (row-major), in JavaScript: dot products of
 * rows in 2 x 4 blocks, accumulated in float64 (about twice as fast in V8 as an i-k-j loop).
 */
export function matmulJs(a: Float32Array, bt: Float32Array, M: number, K: number, N: number, out: Float32Array): Float32Array {
  const c = overlaps(out, a) || overlaps(out, bt) ? new Float32Array(M * N) : out;
  const N4 = N - (N % 4);
  for (let i = 0; i < M; i += 2) {
    const two = i + 1 < M;
    const a0 = i * K, a1 = two ? a0 + K : a0;
    const o0 = i * N, o1 = o0 + N;
    for (let j = 0; j < N4; j += 4) {
      const b0 = j * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = a[a0 + k], x1 = a[a1 + k];
        const y0 = bt[b0 + k], y1 = bt[b1 + k], y2 = bt[b2 + k], y3 = bt[b3 + k];
        s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
        s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
      }
      c[o0 + j] = s00; c[o0 + j + 1] = s01; c[o0 + j + 2] = s02; c[o0 + j + 3] = s03;
      if (two) {
        c[o1 + j] = s10; c[o1 + j + 1] = s11; c[o1 + j + 2] = s12; c[o1 + j + 3] = s13;
      }
    }
    for (let j = N4; j < N; j++) {
      const b0 = j * K;
      let s0 = 0, s1 = 0;
      for (let k = 0; k < K; k++) {
        const y = bt[b0 + k];
        s0 += a[a0 + k] * y;
        s1 += a[a1 + k] * y;
      }
      c[o0 + j] = s0;
      if (two) c[o1 + j] = s1;
    }
  }
  if (c !== out) out.set(c);
  return out;
}
