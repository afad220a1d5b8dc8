// MatMulNBits driver (nbits.h): packing, activation quantization, work split.
#include "nbits.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "../dispatch/dispatch.h"
#include "mem.h"
#include "ref.h"
#include "threadpool.h"

namespace qk {

void nbits_pack(const NBitsShape& s, const uint8_t* codes, const float* scales, const uint8_t* zps, uint8_t* out) {
  const size_t kb = s.kb(), P = s.panels(), stride = s.stride(), cb = nbits_code_bytes(s.bs, s.bits);
  std::memset(out, 0, s.packed_bytes());
  for (size_t p = 0; p < P; ++p)
    for (size_t c = 0; c < kNBitsPanel; ++c) {
      const size_t n = p * kNBitsPanel + c;
      if (n >= s.N) break;
      for (size_t b = 0; b < kb; ++b) {
        uint8_t* blk = out + (p * kb + b) * stride;
        const size_t k0 = b * s.bs, k1 = std::min(s.K, k0 + s.bs);
        for (size_t k = k0; k < k1; ++k) {
          const size_t kk = k - k0;
          const uint8_t q = codes[n * s.K + k];
          if (s.bits == 8)
            blk[(kk / 4) * 64 + c * 4 + kk % 4] = q;
          else
            blk[(kk / 8) * 64 + c * 4 + kk % 4] |= static_cast<uint8_t>((kk % 8) < 4 ? q : q << 4);
        }
        std::memcpy(blk + cb + 4 * c, &scales[n * kb + b], 4);
        if (s.asym) blk[cb + 64 + c] = zps[n * kb + b];
      }
    }
}

void nbits_unpack(const NBitsShape& s, const uint8_t* packed, uint8_t* codes, float* scales, uint8_t* zps) {
  const size_t kb = s.kb(), stride = s.stride(), cb = nbits_code_bytes(s.bs, s.bits);
  for (size_t n = 0; n < s.N; ++n) {
    const size_t p = n / kNBitsPanel, c = n % kNBitsPanel;
    for (size_t b = 0; b < kb; ++b) {
      const uint8_t* blk = packed + (p * kb + b) * stride;
      const size_t k0 = b * s.bs, k1 = std::min(s.K, k0 + s.bs);
      for (size_t k = k0; k < k1; ++k) codes[n * s.K + k] = static_cast<uint8_t>(nbits_code(blk, s.bits, c, k - k0));
      std::memcpy(&scales[n * kb + b], blk + cb + 4 * c, 4);
      zps[n * kb + b] = s.asym ? blk[cb + 64 + c] : static_cast<uint8_t>(1u << (s.bits - 1));
    }
  }
}

NBitsKernels nbits_selected() {
  const KernelTable& t = kernels();
  const size_t mr = std::max<size_t>(1, std::max(t.nbits_f32_geom.mr, t.nbits_i8_geom.mr));
  return {t.nbits_f32, t.nbits_i8, t.nbits_qx, mr};
}

void nbits_run(const NBitsRun& r) { nbits_run_with(r, nbits_selected()); }

void nbits_run_with(const NBitsRun& r, const NBitsKernels& k) {
  const NBitsShape& s = r.shape;
  const size_t M = r.M, N = s.N, K = s.K;
  if (M == 0 || N == 0) return;
  const size_t kb = s.kb(), kp = kb * s.bs, P = s.panels(), np = P * kNBitsPanel;
  if (K == 0) {
    for (size_t i = 0; i < M; ++i)
      for (size_t j = 0; j < N; ++j) {
        float y = 0.0f + (r.bias ? r.bias[j] : 0.0f);
        r.y[i * N + j] = r.relu ? nbits_relu(y) : y;
      }
    return;
  }
  std::vector<float> bias(np, 0.0f);
  if (r.bias) std::memcpy(bias.data(), r.bias, N * sizeof(float));

  NBitsArgs g{};
  g.w = r.w;
  g.bits = s.bits;
  g.bs = s.bs;
  g.kb = kb;
  g.stride = s.stride();
  g.asym = s.asym;
  g.n = N;
  g.bias = bias.data();
  g.relu = r.relu;
  g.y = r.y;
  g.ldy = N;

  AlignedPtr<float> xpad;
  AlignedPtr<int8_t> xq;
  std::vector<float> xs, xsum;
  const size_t T = static_cast<size_t>(num_threads());
  if (r.int8) {
    xq = aligned_array<int8_t>(M * kp);
    if (!xq) throw std::bad_alloc();
    xs.resize(M * kb);
    xsum.resize(M * kb);
    int8_t* q = xq.get();
    parallel_ranges(M, std::max<size_t>(1, ceil_div(M, 4 * T)), M * K * sizeof(float), [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i) k.qx(r.x + i * K, K, s.bs, q + i * kp, &xs[i * kb], &xsum[i * kb]);
    });
    g.xq = q;
    g.ldxq = kp;
    g.xs = xs.data();
    g.xsum = xsum.data();
  } else if (kp != K) {
    xpad = aligned_array<float>(M * kp);
    if (!xpad) throw std::bad_alloc();
    for (size_t i = 0; i < M; ++i) {
      std::memcpy(xpad.get() + i * kp, r.x + i * K, K * sizeof(float));
      std::memset(xpad.get() + i * kp + K, 0, (kp - K) * sizeof(float));
    }
    g.x = xpad.get();
    g.ldx = kp;
  } else {
    g.x = r.x;
    g.ldx = K;
  }
  const nbits_fn fn = r.int8 ? k.i8 : k.f32;

  // Tasks: panel ranges (multiples of 4 panels: the GEMV tiles' width) x row blocks. The weights
  // are read once per row block, so rows are split only when there are too few panels.
  // Small calls stay on one thread: less than kParallelMinBytes read and fewer than 2^22
  // multiply-adds (a batch of 64 through a 784 x 512 layer is 0.4 MB but 26M multiply-adds).
  const size_t bytes = s.packed_bytes() + M * K * sizeof(float);
  if ((bytes < kParallelMinBytes && M * N * K < (size_t{1} << 22)) || T <= 1) {
    fn(g, 0, M, 0, P);
    return;
  }
  size_t row_blocks = 1;
  if (P < 2 * T && M > k.mr) row_blocks = std::min(ceil_div(2 * T, P), ceil_div(M, k.mr));
  const size_t rb = round_up(ceil_div(M, row_blocks), k.mr);
  row_blocks = ceil_div(M, rb);
  const size_t want = std::max<size_t>(1, ceil_div(4 * T, row_blocks));
  const size_t pc = std::max<size_t>(1, round_up(ceil_div(P, want), P >= 4 * want ? 4 : 1));
  const size_t pt = ceil_div(P, pc);
  parallel_for(pt * row_blocks, [&](size_t t) {
    const size_t pi = t % pt, ri = t / pt;
    const size_t m0 = ri * rb, m1 = std::min(M, m0 + rb);
    const size_t p0 = pi * pc, p1 = std::min(P, p0 + pc);
    fn(g, m0, m1, p0, p1);
  });
}

}  // namespace qk
