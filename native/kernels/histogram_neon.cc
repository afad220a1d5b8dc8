// Histogram, arm64 NEON. Bin indices of 8 values at a time (two q registers) with the
// reference's float32 operations (FMUL, FSUB, FDIV, FMUL: IEEE, no FMA, so every index equals
// hist_bin_of()), FCVTZU truncation, then scalar adds (HistSink).
#include <arm_neon.h>

#include <vector>

#include "../core/observe_bin.h"
#include "kernel_decls.h"

namespace qk {

namespace {

inline uint32x4_t bins4(float32x4_t v, float32x4_t lo, float32x4_t hi, float32x4_t sc, float32x4_t los, float32x4_t fb,
                        float32x4_t w, uint32x4_t last, uint32x4_t* inmask, bool redirect, uint32x4_t hotv,
                        uint32x4_t trashv, uint64_t* nhot) {
  const uint32x4_t in = vandq_u32(vcgeq_f32(v, lo), vcleq_f32(v, hi));
  const float32x4_t t = vmulq_f32(vdivq_f32(vsubq_f32(vmulq_f32(v, sc), los), w), fb);
  const uint32x4_t lt = vcltq_f32(t, fb);
  uint32x4_t b = vbslq_u32(lt, vcvtq_u32_f32(t), last);
  if (redirect) {  // lanes in the bin of 0: counted, added to per-lane scratch slots
    const uint32x4_t hm = vandq_u32(in, vceqq_u32(b, hotv));
    *nhot += vaddvq_u32(vshrq_n_u32(hm, 31));
    b = vbslq_u32(hm, trashv, b);
  }
  *inmask = in;
  return vbslq_u32(in, b, vdupq_n_u32(0xffffffffu));
}

}  // namespace

void histogram_neon(const float* x, size_t n, const HistParams& p, uint32_t* counts) {
  thread_local std::vector<uint16_t> buf;
  HistSink<8> sink(counts, p, n, buf);
  const float32x4_t lo = vdupq_n_f32(p.lo), hi = vdupq_n_f32(p.hi);
  const float32x4_t sc = vdupq_n_f32(p.scale), los = vdupq_n_f32(p.lo_s);
  const float32x4_t fb = vdupq_n_f32(p.fbins), w = vdupq_n_f32(p.width_s);
  const uint32x4_t last = vdupq_n_u32(p.nbins - 1);
  const bool ab = (p.flags & QK_HIST_ABS) != 0;
  alignas(16) uint32_t idx[8];
  const bool redirect = sink.redirect();
  const uint32x4_t hotv = vdupq_n_u32(sink.hot);
  const uint32_t t0[4] = {0, 1, 2, 3}, t1[4] = {4, 5, 6, 7};
  const uint32x4_t trash0 = vaddq_u32(vdupq_n_u32(p.nbins), vld1q_u32(t0));
  const uint32x4_t trash1 = vaddq_u32(vdupq_n_u32(p.nbins), vld1q_u32(t1));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    float32x4_t v0 = vld1q_f32(x + i), v1 = vld1q_f32(x + i + 4);
    if (ab) {
      v0 = vabsq_f32(v0);
      v1 = vabsq_f32(v1);
    }
    uint32x4_t in0, in1;
    vst1q_u32(idx, bins4(v0, lo, hi, sc, los, fb, w, last, &in0, redirect, hotv, trash0, &sink.nhot));
    vst1q_u32(idx + 4, bins4(v1, lo, hi, sc, los, fb, w, last, &in1, redirect, hotv, trash1, &sink.nhot));
    const bool all_in = vminvq_u32(vandq_u32(in0, in1)) == 0xffffffffu;
    sink.add(idx, all_in);
  }
  sink.flush();
  hist_scalar(x + i, n - i, p, counts);
}

}  // namespace qk
