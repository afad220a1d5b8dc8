// gemm_i8 on AVX2, exact: no vpmaddubsw (its int16 saturation is wrong for u8 x s8 pairs). B bytes
// are widened to int16 (vpmovzxbw), A's 4 bytes of a k-group to int16 and broadcast, and vpmaddwd
// adds pairs of exact products into int32 (|pair| <= 2 * 255 * 128 < 2^31); vpaddd wraps mod 2^32
// like every path. Register tile: 2 rows x 16 columns; a strip is 16 columns. The epilogue does the float ops of
// ref_gemm.h in the same order (no FMA), so results are bit-identical to the scalar path.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives inside the intrinsics headers
#endif
#include <immintrin.h>

#include <cstring>

#include "kernel_decls.h"
#include "strip.h"

namespace qk {
namespace {

constexpr KernelGeom kGeom = geom::gemm_i8_avx2;  // kernels_gemm.def
static_assert(kGeom.mr >= 1 && kGeom.mr <= 2 && kGeom.nr == 16, "the tile below is 1-2 rows x 16 columns");

inline int32_t load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Epilogue of 8 columns j..j+7 of row i (only columns < n are written).
void store8(const GemmArgs& g, size_t i, size_t j, __m256i acc) {
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

// 4 accumulators of pair sums (columns 0-3, 4-7, 8-11, 12-15) -> 2 vectors of 8 column sums.
inline void reduce16(const __m256i* acc, __m256i* out) {
  out[0] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[0], acc[1]), 0xD8);
  out[1] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[2], acc[3]), 0xD8);
}

inline __m256i bcast_a(const int8_t* p) {
  return _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(load4(p))));
}

// MR rows (1 or 2) x 16 columns at bp (a 16-column slice of a panel of width w). Named
// accumulators: GCC keeps arrays of vectors in memory across the k loop.
template <int MR>
void ukernel(const GemmArgs& g, size_t i0, size_t j0, const uint8_t* bp, size_t w) {
  const size_t kg = g.kp / 4;
  const size_t bstride = w * 4;
  const __m256i z = _mm256_setzero_si256();
  __m256i c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
  const int8_t* a0 = g.a + i0 * g.lda;
  const int8_t* a1 = a0 + g.lda;
  for (size_t q = 0; q < kg; ++q) {
    const __m256i b0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp)));
    const __m256i b1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp + 16)));
    const __m256i b2 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp + 32)));
    const __m256i b3 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bp + 48)));
    bp += bstride;
    const __m256i x0 = bcast_a(a0 + q * 4);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(b0, x0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(b1, x0));
    c02 = _mm256_add_epi32(c02, _mm256_madd_epi16(b2, x0));
    c03 = _mm256_add_epi32(c03, _mm256_madd_epi16(b3, x0));
    if (MR > 1) {
      const __m256i x1 = bcast_a(a1 + q * 4);
      c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(b0, x1));
      c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(b1, x1));
      c12 = _mm256_add_epi32(c12, _mm256_madd_epi16(b2, x1));
      c13 = _mm256_add_epi32(c13, _mm256_madd_epi16(b3, x1));
    }
  }
  __m256i s[2];
  const __m256i r0[4] = {c00, c01, c02, c03};
  reduce16(r0, s);
  store8(g, i0, j0, s[0]);
  store8(g, i0, j0 + 8, s[1]);
  if (MR > 1) {
    const __m256i r1[4] = {c10, c11, c12, c13};
    reduce16(r1, s);
    store8(g, i0 + 1, j0, s[0]);
    store8(g, i0 + 1, j0 + 8, s[1]);
  }
}

}  // namespace

void gemm_i8_avx2(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t /*n1: n0 + 16*/) {
  size_t w;
  const uint8_t* bp = gemm_strip_b(g, n0, &w);
  for_row_tiles<kGeom.mr>(m0, m1, [&](auto r, size_t i) { ukernel<decltype(r)::value>(g, i, n0, bp, w); });
}

}  // namespace qk
