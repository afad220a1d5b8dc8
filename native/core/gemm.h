// Int8 GEMM engine: packing of B, the driver (A conversion, zero-point corrections, blocking,
// threads, strips) and dynamic-quantized linear. ISA-free; the kernels are the dispatched gemm_i8
// paths (native/kernels/gemm_<path>.cc, the scalar truth in gemm_ref.cc), each computing one strip
// of the geometry its line in kernels_gemm.def gives.
//
// Numerics (see docs in kernel_types_gemm.h):
//  - int32 results are exact ONNX MatMulInteger values. All arithmetic is int32 mod 2^32; a call
//    is refused (gemm_bound_error) when K * max|a - za| * max|b - zb| over the dtype ranges and
//    the given zero points could exceed 2^31 - 1, so a wrapped value is never returned.
//  - float32 output: y = float(acc) * (a_scale_i * b_scale_j) + bias_j (float32, that order, no
//    FMA), ReLU y > 0 ? y : 0. Bit-identical on every path.
//  - int8/uint8 output: ONNX QLinearMatMul reference: mult = a_scale * b_scale / y_scale in
//    float32, y = rint((double(acc) + double(bias_q_j)) * mult + y_zp) (float64, half to even),
//    then saturated (ReLU raises the lower bound to y_zp). bias_q: int32, scale a_scale * b_scale_j,
//    zero point 0 (ONNX QLinearConv / QGemm); 0 when none. Bit-identical on every path.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernel_types.h"

namespace qk {

struct AlignedBytes {
  uint8_t* p = nullptr;
  size_t n = 0;
  AlignedBytes() = default;
  explicit AlignedBytes(size_t bytes);
  ~AlignedBytes();
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;
};

// B (K x N, or N x K when transposed) packed once: immutable afterwards, shareable by threads.
struct PackedB {
  size_t K = 0, N = 0, kp = 0, np = 0;
  bool b_signed = true;  // int8 (true) or uint8 weights
  bool zp_per_col = false, scale_per_col = false;
  std::vector<int32_t> zp;             // as given: 1 or N entries
  std::vector<float> scale;            // as given: 1 or N entries
  AlignedBytes data;                   // np * kp bytes, panel layout
  std::vector<int32_t> col_zb, col_c;  // np entries
  std::vector<float> b_scale;          // np entries (padding 1)
  int32_t max_dev = 0;                 // max over columns and codes of |b - zb|
  size_t byte_length() const;
};

// b: K*N bytes (int8 or uint8 codes). zp: 1 or N entries (inside the dtype range; unchecked);
// scale: 1 or N entries (positive finite; unchecked).
std::shared_ptr<PackedB> pack_b(const uint8_t* b, size_t K, size_t N, bool b_signed, bool transposed, const int32_t* zp,
                                bool zp_per_col, const float* scale, bool scale_per_col);

// "" when K * max_dev_a * max_dev_b fits in int32, else the error message (RangeError).
std::string gemm_bound_error(size_t K, int64_t max_dev_a, int64_t max_dev_b);
// max |a - za| over the codes of the dtype and the given zero points.
int32_t gemm_max_dev(bool is_signed, const int32_t* zp, size_t n);

struct GemmCall {
  const uint8_t* a = nullptr;  // M x K codes, row-major
  bool a_signed = false;
  size_t M = 0;
  const int32_t* a_zp = nullptr;
  bool a_zp_per_row = false;
  int32_t out_kind = kGemmOutInt32;
  void* out = nullptr;             // M x N of int32 / float / int8 / uint8
  const float* a_scale = nullptr;  // float and int outputs
  bool a_scale_per_row = false;
  const float* bias = nullptr;      // N entries or null (float output)
  const int32_t* bias_q = nullptr;  // N entries or null (int outputs; added to acc before requantizing)
  bool relu = false;
  float y_scale = 1.0f;  // int outputs
  int32_t y_zp = 0;
};

// Runs the whole product. Arguments must be valid (gemm_bound_error checked by the caller).
void gemm_run(const PackedB& B, const GemmCall& c);

// Dynamic-quantized linear: x (M x K float32) quantized per row (or per tensor) on the fly, then
// the int8 GEMM and the float32 epilogue (+ bias, optional ReLU).
//   act_signed = false: asymmetric uint8, ONNX DynamicQuantizeLinear's formula per row/tensor;
//   act_signed = true: symmetric int8 -127..127, scale = absmax / 127 (float32), zero point 0.
// A zero range gives scale 1, zero point 0 (quant.h).
void linear_dynamic(const float* x, size_t M, const PackedB& B, const float* bias, bool relu, bool per_row,
                    bool act_signed, float* out);

}  // namespace qk
