// Comparing GEMM results: int32 exactly (element by element, or at an exact sample computed in
// JS), float32 within a bound independent of K and of summation order. Used by bench/gemm.mjs
// before it times anything and by test/gemm.ort.test.ts.
import { rng } from '../common.mjs';

/** Mismatches of got against want (an [M, N] row-major result), with the first one. */
export function compareExact(got, want, N) {
  if (got.length !== want.length) return { mismatches: -1, note: `length ${got.length} != ${want.length}` };
  let mismatches = 0;
  let first = -1;
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      if (first < 0) first = i;
      mismatches++;
    }
  }
  const r = { mismatches };
  if (first >= 0) r.first = { i: Math.floor(first / N), j: first % N, got: got[first], want: want[first] };
  return r;
}

// fp32: |got - want| <= F32_TOL * (sum_k |a_ik|) * max_k |b_kj| for every element (the right side
// bounds sum_k |a_ik * b_kj|, so the test is independent of K and of summation order; a dropped or
// wrong k term is caught, rounding differences are ~100x below the bound).
export const F32_TOL = 1e-5;

/** Elements of got outside the fp32 bound around want (`bad`), the largest |difference| / bound (`maxRel`). */
export function compareF32(got, want, a, b, { M, N, K }) {
  if (got.length !== want.length) return { bad: -1, note: `length ${got.length} != ${want.length}` };
  const rowAbs = new Float64Array(M);
  for (let i = 0; i < M; i++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.abs(a[i * K + k]);
    rowAbs[i] = s;
  }
  const colMax = new Float64Array(N);
  for (let k = 0; k < K; k++) {
    for (let j = 0; j < N; j++) {
      const v = Math.abs(b[k * N + j]);
      if (v > colMax[j]) colMax[j] = v;
    }
  }
  let bad = 0;
  let maxAbs = 0;
  let maxRel = 0;
  let first = null;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      const g = got[i * N + j];
      const w = want[i * N + j];
      const d = Math.abs(g - w);
      const bound = rowAbs[i] * colMax[j] || 1e-30;
      const rel = Number.isNaN(d) ? Infinity : d / bound;
      if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? NaN : d;
      if (rel > maxRel) maxRel = rel;
      if (!(rel <= F32_TOL)) {
        bad++;
        first ??= { i, j, got: g, want: w };
      }
    }
  }
  return { bad, maxAbs, maxRel, first };
}

/**
 * Exact MatMulInteger values at a sample of elements (rows 0, M-1 and a few more, 16 columns
 * each), computed in JS: ORT is checked against them, since its u8s8 kernels on CPUs without VNNI
 * may saturate (vpmaddubsw); where ORT is not exact, quantkit is checked against this sample.
 */
export function exactSample(a, aZp, b, { M, N, K }, seed) {
  const r = rng(seed);
  const rows = [...new Set([0, M - 1, ...Array.from({ length: 4 }, () => Math.floor(r() * M))])];
  const out = [];
  for (const i of rows) {
    for (let c = 0; c < Math.min(N, 16); c++) {
      const j = c === 0 ? 0 : c === 1 ? N - 1 : Math.floor(r() * N);
      let acc = 0;
      for (let k = 0; k < K; k++) acc += (a[i * K + k] - aZp) * b[k * N + j];
      out.push({ i, j, v: acc });
    }
  }
  return out;
}

export function compareSample(got, sample, N) {
  let mismatches = 0;
  let first;
  for (const { i, j, v } of sample) {
    if (got[i * N + j] !== v) {
      mismatches++;
      first ??= { i, j, got: got[i * N + j], want: v };
    }
  }
  return { mismatches, sampled: sample.length, first };
}

/** ' (first at [i,j]: got g, want w)' for a comparison with a mismatch. */
export const describeMismatch = (c) => (c.first
  ? ` (first at [${c.first.i},${c.first.j}]: got ${c.first.got}, want ${c.first.want})`
  : c.note ? ` (${c.note})` : '');

/** ' in n of total elements', or the sample's counts. */
export const ofText = (c, total) => (c.vsSample
  ? ` (checked against the exact JS sample) in ${c.mismatches} of ${c.sampled} sampled elements`
  : ` in ${c.mismatches} of ${total} elements`);
