// Min/max, AVX2. Matches minmax_uniform_ref / minmax_vec_ref: finite values are folded in, NaN
// and +-Inf are counted and skipped. Non-finite lanes are turned into NaN (or with the all-ones
// compare mask); vminps(x', m) returns m when x' is NaN and is otherwise exactly the
// reference's x < m ? x : m, so minmax_vec is bit-identical; minmax_uniform may differ only in
// the sign of a zero result (lanes are folded in a different order).
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"

namespace qk {
namespace {

struct NonFinite {
  __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  __m256i max_finite = _mm256_set1_epi32(0x7f7fffff);
  QK_X86_INLINE __m256i abs_bits(__m256 x) const { return _mm256_and_si256(_mm256_castps_si256(x), abs_mask); }
  // All-ones lanes where x is NaN or +-Inf.
  QK_X86_INLINE __m256i operator()(__m256 x) const { return _mm256_cmpgt_epi32(abs_bits(x), max_finite); }
};

struct Counts {
  uint64_t nan = 0, nonfinite = 0;
  QK_X86_INLINE void add(__m256 x, __m256i nf) {
    const int nf_bits = _mm256_movemask_ps(_mm256_castsi256_ps(nf));
    const int nan_bits = _mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    nonfinite += x86::popcount32(static_cast<uint32_t>(nf_bits));
    nan += x86::popcount32(static_cast<uint32_t>(nan_bits));
  }
};

QK_X86_INLINE __m256 nan_where(__m256 x, __m256i nf) { return _mm256_or_ps(x, _mm256_castsi256_ps(nf)); }

QK_X86_INLINE float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

QK_X86_INLINE float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

}  // namespace

void minmax_uniform_avx2(const float* x, size_t n, MinMaxAcc* acc) {
  const NonFinite nonfinite;
  const __m256 pinf = _mm256_set1_ps(__builtin_inff());
  const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
  // Two accumulator pairs: with more, GCC spills them around the slow path (16 ymm registers).
  __m256 mn0 = pinf, mn1 = pinf;
  __m256 mx0 = ninf, mx1 = ninf;
  Counts cnt;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
    const __m256 x2 = _mm256_loadu_ps(x + i + 16), x3 = _mm256_loadu_ps(x + i + 24);
    // Fast test for the whole block: the largest |x| bit pattern is above FLT_MAX's.
    const __m256i a = _mm256_max_epu32(_mm256_max_epu32(nonfinite.abs_bits(x0), nonfinite.abs_bits(x1)),
                                       _mm256_max_epu32(nonfinite.abs_bits(x2), nonfinite.abs_bits(x3)));
    const __m256i any = _mm256_cmpgt_epi32(a, nonfinite.max_finite);
    if (__builtin_expect(_mm256_testz_si256(any, any), 1)) {
      mn0 = _mm256_min_ps(_mm256_min_ps(x0, x1), mn0);
      mx0 = _mm256_max_ps(_mm256_max_ps(x0, x1), mx0);
      mn1 = _mm256_min_ps(_mm256_min_ps(x2, x3), mn1);
      mx1 = _mm256_max_ps(_mm256_max_ps(x2, x3), mx1);
    } else {
      // NaN y lanes keep the accumulator (it is the second operand).
      const __m256i f0 = nonfinite(x0), f1 = nonfinite(x1), f2 = nonfinite(x2), f3 = nonfinite(x3);
      const __m256 y0 = nan_where(x0, f0), y1 = nan_where(x1, f1);
      const __m256 y2 = nan_where(x2, f2), y3 = nan_where(x3, f3);
      mn0 = _mm256_min_ps(y1, _mm256_min_ps(y0, mn0));
      mx0 = _mm256_max_ps(y1, _mm256_max_ps(y0, mx0));
      mn1 = _mm256_min_ps(y3, _mm256_min_ps(y2, mn1));
      mx1 = _mm256_max_ps(y3, _mm256_max_ps(y2, mx1));
      cnt.add(x0, f0);
      cnt.add(x1, f1);
      cnt.add(x2, f2);
      cnt.add(x3, f3);
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256i f = nonfinite(v);
    const __m256 y = nan_where(v, f);
    mn0 = _mm256_min_ps(y, mn0);
    mx0 = _mm256_max_ps(y, mx0);
    if (!_mm256_testz_si256(f, f)) cnt.add(v, f);
  }
  const float lmin = hmin(_mm256_min_ps(mn0, mn1));
  const float lmax = hmax(_mm256_max_ps(mx0, mx1));
  // Fold as the reference would (keeps an incoming NaN, ignores +-inf lanes that saw nothing).
  float mn = lmin < acc->min ? lmin : acc->min;
  float mx = lmax > acc->max ? lmax : acc->max;
  acc->nan += cnt.nan;
  acc->inf += cnt.nonfinite - cnt.nan;
  for (; i < n; ++i) x86::minmax_one(x[i], &mn, &mx, acc);
  acc->min = mn;
  acc->max = mx;
}

void minmax_vec_avx2(const float* x, size_t n, float* mins, float* maxs, MinMaxAcc* acc) {
  const NonFinite nonfinite;
  Counts cnt;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256i f = nonfinite(v);
    const __m256 y = nan_where(v, f);
    // NaN y keeps the stored value; otherwise y < m ? y : m exactly as the reference.
    _mm256_storeu_ps(mins + i, _mm256_min_ps(y, _mm256_loadu_ps(mins + i)));
    _mm256_storeu_ps(maxs + i, _mm256_max_ps(y, _mm256_loadu_ps(maxs + i)));
    if (__builtin_expect(!_mm256_testz_si256(f, f), 0)) cnt.add(v, f);
  }
  acc->nan += cnt.nan;
  acc->inf += cnt.nonfinite - cnt.nan;
  for (; i < n; ++i) x86::minmax_one(x[i], mins + i, maxs + i, acc);
}

}  // namespace qk
