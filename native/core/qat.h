// Tensor-level quantization-aware training ops: the STE and LSQ backward of a fake-quantized
// tensor, on the selected qat kernels (native/dispatch). ISA-free. Arguments are assumed valid
// here; native/napi checks them first. Numerics: kernel_types_qat.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernel_types.h"
#include "quant.h"

namespace qk {

// dx = dy * mask (accumulate: dx += dy * mask) over n elements; returns the count of non-finite dy.
uint64_t ste_backward(const float* dy, const uint8_t* mask, size_t n, float* dx, bool accumulate);

// The LSQ backward of x [outer, axis_dim, inner] fake-quantized per tensor (L.gran PerTensor: one
// group) or per axis index (PerAxis: group a = the index along the axis), with scale[g] and the
// backward zero point zb[g] per group. dx (may be null) is written (or added to), and each group's
// scale and zero-point terms are added to ds[g] / dz[g] (float64) in this fixed order, whatever
// the path or the thread count:
//  - a group's elements come in runs of contiguous elements, in order of outer (per tensor: one
//    run of every element; per axis with inner == 1: runs of one element);
//  - each run is cut into blocks of kLsqBlock elements from its start; a block's terms are summed
//    in 16 float64 lanes (kernel_types_qat.h) and the block sums are added to ds / dz in order.
// Returns the count of bad elements (x NaN, dy not finite), which give +0.
uint64_t lsq_backward(const float* x, const float* dy, const Layout& L, const float* scale, const int32_t* zb,
                      int32_t qmin, int32_t qmax, float gf, float* dx, bool accumulate, double* ds, double* dz);

}  // namespace qk
