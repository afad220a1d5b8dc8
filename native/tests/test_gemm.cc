// Int8 GEMM: every gemm_i8 path (forced with set_isa) against the MatMulInteger definition computed
// in int64 from the original A and B, on random and adversarial data (all-extreme codes, zero points
// at the dtype limits, per-row / per-column zero points), sizes hitting every M / N / K tail, the
// largest K the int32 bound allows, all four dtype combinations, transposed B, and every epilogue:
// int32 exact; float32 bit-identical to the scalar path and to the documented float32 formula, and
// close to a float64 reference; int8/uint8 equal to the ONNX QLinearMatMul formula (float64 product,
// round half to even, saturate), without and with an int32 bias (QLinearConv / QGemm: added to acc
// in float64; random, zero, +-(2^31 - 1) and -2^31 next to the largest acc, and biases cancelling
// acc). Threads 1..3 and concurrent callers give the same bytes.
// The AMX strip (native/kernels/gemm_amx.h) runs here on emulated tiles (amx_tile.h: AmxEmu) on
// every machine, through the driver with its geometry, as one more "path" of every problem; the
// emulated tiles themselves are checked against the tdpbsud definition. Where the CPU and OS allow
// AMX, the real kernel (gemm_i8_amx) is one of the forced paths like any other.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/gemm.h"
#include "core/quant.h"
#include "core/ref.h"
#include "core/threadpool.h"
#include "dispatch/dispatch.h"
#include "kernels/gemm_amx.h"
#include "test_util.h"

using namespace qk;

