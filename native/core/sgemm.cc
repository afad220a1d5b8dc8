// fp32 GEMM driver (see sgemm.h). Blocking (GotoBLAS order):
//   task = (block of <= kMc rows of A/C) x (block of columns of B/C), spread over threads;
//   inside a task, K in blocks of <= kKc: B's block (kc x nc, 32-column panels) is read in place
//   from a packed B (then nc is all of N unless the threads need column blocks), or packed into a
//   per-thread buffer of <= kNc columns that stays in L2, or (kRowMajorB kernels, B read once)
//   handed over row-major; sgemm_run_block then cuts the block into K chunks and strips of the
//   kernel's nr columns (A packed per chunk into slivers of mr rows for kPackA kernels), and the
//   kernel walks a strip's rows in register tiles (AVX-512: 6-row tiles over two panels, A read in
//   place, so the rows of A of a task, <= 256 KiB per K block, stay in L2 while B streams through
//   once per task).
// Each C element is owned by one task and accumulated in increasing k (the K blocks continue the
// same chain through C), so neither the thread count nor the blocking changes a result.
// Geometry and traits come from the selected kernel's entry (kernels_sgemm.def), never from its path.
#include "sgemm.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "../dispatch/dispatch.h"
#include "ref.h"
#include "mem.h"
#include "threadpool.h"

