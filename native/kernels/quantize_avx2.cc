// Quantize, AVX2. Bit-identical to quant_uniform_ref / quant_vec_ref:
//   v = x / scale (or x * (1/scale) with QK_RECIP); NaN -> zp; else clamp(nearbyint(v)) + zp.
// The clamp is done in float before the conversion (rounding commutes with clamping to integer
// bounds), so vcvtps2dq (round to nearest even under the default MXCSR, like nearbyint) never
// sees an out-of-range value; NaN lanes are zeroed with the ordered-compare mask (vmaxps would
// otherwise turn them into lo). Codes are truncated to their low byte (and 0xff + unsigned
// packs), which is exactly static_cast<uint8_t> for any int32.
// Blocks of 32, then of 8, then one masked block of < 8 (vmaskmov loads, partial byte stores).
// Large calls (bytes read + written >= x86::kStreamBytes) use non-temporal stores.
#include "avx2_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "flags.h"

namespace qk {
namespace {

using avx2::lane_mask;
using avx2::store_partial_ps;

template <bool kMul>
QK_X86_INLINE __m256i code8(__m256 x, __m256 s, __m256 lo, __m256 hi, __m256i zp) {
  const __m256 v = kMul ? _mm256_mul_ps(x, s) : _mm256_div_ps(x, s);
  const __m256 ord = _mm256_cmp_ps(v, v, _CMP_ORD_Q);
  const __m256 c = _mm256_and_ps(ord, _mm256_min_ps(_mm256_max_ps(v, lo), hi));  // NaN -> 0
  return _mm256_add_epi32(_mm256_cvtps_epi32(c), zp);
}

// Low bytes of 4 x 8 int32, in order.
QK_X86_INLINE __m256i pack_low_bytes(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ff = _mm256_set1_epi32(0xff);
  const __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, ff), _mm256_and_si256(b, ff));
  const __m256i cd = _mm256_packus_epi32(_mm256_and_si256(c, ff), _mm256_and_si256(d, ff));
  const __m256i abcd = _mm256_packus_epi16(ab, cd);  // lane 0: a0-3 b0-3 c0-3 d0-3, lane 1: 4-7
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Low bytes of 8 int32, in the low 8 bytes.
QK_X86_INLINE __m128i pack_low_bytes8(__m256i a) {
  const __m256i t = _mm256_and_si256(a, _mm256_set1_epi32(0xff));
  const __m256i w = _mm256_packus_epi16(_mm256_packus_epi32(t, t), t);  // lane k: bytes 4k..4k+3
  return _mm_unpacklo_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

QK_X86_INLINE void store8(uint8_t* out, __m256i codes) {
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), pack_low_bytes8(codes));
}

QK_X86_INLINE void store_partial(uint8_t* out, __m256i codes, size_t m) {
  x86::store_bytes(out, static_cast<uint64_t>(_mm_cvtsi128_si64(pack_low_bytes8(codes))), m);
}

template <bool kMul>
void quant_uniform_impl(const float* x, size_t n, float s_or_inv, int32_t zp, const QRange& r, uint8_t* out) {
  const __m256 s = _mm256_set1_ps(s_or_inv);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(r.qmin - zp));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(r.qmax - zp));
  const __m256i z = _mm256_set1_epi32(zp);
  // 32 codes from x[i, i + 32), as bytes in order.
  auto block32 = [&](size_t i) {
    const __m256i q0 = code8<kMul>(_mm256_loadu_ps(x + i), s, lo, hi, z);
    const __m256i q1 = code8<kMul>(_mm256_loadu_ps(x + i + 8), s, lo, hi, z);
    const __m256i q2 = code8<kMul>(_mm256_loadu_ps(x + i + 16), s, lo, hi, z);
    const __m256i q3 = code8<kMul>(_mm256_loadu_ps(x + i + 24), s, lo, hi, z);
    return pack_low_bytes(q0, q1, q2, q3);
  };
  size_t i = 0;
  if (n * (sizeof(float) + 1) >= x86::kStreamBytes) {
    // One unaligned block (n is large), then aligned streaming stores from the first 32-byte
    // boundary of out; the overlap is written twice with equal values.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), block32(0));
    i = (32 - (reinterpret_cast<uintptr_t>(out) & 31)) & 31;
    for (; i + 32 <= n; i += 32) _mm256_stream_si256(reinterpret_cast<__m256i*>(out + i), block32(i));
    _mm_sfence();
  } else {
    for (; i + 32 <= n; i += 32) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), block32(i));
  }
  for (; i + 8 <= n; i += 8) store8(out + i, code8<kMul>(_mm256_loadu_ps(x + i), s, lo, hi, z));
  if (i < n) {
    const size_t m = n - i;
    const __m256 xv = _mm256_maskload_ps(x + i, lane_mask(m));  // masked-off lanes: 0
    store_partial(out + i, code8<kMul>(xv, s, lo, hi, z), m);
  }
}

