// fp32 GEMM driver: C = A * B (+ bias) (relu), split over M and N blocks on the shared thread pool,
// K cut into blocks, B packed into 32-column panels (kernel_types_sgemm.h) on the fly or ahead of
// time (sgemm_pack_b, packWeightsF32). ISA-free: calls the selected sgemm_block / sgemv kernels.
// Arguments are assumed valid here; native/napi checks them first.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernel_types.h"

namespace qk {

struct SgemmArgs {
  size_t M = 0, N = 0, K = 0;
  const float* a = nullptr;  // M x K, row-major
  const float* b = nullptr;  // K x N row-major, or N x K when trans_b; unused when packed
  bool trans_b = false;
  const float* packed = nullptr;  // B in the panel format (sgemm_pack_b), or null
  const float* bias = nullptr;    // N values, or null
  bool relu = false;
  float* c = nullptr;  // M x N, row-major; must not overlap a, b, packed or bias
};

// C = A * B (+ bias) (relu). Each element of C is computed by one thread in one fixed order, so
// the thread count never changes a result.
void sgemm(const SgemmArgs& args);

// Runs one block (any m, n, k) with a kernel of the sgemm_block op and its geometry (its entry in
// kernels_sgemm.def): K in chunks of kSgemmKc, A packed per chunk when the kernel wants it
// (kPackA), strips of geo.nr columns. sgemm() runs its tasks' blocks with it; the kernel tests
// run every entry through it.
void sgemm_run_block(sgemm_strip_fn fn, const KernelGeom& geo, const SgemmBlock& p);

// Floats of the panel format of a K x N matrix: ceil(N / 32) * 32 * K.
size_t sgemm_packed_floats(size_t K, size_t N);
// Packs B (K x N row-major, or N x K when trans) into out (sgemm_packed_floats(K, N) floats).
void sgemm_pack_b(const float* b, size_t K, size_t N, bool trans, float* out);

}  // namespace qk
