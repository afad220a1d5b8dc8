#include "args.h"

#include <cstdio>
#include <limits>

#include "core/kernel_types.h"
#include "core/kernel_types_gemm.h"

namespace qk {
namespace napi {

// ---- the enums --------------------------------------------------------------------------------

// Each wire value is the one native/core uses, so codes pass through without a table.
static_assert(wire::OutputKind_Int32 == kGemmOutInt32 && wire::OutputKind_Float32 == kGemmOutFloat32 &&
              wire::OutputKind_Int8 == kGemmOutInt8 && wire::OutputKind_Uint8 == kGemmOutUint8);
static_assert(wire::Storage_Byte == static_cast<int32_t>(Storage::Byte) &&
              wire::Storage_Nibble == static_cast<int32_t>(Storage::Nibble));
static_assert(wire::Formula_Onnx == 0 && wire::Formula_Pytorch == static_cast<int32_t>(QK_RECIP));
static_assert(wire::GranularityCode_PerTensor == static_cast<int32_t>(Gran::PerTensor) &&
              wire::GranularityCode_PerAxis == static_cast<int32_t>(Gran::PerAxis) &&
              wire::GranularityCode_Blocked == static_cast<int32_t>(Gran::Blocked));

// Values of each type run 0, 1, 2, ... in the order listed (range checks use 0..enum_max).
constexpr bool enums_dense() {
  for (size_t i = 0; i < sizeof kEnums / sizeof kEnums[0]; ++i) {
    int32_t before = 0;
    for (size_t j = 0; j < i; ++j)
      if (same_name(kEnums[j].type, kEnums[i].type)) ++before;
    if (kEnums[i].value != before) return false;
  }
  return true;
}
static_assert(enums_dense(), "enums.def: the values of a type must be 0, 1, 2, ... in order");

Napi::Object enum_table(Napi::Env env) {
  Napi::Object t = Napi::Object::New(env);
  for (const EnumEntry& e : kEnums) {
    if (!t.Has(e.type)) t.Set(e.type, Napi::Object::New(env));
    t.Get(e.type).As<Napi::Object>().Set(e.member, Napi::Number::New(env, e.value));
  }
  return t;
}

// ---- typed arrays and scalars -----------------------------------------------------------------

const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

const char* View::type_name() const { return typed_array_name(type); }

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    return std::string(typed_array_name(ta.TypedArrayType())) + " of length " + std::to_string(ta.ElementLength());
  }
  if (v.IsBoolean()) return std::string("boolean ") + (v.As<Napi::Boolean>().Value() ? "true" : "false");
  if (v.IsNumber()) return "number " + fmt_number(v.As<Napi::Number>().DoubleValue());
  if (v.IsString()) return "string";
  if (v.IsArrayBuffer()) return "ArrayBuffer";
  if (v.IsArray()) return "Array";
  if (v.IsFunction()) return "function";
  if (v.IsObject()) return "object";
  return "a value of another type";
}

std::string fmt_number(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", d);
  return buf;
}

bool is_typed_array(Napi::Env env, const Napi::Value& v) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  return is_ta;
}

View typed_array(Napi::Env env, const Napi::Value& value, const char* name) {
  napi_value v = value;
  if (!is_typed_array(env, value))
    type_error(env, std::string("Expected a TypedArray for ") + name + " but received " + describe(value));
  View out;
  napi_value ab;
  size_t byte_offset = 0;
  napi_get_typedarray_info(env, v, &out.type, &out.length, &out.data, &ab, &byte_offset);
  bool detached = false;
  napi_is_detached_arraybuffer(env, ab, &detached);
  if (detached)
    type_error(env, std::string("Expected an attached buffer for ") + name +
                        " but received a TypedArray whose ArrayBuffer was detached (transferred)");
  return out;
}

View typed_array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return typed_array(info.Env(), info[i], name);
}

View typed_array_of(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type want) {
  return typed_array_of2(info.Env(), info[i], name, want, want);
}

View typed_array_of2(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type want1,
                     napi_typedarray_type want2) {
  return typed_array_of2(info.Env(), info[i], name, want1, want2);
}

namespace {

// Messages are built only when thrown: the checks run on every call.
[[noreturn]] void wrong_kind(Napi::Env env, const Napi::Value& value, const char* name, napi_typedarray_type want1,
                             napi_typedarray_type want2) {
  std::string want = typed_array_name(want1);
  if (want2 != want1) want += std::string(" or ") + typed_array_name(want2);
  type_error(env, "Expected " + want + " for " + name + " but received " + describe(value));
}

}  // namespace

View typed_array_of2(Napi::Env env, const Napi::Value& value, const char* name, napi_typedarray_type want1,
                     napi_typedarray_type want2) {
  if (!is_typed_array(env, value)) wrong_kind(env, value, name, want1, want2);
  View v = typed_array(env, value, name);
  if (v.type != want1 && v.type != want2) wrong_kind(env, value, name, want1, want2);
  return v;
}

