#include "observe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../dispatch/dispatch.h"
#include "threadpool.h"

namespace qk {

HistParams hist_params(float lo, float hi, uint32_t nbins, bool abs_values) {
  HistParams p;
  p.lo = lo;
  p.hi = hi;
  p.nbins = nbins;
  p.fbins = static_cast<float>(nbins);
  p.flags = abs_values ? QK_HIST_ABS : 0u;
  const float fmax = std::numeric_limits<float>::max();
  float s = 1.0f;
  for (int k = 0; k < 300; ++k) {
    const float w = hi * s - lo * s;
    if (std::isfinite(w) && w <= fmax) break;
    s *= 0.5f;
  }
  p.scale = s;
  p.lo_s = lo * s;
  p.width_s = hi * s - lo * s;
  return p;
}

namespace {

constexpr size_t kFlush = size_t{1} << 31;  // elements per uint32 flush (counts stay < 2^32)
constexpr size_t kGatherInner = 64;         // per-axis runs shorter than this are gathered
constexpr size_t kGatherChunk = 4096;
constexpr size_t kParallelMin = size_t{1} << 20;  // per-tensor inputs from this size use the thread pool
// Per-task buffers of the parallel per-tensor path (a float64 and a uint32 count per bin) stay
// within this many bytes in all: fewer tasks for huge nbins (2^24 bins: 192 MiB per task).
constexpr size_t kParallelScratch = size_t{64} << 20;

struct Acc {
  std::vector<uint32_t> c;
  size_t since = 0;
};

}  // namespace

void histogram(const float* x, const Layout& L, const float* lo, const float* hi, uint32_t nbins, bool abs_values,
               double* counts) {
  const KernelTable& k = kernels();
  const size_t groups = L.gran == Gran::PerTensor ? 1 : L.axis_dim;
  std::vector<HistParams> ps(groups);
  for (size_t g = 0; g < groups; ++g) ps[g] = hist_params(lo[g], hi[g], nbins, abs_values);
  const size_t n = L.numel();
  const size_t threads = static_cast<size_t>(num_threads());
  const size_t max_tasks = std::max<size_t>(1, kParallelScratch / (static_cast<size_t>(nbins) * 12));
  const size_t tasks = std::min({threads, n / (kParallelMin / 2), max_tasks});
  if (L.gran == Gran::PerTensor && tasks > 1 && n >= kParallelMin) {
    // One histogram per task, summed: counts are integers, so the task count never changes them.
    std::vector<std::vector<double>> part(tasks, std::vector<double>(nbins, 0.0));
    parallel_for(tasks, [&](size_t t) {
      const size_t e0 = n * t / tasks, e1 = n * (t + 1) / tasks;
      std::vector<uint32_t> c32(nbins, 0u);
      for (size_t e = e0; e < e1;) {
        const size_t m = std::min(e1 - e, kFlush);
        k.histogram(x + e, m, ps[0], c32.data());
        for (uint32_t b = 0; b < nbins; ++b) {
          part[t][b] += static_cast<double>(c32[b]);
          c32[b] = 0;
        }
        e += m;
      }
    });
    for (size_t t = 0; t < tasks; ++t)
      for (uint32_t b = 0; b < nbins; ++b) counts[b] += part[t][b];
    return;
  }
  std::vector<uint32_t> c(groups * static_cast<size_t>(nbins), 0u);
  std::vector<size_t> since(groups, 0);
  auto flush = [&](size_t g) {
    uint32_t* cg = c.data() + g * nbins;
    double* dg = counts + g * nbins;
    for (uint32_t b = 0; b < nbins; ++b) {
      dg[b] += static_cast<double>(cg[b]);
      cg[b] = 0;
    }
    since[g] = 0;
  };
  auto run = [&](size_t g, const float* p, size_t len) {
    while (len > 0) {
      const size_t m = std::min(len, kFlush - since[g]);
      k.histogram(p, m, ps[g], c.data() + g * nbins);
      since[g] += m;
      p += m;
      len -= m;
      if (since[g] >= kFlush) flush(g);
    }
  };
  if (L.gran == Gran::PerTensor) {
    run(0, x, n);
  } else if (L.inner >= kGatherInner) {
    for (size_t o = 0; o < L.outer; ++o)
      for (size_t a = 0; a < L.axis_dim; ++a) run(a, x + (o * L.axis_dim + a) * L.inner, L.inner);
  } else if (n > 0) {
    // Short runs (e.g. the channel is the innermost axis): gather each channel into a buffer.
    std::vector<float> buf(kGatherChunk);
    for (size_t a = 0; a < L.axis_dim; ++a) {
      size_t filled = 0;
      for (size_t o = 0; o < L.outer; ++o) {
        const float* row = x + (o * L.axis_dim + a) * L.inner;
        for (size_t i = 0; i < L.inner; ++i) {
          buf[filled++] = row[i];
          if (filled == kGatherChunk) {
            run(a, buf.data(), filled);
            filled = 0;
          }
        }
      }
      if (filled) run(a, buf.data(), filled);
    }
  }
  for (size_t g = 0; g < groups; ++g) flush(g);
}

}  // namespace qk
