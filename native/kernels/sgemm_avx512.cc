// AVX-512 fp32 GEMM kernels: register tiles of up to 6 rows x 64 columns (two 32-column panels of
// B: 24 zmm accumulators, four zmm of B per k, A broadcast from memory) over K chunks of up to 256
// (a whole block of the panel format: C is loaded and stored once per 256 k). A strip is 128
// columns (four panels: two tile columns, or a single row four panels at a time). A is read in
// place (6 rows per tile share one L1 set at most 6 ways deep even when lda is a multiple of
// 1024), so nothing is packed per call. Rows are spread evenly over the tiles (kSpreadRows; m = 32:
// 6 + 6 + 5 + 5 + 5 + 5); panel pairs outer, slivers of rows inner: a pair of panels (64 KiB)
// streams from L2 for every sliver, and each tile prefetches a share of the next pair (in this
// strip or the next) and the C rows of the next tile, so that none waits on L3 / DRAM at its
// first k.
// Why 6 x 64 and not 14 x 32 (28 accumulators too): a tile's C rows lie ldc apart, and with ldc a
// multiple of 1024 floats 14 rows of C fall into one 8-way L1 set: 14 x 32 ran 4-5% slower there
// (108 against 113 GFLOPS on Zen 4, 1024 x 1024), 6 x 64 runs the same for every ldc.
// Column tails use masked loads and stores (an odd last panel a 32-column tile). A single row
// (GEMV with a packed B, bound by the memory bandwidth) reads four panels at a time. A row-major B
// (kRowMajorB) is copied a strip (4 panels) at a time into a per-thread buffer first.
// Each C element is one FMA chain in increasing k (docs/numerics.md, "fp32 GEMM").
#include "x86_common.h"

#include <vector>

#include "kernel_decls.h"
#include "strip.h"

