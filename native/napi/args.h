// Argument checks for the N-API surface. Messages follow one pattern:
//   "Expected <what> for <name> but received <what was given>"
// TypeError for a wrong type, RangeError for a wrong value or size.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace qk {
namespace napi {

std::string describe(const Napi::Value& v);

[[noreturn]] inline void type_error(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}
[[noreturn]] inline void range_error(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

struct View {
  napi_typedarray_type type;
  size_t length = 0;  // elements
  void* data = nullptr;
  const char* type_name() const;
};

const char* typed_array_name(napi_typedarray_type t);

// A TypedArray argument viewed in place (byteOffset honoured). Throws for other values and for
// arrays whose buffer was detached.
View typed_array(Napi::Env env, const Napi::Value& v, const char* name);
View typed_array_of2(Napi::Env env, const Napi::Value& v, const char* name, napi_typedarray_type want1,
                     napi_typedarray_type want2);
View typed_array(const Napi::CallbackInfo& info, size_t i, const char* name);
// Same, and the type must be `want` (one or two accepted types).
View typed_array_of(const Napi::CallbackInfo& info, size_t i, const char* name,
                    napi_typedarray_type want);
View typed_array_of2(const Napi::CallbackInfo& info, size_t i, const char* name,
                     napi_typedarray_type want1, napi_typedarray_type want2);

double number(const Napi::CallbackInfo& info, size_t i, const char* name);
double number(Napi::Env env, const Napi::Value& v, const char* name);
// An integer in [lo, hi].
int64_t integer(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi);
int64_t integer(Napi::Env env, const Napi::Value& v, const char* name, int64_t lo, int64_t hi);
bool boolean(Napi::Env env, const Napi::Value& v, const char* name);
bool boolean(const Napi::CallbackInfo& info, size_t i, const char* name);
// obj[key], own properties only. It may run a getter: read all fields before taking Views.
Napi::Value field(const Napi::Object& obj, const char* key);
bool is_nullish(const Napi::Value& v);

void expect_length(Napi::Env env, const View& v, size_t want, const char* name);
// Throws unless a and b are the same region or do not overlap.
void expect_no_partial_overlap(Napi::Env env, const void* a, size_t abytes, const void* b,
                               size_t bbytes, const char* an, const char* bn, bool allow_same);

}  // namespace napi
}  // namespace qk
