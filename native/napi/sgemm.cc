// N-API surface of the fp32 GEMM (lib/matmul-f32.ts). Every argument is checked again here:
// a bad call throws, never crashes.
//   sgemmPack(b, K, N, transposed) -> [handle, byteLength]
//   sgemm(a, b | handle, out, M, K, N, transB, bias | null, relu) -> undefined
//   sgemmAsync(same, out may be null) -> Promise<out>, computed on a libuv worker thread on
//   private copies of the inputs (async.h); the packed handle is kept alive until it settles.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "async.h"
#include "registry.h"
#include "core/sgemm.h"

namespace qk {
namespace napi {
namespace {

constexpr napi_type_tag kPackedF32Tag = {0x716b7367656d6d66ULL, 0x33327061636b6564ULL};

// Packed B (panel format of native/core/kernel_types_sgemm.h), 64-byte aligned, immutable.
struct PackedF32 {
  size_t K = 0, N = 0;
  OwnedBytes mem;
  float* data = nullptr;
  size_t floats = 0;
  int64_t bytes() const { return static_cast<int64_t>(floats * sizeof(float)); }
};

struct Holder {
  std::shared_ptr<const PackedF32> p;
};

bool is_packed(Napi::Env env, const Napi::Value& v) {
  bool ok = false;
  if (v.IsExternal()) napi_check_object_type_tag(env, v, &kPackedF32Tag, &ok);
  return ok;
}

// sgemmPack(b, K, N, transposed) -> [handle, byteLength]
Napi::Value SgemmPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View b = typed_array_of(info, 0, "b", napi_float32_array);
  const size_t K = static_cast<size_t>(integer(info, 1, "K", 0, kMaxMatrixDim));
  const size_t N = static_cast<size_t>(integer(info, 2, "N", 0, kMaxMatrixDim));
  const bool transposed = boolean(info, 3, "transposed");
  expect_length(env, b, checked_mul(env, K, N), "b");
  auto p = std::make_shared<PackedF32>();
  p->K = K;
  p->N = N;
  p->floats = sgemm_packed_floats(K, N);
  p->mem = owned_bytes(env, checked_mul(env, p->floats, sizeof(float)));
  p->data = reinterpret_cast<float*>(p->mem.get());
  sgemm_pack_b(static_cast<const float*>(b.data), K, N, transposed, p->data);
  auto* h = new Holder{p};
  const int64_t nbytes = p->bytes();
  Napi::External<Holder> ext = Napi::External<Holder>::New(env, h, [](Napi::Env e, Holder* hh) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -hh->p->bytes());
    delete hh;
  });
  napi_type_tag_object(env, ext, &kPackedF32Tag);
  Napi::MemoryManagement::AdjustExternalMemory(env, nbytes);
  Napi::Array res = Napi::Array::New(env, 2);
  res.Set(0u, ext);
  res.Set(1u, Napi::Number::New(env, static_cast<double>(nbytes)));
  return res;
}

// One checked call. Async jobs own private copies of the inputs (async.h), so they are safe to run
// on another thread whatever the caller does with its arrays meanwhile.
struct Job {
  SgemmArgs args;
  std::shared_ptr<const PackedF32> keep;  // the packed B, alive until the job is done
  std::shared_ptr<Snapshot> inputs;
  void run() const { sgemm(args); }
};

Job prepare(const Napi::CallbackInfo& info, bool async, OutSlot* out) {
  Napi::Env env = info.Env();
  Job j;
  j.inputs = std::make_shared<Snapshot>(async);
  Snapshot& in = *j.inputs;
  SgemmArgs& g = j.args;
  View a = typed_array_of(info, 0, "a", napi_float32_array);
  g.M = static_cast<size_t>(integer(info, 3, "M", 0, kMaxMatrixDim));
  g.K = static_cast<size_t>(integer(info, 4, "K", 0, kMaxMatrixDim));
  g.N = static_cast<size_t>(integer(info, 5, "N", 0, kMaxMatrixDim));
  g.trans_b = boolean(info, 6, "transB");
  g.relu = boolean(info, 8, "relu");
  expect_length(env, a, checked_mul(env, g.M, g.K), "a");
  *out = OutSlot::at(info, 2, "out", napi_float32_array, sizeof(float), checked_mul(env, g.M, g.N), async);
  View b{};
  if (is_packed(env, info[1])) {
    j.keep = info[1].As<Napi::External<Holder>>().Data()->p;
    if (j.keep->K != g.K || j.keep->N != g.N)
      range_error(env, "Expected K = " + std::to_string(j.keep->K) + " and N = " + std::to_string(j.keep->N) +
                           " (the packed B) but received K = " + std::to_string(g.K) +
                           " and N = " + std::to_string(g.N));
    g.packed = j.keep->data;
  } else {
    bool is_ta = false;
    napi_is_typedarray(env, info[1], &is_ta);
    if (!is_ta) type_error(env, "Expected Float32Array or PackedWeightsF32 for b but received " + describe(info[1]));
    b = typed_array_of(info, 1, "b", napi_float32_array);
    expect_length(env, b, checked_mul(env, g.K, g.N), "b");
  }
  View bias{};
  if (!is_nullish(info[7])) {
    bias = typed_array_of(info, 7, "bias", napi_float32_array);
    expect_length(env, bias, g.N, "bias");
  }
  const void* o = out->user_data();
  const size_t ob = out->bytes();
  expect_no_partial_overlap(env, a.data, a.length * 4, o, ob, "a", "out", false);
  if (b.data) expect_no_partial_overlap(env, b.data, b.length * 4, o, ob, "b", "out", false);
  if (bias.data) expect_no_partial_overlap(env, bias.data, bias.length * 4, o, ob, "bias", "out", false);
  g.a = in.take<float>(env, a);
  if (!g.packed) g.b = in.take<float>(env, b);
  if (bias.data) g.bias = in.take<float>(env, bias);
  g.c = static_cast<float*>(out->data());
  return j;
}

Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  OutSlot out;
  const Job j = prepare(info, false, &out);
  j.run();
  return info.Env().Undefined();
}

// sgemmAsync(a, b | handle, out | null, ...) -> Promise<out>
Napi::Value SgemmAsync(const Napi::CallbackInfo& info) {
  OutSlot out;
  Job j = prepare(info, true, &out);
  return queue_promise(info.Env(), "quantkit:matmulF32", std::move(j), std::move(out));
}

static Module m(+[](Napi::Env env, Napi::Object exports) {
  exports.Set("sgemmPack", Napi::Function::New(env, SgemmPack, "sgemmPack"));
  exports.Set("sgemm", Napi::Function::New(env, Sgemm, "sgemm"));
  exports.Set("sgemmAsync", Napi::Function::New(env, SgemmAsync, "sgemmAsync"));
});

}  // namespace
}  // namespace napi
}  // namespace qk
