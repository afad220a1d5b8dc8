// Quantization-aware training backward, arm64 NEON: bit-identical to ste_grad_ref / lsq_grad_ref /
// lsq_grad_vec_ref (numerics in native/core/kernel_types_qat.h). Float32 vector ops in the
// reference's order (-ffp-contract=off keeps them unfused), rounding with FRINTN (nearbyint, ties to
// even); the 16 float64 lanes of a run's sum are eight float64x2 (lanes 2k, 2k + 1). Tails go
// through zero-padded buffers; terms of the lanes past n are zeroed (+0 changes no lane).
#include <arm_neon.h>

#include <cstring>

#include "kernel_decls.h"
#include "qat_common.h"

namespace qk {
namespace {

inline uint32x4_t finite4(float32x4_t v) { return vcaltq_f32(v, vdupq_n_f32(__builtin_inff())); }

inline uint64_t count_off(uint32x4_t ok) { return vaddvq_u32(vshrq_n_u32(vmvnq_u32(ok), 31)); }

inline float32x4_t andf(float32x4_t v, uint32x4_t m) {
  return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), m));
}

// Lanes [0, m) all ones.
inline uint32x4_t first_lanes(size_t m) {
  const uint32_t idx[4] = {0, 1, 2, 3};
  return vcltq_u32(vld1q_u32(idx), vdupq_n_u32(static_cast<uint32_t>(m)));
}

// ---- STE ----------------------------------------------------------------------------------------

template <bool kAcc>
inline uint64_t ste4(const float* dy, const uint8_t* mask, float* dx, uint32x4_t valid) {
  uint8_t mb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(mb, mask, 4);
  const uint32x4_t mi = vmovl_u16(vget_low_u16(vmovl_u8(vld1_u8(mb))));
  const float32x4_t d = vld1q_f32(dy);
  const uint32x4_t ok = finite4(d);
  float32x4_t g = andf(vmulq_f32(d, vcvtq_f32_u32(mi)), ok);
  if (kAcc) g = vaddq_f32(vld1q_f32(dx), g);
  vst1q_f32(dx, g);
  return count_off(vorrq_u32(ok, vmvnq_u32(valid)));
}

template <bool kAcc>
uint64_t ste_impl(const float* dy, const uint8_t* mask, size_t n, float* dx) {
  uint64_t bad = 0;
  const uint32x4_t all = vdupq_n_u32(~0u);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) bad += ste4<kAcc>(dy + i, mask + i, dx + i, all);
  if (i < n) {
    const size_t m = n - i;
    float d[4] = {0, 0, 0, 0}, o[4] = {0, 0, 0, 0};
    uint8_t mb[4] = {0, 0, 0, 0};
    std::memcpy(d, dy + i, m * 4);
    std::memcpy(mb, mask + i, m);
    if (kAcc) std::memcpy(o, dx + i, m * 4);
    bad += ste4<kAcc>(d, mb, o, first_lanes(m));
    std::memcpy(dx + i, o, m * 4);
  }
  return bad;
}

// ---- LSQ ----------------------------------------------------------------------------------------

struct Terms {
  float32x4_t dx, ts, tz;
  uint32x4_t ok;
};

inline Terms lsq4(float32x4_t x, float32x4_t dy, float32x4_t s, float32x4_t inv, float32x4_t zb, float32x4_t lo,
                  float32x4_t hi, float32x4_t gf) {
  const float32x4_t q = vrndnq_f32(vaddq_f32(zb, vmulq_f32(x, inv)));
  const uint32x4_t below = vcltq_f32(q, lo);
  const uint32x4_t clip = vorrq_u32(below, vcgtq_f32(q, hi));
  const float32x4_t xfq = vmulq_f32(vsubq_f32(q, zb), s);
  const float32x4_t tin = vmulq_f32(vmulq_f32(vmulq_f32(dy, vsubq_f32(xfq, x)), inv), gf);
  const float32x4_t d = vbslq_f32(below, vsubq_f32(lo, zb), vsubq_f32(hi, zb));
  const float32x4_t tcl = vmulq_f32(vmulq_f32(dy, d), gf);
  const float32x4_t zcl = vmulq_f32(vmulq_f32(vnegq_f32(dy), s), gf);
  const float32x4_t dcl = vmulq_f32(dy, vdupq_n_f32(0.0f));
  const uint32x4_t ok = vandq_u32(vceqq_f32(x, x), finite4(dy));
  Terms t;
  t.ts = andf(vbslq_f32(clip, tcl, tin), ok);
  t.tz = andf(zcl, vandq_u32(clip, ok));
  t.dx = andf(vbslq_f32(clip, dcl, dy), ok);
  t.ok = ok;
  return t;
}

