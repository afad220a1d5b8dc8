// AVX-512 fp32 GEMM kernels: a 14 x 32 register tile (28 zmm accumulators, two zmm of B per k,
// A broadcast from memory). Per K chunk of 128, the block's A is packed in slivers of 14 rows (A
// read in place would put rows 4 KiB apart into the same L1 sets) and each 32-column panel of B
// (16 KiB) is walked by every sliver while it sits in L1. Column tails use masked loads and
// stores; row tails smaller instantiations of the tile; a single row (GEMV with a packed B) four
// panels at a time, so that 8 FMA chains hide the FMA latency.
// Each C element is one FMA chain in increasing k (docs/numerics.md, "fp32 GEMM").
#include "x86_common.h"

#include <vector>

#include "../core/ref.h"

namespace qk {

namespace {

constexpr int kMr = 14;
constexpr size_t kKcPack = 128;  // K chunk: A sliver 7 KiB, B panel 16 KiB (both in L1)

QK_X86_INLINE __m512 epilogue(__m512 v, __m512 bias, uint32_t flags) {
  if (flags & QK_SGEMM_BIAS) v = _mm512_add_ps(v, bias);
  // max(0, v) returns v when v is NaN or a zero of either sign: v < 0 ? 0 : v.
  if (flags & QK_SGEMM_RELU) v = _mm512_max_ps(_mm512_setzero_ps(), v);
  return v;
}

// B: a panel, rows 32 floats apart.
template <int R>
QK_X86_INLINE void tile(size_t kc, const float* ap, const float* b, size_t ldc, float* c,
                        __mmask16 m0, __mmask16 m1, uint32_t flags, const float* bias) {
  __m512 acc0[R], acc1[R];
  if (flags & QK_SGEMM_ACCUMULATE) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_maskz_loadu_ps(m0, c + r * ldc);
      acc1[r] = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16);
    }
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_setzero_ps();
      acc1[r] = _mm512_setzero_ps();
    }
  }
#pragma GCC unroll 2
  for (size_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
    b += kSgemmPanel;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(ap[r]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
    ap += kMr;
  }
  __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
  if (flags & QK_SGEMM_BIAS) {
    bias0 = _mm512_maskz_loadu_ps(m0, bias);
    bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, m0, epilogue(acc0[r], bias0, flags));
    _mm512_mask_storeu_ps(c + r * ldc + 16, m1, epilogue(acc1[r], bias1, flags));
  }
}

// One row of C against 4 panels (128 columns) of B: 8 independent FMA chains instead of 2 (one
// row alone would wait on the FMA latency). Full panels only; same chain per element as tile<1>.
QK_X86_INLINE void row_x4(size_t kc, const float* ap, const float* b, size_t panel_stride,
                          float* c, uint32_t flags, const float* bias) {
  __m512 acc[8];
#pragma GCC unroll 8
  for (int q = 0; q < 8; ++q)
    acc[q] = (flags & QK_SGEMM_ACCUMULATE) ? _mm512_loadu_ps(c + 16 * q) : _mm512_setzero_ps();
  const float* b1 = b + panel_stride;
  const float* b2 = b1 + panel_stride;
  const float* b3 = b2 + panel_stride;
  for (size_t k = 0; k < kc; ++k) {
    const __m512 av = _mm512_set1_ps(ap[k * kMr]);
    acc[0] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + k * kSgemmPanel), acc[0]);
    acc[1] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + k * kSgemmPanel + 16), acc[1]);
    acc[2] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b1 + k * kSgemmPanel), acc[2]);
    acc[3] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b1 + k * kSgemmPanel + 16), acc[3]);
    acc[4] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b2 + k * kSgemmPanel), acc[4]);
    acc[5] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b2 + k * kSgemmPanel + 16), acc[5]);
    acc[6] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b3 + k * kSgemmPanel), acc[6]);
    acc[7] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b3 + k * kSgemmPanel + 16), acc[7]);
  }
