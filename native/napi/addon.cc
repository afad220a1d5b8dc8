// The N-API surface (binding.d.ts types it). The only file family that includes napi.h.
// Every argument is checked again here, whatever lib/ checked: a bad call throws, never crashes.
#include <napi.h>

#include <cmath>
#include <limits>
#include <vector>

#include "args.h"
#include "registry.h"
#include "core/quant.h"
#include "core/threadpool.h"
#include "dispatch/cpu.h"
#include "dispatch/dispatch.h"

namespace qk {
namespace napi {
namespace {

// ---- geometry and qparams ---------------------------------------------------------------

size_t checked_mul(Napi::Env env, size_t a, size_t b) {
  if (a != 0 && b > std::numeric_limits<size_t>::max() / a) range_error(env, "Expected a tensor size that fits in memory but received a shape whose product overflows");
  return a * b;
}

// (outer, axisDim, inner, gran, block) at info[i..i+4]
Layout layout_at(const Napi::CallbackInfo& info, size_t i) {
  constexpr int64_t kMax = int64_t{1} << 52;
  Layout L;
  L.outer = static_cast<size_t>(integer(info, i, "outer", 0, kMax));
  L.axis_dim = static_cast<size_t>(integer(info, i + 1, "axisDim", 0, kMax));
  L.inner = static_cast<size_t>(integer(info, i + 2, "inner", 0, kMax));
  const int64_t g = integer(info, i + 3, "granularity", 0, 2);
  L.gran = g == 0 ? Gran::PerTensor : (g == 1 ? Gran::PerAxis : Gran::Blocked);
  L.block = static_cast<size_t>(integer(info, i + 4, "blockSize", 0, kMax));
  if (L.gran == Gran::Blocked && L.block == 0)
    range_error(info.Env(), "Expected a positive integer for blockSize but received 0");
  checked_mul(info.Env(), checked_mul(info.Env(), L.outer, L.axis_dim), L.inner);
  return L;
}

QRange range_at(const Napi::CallbackInfo& info, size_t i) {
  QRange r;
  r.qmin = static_cast<int32_t>(integer(info, i, "qmin", -128, 255));
  r.qmax = static_cast<int32_t>(integer(info, i + 1, "qmax", -128, 255));
  r.flags = static_cast<uint32_t>(integer(info, i + 2, "flags", 0, 1));
  if (r.qmin > r.qmax)
    range_error(info.Env(), "Expected qmin <= qmax but received qmin " + std::to_string(r.qmin) +
                                " and qmax " + std::to_string(r.qmax));
  if (r.qmin < 0 && r.qmax > 127)
    range_error(info.Env(), "Expected a signed (-128..127) or unsigned (0..255) range but received " +
                                std::to_string(r.qmin) + ".." + std::to_string(r.qmax));
  return r;
}

// Scales and zero points, owned copies only when a number or a non-int32 array is given.
struct QParamsArg {
  const float* scale = nullptr;
  const int32_t* zp = nullptr;
  float scale_one = 0;
  int32_t zp_one = 0;
  std::vector<int32_t> zp_copy;
  // The caller's memory that the kernels read while they run (0 bytes: a number, or copied).
  size_t scale_bytes = 0, zp_bytes = 0;
  QParamsView view() const { return QParamsView{scale, zp}; }
  // An output must not share bytes with the scales or zero points it is computed from.
  void expect_clear_of(Napi::Env env, const void* out, size_t out_bytes, const char* out_name) const {
    expect_no_partial_overlap(env, scale, scale_bytes, out, out_bytes, "scale", out_name, false);
    expect_no_partial_overlap(env, zp, zp_bytes, out, out_bytes, "zeroPoint", out_name, false);
  }
};

QParamsArg qparams_at(const Napi::CallbackInfo& info, size_t i, size_t groups, int32_t zlo, int32_t zhi) {
  Napi::Env env = info.Env();
  QParamsArg q;
  size_t scount;
  if (info[i].IsNumber()) {
    if (groups != 1) range_error(env, "Expected a Float32Array of length " + std::to_string(groups) + " for scale but received a number");
    q.scale_one = static_cast<float>(info[i].As<Napi::Number>().DoubleValue());
    q.scale = &q.scale_one;
    scount = 1;
  } else {
    View s = typed_array_of(info, i, "scale", napi_float32_array);
    expect_length(env, s, groups, "scale");
    q.scale = static_cast<const float*>(s.data);
    scount = s.length;
    q.scale_bytes = s.length * sizeof(float);
  }
  for (size_t g = 0; g < scount; ++g) {
    const float s = q.scale[g];
    if (!(s > 0.0f) || !std::isfinite(s)) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(s));
      range_error(env, "Expected a positive finite number for scale[" + std::to_string(g) + "] but received " + buf);
    }
  }
  const Napi::Value zv = info[i + 1];
  if (zv.IsNumber()) {
    if (groups != 1) range_error(env, "Expected a typed array of length " + std::to_string(groups) + " for zeroPoint but received a number");
    const double d = zv.As<Napi::Number>().DoubleValue();
    if (!(d >= zlo && d <= zhi) || std::floor(d) != d)
      range_error(env, "Expected an integer between " + std::to_string(zlo) + " and " + std::to_string(zhi) + " for zeroPoint but received " + describe(zv));
    q.zp_one = static_cast<int32_t>(d);
    q.zp = &q.zp_one;
    return q;
  }
  bool is_ta = false;
  napi_is_typedarray(env, zv, &is_ta);
  if (!is_ta) type_error(env, "Expected a number, Int32Array, Int8Array or Uint8Array for zeroPoint but received " + describe(zv));
  View z = typed_array(info, i + 1, "zeroPoint");
  expect_length(env, z, groups, "zeroPoint");
  if (z.type == napi_int32_array) {
    q.zp = static_cast<const int32_t*>(z.data);
    q.zp_bytes = z.length * sizeof(int32_t);
  } else if (z.type == napi_int8_array) {
    const int8_t* p = static_cast<const int8_t*>(z.data);
    q.zp_copy.assign(p, p + z.length);
    q.zp = q.zp_copy.data();
  } else if (z.type == napi_uint8_array) {
    const uint8_t* p = static_cast<const uint8_t*>(z.data);
    q.zp_copy.assign(p, p + z.length);
    q.zp = q.zp_copy.data();
  } else {
    type_error(env, std::string("Expected Int32Array, Int8Array or Uint8Array for zeroPoint but received ") + describe(zv));
  }
  for (size_t g = 0; g < groups; ++g)
    if (q.zp[g] < zlo || q.zp[g] > zhi)
      range_error(env, "Expected an integer between " + std::to_string(zlo) + " and " + std::to_string(zhi) +
                           " for zeroPoint[" + std::to_string(g) + "] but received " + std::to_string(q.zp[g]));
  return q;
}

size_t storage_bytes(const Layout& L, Storage st) {
  return st == Storage::Nibble ? (L.numel() + 1) / 2 : L.numel();
}

Storage storage_at(const Napi::CallbackInfo& info, size_t i) {
  return integer(info, i, "storage", 0, 1) == 1 ? Storage::Nibble : Storage::Byte;
}

// ---- functions --------------------------------------------------------------------------

// quantize(x, out, scale, zeroPoint, storage, outer, axisDim, inner, gran, block, qmin, qmax, flags)
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
    range_error(env, "Expected a range inside -8..15 for nibble storage but received " + std::to_string(r.qmin) + ".." + std::to_string(r.qmax));
  if (st == Storage::Byte && r.qmax > 127 && out.type != napi_uint8_array)
    type_error(env, std::string("Expected Uint8Array for out (codes up to ") + std::to_string(r.qmax) + ") but received " + out.type_name());
  if (st == Storage::Byte && r.qmin < 0 && out.type != napi_int8_array)
    type_error(env, std::string("Expected Int8Array for out (codes down to ") + std::to_string(r.qmin) + ") but received " + out.type_name());
  QParamsArg qp = qparams_at(info, 2, L.num_groups(), r.qmin, r.qmax);
  expect_no_partial_overlap(env, x.data, x.length * 4, out.data, out.length, "x", "out", false);
  qp.expect_clear_of(env, out.data, out.length, "out");
  quantize(static_cast<const float*>(x.data), L, qp.view(), r, st, static_cast<uint8_t*>(out.data));
  return env.Undefined();
}