namespace qk {

namespace {

constexpr size_t kKc = kSgemmKc;  // K block: a 32-column panel of it is 32 KiB
constexpr size_t kNc = 512;       // columns per task packing B itself: kc x nc = 512 KiB, in L2
constexpr size_t kMc = 256;       // rows per task
// M == 1 with an unpacked B: one matrix-vector pass, columns (or rows of B^T) per task.
constexpr size_t kGemvMinCols = 64;

using FloatBuf = AlignedPtr<float>;

FloatBuf alloc_floats(size_t n) { return aligned_array<float>(n); }

// Per-thread packing buffer for one B block (kKc x kNc floats).
float* thread_pack_buffer() {
  thread_local FloatBuf buf;
  if (!buf) buf = alloc_floats(kKc * kNc);
  return buf.get();
}

// Packs B[k0:k0+kc, n0:n0+n] (columns beyond N zero) into panels of kc x 32 at out.
void pack_block(const float* b, size_t K, size_t N, bool trans, size_t k0, size_t kc, size_t n0, size_t n, float* out) {
  const size_t panels = ceil_div(n, kSgemmPanel);
  const size_t full = n / kSgemmPanel;  // panels with 32 columns of B
  const size_t stride = kc * kSgemmPanel;
  if (!trans) {
    // Row by row: each row of the block is read once, front to back (one stream for the
    // prefetcher), and its 32-column pieces go to their panels.
    // Rows of B lie N floats apart: every row starts a new stream the hardware prefetchers have
    // to find again, so rows a few ahead are prefetched by hand (in bounds: k + ahead < kc).
    constexpr size_t kAhead = 6;
    for (size_t k = 0; k < kc; ++k) {
      const float* s = b + (k0 + k) * N + n0;
      float* d = out + k * kSgemmPanel;
      if (k + kAhead < kc)
        for (size_t j = 0; j < n; j += 16) __builtin_prefetch(s + kAhead * N + j, 0, 3);
      for (size_t p = 0; p < full; ++p) {
        const float* sp = s + p * kSgemmPanel;
        float* dp = d + p * stride;
        for (size_t j = 0; j < kSgemmPanel; ++j) dp[j] = sp[j];
      }
      if (full < panels) {
        const size_t w = n - full * kSgemmPanel;
        const float* sp = s + full * kSgemmPanel;
        float* dp = d + full * stride;
        for (size_t j = 0; j < w; ++j) dp[j] = sp[j];
        for (size_t j = w; j < kSgemmPanel; ++j) dp[j] = 0.0f;
      }
    }
    return;
  }
  for (size_t p = 0; p < panels; ++p) {
    float* dst = out + p * stride;
    const size_t j0 = n0 + p * kSgemmPanel;
    const size_t w = std::min(kSgemmPanel, N - j0);
    // B^T rows j: contiguous in k. 8 columns at a time keep 8 read streams.
    size_t j = 0;
    for (; j + 8 <= w; j += 8) {
      const float* s = b + (j0 + j) * K + k0;
      for (size_t k = 0; k < kc; ++k) {
        float* d = dst + k * kSgemmPanel + j;
        for (size_t q = 0; q < 8; ++q) d[q] = s[q * K + k];
      }
    }
    for (; j < w; ++j) {
      const float* s = b + (j0 + j) * K + k0;
      for (size_t k = 0; k < kc; ++k) dst[k * kSgemmPanel + j] = s[k];
    }
    for (size_t k = 0; k < kc; ++k)
      for (size_t jj = w; jj < kSgemmPanel; ++jj) dst[k * kSgemmPanel + jj] = 0.0f;
  }
}

// K = 0: C = bias (or 0), then relu.
void fill_no_k(const SgemmArgs& g) {
  for (size_t i = 0; i < g.M; ++i) {
    float* c = g.c + i * g.N;
    for (size_t j = 0; j < g.N; ++j) {
      float v = g.bias ? 0.0f + g.bias[j] : 0.0f;
      if (g.relu) v = sgemm_relu(v);
      c[j] = v;
    }
  }
}

// A packed for a kPackA kernel: the chunk's rows of A (k0 .. k0 + kc) in slivers of mr rows,
// sliver s at out + s * mr * kc with element (r, kk) at [kk * mr + r]. Rows past m are not written
// (the tiles of the last sliver read only its rows).
void pack_a(const SgemmBlock& p, size_t k0, size_t kc, size_t mr, float* out) {
  for (size_t i0 = 0; i0 < p.m; i0 += mr) {
    const size_t rows = std::min(mr, p.m - i0);
    float* ap = out + i0 * kc;
    for (size_t r = 0; r < rows; ++r) {
      const float* src = p.a + (i0 + r) * p.lda + k0;
      for (size_t k = 0; k < kc; ++k) ap[k * mr + r] = src[k];
    }
  }
}

void run_gemv(const SgemmArgs& g, sgemv_fn fn) {
  const size_t threads = static_cast<size_t>(num_threads());
  size_t tasks = std::min(threads, std::max<size_t>(1, g.N / kGemvMinCols));
  const size_t chunk = round_up(ceil_div(g.N, tasks), 16);
  tasks = ceil_div(g.N, chunk);
  parallel_for(tasks, [&](size_t t) {
    const size_t j0 = t * chunk;
    const size_t n = std::min(chunk, g.N - j0);
    SgemvArgs p;
    p.k = g.K;
    p.n = n;
    p.a = g.a;
    p.b = g.trans_b ? g.b + j0 * g.K : g.b + j0;
    p.ldb = g.trans_b ? g.K : g.N;
    p.trans = g.trans_b;
    p.c = g.c + j0;
    p.bias = g.bias ? g.bias + j0 : nullptr;
    p.relu = g.relu;
    fn(p);
  });
}

}  // namespace

size_t sgemm_packed_floats(size_t K, size_t N) { return round_up(N, kSgemmPanel) * K; }

void sgemm_pack_b(const float* b, size_t K, size_t N, bool trans, float* out) {
  const size_t panels = ceil_div(N, kSgemmPanel);
  if (panels == 0 || K == 0) return;
  // Tasks of one K block x 8 panels (256 columns).
  const size_t per = 8, groups = ceil_div(panels, per), nkb = ceil_div(K, kKc);
  const size_t np = panels * kSgemmPanel;
  parallel_for(nkb * groups, [&](size_t t) {
    const size_t kb = t / groups, g = t % groups;
    const size_t k0 = kb * kKc, kc = std::min(kKc, K - k0);
    const size_t n0 = g * per * kSgemmPanel, n = std::min(per * kSgemmPanel, N - n0);
    pack_block(b, K, N, trans, k0, kc, n0, n, out + k0 * np + (n0 / kSgemmPanel) * kc * kSgemmPanel);
  });
}

void sgemm_run_block(sgemm_strip_fn fn, const KernelGeom& geo, const SgemmBlock& p) {
  const size_t mr = std::max<uint32_t>(geo.mr, 1), nr = std::max<uint32_t>(geo.nr, 1);
  const bool packs_a = (geo.traits & kPackA) != 0;
  thread_local std::vector<float> abuf;
  if (packs_a) {
    const size_t need = round_up(p.m, mr) * std::min(p.k, kKc);
    if (abuf.size() < need) abuf.resize(need);
  }
  SgemmStrip s;
  s.m = p.m;
  s.lda = p.lda;
  s.b_panel_stride = p.b_panel_stride;
  s.ldb = p.ldb;
  s.ldc = p.ldc;
  // K chunks of kKc (one pass when k = 0: C = 0 or bias), each continuing the chains through C.
  for (size_t k0 = 0; k0 < p.k || (k0 == 0 && p.k == 0); k0 += kKc) {
    const size_t kc = std::min(kKc, p.k - k0);
    const bool last = k0 + kc >= p.k;
    s.k = kc;
    s.flags = (p.flags & QK_SGEMM_ACCUMULATE) | (k0 > 0 ? QK_SGEMM_ACCUMULATE : 0u) |
              (last ? p.flags & (QK_SGEMM_BIAS | QK_SGEMM_RELU) : 0u);
    if (packs_a) {
      pack_a(p, k0, kc, mr, abuf.data());
      s.a = abuf.data();
    } else {
      s.a = p.a + k0;
    }
    // Strips of nr columns; the last one narrower.
    for (size_t j0 = 0; j0 < p.n; j0 += nr) {
      s.n = std::min(nr, p.n - j0);
      s.n_after = p.n - j0 - s.n;
      s.b = p.b + (j0 / kSgemmPanel) * p.b_panel_stride + (j0 % kSgemmPanel) + k0 * p.ldb;
      s.c = p.c + j0;
      s.bias = p.bias ? p.bias + j0 : nullptr;
      fn(s);
    }
    if (last) break;
  }
}

void sgemm(const SgemmArgs& g) {
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) {
    fill_no_k(g);
    return;
  }
  const KernelTable& kt = kernels();
  if (g.M == 1 && g.packed == nullptr) {
    run_gemv(g, kt.sgemv);
    return;
  }
  const sgemm_strip_fn strip = kt.sgemm_block;
  const KernelGeom geo = kt.sgemm_block_geom;
  const size_t mr = std::max<uint32_t>(geo.mr, 1);
  // Block heights are whole register tiles, unless the kernel spreads a block's rows evenly over
  // its tiles (then equal blocks balance the threads better).
  const size_t m_align = (geo.traits & kSpreadRows) ? 1 : mr;
  const size_t threads = static_cast<size_t>(num_threads());