#pragma GCC unroll 8
  for (int q = 0; q < 8; ++q) {
    const __m512 bv = (flags & QK_SGEMM_BIAS) ? _mm512_loadu_ps(bias + 16 * q) : _mm512_setzero_ps();
    _mm512_storeu_ps(c + 16 * q, epilogue(acc[q], bv, flags));
  }
}

using TileFn = void (*)(size_t, const float*, const float*, size_t, float*, __mmask16, __mmask16,
                        uint32_t, const float*);

template <int R>
void tile_fn(size_t kc, const float* ap, const float* b, size_t ldc, float* c, __mmask16 m0,
             __mmask16 m1, uint32_t flags, const float* bias) {
  tile<R>(kc, ap, b, ldc, c, m0, m1, flags, bias);
}

const TileFn kTiles[] = {nullptr,     tile_fn<1>,  tile_fn<2>,  tile_fn<3>,  tile_fn<4>,
                         tile_fn<5>,  tile_fn<6>,  tile_fn<7>,  tile_fn<8>,  tile_fn<9>,
                         tile_fn<10>, tile_fn<11>, tile_fn<12>, tile_fn<13>, tile_fn<14>};
static_assert(sizeof kTiles / sizeof kTiles[0] == kMr + 1, "one tile per row count");

QK_X86_INLINE __mmask16 mask_of(size_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// Packs rows x kc of A (lda) into ap[k * kMr + r]; rows beyond `rows` are left as they are (the
// tile for `rows` rows never reads them).
void pack_a(const float* a, size_t lda, size_t rows, size_t kc, float* ap) {
  for (size_t r = 0; r < rows; ++r) {
    const float* src = a + r * lda;
    float* dst = ap + r;
    for (size_t k = 0; k < kc; ++k) dst[k * kMr] = src[k];
  }
}

}  // namespace

