// N-API surface of the int8 GEMM engine (lib/gemm.ts wraps it). Every argument is checked here
// again: a bad call throws, never crashes. Packed weights are externals (type-tagged) holding a
// shared_ptr, so async work keeps them alive; their size is reported to the GC.
#include <napi.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "async.h"
#include "registry.h"
#include "core/gemm.h"

namespace qk {
namespace napi {
namespace {

constexpr napi_type_tag kPackedTag = {0x716b67656d6d7062ULL, 0x7061636b65643031ULL};

struct Holder {
  std::shared_ptr<const PackedB> p;
  int64_t bytes = 0;
};

constexpr int64_t kMaxDim = int64_t{1} << 40;

size_t checked_mul(Napi::Env env, size_t a, size_t b) {
  if (a != 0 && b > std::numeric_limits<size_t>::max() / a)
    range_error(env, "Expected sizes whose product fits in memory but received a product that overflows");
  return a * b;
}

// Zero points: a number or an Int32Array / Int8Array / Uint8Array of `n` entries (n > 1 allowed
// only when per_ok), inside [lo, hi]. Returns the values (1 or n).
std::vector<int32_t> zero_points(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n,
                                 int32_t lo, int32_t hi) {
  Napi::Env env = info.Env();
  std::vector<int32_t> z;
  const Napi::Value v = info[i];
  if (v.IsNumber()) {
    z.push_back(static_cast<int32_t>(integer(info, i, name, lo, hi)));
    return z;
  }
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) type_error(env, std::string("Expected a number, Int32Array, Int8Array or Uint8Array for ") + name + " but received " + describe(v));
  View t = typed_array(info, i, name);
  if (t.length != 1 && t.length != n)
    range_error(env, std::string("Expected length 1 or ") + std::to_string(n) + " for " + name + " but received " + t.type_name() + " of length " + std::to_string(t.length));
  for (size_t k = 0; k < t.length; ++k) {
    int32_t x;
    if (t.type == napi_int32_array) x = static_cast<const int32_t*>(t.data)[k];
    else if (t.type == napi_int8_array) x = static_cast<const int8_t*>(t.data)[k];
    else if (t.type == napi_uint8_array) x = static_cast<const uint8_t*>(t.data)[k];
    else type_error(env, std::string("Expected a number, Int32Array, Int8Array or Uint8Array for ") + name + " but received " + describe(v));
    if (x < lo || x > hi)
      range_error(env, std::string("Expected an integer between ") + std::to_string(lo) + " and " + std::to_string(hi) + " for " + name + "[" + std::to_string(k) + "] but received " + std::to_string(x));
    z.push_back(x);
  }
  return z;
}

std::string fmt_g(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", d);
  return buf;
}

// Scales: a number or a Float32Array of 1 or n entries, each positive and finite as float32.
std::vector<float> scales(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n) {
  Napi::Env env = info.Env();
  std::vector<float> s;
  if (info[i].IsNumber()) {
    s.push_back(static_cast<float>(info[i].As<Napi::Number>().DoubleValue()));
  } else {
    bool is_ta = false;
    napi_is_typedarray(env, info[i], &is_ta);
    if (!is_ta) type_error(env, std::string("Expected a number or Float32Array for ") + name + " but received " + describe(info[i]));
    View t = typed_array_of(info, i, name, napi_float32_array);
    if (t.length != 1 && t.length != n)
      range_error(env, std::string("Expected length 1 or ") + std::to_string(n) + " for " + name + " but received Float32Array of length " + std::to_string(t.length));
    const float* p = static_cast<const float*>(t.data);
    s.assign(p, p + t.length);
  }
  for (size_t k = 0; k < s.size(); ++k)
    if (!(s[k] > 0.0f) || !std::isfinite(s[k]))
      range_error(env, std::string("Expected a positive finite number for ") + name + (s.size() > 1 ? "[" + std::to_string(k) + "]" : std::string()) + " but received " + fmt_g(s[k]));
  return s;
}

const PackedB& packed_at(const Napi::CallbackInfo& info, size_t i, std::shared_ptr<const PackedB>* keep) {
  Napi::Env env = info.Env();
  bool ok = false;
  if (info[i].IsExternal()) napi_check_object_type_tag(env, info[i], &kPackedTag, &ok);
  if (!ok) type_error(env, "Expected PackedWeights (from packWeights) for packed but received " + describe(info[i]));
  Holder* h = info[i].As<Napi::External<Holder>>().Data();
  *keep = h->p;
  return *h->p;
}

bool boolean(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsBoolean()) type_error(info.Env(), std::string("Expected a boolean for ") + name + " but received " + describe(info[i]));
  return info[i].As<Napi::Boolean>().Value();
}

// gemmPack(b, isSigned, K, N, transposed, zeroPoint, scale) -> [external, byteLength]
Napi::Value GemmPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool is_signed = boolean(info, 1, "isSigned");
  View b = typed_array_of(info, 0, "b", is_signed ? napi_int8_array : napi_uint8_array);
  const size_t K = static_cast<size_t>(integer(info, 2, "K", 1, kMaxDim));
  const size_t N = static_cast<size_t>(integer(info, 3, "N", 1, kMaxDim));
  const bool transposed = boolean(info, 4, "transposed");
  expect_length(env, b, checked_mul(env, K, N), "b");
  std::vector<int32_t> zp = zero_points(info, 5, "zeroPoint", N, is_signed ? -128 : 0, is_signed ? 127 : 255);
  std::vector<float> sc = scales(info, 6, "scale", N);
  std::shared_ptr<PackedB> p = pack_b(static_cast<const uint8_t*>(b.data), K, N, is_signed, transposed, zp.data(),
                                      zp.size() > 1, sc.data(), sc.size() > 1);
  auto* h = new Holder{p, static_cast<int64_t>(p->byte_length())};
  Napi::External<Holder> ext = Napi::External<Holder>::New(env, h, [](Napi::Env e, Holder* hh) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -hh->bytes);
    delete hh;
  });
  napi_type_tag_object(env, ext, &kPackedTag);
  Napi::MemoryManagement::AdjustExternalMemory(env, h->bytes);
  Napi::Array res = Napi::Array::New(env, 2);
  res.Set(0u, ext);
  res.Set(1u, Napi::Number::New(env, static_cast<double>(h->bytes)));
  return res;
}

