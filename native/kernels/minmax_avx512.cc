// Min/max, AVX-512 (F/BW/DQ/VL). Matches minmax_uniform_ref / minmax_vec_ref: finite values are
// folded in, NaN and +-Inf are counted (vfpclassps) and skipped. vminps(x, m) is exactly the
// reference's x < m ? x : m, so minmax_vec is bit-identical; minmax_uniform may differ only in the
// sign of a zero result (lanes are folded in a different order).
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"

namespace qk {
namespace {

QK_X86_INLINE __mmask16 tail_mask16(size_t rem) {
  return rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
}

constexpr int kNonFinite = 0x01 | 0x80 | 0x08 | 0x10;  // QNaN | SNaN | +Inf | -Inf
constexpr int kNaN = 0x01 | 0x80;

struct Counts {
  uint64_t nan = 0, nonfinite = 0;
  // k: the non-finite lanes of x (within the valid ones).
  QK_X86_INLINE void add(__m512 x, __mmask16 k) {
    nonfinite += x86::popcount32(k);
    nan += x86::popcount32(_mm512_mask_fpclass_ps_mask(k, x, kNaN));
  }
};

}  // namespace

void minmax_uniform_avx512(const float* x, size_t n, MinMaxAcc* acc) {
  const __m512 pinf = _mm512_set1_ps(__builtin_inff());
  const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
  __m512 mn0 = pinf, mn1 = pinf, mn2 = pinf, mn3 = pinf;
  __m512 mx0 = ninf, mx1 = ninf, mx2 = ninf, mx3 = ninf;
  Counts cnt;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
    const __m512 x2 = _mm512_loadu_ps(x + i + 32), x3 = _mm512_loadu_ps(x + i + 48);
    const __mmask16 f0 = _mm512_fpclass_ps_mask(x0, kNonFinite);
    const __mmask16 f1 = _mm512_fpclass_ps_mask(x1, kNonFinite);
    const __mmask16 f2 = _mm512_fpclass_ps_mask(x2, kNonFinite);
    const __mmask16 f3 = _mm512_fpclass_ps_mask(x3, kNonFinite);
    mn0 = _mm512_mask_min_ps(mn0, static_cast<__mmask16>(~f0), x0, mn0);
    mx0 = _mm512_mask_max_ps(mx0, static_cast<__mmask16>(~f0), x0, mx0);
    mn1 = _mm512_mask_min_ps(mn1, static_cast<__mmask16>(~f1), x1, mn1);
    mx1 = _mm512_mask_max_ps(mx1, static_cast<__mmask16>(~f1), x1, mx1);
    mn2 = _mm512_mask_min_ps(mn2, static_cast<__mmask16>(~f2), x2, mn2);
    mx2 = _mm512_mask_max_ps(mx2, static_cast<__mmask16>(~f2), x2, mx2);
    mn3 = _mm512_mask_min_ps(mn3, static_cast<__mmask16>(~f3), x3, mn3);
    mx3 = _mm512_mask_max_ps(mx3, static_cast<__mmask16>(~f3), x3, mx3);
    if (__builtin_expect((f0 | f1 | f2 | f3) != 0, 0)) {
      cnt.add(x0, f0);
      cnt.add(x1, f1);
      cnt.add(x2, f2);
      cnt.add(x3, f3);
    }
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    const __mmask16 f = _mm512_mask_fpclass_ps_mask(k, v, kNonFinite);
    const __mmask16 fin = static_cast<__mmask16>(k & ~f);
    mn0 = _mm512_mask_min_ps(mn0, fin, v, mn0);
    mx0 = _mm512_mask_max_ps(mx0, fin, v, mx0);
    if (f) cnt.add(v, f);
  }
  const __m512 mn = _mm512_min_ps(_mm512_min_ps(mn0, mn1), _mm512_min_ps(mn2, mn3));
  const __m512 mx = _mm512_max_ps(_mm512_max_ps(mx0, mx1), _mm512_max_ps(mx2, mx3));
  const float lmin = _mm512_reduce_min_ps(mn);  // lanes hold finite values or +-inf, no NaN
  const float lmax = _mm512_reduce_max_ps(mx);
  // Fold as the reference would (keeps an incoming NaN, ignores +-inf lanes that saw nothing).
  acc->min = lmin < acc->min ? lmin : acc->min;
  acc->max = lmax > acc->max ? lmax : acc->max;
  acc->nan += cnt.nan;
  acc->inf += cnt.nonfinite - cnt.nan;
}

void minmax_vec_avx512(const float* x, size_t n, float* mins, float* maxs, MinMaxAcc* acc) {
  Counts cnt;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __mmask16 f = _mm512_fpclass_ps_mask(v, kNonFinite);
    const __mmask16 fin = static_cast<__mmask16>(~f);
    const __m512 mn = _mm512_loadu_ps(mins + i), mx = _mm512_loadu_ps(maxs + i);
    _mm512_storeu_ps(mins + i, _mm512_mask_min_ps(mn, fin, v, mn));  // v < mn ? v : mn
    _mm512_storeu_ps(maxs + i, _mm512_mask_max_ps(mx, fin, v, mx));
    if (__builtin_expect(f != 0, 0)) cnt.add(v, f);
  }
  if (i < n) {
    const __mmask16 k = tail_mask16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    const __mmask16 f = _mm512_mask_fpclass_ps_mask(k, v, kNonFinite);
    const __mmask16 fin = static_cast<__mmask16>(k & ~f);
    const __m512 mn = _mm512_maskz_loadu_ps(k, mins + i), mx = _mm512_maskz_loadu_ps(k, maxs + i);
    _mm512_mask_storeu_ps(mins + i, fin, _mm512_min_ps(v, mn));
    _mm512_mask_storeu_ps(maxs + i, fin, _mm512_max_ps(v, mx));
    if (f) cnt.add(v, f);
  }
  acc->nan += cnt.nan;
  acc->inf += cnt.nonfinite - cnt.nan;
}

}  // namespace qk
