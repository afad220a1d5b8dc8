// The N-API surface (binding.d.ts types it; lib/native.ts is its only caller in lib/). The only
// file family that includes napi.h. Every argument is checked again here, with the rules of
// args.h, whatever lib/ checked: a bad call throws, never crashes.
#include <napi.h>

#include "args.h"
#include "registry.h"
#include "core/quant.h"
#include "core/threadpool.h"
#include "dispatch/cpu.h"
#include "dispatch/dispatch.h"

namespace qk {
namespace napi {
namespace {

// Positional arguments (lib/native.ts names them): a layout is (outer, axisDim, inner, granularity,
// blockSize); storage, granularity and formula are the codes of enums.def.

// quantize(x, out, scale, zeroPoint, storage, ...layout, qmin, qmax, formula)
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View x = typed_array_of(info, 0, "x", napi_float32_array);
  View out = typed_array_of2(info, 1, "out", napi_int8_array, napi_uint8_array);
  const Storage st = storage_at(info, 4);
  const Layout L = layout_at(info, 5);
  const QRange r = range_at(info, 10);
  expect_length(env, x, L.numel(), "x");
  expect_length(env, out, storage_bytes(L, st), "out");
  if (st == Storage::Nibble && (r.qmin < -8 || r.qmax > 15))
    range_error(env, "Expected a range inside -8..15 for nibble storage but received " + std::to_string(r.qmin) + ".." +
                         std::to_string(r.qmax));
  if (st == Storage::Byte && r.qmax > 127 && out.type != napi_uint8_array)
    type_error(env, std::string("Expected Uint8Array for out (codes up to ") + std::to_string(r.qmax) +
                        ") but received " + out.type_name());
  if (st == Storage::Byte && r.qmin < 0 && out.type != napi_int8_array)
    type_error(env, std::string("Expected Int8Array for out (codes down to ") + std::to_string(r.qmin) +
                        ") but received " + out.type_name());
  QParamsArg qp = qparams_at(info, 2, L.num_groups(), r.qmin, r.qmax);
  expect_no_partial_overlap(env, x.data, x.length * 4, out.data, out.length, "x", "out", false);
  qp.expect_clear_of(env, out.data, out.length, "out");
  quantize(static_cast<const float*>(x.data), L, qp.view(), r, st, static_cast<uint8_t*>(out.data));
  return env.Undefined();
}

// dequantize(q, out, scale, zeroPoint, isSigned, storage, ...layout)
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View q = typed_array_of2(info, 0, "q", napi_int8_array, napi_uint8_array);
  View out = typed_array_of(info, 1, "out", napi_float32_array);
  const bool is_signed = boolean(info, 4, "isSigned");
  const Storage st = storage_at(info, 5);
  const Layout L = layout_at(info, 6);
  expect_length(env, q, storage_bytes(L, st), "q");
  expect_length(env, out, L.numel(), "out");
  const QRange codes = storage_range(is_signed, st);
  QParamsArg qp = qparams_at(info, 2, L.num_groups(), codes.qmin, codes.qmax);
  expect_no_partial_overlap(env, q.data, q.length, out.data, out.length * 4, "q", "out", false);
  qp.expect_clear_of(env, out.data, out.length * 4, "out");
  dequantize(static_cast<const uint8_t*>(q.data), L, qp.view(), is_signed, st, static_cast<float*>(out.data));
  return env.Undefined();
}

// fakeQuantize(x, out, mask|null, scale, zeroPoint, ...layout, qmin, qmax, formula)
Napi::Value FakeQuantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View x = typed_array_of(info, 0, "x", napi_float32_array);
  View out = typed_array_of(info, 1, "out", napi_float32_array);
  const Layout L = layout_at(info, 5);
  const QRange r = range_at(info, 10);
  expect_length(env, x, L.numel(), "x");
  expect_length(env, out, L.numel(), "out");
  uint8_t* mask = nullptr;
  if (!is_nullish(info[2])) {
    View m = typed_array_of(info, 2, "mask", napi_uint8_array);
    expect_length(env, m, L.numel(), "mask");
    mask = static_cast<uint8_t*>(m.data);
    expect_no_partial_overlap(env, x.data, x.length * 4, m.data, m.length, "x", "mask", false);
    expect_no_partial_overlap(env, out.data, out.length * 4, m.data, m.length, "out", "mask", false);
  }
  QParamsArg qp = qparams_at(info, 3, L.num_groups(), r.qmin, r.qmax);
  expect_no_partial_overlap(env, x.data, x.length * 4, out.data, out.length * 4, "x", "out", true);
  qp.expect_clear_of(env, out.data, out.length * 4, "out");
  if (mask) qp.expect_clear_of(env, mask, L.numel(), "mask");
  fake_quantize(static_cast<const float*>(x.data), L, qp.view(), r, static_cast<float*>(out.data), mask);
  return env.Undefined();
}

