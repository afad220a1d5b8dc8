// N-API surface of the int8 GEMM engine (lib/gemm.ts wraps it). Every argument is checked here
// again: a bad call throws, never crashes. Packed weights are externals (type-tagged) holding a
// shared_ptr, so async work keeps them alive; their size is reported to the GC.
#include <napi.h>

#include <cmath>
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

bool is_packed(Napi::Env env, const Napi::Value& v) {
  bool ok = false;
  if (v.IsExternal()) napi_check_object_type_tag(env, v, &kPackedTag, &ok);
  return ok;
}

std::shared_ptr<const PackedB> pack_from(Napi::Env env, const Napi::Value& bv, bool is_signed, size_t K, size_t N,
                                         bool transposed, const Napi::Value& zpv, const Napi::Value& scv,
                                         const char* bname) {
  const QRange codes = storage_range(is_signed, Storage::Byte);
  const ZeroPoints zp = zero_points(env, zpv, "zeroPoint", N, codes.qmin, codes.qmax, Count::OneOrExact);
  const Scales sc = scales(env, scv, "scale", N, Count::OneOrExact);
  View b = typed_array_of2(env, bv, bname, is_signed ? napi_int8_array : napi_uint8_array,
                           is_signed ? napi_int8_array : napi_uint8_array);
  expect_length(env, b, checked_mul(env, K, N), bname);
  return pack_b(static_cast<const uint8_t*>(b.data), K, N, is_signed, transposed, zp.data(), zp.count > 1, sc.data(),
                sc.count > 1);
}

// info[i]: PackedWeights (the External gemmPack returns), or a one-shot B that this call packs
// and frees when it is done: { b, K, N, zeroPoint, scale } (b K x N, Int8Array or Uint8Array).
// One-shot B keeps synchronous loops (matmulInteger, qlinearMatMul) from piling up packed copies
// that only the garbage collector could free.
std::shared_ptr<const PackedB> packed_at(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  if (is_packed(env, info[i])) return info[i].As<Napi::External<Holder>>().Data()->p;
  if (!info[i].IsObject() || info[i].IsTypedArray() || info[i].IsArray() || info[i].IsFunction())
    type_error(env,
               "Expected PackedWeights (from packWeights) or { b, K, N, zeroPoint, scale } for packed but received " +
                   describe(info[i]));
  const Napi::Object o = info[i].As<Napi::Object>();
  // Every field is read before any View is taken (a getter could detach an array already viewed).
  const Napi::Value bv = field(o, "b"), kv = field(o, "K"), nv = field(o, "N"), zv = field(o, "zeroPoint"),
                    sv = field(o, "scale");
  const size_t K = static_cast<size_t>(integer(env, kv, "packed.K", 1, kMaxMatrixDim));
  const size_t N = static_cast<size_t>(integer(env, nv, "packed.N", 1, kMaxMatrixDim));
  const bool is_signed =
      typed_array_of2(env, bv, "packed.b", napi_int8_array, napi_uint8_array).type == napi_int8_array;
  return pack_from(env, bv, is_signed, K, N, false, is_nullish(zv) ? Napi::Number::New(env, 0) : zv,
                   is_nullish(sv) ? Napi::Number::New(env, 1) : sv, "packed.b");
}

// gemmPack(b, isSigned, K, N, transposed, zeroPoint, scale) -> [external, byteLength]
Napi::Value GemmPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool is_signed = boolean(info, 1, "isSigned");
  const size_t K = static_cast<size_t>(integer(info, 2, "K", 1, kMaxMatrixDim));
  const size_t N = static_cast<size_t>(integer(info, 3, "N", 1, kMaxMatrixDim));
  const bool transposed = boolean(info, 4, "transposed");
  std::shared_ptr<const PackedB> p = pack_from(env, info[0], is_signed, K, N, transposed, info[5], info[6], "b");
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

