// gemm_i8 on AMX-INT8: the strip of gemm_amx.h on the real tiles (AmxHw: ldtilecfg, tileloadd,
// tdpbsud, tilestored), 32 x 32 register tiles of four accumulator tiles, with the AVX-512
// epilogue of gemm_store_avx512.h (the float ops of ref_gemm.h in the same order, no FMA), so
// results are bit-identical to the scalar path. Selected only where the CPU has AMX-TILE and
// AMX-INT8 and Linux granted the tile data state (cpu.cc: arch_prctl(ARCH_REQ_XCOMP_PERM)).
// The same strip on emulated tiles is tested on every machine (native/tests/test_gemm.cc).
#include "gemm_store_avx512.h"  // first: <immintrin.h>
#include "gemm_amx.h"
#include "kernel_decls.h"

namespace qk {
namespace {

constexpr KernelGeom kGeom = geom::gemm_i8_amx;  // kernels_gemm.def
static_assert(kGeom.mr == kAmxGemmGeom.mr && kGeom.nr == kAmxGemmGeom.nr && kGeom.traits == kAmxGemmGeom.traits,
              "the strip of gemm_amx.h is 32 rows x 32 columns");

}  // namespace

void gemm_i8_amx(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t n1) {
  amx_gemm_strip<AmxHw>(g, m0, m1, n0, n1, [](const GemmArgs& gg, size_t i, size_t j, const int32_t* acc) {
    store16(gg, i, j, _mm512_load_si512(acc));
  });
}

}  // namespace qk
