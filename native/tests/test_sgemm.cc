// fp32 GEMM: every sgemm_block / sgemv kernel (scalar reference included) and the driver under
// every usable path, against a float64 reference with the documented bound (docs/numerics.md,
// "fp32 GEMM"):
//   |c - c64| <= (K + 1) * 2^-23 * (sum_k |a_ik| |b_kj| + |bias_j|) + (K + 1) * 2^-149
// on tails of M, N, K (1, primes, non-multiples of every tile), K = 0, M or N = 0, bias / relu,
// K split into blocks (ACCUMULATE), packed and unpacked B, B transposed, 1-3 threads. Also: the
// scalar path is bit-identical to the plain loop, the thread count never changes a result, cells
// outside the output block are never written, NaN / Inf propagate.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/ref.h"
#include "core/sgemm.h"
#include "core/threadpool.h"
#include "dispatch/dispatch.h"
#include "test_util.h"

using namespace qk;

namespace {

const float kGuard = -12345.5f;

std::vector<float> rand_matrix(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = rng() % 16;
    float x = u(rng);
    if (k == 0)
      x *= 1000.0f;  // large
    else if (k == 1)
      x *= 1e-3f;  // small
    else if (k == 2)
      x = std::round(x * 8.0f) / 8.0f;  // exact, cancels
    else if (k == 3)
      x = 0.0f;
    v[i] = x;
  }
  return v;
}

// B(k, j) of a K x N matrix stored row-major (trans = false) or as N x K (trans = true).
inline float b_at(const float* b, size_t K, size_t N, bool trans, size_t k, size_t j) {
  return trans ? b[j * K + k] : b[k * N + j];
}

// Checks c (M x N, ldc) against the float64 product with the documented bound.
bool check_bound(const char* what, size_t M, size_t N, size_t K, const float* a, size_t lda, const float* b, bool trans,
                 const float* bias, bool relu, const float* c, size_t ldc, const float* c_init = nullptr) {
  ++checks();
  for (size_t i = 0; i < M; ++i)
    for (size_t j = 0; j < N; ++j) {
      double s = c_init ? c_init[i * ldc + j] : 0.0, mag = c_init ? std::fabs(c_init[i * ldc + j]) : 0.0;
      for (size_t k = 0; k < K; ++k) {
        const double p = static_cast<double>(a[i * lda + k]) * b_at(b, K, N, trans, k, j);
        s += p;
        mag += std::fabs(p);
      }
      if (bias) {
        s += bias[j];
        mag += std::fabs(bias[j]);
      }
      if (relu) s = s < 0 ? 0 : s;
      const double kk = static_cast<double>(K) + 1.0 + (c_init ? 1.0 : 0.0);
      const double bound = kk * std::ldexp(mag, -23) + kk * std::ldexp(1.0, -149);
      const double got = c[i * ldc + j];
      if (!(std::fabs(got - s) <= bound)) {
        fail_plain("%s: M=%zu N=%zu K=%zu trans=%d bias=%d relu=%d: C[%zu][%zu] = %.9g, float64 %.17g, bound %.3g",
                   what, M, N, K, trans, bias != nullptr, relu, i, j, got, s, bound);
        return false;
      }
    }
  return true;
}

// Panel format of B (K x N), as the driver and packWeightsF32 make it.
std::vector<float> pack(const float* b, size_t K, size_t N, bool trans) {
  std::vector<float> p(sgemm_packed_floats(K, N) + 1, kGuard);
  sgemm_pack_b(b, K, N, trans, p.data());
  return p;
}

// One block of panels over the whole K (panel stride K * 32), for the kernels alone.
std::vector<float> pack_one_block(const float* b, size_t K, size_t N, bool trans) {
  const size_t panels = (N + kSgemmPanel - 1) / kSgemmPanel;
  std::vector<float> p(panels * K * kSgemmPanel + 1, kGuard);
  for (size_t q = 0; q < panels; ++q)
    for (size_t k = 0; k < K; ++k)
      for (size_t j = 0; j < kSgemmPanel; ++j) {
        const size_t col = q * kSgemmPanel + j;
        p[q * K * kSgemmPanel + k * kSgemmPanel + j] = col < N ? b_at(b, K, N, trans, k, col) : 0.0f;
      }
  return p;
}

// ---- kernels -----------------------------------------------------------------------------

