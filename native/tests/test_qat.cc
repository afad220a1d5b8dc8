// Quantization-aware training ops: every ste_grad / lsq_grad / lsq_grad_vec kernel against the
// reference, bit-identical (dx, the float64 sums, the bad counts), on every path this machine
// supports: lengths 0..200 and large, ties at the code boundaries, clipped values, +-Inf, NaN, -0,
// denormals, huge dy (infinite terms), with and without dx and accumulation. Then the
// tensor-level lsq_backward / ste_backward: identical under every path and thread count, equal to
// the block-and-lane sum written out here from lsq_one, and within the documented bound of the
// sequential float64 sum (lib/nn/lsq.ts).
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/qat.h"
#include "core/ref.h"
#include "core/threadpool.h"
#include "dispatch/dispatch.h"
#include "test_util.h"

using namespace qk;

namespace {

uint64_t dbits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}
bool same_double(double a, double b) { return dbits(a) == dbits(b) || (std::isnan(a) && std::isnan(b)); }

std::vector<size_t> lengths() {
  std::vector<size_t> v;
  for (size_t n = 0; n <= 200; ++n) v.push_back(n);
  for (size_t n : {255, 256, 257, 1000, 4095, 4096, 4097, 20011}) v.push_back(n);
  return v;
}

struct QCase {
  int32_t qmin, qmax;
};
const QCase kRanges[] = {{0, 255}, {-127, 127}, {-128, 127}, {0, 15}, {-7, 7},
                         {-8, 7},  {0, 3},      {-1, 1},     {-2, 1}, {0, 1}};
const float kScales[] = {1.0f, 0.1f, 0.013f, 0.0078125f, 1.1920929e-07f, 3.0f, 0.33333334f, 2.5e-3f, 1e30f, FLT_MIN};
const float kGf[] = {1.0f, 0.0012345f, 0.0625f, 3.0e-6f};

// Values around every code boundary of a range: (k + 0.5 - zb) * s and their float32 neighbours,
// the clip edges, specials, and dy with signs, zeros, denormals and huge values.
void make_data(size_t n, float s, int32_t zb, const QCase& r, uint32_t seed, bool specials, std::vector<float>& x,
               std::vector<float>& dy) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  x.resize(n);
  dy.resize(n);
  const float xs[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f, -1e-40f, 3.4e38f, -3.4e38f, 1e30f};
  const float ds[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f, -3e-39f, 3e38f, -2e38f};
  const int span = r.qmax - r.qmin + 3;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = rng() % 10;
    float v;
    if (specials && k == 0)
      v = xs[rng() % (sizeof xs / sizeof xs[0])];
    else if (k <= 5) {
      const int code = r.qmin - 2 + static_cast<int>(rng() % span);
      v = (static_cast<float>(code - zb) + ((rng() & 1) ? 0.5f : 0.0f)) * s;
      for (int t = static_cast<int>(rng() % 3) - 1; t != 0; t = 0) v = std::nextafter(v, t < 0 ? -INFINITY : INFINITY);
    } else
      v = nd(rng) * s * static_cast<float>(r.qmax - r.qmin) * 0.6f;
    x[i] = v;
    const uint32_t j = rng() % 12;
    dy[i] = (specials && j == 0) ? ds[rng() % (sizeof ds / sizeof ds[0])] : nd(rng) * ((j == 1) ? 1e-30f : 1.0f);
  }
}

