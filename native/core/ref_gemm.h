// Int8 GEMM reference (declarations and the scalar epilogue): the truth for every GEMM path.
#pragma once
#include <cmath>
#include <cstring>

#include "kernel_types.h"

namespace qk {

// The scalar path of gemm_i8: plain loops over the packed layout, then gemm_epilogue_one.
void gemm_i8_ref(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t n1);

// acc from raw (mod 2^32, no UB).
inline int32_t gemm_correct(int32_t raw, int32_t row_sum, int32_t row_za, int32_t col_zb, int32_t col_c) {
  const uint32_t v = static_cast<uint32_t>(raw) - static_cast<uint32_t>(row_sum) * static_cast<uint32_t>(col_zb) -
                     static_cast<uint32_t>(row_za) * static_cast<uint32_t>(col_c);
  int32_t r;
  std::memcpy(&r, &v, 4);
  return r;
}

// The float32 epilogue: float(acc) * (as * bs) + bias, ReLU as y > 0 ? y : 0 (NaN -> 0).
inline float gemm_epi_f32(int32_t acc, float as, float bs, float bias, int32_t relu) {
  const float s = as * bs;
  float y = static_cast<float>(acc) * s;
  y = y + bias;
  if (relu) y = y > 0.0f ? y : 0.0f;
  return y;
}

// The requantize multiplier, float32 as ONNX's reference computes it.
inline float gemm_mult(float as, float bs, float ys) { return (as * bs) / ys; }

// Requantize (ONNX QLinearMatMul reference: float64 product of the int32 acc and the float32
// multiplier, + zero point, round half to even; then saturate). The int32 bias (QLinearConv /
// QGemm: scale a_scale * b_scale, zero point 0) is added to acc first, in float64 (exact).
inline int32_t gemm_epi_q(int32_t acc, int32_t bias, float mult, int32_t zp, int32_t lo, int32_t hi) {
  double v = static_cast<double>(acc) + static_cast<double>(bias);
  v = v * static_cast<double>(mult);
  v = v + static_cast<double>(zp);
  v = std::nearbyint(v);
  v = v < static_cast<double>(lo) ? static_cast<double>(lo) : v;
  v = v > static_cast<double>(hi) ? static_cast<double>(hi) : v;
  return static_cast<int32_t>(v);
}

// Writes one output element (i, j) from its acc.
inline void gemm_store_one(const GemmArgs& g, size_t i, size_t j, int32_t acc) {
  switch (g.out_kind) {
    case kGemmOutInt32: static_cast<int32_t*>(g.out)[i * g.ldo + j] = acc; break;
    case kGemmOutFloat32:
      static_cast<float*>(g.out)[i * g.ldo + j] =
          gemm_epi_f32(acc, g.a_scale[i * g.a_scale_step], g.b_scale[j], g.bias[j], g.relu);
      break;
    default: {
      const float m = g.a_scale_step ? gemm_mult(g.a_scale[i], g.b_scale[j], g.y_scale) : g.col_mult[j];
      static_cast<uint8_t*>(g.out)[i * g.ldo + j] =
          static_cast<uint8_t>(gemm_epi_q(acc, g.bias_q[j], m, g.y_zp, g.qlo, g.qhi));
      break;
    }
  }
}

}  // namespace qk
