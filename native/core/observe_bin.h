// The bin of one value: shared by the reference and the tails of every SIMD path so that all of
// them compute the same float32 operations. Everything is in an unnamed namespace: each kernel
// file (compiled with its own ISA flags) gets its own copy (no ODR mixing of ISA flags).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernel_types_observe.h"

namespace qk {
namespace {

// v must satisfy lo <= v <= hi.
inline uint32_t hist_bin_of(float v, const HistParams& p) {
  const float t = ((v * p.scale - p.lo_s) / p.width_s) * p.fbins;
  return t < p.fbins ? static_cast<uint32_t>(t) : p.nbins - 1;
}

// Scalar loop for a tail (or a whole short input).
inline void hist_scalar(const float* x, size_t n, const HistParams& p, uint32_t* counts) {
  const bool ab = (p.flags & QK_HIST_ABS) != 0;
  for (size_t i = 0; i < n; ++i) {
    const float v = ab ? std::fabs(x[i]) : x[i];
    if (!(v >= p.lo && v <= p.hi)) continue;
    ++counts[hist_bin_of(v, p)];
  }
}

// Where a SIMD loop adds its bin indices (0xffffffff = not counted). Long inputs count into two
// interleaved uint16 sub-histograms (lanes alternate; 2 x 2 x nbins bytes stay in L1), flushed into
// the uint32 counts before any uint16 can wrap. Values in the bin of 0 (ReLU outputs, padding,
// pruned weights) would make long store-to-load chains on one counter, so in that mode the SIMD
// loops send those lanes to per-lane scratch slots (trash(j) = nbins + j) and count them with a
// popcount instead (nhot). Short inputs count directly.
template <int W>
struct HistSink {
  uint32_t* counts;
  size_t nb;
  size_t stride;
  uint16_t* sub = nullptr;  // null: count directly
  size_t since = 0;
  uint32_t hot = 0xffffffffu;  // the bin of 0 (only in the sub-histogram mode)
  uint64_t nhot = 0;

  HistSink(uint32_t* c, const HistParams& p, size_t n, std::vector<uint16_t>& buf)
      : counts(c), nb(p.nbins), stride(p.nbins + W) {
    if (n >= 16 * nb) {
      buf.assign(2 * stride, 0);
      sub = buf.data();
      const float z = 0.0f;
      if (z >= p.lo && z <= p.hi) hot = hist_bin_of(z, p);
    }
  }
  bool redirect() const { return sub != nullptr && hot != 0xffffffffu; }
  inline void add(const uint32_t* idx, bool all_in) {
    if (sub != nullptr) {
      if (all_in) {
        for (int j = 0; j < W; ++j) ++sub[(j & 1) * stride + idx[j]];
      } else {
        for (int j = 0; j < W; ++j)
          if (idx[j] != 0xffffffffu) ++sub[(j & 1) * stride + idx[j]];
      }
      since += W;
      if (since >= 2 * 65535 - W) flush();  // each sub-histogram got at most since / 2 adds
    } else if (all_in) {
      for (int j = 0; j < W; ++j) ++counts[idx[j]];
    } else {
      for (int j = 0; j < W; ++j)
        if (idx[j] != 0xffffffffu) ++counts[idx[j]];
    }
  }
  inline void flush() {
    if (sub == nullptr) return;
    for (size_t k = 0; k < nb; ++k) counts[k] += static_cast<uint32_t>(sub[k]) + sub[stride + k];
    std::fill(sub, sub + 2 * stride, static_cast<uint16_t>(0));
    if (hot != 0xffffffffu) counts[hot] += static_cast<uint32_t>(nhot);
    nhot = 0;
    since = 0;
  }
};

}  // namespace
}  // namespace qk
