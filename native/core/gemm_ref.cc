// The scalar int8 GEMM path: plain loops over the packed B layout (kernel_types_gemm.h), int32
// arithmetic mod 2^32, then the scalar epilogue of ref_gemm.h. The truth for every other path.
#include <cstring>

#include "ref.h"

namespace qk {

void gemm_i8_ref(const GemmArgs& g, size_t m0, size_t m1, size_t n0, size_t n1) {
  if (n1 > g.n) n1 = g.n;
  const size_t kg = g.kp / 4;
  for (size_t j = n0; j < n1; ++j) {
    const size_t p = j / kGemmPanel, c = j % kGemmPanel;
    const size_t w = gemm_panel_width(p, g.np);
    const uint8_t* bp = g.b + gemm_panel_offset(p, g.kp) + c * 4;
    for (size_t i = m0; i < m1; ++i) {
      const int8_t* a = g.a + i * g.lda;
      uint32_t raw = 0;
      for (size_t q = 0; q < kg; ++q) {
        const uint8_t* b = bp + q * w * 4;
        for (size_t t = 0; t < 4; ++t)
          raw += static_cast<uint32_t>(static_cast<int32_t>(a[q * 4 + t]) * static_cast<int32_t>(b[t]));
      }
      int32_t r;
      std::memcpy(&r, &raw, 4);
      gemm_store_one(g, i, j, gemm_correct(r, g.row_sum[i], g.row_za[i], g.col_zb[j], g.col_c[j]));
    }
  }
}

}  // namespace qk