// l[j] + l[j + 8], then + [j + 4], + [j + 2], + [j + 1]; v[k] holds lanes 2k, 2k + 1.
inline double lanes_total(const float64x2_t* v) {
  const float64x2_t m0 = vaddq_f64(v[0], v[4]), m1 = vaddq_f64(v[1], v[5]), m2 = vaddq_f64(v[2], v[6]),
                    m3 = vaddq_f64(v[3], v[7]);
  const float64x2_t n0 = vaddq_f64(m0, m2), n1 = vaddq_f64(m1, m3);
  const float64x2_t p = vaddq_f64(n0, n1);
  return vgetq_lane_f64(p, 0) + vgetq_lane_f64(p, 1);
}

struct Uniform {
  float32x4_t s, inv, zb, lo, hi, gf;
};

// 16 elements (lanes 0-15) from zero-padded or in-place data; valid: lanes [0, m) of each 4.
template <bool kDx, bool kAcc>
inline uint64_t chunk16(const Uniform& u, const float* x, const float* dy, float* dx, float64x2_t* ls, float64x2_t* lz,
                        const uint32x4_t* valid) {
  uint64_t bad = 0;
  for (int j = 0; j < 4; ++j) {
    Terms t = lsq4(vld1q_f32(x + 4 * j), vld1q_f32(dy + 4 * j), u.s, u.inv, u.zb, u.lo, u.hi, u.gf);
    if (kDx) vst1q_f32(dx + 4 * j, kAcc ? vaddq_f32(vld1q_f32(dx + 4 * j), t.dx) : t.dx);
    t.ts = andf(t.ts, valid[j]);
    t.tz = andf(t.tz, valid[j]);
    ls[2 * j] = vaddq_f64(ls[2 * j], vcvt_f64_f32(vget_low_f32(t.ts)));
    ls[2 * j + 1] = vaddq_f64(ls[2 * j + 1], vcvt_high_f64_f32(t.ts));
    lz[2 * j] = vaddq_f64(lz[2 * j], vcvt_f64_f32(vget_low_f32(t.tz)));
    lz[2 * j + 1] = vaddq_f64(lz[2 * j + 1], vcvt_high_f64_f32(t.tz));
    bad += count_off(vorrq_u32(t.ok, vmvnq_u32(valid[j])));
  }
  return bad;
}

template <bool kDx, bool kAcc>
uint64_t lsq_impl(const float* x, const float* dy, size_t n, float scale, int32_t zb, const LsqParams& p, float* dx,
                  double* sums) {
  const Uniform u{vdupq_n_f32(scale),
                  vdupq_n_f32(1.0f / scale),
                  vdupq_n_f32(static_cast<float>(zb)),
                  vdupq_n_f32(static_cast<float>(p.qmin)),
                  vdupq_n_f32(static_cast<float>(p.qmax)),
                  vdupq_n_f32(p.gf)};
  float64x2_t ls[8], lz[8];
  for (int j = 0; j < 8; ++j) ls[j] = lz[j] = vdupq_n_f64(0.0);
  const uint32x4_t all = vdupq_n_u32(~0u);
  const uint32x4_t valid_all[4] = {all, all, all, all};
  uint64_t bad = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) bad += chunk16<kDx, kAcc>(u, x + i, dy + i, dx ? dx + i : nullptr, ls, lz, valid_all);
  if (i < n) {
    const size_t m = n - i;
    float xb[16] = {}, db[16] = {}, ob[16] = {};
    std::memcpy(xb, x + i, m * 4);
    std::memcpy(db, dy + i, m * 4);
    if (kDx && kAcc) std::memcpy(ob, dx + i, m * 4);
    uint32x4_t valid[4];
    for (int j = 0; j < 4; ++j) valid[j] = first_lanes(m > 4u * j ? m - 4u * j : 0);
    bad += chunk16<kDx, kAcc>(u, xb, db, ob, ls, lz, valid);
    if (kDx) std::memcpy(dx + i, ob, m * 4);
  }
  sums[0] += lanes_total(ls);
  sums[1] += lanes_total(lz);
  return bad;
}

