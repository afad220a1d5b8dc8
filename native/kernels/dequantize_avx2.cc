// Dequantize, AVX2. Bit-identical to dequant_uniform_ref / dequant_vec_ref:
//   out = float(code - zp) * scale, code sign-extended from the byte when is_signed.
// One multiply, no FMA. Blocks of 32, then of 8, then one block of < 8 (partial loads/stores).
// Large calls (bytes read + written >= x86::kStreamBytes) use non-temporal stores.
#include "avx2_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "flags.h"

namespace qk {
namespace {

using avx2::lane_mask;
using avx2::store_partial_ps;

template <bool kSigned>
QK_X86_INLINE __m256i widen8(__m128i b) {
  return kSigned ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
}

QK_X86_INLINE __m128i load8(const uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }

QK_X86_INLINE __m128i load_partial(const uint8_t* p, size_t m) {  // m < 8
  return _mm_cvtsi64_si128(static_cast<long long>(x86::load_bytes(p, m)));
}

template <bool kSigned>
QK_X86_INLINE __m256 deq8(__m128i b, __m256i zp, __m256 s) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen8<kSigned>(b), zp)), s);
}

template <bool kStream>
QK_X86_INLINE void store8f(float* p, __m256 v) {
  if (kStream)
    _mm256_stream_ps(p, v);
  else
    _mm256_storeu_ps(p, v);
}

template <bool kSigned, bool kStream>
QK_X86_INLINE void deq_block(const uint8_t* q, __m256 s, __m256i z, float* out) {
  const __m256 f0 = deq8<kSigned>(load8(q), z, s), f1 = deq8<kSigned>(load8(q + 8), z, s);
  const __m256 f2 = deq8<kSigned>(load8(q + 16), z, s), f3 = deq8<kSigned>(load8(q + 24), z, s);
  store8f<kStream>(out, f0);
  store8f<kStream>(out + 8, f1);
  store8f<kStream>(out + 16, f2);
  store8f<kStream>(out + 24, f3);
}

template <bool kSigned>
void dequant_uniform_impl(const uint8_t* q, size_t n, float scale, int32_t zp, float* out) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i z = _mm256_set1_epi32(zp);
  size_t i = 0;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out);
  if (n * (1 + sizeof(float)) >= x86::kStreamBytes && (addr & 3) == 0) {
    // One unaligned block (n is large, so all 32 elements exist), then aligned streaming stores
    // from the first 32-byte boundary of out; the overlap is written twice with equal values.
    const size_t head = ((32 - (addr & 31)) & 31) / sizeof(float);
    if (head) {
      deq_block<kSigned, false>(q, s, z, out);
      i = head;
    }
    for (; i + 32 <= n; i += 32) deq_block<kSigned, true>(q + i, s, z, out + i);
    _mm_sfence();
  } else {
    for (; i + 32 <= n; i += 32) deq_block<kSigned, false>(q + i, s, z, out + i);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, deq8<kSigned>(load8(q + i), z, s));
  if (i < n) {
    const size_t m = n - i;
    store_partial_ps(out + i, deq8<kSigned>(load_partial(q + i, m), z, s), m);
  }
}

template <bool kSigned>
QK_X86_INLINE __m256 deq8_vec(const uint8_t* q, const float* s, const int32_t* zp) {
  return deq8<kSigned>(load8(q), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp)), _mm256_loadu_ps(s));
}

template <bool kSigned>
void dequant_vec_impl(const uint8_t* q, size_t n, const float* scale, const int32_t* zp, float* out) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(x86::ahead(out + i, x86::kPrefetchAhead), _MM_HINT_T1);
    _mm_prefetch(x86::ahead(out + i, x86::kPrefetchAhead + 16), _MM_HINT_T1);
    const __m256 f0 = deq8_vec<kSigned>(q + i, scale + i, zp + i);
    const __m256 f1 = deq8_vec<kSigned>(q + i + 8, scale + i + 8, zp + i + 8);
    const __m256 f2 = deq8_vec<kSigned>(q + i + 16, scale + i + 16, zp + i + 16);
    const __m256 f3 = deq8_vec<kSigned>(q + i + 24, scale + i + 24, zp + i + 24);
    _mm256_storeu_ps(out + i, f0);
    _mm256_storeu_ps(out + i + 8, f1);
    _mm256_storeu_ps(out + i + 16, f2);
    _mm256_storeu_ps(out + i + 24, f3);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, deq8_vec<kSigned>(q + i, scale + i, zp + i));
  if (i < n) {
    const size_t m = n - i;
    const __m256i k = lane_mask(m);
    const __m256 f =
        deq8<kSigned>(load_partial(q + i, m), _mm256_maskload_epi32(zp + i, k), _mm256_maskload_ps(scale + i, k));
    store_partial_ps(out + i, f, m);
  }
}

}  // namespace

void dequant_uniform_avx2(const uint8_t* q, size_t n, bool is_signed, float scale, int32_t zp, float* out) {
  with_flags([&](auto s) { dequant_uniform_impl<decltype(s)::value>(q, n, scale, zp, out); }, is_signed);
}

void dequant_vec_avx2(const uint8_t* q, size_t n, bool is_signed, const float* scale, const int32_t* zp, float* out) {
  with_flags([&](auto s) { dequant_vec_impl<decltype(s)::value>(q, n, scale, zp, out); }, is_signed);
}

}  // namespace qk
