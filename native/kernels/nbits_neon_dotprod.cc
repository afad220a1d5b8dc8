// MatMulNBits int8 compute on NEON with the dot-product extension: sdot of the signed codes
// (q - 8 or q - 128) with the activations, 4 k per column lane. Tiles: nbits_neon.h.
#include "nbits_neon.h"

namespace qk {
namespace {

static_assert(geom::nbits_i8_neon_dotprod.nr == kNBitsPanel, "16-column panels");

inline int32x4_t dot_sdot(int32x4_t acc, int8x16_t c, int8x16_t x) { return vdotq_s32(acc, c, x); }

template <int R, int P, int BITS>
__attribute__((noinline)) void tile_i8(const NBitsArgs& g, size_t i0, size_t p0) {
  tile_i8_body<R, P, BITS>(g, i0, p0, dot_sdot);
}

template <int BITS>
void run(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  nbits_neon_loop(
      m0, m1, p0, p1,
      [&](size_t i, size_t p, int np) { np == 2 ? tile_i8<4, 2, BITS>(g, i, p) : tile_i8<4, 1, BITS>(g, i, p); },
      [&](size_t i, size_t p, int np) { np == 2 ? tile_i8<1, 2, BITS>(g, i, p) : tile_i8<1, 1, BITS>(g, i, p); });
}

}  // namespace

void nbits_i8_neon_dotprod(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  if (g.bits == 8)
    run<8>(g, m0, m1, p0, p1);
  else
    run<4>(g, m0, m1, p0, p1);
}

}  // namespace qk
