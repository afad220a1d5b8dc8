// Dequantize, AVX2. Bit-identical to dequant_uniform_ref / dequant_vec_ref:
//   out = float(code - zp) * scale, code sign-extended from the byte when is_signed.
// One multiply, no FMA. Tails (< 32 elements) run the same block on a padded copy.
// Large outputs (>= x86::kStreamBytes) use non-temporal stores (see dequantize_avx512.cc).
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"

namespace qk {
namespace {

template <bool kSigned>
QK_X86_INLINE __m256i widen8(const uint8_t* p) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return kSigned ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
}

template <bool kSigned>
QK_X86_INLINE __m256 deq8(const uint8_t* p, __m256i zp, __m256 s) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen8<kSigned>(p), zp)), s);
}

template <bool kStream>
QK_X86_INLINE void store8f(float* p, __m256 v) {
  if (kStream) _mm256_stream_ps(p, v);
  else _mm256_storeu_ps(p, v);
}

template <bool kSigned, bool kStream>
QK_X86_INLINE void deq_block(const uint8_t* q, __m256 s, __m256i z, float* out) {
  const __m256 f0 = deq8<kSigned>(q, z, s), f1 = deq8<kSigned>(q + 8, z, s);
  const __m256 f2 = deq8<kSigned>(q + 16, z, s), f3 = deq8<kSigned>(q + 24, z, s);
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
  if (n * sizeof(float) >= x86::kStreamBytes && (addr & 3) == 0) {
    // Scalar-free head: one unaligned block, then restart at the first 32-byte boundary.
    const size_t head = ((32 - (addr & 31)) & 31) / sizeof(float);
    if (head) {
      deq_block<kSigned, false>(q, s, z, out);  // n is large: 32 elements are in range
      i = head;
    }
    for (; i + 32 <= n; i += 32) deq_block<kSigned, true>(q + i, s, z, out + i);
    _mm_sfence();
  } else {
    for (; i + 32 <= n; i += 32) deq_block<kSigned, false>(q + i, s, z, out + i);
  }
  if (i < n) {
    const size_t m = n - i;
    alignas(32) uint8_t qb[32] = {};
    alignas(32) float ob[32];
    std::memcpy(qb, q + i, m);
    deq_block<kSigned, false>(qb, s, z, ob);
    std::memcpy(out + i, ob, m * sizeof(float));
  }
}

template <bool kSigned>
QK_X86_INLINE __m256 deq8_vec(const uint8_t* q, const float* s, const int32_t* zp) {
  return deq8<kSigned>(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp)),
                       _mm256_loadu_ps(s));
}

template <bool kSigned>
QK_X86_INLINE void deq_vec_block(const uint8_t* q, const float* s, const int32_t* zp, float* out) {
  const __m256 f0 = deq8_vec<kSigned>(q, s, zp), f1 = deq8_vec<kSigned>(q + 8, s + 8, zp + 8);
  const __m256 f2 = deq8_vec<kSigned>(q + 16, s + 16, zp + 16);
  const __m256 f3 = deq8_vec<kSigned>(q + 24, s + 24, zp + 24);
  _mm256_storeu_ps(out, f0);
  _mm256_storeu_ps(out + 8, f1);
  _mm256_storeu_ps(out + 16, f2);
  _mm256_storeu_ps(out + 24, f3);
}

template <bool kSigned>
void dequant_vec_impl(const uint8_t* q, size_t n, const float* scale, const int32_t* zp,
                      float* out) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) deq_vec_block<kSigned>(q + i, scale + i, zp + i, out + i);
  if (i < n) {
    const size_t m = n - i;
    alignas(32) uint8_t qb[32] = {};
    alignas(32) float sb[32] = {};
    alignas(32) int32_t zb[32] = {};
    alignas(32) float ob[32];
    std::memcpy(qb, q + i, m);
    std::memcpy(sb, scale + i, m * sizeof(float));
    std::memcpy(zb, zp + i, m * sizeof(int32_t));
    deq_vec_block<kSigned>(qb, sb, zb, ob);
    std::memcpy(out + i, ob, m * sizeof(float));
  }
}

}  // namespace

void dequant_uniform_avx2(const uint8_t* q, size_t n, bool is_signed, float scale, int32_t zp,
                          float* out) {
  if (is_signed) dequant_uniform_impl<true>(q, n, scale, zp, out);
  else dequant_uniform_impl<false>(q, n, scale, zp, out);
}

void dequant_vec_avx2(const uint8_t* q, size_t n, bool is_signed, const float* scale,
                      const int32_t* zp, float* out) {
  if (is_signed) dequant_vec_impl<true>(q, n, scale, zp, out);
  else dequant_vec_impl<false>(q, n, scale, zp, out);
}

}  // namespace qk
