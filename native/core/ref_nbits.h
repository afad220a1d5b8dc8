// MatMulNBits reference kernels (native/core/nbits_ref.cc): the scalar path and the truth.
// int8 compute: every path is bit-identical to nbits_i8_ref and nbits_qx_ref. fp32 compute: every
// path is within the bound of docs/nbits.md of the exact product (the float sums' order differs).
#pragma once
#include <cmath>
#include "kernel_types.h"

namespace qk {

void nbits_f32_ref(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1);
void nbits_i8_ref(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1);
void nbits_qx_ref(const float* x, size_t K, size_t bs, int8_t* xq, float* xs, float* xsum);

// The code of one packed weight: column c (0..15) of panel block `blk`, k offset kk in the block.
inline uint32_t nbits_code(const uint8_t* blk, size_t bits, size_t c, size_t kk) {
  if (bits == 8) return blk[(kk / 4) * 64 + c * 4 + kk % 4];
  const uint8_t byte = blk[(kk / 8) * 64 + c * 4 + kk % 4];
  return (kk % 8) < 4 ? (byte & 15u) : (byte >> 4);
}

// Activation block quantization, shared by every path's definition:
//   m = max |x| over the block (NaN skipped: `a > m ? a : m` from m = 0), s = m / 127,
//   inv = s != 0 ? 1 / s : 0, v = x * inv clamped by `v > -127 ? v : -127` then `v < 127 ? v : 127`
//   (NaN -> -127), code = round half to even.
inline float nbits_qx_clamp(float v) {
  v = v > -127.0f ? v : -127.0f;
  return v < 127.0f ? v : 127.0f;
}

// ReLU of the epilogue: y > 0 ? y : 0 (NaN -> 0, as _mm*_max_ps(y, 0)).
inline float nbits_relu(float y) { return y > 0.0f ? y : 0.0f; }

}  // namespace qk
