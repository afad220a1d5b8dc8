// Scalar fp32 GEMM reference: plain loops in a fixed order (k increasing, one rounding for the
// product and one for the sum, no FMA: the file is built with -ffp-contract=off).
#include "ref.h"

namespace qk {

void sgemm_block_ref(const SgemmStrip& p) {
  for (size_t i = 0; i < p.m; ++i) {
    const float* a = p.a + i * p.lda;
    float* c = p.c + i * p.ldc;
    for (size_t j = 0; j < p.n; ++j) {
      const float* b = p.b + (j / kSgemmPanel) * p.b_panel_stride + (j % kSgemmPanel);
      float acc = (p.flags & QK_SGEMM_ACCUMULATE) ? c[j] : 0.0f;
      for (size_t k = 0; k < p.k; ++k) acc = acc + a[k] * b[k * p.ldb];
      if (p.flags & QK_SGEMM_BIAS) acc = acc + p.bias[j];
      if (p.flags & QK_SGEMM_RELU) acc = sgemm_relu(acc);
      c[j] = acc;
    }
  }
}

void sgemv_ref(const SgemvArgs& p) {
  for (size_t j = 0; j < p.n; ++j) {
    float acc = 0.0f;
    for (size_t k = 0; k < p.k; ++k) acc = acc + p.a[k] * (p.trans ? p.b[j * p.ldb + k] : p.b[k * p.ldb + j]);
    if (p.bias) acc = acc + p.bias[j];
    if (p.relu) acc = sgemm_relu(acc);
    p.c[j] = acc;
  }
}

void sgemm_plain(size_t M, size_t N, size_t K, const float* a, const float* b, bool trans_b, const float* bias,
                 bool relu, float* c) {
  for (size_t i = 0; i < M; ++i)
    for (size_t j = 0; j < N; ++j) {
      float acc = 0.0f;
      for (size_t k = 0; k < K; ++k) acc = acc + a[i * K + k] * (trans_b ? b[j * K + k] : b[k * N + j]);
      if (bias) acc = acc + bias[j];
      if (relu) acc = sgemm_relu(acc);
      c[i * N + j] = acc;
    }
}

}  // namespace qk