void test_block_kernels() {
  std::mt19937 rng(7);
  std::vector<size_t> ms, ns, ks;
  for (size_t m = 1; m <= 15; ++m) ms.push_back(m);
  ms.insert(ms.end(), {23, 24, 25, 29, 37, 48, 61});
  for (size_t n = 1; n <= 34; ++n) ns.push_back(n);
  ns.insert(ns.end(), {40, 47, 48, 49, 63, 64, 65, 80, 96, 97, 127, 128, 129, 131, 161, 193});
  ks = {0, 1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 31, 64, 100, 257};
  for (const KernelEntry& e : kernel_list()) {
    if (e.op != Op::sgemm_block || !isa_supported(e.isa)) continue;
    note_exercised(e);
    // A block runs as the driver runs it: K chunks and strips of the entry's geometry.
    const auto strip = reinterpret_cast<sgemm_strip_fn>(const_cast<void*>(e.fn));
    const auto fn = [&](const SgemmBlock& p) { sgemm_run_block(strip, e.geom, p); };
    int cases = 0;
    for (size_t m : ms)
      for (size_t n : ns) {
        const size_t k = ks[rng() % ks.size()];
        const uint32_t flags = rng() % 8;
        const size_t lda = k + rng() % 3, ldc = n + rng() % 5;
        std::vector<float> a = rand_matrix(m * lda + 1, 100 + cases);
        std::vector<float> b = rand_matrix(k * n + 1, 200 + cases);
        std::vector<float> bias = rand_matrix(n, 300 + cases);
        const bool trans = (cases & 1) != 0;
        std::vector<float> bt(k * n + 1);
        for (size_t kk = 0; kk < k; ++kk)
          for (size_t j = 0; j < n; ++j) bt[trans ? j * k + kk : kk * n + j] = b[kk * n + j];
        std::vector<float> pb = pack_one_block(bt.data(), k, n, trans);
        // Every third case reads a row-major B in place (rows ldb apart, NaN in the columns
        // past n that the last panel reads but must never store).
        const bool in_place = (cases % 3) == 2;
        const size_t ldb_raw = (n + kSgemmPanel - 1) / kSgemmPanel * kSgemmPanel + 3;
        std::vector<float> braw(k * ldb_raw + kSgemmPanel, NAN);
        for (size_t kk = 0; kk < k; ++kk)
          for (size_t j = 0; j < n; ++j) braw[kk * ldb_raw + j] = b[kk * n + j];
        std::vector<float> c((m + 1) * ldc + 3, kGuard);
        std::vector<float> init = rand_matrix(m * ldc, 400 + cases);
        if (flags & QK_SGEMM_ACCUMULATE)
          for (size_t i = 0; i < m; ++i)
            for (size_t j = 0; j < n; ++j) c[i * ldc + j] = init[i * ldc + j];
        SgemmBlock p;
        p.m = m;
        p.n = n;
        p.k = k;
        p.a = a.data();
        p.lda = lda;
        p.b = pb.data();
        p.b_panel_stride = k * kSgemmPanel;
        p.ldb = kSgemmPanel;
        if (in_place) {
          p.b = braw.data();
          p.b_panel_stride = kSgemmPanel;
          p.ldb = ldb_raw;
        }
        p.c = c.data();
        p.ldc = ldc;
        p.bias = bias.data();
        p.flags = flags;
        fn(p);
        char what[96];
        std::snprintf(what, sizeof what, "%s flags=%u%s", e.symbol, flags, in_place ? " in place" : "");
        check_bound(what, m, n, k, a.data(), lda, in_place ? b.data() : bt.data(), in_place ? false : trans,
                    (flags & QK_SGEMM_BIAS) ? bias.data() : nullptr, (flags & QK_SGEMM_RELU) != 0, c.data(), ldc,
                    (flags & QK_SGEMM_ACCUMULATE) ? init.data() : nullptr);
        // Nothing outside the block was written.
        for (size_t i = 0; i < c.size(); ++i) {
          const size_t r = i / ldc, col = i % ldc;
          if ((r >= m || col >= n) && fbits(c[i]) != fbits(kGuard)) {
            fail(e, "m=%zu n=%zu k=%zu ldc=%zu: wrote outside the block at %zu", m, n, k, ldc, i);
            break;
          }
        }
        ++cases;
      }
    // Split K: two calls (the second ACCUMULATE) give the same bits as one call.
    for (size_t k : {2, 17, 64, 301}) {
      const size_t m = 13, n = 45, k1 = k / 2;
      std::vector<float> a = rand_matrix(m * k, 11 + k), b = rand_matrix(k * n, 12 + k), bias = rand_matrix(n, 13);
      std::vector<float> pb = pack_one_block(b.data(), k, n, false);
      std::vector<float> c1(m * n), c2(m * n);
      SgemmBlock p{m,
                   n,
                   k,
                   a.data(),
                   k,
                   pb.data(),
                   k * kSgemmPanel,
                   kSgemmPanel,
                   c1.data(),
                   n,
                   bias.data(),
                   QK_SGEMM_BIAS | QK_SGEMM_RELU};
      fn(p);
      SgemmBlock q{m, n, k1, a.data(), k, pb.data(), k * kSgemmPanel, kSgemmPanel, c2.data(), n, bias.data(), 0};
      fn(q);
      q.a = a.data() + k1;
      q.b = pb.data() + k1 * kSgemmPanel;
      q.k = k - k1;
      q.flags = QK_SGEMM_ACCUMULATE | QK_SGEMM_BIAS | QK_SGEMM_RELU;
      fn(q);
      CHECK_FLOATS(e, c1, c2, m * n, "split K=%zu", k);
    }
    // Every tail at once: rows spread over several tiles (AVX-512: 6-row tiles, evenly filled),
    // column tails of 64-column tile pairs and of single panels, four-panel groups of one row,
    // K across the 256-chunk boundary, with a packed B and one read in place.
    int tails = 0;
    for (size_t m : {1, 5, 6, 7, 13, 19, 32})
      for (size_t n : {1, 31, 33, 48, 63, 65, 96, 128, 129, 191, 200})
        for (size_t k : {1, 256, 257}) {
          // Periods 3, 8, 5 and 2: every pairing of B source, flags and leading dimensions.
          const bool in_place = (tails % 3) == 2;
          const uint32_t flags = static_cast<uint32_t>(tails % 8);
          const size_t lda = k + (tails % 5), ldc = n + (tails % 2) * 5;
          std::vector<float> a = rand_matrix(m * lda + 1, 900 + tails);
          std::vector<float> b = rand_matrix(k * n + 1, 901 + tails);
          std::vector<float> bias = rand_matrix(n, 902 + tails);
          std::vector<float> pb = pack_one_block(b.data(), k, n, false);
          const size_t ldb_raw = (n + kSgemmPanel - 1) / kSgemmPanel * kSgemmPanel + 1;
          std::vector<float> braw(k * ldb_raw + kSgemmPanel, NAN);
          for (size_t kk = 0; kk < k; ++kk)
            for (size_t j = 0; j < n; ++j) braw[kk * ldb_raw + j] = b[kk * n + j];
          std::vector<float> c((m + 1) * ldc + 3, kGuard);
          std::vector<float> init = rand_matrix(m * ldc, 903 + tails);
          if (flags & QK_SGEMM_ACCUMULATE)
            for (size_t i = 0; i < m; ++i)
              for (size_t j = 0; j < n; ++j) c[i * ldc + j] = init[i * ldc + j];
          SgemmBlock p{m,           n,        k,   a.data(),    lda,  pb.data(), k * kSgemmPanel,
                       kSgemmPanel, c.data(), ldc, bias.data(), flags};
          if (in_place) {
            p.b = braw.data();
            p.b_panel_stride = kSgemmPanel;
            p.ldb = ldb_raw;
          }
          fn(p);
          char what[96];
          std::snprintf(what, sizeof what, "%s tails flags=%u%s", e.symbol, flags, in_place ? " in place" : "");
          if (!check_bound(what, m, n, k, a.data(), lda, b.data(), false,
                           (flags & QK_SGEMM_BIAS) ? bias.data() : nullptr, (flags & QK_SGEMM_RELU) != 0, c.data(), ldc,
                           (flags & QK_SGEMM_ACCUMULATE) ? init.data() : nullptr))
            break;
          for (size_t i = 0; i < c.size(); ++i) {
            const size_t r = i / ldc, col = i % ldc;
            if ((r >= m || col >= n) && fbits(c[i]) != fbits(kGuard)) {
              fail(e, "tails m=%zu n=%zu k=%zu ldc=%zu: wrote outside the block at %zu", m, n, k, ldc, i);
              break;
            }
          }
          ++tails;
        }
  }
}

