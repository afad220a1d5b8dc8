// gemm_i8 on NEON with the dot-product extension (sdot): B's uint8 bytes are flipped to int8
// (b - 128) and sdot accumulates sum a * (b - 128) per column lane; adding 128 * rowsum(a) gives
// the u8 x s8 raw sum exactly (mod 2^32 like every path). Register tile: 4 rows x 16 columns
// (16 accumulators, one int32 lane per column); a strip is 16 columns, tail rows a shorter tile. Scalar epilogue of
// ref_gemm.h: bit-identical.
#include <arm_neon.h>

#include <cstring>

#include "kernel_decls.h"
#include "strip.h"

namespace qk {
namespace {

constexpr KernelGeom kGeom = geom::gemm_i8_neon_dotprod;  // kernels_gemm.def
static_assert(kGeom.mr >= 1 && kGeom.nr == 16, "the tile below is mr rows x 16 columns");

inline int8x16_t load_a(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

template <int MR>
void ukernel(const GemmArgs& g, size_t i0, size_t j0, const uint8_t* bp, size_t w) {
  const size_t kg = g.kp / 4, bstride = w * 4;
  int32x4_t acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 4; ++v) acc[r][v] = vdupq_n_s32(0);
  const int8_t* a = g.a + i0 * g.lda;
  const uint8x16_t flip = vdupq_n_u8(0x80);
  for (size_t q = 0; q < kg; ++q) {
    int8x16_t b[4];
    for (int v = 0; v < 4; ++v) b[v] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(bp + 16 * v), flip));
    bp += bstride;
    for (int r = 0; r < MR; ++r) {
      const int8x16_t av = load_a(a + r * g.lda + q * 4);
      for (int v = 0; v < 4; ++v) acc[r][v] = vdotq_s32(acc[r][v], b[v], av);
    }
  }
  for (int r = 0; r < MR; ++r) {
    const size_t i = i0 + r;
    const uint32_t fix = static_cast<uint32_t>(g.row_sum[i]) * 128u;
    int32_t t[16];
    for (int v = 0; v < 4; ++v) vst1q_s32(t + 4 * v, acc[r][v]);
    for (int c = 0; c < 16; ++c) {
      const size_t j = j0 + c;
      if (j >= g.n) break;
      const uint32_t raw_u = static_cast<uint32_t>(t[c]) + fix;
      int32_t raw;
      std::memcpy(&raw, &raw_u, 4);
      gemm_store_one(g, i, j, gemm_correct(raw, g.row_sum[i], g.row_za[i], g.col_zb[j], g.col_c[j]));
    }
  }
}

}  // namespace

void gemm_i8_neon_dotprod(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t /*n1: n0 + 16*/) {
  size_t w;
  const uint8_t* bp = gemm_strip_b(g, n0, &w);
  for_row_tiles<kGeom.mr>(m0, m1, [&](auto r, size_t i) { ukernel<decltype(r)::value>(g, i, n0, bp, w); });
}

}  // namespace qk