// One prepared call: the arguments copied out of JS, safe to run on another thread.
struct Job {
  std::shared_ptr<const PackedB> packed;
  GemmCall call;
  std::vector<int32_t> a_zp;
  std::vector<float> a_scale;
  bool dynamic = false;  // linearDynamic
  const float* x = nullptr;
  bool per_row = true, act_signed = false;
  void run() {
    if (dynamic) linear_dynamic(x, call.M, *packed, call.bias, call.relu, per_row, act_signed, static_cast<float*>(call.out));
    else gemm_run(*packed, call);
  }
};

napi_typedarray_type out_type(int32_t kind) {
  switch (kind) {
    case kGemmOutInt32: return napi_int32_array;
    case kGemmOutFloat32: return napi_float32_array;
    case kGemmOutInt8: return napi_int8_array;
    default: return napi_uint8_array;
  }
}

size_t elem_size(int32_t kind) { return kind == kGemmOutInt32 || kind == kGemmOutFloat32 ? 4 : 1; }

// gemm(a, aSigned, M, packed, aZeroPoint, outKind, out, aScale|null, bias|null, relu, yScale, yZeroPoint);
// bias: Float32Array (float32 output) or Int32Array (int8/uint8 outputs) of N, or null.
Job prepare_gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Job j;
  const bool a_signed = boolean(info, 1, "aSigned");
  View a = typed_array_of(info, 0, "a", a_signed ? napi_int8_array : napi_uint8_array);
  const size_t M = static_cast<size_t>(integer(info, 2, "M", 0, kMaxDim));
  const PackedB& B = packed_at(info, 3, &j.packed);
  expect_length(env, a, checked_mul(env, M, B.K), "a");
  j.a_zp = zero_points(info, 4, "aZeroPoint", M, a_signed ? -128 : 0, a_signed ? 127 : 255);
  const int32_t kind = static_cast<int32_t>(integer(info, 5, "outKind", 0, 3));
  View out = typed_array_of(info, 6, "out", out_type(kind));
  expect_length(env, out, checked_mul(env, M, B.N), "out");
  expect_no_partial_overlap(env, a.data, a.length, out.data, out.length * elem_size(kind), "a", "out", false);
  const std::string err = gemm_bound_error(B.K, gemm_max_dev(a_signed, j.a_zp.data(), j.a_zp.size()), B.max_dev);
  if (!err.empty()) range_error(env, err);
  GemmCall& c = j.call;
  c.a = static_cast<const uint8_t*>(a.data);
  c.a_signed = a_signed;
  c.M = M;
  c.a_zp = j.a_zp.data();
  c.a_zp_per_row = j.a_zp.size() > 1;
  c.out_kind = kind;
  c.out = out.data;
  if (kind != kGemmOutInt32) {
    if (is_nullish(info[7])) j.a_scale = {1.0f};
    else j.a_scale = scales(info, 7, "aScale", M);
    c.a_scale = j.a_scale.data();
    c.a_scale_per_row = j.a_scale.size() > 1;
    c.relu = boolean(info, 9, "relu");
  }
  // bias: Float32Array (float32 output) or Int32Array (int8/uint8: ONNX QLinearConv / QGemm bias).
  if (!is_nullish(info[8])) {
    if (kind == kGemmOutInt32) type_error(env, "Expected null (output int32) for bias but received " + describe(info[8]));
    View bias = typed_array_of(info, 8, "bias", kind == kGemmOutFloat32 ? napi_float32_array : napi_int32_array);
    expect_length(env, bias, B.N, "bias");
    if (kind == kGemmOutFloat32) c.bias = static_cast<const float*>(bias.data);
    else c.bias_q = static_cast<const int32_t*>(bias.data);
  }
  if (kind == kGemmOutInt8 || kind == kGemmOutUint8) {
    const double ys = number(info, 10, "outScale");
    const float ysf = static_cast<float>(ys);
    if (!(ysf > 0.0f) || !std::isfinite(ysf)) range_error(env, "Expected a positive finite number for outScale but received " + fmt_g(ys));
    c.y_scale = ysf;
    c.y_zp = kind == kGemmOutInt8 ? static_cast<int32_t>(integer(info, 11, "outZeroPoint", -128, 127))
                                  : static_cast<int32_t>(integer(info, 11, "outZeroPoint", 0, 255));
    // The multiplier must be finite (an infinite one times acc 0 has no value).
    for (float as : j.a_scale)
      for (float bs : B.scale) {
        const float m = (as * bs) / ysf;
        if (!std::isfinite(m))
          range_error(env, "Expected aScale * bScale / outScale to be finite but received " + fmt_g(as) + " * " + fmt_g(bs) + " / " + fmt_g(ysf));
      }
  }
  return j;
}

