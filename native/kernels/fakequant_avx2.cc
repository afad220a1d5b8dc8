// Fake-quantize, AVX2. Bit-identical to fakequant_uniform_ref / fakequant_vec_ref:
//   c = nearbyint(v) (vroundps under MXCSR), mask = lo <= c <= hi (ordered: NaN, Inf -> 0),
//   out = float(int(clamp(c))) * scale with NaN -> 0, i.e. float(code - zp) * scale.
// The int round trip turns -0 into +0 as the reference's float(int) does.
// Blocks of 32, then of 8, then one block of < 8 (vmaskmov loads, piecewise stores).
// Large uniform calls (bytes read + written >= x86::kStreamBytes) stream the float output.
#include "avx2_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "flags.h"

namespace qk {
namespace {

using avx2::lane_mask;
using avx2::store_partial_ps;

constexpr int kRoundCur = _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC;

// out for 8 values given v; *in = in-range lanes (all ones / zero).
QK_X86_INLINE __m256 fq8(__m256 v, __m256 scale, __m256 lo, __m256 hi, __m256i* in) {
  const __m256 c = _mm256_round_ps(v, kRoundCur);
  *in = _mm256_castps_si256(_mm256_and_ps(_mm256_cmp_ps(c, lo, _CMP_GE_OQ), _mm256_cmp_ps(c, hi, _CMP_LE_OQ)));
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

// 8 lane masks (-1 / 0) -> 8 bytes 1 / 0 in the low 64 bits.
QK_X86_INLINE uint64_t mask_bytes8(__m256i a) {
  const __m256i t = _mm256_and_si256(a, _mm256_set1_epi32(1));
  const __m256i w = _mm256_packus_epi16(_mm256_packus_epi32(t, t), t);  // lane k: bytes 4k..4k+3
  return static_cast<uint64_t>(
      _mm_cvtsi128_si64(_mm_unpacklo_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1))));
}

QK_X86_INLINE void store_mask8(uint8_t* mask, __m256i in) {
  const uint64_t b = mask_bytes8(in);
  std::memcpy(mask, &b, 8);
}

// Uniform scale: d is the divisor (or, kMul, the reciprocal), s the scale for the output.
template <bool kMul, bool kMask>
struct Uniform {
  __m256 s, d, lo, hi;
  QK_X86_INLINE __m256 one(__m256 xv, __m256i* in) const {
    return fq8(kMul ? _mm256_mul_ps(xv, d) : _mm256_div_ps(xv, d), s, lo, hi, in);
  }
  // 32 elements from i; kStream: streaming stores for out (out + i 32-byte aligned).
  template <bool kStream>
  QK_X86_INLINE void block32(const float* x, float* out, uint8_t* mask, size_t i) const {
    __m256i in0, in1, in2, in3;
    const __m256 f0 = one(_mm256_loadu_ps(x + i), &in0);
    const __m256 f1 = one(_mm256_loadu_ps(x + i + 8), &in1);
    const __m256 f2 = one(_mm256_loadu_ps(x + i + 16), &in2);
    const __m256 f3 = one(_mm256_loadu_ps(x + i + 24), &in3);
    if (kStream) {
      _mm256_stream_ps(out + i, f0);
      _mm256_stream_ps(out + i + 8, f1);
      _mm256_stream_ps(out + i + 16, f2);
      _mm256_stream_ps(out + i + 24, f3);
    } else {
      _mm256_storeu_ps(out + i, f0);
      _mm256_storeu_ps(out + i + 8, f1);
      _mm256_storeu_ps(out + i + 16, f2);
      _mm256_storeu_ps(out + i + 24, f3);
    }
    if (kMask) _mm256_storeu_si256(reinterpret_cast<__m256i*>(mask + i), mask_bytes(in0, in1, in2, in3));
  }
  QK_X86_INLINE void block8(const float* x, float* out, uint8_t* mask, size_t i) const {
    __m256i in;
    _mm256_storeu_ps(out + i, one(_mm256_loadu_ps(x + i), &in));
    if (kMask) store_mask8(mask + i, in);
  }
  QK_X86_INLINE void partial(const float* x, float* out, uint8_t* mask, size_t i, size_t m) const {
    const __m256i k = lane_mask(m);
    __m256i in;
    store_partial_ps(out + i, one(_mm256_maskload_ps(x + i, k), &in), m);
    if (kMask) x86::store_bytes(mask + i, mask_bytes8(in), m);
  }
};

// Per-element scale / zero point (lo / hi per lane, reciprocal 1.0f / scale per lane).
template <bool kRecip, bool kMask>
struct Vec {
  __m256i qmin, qmax;
  QK_X86_INLINE __m256 one(__m256 xv, __m256 s, __m256i z, __m256i* in) const {
    const __m256 lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(qmin, z));
    const __m256 hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(qmax, z));
    const __m256 v = kRecip ? _mm256_mul_ps(xv, _mm256_div_ps(_mm256_set1_ps(1.0f), s)) : _mm256_div_ps(xv, s);
    return fq8(v, s, lo, hi, in);
  }
  QK_X86_INLINE __m256 at(const float* x, const float* sp, const int32_t* zp, __m256i* in) const {
    return one(_mm256_loadu_ps(x), _mm256_loadu_ps(sp), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp)), in);
  }
  QK_X86_INLINE void block32(const float* x, const float* s, const int32_t* zp, float* out, uint8_t* mask,
                             size_t i) const {
    __m256i in0, in1, in2, in3;
    const __m256 f0 = at(x + i, s + i, zp + i, &in0);
    const __m256 f1 = at(x + i + 8, s + i + 8, zp + i + 8, &in1);
    const __m256 f2 = at(x + i + 16, s + i + 16, zp + i + 16, &in2);
    const __m256 f3 = at(x + i + 24, s + i + 24, zp + i + 24, &in3);
    _mm256_storeu_ps(out + i, f0);
    _mm256_storeu_ps(out + i + 8, f1);
    _mm256_storeu_ps(out + i + 16, f2);
    _mm256_storeu_ps(out + i + 24, f3);
    if (kMask) _mm256_storeu_si256(reinterpret_cast<__m256i*>(mask + i), mask_bytes(in0, in1, in2, in3));
  }
  QK_X86_INLINE void block8(const float* x, const float* s, const int32_t* zp, float* out, uint8_t* mask,
                            size_t i) const {
    __m256i in;
    _mm256_storeu_ps(out + i, at(x + i, s + i, zp + i, &in));
    if (kMask) store_mask8(mask + i, in);
  }
  QK_X86_INLINE void partial(const float* x, const float* s, const int32_t* zp, float* out, uint8_t* mask, size_t i,
                             size_t m) const {
    const __m256i k = lane_mask(m);
    __m256i in;
    // Masked-off lanes load 0: 0 / 0 there is a quiet NaN, never stored.
    const __m256 f =
        one(_mm256_maskload_ps(x + i, k), _mm256_maskload_ps(s + i, k), _mm256_maskload_epi32(zp + i, k), &in);
    store_partial_ps(out + i, f, m);
    if (kMask) x86::store_bytes(mask + i, mask_bytes8(in), m);
  }
};

