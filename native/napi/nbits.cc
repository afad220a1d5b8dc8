// N-API surface of the block-quantized GEMM (lib/nbits.ts). Every argument is checked again here.
//   nbitsPack(codes u8 [N*K], scales f32 [N*kb], zeroPoints u8 [N*kb] | null, K, N, bits, blockSize)
//     -> [handle, byteLength]   (zeroPoints null: symmetric, 2^(bits-1) everywhere)
//   nbitsUnpack(handle, codes, scales, zeroPoints) -> undefined (fills the three arrays)
//   nbitsMatmul(x, handle, out, M, bias | null, relu, int8) -> undefined
//   nbitsMatmulAsync(same, out may be null) -> Promise<out>
//   streamSum(bytes) -> number: a multi-threaded read of a buffer (benchmarks' bandwidth probe)
#include <napi.h>

#include <memory>
#include <string>

#include "args.h"
#include "async.h"
#include "registry.h"
#include "core/nbits.h"
#include "core/threadpool.h"

namespace qk {
namespace napi {
namespace {

constexpr napi_type_tag kPackedNBitsTag = {0x716b6e6269747370ULL, 0x61636b6564303031ULL};

struct PackedNBits {
  NBitsShape shape;
  OwnedBytes mem;
  int64_t bytes() const { return static_cast<int64_t>(shape.packed_bytes()); }
};

struct Holder {
  std::shared_ptr<const PackedNBits> p;
};

std::shared_ptr<const PackedNBits> packed_at(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Env env = info.Env();
  bool ok = false;
  if (info[i].IsExternal()) napi_check_object_type_tag(env, info[i], &kPackedNBitsTag, &ok);
  if (!ok)
    type_error(env, std::string("Expected PackedWeightsNBits for ") + name + " but received " + describe(info[i]));
  return info[i].As<Napi::External<Holder>>().Data()->p;
}

Napi::Value NbitsPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View codes = typed_array_of(info, 0, "codes", napi_uint8_array);
  View scales = typed_array_of(info, 1, "scales", napi_float32_array);
  NBitsShape s;
  s.K = static_cast<size_t>(integer(info, 3, "K", 1, kMaxMatrixDim));
  s.N = static_cast<size_t>(integer(info, 4, "N", 1, kMaxMatrixDim));
  s.bits = static_cast<size_t>(integer(info, 5, "bits", 4, 8));
  if (s.bits != 4 && s.bits != 8) range_error(env, "Expected 4 or 8 for bits but received " + std::to_string(s.bits));
  s.bs = static_cast<size_t>(integer(info, 6, "blockSize", 16, 256));
  if (s.bs & (s.bs - 1))
    range_error(env, "Expected a power of two in 16..256 for blockSize but received " + std::to_string(s.bs));
  s.asym = !is_nullish(info[2]);
  const size_t blocks = checked_mul(env, s.N, s.kb());
  expect_length(env, codes, checked_mul(env, s.N, s.K), "codes");
  expect_length(env, scales, blocks, "scales");
  View zps{};
  if (s.asym) {
    zps = typed_array_of(info, 2, "zeroPoints", napi_uint8_array);
    expect_length(env, zps, blocks, "zeroPoints");
  }
  const uint32_t qmax = (1u << s.bits) - 1;
  const uint8_t* c = static_cast<const uint8_t*>(codes.data);
  for (size_t i = 0; i < codes.length; ++i)
    if (c[i] > qmax)
      range_error(env, "Expected codes between 0 and " + std::to_string(qmax) + " for codes but received " +
                           std::to_string(c[i]) + " at " + std::to_string(i));
  if (s.asym) {
    const uint8_t* z = static_cast<const uint8_t*>(zps.data);
    for (size_t i = 0; i < zps.length; ++i)
      if (z[i] > qmax)
        range_error(env, "Expected codes between 0 and " + std::to_string(qmax) + " for zeroPoints but received " +
                             std::to_string(z[i]) + " at " + std::to_string(i));
  }
  auto p = std::make_shared<PackedNBits>();
  p->shape = s;
  checked_mul(env, checked_mul(env, s.panels(), s.kb()), s.stride());
  p->mem = owned_bytes(env, s.packed_bytes());
  nbits_pack(s, c, static_cast<const float*>(scales.data), s.asym ? static_cast<const uint8_t*>(zps.data) : nullptr,
             p->mem.get());
  auto* h = new Holder{p};
  const int64_t nbytes = p->bytes();
  Napi::External<Holder> ext = Napi::External<Holder>::New(env, h, [](Napi::Env e, Holder* hh) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -hh->p->bytes());
    delete hh;
  });
  napi_type_tag_object(env, ext, &kPackedNBitsTag);
  Napi::MemoryManagement::AdjustExternalMemory(env, nbytes);
  Napi::Array res = Napi::Array::New(env, 2);
  res.Set(0u, ext);
  res.Set(1u, Napi::Number::New(env, static_cast<double>(nbytes)));
  return res;
}

