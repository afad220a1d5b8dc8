// N-API surface of the quantization-aware training backward (lib/nn/fake-quantize.ts calls it
// through lib/native.ts). Every argument is checked here again: a bad call throws, never crashes.
#include <napi.h>

#include <cfloat>
#include <cmath>
#include <string>

#include "args.h"
#include "core/qat.h"
#include "registry.h"

namespace qk {
namespace napi {
namespace {

// steBackward(dy, mask, dx, accumulate) -> count of non-finite dy
//   dy: Float32Array (n); mask: Uint8Array (n); dx: Float32Array (n), may be dy itself.
Napi::Value SteBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View dy = typed_array_of(info, 0, "dy", napi_float32_array);
  View mask = typed_array_of(info, 1, "mask", napi_uint8_array);
  View dx = typed_array_of(info, 2, "dx", napi_float32_array);
  const bool acc = boolean(info, 3, "accumulate");
  expect_length(env, mask, dy.length, "mask");
  expect_length(env, dx, dy.length, "dx");
  expect_no_partial_overlap(env, dy.data, dy.length * 4, dx.data, dx.length * 4, "dy", "dx", true);
  expect_no_partial_overlap(env, mask.data, mask.length, dx.data, dx.length * 4, "mask", "dx", false);
  const uint64_t bad = ste_backward(static_cast<const float*>(dy.data), static_cast<const uint8_t*>(mask.data),
                                    dy.length, static_cast<float*>(dx.data), acc);
  return Napi::Number::New(env, static_cast<double>(bad));
}

// lsqBackward(x, dy, scale, zeroPoint, outer, axisDim, inner, granularity, qmin, qmax, gradFactor,
//             dx | null, accumulate, dScale, dZeroPoint) -> count of bad elements (x NaN, dy not finite)
//   x, dy: Float32Array of outer * axisDim * inner; granularity 0 (per tensor: 1 group) or 1 (per
//   axis: axisDim groups). scale: Float32Array of groups, each a normal positive float32 (its
//   reciprocal finite); zeroPoint: Int32Array of groups in [qmin, qmax]; qmin < qmax in -32768..65535;
//   gradFactor: a positive finite float32. dx: Float32Array (may be x or dy itself) or null.
//   dScale, dZeroPoint: Float64Array of groups, added to.
Napi::Value LsqBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View x = typed_array_of(info, 0, "x", napi_float32_array);
  View dy = typed_array_of(info, 1, "dy", napi_float32_array);
  View sc = typed_array_of(info, 2, "scale", napi_float32_array);
  View zp = typed_array_of(info, 3, "zeroPoint", napi_int32_array);
  const Layout L = layout_at(info, 4, LayoutArgs::NoBlock);
  const int32_t qmin = static_cast<int32_t>(integer(info, 8, "qmin", -32768, 65535));
  const int32_t qmax = static_cast<int32_t>(integer(info, 9, "qmax", -32768, 65535));
  if (!(qmin < qmax))
    range_error(env,
                "Expected qmin < qmax but received qmin " + std::to_string(qmin) + " and qmax " + std::to_string(qmax));
  const double gfd = number(info, 10, "gradFactor");
  const float gf = static_cast<float>(gfd);
  if (!(gf > 0.0f) || !std::isfinite(gf))
    range_error(env, "Expected a positive finite float32 for gradFactor but received " + fmt_number(gfd));
  View dx{};
  if (!is_nullish(info[11])) dx = typed_array_of(info, 11, "dx", napi_float32_array);
  const bool acc = boolean(info, 12, "accumulate");
  View ds = typed_array_of(info, 13, "dScale", napi_float64_array);
  View dz = typed_array_of(info, 14, "dZeroPoint", napi_float64_array);
  const size_t n = L.numel(), groups = L.num_groups();
  expect_length(env, x, n, "x");
  expect_length(env, dy, n, "dy");
  if (dx.data) expect_length(env, dx, n, "dx");
  expect_length(env, sc, groups, "scale");
  expect_length(env, zp, groups, "zeroPoint");
  expect_length(env, ds, groups, "dScale");
  expect_length(env, dz, groups, "dZeroPoint");
  const float* s = static_cast<const float*>(sc.data);
  const int32_t* z = static_cast<const int32_t*>(zp.data);
  for (size_t g = 0; g < groups; ++g) {
    const std::string at = groups > 1 ? "[" + std::to_string(g) + "]" : "";
    if (!(s[g] >= FLT_MIN) || !std::isfinite(s[g]))
      range_error(env,
                  "Expected a normal positive finite float32 for scale" + at + " but received " + fmt_number(s[g]));
    if (z[g] < qmin || z[g] > qmax)
      range_error(env, "Expected an integer " + std::to_string(qmin) + ".." + std::to_string(qmax) + " for zeroPoint" +
                           at + " but received " + std::to_string(z[g]));
  }
  // Outputs: dx may be x or dy itself (element-wise), nothing else may share bytes with an output.
  const void* ins[] = {x.data, dy.data, sc.data, zp.data};
  const size_t in_bytes[] = {x.length * 4, dy.length * 4, sc.length * 4, zp.length * 4};
  const char* in_names[] = {"x", "dy", "scale", "zeroPoint"};
  for (int i = 0; i < 4; ++i) {
    if (dx.data) expect_no_partial_overlap(env, ins[i], in_bytes[i], dx.data, dx.length * 4, in_names[i], "dx", i < 2);
    expect_no_partial_overlap(env, ins[i], in_bytes[i], ds.data, ds.length * 8, in_names[i], "dScale", false);
    expect_no_partial_overlap(env, ins[i], in_bytes[i], dz.data, dz.length * 8, in_names[i], "dZeroPoint", false);
  }
  expect_no_partial_overlap(env, ds.data, ds.length * 8, dz.data, dz.length * 8, "dScale", "dZeroPoint", false);
  if (dx.data) {
    expect_no_partial_overlap(env, dx.data, dx.length * 4, ds.data, ds.length * 8, "dx", "dScale", false);
    expect_no_partial_overlap(env, dx.data, dx.length * 4, dz.data, dz.length * 8, "dx", "dZeroPoint", false);
  }
  const uint64_t bad =
      lsq_backward(static_cast<const float*>(x.data), static_cast<const float*>(dy.data), L, s, z, qmin, qmax, gf,
                   static_cast<float*>(dx.data), acc, static_cast<double*>(ds.data), static_cast<double*>(dz.data));
  return Napi::Number::New(env, static_cast<double>(bad));
}

}  // namespace

static Module m(+[](Napi::Env env, Napi::Object exports) {
  exports.Set("steBackward", Napi::Function::New(env, SteBackward, "steBackward"));
  exports.Set("lsqBackward", Napi::Function::New(env, LsqBackward, "lsqBackward"));
});

}  // namespace napi
}  // namespace qk
