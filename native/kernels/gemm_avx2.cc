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

#include "gemm_store_avx2.h"
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