void sgemm_block_avx512(const SgemmBlock& p) {
  // Per K chunk: the block's A packed sliver by sliver (kMr rows, ap[k * kMr + r], in L2); then
  // panels outer, slivers inner, so a panel of B is reused by every sliver from L1. A B read in
  // place (ldb != 32) is first copied, 4 panels at a time, into a per-thread buffer (rows of a
  // row-major B are N floats apart: for N a multiple of 1024 they all fall into the same L1 sets).
  thread_local std::vector<float> abuf;
  thread_local std::vector<float> gbuf(4 * kKcPack * kSgemmPanel + 16);
  const size_t slivers = (p.m + kMr - 1) / kMr;
  const size_t kc_max = p.k < kKcPack ? p.k : kKcPack;
  if (abuf.size() < slivers * kMr * kc_max) abuf.resize(slivers * kMr * kc_max);
  const bool in_place = p.ldb != kSgemmPanel;
  for (size_t k0 = 0; k0 < p.k || (k0 == 0 && p.k == 0); k0 += kKcPack) {
    const size_t kc = p.k - k0 < kKcPack ? p.k - k0 : kKcPack;
    const bool last = k0 + kc >= p.k;
    uint32_t flags = p.flags & QK_SGEMM_ACCUMULATE;
    if (k0 > 0) flags |= QK_SGEMM_ACCUMULATE;
    if (last) flags |= p.flags & (QK_SGEMM_BIAS | QK_SGEMM_RELU);
    for (size_t s = 0; s < slivers; ++s) {
      const size_t i0 = s * kMr, rows = p.m - i0 < static_cast<size_t>(kMr) ? p.m - i0 : kMr;
      pack_a(p.a + i0 * p.lda + k0, p.lda, rows, kc, abuf.data() + s * kMr * kc);
    }
    size_t jstart = 0;
    if (p.m == 1 && !in_place) {
      for (; jstart + 4 * kSgemmPanel <= p.n; jstart += 4 * kSgemmPanel)
        row_x4(kc, abuf.data(), p.b + (jstart / kSgemmPanel) * p.b_panel_stride + k0 * p.ldb,
               p.b_panel_stride, p.c + jstart, flags, p.bias ? p.bias + jstart : nullptr);
    }
    if (in_place) {
      // Copy kGroup panels at a time (rows of 128 * kGroup contiguous bytes: fewer, longer
      // streams than one panel at a time), prefetching kAhead rows ahead.
      constexpr size_t kGroup = 4, kAhead = 8;
      for (size_t g0 = 0; g0 < p.n; g0 += kGroup * kSgemmPanel) {
        const size_t gw = p.n - g0 < kGroup * kSgemmPanel ? p.n - g0 : kGroup * kSgemmPanel;
        const size_t gp = (gw + kSgemmPanel - 1) / kSgemmPanel;
        const float* src = p.b + (g0 / kSgemmPanel) * p.b_panel_stride + k0 * p.ldb;
        for (size_t k = 0; k < kc; ++k) {
          const float* row = src + k * p.ldb;
          const uintptr_t ahead = reinterpret_cast<uintptr_t>(row) + kAhead * p.ldb * sizeof(float);
          for (size_t q = 0; q < gp; ++q) {
            _mm_prefetch(reinterpret_cast<const char*>(ahead + q * 128), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(ahead + q * 128 + 64), _MM_HINT_T0);
            const size_t w = gw - q * kSgemmPanel;
            const __mmask16 m0 = mask_of(w), m1 = mask_of(w > 16 ? w - 16 : 0);
            float* d = gbuf.data() + q * kc * kSgemmPanel + k * kSgemmPanel;
            _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, row + q * kSgemmPanel));
            _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(m1, row + q * kSgemmPanel + 16));
          }
        }
        for (size_t q = 0; q < gp; ++q) {
          const size_t j0 = g0 + q * kSgemmPanel, w = p.n - j0;
          const __mmask16 m0 = mask_of(w), m1 = mask_of(w > 16 ? w - 16 : 0);
          const float* bias = p.bias ? p.bias + j0 : nullptr;
          for (size_t s = 0; s < slivers; ++s) {
            const size_t i0 = s * kMr, rows = p.m - i0 < static_cast<size_t>(kMr) ? p.m - i0 : kMr;
            kTiles[rows](kc, abuf.data() + s * kMr * kc, gbuf.data() + q * kc * kSgemmPanel, p.ldc,
                         p.c + i0 * p.ldc + j0, m0, m1, flags, bias);
          }
        }
      }
      if (last) break;
      continue;
    }
    for (size_t j0 = jstart; j0 < p.n; j0 += kSgemmPanel) {
      const size_t w = p.n - j0;
      const __mmask16 m0 = mask_of(w), m1 = mask_of(w > 16 ? w - 16 : 0);
      const float* b = p.b + (j0 / kSgemmPanel) * p.b_panel_stride + k0 * p.ldb;
      const float* bias = p.bias ? p.bias + j0 : nullptr;
      for (size_t s = 0; s < slivers; ++s) {
        const size_t i0 = s * kMr, rows = p.m - i0 < static_cast<size_t>(kMr) ? p.m - i0 : kMr;
        kTiles[rows](kc, abuf.data() + s * kMr * kc, b, p.ldc, p.c + i0 * p.ldc + j0, m0, m1,
                     flags, bias);
      }
    }
    if (last) break;
  }
}

