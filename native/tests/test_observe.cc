// Observer ops: every histogram kernel against histogram_ref, bit-identical counts, on every path
// this machine supports: lengths 0..200 and large (both the direct and the sub-histogram loops),
// bin counts 1..3001, ranges from denormal to +-3e38 (prescaled), values on and one or two ulps
// around every bin edge, the range ends, NaN, +-Inf, -0, denormals, |x| mode. Then the
// tensor-level histogram() per tensor and per axis (direct and gathered runs) under every path.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "core/observe.h"
#include "core/observe_bin.h"
#include "core/threadpool.h"
#include "core/ref.h"
#include "dispatch/dispatch.h"
#include "test_util.h"

using namespace qk;

namespace {

struct Range {
  float lo, hi;
};

const Range kRanges[] = {
    {-1.0f, 1.0f}, {0.0f, 5.3f},   {-3.7e-3f, 1.2e-2f}, {-3e38f, 3e38f},    {1e-40f, 3e-40f}, {-100.0f, -99.99f},
    {0.0f, 1e35f}, {-6.0f, 10.0f}, {-0.1f, 0.7f},       {2.0f, 2.0000005f}, {-1e-3f, 0.0f},   {-3.4e38f, -1e38f},
};

const uint32_t kBins[] = {1, 2, 3, 7, 128, 256, 2048, 3001};

// Values on, just below and just above every bin edge (edges as lo + j * (hi - lo) / nbins in
// float32 and in float64), the range ends and their neighbours, specials and random values.
std::vector<float> edge_values(size_t n, const Range& r, uint32_t nbins, bool mirror, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> x(n);
  const float inf = std::numeric_limits<float>::infinity();
  const float specials[] = {0.0f,
                            -0.0f,
                            inf,
                            -inf,
                            NAN,
                            -NAN,
                            1e-45f,
                            -1e-45f,
                            1e-39f,
                            -1e-39f,
                            3.4e38f,
                            -3.4e38f,
                            r.lo,
                            r.hi,
                            std::nextafter(r.lo, -inf),
                            std::nextafter(r.hi, inf),
                            std::nextafter(r.lo, inf),
                            std::nextafter(r.hi, -inf)};
  std::uniform_real_distribution<double> ud(0.0, 1.0);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = rng() % 8;
    float v;
    if (k == 0) {
      v = specials[rng() % (sizeof specials / sizeof specials[0])];
    } else if (k <= 4) {
      const uint32_t j = rng() % (nbins + 1);
      float e = (rng() & 1)
                    ? r.lo + static_cast<float>(j) * ((r.hi - r.lo) / static_cast<float>(nbins))
                    : static_cast<float>(static_cast<double>(r.lo) + j * ((static_cast<double>(r.hi) - r.lo) / nbins));
      const int steps = static_cast<int>(rng() % 5) - 2;
      for (int s = 0; s < std::abs(steps); ++s) e = std::nextafter(e, steps < 0 ? -inf : inf);
      v = e;
    } else {
      v = static_cast<float>(static_cast<double>(r.lo) + ud(rng) * (static_cast<double>(r.hi) - r.lo) * 1.02 -
                             0.01 * (static_cast<double>(r.hi) - r.lo));
    }
    if (mirror && (rng() & 1)) v = -v;
    x[i] = v;
  }
  return x;
}

std::vector<size_t> lengths(uint32_t nbins) {
  std::vector<size_t> v;
  for (size_t n = 0; n <= 200; ++n) v.push_back(n);
  for (size_t n : {255, 256, 257, 1000, 4099}) v.push_back(n);
  v.push_back(static_cast<size_t>(nbins) * 16 + 37);  // the sub-histogram loop
  if (nbins == 7) v.push_back(300001);                // uint16 sub-histograms flushed twice
  return v;
}

