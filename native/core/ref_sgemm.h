// fp32 GEMM reference kernels (declarations). Not bit-for-bit targets: every path must stay within
// the error bound of docs/numerics.md ("fp32 GEMM"); the reference itself is the plain loop.
#pragma once
#include "kernel_types.h"

namespace qk {

// Plain loops: acc = 0; for k = 0..K-1: acc = acc + a * b (two roundings, no FMA); then
// acc + bias; then relu. The scalar strip reads A in place and walks the rows one by one.
void sgemm_block_ref(const SgemmStrip& p);
void sgemv_ref(const SgemvArgs& p);

// The whole product in the same order: C = A (M x K) * B (K x N, or N x K when trans_b)
// (+ bias) (relu). The scalar path returns exactly this.
void sgemm_plain(size_t M, size_t N, size_t K, const float* a, const float* b, bool trans_b, const float* bias,
                 bool relu, float* c);

inline float sgemm_relu(float x) { return x < 0.0f ? 0.0f : x; }

}  // namespace qk