void test_gemv_kernels() {
  for (const KernelEntry& e : kernel_list()) {
    if (e.op != Op::sgemv || !isa_supported(e.isa)) continue;
    note_exercised(e);
    const auto fn = reinterpret_cast<sgemv_fn>(const_cast<void*>(e.fn));
    int cases = 0;
    for (size_t n : {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 2047, 2048, 2049, 4100})
      for (size_t k : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 100, 513})
        for (int trans = 0; trans < 2; ++trans) {
          if (n * k > 600000) continue;
          const bool with_bias = (cases % 3) != 0, relu = (cases % 4) == 1;
          const size_t ldb = (trans ? k : n) + cases % 3;
          std::vector<float> a = rand_matrix(k, 500 + cases);
          std::vector<float> braw = rand_matrix((trans ? n : k) * ldb, 600 + cases);
          std::vector<float> bias = rand_matrix(n, 700 + cases);
          std::vector<float> c(n + 8, kGuard);
          fn(SgemvArgs{k, n, a.data(), braw.data(), ldb, trans != 0, c.data(), with_bias ? bias.data() : nullptr,
                       relu});
          // Dense copy of B for the check.
          std::vector<float> b(k * n);
          for (size_t kk = 0; kk < k; ++kk)
            for (size_t j = 0; j < n; ++j) b[kk * n + j] = trans ? braw[j * ldb + kk] : braw[kk * ldb + j];
          char what[96];
          std::snprintf(what, sizeof what, "%s", e.symbol);
          check_bound(what, 1, n, k, a.data(), k, b.data(), false, with_bias ? bias.data() : nullptr, relu, c.data(),
                      n);
          for (size_t j = n; j < n + 8; ++j)
            if (fbits(c[j]) != fbits(kGuard)) {
              fail(e, "n=%zu k=%zu: wrote past the end", n, k);
              break;
            }
          ++cases;
        }
  }
}

