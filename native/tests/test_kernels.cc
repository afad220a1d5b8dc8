// Every kernel in native/kernels/kernels.def against the scalar reference, on every path this
// machine supports: all lengths 0..200 (every tail), large sizes, adversarial values (.5
// boundaries, +-Inf, NaN, -0, denormals, huge), all ranges and both arithmetic modes.
// Bit-identical or it fails. Fails too when a supported path was never exercised, or when a path
// named in QK_EXPECT_PATHS (comma list) is not supported here.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/quant.h"
#include "core/ref.h"
#include "dispatch/dispatch.h"
#include "test_util.h"

using namespace qk;

namespace {

std::map<std::string, int> g_exercised;  // "op/isa" -> cases

const QRange kRanges[] = {
    {-128, 127, 0}, {-127, 127, 0}, {0, 255, 0},           {-8, 7, 0},         {-7, 7, 0},        {0, 15, 0},
    {-2, 1, 0},     {0, 3, 0},      {-128, 127, QK_RECIP}, {0, 255, QK_RECIP}, {-8, 7, QK_RECIP},
};

std::vector<size_t> lengths() {
  std::vector<size_t> v;
  for (size_t n = 0; n <= 200; ++n) v.push_back(n);
  for (size_t n : {255, 256, 257, 511, 1000, 1023, 1024, 1025, 4099, 65536 + 17}) v.push_back(n);
  return v;
}

void test_quant_uniform() {
  for (const QRange& r : kRanges)
    for (size_t n : lengths()) {
      const float scale = pick_scale(n);
      const int32_t zp = pick_zp(r, n);
      std::vector<float> x = adversarial(n, scale, 1000 + n);
      std::vector<uint8_t> ref(n + 64, 0xAB), got(n + 64, 0xAB);
      quant_uniform_ref(x.data(), n, scale, zp, r, ref.data());
      for_paths(Op::quant_uniform, [&](const KernelEntry& e) {
        std::fill(got.begin(), got.end(), 0xAB);
        reinterpret_cast<quant_uniform_fn>(const_cast<void*>(e.fn))(x.data(), n, scale, zp, r, got.data());
        CHECK_BYTES(e, ref, got, n + 64, "n=%zu qmin=%d qmax=%d zp=%d scale=%g flags=%u", n, r.qmin, r.qmax, zp, scale,
                    r.flags);
      });
    }
}

void test_quant_vec() {
  for (const QRange& r : kRanges)
    for (size_t n : lengths()) {
      std::vector<float> sc(n);
      std::vector<int32_t> zps(n);
      for (size_t i = 0; i < n; ++i) {
        sc[i] = pick_scale(i * 7 + n);
        zps[i] = pick_zp(r, i + n);
      }
      std::vector<float> x = adversarial(n, 1.0f, 2000 + n);
      for (size_t i = 0; i < n; ++i)
        if (i % 5 == 0) x[i] = (std::floor(x[i]) + 0.5f) * sc[i];
      std::vector<uint8_t> ref(n + 64, 0xAB), got(n + 64, 0xAB);
      quant_vec_ref(x.data(), n, sc.data(), zps.data(), r, ref.data());
      for_paths(Op::quant_vec, [&](const KernelEntry& e) {
        std::fill(got.begin(), got.end(), 0xAB);
        reinterpret_cast<quant_vec_fn>(const_cast<void*>(e.fn))(x.data(), n, sc.data(), zps.data(), r, got.data());
        CHECK_BYTES(e, ref, got, n + 64, "n=%zu qmin=%d qmax=%d flags=%u", n, r.qmin, r.qmax, r.flags);
      });
    }
}

void test_dequant() {
  for (int sgn = 0; sgn < 2; ++sgn)
    for (size_t n : lengths()) {
      std::mt19937 rng(3000 + n);
      std::vector<uint8_t> q(n);
      for (auto& b : q) b = static_cast<uint8_t>(rng());
      if (n > 2) {
        q[0] = 0x80;
        q[1] = 0x7f;
        q[2] = 0xff;
      }
      const float scale = pick_scale(n);
      const int32_t zp = sgn ? static_cast<int32_t>(rng() % 256) - 128 : static_cast<int32_t>(rng() % 256);
      std::vector<float> ref(n + 16, 7.0f), got(n + 16, 7.0f);
      dequant_uniform_ref(q.data(), n, sgn, scale, zp, ref.data());
      for_paths(Op::dequant_uniform, [&](const KernelEntry& e) {
        std::fill(got.begin(), got.end(), 7.0f);
        reinterpret_cast<dequant_uniform_fn>(const_cast<void*>(e.fn))(q.data(), n, sgn, scale, zp, got.data());
        CHECK_FLOATS(e, ref, got, n + 16, "n=%zu signed=%d zp=%d", n, sgn, zp);
      });
      std::vector<float> sc(n);
      std::vector<int32_t> zps(n);
      for (size_t i = 0; i < n; ++i) {
        sc[i] = pick_scale(i * 3 + 1);
        zps[i] = sgn ? static_cast<int32_t>(rng() % 256) - 128 : static_cast<int32_t>(rng() % 256);
      }
      dequant_vec_ref(q.data(), n, sgn, sc.data(), zps.data(), ref.data());
      for_paths(Op::dequant_vec, [&](const KernelEntry& e) {
        std::fill(got.begin(), got.end(), 7.0f);
        reinterpret_cast<dequant_vec_fn>(const_cast<void*>(e.fn))(q.data(), n, sgn, sc.data(), zps.data(), got.data());
        CHECK_FLOATS(e, ref, got, n + 16, "vec n=%zu signed=%d", n, sgn);
      });
    }
}

void test_fakequant() {
  for (const QRange& r : kRanges)
    for (size_t n : lengths()) {
      for (int with_mask = 0; with_mask < 2; ++with_mask) {
        const float scale = pick_scale(n + 11);
        const int32_t zp = pick_zp(r, n + 5);
        std::vector<float> x = adversarial(n, scale, 4000 + n);
        std::vector<float> ref(n + 16, 7.0f), got(n + 16, 7.0f);
        std::vector<uint8_t> mref(n + 16, 9), mgot(n + 16, 9);
        fakequant_uniform_ref(x.data(), n, scale, zp, r, ref.data(), with_mask ? mref.data() : nullptr);
        for_paths(Op::fakequant_uniform, [&](const KernelEntry& e) {
          std::fill(got.begin(), got.end(), 7.0f);
          std::fill(mgot.begin(), mgot.end(), 9);
          reinterpret_cast<fakequant_uniform_fn>(const_cast<void*>(e.fn))(x.data(), n, scale, zp, r, got.data(),
                                                                          with_mask ? mgot.data() : nullptr);
          CHECK_FLOATS(e, ref, got, n + 16, "n=%zu qmin=%d qmax=%d zp=%d flags=%u", n, r.qmin, r.qmax, zp, r.flags);
          CHECK_BYTES(e, mref, mgot, n + 16, "mask n=%zu qmin=%d qmax=%d zp=%d flags=%u", n, r.qmin, r.qmax, zp,
                      r.flags);
        });
        std::vector<float> sc(n);
        std::vector<int32_t> zps(n);
        for (size_t i = 0; i < n; ++i) {
          sc[i] = pick_scale(i + 2 * n);
          zps[i] = pick_zp(r, 3 * i + n);
        }
        fakequant_vec_ref(x.data(), n, sc.data(), zps.data(), r, ref.data(), with_mask ? mref.data() : nullptr);
        for_paths(Op::fakequant_vec, [&](const KernelEntry& e) {
          std::fill(got.begin(), got.end(), 7.0f);
          std::fill(mgot.begin(), mgot.end(), 9);
          reinterpret_cast<fakequant_vec_fn>(const_cast<void*>(e.fn))(x.data(), n, sc.data(), zps.data(), r, got.data(),
                                                                      with_mask ? mgot.data() : nullptr);
          CHECK_FLOATS(e, ref, got, n + 16, "vec n=%zu qmin=%d qmax=%d flags=%u", n, r.qmin, r.qmax, r.flags);
          CHECK_BYTES(e, mref, mgot, n + 16, "vec mask n=%zu", n);
        });
      }
    }
}

// Calls large enough for the non-temporal-store variants (x86 kernels switch at 32 MiB of traffic).
void test_large() {
  const size_t n = (size_t{9} << 20) + 13;
  const QRange r{-128, 127, 0};
  std::vector<float> x = adversarial(n, 0.05f, 77);
  std::vector<uint8_t> qref(n + 64, 0xAB), qgot(n + 64, 0xAB);
  quant_uniform_ref(x.data(), n, 0.05f, 3, r, qref.data());
  for_paths(Op::quant_uniform, [&](const KernelEntry& e) {
    std::fill(qgot.begin(), qgot.end(), 0xAB);
    reinterpret_cast<quant_uniform_fn>(const_cast<void*>(e.fn))(x.data(), n, 0.05f, 3, r, qgot.data() + 1);
    std::vector<uint8_t> shifted(qgot.begin() + 1, qgot.end());
    shifted.push_back(0xAB);
    CHECK_BYTES(e, qref, shifted, n + 63, "large n=%zu (output offset 1)", n);
  });
  std::vector<float> fref(n + 16, 7.0f), fgot(n + 16, 7.0f);
  dequant_uniform_ref(qref.data(), n, true, 0.05f, 3, fref.data());
  for_paths(Op::dequant_uniform, [&](const KernelEntry& e) {
    std::fill(fgot.begin(), fgot.end(), 7.0f);
    reinterpret_cast<dequant_uniform_fn>(const_cast<void*>(e.fn))(qref.data(), n, true, 0.05f, 3, fgot.data());
    CHECK_FLOATS(e, fref, fgot, n + 16, "large dequant n=%zu", n);
  });
  std::vector<uint8_t> mref(n + 16, 9), mgot(n + 16, 9);
  fakequant_uniform_ref(x.data(), n, 0.05f, 3, r, fref.data(), mref.data());
  for_paths(Op::fakequant_uniform, [&](const KernelEntry& e) {
    std::fill(fgot.begin(), fgot.end(), 7.0f);
    std::fill(mgot.begin(), mgot.end(), 9);
    reinterpret_cast<fakequant_uniform_fn>(const_cast<void*>(e.fn))(x.data(), n, 0.05f, 3, r, fgot.data(), mgot.data());
    CHECK_FLOATS(e, fref, fgot, n + 16, "large fakequant n=%zu", n);
    CHECK_BYTES(e, mref, mgot, n + 16, "large fakequant mask n=%zu", n);
  });
}

bool same_acc(const MinMaxAcc& a, const MinMaxAcc& b) {
  // min/max compared as values with -0 == +0 (the core canonicalises zeros afterwards).
  return a.min == b.min && a.max == b.max && a.nan == b.nan && a.inf == b.inf && std::isnan(a.min) == std::isnan(b.min);
}

void test_minmax() {
  for (size_t n : lengths()) {
    for (int variant = 0; variant < 4; ++variant) {
      std::vector<float> x = adversarial(n, 0.37f, 5000 + n * 4 + variant);
      if (variant == 1)
        for (auto& v : x) v = std::numeric_limits<float>::quiet_NaN();
      if (variant == 2)
        for (size_t i = 0; i < n; ++i) x[i] = (i % 2) ? -0.0f : 0.0f;
      if (variant == 3 && n) x[n - 1] = -1e38f;  // extreme in the tail
      const float inf = std::numeric_limits<float>::infinity();
      MinMaxAcc ref{inf, -inf, 0, 0};
      minmax_uniform_ref(x.data(), n, &ref);
      for_paths(Op::minmax_uniform, [&](const KernelEntry& e) {
        MinMaxAcc got{inf, -inf, 0, 0};
        reinterpret_cast<minmax_uniform_fn>(const_cast<void*>(e.fn))(x.data(), n, &got);
        if (!same_acc(ref, got))
          fail(e, "minmax n=%zu variant=%d: ref %g..%g nan %llu inf %llu, got %g..%g nan %llu inf %llu", n, variant,
               ref.min, ref.max, (unsigned long long)ref.nan, (unsigned long long)ref.inf, got.min, got.max,
               (unsigned long long)got.nan, (unsigned long long)got.inf);
        // Accumulating into a non-empty acc keeps earlier values.
        MinMaxAcc pre{-5e37f, 5e37f, 3, 4}, pre_ref = pre;
        minmax_uniform_ref(x.data(), n, &pre_ref);
        reinterpret_cast<minmax_uniform_fn>(const_cast<void*>(e.fn))(x.data(), n, &pre);
        if (!same_acc(pre_ref, pre)) fail(e, "minmax accumulate n=%zu variant=%d", n, variant);
      });
      std::vector<float> mins_ref(n), maxs_ref(n);
      for (size_t i = 0; i < n; ++i) {
        mins_ref[i] = (i % 3 == 0) ? inf : -1.0f;
        maxs_ref[i] = (i % 3 == 0) ? -inf : 1.0f;
      }
      std::vector<float> mins_got = mins_ref, maxs_got = maxs_ref;
      MinMaxAcc cref{0, 0, 0, 0};
      minmax_vec_ref(x.data(), n, mins_ref.data(), maxs_ref.data(), &cref);
      for_paths(Op::minmax_vec, [&](const KernelEntry& e) {
        std::vector<float> mn = mins_got, mx = maxs_got;
        MinMaxAcc cgot{0, 0, 0, 0};
        reinterpret_cast<minmax_vec_fn>(const_cast<void*>(e.fn))(x.data(), n, mn.data(), mx.data(), &cgot);
        for (size_t i = 0; i < n; ++i)
          if (!(mn[i] == mins_ref[i] && mx[i] == maxs_ref[i])) {
            fail(e, "minmax_vec n=%zu i=%zu", n, i);
            break;
          }
        if (cgot.nan != cref.nan || cgot.inf != cref.inf) fail(e, "minmax_vec counts n=%zu", n);
      });
    }
  }
}

struct Suite {
  const char* name;
  void (*fn)();
};
std::vector<Suite>& suites() {
  static std::vector<Suite> s;
  return s;
}

}  // namespace

