// Tensor-level observer ops: histograms per tensor or per axis index (channel), on the selected
// histogram kernel (native/dispatch). ISA-free. Arguments are assumed valid (native/napi checks).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernel_types.h"
#include "quant.h"

namespace qk {

// Parameters of the histogram over [lo, hi] (lo < hi, both finite) with nbins bins (1..2^24).
// The prescale is 1 (torch.histc's formula exactly) unless hi - lo overflows float32; then it is
// the largest power of two that keeps hi*s - lo*s finite.
HistParams hist_params(float lo, float hi, uint32_t nbins, bool abs_values);

// Adds the histogram of x (or |x|) into counts: L.num_groups() histograms of nbins bins each
// (group g at counts[g * nbins]), group g over [lo[g], hi[g]]. Values outside a group's range,
// NaN and +-Inf are not counted. L.gran must be PerTensor or PerAxis. Scratch memory: 4 bytes per
// group and bin, or for large per-tensor inputs split over threads at most 64 MiB of per-task
// buffers (fewer tasks for huge nbins; the counts never depend on the task count).
void histogram(const float* x, const Layout& L, const float* lo, const float* hi, uint32_t nbins, bool abs_values,
               double* counts);

}  // namespace qk