// ---- driver ------------------------------------------------------------------------------

struct Shape {
  size_t M, N, K;
};

std::vector<Shape> driver_shapes() {
  std::vector<Shape> v = {
      {0, 5, 3},
      {5, 0, 3},
      {0, 0, 0},
      {3, 4, 0},
      {1, 1, 0},
      {1, 1, 1},
      {1, 7, 5},
      {1, 100, 37},
      {1, 1031, 300},
      {2, 3, 1},
      {7, 33, 17},
      {12, 32, 16},
      {13, 65, 257},
      {25, 97, 31},
      {31, 513, 7},
      {64, 64, 64},
      {97, 131, 300},
      {250, 47, 600},
      {257, 1031, 19},
      {520, 70, 40},
      {769, 33, 5},
      {3, 2000, 11},
      {37, 3000, 3},
      // Several row tiles and tile pairs over K blocks, the whole N in one task when packed.
      {40, 300, 260},
  };
  return v;
}

void run_driver(const Shape& s, bool trans, bool use_packed, bool with_bias, bool relu, uint32_t seed,
                std::vector<float>* out) {
  std::vector<float> a = rand_matrix(s.M * s.K, seed), b = rand_matrix(s.K * s.N, seed + 1);
  std::vector<float> bias = rand_matrix(s.N, seed + 2);
  out->assign(s.M * s.N + 4, kGuard);
  std::vector<float> pb;
  SgemmArgs g;
  g.M = s.M;
  g.N = s.N;
  g.K = s.K;
  g.a = a.data();
  g.b = b.data();
  g.trans_b = trans;
  if (use_packed) {
    pb = pack(b.data(), s.K, s.N, trans);
    g.packed = pb.data();
  }
  g.bias = with_bias ? bias.data() : nullptr;
  g.relu = relu;
  g.c = out->data();
  sgemm(g);
  for (size_t i = s.M * s.N; i < out->size(); ++i)
    if (fbits((*out)[i]) != fbits(kGuard)) {
      fail_plain("sgemm wrote past C (M=%zu N=%zu K=%zu)", s.M, s.N, s.K);
      break;
    }
  // B as K x N for the check.
  std::vector<float> bkn(s.K * s.N);
  for (size_t k = 0; k < s.K; ++k)
    for (size_t j = 0; j < s.N; ++j) bkn[k * s.N + j] = trans ? b[j * s.K + k] : b[k * s.N + j];
  char what[128];
  std::snprintf(what, sizeof what, "sgemm[%s%s threads=%d]", forced_isa().c_str(), use_packed ? " packed" : "",
                num_threads());
  check_bound(what, s.M, s.N, s.K, a.data(), s.K, bkn.data(), false, with_bias ? bias.data() : nullptr, relu,
              out->data(), s.N);
  // K = 0: exactly bias (or 0), relu'd.
  if (s.K == 0)
    for (size_t i = 0; i < s.M * s.N; ++i) {
      float want = with_bias ? bias[i % s.N] : 0.0f;
      if (relu) want = sgemm_relu(want);
      if (fbits((*out)[i]) != fbits(want)) {
        fail_plain("K=0: C[%zu] = %g, want %g", i, (*out)[i], want);
        break;
      }
    }
  // The scalar path is the plain loop, bit for bit.
  if (forced_isa() == "scalar") {
    std::vector<float> plain(s.M * s.N);
    sgemm_plain(s.M, s.N, s.K, a.data(), b.data(), trans, with_bias ? bias.data() : nullptr, relu, plain.data());
    ++checks();
    for (size_t i = 0; i < plain.size(); ++i)
      if (fbits(plain[i]) != fbits((*out)[i])) {
        fail_plain("scalar path != sgemm_plain at %zu (M=%zu N=%zu K=%zu)", i, s.M, s.N, s.K);
        break;
      }
  }
}