bool is_nullish(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

double number(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) type_error(env, std::string("Expected a number for ") + name + " but received " + describe(v));
  return v.As<Napi::Number>().DoubleValue();
}

double number(const Napi::CallbackInfo& info, size_t i, const char* name) { return number(info.Env(), info[i], name); }

int64_t integer(Napi::Env env, const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  const double d = number(env, v, name);
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || std::floor(d) != d)
    range_error(env, std::string("Expected an integer between ") + std::to_string(lo) + " and " + std::to_string(hi) +
                         " for " + name + " but received " + describe(v));
  return static_cast<int64_t>(d);
}

int64_t integer(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  return integer(info.Env(), info[i], name, lo, hi);
}

bool boolean(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsBoolean()) type_error(env, std::string("Expected a boolean for ") + name + " but received " + describe(v));
  return v.As<Napi::Boolean>().Value();
}

bool boolean(const Napi::CallbackInfo& info, size_t i, const char* name) { return boolean(info.Env(), info[i], name); }

Napi::Value field(const Napi::Object& obj, const char* key) {
  // Own properties only (nothing inherited). A getter runs JavaScript: read every field of a call
  // before taking any View, so that no getter can detach an array already viewed.
  Napi::Env env = obj.Env();
  napi_value k = Napi::String::New(env, key);
  bool own = false;
  napi_has_own_property(env, obj, k, &own);
  if (!own) return env.Undefined();
  return obj.Get(key);
}

void expect_length(Napi::Env env, const View& v, size_t want, const char* name) {
  if (v.length != want)
    range_error(env, std::string("Expected length ") + std::to_string(want) + " for " + name + " but received " +
                         v.type_name() + " of length " + std::to_string(v.length));
}

void expect_no_partial_overlap(Napi::Env env, const void* a, size_t abytes, const void* b, size_t bbytes,
                               const char* an, const char* bn, bool allow_same) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  if (abytes == 0 || bbytes == 0) return;
  if (allow_same && pa == pb && abytes == bbytes) return;
  if (pa < pb + bbytes && pb < pa + abytes)
    range_error(env, std::string("Expected ") + an + " and " + bn +
                         " not to overlap in memory but received views of the same bytes" +
                         (allow_same ? " (only the very same array is allowed)" : ""));
}

size_t checked_mul(Napi::Env env, size_t a, size_t b) {
  if (a != 0 && b > std::numeric_limits<size_t>::max() / a)
    range_error(env, "Expected sizes whose product fits in memory but received sizes whose product overflows");
  return a * b;
}

// ---- layouts, code ranges, storage, output kinds ----------------------------------------------

Layout layout_at(const Napi::CallbackInfo& info, size_t i, LayoutArgs form) {
  Napi::Env env = info.Env();
  const bool with_block = form == LayoutArgs::WithBlock;
  Layout L;
  L.outer = static_cast<size_t>(integer(info, i, "outer", 0, kMaxLayoutDim));
  L.axis_dim = static_cast<size_t>(integer(info, i + 1, "axisDim", 0, kMaxLayoutDim));
  L.inner = static_cast<size_t>(integer(info, i + 2, "inner", 0, kMaxLayoutDim));
  const int64_t g =
      integer(info, i + 3, "granularity", 0, with_block ? kGranularityMax : wire::GranularityCode_PerAxis);
  L.gran = static_cast<Gran>(g);
  if (with_block) {
    L.block = static_cast<size_t>(integer(info, i + 4, "blockSize", 0, kMaxLayoutDim));
    if (L.gran == Gran::Blocked && L.block == 0)
      range_error(env, "Expected a positive integer for blockSize but received 0");
  }
  checked_mul(env, checked_mul(env, L.outer, L.axis_dim), L.inner);
  return L;
}

QRange range_at(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  QRange r;
  r.qmin = static_cast<int32_t>(integer(info, i, "qmin", -128, 255));
  r.qmax = static_cast<int32_t>(integer(info, i + 1, "qmax", -128, 255));
  r.flags = static_cast<uint32_t>(integer(info, i + 2, "flags", 0, kFormulaMax));
  if (r.qmin > r.qmax)
    range_error(env, "Expected qmin <= qmax but received qmin " + std::to_string(r.qmin) + " and qmax " +
                         std::to_string(r.qmax));
  if (r.qmin < 0 && r.qmax > 127)
    range_error(env, "Expected a signed (-128..127) or unsigned (0..255) range but received " + std::to_string(r.qmin) +
                         ".." + std::to_string(r.qmax));
  return r;
}

Storage storage_at(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<Storage>(integer(info, i, "storage", 0, kStorageMax));
}

QRange storage_range(bool is_signed, Storage st) {
  const bool nib = st == Storage::Nibble;
  if (is_signed) return QRange{nib ? -8 : -128, nib ? 7 : 127, 0};
  return QRange{0, nib ? 15 : 255, 0};
}

size_t storage_bytes(const Layout& L, Storage st) { return st == Storage::Nibble ? (L.numel() + 1) / 2 : L.numel(); }

