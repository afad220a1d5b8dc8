#include "gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "../dispatch/dispatch.h"
#include "quant.h"
#include "ref.h"
#include "mem.h"
#include "threadpool.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace qk {

AlignedBytes::AlignedBytes(size_t bytes) : n(bytes) {
  p = aligned_array<uint8_t>(bytes).release();
  if (p == nullptr) throw std::bad_alloc();
}
AlignedBytes::~AlignedBytes() { std::free(p); }

size_t PackedB::byte_length() const {
  return data.n + (col_zb.size() + col_c.size() + zp.size()) * sizeof(int32_t) +
         (b_scale.size() + scale.size()) * sizeof(float) + sizeof(PackedB);
}

namespace {

// A rows to the internal int8 form (x ^ flip), zero padded to lda, with their sums. Plain locals
// only: byte stores may alias anything, so captured references would block vectorization.
void convert_rows(const uint8_t* __restrict a, size_t i0, size_t i1, size_t K, size_t lda, uint8_t flip,
                  int8_t* __restrict out, int32_t* __restrict sums) {
  for (size_t i = i0; i < i1; ++i) {
    const uint8_t* __restrict src = a + i * K;
    int8_t* __restrict dst = out + i * lda;
    int32_t s = 0;
    size_t k0 = 0;
#if defined(__SSE2__)
    // 16 bytes at a time (SSE2 is baseline x86-64): sum(a_s) = sum(a_s ^ 0x80 as u8) - 128 * n.
    {
      const __m128i fv = _mm_set1_epi8(static_cast<char>(flip)), sv = _mm_set1_epi8(static_cast<char>(0x80));
      __m128i acc = _mm_setzero_si128();
      for (; k0 + 16 <= K; k0 += 16) {
        const __m128i w = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k0)), fv);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + k0), w);
        acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_xor_si128(w, sv), _mm_setzero_si128()));
      }
      const uint64_t tot = static_cast<uint64_t>(_mm_cvtsi128_si64(acc)) +
                           static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)));
      s = static_cast<int32_t>(static_cast<int64_t>(tot) - 128 * static_cast<int64_t>(k0));
    }
#endif
    for (size_t k = k0; k < K; ++k) {
      const int8_t v = static_cast<int8_t>(src[k] ^ flip);
      dst[k] = v;
      s += v;
    }
    for (size_t k = K; k < lda; ++k) dst[k] = 0;
    sums[i] = s;
  }
}

void convert_a(const uint8_t* a, size_t M, size_t K, size_t lda, uint8_t flip, int8_t* out, int32_t* sums) {
  parallel_ranges(M, 64, M * K, [=](size_t i0, size_t i1) { convert_rows(a, i0, i1, K, lda, flip, out, sums); });
}

}  // namespace

