// gemm_i8 on AVX512-VNNI: vpdpbusd zmm (u8 weights x s8 activations -> int32, wrapping), register
// tiles of up to 6 rows x 64 columns (24 accumulators), A broadcast from memory 4 bytes at a time;
// a strip is one panel of B (kernel_types_gemm.h), streamed once per tile of rows. The epilogue does the float ops of
// ref_gemm.h in the same order (no FMA), so every result is bit-identical to the scalar path.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives inside the intrinsics headers
#endif
#include <immintrin.h>

#include <cstring>

#include "kernel_decls.h"
#include "strip.h"

namespace qk {
namespace {

constexpr KernelGeom kGeom = geom::gemm_i8_avx512vnni;  // kernels_gemm.def
static_assert(kGeom.mr >= 1 && kGeom.mr <= 6 && kGeom.nr == kGemmPanel, "tiles of 1-6 rows x one panel (24 zmm accumulators at most)");

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
    case kGemmOutInt32:
      _mm512_mask_storeu_epi32(static_cast<int32_t*>(g.out) + i * g.ldo + j, m, acc);
      return;
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
        const __m256 m8 = h ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(mult), 1))
                            : _mm512_castps512_ps256(mult);
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

inline int32_t load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// MR rows x 16 NV columns: MR * NV accumulators (<= 24), NV vectors of B per k-group, A broadcast
// 4 bytes at a time. Out of line, one function per shape, as the tiles of a strip.
template <int MR, int NV>
__attribute__((noinline)) void ukernel(const GemmArgs& g, size_t i0, size_t j0, const uint8_t* bp, size_t w) {
  const size_t kg = g.kp / 4;
  const size_t bstride = w * 4;
  const size_t lda = g.lda;
  const int8_t* a = g.a + i0 * lda;
  __m512i c[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[r][v] = _mm512_setzero_si512();
  for (size_t q = 0; q < kg; ++q) {
    __m512i b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(bp + 64 * v);
    bp += bstride;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i av = _mm512_set1_epi32(load4(a + r * lda + q * 4));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[r][v] = _mm512_dpbusd_epi32(c[r][v], b[v], av);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store16(g, i0 + r, j0 + v * 16, c[r][v]);
}

template <int NV>
void strip(const GemmArgs& g, size_t m0, size_t m1, size_t n0) {
  size_t w;
  const uint8_t* bp = gemm_strip_b(g, n0, &w);
  for_row_tiles<kGeom.mr>(m0, m1, [&](auto r, size_t i) { ukernel<decltype(r)::value, NV>(g, i, n0, bp, w); });
}

}  // namespace

// A strip is one panel: 64 columns, or 16, 32 or 48 at the end of B.
void gemm_i8_avx512vnni(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t n1) {
  switch ((n1 - n0) / 16) {
    case 1: strip<1>(g, m0, m1, n0); break;
    case 2: strip<2>(g, m0, m1, n0); break;
    case 3: strip<3>(g, m0, m1, n0); break;
    default: strip<4>(g, m0, m1, n0); break;
  }
}

}  // namespace qk
