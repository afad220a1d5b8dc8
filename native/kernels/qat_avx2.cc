// Quantization-aware training backward, AVX2: bit-identical to ste_grad_ref / lsq_grad_ref /
// lsq_grad_vec_ref (numerics in native/core/kernel_types_qat.h). The LSQ terms are float32 vector
// ops in the reference's order (mul, add, sub; -ffp-contract=off keeps them unfused), rounding with
// vroundps under MXCSR (nearbyint); the 16 float64 lanes of a run's sum are four ymm of doubles
// (lanes 0-3, 4-7, 8-11, 12-15). Tails: vmaskmov loads of the lanes [0, m), terms of the other
// lanes zeroed (+0 changes no lane).
#include "avx2_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "qat_common.h"

namespace qk {
namespace {

using avx2::lane_mask;
using avx2::store_partial_ps;

constexpr int kRoundCur = _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC;

// All ones where v is finite (|v| < Inf; NaN: 0).
QK_X86_INLINE __m256 finite_mask(__m256 v) {
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
  return _mm256_cmp_ps(a, _mm256_set1_ps(__builtin_inff()), _CMP_LT_OQ);
}

QK_X86_INLINE uint64_t count_off(__m256 ok, uint32_t lanes) {
  return x86::popcount32(~static_cast<uint32_t>(_mm256_movemask_ps(ok)) & lanes);
}

// ---- STE ----------------------------------------------------------------------------------------

QK_X86_INLINE __m256 mask_floats(uint64_t bytes8) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes8))));
}

template <bool kAcc>
uint64_t ste_impl(const float* dy, const uint8_t* mask, size_t n, float* dx) {
  uint64_t bad = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t mb;
    std::memcpy(&mb, mask + i, 8);
    const __m256 d = _mm256_loadu_ps(dy + i);
    const __m256 ok = finite_mask(d);
    __m256 g = _mm256_and_ps(_mm256_mul_ps(d, mask_floats(mb)), ok);
    if (kAcc) g = _mm256_add_ps(_mm256_loadu_ps(dx + i), g);
    _mm256_storeu_ps(dx + i, g);
    bad += count_off(ok, 0xffu);
  }
  if (i < n) {
    const size_t m = n - i;
    const __m256i k = lane_mask(m);
    const __m256 d = _mm256_maskload_ps(dy + i, k);
    const __m256 ok = finite_mask(d);
    __m256 g = _mm256_and_ps(_mm256_mul_ps(d, mask_floats(x86::load_bytes(mask + i, m))), ok);
    if (kAcc) g = _mm256_add_ps(_mm256_maskload_ps(dx + i, k), g);
    store_partial_ps(dx + i, g, m);
    bad += count_off(ok, (1u << m) - 1u);
  }
  return bad;
}

// ---- LSQ ----------------------------------------------------------------------------------------

struct Terms {
  __m256 dx, ts, tz, ok;
};

// 8 elements with their scale s, reciprocal inv and zero point zb (vectors: per lane or broadcast).
QK_X86_INLINE Terms lsq8(__m256 x, __m256 dy, __m256 s, __m256 inv, __m256 zb, __m256 lo, __m256 hi, __m256 gf) {
  const __m256 q = _mm256_round_ps(_mm256_add_ps(zb, _mm256_mul_ps(x, inv)), kRoundCur);
  const __m256 below = _mm256_cmp_ps(q, lo, _CMP_LT_OQ);
  const __m256 clip = _mm256_or_ps(below, _mm256_cmp_ps(q, hi, _CMP_GT_OQ));
  // in range
  const __m256 xfq = _mm256_mul_ps(_mm256_sub_ps(q, zb), s);
  const __m256 tin = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dy, _mm256_sub_ps(xfq, x)), inv), gf);
  // clipped
  const __m256 d = _mm256_blendv_ps(_mm256_sub_ps(hi, zb), _mm256_sub_ps(lo, zb), below);
  const __m256 tcl = _mm256_mul_ps(_mm256_mul_ps(dy, d), gf);
  const __m256 zcl = _mm256_mul_ps(_mm256_mul_ps(_mm256_xor_ps(dy, _mm256_set1_ps(-0.0f)), s), gf);
  const __m256 dcl = _mm256_mul_ps(dy, _mm256_setzero_ps());
  const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(x, x, _CMP_ORD_Q), finite_mask(dy));
  Terms t;
  t.ts = _mm256_and_ps(_mm256_blendv_ps(tin, tcl, clip), ok);
  t.tz = _mm256_and_ps(_mm256_and_ps(zcl, clip), ok);
  t.dx = _mm256_and_ps(_mm256_blendv_ps(dy, dcl, clip), ok);
  t.ok = ok;
  return t;
}

