// N-API surface of the observer ops (lib/observers/*). Arguments are checked again here, whatever
// lib/ checked: a bad call throws, never crashes.
#include <napi.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "args.h"
#include "core/observe.h"
#include "registry.h"

namespace qk {
namespace napi {
namespace {

std::string fmt_float(float v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

// histogram(x, counts, lo, hi, nbins, abs, outer, axisDim, inner, granularity)
//   x: Float32Array of outer * axisDim * inner; granularity 0 (per-tensor: one group) or 1 (per
//   axis: axisDim groups). counts: Float64Array of groups * nbins, added to. lo / hi:
//   Float32Array of groups, finite, lo[g] < hi[g]. abs: 1 = histogram of |x|.
Napi::Value Histogram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  constexpr int64_t kMax = int64_t{1} << 52;
  View x = typed_array_of(info, 0, "x", napi_float32_array);
  View counts = typed_array_of(info, 1, "counts", napi_float64_array);
  View lo = typed_array_of(info, 2, "lo", napi_float32_array);
  View hi = typed_array_of(info, 3, "hi", napi_float32_array);
  const uint32_t nbins = static_cast<uint32_t>(integer(info, 4, "nbins", 1, int64_t{1} << 24));
  const bool abs_values = integer(info, 5, "abs", 0, 1) == 1;
  Layout L;
  L.outer = static_cast<size_t>(integer(info, 6, "outer", 0, kMax));
  L.axis_dim = static_cast<size_t>(integer(info, 7, "axisDim", 0, kMax));
  L.inner = static_cast<size_t>(integer(info, 8, "inner", 0, kMax));
  L.gran = integer(info, 9, "granularity", 0, 1) == 1 ? Gran::PerAxis : Gran::PerTensor;
  const size_t n = L.outer * L.axis_dim * L.inner;
  if (L.axis_dim != 0 && L.inner != 0 && (L.outer > static_cast<size_t>(kMax) / L.axis_dim / L.inner))
    range_error(env, "Expected a tensor size that fits in memory but received a shape whose product overflows");
  expect_length(env, x, n, "x");
  const size_t groups = L.gran == Gran::PerTensor ? 1 : L.axis_dim;
  expect_length(env, lo, groups, "lo");
  expect_length(env, hi, groups, "hi");
  if (groups != 0 && nbins > std::numeric_limits<size_t>::max() / groups)
    range_error(env, "Expected counts that fit in memory but received too many groups and bins");
  expect_length(env, counts, groups * nbins, "counts");
  const float* plo = static_cast<const float*>(lo.data);
  const float* phi = static_cast<const float*>(hi.data);
  for (size_t g = 0; g < groups; ++g) {
    const std::string at = "[" + std::to_string(g) + "]";
    if (!std::isfinite(plo[g])) range_error(env, "Expected a finite number for lo" + at + " but received " + fmt_float(plo[g]));
    if (!std::isfinite(phi[g])) range_error(env, "Expected a finite number for hi" + at + " but received " + fmt_float(phi[g]));
    if (!(plo[g] < phi[g]))
      range_error(env, "Expected a value greater than lo" + at + " (" + fmt_float(plo[g]) + ") for hi" + at + " but received " + fmt_float(phi[g]));
  }
  expect_no_partial_overlap(env, x.data, x.length * 4, counts.data, counts.length * 8, "x", "counts", false);
  histogram(static_cast<const float*>(x.data), L, plo, phi, nbins, abs_values, static_cast<double*>(counts.data));
  return env.Undefined();
}

}  // namespace

static Module m(+[](Napi::Env env, Napi::Object exports) {
  exports.Set("histogram", Napi::Function::New(env, Histogram, "histogram"));
});

}  // namespace napi
}  // namespace qk
