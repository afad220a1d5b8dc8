// arm64 NEON min/max kernels. Match minmax_uniform_ref / minmax_vec_ref: finite values are folded
// into the running min / max, NaNs and +-Inf are only counted. Per lane: FACGT(inf, x) is the
// "finite" mask (false for NaN and +-Inf), FCMEQ(x, x) the "not NaN" mask; the counters add the
// masks (all ones = -1) and are flushed to 64 bits before they could wrap. Non-finite lanes are
// replaced by +inf / -inf before FMIN / FMAX, so they never win. (The sign of a zero extreme may
// differ from the reference; min/max are compared as values.)
#include <arm_neon.h>

#include <cmath>
#include <limits>

#include "kernel_decls.h"

namespace qk {

namespace {

constexpr size_t kChunk = size_t{1} << 30;  // elements per counter flush (2^26 adds per lane)

inline uint64_t sum_u32(uint32x4_t v) { return vaddlvq_u32(v); }

// Counters: finite (|x| < inf) and not-NaN lanes, as negated all-ones sums.
struct Counts {
  uint32x4_t fin = vdupq_n_u32(0), num = vdupq_n_u32(0);
  inline void add(float32x4_t x, float32x4_t inf, uint32x4_t* finite) {
    *finite = vcagtq_f32(inf, x);
    fin = vsubq_u32(fin, *finite);
    num = vsubq_u32(num, vceqq_f32(x, x));
  }
};

}  // namespace

void minmax_uniform_neon(const float* x, size_t n, MinMaxAcc* acc) {
  const float inf_s = std::numeric_limits<float>::infinity();
  const float32x4_t pinf = vdupq_n_f32(inf_s), ninf = vdupq_n_f32(-inf_s);
  float32x4_t mn[4] = {pinf, pinf, pinf, pinf}, mx[4] = {ninf, ninf, ninf, ninf};
  uint64_t vec_total = 0, vec_fin = 0, vec_num = 0;
  size_t i = 0;
  while (i + 16 <= n) {
    const size_t end = (n - i > kChunk) ? i + kChunk : n;
    Counts c[4];
    const size_t start = i;
    for (; i + 16 <= end; i += 16) {
      for (int j = 0; j < 4; ++j) {
        const float32x4_t v = vld1q_f32(x + i + 4 * j);
        uint32x4_t f;
        c[j].add(v, pinf, &f);
        mn[j] = vminq_f32(mn[j], vbslq_f32(f, v, pinf));
        mx[j] = vmaxq_f32(mx[j], vbslq_f32(f, v, ninf));
      }
    }
    vec_total += i - start;
    for (int j = 0; j < 4; ++j) {
      vec_fin += sum_u32(c[j].fin);
      vec_num += sum_u32(c[j].num);
    }
  }
  acc->nan += vec_total - vec_num;
  acc->inf += vec_num - vec_fin;
  // Lanes hold only finite values or +-inf (the identities), never NaN.
  const float vmin = vminvq_f32(vminq_f32(vminq_f32(mn[0], mn[1]), vminq_f32(mn[2], mn[3])));
  const float vmax = vmaxvq_f32(vmaxq_f32(vmaxq_f32(mx[0], mx[1]), vmaxq_f32(mx[2], mx[3])));
  // Fold into the incoming acc with the reference's comparisons (a NaN acc stays NaN).
  acc->min = vmin < acc->min ? vmin : acc->min;
  acc->max = vmax > acc->max ? vmax : acc->max;
  minmax_uniform_ref(x + i, n - i, acc);  // the tail (< 16 values): the reference's fold
}

void minmax_vec_neon(const float* x, size_t n, float* mins, float* maxs, MinMaxAcc* acc) {
  const float32x4_t pinf = vdupq_n_f32(std::numeric_limits<float>::infinity());
  uint64_t vec_total = 0, vec_fin = 0, vec_num = 0;
  size_t i = 0;
  while (i + 16 <= n) {
    const size_t end = (n - i > kChunk) ? i + kChunk : n;
    Counts c[4];
    const size_t start = i;
    for (; i + 16 <= end; i += 16) {
      for (int j = 0; j < 4; ++j) {
        const size_t k = i + 4 * j;
        const float32x4_t v = vld1q_f32(x + k);
        uint32x4_t f;
        c[j].add(v, pinf, &f);
        // Exactly the reference's selects: take v where it is finite and v < min (v > max).
        const float32x4_t a = vld1q_f32(mins + k), b = vld1q_f32(maxs + k);
        vst1q_f32(mins + k, vbslq_f32(vandq_u32(f, vcltq_f32(v, a)), v, a));
        vst1q_f32(maxs + k, vbslq_f32(vandq_u32(f, vcgtq_f32(v, b)), v, b));
      }
    }
    vec_total += i - start;
    for (int j = 0; j < 4; ++j) {
      vec_fin += sum_u32(c[j].fin);
      vec_num += sum_u32(c[j].num);
    }
  }
  acc->nan += vec_total - vec_num;
  acc->inf += vec_num - vec_fin;
  minmax_vec_ref(x + i, n - i, mins + i, maxs + i, acc);  // the tail (< 16 values)
}

}  // namespace qk
