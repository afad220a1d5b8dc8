// The loops of an sgemv kernel (one row of A against an unpacked B, kernel_types_sgemm.h), over a
// register type: the AVX2 and NEON kernels instantiate it with theirs. Each c[j] is one FMA chain
// in increasing k (vector lanes and the scalar tail alike), then + bias, then relu
// (docs/numerics.md, "fp32 GEMM"); a B^T row is a dot product in two accumulators of V::kWidth
// lanes, summed by V::hsum, then the scalar tail.
//
// V: Reg; kWidth floats per Reg; zero(); load(p); store(p, v); bcast(x); fma(a, b, c) = a * b + c
// rounded once; add(a, b); hsum(v).
// ISA-free; in an unnamed namespace, so each kernel file gets its own copy.
#pragma once
#include <cmath>
#include <cstddef>

#include "../core/ref_sgemm.h"

namespace qk {
namespace {

template <class V>
void sgemv_rows(const SgemvArgs& p) {
  using Reg = typename V::Reg;
  constexpr size_t W = V::kWidth;
  const Reg zero = V::zero();
  if (!p.trans) {
    // c[j] = fma chain over k; 4 rows of B per pass over the C chunk (which stays in L1).
    constexpr size_t kCols = 2048;
    for (size_t j0 = 0; j0 < p.n; j0 += kCols) {
      const size_t n = p.n - j0 < kCols ? p.n - j0 : kCols;
      const size_t nv = n & ~(W - 1);
      float* c = p.c + j0;
      const float* b = p.b + j0;
      size_t k = 0;
      for (; k + 4 <= p.k; k += 4) {
        const Reg a0 = V::bcast(p.a[k]), a1 = V::bcast(p.a[k + 1]);
        const Reg a2 = V::bcast(p.a[k + 2]), a3 = V::bcast(p.a[k + 3]);
        const float* b0 = b + k * p.ldb;
        const float* b1 = b0 + p.ldb;
        const float* b2 = b1 + p.ldb;
        const float* b3 = b2 + p.ldb;
        size_t j = 0;
        for (; j < nv; j += W) {
          Reg v = k == 0 ? zero : V::load(c + j);
          v = V::fma(a0, V::load(b0 + j), v);
          v = V::fma(a1, V::load(b1 + j), v);
          v = V::fma(a2, V::load(b2 + j), v);
          v = V::fma(a3, V::load(b3 + j), v);
          V::store(c + j, v);
        }
        for (; j < n; ++j) {
          float v = k == 0 ? 0.0f : c[j];
          v = std::fma(p.a[k], b0[j], v);
          v = std::fma(p.a[k + 1], b1[j], v);
          v = std::fma(p.a[k + 2], b2[j], v);
          v = std::fma(p.a[k + 3], b3[j], v);
          c[j] = v;
        }
      }
      for (; k < p.k; ++k) {
        const Reg a0 = V::bcast(p.a[k]);
        const float* b0 = b + k * p.ldb;
        size_t j = 0;
        for (; j < nv; j += W) V::store(c + j, V::fma(a0, V::load(b0 + j), k == 0 ? zero : V::load(c + j)));
        for (; j < n; ++j) c[j] = std::fma(p.a[k], b0[j], k == 0 ? 0.0f : c[j]);
      }
      for (size_t j = 0; j < n; ++j) {
        float v = c[j];
        if (p.bias) v = v + p.bias[j0 + j];
        if (p.relu) v = sgemm_relu(v);
        c[j] = v;
      }
    }
    return;
  }
  // B^T: dot products of a with rows of B^T, two accumulators per row.
  const size_t kv = p.k & ~(2 * W - 1);
  for (size_t j = 0; j < p.n; ++j) {
    const float* r0 = p.b + j * p.ldb;
    Reg s0 = zero, t0 = zero;
    size_t k = 0;
    for (; k < kv; k += 2 * W) {
      s0 = V::fma(V::load(p.a + k), V::load(r0 + k), s0);
      t0 = V::fma(V::load(p.a + k + W), V::load(r0 + k + W), t0);
    }
    float s = V::hsum(V::add(s0, t0));
    for (; k < p.k; ++k) s = std::fma(p.a[k], r0[k], s);
    if (p.bias) s = s + p.bias[j];
    if (p.relu) s = sgemm_relu(s);
    p.c[j] = s;
  }
}

}  // namespace
}  // namespace qk
