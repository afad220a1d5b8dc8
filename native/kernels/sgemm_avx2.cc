// AVX2/FMA fp32 GEMM kernels: a 6 x 16 register tile (12 ymm accumulators, two ymm of B per k, A
// broadcast from memory); a strip is 16 columns (half a panel) of the block's rows, A packed by
// the driver in slivers of 6 rows (kPackA). Column tails use maskload / maskstore; row tails
// smaller instantiations of the tile.
// Each C element is one FMA chain in increasing k (docs/numerics.md, "fp32 GEMM"). sgemv: sgemv_rows.h.
#include "x86_common.h"

#include "kernel_decls.h"
#include "sgemv_rows.h"
#include "strip.h"

namespace qk {

namespace {

constexpr KernelGeom kGeom = geom::sgemm_block_avx2;  // kernels_sgemm.def
constexpr int kMr = static_cast<int>(kGeom.mr);
static_assert(kMr >= 1 && kMr <= 6 && kGeom.nr == 16 && (kGeom.traits & kPackA),
              "tiles of 1-6 rows (12 ymm accumulators at most) x 16 columns, over a packed A");

QK_X86_INLINE __m256i mask_of(size_t n) {
  const int k = n >= 8 ? 8 : static_cast<int>(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

QK_X86_INLINE __m256 epilogue(__m256 v, __m256 bias, uint32_t flags) {
  if (flags & QK_SGEMM_BIAS) v = _mm256_add_ps(v, bias);
  // max(0, v) returns v when v is NaN or a zero of either sign: v < 0 ? 0 : v.
  if (flags & QK_SGEMM_RELU) v = _mm256_max_ps(_mm256_setzero_ps(), v);
  return v;
}

// full: all 16 columns valid (plain loads / stores); else masks m0, m1. A packed: ap[k * kMr + r].
template <int R, bool kFull>
QK_X86_INLINE void tile(size_t kc, const float* ap, const float* b, size_t ldb, float* c, size_t ldc, __m256i m0,
                        __m256i m1, uint32_t flags, const float* bias) {
  __m256 acc0[R], acc1[R];
  if (flags & QK_SGEMM_ACCUMULATE) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      acc0[r] = kFull ? _mm256_loadu_ps(c + r * ldc) : _mm256_maskload_ps(c + r * ldc, m0);
      acc1[r] = kFull ? _mm256_loadu_ps(c + r * ldc + 8) : _mm256_maskload_ps(c + r * ldc + 8, m1);
    }
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  }
#pragma GCC unroll 4
  for (size_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    b += ldb;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(ap + r);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
    ap += kMr;
  }
  __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
  if (flags & QK_SGEMM_BIAS) {
    bias0 = kFull ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, m0);
    bias1 = kFull ? _mm256_loadu_ps(bias + 8) : _mm256_maskload_ps(bias + 8, m1);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m256 v0 = epilogue(acc0[r], bias0, flags), v1 = epilogue(acc1[r], bias1, flags);
    if (kFull) {
      _mm256_storeu_ps(c + r * ldc, v0);
      _mm256_storeu_ps(c + r * ldc + 8, v1);
    } else {
      _mm256_maskstore_ps(c + r * ldc, m0, v0);
      _mm256_maskstore_ps(c + r * ldc + 8, m1, v1);
    }
  }
}

// One tile, out of line (the tiles of a strip are direct calls).
template <int R, bool kFull>
__attribute__((noinline)) void tile_fn(size_t kc, const float* ap, const float* b, size_t ldb, float* c, size_t ldc,
                                       __m256i m0, __m256i m1, uint32_t flags, const float* bias) {
  tile<R, kFull>(kc, ap, b, ldb, c, ldc, m0, m1, flags, bias);
}

// The register type of sgemv_rows (sgemv_rows.h).
struct Ymm {
  using Reg = __m256;
  static constexpr size_t kWidth = 8;
  static QK_X86_INLINE Reg zero() { return _mm256_setzero_ps(); }
  static QK_X86_INLINE Reg load(const float* p) { return _mm256_loadu_ps(p); }
  static QK_X86_INLINE void store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
  static QK_X86_INLINE Reg bcast(float x) { return _mm256_set1_ps(x); }
  static QK_X86_INLINE Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static QK_X86_INLINE Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static QK_X86_INLINE float hsum(Reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace

void sgemm_block_avx2(const SgemmStrip& s) {
  const __m256i m0 = mask_of(s.n), m1 = mask_of(s.n > 8 ? s.n - 8 : 0);
  for_row_tiles<kMr>(0, s.m, [&](auto r, size_t i0) {
    constexpr int R = decltype(r)::value;
    const float* ap = s.a + i0 * s.k;  // sliver i0 / kMr
    float* c = s.c + i0 * s.ldc;
    if (s.n >= 16)
      tile_fn<R, true>(s.k, ap, s.b, s.ldb, c, s.ldc, m0, m1, s.flags, s.bias);
    else
      tile_fn<R, false>(s.k, ap, s.b, s.ldb, c, s.ldc, m0, m1, s.flags, s.bias);
  });
}

void sgemv_avx2(const SgemvArgs& p) { sgemv_rows<Ymm>(p); }

}  // namespace qk