void test_histogram_kernels() {
  constexpr uint32_t kGuard = 0xC0FFEEu;
  size_t ri = 0;
  for (const Range& r : kRanges) {
    ++ri;
    for (uint32_t nbins : kBins) {
      for (int ab = 0; ab < 2; ++ab) {
        if (ab && r.lo < 0) continue;  // |x| histograms are over [0, amax]-like ranges
        const HistParams p = hist_params(r.lo, r.hi, nbins, ab != 0);
        for (size_t n : lengths(nbins)) {
          if (nbins > 256 && n < 200 && n % 7 != 0) continue;  // keep the run short
          const std::vector<float> x =
              edge_values(n, r, nbins, ab != 0, static_cast<uint32_t>(n * 131 + nbins * 7 + ri * 3 + ab));
          std::vector<uint32_t> ref(nbins + 8, 5u), got;
          for (uint32_t g = 0; g < 8; ++g) ref[nbins + g] = kGuard;
          got = ref;
          histogram_ref(x.data(), n, p, ref.data());
          // invariants of the reference: every counted value in range, total = in-range count
          uint64_t in = 0, total = 0;
          for (float v : x) {
            const float a = ab ? std::fabs(v) : v;
            if (a >= r.lo && a <= r.hi) ++in;
          }
          for (uint32_t b = 0; b < nbins; ++b) total += ref[b] - 5u;
          ++checks();
          if (in != total)
            fail_plain("histogram_ref total %llu != in-range %llu (n=%zu nbins=%u)", (unsigned long long)total,
                       (unsigned long long)in, n, nbins);
          for (const KernelEntry& e : kernel_list()) {
            if (e.op != Op::histogram || e.isa == Isa::scalar || !isa_supported(e.isa)) continue;
            note_exercised(e);
            std::vector<uint32_t> g2 = got;
            reinterpret_cast<histogram_fn>(const_cast<void*>(e.fn))(x.data(), n, p, g2.data());
            ++checks();
            for (size_t b = 0; b < g2.size(); ++b)
              if (g2[b] != ref[b]) {
                fail(e, "histogram range [%g, %g] nbins=%u abs=%d n=%zu: bin %zu ref %u got %u", r.lo, r.hi, nbins, ab,
                     n, b, ref[b], g2[b]);
                break;
              }
          }
        }
      }
    }
  }
}

// Bins are monotone in the value and match torch.histc's formula for scale 1.
void test_histogram_formula() {
  std::mt19937 rng(7);
  for (const Range& r : kRanges) {
    for (uint32_t nbins : kBins) {
      const HistParams p = hist_params(r.lo, r.hi, nbins, false);
      std::vector<float> x = edge_values(5000, r, nbins, false, 99 + nbins);
      std::vector<float> in;
      for (float v : x)
        if (v >= r.lo && v <= r.hi) in.push_back(v);
      std::sort(in.begin(), in.end());
      uint32_t prev = 0;
      ++checks();
      for (float v : in) {
        uint32_t c1[1] = {0};
        HistParams p1 = p;
        (void)c1;
        const uint32_t b = hist_bin_of(v, p1);
        if (b < prev) {
          fail_plain("bins not monotone at %.9g (range [%g, %g], nbins %u)", v, r.lo, r.hi, nbins);
          break;
        }
        prev = b;
        if (p.scale == 1.0f) {
          // torch: pos = (int64)((elt - leftmost) / (rightmost - leftmost) * nbins); pos == nbins -> nbins - 1
          const float t = ((v - r.lo) / (r.hi - r.lo)) * static_cast<float>(nbins);
          int64_t pos = static_cast<int64_t>(t);
          if (pos == static_cast<int64_t>(nbins)) pos -= 1;
          if (static_cast<uint32_t>(pos) != b) {
            fail_plain("bin of %.9g is %u, torch formula %lld", v, b, (long long)pos);
            break;
          }
        }
      }
      ++checks();
      if (std::isfinite(r.hi - r.lo) && p.scale != 1.0f) fail_plain("prescale used for a range whose width is finite");
    }
  }
}

