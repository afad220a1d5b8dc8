// Scalar reference of the quantization-aware training kernels (numerics in kernel_types_qat.h).
#include "ref.h"

namespace qk {

uint64_t ste_grad_ref(const float* dy, const uint8_t* mask, size_t n, float* dx, uint32_t flags) {
  uint64_t bad = 0;
  const bool acc = flags & QK_GRAD_ACC;
  for (size_t i = 0; i < n; ++i) {
    float g = dy[i] * static_cast<float>(mask[i]);
    if (!std::isfinite(dy[i])) {
      ++bad;
      g = 0.0f;
    }
    dx[i] = acc ? dx[i] + g : g;
  }
  return bad;
}

uint64_t lsq_grad_ref(const float* x, const float* dy, size_t n, float scale, int32_t zb, const LsqParams& p, float* dx,
                      double* sums) {
  const float inv = 1.0f / scale;
  const float zbf = static_cast<float>(zb), lo = static_cast<float>(p.qmin), hi = static_cast<float>(p.qmax);
  const bool acc = p.flags & QK_GRAD_ACC;
  double ls[kLsqLanes] = {}, lz[kLsqLanes] = {};
  uint64_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    LsqOne r = lsq_one(x[i], dy[i], scale, inv, zbf, lo, hi, p.gf);
    if (lsq_bad(x[i], dy[i])) {
      ++bad;
      r = LsqOne{0.0f, 0.0f, 0.0f};
    }
    if (dx) dx[i] = acc ? dx[i] + r.dx : r.dx;
    ls[i % kLsqLanes] += r.ts;
    lz[i % kLsqLanes] += r.tz;
  }
  sums[0] += lsq_lanes_total(ls);
  sums[1] += lsq_lanes_total(lz);
  return bad;
}

uint64_t lsq_grad_vec_ref(const float* x, const float* dy, size_t n, const float* scale, const int32_t* zb,
                          const LsqParams& p, float* dx, double* ds, double* dz) {
  const float lo = static_cast<float>(p.qmin), hi = static_cast<float>(p.qmax);
  const bool acc = p.flags & QK_GRAD_ACC;
  uint64_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    LsqOne r = lsq_one(x[i], dy[i], scale[i], 1.0f / scale[i], static_cast<float>(zb[i]), lo, hi, p.gf);
    if (lsq_bad(x[i], dy[i])) {
      ++bad;
      r = LsqOne{0.0f, 0.0f, 0.0f};
    }
    if (dx) dx[i] = acc ? dx[i] + r.dx : r.dx;
    ds[i] += r.ts;
    dz[i] += r.tz;
  }
  return bad;
}

}  // namespace qk
