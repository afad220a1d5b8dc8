// Shared helpers for the x86-64 kernels (native/kernels/*_avx2.cc, *_avx512.cc).
// ISA-free on purpose: it includes <immintrin.h> but uses no intrinsic, so it can be included from
// files compiled with any set of ISA flags. Everything is in an unnamed namespace: each kernel file gets its own
// copy, so no inline function compiled with -mavx512f can be picked by the linker for a caller
// compiled with fewer flags (the usual ODR trap of per-file ISA flags).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

// The intrinsics header, included here for every kernel file. GCC 12.2 warns
// -W(maybe-)uninitialized inside its own AVX-512 intrinsics (the `__Y = __Y` of the
// _mm*_undefined_* helpers, GCC PR105593, fixed in 12.3); the warning points into the header, so
// it is silenced for the header only. Including it needs no ISA flags (GCC guards each function
// with a target pragma); which functions may be used is up to each file's flags.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif

#include "../core/kernel_types.h"

#define QK_X86_INLINE inline __attribute__((always_inline))

namespace qk {
namespace x86 {
namespace {

QK_X86_INLINE uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// True when x / scale == x * (1.0f / scale) for every float x, so the division of the ONNX mode
// can be a multiplication: scale is +-2^e with e in [-126, 127] (normal, zero mantissa). Then
// 1/scale = 2^-e is exact (2^-127 is a denormal, still exact) and both forms are one rounding of
// the same real number x * 2^-e, including overflow, underflow to denormals, Inf and NaN.
QK_X86_INLINE bool div_is_exact_mul(float scale) {
  const uint32_t b = bits_of(scale);
  const uint32_t e = (b >> 23) & 0xffu;
  return (b & 0x7fffffu) == 0 && e != 0 && e != 0xffu;
}

QK_X86_INLINE uint32_t popcount32(uint32_t v) {
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  v = (v + (v >> 4)) & 0x0f0f0f0fu;
  return (v * 0x01010101u) >> 24;
}

// Scalar fold of one value into min/max and the counts, exactly as minmax_*_ref does it
// (v < m ? v : m), without <cmath> (bit tests instead of std::isnan / std::isinf).
QK_X86_INLINE void minmax_one(float v, float* mn, float* mx, MinMaxAcc* acc) {
  const uint32_t a = bits_of(v) & 0x7fffffffu;
  if (a > 0x7f800000u) { ++acc->nan; return; }
  if (a == 0x7f800000u) { ++acc->inf; return; }
  *mn = v < *mn ? v : *mn;
  *mx = v > *mx ? v : *mx;
}

// Below this many bytes written by one call, stores go through the cache; above it, the
// kernels that write much more than they read (dequantize) use non-temporal stores.
constexpr size_t kStreamBytes = size_t{8} << 20;

}  // namespace
}  // namespace x86
}  // namespace qk