std::shared_ptr<PackedB> pack_b(const uint8_t* b, size_t K, size_t N, bool b_signed, bool transposed, const int32_t* zp,
                                bool zp_per_col, const float* scale, bool scale_per_col) {
  auto P = std::make_shared<PackedB>();
  PackedB& pb = *P;
  pb.K = K;
  pb.N = N;
  pb.kp = round_up(K, 4);
  pb.np = round_up(N, kGemmColAlign);
  pb.b_signed = b_signed;
  pb.zp_per_col = zp_per_col;
  pb.scale_per_col = scale_per_col;
  pb.zp.assign(zp, zp + (zp_per_col ? N : 1));
  pb.scale.assign(scale, scale + (scale_per_col ? N : 1));
  {
    AlignedBytes tmp(pb.np * pb.kp);
    std::swap(pb.data.p, tmp.p);
    std::swap(pb.data.n, tmp.n);
  }
  const uint8_t flip = b_signed ? 0x80 : 0x00;
  const size_t kp = pb.kp, np = pb.np;
  std::vector<int32_t> colsum(np, 0);
  const size_t panels = np / kGemmPanel + (np % kGemmPanel ? 1 : 0);
  // One panel per task: columns are independent. Reads follow B's memory order (rows of a K x N
  // B in runs of up to 64 columns; columns of an N x K B), writes stay inside one panel.
  parallel_ranges(panels, 1, K * N, [&](size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p) {
      const size_t w = gemm_panel_width(p, np);
      const size_t j0 = p * kGemmPanel;
      const size_t wv = std::min(w, N - j0);  // real columns in this panel
      uint8_t* dst = pb.data.p + gemm_panel_offset(p, kp);
      if (wv < w || kp != K) std::memset(dst, 0, w * kp);  // padding columns / k must be 0
      int32_t sums[kGemmPanel] = {0};
      if (!transposed) {
        static const uint8_t kZeroRow[kGemmPanel] = {0};
        for (size_t k = 0; k < K; k += 4) {
          // Four rows of B at once: one 4-byte group per column. Rows past K read as flip, i.e. 0.
          const uint8_t* r[4];
          for (size_t t = 0; t < 4; ++t) r[t] = k + t < K ? b + (k + t) * N + j0 : kZeroRow;
          const uint8_t f[4] = {flip, k + 1 < K ? flip : uint8_t{0}, k + 2 < K ? flip : uint8_t{0},
                                k + 3 < K ? flip : uint8_t{0}};
          uint8_t* d = dst + (k / 4) * w * 4;
          for (size_t c = 0; c < wv; ++c) {
            const uint8_t v0 = static_cast<uint8_t>(r[0][c] ^ f[0]), v1 = static_cast<uint8_t>(r[1][c] ^ f[1]);
            const uint8_t v2 = static_cast<uint8_t>(r[2][c] ^ f[2]), v3 = static_cast<uint8_t>(r[3][c] ^ f[3]);
            d[c * 4] = v0;
            d[c * 4 + 1] = v1;
            d[c * 4 + 2] = v2;
            d[c * 4 + 3] = v3;
            sums[c] += static_cast<int32_t>(v0) + v1 + v2 + v3;
          }
        }
      } else {
        for (size_t c = 0; c < wv; ++c) {
          const uint8_t* src = b + (j0 + c) * K;
          int32_t s = 0;
          for (size_t k = 0; k < K; ++k) {
            const uint8_t v = static_cast<uint8_t>(src[k] ^ flip);
            dst[(k / 4) * w * 4 + c * 4 + (k % 4)] = v;
            s += v;
          }
          sums[c] = s;
        }
      }
      for (size_t c = 0; c < wv; ++c) colsum[j0 + c] = sums[c];
    }
  });
  pb.col_zb.assign(np, 0);
  pb.col_c.assign(np, 0);
  pb.b_scale.assign(np, 1.0f);
  for (size_t j = 0; j < N; ++j) {
    const int32_t z = pb.zp[zp_per_col ? j : 0];
    const int32_t zb = z + (b_signed ? 128 : 0);
    pb.col_zb[j] = zb;
    pb.col_c[j] =
        static_cast<int32_t>(static_cast<uint32_t>(colsum[j]) - static_cast<uint32_t>(K) * static_cast<uint32_t>(zb));
    pb.b_scale[j] = pb.scale[scale_per_col ? j : 0];
  }
  pb.max_dev = gemm_max_dev(b_signed, pb.zp.data(), pb.zp.size());
  return P;
}

int32_t gemm_max_dev(bool is_signed, const int32_t* zp, size_t n) {
  const int32_t lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
  int32_t m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::max(zp[i] - lo, hi - zp[i]));
  return m;
}

std::string gemm_bound_error(size_t K, int64_t max_dev_a, int64_t max_dev_b) {
  const long double bound = static_cast<long double>(K) * max_dev_a * max_dev_b;
  if (bound <= 2147483647.0L) return "";
  const int64_t per = max_dev_a * max_dev_b;
  const int64_t kmax = per > 0 ? 2147483647LL / per : 0;
  return "Expected K <= " + std::to_string(kmax) +
         " for these dtypes and zero points (K * max|a - aZeroPoint| * max|b - bZeroPoint| = " + std::to_string(K) +
         " * " + std::to_string(max_dev_a) + " * " + std::to_string(max_dev_b) +
         " must not exceed 2^31 - 1 for exact int32 accumulation) but received K = " + std::to_string(K);
}

