// gemm_i8 on AVX-VNNI: the VEX vpdpbusd on ymm (u8 weights x s8 activations, four exact products
// per int32 lane added without saturation, wrapping mod 2^32 like every path; unlike vpmaddubsw
// there is no int16 step). Register tile: up to 6 rows x 16 columns, 12 accumulators; per k-group
// two ymm of B (16 columns x 4 bytes of the packed panel) and one broadcast of A's 4 bytes per row.
// A strip is one panel (64 columns, fewer at the end of B); a strip's single last row runs across
// the whole panel at once (row<V> below). The epilogue (gemm_store_avx2.h) does the float ops of ref_gemm.h in the
// same order (no FMA), so every result is bit-identical to the scalar path.
#include "gemm_store_avx2.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "strip.h"

#include <type_traits>

namespace qk {
namespace {

constexpr KernelGeom kGeom = geom::gemm_i8_avxvnni;  // kernels_gemm.def
static_assert(kGeom.mr >= 1 && kGeom.mr <= 6 && kGeom.nr == kGemmPanel,
              "strips of one panel, tiles of 1-6 rows x 16 columns (12 ymm accumulators at most)");

inline int32_t load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Drives step (which advances q by one k-group) over q < kg, cycling through the U accumulator
// sets (step(integral_constant<u>)) while U groups remain, then set 0 for the rest.
template <int U, class Step>
QK_X86_INLINE void step_k(const size_t& q, size_t kg, Step& step) {
  for (; q + U <= kg;) {
    step(std::integral_constant<int, 0>{});
    if constexpr (U > 1) step(std::integral_constant<int, (U > 1 ? 1 : 0)>{});
    if constexpr (U > 2) {
      step(std::integral_constant<int, (U > 2 ? 2 : 0)>{});
      step(std::integral_constant<int, (U > 3 ? 3 : 0)>{});
    }
  }
  while (q < kg) step(std::integral_constant<int, 0>{});
}

// R rows x 16 columns at bp (a 16-column slice of a panel of width w). Short tiles (the M = 1
// of a matrix-vector product, tail rows) would wait on vpdpbusd's latency with 2 accumulators
// per row, so they keep U sets for consecutive k-groups and add them at the end (wrapping int32
// addition: the same sums in any order). Out of line, one function per row count.
template <int R>
__attribute__((noinline)) void tile(const GemmArgs& g, size_t i0, size_t j0, const uint8_t* bp, size_t w) {
  constexpr int U = R == 1 ? 4 : R <= 3 ? 2 : 1;  // R * 2 * U <= 12 accumulators
  const size_t kg = g.kp / 4;
  const size_t bstride = w * 4;
  const size_t lda = g.lda;
  const int8_t* a = g.a + i0 * lda;
  __m256i c[U][R][2];
#pragma GCC unroll 4
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) c[u][r][0] = c[u][r][1] = _mm256_setzero_si256();
  size_t q = 0;
  auto step = [&](auto uc) {
    constexpr int u = decltype(uc)::value;
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + 32));
    bp += bstride;
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256i av = _mm256_set1_epi32(load4(a + r * lda + q * 4));
      c[u][r][0] = _mm256_dpbusd_avx_epi32(c[u][r][0], b0, av);
      c[u][r][1] = _mm256_dpbusd_avx_epi32(c[u][r][1], b1, av);
    }
    ++q;
  };
  step_k<U>(q, kg, step);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int u = 1; u < U; ++u) {
      c[0][r][0] = _mm256_add_epi32(c[0][r][0], c[u][r][0]);
      c[0][r][1] = _mm256_add_epi32(c[0][r][1], c[u][r][1]);
    }
    store8(g, i0 + r, j0, c[0][r][0]);
    store8(g, i0 + r, j0 + 8, c[0][r][1]);
  }
}

// One row x 16 V columns (V = 1-4 groups of 16: the whole strip) in one pass over K: A's row is
// read once for the strip and its 4 bytes per k-group feed 2V accumulators (U sets of them for
// V <= 2, so that 8 vpdpbusd chains hide the latency). The matrix-vector product (M = 1) and a
// strip's single last row take this tile.
template <int V>
__attribute__((noinline)) void row(const GemmArgs& g, size_t i, size_t j0, const uint8_t* bp, size_t w) {
  constexpr int U = V == 1 ? 4 : V == 2 ? 2 : 1;
  const size_t kg = g.kp / 4;
  const size_t bstride = w * 4;
  const int8_t* a = g.a + i * g.lda;
  __m256i c[U][2 * V];
#pragma GCC unroll 4
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 8
    for (int v = 0; v < 2 * V; ++v) c[u][v] = _mm256_setzero_si256();
  size_t q = 0;
  auto step = [&](auto uc) {
    constexpr int u = decltype(uc)::value;
    const __m256i av = _mm256_set1_epi32(load4(a + q * 4));
#pragma GCC unroll 8
    for (int v = 0; v < 2 * V; ++v)
      c[u][v] = _mm256_dpbusd_avx_epi32(c[u][v], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + 32 * v)), av);
    bp += bstride;
    ++q;
  };
  step_k<U>(q, kg, step);
#pragma GCC unroll 8
  for (int v = 0; v < 2 * V; ++v) {
#pragma GCC unroll 4
    for (int u = 1; u < U; ++u) c[0][v] = _mm256_add_epi32(c[0][v], c[u][v]);
    store8(g, i, j0 + 8 * v, c[0][v]);
  }
}

}  // namespace

// A strip is one panel: 64 columns, or 16, 32 or 48 at the end of B. Its rows go in tiles of up to
// 6 rows per group of 16 columns (each group's 16 columns of B stay in L1 while the rows pass),
// except a single last row, which takes the whole strip at once.
void gemm_i8_avxvnni(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t n1) {
  size_t w;
  const uint8_t* bp = gemm_strip_b(g, n0, &w);
  const size_t groups = (n1 - n0) / 16;
  const size_t m_tiles = (m1 - m0) % kGeom.mr == 1 ? m1 - 1 : m1;
  for (size_t c = 0; c < groups; ++c)
    for_row_tiles<kGeom.mr>(m0, m_tiles,
                            [&](auto r, size_t i) { tile<decltype(r)::value>(g, i, n0 + 16 * c, bp + 64 * c, w); });
  if (m_tiles < m1) {
    switch (groups) {
      case 1: row<1>(g, m_tiles, n0, bp, w); break;
      case 2: row<2>(g, m_tiles, n0, bp, w); break;
      case 3: row<3>(g, m_tiles, n0, bp, w); break;
      default: row<4>(g, m_tiles, n0, bp, w); break;
    }
  }
}

}  // namespace qk
