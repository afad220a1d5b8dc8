// Int8 GEMM kernel signatures (see kernel_types.h) and the layouts they share. ISA-free.
//
// One internal form for all four dtype combinations (docs/numerics.md, "int8 GEMM"; the driver in gemm.h):
//   A (activations) as int8:  a_s = a - 128 for uint8 A (a ^ 0x80), a for int8 A;
//   B (weights)     as uint8: b_u = b + 128 for int8 B (b ^ 0x80), b for uint8 B;
// so every path computes raw[i,j] = sum_k a_s[i,k] * b_u[k,j] (u8 x s8, what vpdpbusd/udot-sdot
// mixes compute), in int32 arithmetic mod 2^32. The offsets move into the zero points
// (za' = za - 128 for uint8 A, zb' = zb + 128 for int8 B) and
//   acc = raw - rowsum(a_s)_i * zb'_j - za'_i * (colsum(b_u)_j - K * zb'_j)      (mod 2^32)
// which is the exact ONNX MatMulInteger value whenever that value fits in int32 (the driver refuses
// shapes where it might not).
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

// Packed B: panels of 64 columns (the last one 16, 32, 48 or 64 wide: N padded to a multiple of 16),
// each panel holding all of K (padded to a multiple of 4) as groups of 4 k-values per column:
//   byte(k, j) = data[p * 64 * kp + (k / 4) * w * 4 + (j % 64) * 4 + k % 4],  p = j / 64,
//   w = min(64, np - 64 * p).
// Padding bytes are 0. One panel group of 16 columns x 4 k = 64 bytes = one zmm for vpdpbusd.
constexpr size_t kGemmPanel = 64;
constexpr size_t kGemmColAlign = 16;

inline size_t gemm_panel_offset(size_t p, size_t kp) { return p * kGemmPanel * kp; }
inline size_t gemm_panel_width(size_t p, size_t np) {
  const size_t rest = np - p * kGemmPanel;
  return rest < kGemmPanel ? rest : kGemmPanel;
}

// Output kinds of the fused epilogue.
enum GemmOut : int32_t {
  kGemmOutInt32 = 0,    // acc
  kGemmOutFloat32 = 1,  // float(acc) * (a_scale[i] * b_scale[j]) + bias[j], then ReLU
  kGemmOutInt8 = 2,     // requantize (ONNX QLinearMatMul; + int32 bias as QLinearConv / QGemm), int8
  kGemmOutUint8 = 3,    // requantize, uint8
};

// One int8 GEMM problem in the internal form, with its epilogue.
struct GemmArgs {
  // A: M rows of int8 (internal form), row i at a + i * lda; lda a multiple of 64, >= kp; bytes
  // [K, lda) of each row are 0 (the AMX kernel reads K in whole 64-byte chunks).
  const int8_t* a;
  size_t lda;
  // Packed B (layout above); kp = K rounded up to 4, np = N rounded up to 16.
  const uint8_t* b;
  size_t kp, np;
  size_t n;  // real N: columns >= n are never written
  // Zero-point corrections (acc = raw - row_sum[i] * col_zb[j] - row_za[i] * col_c[j], mod 2^32).
  const int32_t* row_sum;  // M entries
  const int32_t* row_za;   // M entries: za'
  const int32_t* col_zb;   // np entries: zb' (0 in the padding)
  const int32_t* col_c;    // np entries: colsum(b_u) - K * zb'
  // Epilogue.
  int32_t out_kind;  // GemmOut
  void* out;         // row i at (elem*)out + i * ldo
  size_t ldo;        // elements
  // float32: y = float(acc) * (a_scale[i * a_scale_step] * b_scale[j]) + bias[j]; relu: y > 0 ? y : 0.
  // int8/uint8: mult = (a_scale[i*step] * b_scale[j]) / y_scale (float32); when a_scale_step is 0
  // mult is col_mult[j] (precomputed with the same float ops);
  //   q = clamp(rint((double(acc) + double(bias_q[j])) * double(mult) + double(y_zp)), lo, hi),
  //   lo = max(qmin, y_zp) with relu (the sum is exact in double: no int32 overflow).
  const float* a_scale;
  size_t a_scale_step;    // 0: one scale; 1: one per row
  const float* b_scale;   // np entries
  const float* bias;      // np entries (zeros when the caller gave none): always added
  const int32_t* bias_q;  // np entries, zeros when none (int8/uint8 outputs): always added
  const float* col_mult;  // np entries (int8/uint8 outputs with a_scale_step 0)
  float y_scale;
  int32_t y_zp;
  int32_t relu;      // 0 / 1
  int32_t qlo, qhi;  // int8/uint8 bounds after ReLU: [-128,127] or [0,255], lo raised to y_zp by relu
};

// One strip (native/core/gemm.cc loops them): output rows [m0, m1) x columns [n0, n1) of one
// panel, where n0 is a multiple of the kernel's nr (KernelGeom) and n1 - n0 is nr, or less at the
// panel's end (then a multiple of 16). Columns >= g.n are padding: computed or not, never written.
using gemm_i8_fn = void (*)(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t n1);

// The packed B of a strip starting at column n0: its first byte (k-group 0) and the width w of its
// panel (k-group q of the strip starts w * 4 * q bytes further).
inline const uint8_t* gemm_strip_b(const GemmArgs& g, size_t n0, size_t* w) {
  const size_t p = n0 / kGemmPanel;
  *w = gemm_panel_width(p, g.np);
  return g.b + gemm_panel_offset(p, g.kp) + (n0 % kGemmPanel) * 4;
}

}  // namespace qk