int32_t output_kind_at(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return static_cast<int32_t>(integer(info, i, name, 0, kOutputKindMax));
}

napi_typedarray_type output_kind_type(int32_t kind) {
  switch (kind) {
    case wire::OutputKind_Int32: return napi_int32_array;
    case wire::OutputKind_Float32: return napi_float32_array;
    case wire::OutputKind_Int8: return napi_int8_array;
    default: return napi_uint8_array;
  }
}

size_t output_kind_bytes(int32_t kind) {
  return kind == wire::OutputKind_Int32 || kind == wire::OutputKind_Float32 ? 4 : 1;
}

// ---- qparams ----------------------------------------------------------------------------------

namespace {

void expect_count(Napi::Env env, const View& v, size_t count, Count c, const char* name) {
  if (c == Count::Exact) return expect_length(env, v, count, name);
  if (v.length != 1 && v.length != count)
    range_error(env, std::string("Expected length 1 or ") + std::to_string(count) + " for " + name + " but received " +
                         v.type_name() + " of length " + std::to_string(v.length));
}

std::string at(const char* name, size_t k) { return std::string(name) + "[" + std::to_string(k) + "]"; }

[[noreturn]] void zero_point_type_error(Napi::Env env, const Napi::Value& v, const char* name) {
  type_error(env, std::string("Expected a number, Int32Array, Int8Array or Uint8Array for ") + name + " but received " +
                      describe(v));
}

}  // namespace

Scales scales(Napi::Env env, const Napi::Value& v, const char* name, size_t count, Count c) {
  Scales s;
  if (v.IsNumber()) {
    if (c == Count::Exact && count != 1)
      range_error(env, "Expected a Float32Array of length " + std::to_string(count) + " for " + name +
                           " but received a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    s.one = static_cast<float>(d);
    s.count = 1;
    if (!(s.one > 0.0f) || !std::isfinite(s.one))
      range_error(env, std::string("Expected a positive finite number for ") + name + " but received " + fmt_number(d));
    return s;
  }
  if (!is_typed_array(env, v))
    type_error(env, std::string("Expected a number or Float32Array for ") + name + " but received " + describe(v));
  const View t = typed_array_of2(env, v, name, napi_float32_array, napi_float32_array);
  expect_count(env, t, count, c, name);
  s.view = static_cast<const float*>(t.data);
  s.count = t.length;
  s.bytes = t.length * sizeof(float);
  for (size_t k = 0; k < s.count; ++k)
    if (!(s.view[k] > 0.0f) || !std::isfinite(s.view[k]))
      range_error(env,
                  "Expected a positive finite number for " + at(name, k) + " but received " + fmt_number(s.view[k]));
  return s;
}

ZeroPoints zero_points(Napi::Env env, const Napi::Value& v, const char* name, size_t count, int32_t lo, int32_t hi,
                       Count c) {
  ZeroPoints z;
  if (v.IsNumber()) {
    if (c == Count::Exact && count != 1)
      range_error(
          env, "Expected a typed array of length " + std::to_string(count) + " for " + name + " but received a number");
    z.one = static_cast<int32_t>(integer(env, v, name, lo, hi));
    z.count = 1;
    return z;
  }
  if (!is_typed_array(env, v)) zero_point_type_error(env, v, name);
  const View t = typed_array(env, v, name);
  expect_count(env, t, count, c, name);
  z.count = t.length;
  if (t.type == napi_int32_array) {
    z.view = static_cast<const int32_t*>(t.data);
    z.bytes = t.length * sizeof(int32_t);
  } else if (t.type == napi_int8_array) {
    const int8_t* p = static_cast<const int8_t*>(t.data);
    z.copy.assign(p, p + t.length);
  } else if (t.type == napi_uint8_array) {
    const uint8_t* p = static_cast<const uint8_t*>(t.data);
    z.copy.assign(p, p + t.length);
  } else {
    zero_point_type_error(env, v, name);
  }
  const int32_t* d = z.data();
  for (size_t k = 0; k < z.count; ++k)
    if (d[k] < lo || d[k] > hi)
      range_error(env, "Expected an integer between " + std::to_string(lo) + " and " + std::to_string(hi) + " for " +
                           at(name, k) + " but received " + std::to_string(d[k]));
  return z;
}

void QParamsArg::expect_clear_of(Napi::Env env, const void* out, size_t out_bytes, const char* out_name) const {
  expect_no_partial_overlap(env, scale.view, scale.bytes, out, out_bytes, "scale", out_name, false);
  expect_no_partial_overlap(env, zp.view, zp.bytes, out, out_bytes, "zeroPoint", out_name, false);
}

QParamsArg qparams_at(const Napi::CallbackInfo& info, size_t i, size_t groups, int32_t zlo, int32_t zhi) {
  QParamsArg q;
  q.scale = scales(info.Env(), info[i], "scale", groups, Count::Exact);
  q.zp = zero_points(info.Env(), info[i + 1], "zeroPoint", groups, zlo, zhi, Count::Exact);
  return q;
}

}  // namespace napi
}  // namespace qk
