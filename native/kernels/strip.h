// The row loop of a tile strip, shared by the tiled kernels (gemm_*, sgemm_*). A strip is one
// kernel call: nr columns (the kernel's KernelGeom) of the driver's rows, which the strip walks in
// register tiles of mr rows. The driver (native/core/gemm.cc, sgemm.cc) loops strips, splits work
// and handles column and K tails; this header walks the rows, with the tail rows as a tile of
// their own height, so a kernel only writes its tile as a template on the row count R.
// ISA-free; everything sits in an unnamed namespace, so each kernel file (each set of ISA flags)
// gets its own copy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../core/kernel_types.h"

#define QK_STRIP_INLINE inline __attribute__((always_inline))

namespace qk {
namespace {

template <int R>
using Rows = std::integral_constant<int, R>;

// tile(Rows<r>{}, i0) for the tail of r < R + 1 rows.
template <int R, class Tile>
QK_STRIP_INLINE void tail_tile(size_t r, size_t i0, Tile& tile) {
  if constexpr (R > 0) {
    if (r == R)
      tile(Rows<R>{}, i0);
    else
      tail_tile<R - 1>(r, i0, tile);
  }
}

// Rows [m0, m1) as tiles of MR rows from the top, the last one shorter: tile(Rows<R>{}, i0).
template <int MR, class Tile>
QK_STRIP_INLINE void for_row_tiles(size_t m0, size_t m1, Tile&& tile) {
  static_assert(MR >= 1, "a tiled kernel has mr >= 1");
  size_t i = m0;
  for (; i + MR <= m1; i += MR) tile(Rows<MR>{}, i);
  if (i < m1) tail_tile<MR - 1>(m1 - i, i, tile);
}

// Rows [0, m) spread evenly over ceil(m / MR) tiles (kSpreadRows): the first m % tiles get one
// row more (m = 32, MR = 6: 6 + 6 + 5 + 5 + 5 + 5).
template <int MR>
struct SpreadRows {
  size_t count, base, extra;
  explicit SpreadRows(size_t m) : count((m + MR - 1) / MR), base(count ? m / count : 0), extra(count ? m % count : 0) {}
  size_t rows(size_t s) const { return base + (s < extra ? 1 : 0); }
  size_t first(size_t s) const { return s * base + (s < extra ? s : extra); }
};

// tile(Rows<R>{}, i0) for the r-row tile (1 <= r <= MR) starting at row i0.
template <int MR, class Tile>
QK_STRIP_INLINE void tile_of_rows(size_t r, size_t i0, Tile&& tile) {
  if (r == MR)
    tile(Rows<MR>{}, i0);
  else
    tail_tile<MR - 1>(r, i0, tile);
}

}  // namespace
}  // namespace qk
