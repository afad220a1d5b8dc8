// The int8 GEMM epilogue on 16 zmm columns (zero-point corrections, then the float ops of
// ref_gemm.h in the same order, no FMA), shared by the gemm_i8 kernels compiled with AVX-512 flags
// (gemm_avx512vnni.cc, gemm_amx.cc). Unnamed namespace: each kernel file gets its own copy.
#pragma once
#include "x86_common.h"  // first: <immintrin.h>

namespace qk {
namespace {

// Epilogue of 16 columns j..j+15 of row i (only columns < n are written).
inline __mmask16 col_mask(size_t j, size_t n) {
  if (j >= n) return 0;
  const size_t v = n - j;
  return v >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << v) - 1);
}

inline void store16(const GemmArgs& g, size_t i, size_t j, __m512i acc) {
  const __mmask16 m = col_mask(j, g.n);
  if (!m) return;
  const __m512i zb = _mm512_loadu_si512(g.col_zb + j);
  const __m512i cc = _mm512_loadu_si512(g.col_c + j);
  acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(g.row_sum[i]), zb));
  acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(g.row_za[i]), cc));
  switch (g.out_kind) {
    case kGemmOutInt32: _mm512_mask_storeu_epi32(static_cast<int32_t*>(g.out) + i * g.ldo + j, m, acc); return;
    case kGemmOutFloat32: {
      const __m512 s = _mm512_mul_ps(_mm512_set1_ps(g.a_scale[i * g.a_scale_step]), _mm512_loadu_ps(g.b_scale + j));
      __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), s);
      y = _mm512_add_ps(y, _mm512_loadu_ps(g.bias + j));
      if (g.relu) y = _mm512_max_ps(y, _mm512_setzero_ps());
      _mm512_mask_storeu_ps(static_cast<float*>(g.out) + i * g.ldo + j, m, y);
      return;
    }
    default: {
      __m512 mult;
      if (g.a_scale_step)
        mult = _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(g.a_scale[i]), _mm512_loadu_ps(g.b_scale + j)),
                             _mm512_set1_ps(g.y_scale));
      else
        mult = _mm512_loadu_ps(g.col_mult + j);
      const __m512d zp = _mm512_set1_pd(static_cast<double>(g.y_zp));
      const __m512d lo = _mm512_set1_pd(static_cast<double>(g.qlo));
      const __m512d hi = _mm512_set1_pd(static_cast<double>(g.qhi));
      const __m512i bq = _mm512_loadu_si512(g.bias_q + j);
      __m256i half[2];
      for (int h = 0; h < 2; ++h) {
        const __m256i a8 = h ? _mm512_extracti64x4_epi64(acc, 1) : _mm512_castsi512_si256(acc);
        const __m256i b8 = h ? _mm512_extracti64x4_epi64(bq, 1) : _mm512_castsi512_si256(bq);
        const __m256 m8 =
            h ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(mult), 1)) : _mm512_castps512_ps256(mult);
        __m512d v = _mm512_add_pd(_mm512_cvtepi32_pd(a8), _mm512_cvtepi32_pd(b8));  // exact
        v = _mm512_mul_pd(v, _mm512_cvtps_pd(m8));
        v = _mm512_add_pd(v, zp);
        v = _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_max_pd(v, lo);
        v = _mm512_min_pd(v, hi);
        half[h] = _mm512_cvtpd_epi32(v);
      }
      const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(half[0]), half[1], 1);
      _mm_mask_storeu_epi8(static_cast<uint8_t*>(g.out) + i * g.ldo + j, m, _mm512_cvtepi32_epi8(q));
      return;
    }
  }
}

}  // namespace
}  // namespace qk
