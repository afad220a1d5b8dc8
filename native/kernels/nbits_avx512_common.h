// AVX-512 helpers shared by the MatMulNBits kernels (nbits_avx512.cc, nbits_avx512vnni.cc): the
// zero point of a 16-column panel block and the bias / ReLU / masked-tail store of one output row.
#pragma once

#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"

namespace qk {
namespace {

QK_X86_INLINE __m512 zp_vec(const NBitsArgs& g, const uint8_t* meta) {
  if (!g.asym) return _mm512_set1_ps(static_cast<float>(1u << (g.bits - 1)));
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(meta + 64))));
}

QK_X86_INLINE void store_row(const NBitsArgs& g, size_t i, size_t p, __m512 acc) {
  const size_t col = p * kNBitsPanel;
  if (col >= g.n) return;
  __m512 y = _mm512_add_ps(acc, _mm512_loadu_ps(g.bias + col));
  if (g.relu) y = _mm512_max_ps(y, _mm512_setzero_ps());
  float* dst = g.y + i * g.ldy + col;
  if (col + kNBitsPanel <= g.n)
    _mm512_storeu_ps(dst, y);
  else
    _mm512_mask_storeu_ps(dst, static_cast<__mmask16>((1u << (g.n - col)) - 1), y);
}

}  // namespace
}  // namespace qk
