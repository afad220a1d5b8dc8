#include "qat.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "../dispatch/dispatch.h"
#include "mem.h"
#include "threadpool.h"

namespace qk {

namespace {

constexpr size_t kSteTask = size_t{1} << 16;  // elements per parallel STE task
constexpr size_t kVecTaskChannels = 4096;     // channels per parallel task of the per-element kernel
constexpr size_t kBlocksPerTask = 16;         // LSQ blocks per parallel task

}  // namespace

uint64_t ste_backward(const float* dy, const uint8_t* mask, size_t n, float* dx, bool accumulate) {
  const KernelTable& k = kernels();
  const uint32_t flags = accumulate ? QK_GRAD_ACC : 0u;
  std::atomic<uint64_t> bad{0};
  parallel_ranges(n, kSteTask, n * (2 * sizeof(float) + 1), [&](size_t e0, size_t e1) {
    bad.fetch_add(k.ste_grad(dy + e0, mask + e0, e1 - e0, dx ? dx + e0 : nullptr, flags), std::memory_order_relaxed);
  });
  return bad.load();
}

uint64_t lsq_backward(const float* x, const float* dy, const Layout& L, const float* scale, const int32_t* zb,
                      int32_t qmin, int32_t qmax, float gf, float* dx, bool accumulate, double* ds, double* dz) {
  const KernelTable& k = kernels();
  const LsqParams p{qmin, qmax, gf, accumulate ? QK_GRAD_ACC : 0u};
  const size_t n = L.numel();
  if (n == 0) return 0;
  const size_t bytes = n * 3 * sizeof(float);
  std::atomic<uint64_t> bad{0};
  if (L.gran == Gran::PerAxis && L.inner == 1 && L.axis_dim > 1) {
    // One group per element of each row [o, :]: the per-element kernel over channel ranges, each
    // task walking the rows in order (so every channel's sum is in order of o).
    const size_t A = L.axis_dim;
    parallel_ranges(A, kVecTaskChannels, bytes, [&](size_t a0, size_t a1) {
      uint64_t b = 0;
      for (size_t o = 0; o < L.outer; ++o) {
        const size_t e = o * A + a0;
        b += k.lsq_grad_vec(x + e, dy + e, a1 - a0, scale + a0, zb + a0, p, dx ? dx + e : nullptr, ds + a0, dz + a0);
      }
      bad.fetch_add(b, std::memory_order_relaxed);
    });
    return bad.load();
  }
  // Runs: per tensor one run of n elements; per axis one run per (o, a) of inner elements.
  const bool per_tensor = L.gran == Gran::PerTensor;
  const size_t runs = per_tensor ? 1 : L.outer * L.axis_dim;
  const size_t len = per_tensor ? n : L.inner;
  const size_t nb = ceil_div(len, kLsqBlock);
  const size_t blocks = runs * nb;
  std::vector<double> part(2 * blocks, 0.0);
  auto block = [&](size_t b) {
    const size_t r = b / nb, j = b % nb;
    const size_t e = r * len + j * kLsqBlock, m = std::min(kLsqBlock, len - j * kLsqBlock);
    const size_t g = per_tensor ? 0 : r % L.axis_dim;
    return k.lsq_grad(x + e, dy + e, m, scale[g], zb[g], p, dx ? dx + e : nullptr, &part[2 * b]);
  };
  parallel_ranges(blocks, kBlocksPerTask, bytes, [&](size_t b0, size_t b1) {
    uint64_t b = 0;
    for (size_t i = b0; i < b1; ++i) b += block(i);
    bad.fetch_add(b, std::memory_order_relaxed);
  });
  for (size_t b = 0; b < blocks; ++b) {
    const size_t g = per_tensor ? 0 : (b / nb) % L.axis_dim;
    ds[g] += part[2 * b];
    dz[g] += part[2 * b + 1];
  }
  return bad.load();
}

}  // namespace qk
