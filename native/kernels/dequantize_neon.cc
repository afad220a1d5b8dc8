// arm64 NEON dequantize kernels. Bit-identical to dequant_uniform_ref / dequant_vec_ref:
//   out = float(code - zp) * scale, code sign-extended from its byte when is_signed.
// The subtraction is exact in int32 (SSUBL when zp fits in int16), SCVTF rounds like the scalar
// int -> float conversion, and the product is a plain FMUL (no fused multiply-add).
#include <arm_neon.h>

#include "kernel_decls.h"
#include "flags.h"

namespace qk {

namespace {

// Widen 16 bytes to two int16x8 (sign- or zero-extended).
template <bool kSigned>
inline void widen16(const uint8_t* q, int16x8_t* lo, int16x8_t* hi) {
  const uint8x16_t b = vld1q_u8(q);
  if (kSigned) {
    const int8x16_t s = vreinterpretq_s8_u8(b);
    *lo = vmovl_s8(vget_low_s8(s));
    *hi = vmovl_high_s8(s);
  } else {
    *lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(b)));
    *hi = vreinterpretq_s16_u16(vmovl_high_u8(b));
  }
}

template <bool kSigned>
inline int32_t code_at(const uint8_t* q, size_t i) {
  return kSigned ? static_cast<int32_t>(static_cast<int8_t>(q[i])) : static_cast<int32_t>(q[i]);
}

template <bool kSigned>
void dequant_uniform_impl(const uint8_t* q, size_t n, float scale, int32_t zp, float* out) {
  const float32x4_t vs = vdupq_n_f32(scale);
  size_t i = 0;
  if (zp >= INT16_MIN && zp <= INT16_MAX) {
    // code - zp with both operands in int16: SSUBL gives the exact int32 difference.
    const int16x8_t z = vdupq_n_s16(static_cast<int16_t>(zp));
    for (; i + 16 <= n; i += 16) {
      int16x8_t lo, hi;
      widen16<kSigned>(q + i, &lo, &hi);
      const int32x4_t d0 = vsubl_s16(vget_low_s16(lo), vget_low_s16(z));
      const int32x4_t d1 = vsubl_high_s16(lo, z);
      const int32x4_t d2 = vsubl_s16(vget_low_s16(hi), vget_low_s16(z));
      const int32x4_t d3 = vsubl_high_s16(hi, z);
      vst1q_f32(out + i, vmulq_f32(vcvtq_f32_s32(d0), vs));
      vst1q_f32(out + i + 4, vmulq_f32(vcvtq_f32_s32(d1), vs));
      vst1q_f32(out + i + 8, vmulq_f32(vcvtq_f32_s32(d2), vs));
      vst1q_f32(out + i + 12, vmulq_f32(vcvtq_f32_s32(d3), vs));
    }
  } else {
    const int32x4_t z = vdupq_n_s32(zp);
    for (; i + 16 <= n; i += 16) {
      int16x8_t lo, hi;
      widen16<kSigned>(q + i, &lo, &hi);
      const int32x4_t d0 = vsubq_s32(vmovl_s16(vget_low_s16(lo)), z);
      const int32x4_t d1 = vsubq_s32(vmovl_high_s16(lo), z);
      const int32x4_t d2 = vsubq_s32(vmovl_s16(vget_low_s16(hi)), z);
      const int32x4_t d3 = vsubq_s32(vmovl_high_s16(hi), z);
      vst1q_f32(out + i, vmulq_f32(vcvtq_f32_s32(d0), vs));
      vst1q_f32(out + i + 4, vmulq_f32(vcvtq_f32_s32(d1), vs));
      vst1q_f32(out + i + 8, vmulq_f32(vcvtq_f32_s32(d2), vs));
      vst1q_f32(out + i + 12, vmulq_f32(vcvtq_f32_s32(d3), vs));
    }
  }
  const int32x4_t z32 = vdupq_n_s32(zp);
  for (; i + 4 <= n; i += 4) {
    const int32x4_t c = {code_at<kSigned>(q, i), code_at<kSigned>(q, i + 1), code_at<kSigned>(q, i + 2),
                         code_at<kSigned>(q, i + 3)};
    vst1q_f32(out + i, vmulq_f32(vcvtq_f32_s32(vsubq_s32(c, z32)), vs));
  }
  for (; i < n; ++i) out[i] = static_cast<float>(code_at<kSigned>(q, i) - zp) * scale;
}

template <bool kSigned>
void dequant_vec_impl(const uint8_t* q, size_t n, const float* scale, const int32_t* zp, float* out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    int16x8_t lo, hi;
    widen16<kSigned>(q + i, &lo, &hi);
    const int32x4_t d0 = vsubq_s32(vmovl_s16(vget_low_s16(lo)), vld1q_s32(zp + i));
    const int32x4_t d1 = vsubq_s32(vmovl_high_s16(lo), vld1q_s32(zp + i + 4));
    const int32x4_t d2 = vsubq_s32(vmovl_s16(vget_low_s16(hi)), vld1q_s32(zp + i + 8));
    const int32x4_t d3 = vsubq_s32(vmovl_high_s16(hi), vld1q_s32(zp + i + 12));
    vst1q_f32(out + i, vmulq_f32(vcvtq_f32_s32(d0), vld1q_f32(scale + i)));
    vst1q_f32(out + i + 4, vmulq_f32(vcvtq_f32_s32(d1), vld1q_f32(scale + i + 4)));
    vst1q_f32(out + i + 8, vmulq_f32(vcvtq_f32_s32(d2), vld1q_f32(scale + i + 8)));
    vst1q_f32(out + i + 12, vmulq_f32(vcvtq_f32_s32(d3), vld1q_f32(scale + i + 12)));
  }
  for (; i + 4 <= n; i += 4) {
    const int32x4_t c = {code_at<kSigned>(q, i), code_at<kSigned>(q, i + 1), code_at<kSigned>(q, i + 2),
                         code_at<kSigned>(q, i + 3)};
    vst1q_f32(out + i, vmulq_f32(vcvtq_f32_s32(vsubq_s32(c, vld1q_s32(zp + i))), vld1q_f32(scale + i)));
  }
  for (; i < n; ++i) out[i] = static_cast<float>(code_at<kSigned>(q, i) - zp[i]) * scale[i];
}

}  // namespace

void dequant_uniform_neon(const uint8_t* q, size_t n, bool is_signed, float scale, int32_t zp, float* out) {
  with_flags([&](auto s) { dequant_uniform_impl<decltype(s)::value>(q, n, scale, zp, out); }, is_signed);
}

void dequant_vec_neon(const uint8_t* q, size_t n, bool is_signed, const float* scale, const int32_t* zp, float* out) {
  with_flags([&](auto s) { dequant_vec_impl<decltype(s)::value>(q, n, scale, zp, out); }, is_signed);
}

}  // namespace qk
