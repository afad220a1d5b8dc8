// Histogram, AVX-512 (F/DQ). Bin indices of 16 values at a time with the reference's float32
// operations (vmulps, vsubps, vdivps, vmulps: IEEE, no FMA, so every index equals
// hist_bin_of()), then scalar adds (HistSink: two interleaved uint16 sub-histograms for long inputs).
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"

#include <vector>

#include "../core/observe_bin.h"

namespace qk {

void histogram_avx512(const float* x, size_t n, const HistParams& p, uint32_t* counts) {
  thread_local std::vector<uint16_t> buf;
  HistSink<16> sink(counts, p, n, buf);
  const __m512 lo = _mm512_set1_ps(p.lo), hi = _mm512_set1_ps(p.hi);
  const __m512 sc = _mm512_set1_ps(p.scale), los = _mm512_set1_ps(p.lo_s);
  const __m512 fb = _mm512_set1_ps(p.fbins), w = _mm512_set1_ps(p.width_s);
  const __m512i last = _mm512_set1_epi32(static_cast<int>(p.nbins - 1));
  const __m512i skip = _mm512_set1_epi32(-1);
  const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
  const bool ab = (p.flags & QK_HIST_ABS) != 0;
  alignas(64) uint32_t idx[16];
  const bool redirect = sink.redirect();
  const __m512i hotv = _mm512_set1_epi32(static_cast<int>(sink.hot));
  const __m512i trashv = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(p.nbins)),
                                          _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i);
    if (ab) v = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), absmask));
    const __mmask16 in = _mm512_cmp_ps_mask(v, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, hi, _CMP_LE_OQ);
    const __m512 t = _mm512_mul_ps(_mm512_div_ps(_mm512_sub_ps(_mm512_mul_ps(v, sc), los), w), fb);
    const __mmask16 lt = _mm512_cmp_ps_mask(t, fb, _CMP_LT_OQ);
    __m512i b = _mm512_mask_blend_epi32(lt, last, _mm512_cvttps_epi32(t));
    if (redirect) {  // lanes in the bin of 0: counted by popcount, added to per-lane scratch slots
      const __mmask16 hm = _mm512_mask_cmpeq_epi32_mask(in, b, hotv);
      sink.nhot += x86::popcount32(hm);
      b = _mm512_mask_blend_epi32(hm, b, trashv);
    }
    b = _mm512_mask_blend_epi32(in, skip, b);
    _mm512_store_si512(reinterpret_cast<__m512i*>(idx), b);
    sink.add(idx, in == 0xffff);
  }
  sink.flush();
  hist_scalar(x + i, n - i, p, counts);
}

}  // namespace qk
