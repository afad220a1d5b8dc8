// gemm_i8 on AVX512-VNNI: vpdpbusd zmm (u8 weights x s8 activations -> int32, wrapping), register
// tiles of up to 6 rows x 64 columns (24 accumulators), A broadcast from memory 4 bytes at a time,
// B streamed panel by panel (kernel_types_gemm.h). The epilogue does the float ops of
// ref_gemm.h in the same order (no FMA), so every result is bit-identical to the scalar path.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives inside the intrinsics headers
#endif
#include <immintrin.h>

#include <cstring>

#include "kernel_decls.h"

namespace qk {
namespace {

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

// Named accumulators (GCC keeps arrays of vectors in memory across the k loop).
#define QK_DP(r, v) \
  if (MR > r && NV > v) c##r##v = _mm512_dpbusd_epi32(c##r##v, b##v, av##r);
#define QK_ROW(r)                                                          \
  if (MR > r) {                                                            \
    const __m512i av##r = _mm512_set1_epi32(load4(a##r + q * 4));          \
    QK_DP(r, 0) QK_DP(r, 1) QK_DP(r, 2) QK_DP(r, 3)                        \
  }
#define QK_ST(r, v) \
  if (MR > r && NV > v) store16(g, i0 + r, j0 + v * 16, c##r##v);
#define QK_DECL(r) __m512i c##r##0 = z, c##r##1 = z, c##r##2 = z, c##r##3 = z;

template <int MR, int NV>
void ukernel(const GemmArgs& g, size_t i0, size_t j0, const uint8_t* bp, size_t w) {
  const size_t kg = g.kp / 4;
  const size_t bstride = w * 4;
  const __m512i z = _mm512_setzero_si512();
  QK_DECL(0) QK_DECL(1) QK_DECL(2) QK_DECL(3) QK_DECL(4) QK_DECL(5)
  const size_t lda = g.lda;
  const int8_t* a0 = g.a + i0 * lda;
  const int8_t* a1 = a0 + lda;
  const int8_t* a2 = a1 + lda;
  const int8_t* a3 = a2 + lda;
  const int8_t* a4 = a3 + lda;
  const int8_t* a5 = a4 + lda;
  for (size_t q = 0; q < kg; ++q) {
    const __m512i b0 = _mm512_loadu_si512(bp);
    const __m512i b1 = NV > 1 ? _mm512_loadu_si512(bp + 64) : z;
    const __m512i b2 = NV > 2 ? _mm512_loadu_si512(bp + 128) : z;
    const __m512i b3 = NV > 3 ? _mm512_loadu_si512(bp + 192) : z;
    bp += bstride;
    QK_ROW(0) QK_ROW(1) QK_ROW(2) QK_ROW(3) QK_ROW(4) QK_ROW(5)
  }
  QK_ST(0, 0) QK_ST(0, 1) QK_ST(0, 2) QK_ST(0, 3)
  QK_ST(1, 0) QK_ST(1, 1) QK_ST(1, 2) QK_ST(1, 3)
  QK_ST(2, 0) QK_ST(2, 1) QK_ST(2, 2) QK_ST(2, 3)
  QK_ST(3, 0) QK_ST(3, 1) QK_ST(3, 2) QK_ST(3, 3)
  QK_ST(4, 0) QK_ST(4, 1) QK_ST(4, 2) QK_ST(4, 3)
  QK_ST(5, 0) QK_ST(5, 1) QK_ST(5, 2) QK_ST(5, 3)
}
#undef QK_DP
#undef QK_ROW
#undef QK_ST
#undef QK_DECL

using ukernel_fn = void (*)(const GemmArgs&, size_t, size_t, const uint8_t*, size_t);

#define QK_ROW(mr) {&ukernel<mr, 1>, &ukernel<mr, 2>, &ukernel<mr, 3>, &ukernel<mr, 4>}
const ukernel_fn kTable[6][4] = {QK_ROW(1), QK_ROW(2), QK_ROW(3), QK_ROW(4), QK_ROW(5), QK_ROW(6)};
#undef QK_ROW

}  // namespace

void gemm_i8_avx512vnni(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t n1) {
  for (size_t j0 = n0; j0 < n1; j0 += kGemmPanel) {
    const size_t p = j0 / kGemmPanel;
    const size_t w = gemm_panel_width(p, g.np);
    const uint8_t* bp = g.b + gemm_panel_offset(p, g.kp);
    const size_t nv = w / 16;
    for (size_t i = m0; i < m1; i += 6) {
      const size_t mr = m1 - i < 6 ? m1 - i : 6;
      kTable[mr - 1][nv - 1](g, i, j0, bp, w);
    }
  }
}

}  // namespace qk
