// Quantization-aware training backward, AVX-512 (F/BW/DQ/VL): bit-identical to ste_grad_ref /
// lsq_grad_ref / lsq_grad_vec_ref (numerics in native/core/kernel_types_qat.h). Float32 vector ops
// in the reference's order (-ffp-contract=off keeps them unfused), rounding with vrndscaleps under
// MXCSR (nearbyint); the 16 float64 lanes of a run's sum are two zmm of doubles (lanes 0-7, 8-15).
// Tails: masked loads and stores; terms of the lanes past n are zeroed (+0 changes no lane).
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "qat_common.h"

namespace qk {
namespace {

constexpr int kRoundCur = _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC;

QK_X86_INLINE __mmask16 tail_mask16(size_t rem) {
  return rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
}

// Lanes where v is finite (|v| < Inf; NaN: not set).
QK_X86_INLINE __mmask16 finite16(__m512 v) {
  return _mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(__builtin_inff()), _CMP_LT_OQ);
}

QK_X86_INLINE uint64_t count_off(__mmask16 ok, __mmask16 lanes) {
  return x86::popcount32(static_cast<uint32_t>(static_cast<__mmask16>(~ok & lanes)));
}

// ---- STE ----------------------------------------------------------------------------------------

template <bool kAcc>
uint64_t ste_impl(const float* dy, const uint8_t* mask, size_t n, float* dx) {
  uint64_t bad = 0;
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask16(n - i);
    const __m512 d = _mm512_maskz_loadu_ps(k, dy + i);
    const __m512 m = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, mask + i)));
    const __mmask16 ok = finite16(d);
    __m512 g = _mm512_maskz_mul_ps(ok, d, m);
    if (kAcc) g = _mm512_add_ps(_mm512_maskz_loadu_ps(k, dx + i), g);
    _mm512_mask_storeu_ps(dx + i, k, g);
    bad += count_off(ok, k);
  }
  return bad;
}

// ---- LSQ ----------------------------------------------------------------------------------------

struct Terms {
  __m512 dx, ts, tz;
  __mmask16 ok;
};

QK_X86_INLINE Terms lsq16(__m512 x, __m512 dy, __m512 s, __m512 inv, __m512 zb, __m512 lo, __m512 hi, __m512 gf) {
  const __m512 q = _mm512_roundscale_ps(_mm512_add_ps(zb, _mm512_mul_ps(x, inv)), kRoundCur);
  const __mmask16 below = _mm512_cmp_ps_mask(q, lo, _CMP_LT_OQ);
  const __mmask16 clip = below | _mm512_cmp_ps_mask(q, hi, _CMP_GT_OQ);
  const __m512 xfq = _mm512_mul_ps(_mm512_sub_ps(q, zb), s);
  const __m512 tin = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dy, _mm512_sub_ps(xfq, x)), inv), gf);
  const __m512 d = _mm512_mask_blend_ps(below, _mm512_sub_ps(hi, zb), _mm512_sub_ps(lo, zb));
  const __m512 tcl = _mm512_mul_ps(_mm512_mul_ps(dy, d), gf);
  const __m512 zcl = _mm512_mul_ps(_mm512_mul_ps(_mm512_xor_ps(dy, _mm512_set1_ps(-0.0f)), s), gf);
  const __m512 dcl = _mm512_mul_ps(dy, _mm512_setzero_ps());
  const __mmask16 ok = _mm512_cmp_ps_mask(x, x, _CMP_ORD_Q) & finite16(dy);
  Terms t;
  t.ts = _mm512_maskz_mov_ps(ok, _mm512_mask_blend_ps(clip, tin, tcl));
  t.tz = _mm512_maskz_mov_ps(static_cast<__mmask16>(ok & clip), zcl);
  t.dx = _mm512_maskz_mov_ps(ok, _mm512_mask_blend_ps(clip, dy, dcl));
  t.ok = ok;
  return t;
}

