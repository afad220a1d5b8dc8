#pragma once
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/kernel_types.h"
#include "dispatch/dispatch.h"

namespace qk {

inline int& failures() {
  static int f = 0;
  return f;
}
inline long long& checks() {
  static long long c = 0;
  return c;
}

inline void vfail(const char* prefix, const char* fmt, va_list ap) {
  if (++failures() <= 40) {
    std::fprintf(stderr, "FAIL %s: ", prefix);
    std::vfprintf(stderr, fmt, ap);
    std::fprintf(stderr, "\n");
  }
}
inline void fail(const KernelEntry& e, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(e.symbol, fmt, ap);
  va_end(ap);
}
inline void fail_plain(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail("test", fmt, ap);
  va_end(ap);
}
inline int report() {
  std::printf("%lld checks, %d failures\n", checks(), failures());
  std::printf("%s\n", failures() ? "1 failed" : "all passed");
  return failures() ? 1 : 0;
}

inline uint32_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

#define CHECK_BYTES(e, ref, got, n, ...)                                               \
  do {                                                                                 \
    ++checks();                                                                        \
    for (size_t i_ = 0; i_ < (n); ++i_)                                                \
      if ((ref)[i_] != (got)[i_]) {                                                    \
        char m_[256];                                                                  \
        std::snprintf(m_, sizeof m_, __VA_ARGS__);                                     \
        fail(e, "%s: byte %zu ref %d got %d", m_, i_, (int)(ref)[i_], (int)(got)[i_]); \
        break;                                                                         \
      }                                                                                \
  } while (0)

#define CHECK_FLOATS(e, ref, got, n, ...)                                                                        \
  do {                                                                                                           \
    ++checks();                                                                                                  \
    for (size_t i_ = 0; i_ < (n); ++i_)                                                                          \
      if (fbits((ref)[i_]) != fbits((got)[i_])) {                                                                \
        char m_[256];                                                                                            \
        std::snprintf(m_, sizeof m_, __VA_ARGS__);                                                               \
        fail(e, "%s: elem %zu ref %.9g (0x%08x) got %.9g (0x%08x)", m_, i_, (double)(ref)[i_], fbits((ref)[i_]), \
             (double)(got)[i_], fbits((got)[i_]));                                                               \
        break;                                                                                                   \
      }                                                                                                          \
  } while (0)

// Scales from tiny (denormal reciprocal) to large, chosen by a seed.
inline float pick_scale(size_t seed) {
  static const float s[] = {1.0f,  0.5f,   0.1f,     0.0078125f, 3.0f,  0.013f,
                            1e-3f, 1e-20f, 2.5e-38f, 1e-40f,     7e30f, 0.3333333f};
  return s[seed % (sizeof s / sizeof s[0])];
}

inline int32_t pick_zp(const QRange& r, size_t seed) {
  const int32_t span = r.qmax - r.qmin + 1;
  switch (seed % 4) {
    case 0: return r.qmin;
    case 1: return r.qmax;
    case 2: return r.qmin < 0 ? 0 : (r.qmin + r.qmax + 1) / 2;
    default: return r.qmin + static_cast<int32_t>((seed * 2654435761u) % span);
  }
}

// Values that stress rounding and saturation: exact .5 multiples of the scale, +-Inf, NaN, -0,
// denormals, huge, values around the range edges, and random normals.
inline std::vector<float> adversarial(size_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 60.0f);
  std::vector<float> x(n);
  const float specials[] = {0.0f,          -0.0f,          INFINITY,    -INFINITY,  NAN,         -NAN,        1e-45f,
                            -1e-45f,       1e-39f,         -1e-39f,     3.4e38f,    -3.4e38f,    1e30f,       -1e30f,
                            2147483648.0f, -2147483904.0f, 16777217.0f, 8388608.5f, 0.49999997f, -0.49999997f};
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = rng() % 8;
    if (k == 0)
      x[i] = specials[rng() % (sizeof specials / sizeof specials[0])];
    else if (k <= 2)
      x[i] = (static_cast<float>(static_cast<int>(rng() % 600) - 300) + 0.5f) * scale;  // ties
    else if (k == 3)
      x[i] = static_cast<float>(static_cast<int>(rng() % 600) - 300) * scale;  // exact codes
    else
      x[i] = nd(rng) * scale;
  }
  return x;
}

void run_layout_tests();

// Test registry: a test file adds its suites with `static TestSuite s("name", fn);` and main runs
// them all. Kernel tests call note_exercised(entry) for each (op, path) they run.
struct TestSuite {
  TestSuite(const char* name, void (*fn)());
};
void note_exercised(const KernelEntry& e);

// Runs fn(entry) for each usable non-scalar path of op, noting each as exercised.
template <class Fn>
void for_paths(Op op, Fn&& fn) {
  for (const KernelEntry& e : kernel_list()) {
    if (e.op != op || e.isa == Isa::scalar || !isa_supported(e.isa)) continue;
    note_exercised(e);
    fn(e);
  }
}

// The names of the usable paths, scalar first (for set_isa).
inline std::vector<std::string> usable_paths() {
  std::vector<std::string> paths = {"scalar"};
  for (int i = 0; i < static_cast<int>(Isa::count); ++i)
    if (isa_supported(static_cast<Isa>(i)) && static_cast<Isa>(i) != Isa::scalar)
      paths.push_back(isa_name(static_cast<Isa>(i)));
  return paths;
}

}  // namespace qk