// The tensor-level op under every usable path, against per-element reference binning.
void test_histogram_tensor() {
  struct Case {
    size_t outer, axis, inner;
    bool per_axis;
  };
  const Case cases[] = {{1, 1, 0, false},   {1, 1, 1, false},  {1, 1, 100000, false},
                        {3, 5, 7, true},    {2, 4, 300, true}, {7, 3, 1, true},
                        {1, 6, 1000, true}, {50, 2, 63, true}, {1, 1, 70000, true}};
  const std::vector<std::string> paths = usable_paths();
  for (const std::string& path : paths) {
    if (!set_isa(path).empty()) continue;
    for (const Case& c : cases)
      for (int ab = 0; ab < 2; ++ab)
        for (uint32_t nbins : {1u, 64u, 2048u}) {
          Layout L;
          L.gran = c.per_axis ? Gran::PerAxis : Gran::PerTensor;
          L.outer = c.outer;
          L.axis_dim = c.axis;
          L.inner = c.inner;
          const size_t n = L.numel(), groups = c.per_axis ? c.axis : 1;
          std::vector<float> lo(groups), hi(groups);
          for (size_t g = 0; g < groups; ++g) {
            lo[g] = ab ? 0.0f : -1.0f - 0.25f * g;
            hi[g] = 1.0f + 0.5f * g;
          }
          const Range r{-2.0f, 2.0f};
          std::vector<float> x = edge_values(n, r, 64, false, static_cast<uint32_t>(n + nbins + ab));
          std::vector<double> got(groups * nbins, 1.0), want(groups * nbins, 1.0);
          histogram(x.data(), L, lo.data(), hi.data(), nbins, ab != 0, got.data());
          std::vector<HistParams> ps;
          for (size_t g = 0; g < groups; ++g) ps.push_back(hist_params(lo[g], hi[g], nbins, ab != 0));
          for (size_t e = 0; e < n; ++e) {
            const size_t g = c.per_axis ? (e / c.inner) % c.axis : 0;
            const float v = ab ? std::fabs(x[e]) : x[e];
            if (v >= lo[g] && v <= hi[g]) want[g * nbins + hist_bin_of(v, ps[g])] += 1;
          }
          ++checks();
          for (size_t b = 0; b < got.size(); ++b)
            if (got[b] != want[b]) {
              fail_plain("histogram() path %s outer=%zu axis=%zu inner=%zu abs=%d nbins=%u: slot %zu want %g got %g",
                         path.c_str(), c.outer, c.axis, c.inner, ab, nbins, b, want[b], got[b]);
              break;
            }
        }
  }
  set_isa("auto");
}

// Large per-tensor inputs are split over threads: the counts never depend on the thread count.
void test_histogram_threads() {
  const size_t n = (size_t{1} << 21) + 12345;
  const Range r{-3.0f, 3.0f};
  std::vector<float> x = edge_values(n, r, 2048, false, 4242);
  Layout L;
  L.inner = n;
  const float lo = -2.5f, hi = 2.75f;
  std::vector<double> want(2048, 0.0);
  const int saved = num_threads();
  set_num_threads(1);
  histogram(x.data(), L, &lo, &hi, 2048, false, want.data());
  for (int t : {2, 3, 4}) {
    set_num_threads(t);
    std::vector<double> got(2048, 0.0);
    histogram(x.data(), L, &lo, &hi, 2048, false, got.data());
    ++checks();
    if (got != want) fail_plain("histogram() with %d threads differs from 1 thread", t);
  }
  // nbins = 2^21: the per-task buffers (24 MiB each) cap the tasks at 2 whatever the thread count
  const uint32_t big = uint32_t{1} << 21;
  std::vector<double> want_big(big, 0.0);
  set_num_threads(1);
  histogram(x.data(), L, &lo, &hi, big, false, want_big.data());
  for (int t : {2, 4}) {
    set_num_threads(t);
    std::vector<double> got(big, 0.0);
    histogram(x.data(), L, &lo, &hi, big, false, got.data());
    ++checks();
    if (got != want_big) fail_plain("histogram() with %d threads and 2^21 bins differs from 1 thread", t);
  }
  set_num_threads(saved);
}

void run() {
  test_histogram_threads();
  test_histogram_kernels();
  test_histogram_formula();
  test_histogram_tensor();
}

}  // namespace

static qk::TestSuite s("observe", run);
