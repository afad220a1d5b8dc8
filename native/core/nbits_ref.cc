// MatMulNBits scalar reference (ref_nbits.h, kernel_types_nbits.h). Built without ISA flags and
// with -ffp-contract=off: every multiply and add rounds on its own, except the int8 path's
// accumulation, which is std::fma by definition (what every SIMD path does with one instruction).
#include <cmath>

#include "ref.h"

namespace qk {

namespace {

inline float zp_of(const NBitsArgs& g, const uint8_t* blk, size_t c) {
  if (!g.asym) return static_cast<float>(1u << (g.bits - 1));
  return static_cast<float>(blk[nbits_code_bytes(g.bs, g.bits) + 64 + c]);
}

inline float scale_of(const NBitsArgs& g, const uint8_t* blk, size_t c) {
  float s;
  __builtin_memcpy(&s, blk + nbits_code_bytes(g.bs, g.bits) + 4 * c, 4);
  return s;
}

inline void store(const NBitsArgs& g, size_t i, size_t col, float acc) {
  if (col >= g.n) return;
  float y = acc + g.bias[col];
  if (g.relu) y = nbits_relu(y);
  g.y[i * g.ldy + col] = y;
}

// Every output (row i, column p * kNBitsPanel + c) of the range: acc = block(i, blk, b, c, acc)
// over the K blocks b in order from 0, then the bias / ReLU store.
template <class Block>
void each_output(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1, Block block) {
  for (size_t i = m0; i < m1; ++i)
    for (size_t p = p0; p < p1; ++p)
      for (size_t c = 0; c < kNBitsPanel; ++c) {
        float acc = 0.0f;
        for (size_t b = 0; b < g.kb; ++b) acc = block(i, nbits_block(g, p, b), b, c, acc);
        store(g, i, p * kNBitsPanel + c, acc);
      }
}

}  // namespace

void nbits_f32_ref(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  each_output(g, m0, m1, p0, p1, [&](size_t i, const uint8_t* blk, size_t b, size_t c, float acc) {
    const float* x = g.x + i * g.ldx;
    const float zp = zp_of(g, blk, c);
    float d = 0.0f;
    for (size_t kk = 0; kk < g.bs; ++kk)
      d += x[b * g.bs + kk] * (static_cast<float>(nbits_code(blk, g.bits, c, kk)) - zp);
    return acc + d * scale_of(g, blk, c);
  });
}

void nbits_i8_ref(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  each_output(g, m0, m1, p0, p1, [&](size_t i, const uint8_t* blk, size_t b, size_t c, float acc) {
    const int8_t* xq = g.xq + i * g.ldxq;
    int32_t raw = 0;
    for (size_t kk = 0; kk < g.bs; ++kk)
      raw += static_cast<int32_t>(xq[b * g.bs + kk]) * static_cast<int32_t>(nbits_code(blk, g.bits, c, kk));
    const int32_t zp = static_cast<int32_t>(zp_of(g, blk, c));
    const int32_t d = raw - zp * static_cast<int32_t>(g.xsum[i * g.kb + b]);
    const float t = g.xs[i * g.kb + b] * scale_of(g, blk, c);
    return std::fma(static_cast<float>(d), t, acc);
  });
}

void nbits_qx_ref(const float* x, size_t K, size_t bs, int8_t* xq, float* xs, float* xsum) {
  const size_t kb = (K + bs - 1) / bs;
  for (size_t b = 0; b < kb; ++b) {
    const size_t k0 = b * bs, k1 = k0 + bs < K ? k0 + bs : K;
    float m = 0.0f;
    for (size_t k = k0; k < k1; ++k) {
      const float a = std::fabs(x[k]);
      m = a > m ? a : m;
    }
    const float s = m / 127.0f;
    const float inv = s != 0.0f ? 1.0f / s : 0.0f;
    int32_t sum = 0;
    for (size_t k = k0; k < k0 + bs; ++k) {
      int32_t q = 0;
      if (k < K) q = static_cast<int32_t>(std::nearbyint(nbits_qx_clamp(x[k] * inv)));
      xq[k] = static_cast<int8_t>(q);
      sum += q;
    }
    xs[b] = s;
    xsum[b] = static_cast<float>(sum);
  }
}

}  // namespace qk