// l[j] + l[j + 8], then + [j + 4], + [j + 2], + [j + 1] of lanes a (0-7) and b (8-15).
QK_X86_INLINE double lanes_total(__m512d a, __m512d b) {
  const __m512d m = _mm512_add_pd(a, b);
  const __m256d n = _mm256_add_pd(_mm512_castpd512_pd256(m), _mm512_extractf64x4_pd(m, 1));
  const __m128d p = _mm_add_pd(_mm256_castpd256_pd128(n), _mm256_extractf128_pd(n, 1));
  return _mm_cvtsd_f64(_mm_add_sd(p, _mm_unpackhi_pd(p, p)));
}

template <bool kDx, bool kAcc>
QK_X86_INLINE void put_dx(float* dx, size_t i, __m512 v, __mmask16 k) {
  if (!kDx) return;
  if (kAcc) v = _mm512_add_ps(_mm512_maskz_loadu_ps(k, dx + i), v);
  _mm512_mask_storeu_ps(dx + i, k, v);
}

template <bool kDx, bool kAcc>
uint64_t lsq_impl(const float* x, const float* dy, size_t n, float scale, int32_t zb, const LsqParams& p, float* dx,
                  double* sums) {
  const __m512 s = _mm512_set1_ps(scale), inv = _mm512_set1_ps(1.0f / scale);
  const __m512 z = _mm512_set1_ps(static_cast<float>(zb));
  const __m512 lo = _mm512_set1_ps(static_cast<float>(p.qmin)), hi = _mm512_set1_ps(static_cast<float>(p.qmax));
  const __m512 gf = _mm512_set1_ps(p.gf);
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd(), z0 = _mm512_setzero_pd(), z1 = _mm512_setzero_pd();
  uint64_t bad = 0;
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask16(n - i);
    Terms t = lsq16(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, dy + i), s, inv, z, lo, hi, gf);
    put_dx<kDx, kAcc>(dx, i, t.dx, k);
    t.ts = _mm512_maskz_mov_ps(k, t.ts);
    t.tz = _mm512_maskz_mov_ps(k, t.tz);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(t.ts)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(t.ts, 1)));
    z0 = _mm512_add_pd(z0, _mm512_cvtps_pd(_mm512_castps512_ps256(t.tz)));
    z1 = _mm512_add_pd(z1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(t.tz, 1)));
    bad += count_off(t.ok, k);
  }
  sums[0] += lanes_total(s0, s1);
  sums[1] += lanes_total(z0, z1);
  return bad;
}

QK_X86_INLINE void add_terms(double* d, __m512 t, __mmask16 k) {
  const __mmask8 k0 = static_cast<__mmask8>(k), k1 = static_cast<__mmask8>(k >> 8);
  const __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(t));
  const __m512d b = _mm512_cvtps_pd(_mm512_extractf32x8_ps(t, 1));
  _mm512_mask_storeu_pd(d, k0, _mm512_add_pd(_mm512_maskz_loadu_pd(k0, d), a));
  _mm512_mask_storeu_pd(d + 8, k1, _mm512_add_pd(_mm512_maskz_loadu_pd(k1, d + 8), b));
}

template <bool kDx, bool kAcc>
uint64_t lsq_vec_impl(const float* x, const float* dy, size_t n, const float* scale, const int32_t* zb,
                      const LsqParams& p, float* dx, double* ds, double* dz) {
  const __m512 lo = _mm512_set1_ps(static_cast<float>(p.qmin)), hi = _mm512_set1_ps(static_cast<float>(p.qmax));
  const __m512 gf = _mm512_set1_ps(p.gf), one = _mm512_set1_ps(1.0f);
  uint64_t bad = 0;
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask16(n - i);
    // Masked-off lanes load scale 0 (1 / 0 = Inf): their results are never stored.
    const __m512 s = _mm512_maskz_loadu_ps(k, scale + i);
    const __m512 z = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, zb + i));
    const Terms t = lsq16(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, dy + i), s, _mm512_div_ps(one, s),
                          z, lo, hi, gf);
    put_dx<kDx, kAcc>(dx, i, t.dx, k);
    add_terms(ds + i, t.ts, k);
    add_terms(dz + i, t.tz, k);
    bad += count_off(t.ok, k);
  }
  return bad;
}

}  // namespace

QK_QAT_EXPORTS(avx512)

}  // namespace qk
