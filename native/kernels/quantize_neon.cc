// arm64 NEON quantize kernels (Advanced SIMD is baseline on AArch64: no extra flags).
// Bit-identical to quant_uniform_ref / quant_vec_ref (native/core/ref.cc):
//   v = RECIP ? x * (1.0f / scale) : x / scale      (IEEE division, never FRECPE)
//   code = clamp(nearbyint(v), qmin - zp, qmax - zp) + zp, NaN -> zp, stored as its low byte.
// Per lane: FMAX/FMIN against the (integer-valued) float bounds, then FCVTNS. Clamping before
// rounding equals rounding before clamping because the bounds are integers and rounding is
// monotone; FMAX/FMIN propagate NaN and FCVTNS turns NaN into 0 (= the zero point after the
// add), +-Inf and huge values were clamped already. The zero point is added on the low bytes
// (byte addition wraps exactly like the low byte of the int32 sum).
#include <arm_neon.h>

#include <cstring>

#include "kernel_decls.h"
#include "flags.h"

namespace qk {

namespace {

// Low bytes of four int32x4 (lanes 0..15 in order).
inline uint8x16_t low_bytes(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  const int16x8_t ab = vuzp1q_s16(vreinterpretq_s16_s32(a), vreinterpretq_s16_s32(b));
  const int16x8_t cd = vuzp1q_s16(vreinterpretq_s16_s32(c), vreinterpretq_s16_s32(d));
  return vreinterpretq_u8_s8(vuzp1q_s8(vreinterpretq_s8_s16(ab), vreinterpretq_s8_s16(cd)));
}

// Store the low bytes of one int32x4 (4 bytes, no alignment assumed).
inline void store_low_bytes4(uint8_t* out, int32x4_t a) {
  const int16x4_t h = vmovn_s32(a);
  const uint32_t w = vget_lane_u32(vreinterpret_u32_s8(vmovn_s16(vcombine_s16(h, h))), 0);
  std::memcpy(out, &w, 4);
}

// Rounded, clamped code offset (code - zp) of one vector; NaN -> 0.
inline int32x4_t offset4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  return vcvtnq_s32_f32(vminq_f32(vmaxq_f32(v, lo), hi));
}

template <bool kRecip>
inline float32x4_t scaled(float32x4_t x, float32x4_t scale, float32x4_t inv) {
  return kRecip ? vmulq_f32(x, inv) : vdivq_f32(x, scale);
}

template <bool kRecip>
void quant_uniform_impl(const float* x, size_t n, float scale, int32_t zp, const QRange& r, uint8_t* out) {
  const float inv = recip_of(scale);
  const float lo_s = static_cast<float>(r.qmin - zp);
  const float hi_s = static_cast<float>(r.qmax - zp);
  const float32x4_t vs = vdupq_n_f32(scale), vi = vdupq_n_f32(inv);
  const float32x4_t lo = vdupq_n_f32(lo_s), hi = vdupq_n_f32(hi_s);
  const uint8x16_t vzp = vdupq_n_u8(static_cast<uint8_t>(zp));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const int32x4_t a = offset4(scaled<kRecip>(vld1q_f32(x + i), vs, vi), lo, hi);
    const int32x4_t b = offset4(scaled<kRecip>(vld1q_f32(x + i + 4), vs, vi), lo, hi);
    const int32x4_t c = offset4(scaled<kRecip>(vld1q_f32(x + i + 8), vs, vi), lo, hi);
    const int32x4_t d = offset4(scaled<kRecip>(vld1q_f32(x + i + 12), vs, vi), lo, hi);
    vst1q_u8(out + i, vaddq_u8(low_bytes(a, b, c, d), vzp));
  }
  const int32x4_t vzp32 = vdupq_n_s32(zp);
  for (; i + 4 <= n; i += 4)
    store_low_bytes4(out + i, vaddq_s32(offset4(scaled<kRecip>(vld1q_f32(x + i), vs, vi), lo, hi), vzp32));
  for (; i < n; ++i) out[i] = static_cast<uint8_t>(quant_one(x[i], scale, inv, zp, r));
}

template <bool kRecip>
inline int32x4_t code4_vec(const float* x, const float* scale, const int32_t* zp, int32x4_t qmin, int32x4_t qmax) {
  const float32x4_t s = vld1q_f32(scale);
  const float32x4_t xv = vld1q_f32(x);
  // 1.0f / scale by true division, as recip_of() does.
  const float32x4_t v = kRecip ? vmulq_f32(xv, vdivq_f32(vdupq_n_f32(1.0f), s)) : vdivq_f32(xv, s);
  const int32x4_t z = vld1q_s32(zp);
  const float32x4_t lo = vcvtq_f32_s32(vsubq_s32(qmin, z));
  const float32x4_t hi = vcvtq_f32_s32(vsubq_s32(qmax, z));
  return vaddq_s32(offset4(v, lo, hi), z);
}

template <bool kRecip>
void quant_vec_impl(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, uint8_t* out) {
  const int32x4_t qmin = vdupq_n_s32(r.qmin), qmax = vdupq_n_s32(r.qmax);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const int32x4_t a = code4_vec<kRecip>(x + i, scale + i, zp + i, qmin, qmax);
    const int32x4_t b = code4_vec<kRecip>(x + i + 4, scale + i + 4, zp + i + 4, qmin, qmax);
    const int32x4_t c = code4_vec<kRecip>(x + i + 8, scale + i + 8, zp + i + 8, qmin, qmax);
    const int32x4_t d = code4_vec<kRecip>(x + i + 12, scale + i + 12, zp + i + 12, qmin, qmax);
    vst1q_u8(out + i, low_bytes(a, b, c, d));
  }
  for (; i + 4 <= n; i += 4) store_low_bytes4(out + i, code4_vec<kRecip>(x + i, scale + i, zp + i, qmin, qmax));
  for (; i < n; ++i) out[i] = static_cast<uint8_t>(quant_one(x[i], scale[i], recip_of(scale[i]), zp[i], r));
}

}  // namespace

void quant_uniform_neon(const float* x, size_t n, float scale, int32_t zp, const QRange& r, uint8_t* out) {
  with_flags([&](auto recip) { quant_uniform_impl<decltype(recip)::value>(x, n, scale, zp, r, out); },
             r.flags & QK_RECIP);
}

void quant_vec_neon(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, uint8_t* out) {
  with_flags([&](auto recip) { quant_vec_impl<decltype(recip)::value>(x, n, scale, zp, r, out); }, r.flags & QK_RECIP);
}

}  // namespace qk
