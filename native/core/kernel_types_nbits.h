// Block-quantized (MatMulNBits) GEMM kernel signatures and the packed weight layout. ISA-free.
//
// Weights W [K, N] are quantized per column n and block b of `bs` consecutive k (bs a power of two,
// 16..256): codes q (unsigned, 0..2^bits-1, bits 4 or 8), a float32 scale and a zero point, with
// w = (q - zp) * scale. y[i, n] = sum_k x[i, k] * w[k, n] (+ bias[n]) (ReLU).
//
// Packed layout (one layout for every path, so a packed weight serves any forced path):
//   N padded to np = 16 * P columns (panels of 16), K padded to kp = kb * bs (kb = ceil(K / bs));
//   panel p holds its kb blocks one after another, block (p, b) at
//     w + (p * kb + b) * stride,   stride = code_bytes + 64 + (asym ? 16 : 0),  code_bytes = 2 * bs * bits
//   and a block is [codes][16 float32 scales][16 uint8 zero points if asym]. Codes are in groups of
//   64 bytes = 16 columns x 4 bytes (column c at bytes 4c..4c+3, what one vpdpbusd lane reads):
//     bits 8: group g holds k = 4g + j at byte 4c + j;
//     bits 4: group g holds k = 8g + j (j < 4) in the low nibble of byte 4c + j and k = 8g + 4 + j
//             in its high nibble.
//   Padding (k >= K, columns >= N) has code 0, scale 0 and zero point 0. Symmetric weights carry
//   no zero points: zp = 2^(bits-1) for every block.
//
// Numerics (docs/nbits.md):
//   fp32 compute: d_b = sum_{k in block b} x[k] * float(q - zp) (any order), acc += d_b * scale;
//     every path is within the bound of docs/nbits.md of the exact product.
//   int8 compute: each activation block quantized (nbits_qx: s = maxabs / 127, xq = rne(x / s
//     as x * (1 / s)) clamped to +-127), d_b = sum xq * (q - zp) exact in int32, then
//     acc = fmaf(float(d_b), s_x * scale, acc) for b = 0..kb-1 in order: bit-identical on every path.
//   Then y = acc + bias[n] (bias 0 when none), ReLU: y > 0 ? y : 0.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

constexpr size_t kNBitsPanel = 16;

inline size_t nbits_code_bytes(size_t bs, size_t bits) { return 2 * bs * bits; }
inline size_t nbits_block_stride(size_t bs, size_t bits, bool asym) {
  return nbits_code_bytes(bs, bits) + 64 + (asym ? 16 : 0);
}

// One problem: rows [m0, m1) x panels [p0, p1) per kernel call.
struct NBitsArgs {
  // Packed weights (layout above).
  const uint8_t* w;
  size_t bits;    // 4 or 8
  size_t bs;      // block size
  size_t kb;      // blocks along K
  size_t stride;  // bytes per block
  bool asym;      // zero points stored (else 2^(bits-1))
  size_t n;       // real N: columns >= n are never written
  // fp32 compute: x rows of kp floats (zero past K), row i at x + i * ldx.
  const float* x;
  size_t ldx;
  // int8 compute: quantized rows (kp bytes, zero past K), row i at xq + i * ldxq; per row and block
  // the scale xs[i * kb + b] and the code sum xsum[i * kb + b] (an integer, as float).
  const int8_t* xq;
  size_t ldxq;
  const float* xs;
  const float* xsum;
  // Epilogue: bias of np floats (zeros when none; padded), ReLU.
  const float* bias;
  bool relu;
  float* y;  // row i at y + i * ldy
  size_t ldy;
};

// One call computes rows [m0, m1) and panels [p0, p1) (columns 16 p0 .. 16 p1, those < n written).
using nbits_fn = void (*)(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1);

// Quantizes one activation row for the int8 compute: K floats -> kb blocks of bs codes (zero past
// K), with each block's scale xs[b] and code sum xsum[b]. Rounding as in the header above.
using nbits_qx_fn = void (*)(const float* x, size_t K, size_t bs, int8_t* xq, float* xs, float* xsum);

inline const uint8_t* nbits_block(const NBitsArgs& g, size_t p, size_t b) { return g.w + (p * g.kb + b) * g.stride; }

}  // namespace qk
