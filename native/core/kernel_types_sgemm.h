// fp32 GEMM kernel signatures (see kernel_types.h). Numerics: docs/numerics.md ("fp32 GEMM").
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {

// Packed B ("panel format", shared by every path and by packWeightsF32): B (K x N) cut into K
// blocks of kSgemmKc = 256 rows (the last one shorter) and each block into panels of
// kSgemmPanel = 32 columns. Block kb (rows k0 = 256 kb .. k0 + kc) starts at k0 * Np (Np = N
// rounded up to 32); its panel p at + p * kc * 32 holds B[k0 + k][32p + j] at k * 32 + j,
// zero-padded for columns >= N. A block is contiguous, so the panels a thread walks never pile
// up in a few cache sets (a panel per 32 columns over the whole K would put panels K * 128 bytes
// apart: for K = 1024 or 2048 all in the same L2 sets).
constexpr size_t kSgemmPanel = 32;
constexpr size_t kSgemmKc = 256;

// Flags of one block call.
constexpr uint32_t QK_SGEMM_ACCUMULATE = 1u;  // C += A * B (a later K block); else C = A * B
constexpr uint32_t QK_SGEMM_BIAS = 2u;        // last K block: C += bias[j] after the products
constexpr uint32_t QK_SGEMM_RELU = 4u;        // last K block: C = C < 0 ? 0 : C (after the bias)

// One block: C[m x n] (=|+=) A[m x k] * B[k x n], A row-major (lda), B as 32-column panels
// b_panel_stride floats apart with rows ldb floats apart (ldb = 32: the panel format; ldb = N: an
// unpacked row-major B read in place, then every panel must have 32 readable columns), C
// row-major (ldc). Every element is one chain c = fma(a_i0, b_0j, ...) (or c + a*b) in
// increasing k, continuing from C when ACCUMULATE is set, so cutting K into blocks does not
// change the result of a path. The driver runs a block with a kernel (sgemm_run_block, sgemm.h).
struct SgemmBlock {
  size_t m, n, k;
  const float* a;
  size_t lda;
  const float* b;
  size_t b_panel_stride;
  size_t ldb;
  float* c;
  size_t ldc;
  const float* bias;  // n values (QK_SGEMM_BIAS)
  uint32_t flags;
};

// One strip of a block for one K chunk: what a kernel of the sgemm_block op computes. Columns:
// n <= nr of the kernel (KernelGeom), starting at a panel or, for nr = 16, a panel half; depth
// k <= kSgemmKc; all m rows of the block, in register tiles of mr rows. Flags as for the block,
// already resolved for this chunk (ACCUMULATE from the second chunk on, BIAS / RELU on the last).
struct SgemmStrip {
  size_t m, n, k;
  // kPackA: slivers of mr rows, sliver s (rows s * mr ..) at a + s * mr * k holding row
  // s * mr + r, depth kk at [kk * mr + r] (lda unused). Else rows lda floats apart.
  const float* a;
  size_t lda;
  const float* b;  // as SgemmBlock: the strip's first column
  size_t b_panel_stride;
  size_t ldb;
  float* c;  // the strip's first column
  size_t ldc;
  const float* bias;  // the strip's n values (QK_SGEMM_BIAS)
  uint32_t flags;
  size_t n_after;  // columns of the block after this strip (a prefetch hint; 0: the last)
};
using sgemm_strip_fn = void (*)(const SgemmStrip& s);

// Matrix-vector product of one row of A with an unpacked B: c[j] = sum_k a[k] * B(k, j) (+ bias,
// relu) for j < n, B(k, j) = b[k * ldb + j] (trans == false, B is K x N) or b[j * ldb + k]
// (trans == true, B is N x K). k >= 1.
struct SgemvArgs {
  size_t k, n;
  const float* a;
  const float* b;
  size_t ldb;
  bool trans;
  float* c;
  const float* bias;  // n values or null
  bool relu;
};
using sgemv_fn = void (*)(const SgemvArgs& p);

}  // namespace qk
