// Fake-quantize, AVX-512 (F/BW/DQ/VL). Bit-identical to fakequant_uniform_ref / fakequant_vec_ref:
//   c = nearbyint(v) (vrndscaleps under MXCSR), mask = lo <= c <= hi (ordered: NaN, Inf -> 0),
//   out = float(int(clamp(c))) * scale with NaN -> 0, i.e. float(code - zp) * scale.
// The int round trip turns -0 into +0 as the reference's float(int) does.
// Large uniform calls (bytes read + written >= x86::kStreamBytes) stream the float output.
#include <type_traits>

#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "flags.h"

namespace qk {
namespace {

QK_X86_INLINE __mmask16 tail_mask16(size_t rem) {
  return rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
}

constexpr int kRoundCur = _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC;

// out for 16 values given v (already divided / multiplied); *in = in-range mask.
QK_X86_INLINE __m512 fq16(__m512 v, __m512 scale, __m512 lo, __m512 hi, __mmask16* in) {
  const __m512 c = _mm512_roundscale_ps(v, kRoundCur);
  *in = _mm512_cmp_ps_mask(c, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(c, hi, _CMP_LE_OQ);
  const __mmask16 ord = _mm512_cmp_ps_mask(c, c, _CMP_ORD_Q);
  const __m512 cc = _mm512_maskz_min_ps(ord, _mm512_max_ps(c, lo), hi);  // NaN -> 0
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtps_epi32(cc)), scale);
}

template <bool kMask>
QK_X86_INLINE void store_mask16(uint8_t* mask, size_t i, __mmask16 in, __mmask16 k) {
  if (kMask) _mm_mask_storeu_epi8(mask + i, k, _mm_maskz_mov_epi8(in, _mm_set1_epi8(1)));
}

template <bool kMul, bool kMask>
void fakequant_uniform_impl(const float* x, size_t n, float scale, float inv, int32_t zp, const QRange& r, float* out,
                            uint8_t* mask) {
  const __m512 s = _mm512_set1_ps(scale);
  const __m512 d = _mm512_set1_ps(kMul ? inv : scale);
  const __m512 lo = _mm512_set1_ps(static_cast<float>(r.qmin - zp));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(r.qmax - zp));
  auto vof = [&](__m512 xv) { return kMul ? _mm512_mul_ps(xv, d) : _mm512_div_ps(xv, d); };
  // 32 elements from i; out stored with streaming stores when kStream (out + i 64-byte aligned).
  auto block32 = [&](size_t i, auto stream) {
    __mmask16 in0, in1;
    const __m512 f0 = fq16(vof(_mm512_loadu_ps(x + i)), s, lo, hi, &in0);
    const __m512 f1 = fq16(vof(_mm512_loadu_ps(x + i + 16)), s, lo, hi, &in1);
    if (decltype(stream)::value) {
      _mm512_stream_ps(out + i, f0);
      _mm512_stream_ps(out + i + 16, f1);
    } else {
      _mm512_storeu_ps(out + i, f0);
      _mm512_storeu_ps(out + i + 16, f1);
    }
    if (kMask) {
      const __mmask32 in = static_cast<__mmask32>(in0) | (static_cast<__mmask32>(in1) << 16);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(mask + i), _mm256_maskz_mov_epi8(in, _mm256_set1_epi8(1)));
    }
  };
  using Cached = std::integral_constant<bool, false>;
  using Stream = std::integral_constant<bool, true>;
  size_t i = 0;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out);
  if (n * (2 * sizeof(float) + (kMask ? 1 : 0)) >= x86::kStreamBytes && (addr & 3) == 0) {
    // One unaligned block (n is large), then streaming stores from the first 64-byte boundary
    // of out; the overlap is written twice with equal values.
    block32(0, Cached());
    i = ((64 - (addr & 63)) & 63) / sizeof(float);
    for (; i + 32 <= n; i += 32) block32(i, Stream());
    _mm_sfence();
  } else {
    for (; i + 32 <= n; i += 32) block32(i, Cached());
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask16(n - i);
    __mmask16 in;
    const __m512 f = fq16(vof(_mm512_maskz_loadu_ps(k, x + i)), s, lo, hi, &in);
    _mm512_mask_storeu_ps(out + i, k, f);
    store_mask16<kMask>(mask, i, in, k);
  }
}

template <bool kRecip>
QK_X86_INLINE __m512 fq16_vec(__m512 x, __m512 s, __m512i zp, __m512i qmin, __m512i qmax, __mmask16* in) {
  const __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(qmin, zp));
  const __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(qmax, zp));
  const __m512 v = kRecip ? _mm512_mul_ps(x, _mm512_div_ps(_mm512_set1_ps(1.0f), s)) : _mm512_div_ps(x, s);
  return fq16(v, s, lo, hi, in);
}

template <bool kRecip, bool kMask>
void fakequant_vec_impl(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, float* out,
                        uint8_t* mask) {
  const __m512i qmin = _mm512_set1_epi32(r.qmin);
  const __m512i qmax = _mm512_set1_epi32(r.qmax);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm_prefetch(x86::ahead(x + i, x86::kPrefetchAhead), _MM_HINT_T1);
    _mm_prefetch(x86::ahead(out + i, x86::kPrefetchAhead), _MM_HINT_T1);
    __mmask16 in;
    const __m512 f = fq16_vec<kRecip>(_mm512_loadu_ps(x + i), _mm512_loadu_ps(scale + i), _mm512_loadu_si512(zp + i),
                                      qmin, qmax, &in);
    _mm512_storeu_ps(out + i, f);
    store_mask16<kMask>(mask, i, in, 0xffff);
  }
  if (i < n) {
    const __mmask16 k = tail_mask16(n - i);
    __mmask16 in;
    const __m512 f = fq16_vec<kRecip>(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, scale + i),
                                      _mm512_maskz_loadu_epi32(k, zp + i), qmin, qmax, &in);
    _mm512_mask_storeu_ps(out + i, k, f);
    store_mask16<kMask>(mask, i, in, k);
  }
}

}  // namespace

void fakequant_uniform_avx512(const float* x, size_t n, float scale, int32_t zp, const QRange& r, float* out,
                              uint8_t* mask) {
  const float inv = 1.0f / scale;
  const bool mul = (r.flags & QK_RECIP) || x86::div_is_exact_mul(scale);
  with_flags(
      [&](auto m, auto k) {
        fakequant_uniform_impl<decltype(m)::value, decltype(k)::value>(x, n, scale, inv, zp, r, out, mask);
      },
      mul, mask != nullptr);
}

void fakequant_vec_avx512(const float* x, size_t n, const float* scale, const int32_t* zp, const QRange& r, float* out,
                          uint8_t* mask) {
  with_flags(
      [&](auto recip, auto k) {
        fakequant_vec_impl<decltype(recip)::value, decltype(k)::value>(x, n, scale, zp, r, out, mask);
      },
      r.flags & QK_RECIP, mask != nullptr);
}

}  // namespace qk
