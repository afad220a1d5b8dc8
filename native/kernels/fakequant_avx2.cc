// Fake-quantize, AVX2. Bit-identical to fakequant_uniform_ref / fakequant_vec_ref:
//   c = nearbyint(v) (vroundps under MXCSR), mask = lo <= c <= hi (ordered: NaN, Inf -> 0),
//   out = float(int(clamp(c))) * scale with NaN -> 0, i.e. float(code - zp) * scale.
// The int round trip turns -0 into +0 as the reference's float(int) does.
// Tails (< 32 elements) run the same block on a padded copy.
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"

namespace qk {
namespace {

constexpr int kRoundCur = _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC;

// out for 8 values given v; *in = in-range lanes (all ones / zero).
QK_X86_INLINE __m256 fq8(__m256 v, __m256 scale, __m256 lo, __m256 hi, __m256i* in) {
  const __m256 c = _mm256_round_ps(v, kRoundCur);
  *in = _mm256_castps_si256(
      _mm256_and_ps(_mm256_cmp_ps(c, lo, _CMP_GE_OQ), _mm256_cmp_ps(c, hi, _CMP_LE_OQ)));
  const __m256 ord = _mm256_cmp_ps(c, c, _CMP_ORD_Q);
  const __m256 cc = _mm256_and_ps(ord, _mm256_min_ps(_mm256_max_ps(c, lo), hi));  // NaN -> 0
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtps_epi32(cc)), scale);
}

// 4 x 8 lane masks (-1 / 0) -> 32 bytes 1 / 0, in order.
QK_X86_INLINE __m256i mask_bytes(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i abcd = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  const __m256i ord = _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  return _mm256_and_si256(ord, _mm256_set1_epi8(1));
}

template <bool kMul, bool kMask>
struct UniformBlock {
  __m256 s, d, lo, hi;
  QK_X86_INLINE __m256 one(const float* x, __m256i* in) const {
    const __m256 xv = _mm256_loadu_ps(x);
    return fq8(kMul ? _mm256_mul_ps(xv, d) : _mm256_div_ps(xv, d), s, lo, hi, in);
  }
  QK_X86_INLINE void operator()(const float* x, float* out, uint8_t* mask) const {
    __m256i in0, in1, in2, in3;
    const __m256 f0 = one(x, &in0), f1 = one(x + 8, &in1);
    const __m256 f2 = one(x + 16, &in2), f3 = one(x + 24, &in3);
    _mm256_storeu_ps(out, f0);
    _mm256_storeu_ps(out + 8, f1);
    _mm256_storeu_ps(out + 16, f2);
    _mm256_storeu_ps(out + 24, f3);
    if (kMask)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(mask), mask_bytes(in0, in1, in2, in3));
  }
};

template <bool kMul, bool kMask>
void fakequant_uniform_impl(const float* x, size_t n, float scale, float inv, int32_t zp,
                            const QRange& r, float* out, uint8_t* mask) {
  const UniformBlock<kMul, kMask> blk{_mm256_set1_ps(scale), _mm256_set1_ps(kMul ? inv : scale),
                                      _mm256_set1_ps(static_cast<float>(r.qmin - zp)),
                                      _mm256_set1_ps(static_cast<float>(r.qmax - zp))};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) blk(x + i, out + i, kMask ? mask + i : nullptr);
  if (i < n) {
    const size_t m = n - i;
    alignas(32) float xb[32] = {};
    alignas(32) float ob[32];
    alignas(32) uint8_t mb[32];
    std::memcpy(xb, x + i, m * sizeof(float));
    blk(xb, ob, mb);
    std::memcpy(out + i, ob, m * sizeof(float));
    if (kMask) std::memcpy(mask + i, mb, m);
  }
}