// One prepared call: the arguments copied out of JS. Async jobs own private copies of the
// inputs (async.h), so they are safe to run on another thread whatever the caller does meanwhile.
struct Job {
  std::shared_ptr<const PackedB> packed;
  GemmCall call;
  std::vector<int32_t> a_zp;
  std::vector<float> a_scale;
  std::shared_ptr<Snapshot> inputs;
  bool dynamic = false;  // linearDynamic
  const float* x = nullptr;
  bool per_row = true, act_signed = false;
  void run() {
    if (dynamic)
      linear_dynamic(x, call.M, *packed, call.bias, call.relu, per_row, act_signed, static_cast<float*>(call.out));
    else
      gemm_run(*packed, call);
  }
};

// gemm(a, aSigned, M, packed, aZeroPoint, outKind, out, aScale|null, bias|null, relu, outScale, outZeroPoint);
// outKind: an OutputKind of enums.def.
// bias: Float32Array (float32 output) or Int32Array (int8/uint8 outputs) of N, or null.
// gemmAsync: the same, out may be null (a new array of the output kind).
Job prepare_gemm(const Napi::CallbackInfo& info, bool async, OutSlot* out) {
  Napi::Env env = info.Env();
  Job j;
  j.inputs = std::make_shared<Snapshot>(async);
  const bool a_signed = boolean(info, 1, "aSigned");
  const size_t M = static_cast<size_t>(integer(info, 2, "M", 0, kMaxMatrixDim));
  j.packed = packed_at(info, 3);  // may run getters of a one-shot B: before any other View
  const PackedB& B = *j.packed;
  View a = typed_array_of(info, 0, "a", a_signed ? napi_int8_array : napi_uint8_array);
  expect_length(env, a, checked_mul(env, M, B.K), "a");
  const QRange a_codes = storage_range(a_signed, Storage::Byte);
  const ZeroPoints a_zp = zero_points(env, info[4], "aZeroPoint", M, a_codes.qmin, a_codes.qmax, Count::OneOrExact);
  j.a_zp.assign(a_zp.data(), a_zp.data() + a_zp.count);
  const int32_t kind = output_kind_at(info, 5, "outKind");
  *out = OutSlot::at(info, 6, "out", output_kind_type(kind), output_kind_bytes(kind), checked_mul(env, M, B.N), async);
  expect_no_partial_overlap(env, a.data, a.length, out->user_data(), out->bytes(), "a", "out", false);
  const std::string err = gemm_bound_error(B.K, gemm_max_dev(a_signed, j.a_zp.data(), j.a_zp.size()), B.max_dev);
  if (!err.empty()) range_error(env, err);
  GemmCall& c = j.call;
  c.a_signed = a_signed;
  c.M = M;
  c.a_zp = j.a_zp.data();
  c.a_zp_per_row = j.a_zp.size() > 1;
  c.out_kind = kind;
  if (kind != kGemmOutInt32) {
    if (is_nullish(info[7])) {
      j.a_scale = {1.0f};
    } else {
      const Scales as = scales(env, info[7], "aScale", M, Count::OneOrExact);
      j.a_scale.assign(as.data(), as.data() + as.count);
    }
    c.a_scale = j.a_scale.data();
    c.a_scale_per_row = j.a_scale.size() > 1;
    c.relu = boolean(info, 9, "relu");
  }
  // bias: Float32Array (float32 output) or Int32Array (int8/uint8: ONNX QLinearConv / QGemm bias).
  View bias{};
  if (!is_nullish(info[8])) {
    if (kind == kGemmOutInt32)
      type_error(env, "Expected null (output int32) for bias but received " + describe(info[8]));
    bias = typed_array_of(info, 8, "bias", kind == kGemmOutFloat32 ? napi_float32_array : napi_int32_array);
    expect_length(env, bias, B.N, "bias");
  }
  if (kind == kGemmOutInt8 || kind == kGemmOutUint8) {
    if (!info[10].IsNumber()) type_error(env, "Expected a number for outScale but received " + describe(info[10]));
    const float ysf = scales(env, info[10], "outScale", 1, Count::Exact).one;
    const QRange y_codes = storage_range(kind == kGemmOutInt8, Storage::Byte);
    c.y_scale = ysf;
    c.y_zp = static_cast<int32_t>(integer(info, 11, "outZeroPoint", y_codes.qmin, y_codes.qmax));
    // The multiplier must be finite (an infinite one times acc 0 has no value).
    for (float as : j.a_scale)
      for (float bs : B.scale) {
        const float m = (as * bs) / ysf;
        if (!std::isfinite(m))
          range_error(env, "Expected aScale * bScale / outScale to be finite but received " + fmt_number(as) + " * " +
                               fmt_number(bs) + " / " + fmt_number(ysf));
      }
  }
  Snapshot& in = *j.inputs;
  c.a = in.take<uint8_t>(env, a);
  if (bias.data) {
    if (kind == kGemmOutFloat32)
      c.bias = in.take<float>(env, bias);
    else
      c.bias_q = in.take<int32_t>(env, bias);
  }
  c.out = out->data();
  return j;
}

