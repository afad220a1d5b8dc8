// Quantization-aware training reference kernels: the truth for every STE / LSQ backward path
// (numerics in kernel_types_qat.h). Compiled without ISA flags and with -ffp-contract=off.
#pragma once
#include <cmath>

#include "kernel_types.h"

namespace qk {

// One element of the LSQ backward: dx and the scale / zero-point terms (float32), as
// lib/nn/lsq.ts's lsqGradOne. zbf, qminf, qmaxf: the integers as floats (exact).
struct LsqOne {
  float dx, ts, tz;
};
inline LsqOne lsq_one(float x, float dy, float s, float inv, float zbf, float qminf, float qmaxf, float gf) {
  const float q = std::nearbyint(zbf + x * inv);  // round half to even (default FP environment)
  if (q < qminf || q > qmaxf) {
    const float d = q < qminf ? qminf - zbf : qmaxf - zbf;
    const float t = dy * d;
    const float u = (-dy) * s;
    return {dy * 0.0f, t * gf, u * gf};
  }
  const float xfq = (q - zbf) * s;
  const float diff = xfq - x;
  const float t = dy * diff;
  const float t2 = t * inv;
  return {dy, t2 * gf, 0.0f};
}

// x NaN, or dy NaN / +-Inf: counted, gives +0 everywhere.
inline bool lsq_bad(float x, float dy) { return std::isnan(x) || !std::isfinite(dy); }

// The pairwise combination of the 16 lanes of a run's sum (l[j] + l[j + 8], + [j + 4], + [j + 2], + [j + 1]).
inline double lsq_lanes_total(const double* l) {
  double m[8], n[4];
  for (int j = 0; j < 8; ++j) m[j] = l[j] + l[j + 8];
  for (int j = 0; j < 4; ++j) n[j] = m[j] + m[j + 4];
  const double p0 = n[0] + n[2], p1 = n[1] + n[3];
  return p0 + p1;
}

uint64_t ste_grad_ref(const float* dy, const uint8_t* mask, size_t n, float* dx, uint32_t flags);
uint64_t lsq_grad_ref(const float* x, const float* dy, size_t n, float scale, int32_t zb, const LsqParams& p, float* dx,
                      double* sums);
uint64_t lsq_grad_vec_ref(const float* x, const float* dy, size_t n, const float* scale, const int32_t* zb,
                          const LsqParams& p, float* dx, double* ds, double* dz);

}  // namespace qk