template <bool kRecip, bool kMask>
struct VecBlock {
  __m256i qmin, qmax;
  QK_X86_INLINE __m256 one(const float* x, const float* sp, const int32_t* zp, __m256i* in) const {
    const __m256 s = _mm256_loadu_ps(sp);
    const __m256i z = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp));
    const __m256 lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(qmin, z));
    const __m256 hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(qmax, z));
    const __m256 xv = _mm256_loadu_ps(x);
    const __m256 v = kRecip ? _mm256_mul_ps(xv, _mm256_div_ps(_mm256_set1_ps(1.0f), s))
                            : _mm256_div_ps(xv, s);
    return fq8(v, s, lo, hi, in);
  }
  QK_X86_INLINE void operator()(const float* x, const float* s, const int32_t* zp, float* out,
                                uint8_t* mask) const {
    __m256i in0, in1, in2, in3;
    const __m256 f0 = one(x, s, zp, &in0), f1 = one(x + 8, s + 8, zp + 8, &in1);
    const __m256 f2 = one(x + 16, s + 16, zp + 16, &in2);
    const __m256 f3 = one(x + 24, s + 24, zp + 24, &in3);
    _mm256_storeu_ps(out, f0);
    _mm256_storeu_ps(out + 8, f1);
    _mm256_storeu_ps(out + 16, f2);
    _mm256_storeu_ps(out + 24, f3);
    if (kMask)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(mask), mask_bytes(in0, in1, in2, in3));
  }
};

template <bool kRecip, bool kMask>
void fakequant_vec_impl(const float* x, size_t n, const float* scale, const int32_t* zp,
                        const QRange& r, float* out, uint8_t* mask) {
  const VecBlock<kRecip, kMask> blk{_mm256_set1_epi32(r.qmin), _mm256_set1_epi32(r.qmax)};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    blk(x + i, scale + i, zp + i, out + i, kMask ? mask + i : nullptr);
  if (i < n) {
    const size_t m = n - i;
    alignas(32) float xb[32] = {};
    alignas(32) float sb[32];
    alignas(32) int32_t zb[32] = {};
    alignas(32) float ob[32];
    alignas(32) uint8_t mb[32];
    for (size_t j = 0; j < 32; ++j) sb[j] = 1.0f;
    std::memcpy(xb, x + i, m * sizeof(float));
    std::memcpy(sb, scale + i, m * sizeof(float));
    std::memcpy(zb, zp + i, m * sizeof(int32_t));
    blk(xb, sb, zb, ob, mb);
    std::memcpy(out + i, ob, m * sizeof(float));
    if (kMask) std::memcpy(mask + i, mb, m);
  }
}

}  // namespace

void fakequant_uniform_avx2(const float* x, size_t n, float scale, int32_t zp, const QRange& r,
                            float* out, uint8_t* mask) {
  const float inv = 1.0f / scale;
  const bool mul = (r.flags & QK_RECIP) || x86::div_is_exact_mul(scale);
  if (mul) {
    if (mask) fakequant_uniform_impl<true, true>(x, n, scale, inv, zp, r, out, mask);
    else fakequant_uniform_impl<true, false>(x, n, scale, inv, zp, r, out, mask);
  } else {
    if (mask) fakequant_uniform_impl<false, true>(x, n, scale, inv, zp, r, out, mask);
    else fakequant_uniform_impl<false, false>(x, n, scale, inv, zp, r, out, mask);
  }
}

void fakequant_vec_avx2(const float* x, size_t n, const float* scale, const int32_t* zp,
                        const QRange& r, float* out, uint8_t* mask) {
  if (r.flags & QK_RECIP) {
    if (mask) fakequant_vec_impl<true, true>(x, n, scale, zp, r, out, mask);
    else fakequant_vec_impl<true, false>(x, n, scale, zp, r, out, mask);
  } else {
    if (mask) fakequant_vec_impl<false, true>(x, n, scale, zp, r, out, mask);
    else fakequant_vec_impl<false, false>(x, n, scale, zp, r, out, mask);
  }
}

}  // namespace qk
