#include "quant.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../dispatch/dispatch.h"
#include "threadpool.h"

namespace qk {

size_t Layout::num_groups() const {
  switch (gran) {
    case Gran::PerTensor: return 1;
    case Gran::PerAxis: return axis_dim;
    case Gran::Blocked: return outer * num_blocks() * inner;
  }
  return 1;
}

namespace {

constexpr size_t kTaskElems = size_t{1} << 16;  // elements per parallel task (even)
constexpr size_t kChunk = 2048;                 // scratch chunk for nibble storage (even)

// One maximal piece of [e0, e1) whose qparams are either one group (uniform) or one group per
// element (vec: scale/zp point at the first element's group, consecutive groups follow).
struct Segment {
  size_t begin, len;
  bool vec;
  size_t group;  // uniform: the group; vec: the first element's group
};

// Per-axis with a small inner extent is turned into the innermost case over an expanded
// scale / zero-point table of axis_dim * inner entries.
struct Expanded {
  std::vector<float> scale;
  std::vector<int32_t> zp;
};

constexpr size_t kExpandInnerMax = 16;
constexpr size_t kExpandMax = size_t{1} << 20;

bool want_expand(const Layout& L) {
  return L.gran == Gran::PerAxis && L.inner > 1 && L.inner < kExpandInnerMax && L.axis_dim * L.inner <= kExpandMax;
}

void maybe_expand(Layout& L, QParamsView& qp, Expanded& ex) {
  if (!want_expand(L)) return;
  ex.scale.resize(L.axis_dim * L.inner);
  ex.zp.resize(L.axis_dim * L.inner);
  for (size_t a = 0; a < L.axis_dim; ++a)
    for (size_t i = 0; i < L.inner; ++i) {
      ex.scale[a * L.inner + i] = qp.scale[a];
      ex.zp[a * L.inner + i] = qp.zp[a];
    }
  L.axis_dim *= L.inner;
  L.inner = 1;
  qp = QParamsView{ex.scale.data(), ex.zp.data()};
}

// The layout and qparams a call walks: the caller's, or the expanded per-element table.
struct Walk {
  Layout L;
  QParamsView qp;
  Expanded ex;
  Walk(const Layout& L0, QParamsView qp0) : L(L0), qp(qp0) { maybe_expand(L, qp, ex); }
  Walk(const Walk&) = delete;
  Walk& operator=(const Walk&) = delete;
};

// Pieces of at most kChunk elements of s (nibble storage goes through a scratch buffer).
template <class F>
void for_chunks(const Segment& s, F&& f) {
  for (size_t off = 0; off < s.len; off += kChunk)
    f(Segment{s.begin + off, std::min(kChunk, s.len - off), s.vec, s.vec ? s.group + off : s.group});
}

// Calls f(Segment) for the pieces of [e0, e1) in order.
template <class F>
void for_segments(const Layout& L, size_t e0, size_t e1, F&& f) {
  const size_t A = L.axis_dim, I = L.inner;
  size_t e = e0;
  while (e < e1) {
    switch (L.gran) {
      case Gran::PerTensor: f(Segment{e, e1 - e, false, 0}); return;
      case Gran::PerAxis: {
        if (I == 1) {  // innermost axis: consecutive elements, consecutive channels
          const size_t a = e % A;
          const size_t len = std::min(e1 - e, A - a);
          f(Segment{e, len, true, a});
          e += len;
        } else {
          const size_t row = e / I, i = e % I;
          const size_t len = std::min(e1 - e, I - i);
          f(Segment{e, len, false, row % A});
          e += len;
        }
        break;
      }
      case Gran::Blocked: {
        const size_t B = L.block, nb = L.num_blocks();
        const size_t row = e / I, i = e % I;  // row = o * A + a
        const size_t o = row / A, a = row % A;
        if (I == 1) {
          const size_t len = std::min(e1 - e, std::min(B - a % B, A - a));
          f(Segment{e, len, false, o * nb + a / B});
          e += len;
        } else {
          const size_t len = std::min(e1 - e, I - i);
          f(Segment{e, len, true, (o * nb + a / B) * I + i});
          e += len;
        }
        break;
      }
    }
  }
}

// Splits [0, n) float elements into even-aligned tasks and runs body(e0, e1) over them.
template <class F>
void run_tasks(size_t n, F&& body) {
  parallel_ranges(n, kTaskElems, n * sizeof(float), body);
}

void quant_segment(const KernelTable& k, const float* x, const Segment& s, QParamsView qp, const QRange& r,
                   uint8_t* codes) {
  if (s.vec)
    k.quant_vec(x + s.begin, s.len, qp.scale + s.group, qp.zp + s.group, r, codes);
  else
    k.quant_uniform(x + s.begin, s.len, qp.scale[s.group], qp.zp[s.group], r, codes);
}

}  // namespace

void pack_nibbles(const uint8_t* codes, size_t n, size_t elem_offset, uint8_t* packed) {
  size_t i = 0, e = elem_offset;
  if (n == 0) return;
  if (e & 1) {  // finish a byte whose low nibble is already written
    uint8_t& b = packed[e >> 1];
    b = static_cast<uint8_t>((b & 0x0f) | (codes[0] << 4));
    ++i;
    ++e;
  }
  for (; i + 1 < n; i += 2, e += 2) packed[e >> 1] = static_cast<uint8_t>((codes[i] & 0x0f) | (codes[i + 1] << 4));
  if (i < n) packed[e >> 1] = static_cast<uint8_t>(codes[i] & 0x0f);  // high nibble zeroed
}

void unpack_nibbles(const uint8_t* packed, size_t elem_offset, size_t n, bool is_signed, uint8_t* codes) {
  if (n == 0) return;
  // Sign extension of a nibble: (int8)(v << 4) >> 4 (arithmetic shift of a signed byte).
  auto lo = [is_signed](uint8_t b) -> uint8_t {
    return is_signed ? static_cast<uint8_t>(static_cast<int8_t>(static_cast<uint8_t>(b << 4)) >> 4)
                     : static_cast<uint8_t>(b & 0x0f);
  };
  auto hi = [is_signed](uint8_t b) -> uint8_t {
    return is_signed ? static_cast<uint8_t>(static_cast<int8_t>(b) >> 4) : static_cast<uint8_t>(b >> 4);
  };
  size_t i = 0, e = elem_offset;
  if (e & 1) {  // starts on a high nibble
    codes[i++] = hi(packed[e >> 1]);
    ++e;
  }
  const uint8_t* p = packed + (e >> 1);
  const size_t pairs = (n - i) / 2;
  uint8_t* c = codes + i;
  // Whole bytes, two codes each (separate loops so each one vectorises).
  if (is_signed) {
    for (size_t b = 0; b < pairs; ++b) {
      const uint8_t v = p[b];
      c[2 * b] = static_cast<uint8_t>(static_cast<int8_t>(static_cast<uint8_t>(v << 4)) >> 4);
      c[2 * b + 1] = static_cast<uint8_t>(static_cast<int8_t>(v) >> 4);
    }
  } else {
    for (size_t b = 0; b < pairs; ++b) {
      const uint8_t v = p[b];
      c[2 * b] = static_cast<uint8_t>(v & 0x0f);
      c[2 * b + 1] = static_cast<uint8_t>(v >> 4);
    }
  }
  if (i + 2 * pairs < n) codes[n - 1] = lo(p[pairs]);  // ends on a low nibble
}

void quantize(const float* x, const Layout& L0, QParamsView qp0, const QRange& r, Storage st, uint8_t* out) {
  const KernelTable& k = kernels();
  const Walk w(L0, qp0);
  const Layout& L = w.L;
  const QParamsView& qp = w.qp;
  run_tasks(L.numel(), [&](size_t e0, size_t e1) {
    if (st == Storage::Byte) {
      for_segments(L, e0, e1, [&](const Segment& s) { quant_segment(k, x, s, qp, r, out + s.begin); });
      return;
    }
    uint8_t buf[kChunk];
    for_segments(L, e0, e1, [&](const Segment& s) {
      for_chunks(s, [&](const Segment& c) {
        quant_segment(k, x, c, qp, r, buf);
        pack_nibbles(buf, c.len, c.begin, out);
      });
    });
  });
}

void dequantize(const uint8_t* q, const Layout& L0, QParamsView qp0, bool is_signed, Storage st, float* out) {
  const KernelTable& k = kernels();
  const Walk w(L0, qp0);
  const Layout& L = w.L;
  const QParamsView& qp = w.qp;
  auto deq = [&](const uint8_t* codes, const Segment& s) {
    if (s.vec)
      k.dequant_vec(codes, s.len, is_signed, qp.scale + s.group, qp.zp + s.group, out + s.begin);
    else
      k.dequant_uniform(codes, s.len, is_signed, qp.scale[s.group], qp.zp[s.group], out + s.begin);
  };
  run_tasks(L.numel(), [&](size_t e0, size_t e1) {
    if (st == Storage::Byte) {
      for_segments(L, e0, e1, [&](const Segment& s) { deq(q + s.begin, s); });
      return;
    }
    uint8_t buf[kChunk];
    for_segments(L, e0, e1, [&](const Segment& s) {
      for_chunks(s, [&](const Segment& c) {
        unpack_nibbles(q, c.begin, c.len, is_signed, buf);
        deq(buf, c);
      });
    });
  });
}

void fake_quantize(const float* x, const Layout& L0, QParamsView qp0, const QRange& r, float* out, uint8_t* mask) {
  const KernelTable& k = kernels();
  const Walk w(L0, qp0);
  const Layout& L = w.L;
  const QParamsView& qp = w.qp;
  run_tasks(L.numel(), [&](size_t e0, size_t e1) {
    for_segments(L, e0, e1, [&](const Segment& s) {
      uint8_t* m = mask ? mask + s.begin : nullptr;
      if (s.vec)
        k.fakequant_vec(x + s.begin, s.len, qp.scale + s.group, qp.zp + s.group, r, out + s.begin, m);
      else
        k.fakequant_uniform(x + s.begin, s.len, qp.scale[s.group], qp.zp[s.group], r, out + s.begin, m);
    });
  });
}

void min_max(const float* x, const Layout& L, float* mins, float* maxs, MinMaxAcc* acc) {
  const KernelTable& k = kernels();
  const float inf = std::numeric_limits<float>::infinity();
  const size_t groups = L.num_groups();
  std::fill(mins, mins + groups, inf);
  std::fill(maxs, maxs + groups, -inf);
  *acc = MinMaxAcc{inf, -inf, 0, 0};
  const size_t n = L.numel();
  if (L.gran == Gran::PerTensor) {
    // Parallel partial reductions, merged in task order (min/max are order-free but for the
    // sign of zero, which is canonicalised below).
    const size_t tasks = std::max<size_t>(1, parallel_tasks(n, kTaskElems, n * sizeof(float)));
    std::vector<MinMaxAcc> part(tasks, MinMaxAcc{inf, -inf, 0, 0});
    auto body = [&](size_t t) {
      const size_t e0 = t * kTaskElems, e1 = tasks == 1 ? n : std::min(n, e0 + kTaskElems);
      k.minmax_uniform(x + e0, e1 - e0, &part[t]);
    };
    if (tasks == 1)
      body(0);
    else
      parallel_for(tasks, body);
    for (const MinMaxAcc& p : part) {
      acc->min = std::min(acc->min, p.min);
      acc->max = std::max(acc->max, p.max);
      acc->nan += p.nan;
      acc->inf += p.inf;
    }
    mins[0] = acc->min;
    maxs[0] = acc->max;
  } else {
    for_segments(L, 0, n, [&](const Segment& s) {
      if (s.vec) {
        k.minmax_vec(x + s.begin, s.len, mins + s.group, maxs + s.group, acc);
      } else {
        MinMaxAcc a{mins[s.group], maxs[s.group], 0, 0};
        k.minmax_uniform(x + s.begin, s.len, &a);
        mins[s.group] = a.min;
        maxs[s.group] = a.max;
        acc->nan += a.nan;
        acc->inf += a.inf;
      }
    });
    for (size_t g = 0; g < groups; ++g) {
      acc->min = std::min(acc->min, mins[g]);
      acc->max = std::max(acc->max, maxs[g]);
    }
  }
  for (size_t g = 0; g < groups; ++g) {
    mins[g] += 0.0f;  // -0 -> +0, so every path reports the same bits
    maxs[g] += 0.0f;
  }
  acc->min += 0.0f;
  acc->max += 0.0f;
}

void dynamic_quantize(const float* x, size_t n, uint8_t* out, float* scale_out, int32_t* zp_out) {
  Layout L;
  L.inner = n;
  float mn, mx;
  MinMaxAcc acc;
  min_max(x, L, &mn, &mx, &acc);
  const float lo = std::min(mn, 0.0f);  // nothing finite: +inf -> 0, -inf -> 0
  const float hi = std::max(mx, 0.0f);
  float s = (hi - lo) / 255.0f;
  if (std::isinf(s)) s = hi / 255.0f - lo / 255.0f;  // the width overflows float32
  int32_t zp = 0;
  if (s == 0.0f) {
    s = 1.0f;  // all zeros, empty or nothing finite: the spec divides by zero here
  } else {
    const float z = std::nearbyint(0.0f - lo / s);
    zp = static_cast<int32_t>(std::min(255.0f, std::max(0.0f, z)));
  }
  *scale_out = s;
  *zp_out = zp;
  QRange r{0, 255, 0};
  quantize(x, L, QParamsView{&s, &zp}, r, Storage::Byte, out);
}

}  // namespace qk
