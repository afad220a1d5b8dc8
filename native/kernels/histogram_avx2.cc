// Histogram, AVX2. Bin indices of 8 values at a time with the reference's float32 operations
// (IEEE mul/sub/div/mul, no FMA, so every index equals hist_bin_of()), then scalar adds (HistSink:
// two interleaved uint16 sub-histograms for long inputs).
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"

#include <vector>

#include "../core/observe_bin.h"

namespace qk {

void histogram_avx2(const float* x, size_t n, const HistParams& p, uint32_t* counts) {
  thread_local std::vector<uint16_t> buf;
  HistSink<8> sink(counts, p, n, buf);
  const __m256 lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
  const __m256 sc = _mm256_set1_ps(p.scale), los = _mm256_set1_ps(p.lo_s);
  const __m256 fb = _mm256_set1_ps(p.fbins), w = _mm256_set1_ps(p.width_s);
  const __m256i last = _mm256_set1_epi32(static_cast<int>(p.nbins - 1));
  const __m256i skip = _mm256_set1_epi32(-1);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const bool ab = (p.flags & QK_HIST_ABS) != 0;
  alignas(32) uint32_t idx[8];
  const bool redirect = sink.redirect();
  const __m256i hotv = _mm256_set1_epi32(static_cast<int>(sink.hot));
  const __m256i trashv =
      _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(p.nbins)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    if (ab) v = _mm256_and_ps(v, absmask);
    const __m256 in = _mm256_and_ps(_mm256_cmp_ps(v, lo, _CMP_GE_OQ), _mm256_cmp_ps(v, hi, _CMP_LE_OQ));
    const __m256 t = _mm256_mul_ps(_mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(v, sc), los), w), fb);
    const __m256 lt = _mm256_cmp_ps(t, fb, _CMP_LT_OQ);
    __m256i b = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(last), _mm256_castsi256_ps(_mm256_cvttps_epi32(t)), lt));
    if (redirect) {  // lanes in the bin of 0: counted by popcount, added to per-lane scratch slots
      const __m256 hm = _mm256_and_ps(in, _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, hotv)));
      sink.nhot += x86::popcount32(static_cast<uint32_t>(_mm256_movemask_ps(hm)));
      b = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(trashv), hm));
    }
    b = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(skip), _mm256_castsi256_ps(b), in));
    _mm256_store_si256(reinterpret_cast<__m256i*>(idx), b);
    sink.add(idx, _mm256_movemask_ps(in) == 0xff);
  }
  sink.flush();
  hist_scalar(x + i, n - i, p, counts);
}

}  // namespace qk
