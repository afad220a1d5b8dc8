// Quantize, AVX-512 (F/BW/DQ/VL). Bit-identical to quant_uniform_ref / quant_vec_ref:
//   v = x / scale (or x * (1/scale) with QK_RECIP); NaN -> zp; else clamp(nearbyint(v)) + zp.
// The clamp is done in float before the conversion (rounding commutes with clamping to integer
// bounds), so vcvtps2dq (round to nearest even under the default MXCSR, like nearbyint) never
// sees an out-of-range value; NaN lanes are zeroed with the ordered-compare mask.
// Large calls (bytes read + written >= x86::kStreamBytes) use non-temporal stores.
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "flags.h"

namespace qk {
namespace {

QK_X86_INLINE __mmask16 tail_mask16(size_t rem) {
  return rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
}

// Codes (int32, zero point added) of 16 values; s is the scale (kMul: the reciprocal).
template <bool kMul>
QK_X86_INLINE __m512i code16(__m512 x, __m512 s, __m512 lo, __m512 hi, __m512i zp) {
  const __m512 v = kMul ? _mm512_mul_ps(x, s) : _mm512_div_ps(x, s);
  const __mmask16 ord = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
  const __m512 c = _mm512_maskz_min_ps(ord, _mm512_max_ps(v, lo), hi);  // NaN -> 0
  return _mm512_add_epi32(_mm512_cvtps_epi32(c), zp);
}

template <bool kMul>
struct Uniform {
  __m512 s, lo, hi;
  __m512i z;
  // 64 codes from x[i, i + 64), as bytes in order.
  QK_X86_INLINE __m512i block64(const float* x, size_t i) const {
    const __m128i b0 = bytes16(x + i), b1 = bytes16(x + i + 16);
    const __m128i b2 = bytes16(x + i + 32), b3 = bytes16(x + i + 48);
    const __m256i b01 = _mm256_inserti128_si256(_mm256_castsi128_si256(b0), b1, 1);
    const __m256i b23 = _mm256_inserti128_si256(_mm256_castsi128_si256(b2), b3, 1);
    return _mm512_inserti64x4(_mm512_castsi256_si512(b01), b23, 1);
  }
  // Codes of the first 16 values at x (vpmovdb: the low byte of each).
  QK_X86_INLINE __m128i bytes16(const float* x) const {
    return _mm512_cvtepi32_epi8(code16<kMul>(_mm512_loadu_ps(x), s, lo, hi, z));
  }
  QK_X86_INLINE __m128i bytes16(const float* x, __mmask16 k) const {  // masked-off lanes: 0
    return _mm512_cvtepi32_epi8(code16<kMul>(_mm512_maskz_loadu_ps(k, x), s, lo, hi, z));
  }
};

template <bool kMul>
void quant_uniform_impl(const float* x, size_t n, float s_or_inv, int32_t zp, const QRange& r, uint8_t* out) {
  const Uniform<kMul> u{_mm512_set1_ps(s_or_inv), _mm512_set1_ps(static_cast<float>(r.qmin - zp)),
                        _mm512_set1_ps(static_cast<float>(r.qmax - zp)), _mm512_set1_epi32(zp)};
  size_t i = 0;
  if (n * (sizeof(float) + 1) >= x86::kStreamBytes) {
    // One unaligned block (n is large), then aligned streaming stores from the first 64-byte
    // boundary of out; the overlap is written twice with equal values.
    _mm512_storeu_si512(out, u.block64(x, 0));
    i = (64 - (reinterpret_cast<uintptr_t>(out) & 63)) & 63;
    for (; i + 64 <= n; i += 64) _mm512_stream_si512(reinterpret_cast<__m512i*>(out + i), u.block64(x, i));
    _mm_sfence();
  } else {
    for (; i + 64 <= n; i += 64) {  // four 16-byte stores: a little faster in cache
      const __m128i b0 = u.bytes16(x + i), b1 = u.bytes16(x + i + 16);
      const __m128i b2 = u.bytes16(x + i + 32), b3 = u.bytes16(x + i + 48);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), b0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 16), b1);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 32), b2);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 48), b3);
    }
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask16(n - i);
    _mm_mask_storeu_epi8(out + i, k, u.bytes16(x + i, k));
  }
}

// Per-element scale / zero point: lo / hi are qmin - zp / qmax - zp per lane (int32 then float,
// as the reference computes them); with QK_RECIP the reciprocal is 1.0f / scale per lane.
template <bool kRecip>
QK_X86_INLINE __m512i code16_vec(__m512 x, __m512 s, __m512i zp, __m512i qmin, __m512i qmax) {
  const __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(qmin, zp));
  const __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(qmax, zp));
  const __m512 v = kRecip ? _mm512_mul_ps(x, _mm512_div_ps(_mm512_set1_ps(1.0f), s)) : _mm512_div_ps(x, s);
  const __mmask16 ord = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
  const __m512 c = _mm512_maskz_min_ps(ord, _mm512_max_ps(v, lo), hi);
  return _mm512_add_epi32(_mm512_cvtps_epi32(c), zp);
}

template <bool kRecip>
void quant_vec_impl(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, uint8_t* out) {
  const __m512i qmin = _mm512_set1_epi32(r.qmin);
  const __m512i qmax = _mm512_set1_epi32(r.qmax);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(x86::ahead(x + i, x86::kPrefetchAhead), _MM_HINT_T1);
    _mm_prefetch(x86::ahead(x + i, x86::kPrefetchAhead + 16), _MM_HINT_T1);
    const __m512i q0 =
        code16_vec<kRecip>(_mm512_loadu_ps(x + i), _mm512_loadu_ps(scale + i), _mm512_loadu_si512(zp + i), qmin, qmax);
    const __m512i q1 = code16_vec<kRecip>(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(scale + i + 16),
                                          _mm512_loadu_si512(zp + i + 16), qmin, qmax);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 16), _mm512_cvtepi32_epi8(q1));
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask16(n - i);
    // Masked-off lanes load 0: 0 / 0 there is a quiet NaN, never stored.
    const __m512i q = code16_vec<kRecip>(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, scale + i),
                                         _mm512_maskz_loadu_epi32(k, zp + i), qmin, qmax);
    _mm_mask_storeu_epi8(out + i, k, _mm512_cvtepi32_epi8(q));
  }
}

}  // namespace

void quant_uniform_avx512(const float* x, size_t n, float scale, int32_t zp, const QRange& r, uint8_t* out) {
  const bool mul = (r.flags & QK_RECIP) || x86::div_is_exact_mul(scale);
  with_flags([&](auto m) { quant_uniform_impl<decltype(m)::value>(x, n, m ? 1.0f / scale : scale, zp, r, out); }, mul);
}

void quant_vec_avx512(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, uint8_t* out) {
  with_flags([&](auto recip) { quant_vec_impl<decltype(recip)::value>(x, n, scale, zp, r, out); }, r.flags & QK_RECIP);
}

}  // namespace qk
