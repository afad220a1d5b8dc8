// N-API surface of the observer ops (lib/observers/*). Arguments are checked again here, whatever
// lib/ checked: a bad call throws, never crashes.
#include <napi.h>

#include <cmath>
#include <string>

#include "args.h"
#include "core/observe.h"
#include "registry.h"

namespace qk {
namespace napi {
namespace {

// histogram(x, counts, lo, hi, nbins, abs, outer, axisDim, inner, granularity)
//   x: Float32Array of outer * axisDim * inner (a layout without blockSize, args.h): granularity
//   PerTensor (one group) or PerAxis (axisDim groups). counts: Float64Array of groups * nbins,
//   added to. lo / hi: Float32Array of groups, finite, lo[g] < hi[g]. abs: 1 = histogram of |x|.
Napi::Value Histogram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View x = typed_array_of(info, 0, "x", napi_float32_array);
  View counts = typed_array_of(info, 1, "counts", napi_float64_array);
  View lo = typed_array_of(info, 2, "lo", napi_float32_array);
  View hi = typed_array_of(info, 3, "hi", napi_float32_array);
  const uint32_t nbins = static_cast<uint32_t>(integer(info, 4, "nbins", 1, int64_t{1} << 24));
  const bool abs_values = integer(info, 5, "abs", 0, 1) == 1;
  const Layout L = layout_at(info, 6, LayoutArgs::NoBlock);
  expect_length(env, x, L.numel(), "x");
  const size_t groups = L.num_groups();
  expect_length(env, lo, groups, "lo");
  expect_length(env, hi, groups, "hi");
  expect_length(env, counts, checked_mul(env, groups, nbins), "counts");
  const float* plo = static_cast<const float*>(lo.data);
  const float* phi = static_cast<const float*>(hi.data);
  for (size_t g = 0; g < groups; ++g) {
    const std::string at = "[" + std::to_string(g) + "]";
    if (!std::isfinite(plo[g]))
      range_error(env, "Expected a finite number for lo" + at + " but received " + fmt_number(plo[g]));
    if (!std::isfinite(phi[g]))
      range_error(env, "Expected a finite number for hi" + at + " but received " + fmt_number(phi[g]));
    if (!(plo[g] < phi[g]))
      range_error(env, "Expected a value greater than lo" + at + " (" + fmt_number(plo[g]) + ") for hi" + at +
                           " but received " + fmt_number(phi[g]));
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
