// Dequantize, AVX-512 (F/BW/DQ/VL). Bit-identical to dequant_uniform_ref / dequant_vec_ref:
//   out = float(code - zp) * scale, code sign-extended from the byte when is_signed.
// int32 -> float is exact for these magnitudes and rounds under MXCSR like the scalar
// conversion otherwise; one multiply, no FMA.
// Large calls (bytes read + written >= x86::kStreamBytes) use non-temporal stores: dequantize
// writes 4 bytes per byte read, and streaming saves the read-for-ownership of every output line.
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "flags.h"

namespace qk {
namespace {

QK_X86_INLINE __mmask16 tail_mask16(size_t rem) {
  return rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
}

template <bool kSigned>
QK_X86_INLINE __m512i widen16(__m128i b) {
  return kSigned ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}

template <bool kSigned>
QK_X86_INLINE __m512 deq16(__m128i b, __m512i zp, __m512 s) {
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(widen16<kSigned>(b), zp)), s);
}

QK_X86_INLINE __m128i load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

template <bool kStream>
QK_X86_INLINE void store16f(float* p, __m512 v) {
  if (kStream)
    _mm512_stream_ps(p, v);
  else
    _mm512_storeu_ps(p, v);
}

template <bool kSigned, bool kStream>
size_t dequant_uniform_body(const uint8_t* q, size_t i, size_t n, __m512 s, __m512i z, float* out) {
  for (; i + 64 <= n; i += 64) {
    const __m512 f0 = deq16<kSigned>(load16(q + i), z, s);
    const __m512 f1 = deq16<kSigned>(load16(q + i + 16), z, s);
    const __m512 f2 = deq16<kSigned>(load16(q + i + 32), z, s);
    const __m512 f3 = deq16<kSigned>(load16(q + i + 48), z, s);
    store16f<kStream>(out + i, f0);
    store16f<kStream>(out + i + 16, f1);
    store16f<kStream>(out + i + 32, f2);
    store16f<kStream>(out + i + 48, f3);
  }
  if (kStream) _mm_sfence();
  return i;
}

template <bool kSigned>
void dequant_uniform_impl(const uint8_t* q, size_t n, float scale, int32_t zp, float* out) {
  const __m512 s = _mm512_set1_ps(scale);
  const __m512i z = _mm512_set1_epi32(zp);
  size_t i = 0;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out);
  if (n * (1 + sizeof(float)) >= x86::kStreamBytes && (addr & 3) == 0) {
    // Head up to a 64-byte boundary of out, then aligned streaming stores.
    const size_t head = ((64 - (addr & 63)) & 63) / sizeof(float);
    if (head) {
      const __mmask16 k = tail_mask16(head);
      _mm512_mask_storeu_ps(out, k, deq16<kSigned>(_mm_maskz_loadu_epi8(k, q), z, s));
      i = head;
    }
    i = dequant_uniform_body<kSigned, true>(q, i, n, s, z, out);
  } else {
    i = dequant_uniform_body<kSigned, false>(q, i, n, s, z, out);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask16(n - i);
    _mm512_mask_storeu_ps(out + i, k, deq16<kSigned>(_mm_maskz_loadu_epi8(k, q + i), z, s));
  }
}

template <bool kSigned>
QK_X86_INLINE __m512 deq16_vec(const uint8_t* q, const float* scale, const int32_t* zp) {
  return deq16<kSigned>(load16(q), _mm512_loadu_si512(zp), _mm512_loadu_ps(scale));
}

template <bool kSigned>
void dequant_vec_impl(const uint8_t* q, size_t n, const float* scale, const int32_t* zp, float* out) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(x86::ahead(out + i, x86::kPrefetchAhead), _MM_HINT_T1);
    _mm_prefetch(x86::ahead(out + i, x86::kPrefetchAhead + 16), _MM_HINT_T1);
    const __m512 f0 = deq16_vec<kSigned>(q + i, scale + i, zp + i);
    const __m512 f1 = deq16_vec<kSigned>(q + i + 16, scale + i + 16, zp + i + 16);
    _mm512_storeu_ps(out + i, f0);
    _mm512_storeu_ps(out + i + 16, f1);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask16(n - i);
    const __m512 f = deq16<kSigned>(_mm_maskz_loadu_epi8(k, q + i), _mm512_maskz_loadu_epi32(k, zp + i),
                                    _mm512_maskz_loadu_ps(k, scale + i));
    _mm512_mask_storeu_ps(out + i, k, f);
  }
}

}  // namespace

void dequant_uniform_avx512(const uint8_t* q, size_t n, bool is_signed, float scale, int32_t zp, float* out) {
  with_flags([&](auto s) { dequant_uniform_impl<decltype(s)::value>(q, n, scale, zp, out); }, is_signed);
}

void dequant_vec_avx512(const uint8_t* q, size_t n, bool is_signed, const float* scale, const int32_t* zp, float* out) {
  with_flags([&](auto s) { dequant_vec_impl<decltype(s)::value>(q, n, scale, zp, out); }, is_signed);
}

}  // namespace qk
