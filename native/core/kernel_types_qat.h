// Quantization-aware training kernel signatures (see kernel_types.h): the backward of fake-quant,
// the straight-through estimator (STE) and LSQ's gradients (PyTorch 1.13's
// _fake_quantize_learnable_per_*_affine backward, scalar build). ISA-free.
//
// Numerics (every path bit-identical to the reference, native/core/qat_ref.cc):
//  - STE: dx = dy * float(mask) in float32 (dy * 0 is -0 for a negative dy).
//  - LSQ, one element (s the scale, inv = float32(1 / s), zb the backward zero point, gf the grad
//    factor; every product and difference rounded to float32, no fused multiply-add):
//      q = nearbyint(zb + x * inv)
//      q < qmin or q > qmax: dx = dy * 0, ts = (dy * (qmin|qmax - zb)) * gf, tz = ((-dy) * s) * gf
//      else:                 dx = dy,     ts = ((dy * (xfq - x)) * inv) * gf, xfq = (q - zb) * s, tz = 0
//    This is lsqGradOne of lib/nn/lsq.ts.
//  - Bad elements: x NaN or dy NaN / +-Inf. They are counted (the return value) and give dx = +0
//    and terms +0; everything else about them is as for the others.
//  - Sums of one kernel call (a run of n elements of one group): 16 float64 lanes, element k of
//    the run added to lane k % 16 in order (lanes start at +0), then combined pairwise:
//    l[j] + l[j + 8], then + [j + 4], + [j + 2], + [j + 1]. The result is added to the sum
//    pointer. A lane never holds -0, so zero padding (a vector tail) changes nothing.
//  - Sums of the vec kernel (one group per element): ds[i] += ts_i, dz[i] += tz_i (float64).
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

constexpr uint32_t QK_GRAD_ACC = 1u;  // dx += the gradient instead of dx = (both: float32 adds)
constexpr size_t kLsqLanes = 16;      // float64 lanes of a run's sum
constexpr size_t kLsqBlock = 4096;    // the tensor-level driver cuts runs into blocks of this many elements

// Code range and grad factor of one LSQ backward.
struct LsqParams {
  int32_t qmin, qmax;
  float gf;        // gradient factor (float32): 1, or LSQ's 1 / sqrt(numel * qmax)
  uint32_t flags;  // QK_GRAD_ACC
};

// STE backward of n elements: dx[i] = dy[i] * mask[i] (or dx[i] += it). Returns the count of
// non-finite dy (those give +0 / add +0).
using ste_grad_fn = uint64_t (*)(const float* dy, const uint8_t* mask, size_t n, float* dx, uint32_t flags);
// LSQ backward of a run of n elements of one group (scale, zb): dx (may be null) and the lane sums
// of the scale and zero-point terms added to sums[0] and sums[1]. Returns the count of bad elements.
using lsq_grad_fn = uint64_t (*)(const float* x, const float* dy, size_t n, float scale, int32_t zb, const LsqParams& p,
                                 float* dx, double* sums);
// The same with one group per element (scale[i], zb[i]): ds[i] += ts_i, dz[i] += tz_i.
using lsq_grad_vec_fn = uint64_t (*)(const float* x, const float* dy, size_t n, const float* scale, const int32_t* zb,
                                     const LsqParams& p, float* dx, double* ds, double* dz);

}  // namespace qk