void gemm_run(const PackedB& B, const GemmCall& c) {
  const size_t M = c.M, K = B.K, N = B.N, kp = B.kp, np = B.np;
  if (M == 0 || N == 0) return;
  // A in the internal form (int8, zero padded to kp), with its row sums.
  size_t lda = round_up(std::max<size_t>(kp, 4), 64);
  if (lda % 512 == 0) lda += 64;  // avoid rows aliasing in the same L1 sets
  // Scratch reused by each calling thread (no page faults per call); every byte used is written.
  thread_local std::unique_ptr<int8_t[]> t_buf;
  thread_local size_t t_cap = 0;
  const size_t need = M * lda;
  if (need > t_cap) {
    t_buf.reset(new int8_t[need]);
    t_cap = need;
  }
  int8_t* const a_int = t_buf.get();
  std::vector<int32_t> row_sum(M), row_za(M);
  const uint8_t flip = c.a_signed ? 0x00 : 0x80;
  const int32_t oa = c.a_signed ? 0 : 128;
  convert_a(c.a, M, K, lda, flip, a_int, row_sum.data());
  for (size_t i = 0; i < M; ++i) row_za[i] = c.a_zp[c.a_zp_per_row ? i : 0] - oa;
  GemmArgs g{};
  g.a = a_int;
  g.lda = lda;
  g.b = B.data.p;
  g.kp = kp;
  g.np = np;
  g.n = N;
  g.row_sum = row_sum.data();
  g.row_za = row_za.data();
  g.col_zb = B.col_zb.data();
  g.col_c = B.col_c.data();
  g.out_kind = c.out_kind;
  g.out = c.out;
  g.ldo = N;
  std::vector<float> bias, mult;
  std::vector<int32_t> bias_q;
  static const float kOne = 1.0f;
  g.a_scale = c.a_scale ? c.a_scale : &kOne;
  g.a_scale_step = c.a_scale_per_row ? 1 : 0;
  g.b_scale = B.b_scale.data();
  g.relu = c.relu ? 1 : 0;
  g.y_scale = c.y_scale;
  g.y_zp = c.y_zp;
  if (c.out_kind == kGemmOutFloat32) {
    bias.assign(np, 0.0f);
    if (c.bias) std::copy(c.bias, c.bias + N, bias.begin());
    g.bias = bias.data();
  } else if (c.out_kind == kGemmOutInt8 || c.out_kind == kGemmOutUint8) {
    g.qlo = c.out_kind == kGemmOutInt8 ? -128 : 0;
    g.qhi = c.out_kind == kGemmOutInt8 ? 127 : 255;
    if (c.relu) g.qlo = std::max(g.qlo, c.y_zp);
    bias_q.assign(np, 0);
    if (c.bias_q) std::copy(c.bias_q, c.bias_q + N, bias_q.begin());
    g.bias_q = bias_q.data();
    if (!c.a_scale_per_row) {
      mult.assign(np, 1.0f);
      for (size_t j = 0; j < N; ++j) mult[j] = gemm_mult(g.a_scale[0], B.b_scale[j], c.y_scale);
      g.col_mult = mult.data();
    }
  }

  const KernelTable& kt = kernels();
  const gemm_i8_fn fn = kt.gemm_i8;
  const size_t mr = std::max<size_t>(1, kt.gemm_i8_geom.mr), nr = std::max<size_t>(1, kt.gemm_i8_geom.nr);
  // Blocking: mc rows of A (whole register tiles of the kernel, about 256 KiB of A) per task, a
  // run of 64-column panels of B per task; enough tasks to balance the threads.
  const size_t mc_max = std::max(mr, (size_t{256} << 10) / lda / mr * mr);
  const size_t mtasks = (M + mc_max - 1) / mc_max;
  const size_t mc = std::min(mc_max, round_up((M + mtasks - 1) / mtasks, mr));  // balanced
  const size_t panels = (np + kGemmPanel - 1) / kGemmPanel;
  const int T = num_threads();
  const double work = static_cast<double>(M) * N * K;
  size_t ntasks = 1;
  if (T > 1 && work >= 1 << 18) {
    const size_t want =
        static_cast<size_t>(8 * T);  // several tasks per thread: balance, and less work stuck with a descheduled helper
    ntasks = std::min(panels, std::max<size_t>(1, (want + mtasks - 1) / mtasks));
  }
  const size_t per = (panels + ntasks - 1) / ntasks;
  ntasks = (panels + per - 1) / per;
  const size_t tasks = mtasks * ntasks;
  auto run = [&](size_t t) {
    const size_t nt = t / mtasks, mt = t % mtasks;
    const size_t m0 = mt * mc, m1 = std::min(M, m0 + mc);
    // The task's panels, each cut into strips of nr columns (the last one of a panel narrower);
    // strips that start past N are padding only.
    for (size_t p = nt * per; p < std::min(panels, (nt + 1) * per); ++p) {
      const size_t j0 = p * kGemmPanel, w = gemm_panel_width(p, np);
      for (size_t c = 0; c < w && j0 + c < N; c += nr) fn(g, m0, m1, j0 + c, j0 + c + std::min(nr, w - c));
    }
  };
  if (tasks == 1)
    run(0);
  else
    parallel_for(tasks, run);
  if (t_cap > (size_t{64} << 20)) {  // do not keep more than 64 MiB per thread
    t_buf.reset();
    t_cap = 0;
  }
}

