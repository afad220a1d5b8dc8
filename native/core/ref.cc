#include "ref.h"

namespace qk {

void quant_uniform_ref(const float* x, size_t n, float scale, int32_t zp, const QRange& r, uint8_t* out) {
  const float inv = recip_of(scale);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(quant_one(x[i], scale, inv, zp, r));
}

void quant_vec_ref(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(quant_one(x[i], scale[i], recip_of(scale[i]), zp[i], r));
}

static inline int32_t load_code(const uint8_t* q, size_t i, bool is_signed) {
  return is_signed ? static_cast<int32_t>(static_cast<int8_t>(q[i])) : static_cast<int32_t>(q[i]);
}

void dequant_uniform_ref(const uint8_t* q, size_t n, bool is_signed, float scale, int32_t zp, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_code(q, i, is_signed) - zp) * scale;
}

void dequant_vec_ref(const uint8_t* q, size_t n, bool is_signed, const float* scale, const int32_t* zp, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_code(q, i, is_signed) - zp[i]) * scale[i];
}

void fakequant_uniform_ref(const float* x, size_t n, float scale, int32_t zp, const QRange& r, float* out,
                           uint8_t* mask) {
  const float inv = recip_of(scale);
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(quant_one(x[i], scale, inv, zp, r) - zp) * scale;
    if (mask) mask[i] = quant_in_range(x[i], scale, inv, zp, r) ? 1 : 0;
  }
}

void fakequant_vec_ref(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, float* out,
                       uint8_t* mask) {
  for (size_t i = 0; i < n; ++i) {
    const float inv = recip_of(scale[i]);
    out[i] = static_cast<float>(quant_one(x[i], scale[i], inv, zp[i], r) - zp[i]) * scale[i];
    if (mask) mask[i] = quant_in_range(x[i], scale[i], inv, zp[i], r) ? 1 : 0;
  }
}

// Counts v into acc->nan or acc->inf when it is not finite (then the min / max skip it).
static inline bool count_nonfinite(float v, MinMaxAcc* acc) {
  if (std::isnan(v)) {
    ++acc->nan;
    return true;
  }
  if (std::isinf(v)) {
    ++acc->inf;
    return true;
  }
  return false;
}

void minmax_uniform_ref(const float* x, size_t n, MinMaxAcc* acc) {
  float mn = acc->min, mx = acc->max;
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (count_nonfinite(v, acc)) continue;
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  acc->min = mn;
  acc->max = mx;
}

void minmax_vec_ref(const float* x, size_t n, float* mins, float* maxs, MinMaxAcc* acc) {
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (count_nonfinite(v, acc)) continue;
    mins[i] = v < mins[i] ? v : mins[i];
    maxs[i] = v > maxs[i] ? v : maxs[i];
  }
}

}  // namespace qk