namespace qk {
TestSuite::TestSuite(const char* name, void (*fn)()) { suites().push_back({name, fn}); }
void note_exercised(const KernelEntry& e) { g_exercised[std::string(op_name(e.op)) + "/" + isa_name(e.isa)]++; }
}  // namespace qk

int main() {
  std::printf("kernels: %zu entries; paths supported here:", kernel_list().size());
  for (int i = 0; i < static_cast<int>(Isa::count); ++i)
    if (isa_supported(static_cast<Isa>(i))) std::printf(" %s", isa_name(static_cast<Isa>(i)));
  std::printf("\n");
  test_quant_uniform();
  test_quant_vec();
  test_dequant();
  test_fakequant();
  test_minmax();
  test_large();
  run_layout_tests();  // test_layout.cc
  for (const Suite& s : suites()) {
    std::printf("suite %s\n", s.name);
    s.fn();
  }

  // Every supported (op, path) must have been exercised.
  for (const KernelEntry& e : kernel_list()) {
    if (e.isa == Isa::scalar || !isa_supported(e.isa)) continue;
    const std::string key = std::string(op_name(e.op)) + "/" + isa_name(e.isa);
    if (g_exercised[key] == 0)
      fail_plain("path never exercised: %s (%s)", key.c_str(), e.symbol);
    else
      std::printf("  exercised %-28s %6d cases\n", key.c_str(), g_exercised[key]);
  }
  if (const char* exp = std::getenv("QK_EXPECT_PATHS")) {
    std::string s = exp;
    size_t p = 0;
    while (p <= s.size()) {
      size_t q = s.find(',', p);
      if (q == std::string::npos) q = s.size();
      const std::string name = s.substr(p, q - p);
      p = q + 1;
      if (name.empty()) continue;
      Isa isa;
      if (!isa_from_name(name, &isa))
        fail_plain("QK_EXPECT_PATHS names unknown path %s", name.c_str());
      else if (!isa_supported(isa))
        fail_plain("expected path %s is not supported on this machine/binary", name.c_str());
    }
  }
  return report();
}