void test_ste_kernels() {
  for (size_t n : lengths())
    for (int acc = 0; acc < 2; ++acc) {
      std::vector<float> x, dy;
      make_data(n, 0.1f, 0, kRanges[0], static_cast<uint32_t>(n * 3 + acc), true, x, dy);
      std::vector<uint8_t> mask(n);
      for (size_t i = 0; i < n; ++i) mask[i] = (i * 7 + n) % 3 == 0 ? 0 : 1;
      std::vector<float> ref(n + 16);
      for (size_t i = 0; i < ref.size(); ++i) ref[i] = static_cast<float>(i % 5) - 2.0f;
      const std::vector<float> got(ref);
      const uint64_t rb = ste_grad_ref(dy.data(), mask.data(), n, ref.data(), acc ? QK_GRAD_ACC : 0u);
      // the reference: dy * mask (-0 for a negative dy on a masked element), non-finite dy -> +0
      for (size_t i = 0; i < n; ++i) {
        float want = std::isfinite(dy[i]) ? dy[i] * static_cast<float>(mask[i]) : 0.0f;
        if (acc) want = (static_cast<float>(i % 5) - 2.0f) + want;
        ++checks();
        if (fbits(want) != fbits(ref[i])) {
          fail_plain("ste_grad_ref n=%zu i=%zu", n, i);
          break;
        }
      }
      for_paths(Op::ste_grad, [&](const KernelEntry& e) {
        std::vector<float> g = got;
        const uint64_t b = reinterpret_cast<ste_grad_fn>(const_cast<void*>(e.fn))(dy.data(), mask.data(), n, g.data(),
                                                                                  acc ? QK_GRAD_ACC : 0u);
        CHECK_FLOATS(e, ref, g, n + 16, "ste n=%zu acc=%d", n, acc);
        ++checks();
        if (b != rb) fail(e, "ste n=%zu bad count ref %llu got %llu", n, (unsigned long long)rb, (unsigned long long)b);
      });
    }
}

void test_lsq_kernels() {
  size_t c = 0;
  for (const QCase& r : kRanges)
    for (size_t n : lengths()) {
      ++c;
      const float s = kScales[c % (sizeof kScales / sizeof kScales[0])];
      const int32_t zb = r.qmin + static_cast<int32_t>((c * 7) % static_cast<size_t>(r.qmax - r.qmin + 1));
      const LsqParams p0{r.qmin, r.qmax, kGf[c % 4], 0};
      std::vector<float> x, dy;
      make_data(n, s, zb, r, static_cast<uint32_t>(c), c % 3 != 0, x, dy);
      for (int mode = 0; mode < 3; ++mode) {  // 0: dx written, 1: dx accumulated, 2: no dx
        LsqParams p = p0;
        if (mode == 1) p.flags = QK_GRAD_ACC;
        std::vector<float> ref(n + 16);
        for (size_t i = 0; i < ref.size(); ++i) ref[i] = 0.25f * static_cast<float>(i % 7);
        const std::vector<float> got(ref);
        double rs[2] = {0.5, -0.25}, gs[2];
        const uint64_t rb = lsq_grad_ref(x.data(), dy.data(), n, s, zb, p, mode == 2 ? nullptr : ref.data(), rs);
        for_paths(Op::lsq_grad, [&](const KernelEntry& e) {
          std::vector<float> g = got;
          gs[0] = 0.5;
          gs[1] = -0.25;
          const uint64_t b = reinterpret_cast<lsq_grad_fn>(const_cast<void*>(e.fn))(x.data(), dy.data(), n, s, zb, p,
                                                                                    mode == 2 ? nullptr : g.data(), gs);
          CHECK_FLOATS(e, ref, g, n + 16, "lsq n=%zu q=%d..%d s=%g zb=%d mode=%d", n, r.qmin, r.qmax, s, zb, mode);
          ++checks();
          if (b != rb || !same_double(rs[0], gs[0]) || !same_double(rs[1], gs[1]))
            fail(e, "lsq n=%zu q=%d..%d s=%g zb=%d mode=%d: bad %llu/%llu sums %.17g %.17g / %.17g %.17g", n, r.qmin,
                 r.qmax, s, zb, mode, (unsigned long long)rb, (unsigned long long)b, rs[0], rs[1], gs[0], gs[1]);
        });
        // per element: one group each
        std::vector<float> sv(n);
        std::vector<int32_t> zv(n);
        for (size_t i = 0; i < n; ++i) {
          sv[i] = kScales[(i + c) % (sizeof kScales / sizeof kScales[0])];
          zv[i] = r.qmin + static_cast<int32_t>((i * 5 + c) % static_cast<size_t>(r.qmax - r.qmin + 1));
        }
        std::vector<float> vref(n + 16);
        for (size_t i = 0; i < vref.size(); ++i) vref[i] = -0.5f * static_cast<float>(i % 3);
        const std::vector<float> vx(vref);
        std::vector<double> rds(n, 0.0), rdz(n, 0.0);
        for (size_t i = 0; i < n; ++i) rds[i] = (i % 4 == 1) ? 1.5 : 0.0;
        std::vector<double> gds0 = rds, gdz0 = rdz;
        const uint64_t vb = lsq_grad_vec_ref(x.data(), dy.data(), n, sv.data(), zv.data(), p,
                                             mode == 2 ? nullptr : vref.data(), rds.data(), rdz.data());
        for_paths(Op::lsq_grad_vec, [&](const KernelEntry& e) {
          std::vector<float> g = vx;
          std::vector<double> gds = gds0, gdz = gdz0;
          const uint64_t b = reinterpret_cast<lsq_grad_vec_fn>(const_cast<void*>(e.fn))(
              x.data(), dy.data(), n, sv.data(), zv.data(), p, mode == 2 ? nullptr : g.data(), gds.data(), gdz.data());
          CHECK_FLOATS(e, vref, g, n + 16, "lsq_vec n=%zu q=%d..%d mode=%d", n, r.qmin, r.qmax, mode);
          ++checks();
          if (b != vb)
            fail(e, "lsq_vec n=%zu bad count ref %llu got %llu", n, (unsigned long long)vb, (unsigned long long)b);
          for (size_t i = 0; i < n; ++i)
            if (!same_double(rds[i], gds[i]) || !same_double(rdz[i], gdz[i])) {
              fail(e, "lsq_vec n=%zu q=%d..%d mode=%d: elem %zu ds %.17g/%.17g dz %.17g/%.17g", n, r.qmin, r.qmax, mode,
                   i, rds[i], gds[i], rdz[i], gdz[i]);
              break;
            }
        });
      }
    }
}