void sgemv_avx512(const SgemvArgs& p) {
  const __m512 zero = _mm512_setzero_ps();
  if (!p.trans) {
    // c[j] = fma chain over k; 8 rows of B per pass over the C chunk (in L1), the next 8 rows
    // prefetched (each row of B starts a new stream for the hardware prefetchers).
    constexpr size_t kCols = 4096, kRows = 8;
    for (size_t j0 = 0; j0 < p.n; j0 += kCols) {
      const size_t n = p.n - j0 < kCols ? p.n - j0 : kCols;
      float* c = p.c + j0;
      const float* b = p.b + j0;
      size_t k = 0;
      for (; k + kRows <= p.k; k += kRows) {
        __m512 av[kRows];
        const float* br[kRows];
        for (size_t r = 0; r < kRows; ++r) {
          av[r] = _mm512_set1_ps(p.a[k + r]);
          br[r] = b + (k + r) * p.ldb;
        }
        const bool ahead = k + 2 * kRows <= p.k;
        for (size_t j = 0; j < n; j += 16) {
          const __mmask16 m = mask_of(n - j);
          __m512 v = k == 0 ? zero : _mm512_maskz_loadu_ps(m, c + j);
#pragma GCC unroll 8
          for (size_t r = 0; r < kRows; ++r) {
            if (ahead) _mm_prefetch(reinterpret_cast<const char*>(br[r] + kRows * p.ldb + j), _MM_HINT_T0);
            v = _mm512_fmadd_ps(av[r], _mm512_maskz_loadu_ps(m, br[r] + j), v);
          }
          _mm512_mask_storeu_ps(c + j, m, v);
        }
      }
      for (; k < p.k; ++k) {
        const __m512 a0 = _mm512_set1_ps(p.a[k]);
        const float* b0 = b + k * p.ldb;
        for (size_t j = 0; j < n; j += 16) {
          const __mmask16 m = mask_of(n - j);
          __m512 v = k == 0 ? zero : _mm512_maskz_loadu_ps(m, c + j);
          v = _mm512_fmadd_ps(a0, _mm512_maskz_loadu_ps(m, b0 + j), v);
          _mm512_mask_storeu_ps(c + j, m, v);
        }
      }
      for (size_t j = 0; j < n; j += 16) {
        const __mmask16 m = mask_of(n - j);
        __m512 v = _mm512_maskz_loadu_ps(m, c + j);
        if (p.bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, p.bias + j0 + j));
        if (p.relu) v = _mm512_max_ps(zero, v);
        _mm512_mask_storeu_ps(c + j, m, v);
      }
    }
    return;
  }
  // B^T: dot products of a with rows of B^T, 4 rows at a time, two accumulators per row.
  size_t j = 0;
  auto finish = [&](size_t jj, float s) {
    if (p.bias) s = s + p.bias[jj];
    if (p.relu) s = sgemm_relu(s);
    p.c[jj] = s;
  };
  for (; j + 4 <= p.n; j += 4) {
    const float* r0 = p.b + j * p.ldb;
    const float* r1 = r0 + p.ldb;
    const float* r2 = r1 + p.ldb;
    const float* r3 = r2 + p.ldb;
    __m512 s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    __m512 t0 = zero, t1 = zero, t2 = zero, t3 = zero;
    size_t k = 0;
    for (; k + 32 <= p.k; k += 32) {
      const __m512 x0 = _mm512_loadu_ps(p.a + k), x1 = _mm512_loadu_ps(p.a + k + 16);
      s0 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(r0 + k), s0);
      t0 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(r0 + k + 16), t0);
      s1 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(r1 + k), s1);
      t1 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(r1 + k + 16), t1);
      s2 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(r2 + k), s2);
      t2 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(r2 + k + 16), t2);
      s3 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(r3 + k), s3);
      t3 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(r3 + k + 16), t3);
    }
    for (; k < p.k; k += 16) {
      const __mmask16 m = mask_of(p.k - k);
      const __m512 x0 = _mm512_maskz_loadu_ps(m, p.a + k);
      s0 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, r0 + k), s0);
      s1 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, r1 + k), s1);
      s2 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, r2 + k), s2);
      s3 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, r3 + k), s3);
    }
    finish(j, _mm512_reduce_add_ps(_mm512_add_ps(s0, t0)));
    finish(j + 1, _mm512_reduce_add_ps(_mm512_add_ps(s1, t1)));
    finish(j + 2, _mm512_reduce_add_ps(_mm512_add_ps(s2, t2)));
    finish(j + 3, _mm512_reduce_add_ps(_mm512_add_ps(s3, t3)));
  }
  for (; j < p.n; ++j) {
    const float* r0 = p.b + j * p.ldb;
    __m512 s0 = zero;
    for (size_t k = 0; k < p.k; k += 16) {
      const __mmask16 m = mask_of(p.k - k);
      s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p.a + k), _mm512_maskz_loadu_ps(m, r0 + k), s0);
    }
    finish(j, _mm512_reduce_add_ps(s0));
  }
}

}  // namespace qk
