// Shared helpers for the x86-64 kernels (native/kernels/*_avx2.cc, *_avx512.cc).
// ISA-free on purpose: it includes <immintrin.h> but uses no intrinsic, so it can be included
// from files compiled with any set of ISA flags. Everything is in an unnamed namespace: each
// kernel file gets its own copy, so no inline function compiled with -mavx512f can be picked by
// the linker for a caller compiled with fewer flags (the usual ODR trap of per-file ISA flags).
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
// can be a multiplication: scale is +-2^k with k in [-126, 126] (normal, zero mantissa). Then
// 1/scale = 2^-k is exact and normal, and both forms are one rounding of the same real number
// x * 2^-k, including overflow, underflow to denormals, Inf and NaN. (k = 127 is left out: its
// reciprocal is a denormal, which DAZ would read as 0 where the division would not.)
QK_X86_INLINE bool div_is_exact_mul(float scale) {
  const uint32_t b = bits_of(scale);
  const uint32_t e = (b >> 23) & 0xffu;
  return (b & 0x7fffffu) == 0 && e >= 1 && e <= 253;
}

QK_X86_INLINE uint32_t popcount32(uint32_t v) {
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  v = (v + (v >> 4)) & 0x0f0f0f0fu;
  return (v * 0x01010101u) >> 24;
}

// AVX2 tails: lanes [0, m) of 8 are loaded with vmaskmov (which never faults on the masked-off
// lanes) from a mask read at kLaneMask + 8 - m; byte data moves through these helpers, which never
// touch memory past m bytes.
alignas(32) constexpr int32_t kLaneMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

// The first m < 8 bytes at p, little-endian, zero-extended.
QK_X86_INLINE uint64_t load_bytes(const uint8_t* p, size_t m) {
  uint64_t v = 0;
  size_t o = 0;
  if (m & 4) {
    uint32_t t;
    std::memcpy(&t, p, 4);
    v = t;
    o = 4;
  }
  if (m & 2) {
    uint16_t t;
    std::memcpy(&t, p + o, 2);
    v |= static_cast<uint64_t>(t) << (8 * o);
    o += 2;
  }
  if (m & 1) v |= static_cast<uint64_t>(p[o]) << (8 * o);
  return v;
}

// Writes the low m < 8 bytes of v to p.
QK_X86_INLINE void store_bytes(uint8_t* p, uint64_t v, size_t m) {
  if (m & 4) {
    const uint32_t t = static_cast<uint32_t>(v);
    std::memcpy(p, &t, 4);
    p += 4;
    v >>= 32;
  }
  if (m & 2) {
    const uint16_t t = static_cast<uint16_t>(v);
    std::memcpy(p, &t, 2);
    p += 2;
    v >>= 16;
  }
  if (m & 1) *p = static_cast<uint8_t>(v);
}

// Scalar fold of one value into min/max and the counts, exactly as minmax_*_ref does it
// (v < m ? v : m), without <cmath> (bit tests instead of std::isnan / std::isinf).
QK_X86_INLINE void minmax_one(float v, float* mn, float* mx, MinMaxAcc* acc) {
  const uint32_t a = bits_of(v) & 0x7fffffffu;
  if (a > 0x7f800000u) {
    ++acc->nan;
    return;
  }
  if (a == 0x7f800000u) {
    ++acc->inf;
    return;
  }
  *mn = v < *mn ? v : *mn;
  *mx = v > *mx ? v : *mx;
}

// Software prefetch distance (elements) into L2 for the per-element (vec) kernels, which run one
// call per row of a per-channel tensor. Their scale and zero-point tables compete with the data
// streams for L1 and the hardware prefetchers fall behind once the tables take much of L1
// (measured on Zen4, one call per row: quant_vec at 4096 channels 12 -> 19 GB/s, 1024 channels
// 18 -> 22; dequant_vec / fakequant_vec, prefetching the output lines they will write, +15-20%).
// A prefetch never faults, so running ahead past n (into the next row) is harmless; the
// address is formed as an integer to stay clear of out-of-bounds pointer arithmetic.
constexpr size_t kPrefetchAhead = 4096;

QK_X86_INLINE const char* ahead(const float* p, size_t elems) {
  return reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + elems * sizeof(float));
}

// From this many bytes read + written by one call, the uniform quantize / dequantize /
// fake-quantize kernels use non-temporal stores for their main output: a working set that large
// cannot stay in a last-level cache anyway (the first outputs are evicted by the last inputs),
// and streaming saves the read-for-ownership of every output line. Measured on Zen4 (32 MiB L3),
// one thread, 16M elements: quantize 25 -> 32 GB/s, dequantize 24 -> 34, fake-quantize 25 -> 33;
// below ~25 MiB cached stores can win (up to 2x for dequantize, whose output then stays in L3).
// Tensor-level calls split across threads stay below it.
constexpr size_t kStreamBytes = size_t{32} << 20;

}  // namespace
}  // namespace x86
}  // namespace qk