namespace {

struct Problem {
  size_t M, N, K;
  bool a_signed, b_signed, transposed;
  std::vector<uint8_t> a, b;    // codes as bytes; b is K x N or N x K (transposed)
  std::vector<int32_t> za, zb;  // 1 or M / 1 or N
  std::vector<float> as, bs;    // 1 or M / 1 or N
  std::vector<float> bias;      // N or empty
  std::vector<int32_t> bias_q;  // N: int8/uint8 outputs' bias
  int bias_kind = 0;            // 0 random, 1 extremes, 2 zeros, 3 cancels row 0's acc
  float ys = 0.0f;              // output scale (0: from K)
};

int32_t code(const std::vector<uint8_t>& v, size_t i, bool s) {
  return s ? static_cast<int32_t>(static_cast<int8_t>(v[i])) : static_cast<int32_t>(v[i]);
}

std::vector<int64_t> naive(const Problem& p) {
  std::vector<int64_t> acc(p.M * p.N, 0);
  for (size_t i = 0; i < p.M; ++i) {
    const int64_t za = p.za[p.za.size() == 1 ? 0 : i];
    for (size_t j = 0; j < p.N; ++j) {
      const int64_t zb = p.zb[p.zb.size() == 1 ? 0 : j];
      int64_t s = 0;
      for (size_t k = 0; k < p.K; ++k) {
        const int64_t a = code(p.a, i * p.K + k, p.a_signed);
        const int64_t b = code(p.b, p.transposed ? j * p.K + k : k * p.N + j, p.b_signed);
        s += (a - za) * (b - zb);
      }
      acc[i * p.N + j] = s;
    }
  }
  return acc;
}

const int32_t kExt[] = {2147483647, -2147483647 - 1, -2147483647, 0, 1, -1, 1 << 30};  // extreme biases

// kind: 0 random, 1 all extremes (lo/hi codes), 2 all lo, 3 all hi.
Problem make(size_t M, size_t N, size_t K, bool as_, bool bs_, bool tr, int kind, int zkind, bool per_row, bool per_col,
             uint32_t seed) {
  std::mt19937 rng(seed);
  Problem p{M, N, K, as_, bs_, tr, {}, {}, {}, {}, {}, {}, {}, {}, 0, 0.0f};
  auto gen = [&](bool s) -> uint8_t {
    const int lo = s ? -128 : 0, hi = s ? 127 : 255;
    int v;
    switch (kind) {
      case 1: v = (rng() & 1) ? lo : hi; break;
      case 2: v = lo; break;
      case 3: v = hi; break;
      default: v = lo + static_cast<int>(rng() % 256);
    }
    return static_cast<uint8_t>(v);
  };
  p.a.resize(M * K);
  for (auto& v : p.a) v = gen(as_);
  p.b.resize(K * N);
  for (auto& v : p.b) v = gen(bs_);
  auto zp = [&](bool s, size_t idx) -> int32_t {
    const int lo = s ? -128 : 0, hi = s ? 127 : 255;
    switch ((zkind + idx) % 4) {
      case 0: return lo;
      case 1: return hi;
      case 2: return s ? 0 : 128;
      default: return lo + static_cast<int32_t>(rng() % 256);
    }
  };
  p.za.resize(per_row ? M : 1);
  for (size_t i = 0; i < p.za.size(); ++i) p.za[i] = zp(as_, i);
  p.zb.resize(per_col ? N : 1);
  for (size_t j = 0; j < p.zb.size(); ++j) p.zb[j] = zp(bs_, j + 1);
  std::uniform_real_distribution<float> u(0.001f, 0.1f);
  p.as.resize(per_row ? M : 1);
  for (auto& v : p.as) v = u(rng);
  p.bs.resize(per_col ? N : 1);
  for (auto& v : p.bs) v = u(rng) * 0.1f;
  p.bias.resize(N);
  for (auto& v : p.bias) v = (u(rng) - 0.05f) * 40.0f;
  p.bias_kind = static_cast<int>(seed % 4);
  p.bias_q.resize(N);
  for (auto& v : p.bias_q) {
    switch (p.bias_kind) {
      case 1: v = kExt[rng() % 7]; break;
      case 2: v = 0; break;
      default: v = static_cast<int32_t>(rng() % (1u << 25)) - (1 << 24);  // kind 3: adjusted later
    }
  }
  return p;
}

// The AMX strip on emulated tiles, with the scalar epilogue (raw -> acc -> output, ref_gemm.h): a kernel outside the
// list, installed with set_test_kernel (other ops scalar).
void gemm_i8_amx_emu(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t n1) {
  amx_gemm_strip<AmxEmu>(g, m0, m1, n0, n1, [](const GemmArgs& gg, size_t i, size_t j, const int32_t* acc) {
    for (size_t c = j; c < j + 16 && c < gg.n; ++c)
      gemm_store_one(gg, i, c, gemm_correct(acc[c - j], gg.row_sum[i], gg.row_za[i], gg.col_zb[c], gg.col_c[c]));
  });
}
const KernelEntry kAmxEmu{Op::gemm_i8, Isa::amx, reinterpret_cast<const void*>(&gemm_i8_amx_emu), "gemm_i8_amx_emu",
                          kAmxGemmGeom};
long long g_amx_emu_cases = 0;

std::vector<const KernelEntry*> gemm_paths() {
  std::vector<const KernelEntry*> v;
  for (const KernelEntry& e : kernel_list())
    if (e.op == Op::gemm_i8 && isa_supported(e.isa)) v.push_back(&e);
  v.push_back(&kAmxEmu);
  return v;
}

bool force(const KernelEntry& e) {
  if (&e == &kAmxEmu) {
    set_isa("scalar");
    set_test_kernel(Op::gemm_i8, e.fn, e.geom);
  } else {
    const std::string err = set_isa(isa_name(e.isa));
    if (!err.empty()) {
      fail(e, "set_isa: %s", err.c_str());
      return false;
    }
  }
  if (reinterpret_cast<const void*>(kernels().gemm_i8) != e.fn) {
    fail(e, "forced path not selected");
    return false;
  }
  const KernelGeom& g = kernels().gemm_i8_geom;
  if (g.mr != e.geom.mr || g.nr != e.geom.nr) {
    fail(e, "the driver would not use the kernel's geometry");
    return false;
  }
  return true;
}

void exercised(const KernelEntry& e) {
  if (&e == &kAmxEmu)
    ++g_amx_emu_cases;
  else
    note_exercised(e);
}

struct Outputs {
  std::vector<int32_t> i32;
  std::vector<float> f32, f32relu;
  std::vector<uint8_t> q8, qu8, q8b, qu8b;  // b: with bias_q, ReLU flipped
};

// Output guard: one extra row of sentinels after M x N.
Outputs run_all(const PackedB& B, const Problem& p, const std::vector<int32_t>& bias_q, float ys, int32_t yzp8,
                int32_t yzpu8, bool relu_q) {
  Outputs o;
  const size_t MN = p.M * p.N, G = p.N + 7;
  GemmCall c;
  c.a = p.a.data();
  c.a_signed = p.a_signed;
  c.M = p.M;
  c.a_zp = p.za.data();
  c.a_zp_per_row = p.za.size() > 1;
  c.a_scale = p.as.data();
  c.a_scale_per_row = p.as.size() > 1;
  o.i32.assign(MN + G, 0x5a5a5a5a);
  c.out_kind = kGemmOutInt32;
  c.out = o.i32.data();
  gemm_run(B, c);
  o.f32.assign(MN + G, 777.0f);
  c.out_kind = kGemmOutFloat32;
  c.out = o.f32.data();
  c.bias = p.bias.data();
  gemm_run(B, c);
  o.f32relu.assign(MN + G, 777.0f);
  c.out = o.f32relu.data();
  c.relu = true;
  c.bias = nullptr;
  gemm_run(B, c);
  c.bias = nullptr;
  c.relu = relu_q;
  c.y_scale = ys;
  o.q8.assign(MN + G, 0xA5);
  c.out_kind = kGemmOutInt8;
  c.out = o.q8.data();
  c.y_zp = yzp8;
  gemm_run(B, c);
  o.qu8.assign(MN + G, 0xA5);
  c.out_kind = kGemmOutUint8;
  c.out = o.qu8.data();
  c.y_zp = yzpu8;
  gemm_run(B, c);
  c.bias_q = bias_q.data();
  c.relu = !relu_q;
  o.q8b.assign(MN + G, 0xA5);
  c.out_kind = kGemmOutInt8;
  c.out = o.q8b.data();
  c.y_zp = yzp8;
  gemm_run(B, c);
  o.qu8b.assign(MN + G, 0xA5);
  c.out_kind = kGemmOutUint8;
  c.out = o.qu8b.data();
  c.y_zp = yzpu8;
  gemm_run(B, c);
  return o;
}

long long g_cases = 0;

void check_problem(const Problem& p, const std::vector<const KernelEntry*>& paths, bool check_f64 = true) {
  ++g_cases;
  auto B = pack_b(p.b.data(), p.K, p.N, p.b_signed, p.transposed, p.zb.data(), p.zb.size() > 1, p.bs.data(),
                  p.bs.size() > 1);
  const int32_t dev_a = gemm_max_dev(p.a_signed, p.za.data(), p.za.size());
  if (!gemm_bound_error(p.K, dev_a, B->max_dev).empty()) {
    fail_plain("bound refused a valid case K=%zu", p.K);
    return;
  }
  const std::vector<int64_t> acc = naive(p);
  const float ys = p.ys > 0.0f ? p.ys : 0.37f + static_cast<float>(p.K % 7);
  std::vector<int32_t> bias_q = p.bias_q;
  if (p.bias_kind == 3)  // row 0 lands near 0 (the sum cancels), other rows keep a large bias
    for (size_t j = 0; j < p.N; ++j) {
      const int64_t v = -acc[j] + static_cast<int64_t>(bias_q[j] % 4096);
      bias_q[j] = static_cast<int32_t>(std::min<int64_t>(2147483647, std::max<int64_t>(-2147483647 - 1, v)));
    }
  const int32_t yzp8 = static_cast<int32_t>(p.M % 3) - 1, yzpu8 = static_cast<int32_t>(p.N % 200);
  const bool relu_q = (p.M + p.N) % 2 == 0;
  set_isa("scalar");
  const Outputs ref = run_all(*B, p, bias_q, ys, yzp8, yzpu8, relu_q);
  const size_t MN = p.M * p.N;
  char ctx[200];
  std::snprintf(ctx, sizeof ctx, "M=%zu N=%zu K=%zu a%s b%s tr=%d zaN=%zu zbN=%zu", p.M, p.N, p.K,
                p.a_signed ? "s8" : "u8", p.b_signed ? "s8" : "u8", p.transposed, p.za.size(), p.zb.size());
  // The scalar path against the definitions.
  ++checks();
  for (size_t e = 0; e < MN; ++e) {
    const size_t i = e / p.N, j = e % p.N;
    if (acc[e] != ref.i32[e]) {
      fail_plain("%s: int32 (%zu,%zu) want %lld got %d", ctx, i, j, (long long)acc[e], ref.i32[e]);
      break;
    }
    const float as = p.as[p.as.size() > 1 ? i : 0], bs = p.bs[p.bs.size() > 1 ? j : 0];
    // float32 formula
    const float s = as * bs;
    float y = static_cast<float>(static_cast<int32_t>(acc[e])) * s;
    y = y + p.bias[j];
    float yr = static_cast<float>(static_cast<int32_t>(acc[e])) * s;
    yr = yr + 0.0f;
    yr = yr > 0.0f ? yr : 0.0f;
    if (fbits(y) != fbits(ref.f32[e]) || fbits(yr) != fbits(ref.f32relu[e])) {
      fail_plain("%s: f32 (%zu,%zu) want %.9g got %.9g", ctx, i, j, y, ref.f32[e]);
      break;
    }
    if (check_f64) {
      const double y64 = static_cast<double>(acc[e]) * as * bs + p.bias[j];
      const double tol =
          4.0 * 1.2e-7 * (std::fabs(static_cast<double>(acc[e]) * as * bs) + std::fabs(p.bias[j])) + 1e-30;
      if (std::fabs(y64 - ref.f32[e]) > tol) {
        fail_plain("%s: f32 vs f64 (%zu,%zu) f64 %.17g got %.9g", ctx, i, j, y64, ref.f32[e]);
        break;
      }
    }
    // ONNX QLinearMatMul: float32 multiplier, float64 acc * mult + zp, rint, saturate.
    const float mult = (as * bs) / ys;
    // With a bias: (acc + bias) exact in int64, then the same float64 steps.
    auto onnx_q = [&](int32_t zp, int lo, int hi, int64_t bq, bool relu) {
      double d = static_cast<double>(acc[e] + bq) * static_cast<double>(mult);
      d += zp;
      d = std::nearbyint(d);
      if (relu && d < zp) d = zp;
      return static_cast<int>(std::min<double>(hi, std::max<double>(lo, d)));
    };
    const int q8 = onnx_q(yzp8, -128, 127, 0, relu_q), qu8 = onnx_q(yzpu8, 0, 255, 0, relu_q);
    if (q8 != static_cast<int8_t>(ref.q8[e]) || qu8 != ref.qu8[e]) {
      fail_plain("%s: requant (%zu,%zu) want %d/%d got %d/%d", ctx, i, j, q8, qu8, (int8_t)ref.q8[e], ref.qu8[e]);
      break;
    }
    const int q8b = onnx_q(yzp8, -128, 127, bias_q[j], !relu_q), qu8b = onnx_q(yzpu8, 0, 255, bias_q[j], !relu_q);
    if (q8b != static_cast<int8_t>(ref.q8b[e]) || qu8b != ref.qu8b[e]) {
      fail_plain("%s: requant bias %d (%zu,%zu) want %d/%d got %d/%d", ctx, bias_q[j], i, j, q8b, qu8b,
                 (int8_t)ref.q8b[e], ref.qu8b[e]);
      break;
    }
  }
  for (size_t e = MN; e < MN + p.N + 7; ++e)
    if (ref.i32[e] != 0x5a5a5a5a || ref.q8[e] != 0xA5 || ref.qu8b[e] != 0xA5 || fbits(ref.f32[e]) != fbits(777.0f)) {
      fail_plain("%s: scalar wrote past the output", ctx);
      break;
    }
  for (const KernelEntry* e : paths) {
    if (e->isa == Isa::scalar) continue;
    if (!force(*e)) continue;
    exercised(*e);
    const Outputs got = run_all(*B, p, bias_q, ys, yzp8, yzpu8, relu_q);
    CHECK_BYTES(*e, ref.i32, got.i32, ref.i32.size(), "%s int32", ctx);
    CHECK_FLOATS(*e, ref.f32, got.f32, ref.f32.size(), "%s float32", ctx);
    CHECK_FLOATS(*e, ref.f32relu, got.f32relu, ref.f32relu.size(), "%s float32 relu", ctx);
    CHECK_BYTES(*e, ref.q8, got.q8, ref.q8.size(), "%s int8", ctx);
    CHECK_BYTES(*e, ref.qu8, got.qu8, ref.qu8.size(), "%s uint8", ctx);
    CHECK_BYTES(*e, ref.q8b, got.q8b, ref.q8b.size(), "%s int8 bias", ctx);
    CHECK_BYTES(*e, ref.qu8b, got.qu8b, ref.qu8b.size(), "%s uint8 bias", ctx);
  }
  set_isa("auto");
}

void test_shapes(const std::vector<const KernelEntry*>& paths) {
  const size_t Ms[] = {1, 2, 3, 5, 6, 7, 11, 12, 13, 25};
  const size_t Ns[] = {1, 2, 15, 16, 17, 31, 33, 47, 48, 63, 64, 65, 97, 128, 131, 200};
  const size_t Ks[] = {1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 67, 131, 256};
  uint32_t seed = 1;
  for (size_t M : Ms)
    for (size_t N : Ns)
      for (size_t K : Ks) {
        ++seed;
        if ((seed * 2654435761u >> 7) % 5 != 0 && !(M == 1 || N == 1 || K == 1))
          continue;  // a fifth of the grid + all 1s
        const int combo = seed % 4;
        const bool as_ = combo & 1, bs_ = combo & 2;
        check_problem(make(M, N, K, as_, bs_, seed % 3 == 0, static_cast<int>(seed % 4), static_cast<int>(seed % 5),
                           seed % 2 == 0, seed % 5 < 2, seed),
                      paths);
      }
}

void test_adversarial(const std::vector<const KernelEntry*>& paths) {
  // Every dtype combination x extreme codes x zero points at the limits, per-tensor and per-row/col.
  uint32_t seed = 9000;
  for (int combo = 0; combo < 4; ++combo)
    for (int kind = 1; kind <= 3; ++kind)
      for (int zk = 0; zk < 4; ++zk)
        for (int per = 0; per < 2; ++per) {
          const bool as_ = combo & 1, bs_ = combo & 2;
          check_problem(make(7, 67, 129, as_, bs_, per == 1, kind, zk, per == 1, per == 1, ++seed), paths);
        }
}

void test_large_k(const std::vector<const KernelEntry*>& paths) {
  // The largest K the bound allows, with all-extreme data: the int32 accumulator is exact at its edge.
  for (int combo = 0; combo < 4; ++combo) {
    const bool as_ = combo & 1, bs_ = combo & 2;
    const int32_t za = as_ ? -128 : 255;  // worst deviation: 255 (s8: 255 too with -128 vs 127)
    const int32_t zb = bs_ ? 127 : 0;
    const int64_t da = as_ ? 255 : 255, db = bs_ ? 255 : 255;
    size_t K = static_cast<size_t>(2147483647LL / (da * db));
    Problem p = make(3, 19, K, as_, bs_, combo == 2, 3, 0, false, false, 77 + combo);
    // All A codes at the far end from za, all B at the far end from zb: acc = K * da * db (max).
    std::fill(p.a.begin(), p.a.end(), static_cast<uint8_t>(as_ ? 127 : 0));
    std::fill(p.b.begin(), p.b.end(), static_cast<uint8_t>(bs_ ? static_cast<uint8_t>(-128) : 255));
    p.za = {za};
    p.zb = {zb};
    check_problem(p, paths, true);
    // Extreme biases next to the largest |acc|: the sum (up to about +-2^32) is exact, never
    // wrapped; with a tiny multiplier (ys 40) it lands inside the output range.
    for (int t = 0; t < 2; ++t) {
      Problem x = p;
      x.as = {1e-3f};
      x.bs = {1e-4f};
      x.ys = t ? 40.0f : 0.0f;
      x.bias_kind = 1;
      for (size_t j = 0; j < x.N; ++j) x.bias_q[j] = kExt[(j + t) % 7];
      check_problem(x, paths, false);
    }
    // One more K is refused.
    if (gemm_bound_error(K + 1, da, db).empty()) fail_plain("K=%zu not refused", K + 1);
    // Random data near the bound with mixed signs.
    Problem r = make(2, 33, K, as_, bs_, false, 1, 0, false, false, 500 + combo);
    r.za = {za};
    r.zb = {zb};
    check_problem(r, paths, false);
  }
  if (gemm_bound_error(65793, 255, 128) != "") fail_plain("u8s8 K=65793 refused");
  if (gemm_bound_error(65794, 255, 128) == "") fail_plain("u8s8 K=65794 accepted");
}

void test_threads(const std::vector<const KernelEntry*>& paths) {
  const int saved = num_threads();
  for (int t = 1; t <= 3; ++t) {
    set_num_threads(t);
    check_problem(make(97, 300, 200, false, true, false, 0, 3, true, true, 4242), paths, false);
    check_problem(make(1, 1000, 515, true, true, true, 0, 2, false, true, 4343), paths, false);
    check_problem(make(130, 64, 64, true, false, false, 0, 1, false, false, 4444), paths, false);
  }
  set_num_threads(saved);
}

void test_concurrent() {
  // Several threads calling gemm_run at once (each finds the pool busy or not) give serial results.
  Problem p = make(50, 260, 300, false, true, false, 0, 3, true, true, 999);
  auto B = pack_b(p.b.data(), p.K, p.N, p.b_signed, false, p.zb.data(), true, p.bs.data(), true);
  GemmCall c;
  c.a = p.a.data();
  c.a_signed = false;
  c.M = p.M;
  c.a_zp = p.za.data();
  c.a_zp_per_row = true;
  c.a_scale = p.as.data();
  c.a_scale_per_row = true;
  c.bias = p.bias.data();
  c.out_kind = kGemmOutFloat32;
  std::vector<float> want(p.M * p.N);
  c.out = want.data();
  gemm_run(*B, c);
  std::atomic<int> bad{0};
  std::vector<std::thread> th;
  for (int t = 0; t < 6; ++t)
    th.emplace_back([&] {
      for (int r = 0; r < 20; ++r) {
        std::vector<float> got(p.M * p.N);
        GemmCall cc = c;
        cc.out = got.data();
        gemm_run(*B, cc);
        if (std::memcmp(got.data(), want.data(), got.size() * 4) != 0) bad++;
      }
    });
  for (auto& t : th) t.join();
  ++checks();
  if (bad) fail_plain("concurrent gemm_run differs from serial (%d runs)", bad.load());
}

void test_linear_dynamic(const std::vector<const KernelEntry*>& paths) {
  std::mt19937 rng(31);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  const size_t M = 9, N = 70, K = 45;
  std::vector<float> x(M * K);
  for (auto& v : x) v = nd(rng);
  for (size_t k = 0; k < K; ++k) x[3 * K + k] = 0.0f;  // an all-zero row
  Problem p = make(M, N, K, false, true, false, 0, 2, false, true, 32);
  auto B = pack_b(p.b.data(), K, N, true, false, p.zb.data(), true, p.bs.data(), true);
  for (int per_row = 0; per_row < 2; ++per_row)
    for (int sgn = 0; sgn < 2; ++sgn) {
      set_isa("scalar");
      std::vector<float> ref(M * N);
      linear_dynamic(x.data(), M, *B, p.bias.data(), false, per_row, sgn, ref.data());
      // Oracle: quantize the rows ourselves, then the float formula on the exact acc.
      ++checks();
      for (size_t i = 0; i < M; ++i) {
        std::vector<uint8_t> q(K);
        float s;
        int32_t z;
        const float* xs = per_row ? x.data() + i * K : x.data();
        const size_t n = per_row ? K : M * K;
        std::vector<uint8_t> qall(n);
        if (!sgn) {
          dynamic_quantize(xs, n, qall.data(), &s, &z);
        } else {
          float amax = 0;
          for (size_t k = 0; k < n; ++k) amax = std::max(amax, std::fabs(xs[k]));
          s = amax / 127.0f;
          if (!(s >= 1.17549435e-38f)) s = 1.0f;
          z = 0;
          for (size_t k = 0; k < n; ++k)
            qall[k] = static_cast<uint8_t>(quant_one(xs[k], s, 0, 0, QRange{-127, 127, 0}));
        }
        std::memcpy(q.data(), qall.data() + (per_row ? 0 : i * K), K);
        for (size_t j = 0; j < N; ++j) {
          int64_t acc = 0;
          for (size_t k = 0; k < K; ++k) {
            const int32_t a = sgn ? static_cast<int8_t>(q[k]) : q[k];
            acc += (a - z) * (static_cast<int64_t>(static_cast<int8_t>(p.b[k * N + j])) - p.zb[j]);
          }
          const float y = gemm_epi_f32(static_cast<int32_t>(acc), s, p.bs[j], p.bias[j], 0);
          if (fbits(y) != fbits(ref[i * N + j])) {
            fail_plain("linear_dynamic per_row=%d sgn=%d (%zu,%zu) want %.9g got %.9g", per_row, sgn, i, j, y,
                       ref[i * N + j]);
            i = M;
            break;
          }
        }
      }
      for (const KernelEntry* e : paths) {
        if (e->isa == Isa::scalar || !force(*e)) continue;
        exercised(*e);
        std::vector<float> got(M * N);
        linear_dynamic(x.data(), M, *B, p.bias.data(), false, per_row, sgn, got.data());
        CHECK_FLOATS(*e, ref, got, M * N, "linear_dynamic per_row=%d signed=%d", per_row, sgn);
      }
      set_isa("auto");
    }
}

// The emulated tiles against the definition of tdpbsud (amx_tile.h), on full and partial tiles:
// C[m][n] += sum_k s8 A[m][k] * u8 B[k/4][4n + k%4] mod 2^32, rows and bytes outside the
// configuration loaded as 0 and left alone by stores.
void test_amx_emu_tiles() {
  std::mt19937 rng(71);
  const int shapes[][3] = {{16, 16, 64}, {1, 1, 4}, {5, 3, 20}, {16, 16, 4}, {7, 16, 64}, {16, 2, 36}};
  for (const auto& sh : shapes) {
    const int M = sh[0], N = sh[1], Kb = sh[2];
    AmxTileConfig cfg;
    cfg.rows[0] = static_cast<uint8_t>(M);
    cfg.colsb[0] = static_cast<uint16_t>(N * 4);
    cfg.rows[1] = static_cast<uint8_t>(M);
    cfg.colsb[1] = static_cast<uint16_t>(Kb);
    cfg.rows[2] = static_cast<uint8_t>(Kb / 4);
    cfg.colsb[2] = static_cast<uint16_t>(N * 4);
    // Sources with a stride wider than a row, filled with garbage past each row's bytes.
    std::vector<uint8_t> a(16 * 80), b(16 * 72);
    std::vector<int32_t> c(16 * 20), want(16 * 20);
    for (auto& v : a) v = static_cast<uint8_t>(rng());
    for (auto& v : b) v = static_cast<uint8_t>(rng());
    for (auto& v : c) v = static_cast<int32_t>(rng());
    c[0] = 2147483647;  // wraps
    want = c;
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        uint32_t acc = static_cast<uint32_t>(want[m * 20 + n]);
        for (int k = 0; k < Kb; ++k)
          acc += static_cast<uint32_t>(static_cast<int8_t>(a[m * 80 + k]) *
                                       static_cast<int32_t>(b[(k / 4) * 72 + 4 * n + k % 4]));
        want[m * 20 + n] = static_cast<int32_t>(acc);
      }
    AmxEmu t;
    t.configure(cfg);
    t.load<0>(c.data(), 80);
    t.load<1>(a.data(), 80);
    t.load<2>(b.data(), 72);
    t.dpbsud<0, 1, 2>();
    std::vector<int32_t> got = c;
    t.store<0>(got.data(), 80);
    t.release();
    ++checks();
    for (size_t e = 0; e < got.size(); ++e)
      if (got[e] != want[e]) {
        fail_plain("AmxEmu tdpbsud %dx%dx%d: element %zu want %d got %d", M, N, Kb, e, want[e], got[e]);
        break;
      }
  }
  // A configuration's shapes: the kernel's blocks are valid for every row and column tail.
  ++checks();
  for (int r0 = 1; r0 <= 16; ++r0)
    for (int r1 = 0; r1 <= 16; ++r1)
      for (int nb = 1; nb <= 2; ++nb) {
        if (r1 && r0 != 16) continue;
        const AmxTileConfig c = amx_gemm_config(r0, r1, nb);
        if (c.rows[0] != r0 || c.rows[4] != r0 || c.rows[2] != r1 || c.rows[5] != r1 || (c.rows[1] != 0) != (nb > 1) ||
            c.rows[6] != 16 || c.colsb[4] != 64)
          fail_plain("amx_gemm_config(%d, %d, %d) does not describe the blocks", r0, r1, nb);
      }
}

void run() {
  test_amx_emu_tiles();
  const std::vector<const KernelEntry*> paths = gemm_paths();
  test_shapes(paths);
  test_adversarial(paths);
  test_large_k(paths);
  test_threads(paths);
  test_concurrent();
  test_linear_dynamic(paths);
  set_isa("auto");
  std::printf("  gemm: %lld problems\n", g_cases);
  ++checks();
  if (g_amx_emu_cases == 0)
    fail_plain("the AMX strip on emulated tiles was never exercised");
  else
    std::printf("  exercised gemm_i8/amx on emulated tiles (gemm_i8_amx_emu) %lld cases\n", g_amx_emu_cases);
}

static qk::TestSuite s("gemm", run);

}  // namespace