void linear_dynamic(const float* x, size_t M, const PackedB& B, const float* bias, bool relu, bool per_row,
                    bool act_signed, float* out) {
  const size_t K = B.K;
  if (M == 0 || B.N == 0) return;
  std::vector<uint8_t> q(M * K);
  const size_t groups = per_row ? M : 1;
  const size_t glen = per_row ? K : M * K;
  std::vector<float> scale(groups);
  std::vector<int32_t> zp(groups);
  const KernelTable& kt = kernels();
  auto quant_group = [&](size_t gi) {
    const float* xs = x + gi * glen;
    uint8_t* qs = q.data() + gi * glen;
    if (!act_signed) {
      dynamic_quantize(xs, glen, qs, &scale[gi], &zp[gi]);
      return;
    }
    MinMaxAcc acc{std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(), 0, 0};
    kt.minmax_uniform(xs, glen, &acc);
    float amax = 0.0f;
    if (acc.min <= acc.max) amax = std::max(std::fabs(acc.min), std::fabs(acc.max));
    float s = amax / 127.0f;
    if (!(s >= std::numeric_limits<float>::min()) || !std::isfinite(s)) s = 1.0f;
    scale[gi] = s;
    zp[gi] = 0;
    const QRange r{-127, 127, 0};
    kt.quant_uniform(xs, glen, s, 0, r, qs);
  };
  if (groups == 1)
    quant_group(0);
  else
    parallel_ranges(groups, 16, M * K * sizeof(float), [&](size_t g0, size_t g1) {
      for (size_t gi = g0; gi < g1; ++gi) quant_group(gi);
    });
  GemmCall c;
  c.a = q.data();
  c.a_signed = act_signed;
  c.M = M;
  c.a_zp = zp.data();
  c.a_zp_per_row = per_row;
  c.out_kind = kGemmOutFloat32;
  c.out = out;
  c.a_scale = scale.data();
  c.a_scale_per_row = per_row;
  c.bias = bias;
  c.relu = relu;
  gemm_run(B, c);
}

}  // namespace qk
