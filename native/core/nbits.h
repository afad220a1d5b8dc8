// MatMulNBits driver: packs block-quantized weights (kernel_types_nbits.h), quantizes the
// activations for the int8 compute, splits rows x panels over the thread pool and calls the
// selected nbits_f32 / nbits_i8 kernels. ISA-free. Arguments are assumed valid (native/napi checks).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernel_types.h"
#include "mem.h"

namespace qk {

struct NBitsShape {
  size_t K = 0, N = 0, bits = 4, bs = 32;
  bool asym = false;
  size_t kb() const { return ceil_div(K, bs); }
  size_t panels() const { return ceil_div(N, kNBitsPanel); }
  size_t stride() const { return nbits_block_stride(bs, bits, asym); }
  size_t packed_bytes() const { return panels() * kb() * stride(); }
};

// codes: unsigned [N, K] one per byte (< 2^bits); scales [N, kb]; zps [N, kb] (asym only, else
// ignored). out: shape.packed_bytes() bytes.
void nbits_pack(const NBitsShape& s, const uint8_t* codes, const float* scales, const uint8_t* zps, uint8_t* out);
// The inverse: codes [N, K], scales [N, kb], zps [N, kb] (2^(bits-1) when symmetric).
void nbits_unpack(const NBitsShape& s, const uint8_t* packed, uint8_t* codes, float* scales, uint8_t* zps);

struct NBitsRun {
  NBitsShape shape;
  const uint8_t* w = nullptr;  // packed
  size_t M = 0;
  const float* x = nullptr;     // M x K
  const float* bias = nullptr;  // N or null
  bool relu = false;
  bool int8 = false;   // compute: int8 (accuracy_level 4) or fp32
  float* y = nullptr;  // M x N
};

// The kernels one run uses (the selected ones, or an entry's under test) and the tile rows.
struct NBitsKernels {
  nbits_fn f32;
  nbits_fn i8;
  nbits_qx_fn qx;
  size_t mr;
};
NBitsKernels nbits_selected();

// y = x * W (+ bias) (relu). Each output is computed by one thread in one fixed order: the thread
// count never changes a result.
void nbits_run(const NBitsRun& r);
void nbits_run_with(const NBitsRun& r, const NBitsKernels& k);

}  // namespace qk
