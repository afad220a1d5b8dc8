// Argument checks for the N-API surface: every rule of the native boundary is written here once
// (typed arrays, numbers, layouts, code ranges, scales, zero points, output kinds, the enums of
// enums.def) and used by every native/napi/*.cc. Messages follow one pattern:
//   "Expected <what> for <name> but received <what was given>"
// TypeError for a wrong type, RangeError for a wrong value or size. The TypeScript twin of these
// rules is lib/args.ts; memory safety never depends on it.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/quant.h"

namespace qk {
namespace napi {

std::string describe(const Napi::Value& v);
// A number as JavaScript would name it: NaN, Infinity, -Infinity, else %.9g.
std::string fmt_number(double d);

[[noreturn]] inline void type_error(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] inline void range_error(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

// ---- the enums (enums.def) --------------------------------------------------------------------

namespace wire {
#define QK_ENUM(type, member, value) constexpr int32_t type##_##member = value;
#include "enums.def"
#undef QK_ENUM
}  // namespace wire

struct EnumEntry {
  const char* type;
  const char* member;
  int32_t value;
};
inline constexpr EnumEntry kEnums[] = {
#define QK_ENUM(type, member, value) {#type, #member, value},
#include "enums.def"
#undef QK_ENUM
};

constexpr bool same_name(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}
// The largest value of an enum type (values run 0..max).
constexpr int32_t enum_max(const char* type) {
  int32_t m = -1;
  for (const EnumEntry& e : kEnums)
    if (same_name(e.type, type) && e.value > m) m = e.value;
  return m;
}
constexpr int32_t kOutputKindMax = enum_max("OutputKind");
constexpr int32_t kStorageMax = enum_max("Storage");
constexpr int32_t kFormulaMax = enum_max("Formula");
constexpr int32_t kGranularityMax = enum_max("GranularityCode");
// The table as a JavaScript object { type: { member: value } } (the addon's `enums`).
Napi::Object enum_table(Napi::Env env);

// ---- typed arrays and scalars -----------------------------------------------------------------

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
View typed_array_of(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type want);
View typed_array_of2(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type want1,
                     napi_typedarray_type want2);
bool is_typed_array(Napi::Env env, const Napi::Value& v);

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
void expect_no_partial_overlap(Napi::Env env, const void* a, size_t abytes, const void* b, size_t bbytes,
                               const char* an, const char* bn, bool allow_same);
// a * b, or a RangeError when the product of sizes overflows.
size_t checked_mul(Napi::Env env, size_t a, size_t b);

// ---- layouts, code ranges, storage, output kinds ----------------------------------------------

// Largest dimension of a tensor layout, and of a matrix (GEMM).
constexpr int64_t kMaxLayoutDim = int64_t{1} << 52;
constexpr int64_t kMaxMatrixDim = int64_t{1} << 40;

// A layout at info[i..]: (outer, axisDim, inner, granularity, blockSize), or without blockSize
// (PerTensor / PerAxis only) for ops that have no blocks.
enum class LayoutArgs { WithBlock, NoBlock };
Layout layout_at(const Napi::CallbackInfo& info, size_t i, LayoutArgs form = LayoutArgs::WithBlock);

// (qmin, qmax, formula) at info[i..]: a signed (-128..127) or unsigned (0..255) code range.
QRange range_at(const Napi::CallbackInfo& info, size_t i);
Storage storage_at(const Napi::CallbackInfo& info, size_t i);
// The codes a storage holds: int8 / uint8, or int4 / uint4 for nibbles (flags 0).
QRange storage_range(bool is_signed, Storage st);
size_t storage_bytes(const Layout& L, Storage st);

// An OutputKind at info[i], and the typed array it is written to.
int32_t output_kind_at(const Napi::CallbackInfo& info, size_t i, const char* name);
napi_typedarray_type output_kind_type(int32_t kind);
size_t output_kind_bytes(int32_t kind);

// ---- qparams ----------------------------------------------------------------------------------

// How many values a scale or zero-point argument has: exactly `count`, or 1 (broadcast) or `count`.
enum class Count { Exact, OneOrExact };

// Scales: a number or a Float32Array (count values); every value positive and finite as float32.
// Float32Arrays are viewed in place (`bytes` of the caller's memory); a number is held here.
struct Scales {
  const float* view = nullptr;
  size_t count = 0;
  size_t bytes = 0;  // caller memory viewed (0 for a number)
  float one = 0;
  const float* data() const { return bytes ? view : &one; }
};
Scales scales(Napi::Env env, const Napi::Value& v, const char* name, size_t count, Count c);

// Zero points: a number or an Int32Array / Int8Array / Uint8Array, every value in [lo, hi].
// Int32Arrays are viewed in place; int8 / uint8 arrays are widened into `copy`.
struct ZeroPoints {
  const int32_t* view = nullptr;
  size_t count = 0;
  size_t bytes = 0;  // caller memory viewed (0 for a number or a widened copy)
  int32_t one = 0;
  std::vector<int32_t> copy;
  const int32_t* data() const { return bytes ? view : (copy.empty() ? &one : copy.data()); }
};
ZeroPoints zero_points(Napi::Env env, const Napi::Value& v, const char* name, size_t count, int32_t lo, int32_t hi,
                       Count c);

// The scale and zero point of a quantize-family call, one per group of its layout.
struct QParamsArg {
  Scales scale;
  ZeroPoints zp;
  QParamsView view() const { return QParamsView{scale.data(), zp.data()}; }
  // An output must not share bytes with the scales or zero points it is computed from.
  void expect_clear_of(Napi::Env env, const void* out, size_t out_bytes, const char* out_name) const;
};
// (scale, zeroPoint) at info[i], info[i + 1].
QParamsArg qparams_at(const Napi::CallbackInfo& info, size_t i, size_t groups, int32_t zlo, int32_t zhi);

}  // namespace napi
}  // namespace qk
