// gemm_i8 on NEON (AArch64 baseline), exact: B bytes widened to int16 (vmovl_u8), A's 4 bytes of a
// k-group widened to int16, vmlal_s16 accumulates exact products in int32 lanes (wrapping mod
// 2^32 like every path), one accumulator per column, reduced with vaddvq at the end. Register
// tile: 2 rows x 8 columns; a strip is 8 columns. The epilogue is the scalar one of ref_gemm.h, so results are
// bit-identical to the scalar path.
#include <arm_neon.h>

#include <cstring>

#include "kernel_decls.h"
#include "strip.h"

namespace qk {
namespace {

constexpr KernelGeom kGeom = geom::gemm_i8_neon;  // kernels_gemm.def
static_assert(kGeom.mr >= 1 && kGeom.nr == 8, "the tile below is mr rows x 8 columns");

inline int16x4_t load_a(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vget_low_s16(vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(v))));
}

// MR rows x 8 columns (cols j0..j0+7, bytes at bp + q * bstride).
template <int MR>
void ukernel(const GemmArgs& g, size_t i0, size_t j0, const uint8_t* bp, size_t w) {
  const size_t kg = g.kp / 4, bstride = w * 4;
  int32x4_t acc[MR][8];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < 8; ++c) acc[r][c] = vdupq_n_s32(0);
  const int8_t* a = g.a + i0 * g.lda;
  for (size_t q = 0; q < kg; ++q) {
    const uint8x16_t x0 = vld1q_u8(bp), x1 = vld1q_u8(bp + 16);
    bp += bstride;
    int16x8_t b[4];
    b[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x0)));
    b[1] = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(x0)));
    b[2] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x1)));
    b[3] = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(x1)));
    for (int r = 0; r < MR; ++r) {
      const int16x4_t av = load_a(a + r * g.lda + q * 4);
      for (int h = 0; h < 4; ++h) {
        acc[r][2 * h] = vmlal_s16(acc[r][2 * h], vget_low_s16(b[h]), av);
        acc[r][2 * h + 1] = vmlal_s16(acc[r][2 * h + 1], vget_high_s16(b[h]), av);
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    const size_t i = i0 + r;
    for (int c = 0; c < 8; ++c) {
      const size_t j = j0 + c;
      if (j >= g.n) break;
      gemm_store_one(g, i, j, gemm_correct(vaddvq_s32(acc[r][c]), g.row_sum[i], g.row_za[i], g.col_zb[j], g.col_c[j]));
    }
  }
}

}  // namespace

void gemm_i8_neon(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t /*n1: n0 + 8*/) {
  size_t w;
  const uint8_t* bp = gemm_strip_b(g, n0, &w);
  for_row_tiles<kGeom.mr>(m0, m1, [&](auto r, size_t i) { ukernel<decltype(r)::value>(g, i, n0, bp, w); });
}

}  // namespace qk
