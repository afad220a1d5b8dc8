// MatMulNBits int8 compute on NEON with the dot-product extension: sdot of the signed codes
// (q - 8 or q - 128) with the activations, 4 k per column lane. Tiles: nbits_neon.h.
#include "nbits_neon.h"

namespace qk {
namespace {

static_assert(geom::nbits_i8_neon_dotprod.nr == kNBitsPanel, "16-column panels");

inline int32x4_t dot_sdot(int32x4_t acc, int8x16_t c, int8x16_t x) { return vdotq_s32(acc, c, x); }

}  // namespace

void nbits_i8_neon_dotprod(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  if (g.bits == 8)
    run_i8<8, dot_sdot>(g, m0, m1, p0, p1);
  else
    run_i8<4, dot_sdot>(g, m0, m1, p0, p1);
}

}  // namespace qk
