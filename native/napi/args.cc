#include "args.h"

#include <cstdio>

namespace qk {
namespace napi {

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
    return std::string(typed_array_name(ta.TypedArrayType())) + " of length " +
           std::to_string(ta.ElementLength());
  }
  if (v.IsBoolean()) return std::string("boolean ") + (v.As<Napi::Boolean>().Value() ? "true" : "false");
  if (v.IsNumber()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "number %.9g", v.As<Napi::Number>().DoubleValue());
    return buf;
  }
  if (v.IsString()) return "string";
  if (v.IsArrayBuffer()) return "ArrayBuffer";
  if (v.IsArray()) return "Array";
  if (v.IsFunction()) return "function";
  if (v.IsObject()) return "object";
  return "a value of another type";
}

View typed_array(Napi::Env env, const Napi::Value& value, const char* name) {
  napi_value v = value;
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) type_error(env, std::string("Expected a TypedArray for ") + name + " but received " + describe(value));
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

View typed_array_of(const Napi::CallbackInfo& info, size_t i, const char* name,
                    napi_typedarray_type want) {
  return typed_array_of2(info.Env(), info[i], name, want, want);
}

View typed_array_of2(const Napi::CallbackInfo& info, size_t i, const char* name,
                     napi_typedarray_type want1, napi_typedarray_type want2) {
  return typed_array_of2(info.Env(), info[i], name, want1, want2);
}

View typed_array_of2(Napi::Env env, const Napi::Value& value, const char* name, napi_typedarray_type want1,
                     napi_typedarray_type want2) {
  bool is_ta = false;
  napi_is_typedarray(env, value, &is_ta);
  std::string want = typed_array_name(want1);
  if (want2 != want1) want += std::string(" or ") + typed_array_name(want2);
  if (!is_ta) type_error(env, "Expected " + want + " for " + name + " but received " + describe(value));
  View v = typed_array(env, value, name);
  if (v.type != want1 && v.type != want2)
    type_error(env, "Expected " + want + " for " + name + " but received " + describe(value));
  return v;
}

bool is_nullish(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

double number(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) type_error(env, std::string("Expected a number for ") + name + " but received " + describe(v));
  return v.As<Napi::Number>().DoubleValue();
}

double number(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return number(info.Env(), info[i], name);
}

int64_t integer(Napi::Env env, const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  const double d = number(env, v, name);
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || std::floor(d) != d)
    range_error(env, std::string("Expected an integer between ") + std::to_string(lo) + " and " +
                         std::to_string(hi) + " for " + name + " but received " + describe(v));
  return static_cast<int64_t>(d);
}

int64_t integer(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  return integer(info.Env(), info[i], name, lo, hi);
}

bool boolean(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsBoolean()) type_error(env, std::string("Expected a boolean for ") + name + " but received " + describe(v));
  return v.As<Napi::Boolean>().Value();
}

bool boolean(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return boolean(info.Env(), info[i], name);
}

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
    range_error(env, std::string("Expected length ") + std::to_string(want) + " for " + name +
                         " but received " + v.type_name() + " of length " + std::to_string(v.length));
}

void expect_no_partial_overlap(Napi::Env env, const void* a, size_t abytes, const void* b,
                               size_t bbytes, const char* an, const char* bn, bool allow_same) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  if (abytes == 0 || bbytes == 0) return;
  if (allow_same && pa == pb && abytes == bbytes) return;
  if (pa < pb + bbytes && pb < pa + abytes)
    range_error(env, std::string("Expected ") + an + " and " + bn +
                         " not to overlap in memory but received views of the same bytes" +
                         (allow_same ? " (only the very same array is allowed)" : ""));
}

}  // namespace napi
}  // namespace qk