// dequantize(q, out, scale, zeroPoint, isSigned, storage, outer, axisDim, inner, gran, block)
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View q = typed_array_of2(info, 0, "q", napi_int8_array, napi_uint8_array);
  View out = typed_array_of(info, 1, "out", napi_float32_array);
  if (!info[4].IsBoolean()) type_error(env, "Expected a boolean for isSigned but received " + describe(info[4]));
  const bool is_signed = info[4].As<Napi::Boolean>().Value();
  const Storage st = storage_at(info, 5);
  const Layout L = layout_at(info, 6);
  expect_length(env, q, storage_bytes(L, st), "q");
  expect_length(env, out, L.numel(), "out");
  const int32_t zlo = is_signed ? (st == Storage::Nibble ? -8 : -128) : 0;
  const int32_t zhi = is_signed ? (st == Storage::Nibble ? 7 : 127) : (st == Storage::Nibble ? 15 : 255);
  QParamsArg qp = qparams_at(info, 2, L.num_groups(), zlo, zhi);
  expect_no_partial_overlap(env, q.data, q.length, out.data, out.length * 4, "q", "out", false);
  qp.expect_clear_of(env, out.data, out.length * 4, "out");
  dequantize(static_cast<const uint8_t*>(q.data), L, qp.view(), is_signed, st, static_cast<float*>(out.data));
  return env.Undefined();
}

// fakeQuantize(x, out, mask|null, scale, zeroPoint, outer, axisDim, inner, gran, block, qmin, qmax, flags)
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

// minMax(x, mins, maxs, outer, axisDim, inner, gran, block) -> [nanCount, infCount]
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

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), num_threads());
}

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
  register_all(env, exports);  // functions of the other native/napi/*.cc files
  return exports;
}

}  // namespace
}  // namespace napi
}  // namespace qk

static Napi::Object InitQuantkit(Napi::Env env, Napi::Object exports) {
  return qk::napi::Init(env, exports);
}

NODE_API_MODULE(quantkit, InitQuantkit)