void test_driver() {
  const int saved_threads = num_threads();
  // "auto" and every usable path with an sgemm_block kernel of its own (kernel list order).
  std::vector<std::string> paths = {"auto"};
  for (const KernelEntry& e : kernel_list())
    if (e.op == Op::sgemm_block && isa_supported(e.isa)) paths.push_back(isa_name(e.isa));
  for (const std::string& path : paths) {
    const std::string err = set_isa(path);
    if (!err.empty()) {
      fail_plain("set_isa(%s): %s", path.c_str(), err.c_str());
      continue;
    }
    uint32_t seed = 1;
    for (const Shape& s : driver_shapes()) {
      for (int variant = 0; variant < 4; ++variant) {
        const bool trans = variant & 1, packed = variant & 2;
        const bool with_bias = (seed % 3) != 0, relu = (seed % 4) == 1;
        std::vector<float> r1, r3;
        set_num_threads(1);
        run_driver(s, trans, packed, with_bias, relu, seed, &r1);
        set_num_threads(3);
        run_driver(s, trans, packed, with_bias, relu, seed, &r3);
        ++checks();
        for (size_t i = 0; i < r1.size(); ++i)
          if (fbits(r1[i]) != fbits(r3[i])) {
            fail_plain("[%s] 1 vs 3 threads differ at %zu (M=%zu N=%zu K=%zu)", path.c_str(), i, s.M, s.N, s.K);
            break;
          }
        // Packed and unpacked B give the same bits (M > 1, or B not transposed).
        if (packed && (s.M > 1 || !trans)) {
          std::vector<float> ru;
          run_driver(s, trans, false, with_bias, relu, seed, &ru);
          ++checks();
          for (size_t i = 0; i < r1.size(); ++i)
            if (fbits(r1[i]) != fbits(ru[i])) {
              fail_plain("[%s] packed vs unpacked differ at %zu (M=%zu N=%zu K=%zu trans=%d)", path.c_str(), i, s.M,
                         s.N, s.K, trans);
              break;
            }
        }
        ++seed;
      }
    }
    // NaN in a row of A gives a NaN row; +Inf with a positive B gives +Inf (relu keeps both).
    for (size_t M : {1, 5, 40}) {
      const size_t N = 37, K = 70;
      std::vector<float> a(M * K, 0.5f), b(K * N, 0.25f), c(M * N);
      a[0 * K + 3] = NAN;
      if (M > 1) a[(M - 1) * K + 69] = INFINITY;
      sgemm(SgemmArgs{M, N, K, a.data(), b.data(), false, nullptr, nullptr, true, c.data()});
      ++checks();
      for (size_t j = 0; j < N; ++j) {
        if (!std::isnan(c[j])) {
          fail_plain("[%s] NaN row: C[0][%zu] = %g", path.c_str(), j, c[j]);
          break;
        }
        if (M > 1 && c[(M - 1) * N + j] != INFINITY) {
          fail_plain("[%s] Inf row: C[%zu][%zu] = %g", path.c_str(), M - 1, j, c[(M - 1) * N + j]);
          break;
        }
      }
    }
  }
  set_isa("auto");
  set_num_threads(saved_threads);
}

void run_sgemm_tests() {
  test_block_kernels();
  test_gemv_kernels();
  test_driver();
}

}  // namespace

static qk::TestSuite s("sgemm", run_sgemm_tests);