// The lane sums: four ymm of doubles, lanes 0-3, 4-7, 8-11, 12-15.
struct Lanes {
  __m256d a[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  // Adds 8 terms of lanes 8 * half .. 8 * half + 7.
  QK_X86_INLINE void add8(__m256 t, int half) {
    a[2 * half] = _mm256_add_pd(a[2 * half], _mm256_cvtps_pd(_mm256_castps256_ps128(t)));
    a[2 * half + 1] = _mm256_add_pd(a[2 * half + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
  }
  // l[j] + l[j + 8], then + [j + 4], + [j + 2], + [j + 1].
  QK_X86_INLINE double total() const {
    const __m256d n = _mm256_add_pd(_mm256_add_pd(a[0], a[2]), _mm256_add_pd(a[1], a[3]));
    const __m128d p = _mm_add_pd(_mm256_castpd256_pd128(n), _mm256_extractf128_pd(n, 1));
    return _mm_cvtsd_f64(_mm_add_sd(p, _mm_unpackhi_pd(p, p)));
  }
};

template <bool kDx, bool kAcc>
QK_X86_INLINE void put_dx(float* dx, size_t i, __m256 v) {
  if (!kDx) return;
  if (kAcc) v = _mm256_add_ps(_mm256_loadu_ps(dx + i), v);
  _mm256_storeu_ps(dx + i, v);
}

template <bool kDx, bool kAcc>
QK_X86_INLINE void put_dx_partial(float* dx, size_t i, __m256 v, __m256i k, size_t m) {
  if (!kDx) return;
  if (kAcc) v = _mm256_add_ps(_mm256_maskload_ps(dx + i, k), v);
  if (m == 8)
    _mm256_storeu_ps(dx + i, v);
  else
    store_partial_ps(dx + i, v, m);
}

template <bool kDx, bool kAcc>
uint64_t lsq_impl(const float* x, const float* dy, size_t n, float scale, int32_t zb, const LsqParams& p, float* dx,
                  double* sums) {
  const __m256 s = _mm256_set1_ps(scale), inv = _mm256_set1_ps(1.0f / scale);
  const __m256 z = _mm256_set1_ps(static_cast<float>(zb));
  const __m256 lo = _mm256_set1_ps(static_cast<float>(p.qmin)), hi = _mm256_set1_ps(static_cast<float>(p.qmax));
  const __m256 gf = _mm256_set1_ps(p.gf);
  Lanes ls, lz;
  uint64_t bad = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int h = 0; h < 2; ++h) {
      const size_t e = i + 8 * h;
      const Terms t = lsq8(_mm256_loadu_ps(x + e), _mm256_loadu_ps(dy + e), s, inv, z, lo, hi, gf);
      put_dx<kDx, kAcc>(dx, e, t.dx);
      ls.add8(t.ts, h);
      lz.add8(t.tz, h);
      bad += count_off(t.ok, 0xffu);
    }
  }
  for (int h = 0; i < n; ++h, i += 8) {  // < 16 left: lanes 0-7, then 8-15 (m: 1..8 of them)
    const size_t m = n - i < 8 ? n - i : 8;
    const __m256i k = lane_mask(m);
    const __m256 valid = _mm256_castsi256_ps(k);
    const Terms t = lsq8(_mm256_maskload_ps(x + i, k), _mm256_maskload_ps(dy + i, k), s, inv, z, lo, hi, gf);
    put_dx_partial<kDx, kAcc>(dx, i, t.dx, k, m);
    ls.add8(_mm256_and_ps(t.ts, valid), h);
    lz.add8(_mm256_and_ps(t.tz, valid), h);
    bad += count_off(t.ok, (m == 8 ? 0x100u : 1u << m) - 1u);
  }
  sums[0] += ls.total();
  sums[1] += lz.total();
  return bad;
}

QK_X86_INLINE void add_terms(double* d, __m256 t) {
  _mm256_storeu_pd(d, _mm256_add_pd(_mm256_loadu_pd(d), _mm256_cvtps_pd(_mm256_castps256_ps128(t))));
  _mm256_storeu_pd(d + 4, _mm256_add_pd(_mm256_loadu_pd(d + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1))));
}

template <bool kDx, bool kAcc>
uint64_t lsq_vec_impl(const float* x, const float* dy, size_t n, const float* scale, const int32_t* zb,
                      const LsqParams& p, float* dx, double* ds, double* dz) {
  const __m256 lo = _mm256_set1_ps(static_cast<float>(p.qmin)), hi = _mm256_set1_ps(static_cast<float>(p.qmax));
  const __m256 gf = _mm256_set1_ps(p.gf), one = _mm256_set1_ps(1.0f);
  uint64_t bad = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 s = _mm256_loadu_ps(scale + i);
    const __m256 z = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(zb + i)));
    const Terms t = lsq8(_mm256_loadu_ps(x + i), _mm256_loadu_ps(dy + i), s, _mm256_div_ps(one, s), z, lo, hi, gf);
    put_dx<kDx, kAcc>(dx, i, t.dx);
    add_terms(ds + i, t.ts);
    add_terms(dz + i, t.tz);
    bad += count_off(t.ok, 0xffu);
  }
  if (i < n) {
    const size_t m = n - i;
    const __m256i k = lane_mask(m);
    // Masked-off lanes load scale 0 (1 / 0 = Inf): their results are never stored.
    const __m256 s = _mm256_maskload_ps(scale + i, k);
    const __m256 z = _mm256_cvtepi32_ps(_mm256_maskload_epi32(zb + i, k));
    const Terms t =
        lsq8(_mm256_maskload_ps(x + i, k), _mm256_maskload_ps(dy + i, k), s, _mm256_div_ps(one, s), z, lo, hi, gf);
    put_dx_partial<kDx, kAcc>(dx, i, t.dx, k, m);
    alignas(32) float ts[8], tz[8];
    _mm256_store_ps(ts, t.ts);
    _mm256_store_ps(tz, t.tz);
    for (size_t j = 0; j < m; ++j) {
      ds[i + j] += ts[j];
      dz[i + j] += tz[j];
    }
    bad += count_off(t.ok, (1u << m) - 1u);
  }
  return bad;
}

}  // namespace

QK_QAT_EXPORTS(avx2)

}  // namespace qk