// linearDynamic(x, M, packed, bias|null, relu, perRow, actSigned, out)
Job prepare_dynamic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Job j;
  j.dynamic = true;
  View x = typed_array_of(info, 0, "x", napi_float32_array);
  const size_t M = static_cast<size_t>(integer(info, 1, "M", 0, kMaxDim));
  const PackedB& B = packed_at(info, 2, &j.packed);
  expect_length(env, x, checked_mul(env, M, B.K), "x");
  j.call.M = M;
  if (!is_nullish(info[3])) {
    View bias = typed_array_of(info, 3, "bias", napi_float32_array);
    expect_length(env, bias, B.N, "bias");
    j.call.bias = static_cast<const float*>(bias.data);
  }
  j.call.relu = boolean(info, 4, "relu");
  j.per_row = boolean(info, 5, "perRow");
  j.act_signed = boolean(info, 6, "actSigned");
  View out = typed_array_of(info, 7, "out", napi_float32_array);
  expect_length(env, out, checked_mul(env, M, B.N), "out");
  expect_no_partial_overlap(env, x.data, x.length * 4, out.data, out.length * 4, "x", "out", false);
  const std::string err = gemm_bound_error(B.K, j.act_signed ? 127 : 255, B.max_dev);
  if (!err.empty()) range_error(env, err);
  j.x = static_cast<const float*>(x.data);
  j.call.out = out.data;
  return j;
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Job j = prepare_gemm(info);
  j.run();
  return info.Env().Undefined();
}

Napi::Value GemmAsync(const Napi::CallbackInfo& info) {
  Job j = prepare_gemm(info);
  return queue_promise(info, "quantkit:gemm", std::move(j), 6);
}

Napi::Value LinearDynamic(const Napi::CallbackInfo& info) {
  Job j = prepare_dynamic(info);
  j.run();
  return info.Env().Undefined();
}

Napi::Value LinearDynamicAsync(const Napi::CallbackInfo& info) {
  Job j = prepare_dynamic(info);
  return queue_promise(info, "quantkit:linearDynamic", std::move(j), 7);
}

static Module m(+[](Napi::Env env, Napi::Object exports) {
  exports.Set("gemmPack", Napi::Function::New(env, GemmPack, "gemmPack"));
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("gemmAsync", Napi::Function::New(env, GemmAsync, "gemmAsync"));
  exports.Set("linearDynamic", Napi::Function::New(env, LinearDynamic, "linearDynamic"));
  exports.Set("linearDynamicAsync", Napi::Function::New(env, LinearDynamicAsync, "linearDynamicAsync"));
});

}  // namespace
}  // namespace napi
}  // namespace qk
