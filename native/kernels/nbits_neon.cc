// MatMulNBits on NEON: fp32 compute, int8 compute with widening multiplies (vmull_s8: two
// products per int16 lane, |.| <= 2 * 128 * 127 < 2^15, then vpadal into int32), and the
// activation quantizer. Tiles: nbits_neon.h.
#include "nbits_neon.h"

namespace qk {
namespace {

static_assert(geom::nbits_i8_neon.nr == kNBitsPanel && geom::nbits_f32_neon.nr == kNBitsPanel, "16-column panels");

inline int32x4_t dot_mull(int32x4_t acc, int8x16_t c, int8x16_t x) {
  const int16x8_t lo = vmull_s8(vget_low_s8(c), vget_low_s8(x));
  const int16x8_t hi = vmull_high_s8(c, x);
  return vpadalq_s16(acc, vpaddq_s16(lo, hi));
}

template <int BITS>
void run(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1, bool int8) {
  if (int8)
    run_i8<BITS, dot_mull>(g, m0, m1, p0, p1);
  else
    nbits_neon_loop(
        m0, m1, p0, p1,
        [&](size_t i, size_t p, int np) { np == 2 ? tile_f32<4, 2, BITS>(g, i, p) : tile_f32<4, 1, BITS>(g, i, p); },
        [&](size_t i, size_t p, int np) { np == 2 ? tile_f32<1, 2, BITS>(g, i, p) : tile_f32<1, 1, BITS>(g, i, p); });
}

}  // namespace

void nbits_f32_neon(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  if (g.bits == 8)
    run<8>(g, m0, m1, p0, p1, false);
  else
    run<4>(g, m0, m1, p0, p1, false);
}

void nbits_i8_neon(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  if (g.bits == 8)
    run<8>(g, m0, m1, p0, p1, true);
  else
    run<4>(g, m0, m1, p0, p1, true);
}

void nbits_qx_neon(const float* x, size_t K, size_t bs, int8_t* xq, float* xs, float* xsum) {
  const size_t kb = (K + bs - 1) / bs;
  alignas(16) float buf[256];
  const int32_t iota[4] = {0, 1, 2, 3};
  const int32x4_t io = vld1q_s32(iota);
  for (size_t b = 0; b < kb; ++b) {
    const size_t k0 = b * bs, valid = K - k0 < bs ? K - k0 : bs;
    std::memcpy(buf, x + k0, valid * sizeof(float));
    for (size_t k = valid; k < bs; ++k) buf[k] = 0.0f;
    float32x4_t m = vdupq_n_f32(0.0f);
    for (size_t k = 0; k < bs; k += 4) m = vmaxnmq_f32(vabsq_f32(vld1q_f32(buf + k)), m);  // NaN skipped
    const float s = vmaxvq_f32(m) / 127.0f;
    const float inv = s != 0.0f ? 1.0f / s : 0.0f;
    int32x4_t sum = vdupq_n_s32(0);
    for (size_t k = 0; k < bs; k += 4) {
      float32x4_t t = vmaxnmq_f32(vmulq_n_f32(vld1q_f32(buf + k), inv), vdupq_n_f32(-127.0f));  // NaN -> -127
      t = vminq_f32(t, vdupq_n_f32(127.0f));
      const uint32x4_t keep = vcltq_s32(io, vdupq_n_s32(static_cast<int32_t>(valid - (k < valid ? k : valid))));
      const int32x4_t q = vandq_s32(vcvtnq_s32_f32(t), vreinterpretq_s32_u32(keep));
      sum = vaddq_s32(sum, q);
      const int16x4_t q16 = vmovn_s32(q);
      const int8x8_t q8 = vmovn_s16(vcombine_s16(q16, q16));
      vst1_lane_s32(reinterpret_cast<int32_t*>(xq + k0 + k), vreinterpret_s32_s8(q8), 0);
    }
    xs[b] = s;
    xsum[b] = static_cast<float>(vaddvq_s32(sum));
  }
}

}  // namespace qk
