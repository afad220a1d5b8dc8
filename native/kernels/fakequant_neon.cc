// arm64 NEON fake-quantize kernels. Bit-identical to fakequant_uniform_ref / fakequant_vec_ref:
//   out  = float(clamp(nearbyint(v), qmin - zp, qmax - zp)) * scale   (NaN -> 0 * scale)
//   mask = nearbyint(v) in [qmin - zp, qmax - zp]                     (NaN, +-Inf -> 0)
// with v = RECIP ? x * (1.0f / scale) : x / scale (true division). The clamped, rounded offset
// goes through int32 (FCVTNS / FCVTZS then SCVTF) exactly like the reference's int code: NaN
// becomes 0 and -0 becomes +0. FMAX/FMIN propagate NaN into the conversion, which yields 0.
#include <arm_neon.h>

#include <cstring>

#include "kernel_decls.h"
#include "flags.h"

namespace qk {

namespace {

inline uint8x16_t mask_bytes(uint32x4_t a, uint32x4_t b, uint32x4_t c, uint32x4_t d) {
  const uint16x8_t ab = vuzp1q_u16(vreinterpretq_u16_u32(a), vreinterpretq_u16_u32(b));
  const uint16x8_t cd = vuzp1q_u16(vreinterpretq_u16_u32(c), vreinterpretq_u16_u32(d));
  return vandq_u8(vuzp1q_u8(vreinterpretq_u8_u16(ab), vreinterpretq_u8_u16(cd)), vdupq_n_u8(1));
}

// 0/1 bytes of one mask vector (4 bytes, no alignment assumed).
inline void store_mask4(uint8_t* mask, uint32x4_t m) {
  const uint16x4_t h = vmovn_u32(m);
  const uint8x8_t b = vand_u8(vmovn_u16(vcombine_u16(h, h)), vdup_n_u8(1));
  const uint32_t w = vget_lane_u32(vreinterpret_u32_u8(b), 0);
  std::memcpy(mask, &w, 4);
}

// One vector of v (already divided / multiplied), its bounds and scale. Writes 4 outputs and
// returns the in-range mask (all ones / zero per lane) when kMask.
template <bool kMask>
inline uint32x4_t fq4(float32x4_t v, float32x4_t lo, float32x4_t hi, float32x4_t s, float* out) {
  if (kMask) {
    const float32x4_t c = vrndnq_f32(v);  // nearbyint, ties to even
    const uint32x4_t in = vandq_u32(vcgeq_f32(c, lo), vcleq_f32(c, hi));
    const int32x4_t k = vcvtq_s32_f32(vminq_f32(vmaxq_f32(c, lo), hi));  // integral: exact
    vst1q_f32(out, vmulq_f32(vcvtq_f32_s32(k), s));
    return in;
  }
  const int32x4_t k = vcvtnq_s32_f32(vminq_f32(vmaxq_f32(v, lo), hi));
  vst1q_f32(out, vmulq_f32(vcvtq_f32_s32(k), s));
  return vdupq_n_u32(0);
}

template <bool kRecip, bool kMask>
void fakequant_uniform_impl(const float* x, size_t n, float scale, int32_t zp, const QRange& r, float* out,
                            uint8_t* mask) {
  const float inv = recip_of(scale);
  const float32x4_t vs = vdupq_n_f32(scale), vi = vdupq_n_f32(inv);
  const float32x4_t lo = vdupq_n_f32(static_cast<float>(r.qmin - zp));
  const float32x4_t hi = vdupq_n_f32(static_cast<float>(r.qmax - zp));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint32x4_t m[4];
    for (int j = 0; j < 4; ++j) {
      const float32x4_t xv = vld1q_f32(x + i + 4 * j);
      const float32x4_t v = kRecip ? vmulq_f32(xv, vi) : vdivq_f32(xv, vs);
      m[j] = fq4<kMask>(v, lo, hi, vs, out + i + 4 * j);
    }
    if (kMask) vst1q_u8(mask + i, mask_bytes(m[0], m[1], m[2], m[3]));
  }
  for (; i + 4 <= n; i += 4) {
    const float32x4_t xv = vld1q_f32(x + i);
    const float32x4_t v = kRecip ? vmulq_f32(xv, vi) : vdivq_f32(xv, vs);
    const uint32x4_t m = fq4<kMask>(v, lo, hi, vs, out + i);
    if (kMask) store_mask4(mask + i, m);
  }
  for (; i < n; ++i) {
    out[i] = static_cast<float>(quant_one(x[i], scale, inv, zp, r) - zp) * scale;
    if (kMask) mask[i] = quant_in_range(x[i], scale, inv, zp, r) ? 1 : 0;
  }
}

template <bool kRecip, bool kMask>
void fakequant_vec_impl(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, float* out,
                        uint8_t* mask) {
  const int32x4_t qmin = vdupq_n_s32(r.qmin), qmax = vdupq_n_s32(r.qmax);
  const float32x4_t one = vdupq_n_f32(1.0f);
  // Elements k..k+3: outputs stored, mask lanes returned.
  auto step = [&](size_t k) {
    const float32x4_t s = vld1q_f32(scale + k);
    const float32x4_t xv = vld1q_f32(x + k);
    const float32x4_t v = kRecip ? vmulq_f32(xv, vdivq_f32(one, s)) : vdivq_f32(xv, s);
    const int32x4_t z = vld1q_s32(zp + k);
    const float32x4_t lo = vcvtq_f32_s32(vsubq_s32(qmin, z));
    const float32x4_t hi = vcvtq_f32_s32(vsubq_s32(qmax, z));
    return fq4<kMask>(v, lo, hi, s, out + k);
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const uint32x4_t m0 = step(i), m1 = step(i + 4), m2 = step(i + 8), m3 = step(i + 12);
    if (kMask) vst1q_u8(mask + i, mask_bytes(m0, m1, m2, m3));
  }
  for (; i + 4 <= n; i += 4) {
    const uint32x4_t m = step(i);
    if (kMask) store_mask4(mask + i, m);
  }
  for (; i < n; ++i) {
    const float inv = recip_of(scale[i]);
    out[i] = static_cast<float>(quant_one(x[i], scale[i], inv, zp[i], r) - zp[i]) * scale[i];
    if (kMask) mask[i] = quant_in_range(x[i], scale[i], inv, zp[i], r) ? 1 : 0;
  }
}

}  // namespace

void fakequant_uniform_neon(const float* x, size_t n, float scale, int32_t zp, const QRange& r, float* out,
                            uint8_t* mask) {
  with_flags(
      [&](auto recip, auto k) {
        fakequant_uniform_impl<decltype(recip)::value, decltype(k)::value>(x, n, scale, zp, r, out, k ? mask : nullptr);
      },
      r.flags & QK_RECIP, mask != nullptr);
}

void fakequant_vec_neon(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, float* out,
                        uint8_t* mask) {
  with_flags(
      [&](auto recip, auto k) {
        fakequant_vec_impl<decltype(recip)::value, decltype(k)::value>(x, n, scale, zp, r, out, k ? mask : nullptr);
      },
      r.flags & QK_RECIP, mask != nullptr);
}

}  // namespace qk