// linearDynamic(x, M, packed, bias|null, relu, perRow, actSigned, out); async: out may be null.
Job prepare_dynamic(const Napi::CallbackInfo& info, bool async, OutSlot* out) {
  Napi::Env env = info.Env();
  Job j;
  j.inputs = std::make_shared<Snapshot>(async);
  j.dynamic = true;
  const size_t M = static_cast<size_t>(integer(info, 1, "M", 0, kMaxMatrixDim));
  if (!is_packed(env, info[2]))
    type_error(env, "Expected PackedWeights (from packWeights) for packed but received " + describe(info[2]));
  j.packed = packed_at(info, 2);
  const PackedB& B = *j.packed;
  View x = typed_array_of(info, 0, "x", napi_float32_array);
  expect_length(env, x, checked_mul(env, M, B.K), "x");
  j.call.M = M;
  View bias{};
  if (!is_nullish(info[3])) {
    bias = typed_array_of(info, 3, "bias", napi_float32_array);
    expect_length(env, bias, B.N, "bias");
  }
  j.call.relu = boolean(info, 4, "relu");
  j.per_row = boolean(info, 5, "perRow");
  j.act_signed = boolean(info, 6, "actSigned");
  *out = OutSlot::at(info, 7, "out", napi_float32_array, sizeof(float), checked_mul(env, M, B.N), async);
  expect_no_partial_overlap(env, x.data, x.length * 4, out->user_data(), out->bytes(), "x", "out", false);
  const std::string err = gemm_bound_error(B.K, j.act_signed ? 127 : 255, B.max_dev);
  if (!err.empty()) range_error(env, err);
  Snapshot& in = *j.inputs;
  j.x = in.take<float>(env, x);
  if (bias.data) j.call.bias = in.take<float>(env, bias);
  j.call.out = out->data();
  return j;
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  OutSlot out;
  Job j = prepare_gemm(info, false, &out);
  j.run();
  return info.Env().Undefined();
}

Napi::Value GemmAsync(const Napi::CallbackInfo& info) {
  OutSlot out;
  Job j = prepare_gemm(info, true, &out);
  return queue_promise(info.Env(), "quantkit:gemm", std::move(j), std::move(out));
}

Napi::Value LinearDynamic(const Napi::CallbackInfo& info) {
  OutSlot out;
  Job j = prepare_dynamic(info, false, &out);
  j.run();
  return info.Env().Undefined();
}

Napi::Value LinearDynamicAsync(const Napi::CallbackInfo& info) {
  OutSlot out;
  Job j = prepare_dynamic(info, true, &out);
  return queue_promise(info.Env(), "quantkit:linearDynamic", std::move(j), std::move(out));
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