namespace qk {

namespace {

constexpr KernelGeom kGeom = geom::sgemm_block_avx512;  // kernels_sgemm.def
constexpr int kMr = static_cast<int>(kGeom.mr);
static_assert(kMr >= 1 && kMr <= 6 && kGeom.nr == 4 * kSgemmPanel && (kGeom.traits & kSpreadRows) &&
                  (kGeom.traits & kRowMajorB) && !(kGeom.traits & kPackA),
              "tiles of 1-6 rows x 2 panels spread over the rows, strips of 4 panels, A in place");
constexpr size_t kKcPack = kSgemmKc;  // K chunk: a pair of B panels is 64 KiB

QK_X86_INLINE __m512 epilogue(__m512 v, __m512 bias, uint32_t flags) {
  if (flags & QK_SGEMM_BIAS) v = _mm512_add_ps(v, bias);
  // max(0, v) returns v when v is NaN or a zero of either sign: v < 0 ? 0 : v.
  if (flags & QK_SGEMM_RELU) v = _mm512_max_ps(_mm512_setzero_ps(), v);
  return v;
}

QK_X86_INLINE __mmask16 mask_of(size_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// What a tile prefetches while it runs, two cache lines per k step: `lines` lines from `b` on (a
// share of the next pair of panels) into L2, then `c_rows` rows of the next tile's C (256 bytes
// each, ldc floats apart) into L1. Measured on Zen 4 (M = 9 / 13 / 32, N = K = 4096, B from DRAM):
// B into L1 (prefetcht0) or one line per step left B at 10-15 GB/s (66-69 GFLOPS for M = 9, 13),
// prefetcht2 with two lines per step reaches 94-97; with a single sliver per pair (m <= 6) B is
// read once and the hardware prefetchers do better alone (3 x 1000 x 1000: 104 against 60).
// Addresses as integers: a prefetch may point past the end of B (it never faults).
struct Prefetch {
  uintptr_t b = 0;
  size_t lines = 0;
  uintptr_t c = 0;
  size_t c_rows = 0;
};

QK_X86_INLINE void prefetch_l1(uintptr_t p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
QK_X86_INLINE void prefetch_l2(uintptr_t p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T2); }

// R x 32P tile: C[R x 32P] (=|+=) A[R x kc] (rows lda apart) * B (P panels panel_stride apart,
// rows 32 floats apart). mask[2q], mask[2q + 1]: the columns of panel q.
template <int R, int P>
QK_X86_INLINE void tile(size_t kc, const float* a, size_t lda, const float* b, size_t panel_stride, size_t ldc,
                        float* c, const __mmask16* mask, uint32_t flags, const float* bias, const Prefetch& pf) {
  constexpr int V = 2 * P;
  __m512 acc[R][V];
  if (flags & QK_SGEMM_ACCUMULATE) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_maskz_loadu_ps(mask[v], c + r * ldc + 16 * v);
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  const float* bp[V];  // the rows of vector v: 16 columns of a panel
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) bp[v] = b + (v / 2) * panel_stride + 16 * (v % 2);
  auto step = [&](size_t k) __attribute__((always_inline)) {
    __m512 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = _mm512_loadu_ps(bp[v] + k * kSgemmPanel);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + k]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  };
  // k steps with a prefetch (B lines, then C lines), then the rest without.
  const size_t kb = (pf.lines + 1) / 2 < kc ? (pf.lines + 1) / 2 : kc;
  const size_t kcp = kb + 2 * pf.c_rows < kc ? kb + 2 * pf.c_rows : kc;
  uintptr_t pb = pf.b;
  size_t k = 0;
  for (; k < kb; ++k) {
    prefetch_l2(pb);
    prefetch_l2(pb + 64);
    pb += 128;
    step(k);
  }
  for (uintptr_t pc = pf.c; k < kcp; ++k) {
    prefetch_l1(pc);
    prefetch_l1(pc + 64);
    pc += ((k - kb) & 1) ? ldc * sizeof(float) - 128 : 128;
    step(k);
  }
#pragma GCC unroll 2
  for (; k < kc; ++k) step(k);
  __m512 bv[V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v)
    bv[v] = (flags & QK_SGEMM_BIAS) ? _mm512_maskz_loadu_ps(mask[v], bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mask[v], epilogue(acc[r][v], bv[v], flags));
}

// One tile, out of line (the tiles of a strip are direct calls).
template <int R, int P>
__attribute__((noinline)) void tile_fn(size_t kc, const float* a, size_t lda, const float* b, size_t panel_stride,
                                       size_t ldc, float* c, const __mmask16* mask, uint32_t flags, const float* bias,
                                       const Prefetch& pf) {
  tile<R, P>(kc, a, lda, b, panel_stride, ldc, c, mask, flags, bias, pf);
}

// One row of C against P panels of B (32 * P columns; full panels when P > 1): 2P independent FMA
// chains. Four panels at a time read B from memory measurably faster on Zen 4 (four streams:
// 24 GB/s against 19-20 for one panel at a time, with or without prefetcht0), and prefetching
// the same rows of the next four panels into L2 (prefetcht2; in the panel format that is the
// next group, or the next K block's first one) adds about 10% (26-27 GB/s).
template <int P>
QK_X86_INLINE void row_panels(size_t kc, const float* a, const float* b, size_t panel_stride, float* c, __mmask16 m0,
                              __mmask16 m1, uint32_t flags, const float* bias) {
  const uintptr_t pf = reinterpret_cast<uintptr_t>(b) + P * panel_stride * sizeof(float);
  __m512 acc[2 * P];
#pragma GCC unroll 8
  for (int q = 0; q < P; ++q) {
    const __mmask16 k0 = q + 1 < P ? static_cast<__mmask16>(0xffff) : m0;
    const __mmask16 k1 = q + 1 < P ? static_cast<__mmask16>(0xffff) : m1;
    acc[2 * q] = (flags & QK_SGEMM_ACCUMULATE) ? _mm512_maskz_loadu_ps(k0, c + 32 * q) : _mm512_setzero_ps();
    acc[2 * q + 1] = (flags & QK_SGEMM_ACCUMULATE) ? _mm512_maskz_loadu_ps(k1, c + 32 * q + 16) : _mm512_setzero_ps();
  }
  for (size_t k = 0; k < kc; ++k) {
    const __m512 av = _mm512_set1_ps(a[k]);
#pragma GCC unroll 8
    for (int q = 0; q < P; ++q) {
      if (P > 1) {
        const uintptr_t pq = pf + (q * panel_stride + k * kSgemmPanel) * sizeof(float);
        prefetch_l2(pq);
        prefetch_l2(pq + 64);
      }
      const float* bq = b + q * panel_stride + k * kSgemmPanel;
      acc[2 * q] = _mm512_fmadd_ps(av, _mm512_loadu_ps(bq), acc[2 * q]);
      acc[2 * q + 1] = _mm512_fmadd_ps(av, _mm512_loadu_ps(bq + 16), acc[2 * q + 1]);
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < P; ++q) {
    const __mmask16 k0 = q + 1 < P ? static_cast<__mmask16>(0xffff) : m0;
    const __mmask16 k1 = q + 1 < P ? static_cast<__mmask16>(0xffff) : m1;
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (flags & QK_SGEMM_BIAS) {
      bias0 = _mm512_maskz_loadu_ps(k0, bias + 32 * q);
      bias1 = _mm512_maskz_loadu_ps(k1, bias + 32 * q + 16);
    }
    _mm512_mask_storeu_ps(c + 32 * q, k0, epilogue(acc[2 * q], bias0, flags));
    _mm512_mask_storeu_ps(c + 32 * q + 16, k1, epilogue(acc[2 * q + 1], bias1, flags));
  }
}

// Tiles over the panels at b (panel_stride apart): columns [0, n) of the strip, then n_after
// more columns whose first pair the last tiles prefetch (B only when prefetch_b: adjacent panels).
void panels(const SgemmStrip& s, const float* b, size_t panel_stride, size_t n, size_t n_after, bool prefetch_b) {
  constexpr size_t kStep = 2 * kSgemmPanel;
  const SpreadRows<kMr> sl(s.m);
  for (size_t j0 = 0; j0 < n; j0 += kStep) {
    const size_t w = n - j0;
    const int np = w > kSgemmPanel ? 2 : 1;
    __mmask16 mask[4];
    for (size_t v = 0; v < 4; ++v) mask[v] = mask_of(w > 16 * v ? w - 16 * v : 0);
    const float* bq = b + (j0 / kSgemmPanel) * panel_stride;
    const float* bias = s.bias ? s.bias + j0 : nullptr;
    // The next pair's lines (one or two panels of kc rows, adjacent in the panel format),
    // shared out over the slivers.
    const size_t rest = n + n_after - j0;
    const size_t next = rest > kStep ? (rest - kStep > kSgemmPanel ? 2 : 1) : 0;
    const size_t lines = next * s.k * (kSgemmPanel * sizeof(float) / 64);
    const size_t share = (lines + sl.count - 1) / sl.count;
    for (size_t q = 0; q < sl.count; ++q) {
      const size_t i0 = sl.first(q);
      Prefetch pf;
      if (prefetch_b && sl.count > 1 && q * share < lines) {  // (see Prefetch)
        pf.b = reinterpret_cast<uintptr_t>(bq + 2 * panel_stride) + q * share * 64;
        pf.lines = lines - q * share < share ? lines - q * share : share;
      }
      // C rows of the next tile: the next sliver, or the first one of the next pair.
      if (q + 1 < sl.count) {
        pf.c = reinterpret_cast<uintptr_t>(s.c + sl.first(q + 1) * s.ldc + j0);
        pf.c_rows = sl.rows(q + 1);
      } else if (next) {
        pf.c = reinterpret_cast<uintptr_t>(s.c + j0 + kStep);
        pf.c_rows = sl.rows(0);
      }
      tile_of_rows<kMr>(sl.rows(q), i0, [&](auto r, size_t i) {
        constexpr int R = decltype(r)::value;
        const float* a = s.a + i * s.lda;
        float* c = s.c + i * s.ldc + j0;
        if (np == 2)
          tile_fn<R, 2>(s.k, a, s.lda, bq, panel_stride, s.ldc, c, mask, s.flags, bias, pf);
        else
          tile_fn<R, 1>(s.k, a, s.lda, bq, panel_stride, s.ldc, c, mask, s.flags, bias, pf);
      });
    }
  }
}

}  // namespace

void sgemm_block_avx512(const SgemmStrip& s) {
  if (s.ldb != kSgemmPanel) {
    // A row-major B (rows ldb floats apart: for N a multiple of 1024 they all fall into the same
    // L1 sets): the strip's 4 panels are first copied into a per-thread buffer (rows of 512
    // contiguous bytes: fewer, longer streams than one panel at a time), prefetching kAhead rows
    // ahead; their tiles then prefetch nothing of B and no C of the next strip.
    thread_local std::vector<float> gbuf(4 * kKcPack * kSgemmPanel + 16);
    constexpr size_t kAhead = 8;
    const size_t gp = (s.n + kSgemmPanel - 1) / kSgemmPanel;
    for (size_t k = 0; k < s.k; ++k) {
      const float* row = s.b + k * s.ldb;
      const uintptr_t ahead = reinterpret_cast<uintptr_t>(row) + kAhead * s.ldb * sizeof(float);
      for (size_t q = 0; q < gp; ++q) {
        _mm_prefetch(reinterpret_cast<const char*>(ahead + q * 128), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(ahead + q * 128 + 64), _MM_HINT_T0);
        const size_t w = s.n - q * kSgemmPanel;
        const __mmask16 m0 = mask_of(w), m1 = mask_of(w > 16 ? w - 16 : 0);
        float* d = gbuf.data() + q * s.k * kSgemmPanel + k * kSgemmPanel;
        _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, row + q * kSgemmPanel));
        _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(m1, row + q * kSgemmPanel + 16));
      }
    }
    panels(s, gbuf.data(), s.k * kSgemmPanel, s.n, 0, false);
    return;
  }
  if (s.m == 1) {
    // One row: four panels at a time.
    if (s.n == 4 * kSgemmPanel) {
      row_panels<4>(s.k, s.a, s.b, s.b_panel_stride, s.c, 0xffff, 0xffff, s.flags, s.bias);
      return;
    }
    for (size_t j0 = 0; j0 < s.n; j0 += kSgemmPanel) {
      const size_t w = s.n - j0;
      row_panels<1>(s.k, s.a, s.b + (j0 / kSgemmPanel) * s.b_panel_stride, s.b_panel_stride, s.c + j0, mask_of(w),
                    mask_of(w > 16 ? w - 16 : 0), s.flags, s.bias ? s.bias + j0 : nullptr);
    }
    return;
  }
  // Prefetching the next pair as one run of lines needs adjacent panels (the panel format; not
  // the kernel tests' single block over a longer K).
  panels(s, s.b, s.b_panel_stride, s.n, s.n_after, s.b_panel_stride == s.k * kSgemmPanel);
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