// lsq_one against the formula written out with doubles rounded to float32 step by step (the
// arithmetic of lib/nn/lsq.ts's lsqGradOne), on every tie of small ranges.
void test_lsq_one() {
  auto f = [](double v) { return static_cast<double>(static_cast<float>(v)); };
  for (const QCase& r : kRanges)
    for (float s : {0.1f, 0.013f, 1.0f, 0.33333334f})
      for (int32_t zb = r.qmin; zb <= r.qmax; zb += (r.qmax - r.qmin) / 3 + 1)
        for (int k = 2 * (r.qmin - zb - 3); k <= 2 * (r.qmax - zb + 3); ++k) {
          const float x = static_cast<float>(k) * 0.5f * s;
          for (float dy : {1.0f, -0.75f}) {
            const float inv = 1.0f / s;
            const LsqOne o = lsq_one(x, dy, s, inv, static_cast<float>(zb), static_cast<float>(r.qmin),
                                     static_cast<float>(r.qmax), 0.5f);
            const double q = std::nearbyint(f(zb + f(static_cast<double>(x) * inv)));
            double wdx, wts, wtz;
            if (q < r.qmin || q > r.qmax) {
              const double d = q < r.qmin ? r.qmin - zb : r.qmax - zb;
              wdx = dy * 0.0;
              wts = f(f(dy * d) * 0.5);
              wtz = f(f(-static_cast<double>(dy) * s) * 0.5);
            } else {
              const double xfq = f((q - zb) * s);
              wdx = dy;
              wts = f(f(f(dy * f(xfq - x)) * inv) * 0.5);
              wtz = 0;
            }
            ++checks();
            if (o.dx != wdx || o.ts != wts || o.tz != wtz)
              fail_plain("lsq_one x=%.9g s=%g zb=%d q=%d..%d: got %g %g %g want %g %g %g", x, s, zb, r.qmin, r.qmax,
                         o.dx, o.ts, o.tz, wdx, wts, wtz);
          }
        }
}

struct Shape {
  Gran gran;
  size_t outer, axis, inner;
};

