// The int8 GEMM epilogue on 8 ymm columns (zero-point corrections, then the float ops of
// ref_gemm.h in the same order, no FMA), shared by the gemm_i8 kernels compiled with AVX2 flags
// (gemm_avx2.cc, gemm_avxvnni.cc). Unnamed namespace: each kernel file gets its own copy.
#pragma once
#include "x86_common.h"  // first: <immintrin.h>

namespace qk {
namespace {

// Epilogue of 8 columns j..j+7 of row i (only columns < n are written).
inline void store8(const GemmArgs& g, size_t i, size_t j, __m256i acc) {
  if (j >= g.n) return;
  const size_t valid = g.n - j < 8 ? g.n - j : 8;
  const __m256i zb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.col_zb + j));
  const __m256i cc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.col_c + j));
  acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(g.row_sum[i]), zb));
  acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(g.row_za[i]), cc));
  alignas(32) int32_t ti[8];
  alignas(32) float tf[8];
  switch (g.out_kind) {
    case kGemmOutInt32: {
      int32_t* o = static_cast<int32_t*>(g.out) + i * g.ldo + j;
      if (valid == 8) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), acc);
      } else {
        _mm256_store_si256(reinterpret_cast<__m256i*>(ti), acc);
        std::memcpy(o, ti, valid * 4);
      }
      return;
    }
    case kGemmOutFloat32: {
      const __m256 s = _mm256_mul_ps(_mm256_set1_ps(g.a_scale[i * g.a_scale_step]), _mm256_loadu_ps(g.b_scale + j));
      __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), s);
      y = _mm256_add_ps(y, _mm256_loadu_ps(g.bias + j));
      if (g.relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
      float* o = static_cast<float*>(g.out) + i * g.ldo + j;
      if (valid == 8) {
        _mm256_storeu_ps(o, y);
      } else {
        _mm256_store_ps(tf, y);
        std::memcpy(o, tf, valid * 4);
      }
      return;
    }
    default: {
      __m256 mult;
      if (g.a_scale_step)
        mult = _mm256_div_ps(_mm256_mul_ps(_mm256_set1_ps(g.a_scale[i]), _mm256_loadu_ps(g.b_scale + j)),
                             _mm256_set1_ps(g.y_scale));
      else
        mult = _mm256_loadu_ps(g.col_mult + j);
      const __m256d zp = _mm256_set1_pd(static_cast<double>(g.y_zp));
      const __m256d lo = _mm256_set1_pd(static_cast<double>(g.qlo));
      const __m256d hi = _mm256_set1_pd(static_cast<double>(g.qhi));
      const __m256i bq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.bias_q + j));
      __m128i half[2];
      for (int h = 0; h < 2; ++h) {
        const __m128i a4 = h ? _mm256_extracti128_si256(acc, 1) : _mm256_castsi256_si128(acc);
        const __m128i b4 = h ? _mm256_extracti128_si256(bq, 1) : _mm256_castsi256_si128(bq);
        const __m128 m4 = h ? _mm256_extractf128_ps(mult, 1) : _mm256_castps256_ps128(mult);
        __m256d v = _mm256_add_pd(_mm256_cvtepi32_pd(a4), _mm256_cvtepi32_pd(b4));  // exact
        v = _mm256_mul_pd(v, _mm256_cvtps_pd(m4));
        v = _mm256_add_pd(v, zp);
        v = _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_max_pd(v, lo);
        v = _mm256_min_pd(v, hi);
        half[h] = _mm256_cvtpd_epi32(v);
      }
      const __m128i w16 = _mm_packs_epi32(half[0], half[1]);
      const __m128i b8 = g.out_kind == kGemmOutInt8 ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
      uint8_t* o = static_cast<uint8_t*>(g.out) + i * g.ldo + j;
      if (valid == 8) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(o), b8);
      } else {
        alignas(16) uint8_t tb[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tb), b8);
        std::memcpy(o, tb, valid);
      }
      return;
    }
  }
}

}  // namespace
}  // namespace qk