  // Task grid: equal blocks of <= kMc rows and <= ncap columns (the whole N when B is packed
  // ahead: a task then packs its rows of A once per K block for all of N); with several threads
  // at least two tasks per thread (the pool hands tasks out one by one, so a thread slowed down
  // by other processes gets fewer) and a multiple of the thread count while there are few.
  // Columns are split first, down to 256 (each call packs its rows of A once for all its
  // columns), then rows, then columns down to 64.
  size_t mb = 0, nb = 0, mc = 0, nc = 0;
  auto plan = [&](size_t ncap) {
    mb = ceil_div(g.M, round_up(kMc, m_align));
    nb = ceil_div(g.N, ncap);
    auto unbalanced = [&] {
      const size_t t = mb * nb;
      return t < 2 * threads || (t < 8 * threads && t % threads != 0);
    };
    while (threads > 1 && unbalanced()) {
      if (g.N / (nb + 1) >= 256)
        ++nb;
      else if (g.M / (mb + 1) >= 2 * mr)
        ++mb;
      else if (g.N / (nb + 1) >= 64)
        ++nb;
      else
        break;
    }
    mc = round_up(ceil_div(g.M, mb), m_align);
    nc = round_up(ceil_div(g.N, nb), kSgemmPanel);
    mb = ceil_div(g.M, mc);
    nb = ceil_div(g.N, nc);
  };
  plan(g.packed ? g.N : kNc);
  // Unpacked B used by 3 or more row blocks: pack it once, in parallel, instead of per task.
  // Up to kKeepFloats, the buffer is kept for the calling thread's next call (a fresh allocation
  // of megabytes costs its page faults every time).
  constexpr size_t kKeepFloats = size_t{2} << 20;  // 8 MiB
  thread_local FloatBuf kept;
  thread_local size_t kept_floats = 0;
  FloatBuf whole;
  const float* packed = g.packed;
  if (packed == nullptr && mb >= 3) {
    const size_t need = sgemm_packed_floats(g.K, g.N);
    float* dst = nullptr;
    if (need <= kKeepFloats) {
      if (kept_floats < need) {
        kept.reset();
        kept = alloc_floats(need);
        kept_floats = kept ? need : 0;
      }
      dst = kept.get();
    } else {
      whole = alloc_floats(need);
      dst = whole.get();
    }
    if (dst) {  // else (out of memory) pack per task
      sgemm_pack_b(g.b, g.K, g.N, g.trans_b, dst);
      packed = dst;
      plan(g.N);
    }
  }
  // K blocks: those of the packed format, or equal ones (<= kKc) when packing on the fly.
  const size_t nkb = ceil_div(g.K, kKc);
  const size_t kc_max = packed ? kKc : ceil_div(g.K, nkb);
  const size_t np = round_up(g.N, kSgemmPanel);

