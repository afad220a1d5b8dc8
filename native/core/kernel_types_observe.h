// Observer kernel signatures (see kernel_types.h). ISA-free.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

constexpr uint32_t QK_HIST_ABS = 1u;  // histogram of |x| instead of x

// One histogram over [lo, hi] with nbins equal bins, in torch.histc's float32 arithmetic:
//   counted when lo <= v <= hi (NaN never; +-Inf only if lo / hi are infinite, which callers avoid)
//   t   = ((v * scale - lo_s) / width_s) * fbins           (float32, no FMA)
//   bin = t < fbins ? (uint32_t)t : nbins - 1              (truncation; the top edge goes to the last bin)
// With scale = 1 this is exactly torch.histc's CPU kernel (aten HistogramKernel.cpp, linear bins):
//   pos = (int64_t)((elt - leftmost_edge) / (rightmost_edge - leftmost_edge) * (num_bin_edges - 1))
// scale is a power of two < 1 only when hi - lo overflows float32 (see hist_params() in
// observe.h), where torch's formula has no meaning.
struct HistParams {
  float lo, hi;    // counted range (as given, unscaled)
  float scale;     // 1, or 2^-k for huge ranges
  float lo_s;      // lo * scale
  float width_s;   // hi * scale - lo * scale  (> 0)
  float fbins;     // (float)nbins
  uint32_t nbins;  // 1 .. 2^24
  uint32_t flags;  // QK_HIST_ABS
};

// Adds the bin counts of n floats to counts[0 .. nbins). The caller keeps every count below 2^32.
using histogram_fn = void (*)(const float* x, size_t n, const HistParams& p, uint32_t* counts);

}  // namespace qk