// The documented order, written out: runs in order of outer, blocks of kLsqBlock, 16 lanes each.
void spec_sums(const std::vector<float>& x, const std::vector<float>& dy, const Shape& sh, const std::vector<float>& sc,
               const std::vector<int32_t>& zb, const QCase& r, float gf, std::vector<double>& ds,
               std::vector<double>& dz) {
  const bool pt = sh.gran == Gran::PerTensor;
  const size_t n = sh.outer * sh.axis * sh.inner;
  const size_t runs = pt ? 1 : sh.outer * sh.axis, len = pt ? n : sh.inner;
  for (size_t run = 0; run < runs; ++run) {
    const size_t g = pt ? 0 : run % sh.axis;
    for (size_t b0 = 0; b0 < len; b0 += kLsqBlock) {
      double ls[16] = {}, lz[16] = {};
      for (size_t k = 0; k < std::min(kLsqBlock, len - b0); ++k) {
        const size_t e = run * len + b0 + k;
        LsqOne o = lsq_one(x[e], dy[e], sc[g], 1.0f / sc[g], static_cast<float>(zb[g]), static_cast<float>(r.qmin),
                           static_cast<float>(r.qmax), gf);
        if (lsq_bad(x[e], dy[e])) o = LsqOne{0, 0, 0};
        ls[k % 16] += o.ts;
        lz[k % 16] += o.tz;
      }
      ds[g] += lsq_lanes_total(ls);
      dz[g] += lsq_lanes_total(lz);
    }
  }
}

void test_lsq_tensor() {
  const Shape shapes[] = {{Gran::PerTensor, 1, 1, 0}, {Gran::PerTensor, 1, 1, 37},  {Gran::PerTensor, 1, 1, 100000},
                          {Gran::PerTensor, 3, 5, 7}, {Gran::PerAxis, 1, 512, 784}, {Gran::PerAxis, 1, 3, 9000},
                          {Gran::PerAxis, 2, 4, 33},  {Gran::PerAxis, 64, 300, 1},  {Gran::PerAxis, 5, 1, 1},
                          {Gran::PerAxis, 1, 10, 1},  {Gran::PerAxis, 3, 9000, 1}};
  const std::vector<std::string> paths = usable_paths();
  const int saved = num_threads();
  size_t c = 0;
  for (const Shape& sh : shapes)
    for (const QCase& r : {kRanges[0], kRanges[6], kRanges[1]}) {
      ++c;
      Layout L;
      L.gran = sh.gran;
      L.outer = sh.outer;
      L.axis_dim = sh.axis;
      L.inner = sh.inner;
      const size_t n = L.numel(), groups = L.num_groups();
      std::vector<float> sc(groups);
      std::vector<int32_t> zb(groups);
      for (size_t g = 0; g < groups; ++g) {
        sc[g] = kScales[(g + c) % 8];
        zb[g] = r.qmin + static_cast<int32_t>((g * 3 + c) % static_cast<size_t>(r.qmax - r.qmin + 1));
      }
      std::vector<float> x, dy;
      make_data(n, sc[0], zb[0], r, static_cast<uint32_t>(777 + c), c % 2 == 0, x, dy);
      const float gf = kGf[c % 4];
      std::vector<double> wds(groups, 0.0), wdz(groups, 0.0);
      spec_sums(x, dy, sh, sc, zb, r, gf, wds, wdz);
      // the sequential float64 sum (lib/nn/lsq.ts) and sum |terms|, for the bound
      std::vector<double> qds(groups, 0.0), qabs(groups, 0.0);
      std::vector<size_t> cnt(groups, 0);
      for (size_t e = 0; e < n; ++e) {
        const size_t g = sh.gran == Gran::PerTensor ? 0 : (e / sh.inner) % sh.axis;
        LsqOne o = lsq_one(x[e], dy[e], sc[g], 1.0f / sc[g], static_cast<float>(zb[g]), static_cast<float>(r.qmin),
                           static_cast<float>(r.qmax), gf);
        if (lsq_bad(x[e], dy[e])) o = LsqOne{0, 0, 0};
        qds[g] += o.ts;
        qabs[g] += std::fabs(o.ts);
        ++cnt[g];
      }
      for (size_t g = 0; g < groups; ++g) {
        // |blocked - sequential| <= 2 (n - 1) 2^-53 sum |t| (each float64 sum of n terms errs by at most (n - 1) u sum
        // |t|)
        const double bound = 2.0 * static_cast<double>(cnt[g]) * std::ldexp(1.0, -53) * qabs[g];
        ++checks();
        if (std::isfinite(qabs[g]) && !(std::fabs(wds[g] - qds[g]) <= bound))
          fail_plain("lsq sum vs sequential: group %zu diff %g bound %g", g, std::fabs(wds[g] - qds[g]), bound);
      }
      for (int acc = 0; acc < 2; ++acc)
        for (const std::string& path : paths) {
          if (!set_isa(path).empty()) continue;
          for (int threads : {1, 2, 3}) {
            set_num_threads(threads);
            std::vector<float> dx(n, 0.5f);
            std::vector<double> ds(groups, 0.0), dz(groups, 0.0);
            const uint64_t b = lsq_backward(x.data(), dy.data(), L, sc.data(), zb.data(), r.qmin, r.qmax, gf, dx.data(),
                                            acc != 0, ds.data(), dz.data());
            ++checks();
            for (size_t g = 0; g < groups; ++g)
              if (!same_double(ds[g], wds[g]) || !same_double(dz[g], wdz[g])) {
                fail_plain(
                    "lsq_backward path %s threads %d shape %zu/%zu/%zu gran %d: group %zu ds %.17g want %.17g dz %.17g "
                    "want %.17g",
                    path.c_str(), threads, sh.outer, sh.axis, sh.inner, static_cast<int>(sh.gran), g, ds[g], wds[g],
                    dz[g], wdz[g]);
                break;
              }
            uint64_t wb = 0;
            for (size_t e = 0; e < n; ++e) {
              const size_t g = sh.gran == Gran::PerTensor ? 0 : (e / sh.inner) % sh.axis;
              LsqOne o = lsq_one(x[e], dy[e], sc[g], 1.0f / sc[g], static_cast<float>(zb[g]),
                                 static_cast<float>(r.qmin), static_cast<float>(r.qmax), gf);
              if (lsq_bad(x[e], dy[e])) {
                o = LsqOne{0, 0, 0};
                ++wb;
              }
              const float want = acc ? 0.5f + o.dx : o.dx;
              if (fbits(want) != fbits(dx[e])) {
                fail_plain("lsq_backward path %s dx[%zu] %.9g want %.9g", path.c_str(), e, dx[e], want);
                break;
              }
            }
            if (b != wb)
              fail_plain("lsq_backward path %s bad %llu want %llu", path.c_str(), (unsigned long long)b,
                         (unsigned long long)wb);
          }
        }
    }
  set_num_threads(saved);
  set_isa("auto");
}

