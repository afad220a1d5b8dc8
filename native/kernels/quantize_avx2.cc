// Quantize, AVX2. Bit-identical to quant_uniform_ref / quant_vec_ref:
//   v = x / scale (or x * (1/scale) with QK_RECIP); NaN -> zp; else clamp(nearbyint(v)) + zp.
// The clamp is done in float before the conversion (rounding commutes with clamping to integer
// bounds), so vcvtps2dq (round to nearest even under the default MXCSR, like nearbyint) never
// sees an out-of-range value; NaN lanes are zeroed with the ordered-compare mask (vmaxps would
// otherwise turn them into lo). Codes are truncated to their low byte (and 0xff + unsigned
// packs), which is exactly static_cast<uint8_t> for any int32.
// Tails (< 32 elements) run the same 32-wide block on a zero-padded copy.
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"

namespace qk {
namespace {

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

template <bool kMul>
struct UniformBlock {
  __m256 s, lo, hi;
  __m256i z;
  QK_X86_INLINE void operator()(const float* x, uint8_t* out) const {
    const __m256i q0 = code8<kMul>(_mm256_loadu_ps(x), s, lo, hi, z);
    const __m256i q1 = code8<kMul>(_mm256_loadu_ps(x + 8), s, lo, hi, z);
    const __m256i q2 = code8<kMul>(_mm256_loadu_ps(x + 16), s, lo, hi, z);
    const __m256i q3 = code8<kMul>(_mm256_loadu_ps(x + 24), s, lo, hi, z);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), pack_low_bytes(q0, q1, q2, q3));
  }
};

template <bool kMul>
void quant_uniform_impl(const float* x, size_t n, float s_or_inv, int32_t zp, const QRange& r,
                        uint8_t* out) {
  const UniformBlock<kMul> blk{_mm256_set1_ps(s_or_inv),
                               _mm256_set1_ps(static_cast<float>(r.qmin - zp)),
                               _mm256_set1_ps(static_cast<float>(r.qmax - zp)),
                               _mm256_set1_epi32(zp)};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) blk(x + i, out + i);
  if (i < n) {
    const size_t m = n - i;
    alignas(32) float xb[32] = {};
    alignas(32) uint8_t ob[32];
    std::memcpy(xb, x + i, m * sizeof(float));
    blk(xb, ob);
    std::memcpy(out + i, ob, m);
  }
}

template <bool kRecip>
QK_X86_INLINE __m256i code8_vec(__m256 x, __m256 s, __m256i zp, __m256i qmin, __m256i qmax) {
  const __m256 lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(qmin, zp));
  const __m256 hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(qmax, zp));
  const __m256 v = kRecip ? _mm256_mul_ps(x, _mm256_div_ps(_mm256_set1_ps(1.0f), s))
                          : _mm256_div_ps(x, s);
  const __m256 ord = _mm256_cmp_ps(v, v, _CMP_ORD_Q);
  const __m256 c = _mm256_and_ps(ord, _mm256_min_ps(_mm256_max_ps(v, lo), hi));
  return _mm256_add_epi32(_mm256_cvtps_epi32(c), zp);
}

template <bool kRecip>
struct VecBlock {
  __m256i qmin, qmax;
  QK_X86_INLINE __m256i one(const float* x, const float* s, const int32_t* zp) const {
    return code8_vec<kRecip>(_mm256_loadu_ps(x), _mm256_loadu_ps(s),
                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp)), qmin, qmax);
  }
  QK_X86_INLINE void operator()(const float* x, const float* s, const int32_t* zp,
                                uint8_t* out) const {
    const __m256i q0 = one(x, s, zp), q1 = one(x + 8, s + 8, zp + 8);
    const __m256i q2 = one(x + 16, s + 16, zp + 16), q3 = one(x + 24, s + 24, zp + 24);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), pack_low_bytes(q0, q1, q2, q3));
  }
};

template <bool kRecip>
void quant_vec_impl(const float* x, size_t n, const float* scale, const int32_t* zp,
                    const QRange& r, uint8_t* out) {
  const VecBlock<kRecip> blk{_mm256_set1_epi32(r.qmin), _mm256_set1_epi32(r.qmax)};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) blk(x + i, scale + i, zp + i, out + i);
  if (i < n) {
    const size_t m = n - i;
    alignas(32) float xb[32] = {};
    alignas(32) float sb[32];
    alignas(32) int32_t zb[32] = {};
    alignas(32) uint8_t ob[32];
    for (size_t j = 0; j < 32; ++j) sb[j] = 1.0f;
    std::memcpy(xb, x + i, m * sizeof(float));
    std::memcpy(sb, scale + i, m * sizeof(float));
    std::memcpy(zb, zp + i, m * sizeof(int32_t));
    blk(xb, sb, zb, ob);
    std::memcpy(out + i, ob, m);
  }
}

}  // namespace

void quant_uniform_avx2(const float* x, size_t n, float scale, int32_t zp, const QRange& r,
                        uint8_t* out) {
  if ((r.flags & QK_RECIP) || x86::div_is_exact_mul(scale))
    quant_uniform_impl<true>(x, n, 1.0f / scale, zp, r, out);
  else
    quant_uniform_impl<false>(x, n, scale, zp, r, out);
}

void quant_vec_avx2(const float* x, size_t n, const float* scale, const int32_t* zp,
                    const QRange& r, uint8_t* out) {
  if (r.flags & QK_RECIP)
    quant_vec_impl<true>(x, n, scale, zp, r, out);
  else
    quant_vec_impl<false>(x, n, scale, zp, r, out);
}

}  // namespace qk