Napi::Value NbitsUnpack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto p = packed_at(info, 0, "packed");
  const NBitsShape& s = p->shape;
  View codes = typed_array_of(info, 1, "codes", napi_uint8_array);
  View scales = typed_array_of(info, 2, "scales", napi_float32_array);
  View zps = typed_array_of(info, 3, "zeroPoints", napi_uint8_array);
  expect_length(env, codes, s.N * s.K, "codes");
  expect_length(env, scales, s.N * s.kb(), "scales");
  expect_length(env, zps, s.N * s.kb(), "zeroPoints");
  nbits_unpack(s, p->mem.get(), static_cast<uint8_t*>(codes.data), static_cast<float*>(scales.data),
               static_cast<uint8_t*>(zps.data));
  return env.Undefined();
}

struct Job {
  NBitsRun args;
  std::shared_ptr<const PackedNBits> keep;
  std::shared_ptr<Snapshot> inputs;
  void run() const { nbits_run(args); }
};

Job prepare(const Napi::CallbackInfo& info, bool async, OutSlot* out) {
  Napi::Env env = info.Env();
  Job j;
  j.inputs = std::make_shared<Snapshot>(async);
  Snapshot& in = *j.inputs;
  NBitsRun& r = j.args;
  View x = typed_array_of(info, 0, "x", napi_float32_array);
  j.keep = packed_at(info, 1, "packed");
  r.shape = j.keep->shape;
  r.w = j.keep->mem.get();
  r.M = static_cast<size_t>(integer(info, 3, "M", 0, kMaxMatrixDim));
  r.relu = boolean(info, 5, "relu");
  r.int8 = boolean(info, 6, "int8");
  expect_length(env, x, checked_mul(env, r.M, r.shape.K), "x");
  *out = OutSlot::at(info, 2, "out", napi_float32_array, sizeof(float), checked_mul(env, r.M, r.shape.N), async);
  View bias{};
  if (!is_nullish(info[4])) {
    bias = typed_array_of(info, 4, "bias", napi_float32_array);
    expect_length(env, bias, r.shape.N, "bias");
  }
  const void* o = out->user_data();
  const size_t ob = out->bytes();
  expect_no_partial_overlap(env, x.data, x.length * 4, o, ob, "x", "out", false);
  if (bias.data) expect_no_partial_overlap(env, bias.data, bias.length * 4, o, ob, "bias", "out", false);
  r.x = in.take<float>(env, x);
  if (bias.data) r.bias = in.take<float>(env, bias);
  r.y = static_cast<float*>(out->data());
  return j;
}

Napi::Value NbitsMatmul(const Napi::CallbackInfo& info) {
  OutSlot out;
  const Job j = prepare(info, false, &out);
  j.run();
  return info.Env().Undefined();
}

Napi::Value NbitsMatmulAsync(const Napi::CallbackInfo& info) {
  OutSlot out;
  Job j = prepare(info, true, &out);
  return queue_promise(info.Env(), "quantkit:matmulNBits", std::move(j), std::move(out));
}

// Reads every byte of a buffer once on the thread pool (8 independent 64-bit sums per thread).
Napi::Value StreamSum(const Napi::CallbackInfo& info) {
  View b = typed_array_of(info, 0, "bytes", napi_uint8_array);
  const uint64_t* w = static_cast<const uint64_t*>(b.data);
  const size_t words = b.length / 8;
  const size_t chunk = size_t{1} << 17;  // 1 MiB
  std::vector<uint64_t> sums((words + chunk - 1) / chunk + 1, 0);
  parallel_ranges(words, chunk, b.length, [&](size_t w0, size_t w1) {
    uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = w0;
    for (; i + 8 <= w1; i += 8)
      for (int u = 0; u < 8; ++u) a[u] += w[i + u];
    for (; i < w1; ++i) a[0] += w[i];
    sums[w0 / chunk] = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
  });
  uint64_t t = 0;
  for (uint64_t v : sums) t += v;
  return Napi::Number::New(info.Env(), static_cast<double>(t & ((uint64_t{1} << 52) - 1)));
}

static Module m(+[](Napi::Env env, Napi::Object exports) {
  exports.Set("nbitsPack", Napi::Function::New(env, NbitsPack, "nbitsPack"));
  exports.Set("nbitsUnpack", Napi::Function::New(env, NbitsUnpack, "nbitsUnpack"));
  exports.Set("nbitsMatmul", Napi::Function::New(env, NbitsMatmul, "nbitsMatmul"));
  exports.Set("nbitsMatmulAsync", Napi::Function::New(env, NbitsMatmulAsync, "nbitsMatmulAsync"));
  exports.Set("streamSum", Napi::Function::New(env, StreamSum, "streamSum"));
});

}  // namespace
}  // namespace napi
}  // namespace qk