void test_ste_tensor() {
  const size_t n = (size_t{1} << 20) + 77;
  std::vector<float> x, dy;
  make_data(n, 0.1f, 0, kRanges[0], 99, true, x, dy);
  std::vector<uint8_t> mask(n);
  for (size_t i = 0; i < n; ++i) mask[i] = i % 3 ? 1 : 0;
  std::vector<float> want(n, 1.0f);
  const uint64_t wb = ste_grad_ref(dy.data(), mask.data(), n, want.data(), QK_GRAD_ACC);
  const int saved = num_threads();
  const std::vector<std::string> paths = usable_paths();
  for (const std::string& path : paths) {
    if (!set_isa(path).empty()) continue;
    for (int threads : {1, 2, 4}) {
      set_num_threads(threads);
      std::vector<float> got(n, 1.0f);
      const uint64_t b = ste_backward(dy.data(), mask.data(), n, got.data(), true);
      ++checks();
      if (b != wb || std::memcmp(got.data(), want.data(), n * 4) != 0)
        fail_plain("ste_backward path %s threads %d differs", path.c_str(), threads);
    }
  }
  set_num_threads(saved);
  set_isa("auto");
}

void run() {
  test_lsq_one();
  test_ste_kernels();
  test_lsq_kernels();
  test_lsq_tensor();
  test_ste_tensor();
}

}  // namespace

static qk::TestSuite s("qat", run);
