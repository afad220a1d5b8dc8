// Scalar reference kernels: the numerics contract in code. Every ISA path must match these
// bit for bit (docs/numerics.md). Compiled without ISA flags and with -ffp-contract=off.
#pragma once
#include <cmath>
#include "kernel_types.h"

namespace qk {

// The rounded, saturated code of one value, before the zero point is added back.
// NaN -> 0 (the zero point); +-Inf and huge values saturate.
inline int32_t quant_one(float x, float scale, float inv, int32_t zp, const QRange& r) {
  const float v = (r.flags & QK_RECIP) ? x * inv : x / scale;
  if (std::isnan(v)) return zp;
  const float lo = static_cast<float>(r.qmin - zp);
  const float hi = static_cast<float>(r.qmax - zp);
  float c = std::nearbyint(v);  // round half to even (default FP environment)
  c = c < lo ? lo : c;
  c = c > hi ? hi : c;
  return static_cast<int32_t>(c) + zp;
}

// In-range test used for the STE mask: the rounded code lies in [qmin, qmax].
inline bool quant_in_range(float x, float scale, float inv, int32_t zp, const QRange& r) {
  const float v = (r.flags & QK_RECIP) ? x * inv : x / scale;
  const float c = std::nearbyint(v);
  return c >= static_cast<float>(r.qmin - zp) && c <= static_cast<float>(r.qmax - zp);
}

inline float recip_of(float scale) { return 1.0f / scale; }

void quant_uniform_ref(const float* x, size_t n, float scale, int32_t zp, const QRange& r, uint8_t* out);
void quant_vec_ref(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, uint8_t* out);
void dequant_uniform_ref(const uint8_t* q, size_t n, bool is_signed, float scale, int32_t zp, float* out);
void dequant_vec_ref(const uint8_t* q, size_t n, bool is_signed, const float* scale, const int32_t* zp, float* out);
void fakequant_uniform_ref(const float* x, size_t n, float scale, int32_t zp, const QRange& r, float* out,
                           uint8_t* mask);
void fakequant_vec_ref(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, float* out,
                       uint8_t* mask);
void minmax_uniform_ref(const float* x, size_t n, MinMaxAcc* acc);
void minmax_vec_ref(const float* x, size_t n, float* mins, float* maxs, MinMaxAcc* acc);

}  // namespace qk

#include "ref_gemm.h"
#include "ref_sgemm.h"
#include "ref_observe.h"
#include "ref_qat.h"
#include "ref_nbits.h"
