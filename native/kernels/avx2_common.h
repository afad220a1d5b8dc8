// Helpers shared by the *_avx2.cc kernels (included only from files compiled with AVX2 flags).
#pragma once
#include "x86_common.h"

namespace qk {
namespace avx2 {

QK_X86_INLINE __m256i lane_mask(size_t m) {  // lanes [0, m) all ones, m <= 8
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x86::kLaneMask + 8 - m));
}

// Stores lanes [0, m) of v, m < 8, in pieces of 4, 2 and 1 floats (AMD's vmaskmovps store is
// slow).
QK_X86_INLINE void store_partial_ps(float* p, __m256 v, size_t m) {
  __m128 h = _mm256_castps256_ps128(v);
  if (m & 4) {
    _mm_storeu_ps(p, h);
    h = _mm256_extractf128_ps(v, 1);
    p += 4;
  }
  if (m & 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), h);
    h = _mm_movehl_ps(h, h);
    p += 2;
  }
  if (m & 1) _mm_store_ss(p, h);
}

}  // namespace avx2
}  // namespace qk
