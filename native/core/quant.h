// Tensor-level quantize / dequantize / fake-quantize / min-max over the three granularities.
// ISA-free: walks the tensor in runs and calls the selected kernels (native/dispatch).
// Arguments are assumed valid here; native/napi checks them first.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernel_types.h"

namespace qk {

// A row-major tensor seen as [outer, axis_dim, inner] around the quantization axis.
// per-tensor: one group. per-axis: axis_dim groups. blocked: outer * ceil(axis_dim/block) * inner
// groups laid out as ONNX's blocked scale tensor (the input's shape with the axis divided).
enum class Gran { PerTensor, PerAxis, Blocked };
struct Layout {
  Gran gran = Gran::PerTensor;
  size_t outer = 1, axis_dim = 1, inner = 1;
  size_t block = 0;  // Blocked only
  size_t numel() const { return outer * axis_dim * inner; }
  size_t num_blocks() const { return block ? (axis_dim + block - 1) / block : 0; }
  size_t num_groups() const;
};

// Storage of the codes: one per byte, or two per byte (first element in the low nibble).
enum class Storage { Byte, Nibble };

// qparams as the kernels use them: one scale and zero point per group.
struct QParamsView {
  const float* scale;
  const int32_t* zp;
};

void quantize(const float* x, const Layout& L, QParamsView qp, const QRange& r, Storage st, uint8_t* out);
void dequantize(const uint8_t* q, const Layout& L, QParamsView qp, bool is_signed, Storage st, float* out);
void fake_quantize(const float* x, const Layout& L, QParamsView qp, const QRange& r, float* out, uint8_t* mask);
// mins / maxs: num_groups() entries. Finite values only; a group with none gets +inf / -inf.
// -0 is reported as +0. Returns the NaN and Inf counts in acc.
void min_max(const float* x, const Layout& L, float* mins, float* maxs, MinMaxAcc* acc);

// ONNX DynamicQuantizeLinear (uint8): range from the finite values widened to include 0,
// s = (max - min) / 255 in float32, zp = saturate(round(0 - min / s)), y = quantize(x).
// A zero range (all zeros, empty, or nothing finite) gives scale 1 and zero point 0 instead of
// the spec's division by zero (docs/numerics.md).
void dynamic_quantize(const float* x, size_t n, uint8_t* out, float* scale, int32_t* zp);

// Nibble helpers (exposed for tests and the GEMM packers).
void pack_nibbles(const uint8_t* codes, size_t n, size_t elem_offset, uint8_t* packed);
void unpack_nibbles(const uint8_t* packed, size_t elem_offset, size_t n, bool is_signed, uint8_t* codes);

}  // namespace qk
