// The GEMM bench's shapes (M x N x K: A is M x K, B is K x N) and its deterministic data.
import { rng } from '../common.mjs';

/** The shapes of the main tables (the ones the targets in targets.mjs are stated for). */
export const SHAPES = [[1, 4096, 4096], [32, 4096, 4096], [128, 1024, 1024], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 2048]]
  .map(([M, N, K]) => ({ M, N, K }));
/** The forced-path runs' shapes (--quick: the last two). */
export const ISA_SHAPES = [[1, 4096, 4096], [512, 512, 512], [1024, 1024, 1024]].map(([M, N, K]) => ({ M, N, K }));
export const ISA_SHAPES_QUICK = ISA_SHAPES.slice(1);

export function parseShape(s) {
  const [M, N, K] = s.toLowerCase().split('x').map(Number);
  if (![M, N, K].every((v) => Number.isInteger(v) && v > 0)) throw new Error(`bad shape ${s} (want MxNxK)`);
  return { M, N, K };
}

export const shapeName = ({ M, N, K }) => `${M}x${N}x${K}`;
export const opsOf = ({ M, N, K }) => 2 * M * N * K;

/** The names of the n shapes with the most operations ("the three largest shapes"). */
export const largest = (shapes, n) => [...shapes].sort((a, b) => opsOf(b) - opsOf(a)).slice(0, n).map(shapeName);

/**
 * uint8 A (its bytes also read as int8: a8) and int8 B over their full ranges, with a few
 * extremes so that u8*s8 pair sums that overflow int16 (255*-128*2) occur: a path that saturates
 * (vpmaddubsw) shows up as a mismatch.
 */
export function makeInt8Data({ M, N, K }, seed) {
  const r = rng(seed);
  const a = new Uint8Array(M * K);
  for (let i = 0; i < a.length; i++) a[i] = (r() * 256) | 0;
  const b = new Int8Array(K * N);
  for (let i = 0; i < b.length; i++) b[i] = ((r() * 256) | 0) - 128;
  for (let i = 0; i < Math.min(a.length, 64); i++) a[i] = 255;
  for (let i = 0; i < Math.min(b.length, 4 * N); i += N + 1) b[i] = -128;
  return { a, a8: new Int8Array(a.buffer), b };
}

/** float32 A and B, uniform in [-1, 1). */
export function makeF32Data({ M, N, K }, seed) {
  const r = rng(seed);
  const a = new Float32Array(M * K);
  for (let i = 0; i < a.length; i++) a[i] = r() * 2 - 1;
  const b = new Float32Array(K * N);
  for (let i = 0; i < b.length; i++) b[i] = r() * 2 - 1;
  return { a, b };
}

/** Random codes over a byte type's full range. */
export function makeCodes(signed, n, r) {
  const x = signed ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) x[i] = ((r() * 256) | 0) - (signed ? 128 : 0);
  return x;
}