// Per-element scale / zero point: lo / hi are qmin - zp / qmax - zp per lane (int32 then float,
// as the reference computes them); with QK_RECIP the reciprocal is 1.0f / scale per lane.
template <bool kRecip>
QK_X86_INLINE __m256i code8_vec(__m256 x, __m256 s, __m256i zp, __m256i qmin, __m256i qmax) {
  const __m256 lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(qmin, zp));
  const __m256 hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(qmax, zp));
  const __m256 v = kRecip ? _mm256_mul_ps(x, _mm256_div_ps(_mm256_set1_ps(1.0f), s)) : _mm256_div_ps(x, s);
  const __m256 ord = _mm256_cmp_ps(v, v, _CMP_ORD_Q);
  const __m256 c = _mm256_and_ps(ord, _mm256_min_ps(_mm256_max_ps(v, lo), hi));
  return _mm256_add_epi32(_mm256_cvtps_epi32(c), zp);
}

template <bool kRecip>
QK_X86_INLINE __m256i code8_vec_at(const float* x, const float* s, const int32_t* zp, __m256i qmin, __m256i qmax) {
  return code8_vec<kRecip>(_mm256_loadu_ps(x), _mm256_loadu_ps(s),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp)), qmin, qmax);
}

template <bool kRecip>
void quant_vec_impl(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, uint8_t* out) {
  const __m256i qmin = _mm256_set1_epi32(r.qmin);
  const __m256i qmax = _mm256_set1_epi32(r.qmax);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(x86::ahead(x + i, x86::kPrefetchAhead), _MM_HINT_T1);
    _mm_prefetch(x86::ahead(x + i, x86::kPrefetchAhead + 16), _MM_HINT_T1);
    const __m256i q0 = code8_vec_at<kRecip>(x + i, scale + i, zp + i, qmin, qmax);
    const __m256i q1 = code8_vec_at<kRecip>(x + i + 8, scale + i + 8, zp + i + 8, qmin, qmax);
    const __m256i q2 = code8_vec_at<kRecip>(x + i + 16, scale + i + 16, zp + i + 16, qmin, qmax);
    const __m256i q3 = code8_vec_at<kRecip>(x + i + 24, scale + i + 24, zp + i + 24, qmin, qmax);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), pack_low_bytes(q0, q1, q2, q3));
  }
  for (; i + 8 <= n; i += 8) store8(out + i, code8_vec_at<kRecip>(x + i, scale + i, zp + i, qmin, qmax));
  if (i < n) {
    const size_t m = n - i;
    const __m256i k = lane_mask(m);
    // Masked-off lanes load 0: 0 / 0 there is a quiet NaN, never stored.
    const __m256i q = code8_vec<kRecip>(_mm256_maskload_ps(x + i, k), _mm256_maskload_ps(scale + i, k),
                                        _mm256_maskload_epi32(zp + i, k), qmin, qmax);
    store_partial(out + i, q, m);
  }
}

}  // namespace

void quant_uniform_avx2(const float* x, size_t n, float scale, int32_t zp, const QRange& r, uint8_t* out) {
  const bool mul = (r.flags & QK_RECIP) || x86::div_is_exact_mul(scale);
  with_flags([&](auto m) { quant_uniform_impl<decltype(m)::value>(x, n, m ? 1.0f / scale : scale, zp, r, out); }, mul);
}

void quant_vec_avx2(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, uint8_t* out) {
  with_flags([&](auto recip) { quant_vec_impl<decltype(recip)::value>(x, n, scale, zp, r, out); }, r.flags & QK_RECIP);
}

}  // namespace qk