// minMax(x, mins, maxs, ...layout) -> [nanCount, infCount]
Napi::Value MinMax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View x = typed_array_of(info, 0, "x", napi_float32_array);
  View mins = typed_array_of(info, 1, "min", napi_float32_array);
  View maxs = typed_array_of(info, 2, "max", napi_float32_array);
  const Layout L = layout_at(info, 3);
  expect_length(env, x, L.numel(), "x");
  expect_length(env, mins, L.num_groups(), "min");
  expect_length(env, maxs, L.num_groups(), "max");
  expect_no_partial_overlap(env, mins.data, mins.length * 4, maxs.data, maxs.length * 4, "min", "max", false);
  expect_no_partial_overlap(env, x.data, x.length * 4, mins.data, mins.length * 4, "x", "min", false);
  expect_no_partial_overlap(env, x.data, x.length * 4, maxs.data, maxs.length * 4, "x", "max", false);
  MinMaxAcc acc;
  min_max(static_cast<const float*>(x.data), L, static_cast<float*>(mins.data), static_cast<float*>(maxs.data), &acc);
  Napi::Array res = Napi::Array::New(env, 2);
  res.Set(0u, Napi::Number::New(env, static_cast<double>(acc.nan)));
  res.Set(1u, Napi::Number::New(env, static_cast<double>(acc.inf)));
  return res;
}

// dynamicQuantize(x, out) -> [scale, zeroPoint]
Napi::Value DynamicQuantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View x = typed_array_of(info, 0, "x", napi_float32_array);
  View out = typed_array_of(info, 1, "out", napi_uint8_array);
  expect_length(env, out, x.length, "out");
  expect_no_partial_overlap(env, x.data, x.length * 4, out.data, out.length, "x", "out", false);
  float scale;
  int32_t zp;
  dynamic_quantize(static_cast<const float*>(x.data), x.length, static_cast<uint8_t*>(out.data), &scale, &zp);
  Napi::Array res = Napi::Array::New(env, 2);
  res.Set(0u, Napi::Number::New(env, scale));
  res.Set(1u, Napi::Number::New(env, zp));
  return res;
}

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& f = cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("arch", f.arch);
  Napi::Array feats = Napi::Array::New(env);
  uint32_t k = 0;
  for (const std::string& s : cpu_feature_names()) feats.Set(k++, s);
  o.Set("features", feats);
  Napi::Array built = Napi::Array::New(env), supported = Napi::Array::New(env);
  uint32_t b = 0, s = 0;
  for (int i = 0; i < static_cast<int>(Isa::count); ++i) {
    const Isa isa = static_cast<Isa>(i);
    if (isa_built(isa)) built.Set(b++, isa_name(isa));
    if (isa_supported(isa)) supported.Set(s++, isa_name(isa));
  }
  o.Set("builtPaths", built);
  o.Set("supportedPaths", supported);
  Napi::Object sel = Napi::Object::New(env);
  const KernelTable& t = kernels();
#define QK_OP(op, type) sel.Set(#op, isa_name(t.op##_isa));
#include "dispatch/ops.def"
#undef QK_OP
  o.Set("selected", sel);
  o.Set("forced", forced_isa());
  o.Set("threads", num_threads());
  o.Set("defaultThreads", default_num_threads());
  return o;
}

Napi::Value KernelList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array arr = Napi::Array::New(env);
  uint32_t k = 0;
  for (const KernelEntry& e : kernel_list()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("op", op_name(e.op));
    o.Set("isa", isa_name(e.isa));
    o.Set("symbol", e.symbol);
    o.Set("supported", isa_supported(e.isa));
    // Geometry of tiled kernels (0 and no traits for element-wise ones): kernels_*.def.
    o.Set("mr", e.geom.mr);
    o.Set("nr", e.geom.nr);
    Napi::Array traits = Napi::Array::New(env);
    uint32_t t = 0;
    for (const char* name : kernel_trait_names(e.geom.traits)) traits.Set(t++, name);
    o.Set("traits", traits);
    arr.Set(k++, o);
  }
  return arr;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) type_error(env, "Expected a string for isa but received " + describe(info[0]));
  const std::string err = set_isa(info[0].As<Napi::String>().Utf8Value(), "path");
  if (!err.empty()) range_error(env, err);
  return env.Undefined();
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  set_num_threads(static_cast<int>(integer(info, 0, "threads", 1, 1024)));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), num_threads()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  const std::string err = init_dispatch_from_env();
  if (!err.empty()) throw Napi::Error::New(env, "quantkit: " + err);
  exports.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
  exports.Set("dequantize", Napi::Function::New(env, Dequantize, "dequantize"));
  exports.Set("fakeQuantize", Napi::Function::New(env, FakeQuantize, "fakeQuantize"));
  exports.Set("minMax", Napi::Function::New(env, MinMax, "minMax"));
  exports.Set("dynamicQuantize", Napi::Function::New(env, DynamicQuantize, "dynamicQuantize"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo, "cpuInfo"));
  exports.Set("kernelList", Napi::Function::New(env, KernelList, "kernelList"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("enums", enum_table(env));  // enums.def, checked by lib/native.ts at load
  register_all(env, exports);             // functions of the other native/napi/*.cc files
  return exports;
}

}  // namespace
}  // namespace napi
}  // namespace qk

static Napi::Object InitQuantkit(Napi::Env env, Napi::Object exports) { return qk::napi::Init(env, exports); }

NODE_API_MODULE(quantkit, InitQuantkit)
