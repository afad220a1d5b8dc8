// arm64 NEON fp32 GEMM kernels: a 6 x 16 register tile (24 q accumulators, four q of B per k,
// FMLA by scalar of A); a strip is 16 columns (half a panel) of the block's rows, A packed by the
// driver in slivers of 6 rows (kPackA). Column tails go through a 6 x 16 scratch tile. Each C
// element is one FMA chain in increasing k (docs/numerics.md, "fp32 GEMM"). sgemv: sgemv_rows.h.
#include <arm_neon.h>

#include <cstring>

#include "kernel_decls.h"
#include "sgemv_rows.h"
#include "strip.h"

namespace qk {

namespace {

constexpr KernelGeom kGeom = geom::sgemm_block_neon;  // kernels_sgemm.def
constexpr int kMr = static_cast<int>(kGeom.mr);
static_assert(kMr >= 1 && kMr <= 6 && kGeom.nr == 16 && (kGeom.traits & kPackA),
              "tiles of 1-6 rows (24 q accumulators at most) x 16 columns, over a packed A");

inline float32x4_t epilogue(float32x4_t v, float32x4_t bias, uint32_t flags) {
  if (flags & QK_SGEMM_BIAS) v = vaddq_f32(v, bias);
  if (flags & QK_SGEMM_RELU) {
    const float32x4_t z = vdupq_n_f32(0.0f);
    v = vbslq_f32(vcltq_f32(v, z), z, v);  // v < 0 ? 0 : v (NaN and -0 kept)
  }
  return v;
}

// Full 16 columns at c (ldc), bias: 16 values (or null without QK_SGEMM_BIAS). A packed:
// ap[k * kMr + r].
template <int R>
inline __attribute__((always_inline)) void tile(size_t kc, const float* ap, const float* b, size_t ldb, float* c,
                                                size_t ldc, uint32_t flags, const float* bias) {
  float32x4_t acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < 4; ++q)
      acc[r][q] = (flags & QK_SGEMM_ACCUMULATE) ? vld1q_f32(c + r * ldc + 4 * q) : vdupq_n_f32(0.0f);
  for (size_t k = 0; k < kc; ++k) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
    b += ldb;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const float av = ap[r];
      acc[r][0] = vfmaq_n_f32(acc[r][0], b0, av);
      acc[r][1] = vfmaq_n_f32(acc[r][1], b1, av);
      acc[r][2] = vfmaq_n_f32(acc[r][2], b2, av);
      acc[r][3] = vfmaq_n_f32(acc[r][3], b3, av);
    }
    ap += kMr;
  }
  float32x4_t bv[4];
  for (int q = 0; q < 4; ++q) bv[q] = (flags & QK_SGEMM_BIAS) ? vld1q_f32(bias + 4 * q) : vdupq_n_f32(0.0f);
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < 4; ++q) vst1q_f32(c + r * ldc + 4 * q, epilogue(acc[r][q], bv[q], flags));
}

// One tile, out of line (the tiles of a strip are direct calls).
template <int R>
__attribute__((noinline)) void tile_fn(size_t kc, const float* ap, const float* b, size_t ldb, float* c, size_t ldc,
                                       uint32_t flags, const float* bias) {
  tile<R>(kc, ap, b, ldb, c, ldc, flags, bias);
}

// The register type of sgemv_rows (sgemv_rows.h).
struct Q {
  using Reg = float32x4_t;
  static constexpr size_t kWidth = 4;
  static inline Reg zero() { return vdupq_n_f32(0.0f); }
  static inline Reg load(const float* p) { return vld1q_f32(p); }
  static inline void store(float* p, Reg v) { vst1q_f32(p, v); }
  static inline Reg bcast(float x) { return vdupq_n_f32(x); }
  static inline Reg fma(Reg a, Reg b, Reg c) { return vfmaq_f32(c, a, b); }
  static inline Reg add(Reg a, Reg b) { return vaddq_f32(a, b); }
  static inline float hsum(Reg v) { return vaddvq_f32(v); }
};

}  // namespace

void sgemm_block_neon(const SgemmStrip& s) {
  for_row_tiles<kMr>(0, s.m, [&](auto r, size_t i0) {
    constexpr int R = decltype(r)::value;
    const float* ap = s.a + i0 * s.k;  // sliver i0 / kMr
    float* c = s.c + i0 * s.ldc;
    if (s.n >= 16) {
      tile_fn<R>(s.k, ap, s.b, s.ldb, c, s.ldc, s.flags, s.bias);
      return;
    }
    // Column tail: through a scratch tile (columns past n of the panel are zero or unused).
    float tmp[kMr * 16] = {};
    float tb[16] = {};
    for (int q = 0; q < R; ++q) std::memcpy(tmp + q * 16, c + q * s.ldc, s.n * sizeof(float));
    if (s.bias) std::memcpy(tb, s.bias, s.n * sizeof(float));
    tile_fn<R>(s.k, ap, s.b, s.ldb, tmp, 16, s.flags, tb);
    for (int q = 0; q < R; ++q) std::memcpy(c + q * s.ldc, tmp + q * 16, s.n * sizeof(float));
  });
}

void sgemv_neon(const SgemvArgs& p) { sgemv_rows<Q>(p); }

}  // namespace qk