template <bool kDx, bool kAcc>
inline uint64_t vec4(const float* x, const float* dy, const float* scale, const int32_t* zb, float32x4_t lo,
                     float32x4_t hi, float32x4_t gf, float* dx, double* ds, double* dz) {
  const float32x4_t s = vld1q_f32(scale);
  const Terms t =
      lsq4(vld1q_f32(x), vld1q_f32(dy), s, vdivq_f32(vdupq_n_f32(1.0f), s), vcvtq_f32_s32(vld1q_s32(zb)), lo, hi, gf);
  if (kDx) vst1q_f32(dx, kAcc ? vaddq_f32(vld1q_f32(dx), t.dx) : t.dx);
  vst1q_f64(ds, vaddq_f64(vld1q_f64(ds), vcvt_f64_f32(vget_low_f32(t.ts))));
  vst1q_f64(ds + 2, vaddq_f64(vld1q_f64(ds + 2), vcvt_high_f64_f32(t.ts)));
  vst1q_f64(dz, vaddq_f64(vld1q_f64(dz), vcvt_f64_f32(vget_low_f32(t.tz))));
  vst1q_f64(dz + 2, vaddq_f64(vld1q_f64(dz + 2), vcvt_high_f64_f32(t.tz)));
  return count_off(t.ok);
}

template <bool kDx, bool kAcc>
uint64_t lsq_vec_impl(const float* x, const float* dy, size_t n, const float* scale, const int32_t* zb,
                      const LsqParams& p, float* dx, double* ds, double* dz) {
  const float32x4_t lo = vdupq_n_f32(static_cast<float>(p.qmin)), hi = vdupq_n_f32(static_cast<float>(p.qmax));
  const float32x4_t gf = vdupq_n_f32(p.gf);
  uint64_t bad = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    bad += vec4<kDx, kAcc>(x + i, dy + i, scale + i, zb + i, lo, hi, gf, dx ? dx + i : nullptr, ds + i, dz + i);
  if (i < n) {
    // Padding lanes: x = dy = 0, scale 1, zero point 0 (finite terms, never stored).
    const size_t m = n - i;
    float xb[4] = {}, db[4] = {}, sb[4] = {1, 1, 1, 1}, ob[4] = {};
    int32_t zbuf[4] = {};
    double sd[4] = {}, zd[4] = {};
    std::memcpy(xb, x + i, m * 4);
    std::memcpy(db, dy + i, m * 4);
    std::memcpy(sb, scale + i, m * 4);
    std::memcpy(zbuf, zb + i, m * 4);
    std::memcpy(sd, ds + i, m * 8);
    std::memcpy(zd, dz + i, m * 8);
    if (kDx && kAcc) std::memcpy(ob, dx + i, m * 4);
    bad += vec4<kDx, kAcc>(xb, db, sb, zbuf, lo, hi, gf, ob, sd, zd);
    if (kDx) std::memcpy(dx + i, ob, m * 4);
    std::memcpy(ds + i, sd, m * 8);
    std::memcpy(dz + i, zd, m * 8);
  }
  return bad;
}

}  // namespace

QK_QAT_EXPORTS(neon)

}  // namespace qk
