// MatMulNBits on AVX-512: fp32 compute (nbits_f32) and the activation quantizer (nbits_qx).
// Tiles of R rows x P panels of 16 columns (zmm per panel): 1 x 4 for one row (GEMV: the packed
// weights stream once, four panels at a time, two accumulator chains per panel), 8 x 1 and 4 x 2
// for more (the int8 file: 4 x 2).
// Codes are widened in registers: lane c of a 64-byte group holds column c's 8 nibbles (or 4
// bytes); (v >> 4s) & 15 gives k = 8g + s/2 (+4 for odd s), converted to float, minus the zero point.
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "nbits_avx512_common.h"

namespace qk {
namespace {

static_assert(geom::nbits_f32_avx512.nr == kNBitsPanel, "one panel of 16 columns");

template <int R, int P, int BITS, bool ASYM>
__attribute__((noinline)) void tile_f32(const NBitsArgs& g, size_t i0, size_t p0) {
  constexpr int A = R == 1 ? 2 : 1;  // accumulator chains per (row, panel)
  const size_t cb = nbits_code_bytes(g.bs, BITS);
  __m512 acc[R][P];
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < P; ++p) acc[r][p] = _mm512_setzero_ps();
  const float* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = g.x + (i0 + r) * g.ldx;
  const __m512i m8 = _mm512_set1_epi32(255);
  const __m512 lut = _mm512_sub_ps(_mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                   _mm512_set1_ps(ASYM ? 0.0f : 8.0f));
  for (size_t b = 0; b < g.kb; ++b) {
    const uint8_t* blk[P];
    __m512 zp[P];
    for (int p = 0; p < P; ++p) {
      blk[p] = nbits_block(g, p0 + p, b);
      zp[p] = zp_vec(g, blk[p] + cb);
    }
    __m512 d[A][R][P];
    for (int a = 0; a < A; ++a)
      for (int r = 0; r < R; ++r)
        for (int p = 0; p < P; ++p) d[a][r][p] = _mm512_setzero_ps();
    const size_t k0 = b * g.bs;
    if constexpr (BITS == 4) {
      for (size_t q = 0; q < g.bs / 8; ++q) {
        __m512i v[P];
        for (int p = 0; p < P; ++p) v[p] = _mm512_loadu_si512(blk[p] + q * 64);
#pragma GCC unroll 8
        for (int s = 0; s < 8; ++s) {
          const size_t k = k0 + 8 * q + (s >> 1) + ((s & 1) ? 4 : 0);
          // vpermps reads the low 4 bits of each lane: the nibble at 4s, looked up as float(q)
          // (asymmetric, then minus the zero point) or q - 2^(bits-1) (symmetric).
          __m512 w[P];
          for (int p = 0; p < P; ++p) {
            const __m512i c = s == 0 ? v[p] : _mm512_srli_epi32(v[p], 4 * s);
            w[p] = _mm512_permutexvar_ps(c, lut);
            if constexpr (ASYM) w[p] = _mm512_sub_ps(w[p], zp[p]);
          }
          for (int r = 0; r < R; ++r) {
            const __m512 xv = _mm512_set1_ps(xr[r][k]);
            for (int p = 0; p < P; ++p) d[s & (A - 1)][r][p] = _mm512_fmadd_ps(xv, w[p], d[s & (A - 1)][r][p]);
          }
        }
      }
    } else {
      for (size_t q = 0; q < g.bs / 4; ++q) {
        __m512i v[P];
        for (int p = 0; p < P; ++p) v[p] = _mm512_loadu_si512(blk[p] + q * 64);
#pragma GCC unroll 4
        for (int s = 0; s < 4; ++s) {
          const size_t k = k0 + 4 * q + s;
          __m512 w[P];
          for (int p = 0; p < P; ++p) {
            __m512i c = _mm512_srli_epi32(v[p], 8 * s);
            if (s != 3) c = _mm512_and_si512(c, m8);
            w[p] = _mm512_sub_ps(_mm512_cvtepi32_ps(c), zp[p]);
          }
          for (int r = 0; r < R; ++r) {
            const __m512 xv = _mm512_set1_ps(xr[r][k]);
            for (int p = 0; p < P; ++p) d[s & (A - 1)][r][p] = _mm512_fmadd_ps(xv, w[p], d[s & (A - 1)][r][p]);
          }
        }
      }
    }
    for (int p = 0; p < P; ++p) {
      const __m512 sc = _mm512_loadu_ps(reinterpret_cast<const float*>(blk[p] + cb));
      for (int r = 0; r < R; ++r) {
        __m512 dd = d[0][r][p];
        if (A == 2) dd = _mm512_add_ps(dd, d[A - 1][r][p]);
        acc[r][p] = _mm512_fmadd_ps(dd, sc, acc[r][p]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < P; ++p) store_row(g, i0 + r, p0 + p, acc[r][p]);
}

template <int BITS, bool ASYM>
void run_f32(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  const size_t pw = m1 - m0 == 1 ? 4 : 2;
  for (size_t p = p0; p < p1; p += pw) {
    const size_t np = p1 - p < pw ? p1 - p : pw;
    for (size_t i = m0; i < m1;) {
      if (m1 - i >= 8) {  // one panel x 8 rows: each decoded weight vector feeds 8 FMAs
        for (size_t q = p; q < p + np; ++q) tile_f32<8, 1, BITS, ASYM>(g, i, q);
        i += 8;
        continue;
      }
      const size_t nr = m1 - i >= 4 ? 4 : 1;
      if (nr == 4) {
        if (np == 2)
          tile_f32<4, 2, BITS, ASYM>(g, i, p);
        else
          tile_f32<4, 1, BITS, ASYM>(g, i, p);
      } else {
        switch (np) {
          case 4: tile_f32<1, 4, BITS, ASYM>(g, i, p); break;
          case 3: tile_f32<1, 3, BITS, ASYM>(g, i, p); break;
          case 2: tile_f32<1, 2, BITS, ASYM>(g, i, p); break;
          default: tile_f32<1, 1, BITS, ASYM>(g, i, p); break;
        }
      }
      i += nr;
    }
  }
}

}  // namespace

void nbits_f32_avx512(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  if (g.bits == 8)
    run_f32<8, true>(g, m0, m1, p0, p1);  // 8 bits: zero point subtracted either way
  else if (g.asym)
    run_f32<4, true>(g, m0, m1, p0, p1);
  else
    run_f32<4, false>(g, m0, m1, p0, p1);
}

void nbits_qx_avx512(const float* x, size_t K, size_t bs, int8_t* xq, float* xs, float* xsum) {
  const size_t kb = (K + bs - 1) / bs;
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
  for (size_t b = 0; b < kb; ++b) {
    const size_t k0 = b * bs;
    __m512 m = _mm512_setzero_ps();
    for (size_t k = k0; k < k0 + bs && k < K; k += 16) {
      const __mmask16 mk = K - k >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (K - k)) - 1);
      const __m512 v = _mm512_maskz_loadu_ps(mk, x + k);
      const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), absmask));
      m = _mm512_max_ps(a, m);  // a > m ? a : m: NaN skipped
    }
    const float mx = _mm512_reduce_max_ps(m);
    const float s = mx / 127.0f;
    const float inv = s != 0.0f ? 1.0f / s : 0.0f;
    const __m512 iv = _mm512_set1_ps(inv);
    __m512i sum = _mm512_setzero_si512();
    for (size_t k = k0; k < k0 + bs; k += 16) {
      const __mmask16 mk = k >= K        ? 0
                           : K - k >= 16 ? static_cast<__mmask16>(0xffff)
                                         : static_cast<__mmask16>((1u << (K - k)) - 1);
      const __m512 v = _mm512_maskz_loadu_ps(mk, x + (k < K ? k : 0));
      __m512 t = _mm512_max_ps(_mm512_mul_ps(v, iv), lo);  // NaN -> -127
      t = _mm512_min_ps(t, hi);
      const __m512i q = _mm512_maskz_mov_epi32(mk, _mm512_cvtps_epi32(t));
      sum = _mm512_add_epi32(sum, q);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + k), _mm512_cvtepi32_epi8(q));
    }
    xs[b] = s;
    xsum[b] = static_cast<float>(_mm512_reduce_add_epi32(sum));
  }
}

}  // namespace qk
