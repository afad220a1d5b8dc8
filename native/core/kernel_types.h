// Kernel signatures shared by the reference (native/core) and every ISA path (native/kernels).
// ISA-free: no intrinsics here. See docs/kernels.md.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

// Integer range and arithmetic mode of one quantize call.
struct QRange {
  int32_t qmin;    // smallest code, e.g. -128, -127, 0, -8
  int32_t qmax;    // largest code, e.g. 127, 255, 7, 15
  uint32_t flags;  // QK_RECIP: v = x * (1.0f / scale) (PyTorch) instead of v = x / scale (ONNX)
};
constexpr uint32_t QK_RECIP = 1u;

// Running min/max over finite values plus counts of the non-finite values skipped.
struct MinMaxAcc {
  float min;      // +inf while nothing finite was seen
  float max;      // -inf while nothing finite was seen
  uint64_t nan;   // NaNs skipped
  uint64_t inf;   // +-Inf skipped
};

// Quantize n floats with one scale / zero point. Codes are written as bytes (two's complement
// for signed ranges). Semantics: docs/numerics.md.
using quant_uniform_fn = void (*)(const float* x, size_t n, float scale, int32_t zp,
                                  const QRange& r, uint8_t* out);
// Quantize n floats, element i with scale[i] / zp[i].
using quant_vec_fn = void (*)(const float* x, size_t n, const float* scale, const int32_t* zp,
                              const QRange& r, uint8_t* out);
// Dequantize n byte codes (sign-extended when is_signed): out = float(q - zp) * scale.
using dequant_uniform_fn = void (*)(const uint8_t* q, size_t n, bool is_signed, float scale,
                                    int32_t zp, float* out);
using dequant_vec_fn = void (*)(const uint8_t* q, size_t n, bool is_signed, const float* scale,
                                const int32_t* zp, float* out);
// Fake-quantize: out = dequant(quant(x)); mask (may be null) = 1 where the rounded code was
// inside [qmin, qmax] (and x was not NaN), else 0.
using fakequant_uniform_fn = void (*)(const float* x, size_t n, float scale, int32_t zp,
                                      const QRange& r, float* out, uint8_t* mask);
using fakequant_vec_fn = void (*)(const float* x, size_t n, const float* scale, const int32_t* zp,
                                  const QRange& r, float* out, uint8_t* mask);
// Fold n floats into acc (finite values only; NaN and Inf are counted).
using minmax_uniform_fn = void (*)(const float* x, size_t n, MinMaxAcc* acc);
// Element-wise: mins[i] = min(mins[i], x[i]), maxs[i] likewise, for finite x[i]; counts into acc.
using minmax_vec_fn = void (*)(const float* x, size_t n, float* mins, float* maxs, MinMaxAcc* acc);

}  // namespace qk

#include "kernel_types_gemm.h"
#include "kernel_types_sgemm.h"
#include "kernel_types_observe.h"
