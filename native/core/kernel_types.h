// Kernel signatures shared by the reference (native/core) and every ISA path (native/kernels).
// ISA-free: no intrinsics here. See docs/kernels.md.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

// Geometry and traits of a tiled kernel: the columns after the symbol of its line in
// native/kernels/kernels_*.def (QK_KERNEL(op, isa, symbol, mr, nr, traits)). The drivers read them
// from the selected entry (KernelTable::<op>_geom) and each kernel file instantiates its tiles
// with them (qk::geom::<symbol>, native/kernels/kernel_decls.h), so the list is the only place
// they are written. Element-wise kernels have none (all zero).
struct KernelGeom {
  uint32_t mr = 0;      // rows of the register tile: a strip walks its rows in tiles of mr
  uint32_t nr = 0;      // columns of a strip (one kernel call): the driver steps through N by nr
  uint32_t traits = 0;  // KernelTrait bits
};

// How a tiled kernel wants its operands (KernelGeom::traits).
enum KernelTrait : uint32_t {
  // A comes packed by the driver in slivers of mr rows per K chunk (sgemm: sliver s at
  // a + s * mr * k, element (row r, depth kk) at [kk * mr + r]); else A is read in place.
  kPackA = 1u,
  // The strip spreads its rows evenly over its tiles (m = 32, mr = 6: 6 + 6 + 5 + 5 + 5 + 5), so
  // the driver's row blocks need not be multiples of mr.
  kSpreadRows = 2u,
  // Reads a row-major B (rows ldb = N apart) as fast as packed panels: the driver does not pack
  // a B that is read only once.
  kRowMajorB = 4u,
};
constexpr uint32_t kKernelTraitsAll = kPackA | kSpreadRows | kRowMajorB;

// Integer range and arithmetic mode of one quantize call.
struct QRange {
  int32_t qmin;    // smallest code, e.g. -128, -127, 0, -8
  int32_t qmax;    // largest code, e.g. 127, 255, 7, 15
  uint32_t flags;  // QK_RECIP: v = x * (1.0f / scale) (PyTorch) instead of v = x / scale (ONNX)
};
constexpr uint32_t QK_RECIP = 1u;

// Running min/max over finite values plus counts of the non-finite values skipped.
struct MinMaxAcc {
  float min;     // +inf while nothing finite was seen
  float max;     // -inf while nothing finite was seen
  uint64_t nan;  // NaNs skipped
  uint64_t inf;  // +-Inf skipped
};

// Quantize n floats with one scale / zero point. Codes are written as bytes (two's complement
// for signed ranges). Semantics: docs/numerics.md.
using quant_uniform_fn = void (*)(const float* x, size_t n, float scale, int32_t zp, const QRange& r, uint8_t* out);
// Quantize n floats, element i with scale[i] / zp[i].
using quant_vec_fn = void (*)(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r,
                              uint8_t* out);
// Dequantize n byte codes (sign-extended when is_signed): out = float(q - zp) * scale.
using dequant_uniform_fn = void (*)(const uint8_t* q, size_t n, bool is_signed, float scale, int32_t zp, float* out);
using dequant_vec_fn = void (*)(const uint8_t* q, size_t n, bool is_signed, const float* scale, const int32_t* zp,
                                float* out);
// Fake-quantize: out = dequant(quant(x)); mask (may be null) = 1 where the rounded code was
// inside [qmin, qmax] (and x was not NaN), else 0.
using fakequant_uniform_fn = void (*)(const float* x, size_t n, float scale, int32_t zp, const QRange& r, float* out,
                                      uint8_t* mask);
using fakequant_vec_fn = void (*)(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r,
                                  float* out, uint8_t* mask);
// Fold n floats into acc (finite values only; NaN and Inf are counted).
using minmax_uniform_fn = void (*)(const float* x, size_t n, MinMaxAcc* acc);
// Element-wise: mins[i] = min(mins[i], x[i]), maxs[i] likewise, for finite x[i]; counts into acc.
using minmax_vec_fn = void (*)(const float* x, size_t n, float* mins, float* maxs, MinMaxAcc* acc);

}  // namespace qk

#include "kernel_types_gemm.h"
#include "kernel_types_sgemm.h"
#include "kernel_types_observe.h"
#include "kernel_types_qat.h"
#include "kernel_types_nbits.h"