template <bool kMul, bool kMask>
void fakequant_uniform_impl(const float* x, size_t n, float scale, float inv, int32_t zp, const QRange& r, float* out,
                            uint8_t* mask) {
  const Uniform<kMul, kMask> u{_mm256_set1_ps(scale), _mm256_set1_ps(kMul ? inv : scale),
                               _mm256_set1_ps(static_cast<float>(r.qmin - zp)),
                               _mm256_set1_ps(static_cast<float>(r.qmax - zp))};
  size_t i = 0;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out);
  if (n * (2 * sizeof(float) + (kMask ? 1 : 0)) >= x86::kStreamBytes && (addr & 3) == 0) {
    // One unaligned block (n is large), then streaming stores from the first 32-byte boundary
    // of out; the overlap is written twice with equal values.
    u.template block32<false>(x, out, mask, 0);
    i = ((32 - (addr & 31)) & 31) / sizeof(float);
    for (; i + 32 <= n; i += 32) u.template block32<true>(x, out, mask, i);
    _mm_sfence();
  } else {
    for (; i + 32 <= n; i += 32) u.template block32<false>(x, out, mask, i);
  }
  for (; i + 8 <= n; i += 8) u.block8(x, out, mask, i);
  if (i < n) u.partial(x, out, mask, i, n - i);
}

template <bool kRecip, bool kMask>
void fakequant_vec_impl(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, float* out,
                        uint8_t* mask) {
  const Vec<kRecip, kMask> v{_mm256_set1_epi32(r.qmin), _mm256_set1_epi32(r.qmax)};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(x86::ahead(x + i, x86::kPrefetchAhead), _MM_HINT_T1);
    _mm_prefetch(x86::ahead(x + i, x86::kPrefetchAhead + 16), _MM_HINT_T1);
    _mm_prefetch(x86::ahead(out + i, x86::kPrefetchAhead), _MM_HINT_T1);
    _mm_prefetch(x86::ahead(out + i, x86::kPrefetchAhead + 16), _MM_HINT_T1);
    v.block32(x, scale, zp, out, mask, i);
  }
  for (; i + 8 <= n; i += 8) v.block8(x, scale, zp, out, mask, i);
  if (i < n) v.partial(x, scale, zp, out, mask, i, n - i);
}

}  // namespace

void fakequant_uniform_avx2(const float* x, size_t n, float scale, int32_t zp, const QRange& r, float* out,
                            uint8_t* mask) {
  const float inv = 1.0f / scale;
  const bool mul = (r.flags & QK_RECIP) || x86::div_is_exact_mul(scale);
  with_flags(
      [&](auto m, auto k) {
        fakequant_uniform_impl<decltype(m)::value, decltype(k)::value>(x, n, scale, inv, zp, r, out, mask);
      },
      mul, mask != nullptr);
}

void fakequant_vec_avx2(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, float* out,
                        uint8_t* mask) {
  with_flags(
      [&](auto recip, auto k) {
        fakequant_vec_impl<decltype(recip)::value, decltype(k)::value>(x, n, scale, zp, r, out, mask);
      },
      r.flags & QK_RECIP, mask != nullptr);
}

}  // namespace qk