  // One row block and a row-major B: B is read once, so packing it is pure overhead for a kernel
  // that reads a row-major B itself (kRowMajorB: AVX-512 copies a strip's 4 panels at a time with
  // software prefetch, measured 3-20% faster than packing here for M <= 252 on Zen 4). The other
  // kernels would read it with plain loads: packed here for them.
  const bool in_place = packed == nullptr && !g.trans_b && mb == 1 && (geo.traits & kRowMajorB);

  parallel_for(mb * nb, [&](size_t t) {
    // Row blocks inner: consecutive tasks share B's columns.
    const size_t ib = t % mb, jb = t / mb;
    const size_t m0 = ib * mc, m = std::min(mc, g.M - m0);
    const size_t n0 = jb * nc, n = std::min(nc, g.N - n0);
    float* buf = packed || in_place ? nullptr : thread_pack_buffer();
    for (size_t kb = 0; kb < nkb; ++kb) {
      const size_t k0 = kb * kc_max, kc = std::min(kc_max, g.K - k0);
      SgemmBlock p;
      p.m = m;
      p.k = kc;
      p.a = g.a + m0 * g.K + k0;
      p.lda = g.K;
      p.ldb = kSgemmPanel;
      p.ldc = g.N;
      p.flags = (kb > 0 ? QK_SGEMM_ACCUMULATE : 0u);
      if (kb + 1 == nkb) p.flags |= (g.bias ? QK_SGEMM_BIAS : 0u) | (g.relu ? QK_SGEMM_RELU : 0u);
      p.n = n;
      if (in_place) {
        p.b = g.b + k0 * g.N + n0;
        p.b_panel_stride = kSgemmPanel;
        p.ldb = g.N;
        p.c = g.c + m0 * g.N + n0;
        p.bias = g.bias ? g.bias + n0 : nullptr;
        sgemm_run_block(strip, geo, p);
        continue;
      }
      if (packed) {
        p.b = packed + k0 * np + (n0 / kSgemmPanel) * kc * kSgemmPanel;
      } else {
        pack_block(g.b, g.K, g.N, g.trans_b, k0, kc, n0, n, buf);
        p.b = buf;
      }
      p.b_panel_stride = kc * kSgemmPanel;
      p.c = g.c + m0 * g.N + n0;
      p.bias = g.bias ? g.bias + n0 : nullptr;
      sgemm_run_block(strip, geo, p);
    }
  });
}

}  // namespace qk
