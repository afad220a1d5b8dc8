// gemm_i8 on AVX512-VNNI: vpdpbusd zmm (u8 weights x s8 activations -> int32, wrapping), register
// tiles of up to 6 rows x 64 columns (24 accumulators), A broadcast from memory 4 bytes at a time;
// a strip is one panel of B (kernel_types_gemm.h), streamed once per tile of rows. The epilogue does the float ops of
// ref_gemm.h in the same order (no FMA), so every result is bit-identical to the scalar path.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives inside the intrinsics headers
#endif
#include <immintrin.h>

#include <cstring>

#include "gemm_store_avx512.h"
#include "kernel_decls.h"
#include "strip.h"

namespace qk {
namespace {

constexpr KernelGeom kGeom = geom::gemm_i8_avx512vnni;  // kernels_gemm.def
static_assert(kGeom.mr >= 1 && kGeom.mr <= 6 && kGeom.nr == kGemmPanel,
              "tiles of 1-6 rows x one panel (24 zmm accumulators at most)");

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
