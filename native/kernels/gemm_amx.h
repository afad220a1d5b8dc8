// gemm_i8 on AMX-INT8: one strip as a template over the tile implementation (amx_tile.h) and the
// epilogue of 16 columns of one row. gemm_amx.cc instantiates it with AmxHw and the AVX-512
// epilogue (the kernel of the `amx` path); native/tests/test_gemm.cc with AmxEmu and the scalar
// epilogue of ref_gemm.h, so the same tile program (configuration, loads, dot products, K and row
// tails, stores) runs against the reference on every machine. ISA-free apart from what the tile
// implementation brings.
//
// Register tile: 32 rows x 32 columns in four accumulator tiles, K in chunks of 64 bytes:
//   tmm0 C rows 0-15 x cols 0-15    tmm1 C rows 0-15 x cols 16-31    tmm4 A rows 0-15 (64 bytes of K)
//   tmm2 C rows 16-31 x cols 0-15   tmm3 C rows 16-31 x cols 16-31   tmm5 A rows 16-31
//   tmm6 B k-groups x cols 0-15     tmm7 B k-groups x cols 16-31     (16 k-groups of 4 bytes)
// A tile is 16 rows of A (the internal int8 form) read in place, rows lda apart; a B tile is a
// 16-column slice of a packed panel read in place, its k-groups 4 * panel width apart: the panel's
// groups of 4 k-values per column are AMX's B layout. tdpbsud: A signed x B unsigned, as raw.
// Tails: rows past the strip's (fewer than 32) shrink the tiles of that row block (a configuration
// of their own); a 16-column strip (the end of a panel) uses tmm0/2/4/5/6 only; the last chunk of
// K, when kp is not a multiple of 64, reads B's last k-groups from a zero-padded copy and A's
// 64 bytes in place (A is zero from K up to lda, a multiple of 64: kernel_types_gemm.h).
#pragma once
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../core/kernel_types.h"
#include "amx_tile.h"

namespace qk {
namespace {

// The geometry the strip below implements (kernels_gemm.def's line must say the same).
constexpr KernelGeom kAmxGemmGeom{32, 32, 0};

// The configuration of a row block of r0 (1-16) + r1 (0-16) rows and nb (1-2) column tiles.
inline AmxTileConfig amx_gemm_config(int r0, int r1, int nb) {
  AmxTileConfig c;
  auto set = [&](int t, int rows) {
    c.rows[t] = static_cast<uint8_t>(rows);
    c.colsb[t] = static_cast<uint16_t>(rows ? kAmxRowBytes : 0);
  };
  set(0, r0);
  set(1, nb > 1 ? r0 : 0);
  set(2, r1);
  set(3, nb > 1 ? r1 : 0);
  set(4, r0);
  set(5, r1);
  set(6, kAmxRows);
  set(7, nb > 1 ? kAmxRows : 0);
  return c;
}

// store(g, i, j, raw): the zero-point corrections and epilogue of row i, columns j..j+15 (only
// those < g.n written), from the 16 raw int32 sums at raw (64-byte aligned).
template <class Tiles, class Store>
void amx_gemm_strip(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t n1, Store&& store) {
  size_t w;
  const uint8_t* bp = gemm_strip_b(g, n0, &w);
  const int nb = n1 - n0 > 16 ? 2 : 1;
  const size_t bstride = w * 4, lda = g.lda, kp = g.kp;
  const size_t kfull = kp / kAmxRowBytes * kAmxRowBytes;  // bytes of K in whole chunks
  alignas(64) uint8_t btail[2][kAmxRows * kAmxRowBytes];
  if (kp > kfull) {
    std::memset(btail, 0, sizeof btail);
    for (int cb = 0; cb < nb; ++cb)
      for (size_t q = 0; q < (kp - kfull) / 4; ++q)
        std::memcpy(btail[cb] + q * kAmxRowBytes, bp + (kfull / 4 + q) * bstride + cb * kAmxRowBytes, kAmxRowBytes);
  }
  Tiles t;
  AmxTileConfig cur;
  bool configured = false;
  alignas(64) int32_t cbuf[kAmxRows * 16];
  for (size_t i = m0; i < m1; i += 2 * kAmxRows) {
    const int rows = static_cast<int>(std::min<size_t>(2 * kAmxRows, m1 - i));
    const int r0 = std::min(rows, kAmxRows), r1 = rows - r0;
    const AmxTileConfig cfg = amx_gemm_config(r0, r1, nb);
    if (!configured || !same_config(cfg, cur)) {
      t.configure(cfg);
      cur = cfg;
      configured = true;
    }
    t.template zero<0>();
    if (nb > 1) t.template zero<1>();
    if (r1) {
      t.template zero<2>();
      if (nb > 1) t.template zero<3>();
    }
    const int8_t* a0 = g.a + i * lda;
    const int8_t* a1 = a0 + kAmxRows * lda;
    for (size_t k = 0; k < kp; k += kAmxRowBytes) {
      const bool tail = k == kfull;
      const uint8_t* b0 = tail ? btail[0] : bp + k / 4 * bstride;
      const uint8_t* b1 = tail ? btail[1] : b0 + kAmxRowBytes;
      const size_t bs = tail ? kAmxRowBytes : bstride;
      t.template load<4>(a0 + k, lda);
      t.template load<6>(b0, bs);
      if (nb > 1) t.template load<7>(b1, bs);
      if (r1) t.template load<5>(a1 + k, lda);
      t.template dpbsud<0, 4, 6>();
      if (nb > 1) t.template dpbsud<1, 4, 7>();
      if (r1) {
        t.template dpbsud<2, 5, 6>();
        if (nb > 1) t.template dpbsud<3, 5, 7>();
      }
    }
    // Each accumulator tile through the buffer into the epilogue.
    auto flush = [&](auto tile, int nrows, size_t ii, size_t jj) {
      t.template store<decltype(tile)::value>(cbuf, 64);
      for (int r = 0; r < nrows; ++r) store(g, ii + r, jj, cbuf + r * 16);
    };
    flush(std::integral_constant<int, 0>{}, r0, i, n0);
    if (nb > 1) flush(std::integral_constant<int, 1>{}, r0, i, n0 + 16);
    if (r1) {
      flush(std::integral_constant<int, 2>{}, r1, i + kAmxRows, n0);
      if (nb > 1) flush(std::integral_constant<int, 3>{}, r1, i + kAmxRows, n0 + 16);
    }
  }
  if (configured) t.release();
}

}  // namespace
}  // namespace qk
