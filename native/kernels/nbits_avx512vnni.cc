// MatMulNBits int8 compute on AVX512-VNNI: vpdpbusd of the unsigned codes (u8) with the quantized
// activations (s8), 4 k per 32-bit lane; per block the exact integer dot product, its zero-point
// correction in float (exact: every term is an integer below 2^24) and acc = fma(d, s_x * s_w, acc)
// in block order: bit-identical to nbits_i8_ref. Tiles as in nbits_avx512.cc (1 x 4 panels for
// one row, 4 x 2 otherwise).
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"

namespace qk {
namespace {

static_assert(geom::nbits_i8_avx512vnni.nr == kNBitsPanel, "one panel of 16 columns");
constexpr size_t kPrefetch = 1024;  // measured best of 0 / 1 / 2 / 4 KiB on Zen 5 (80 MiB GEMV)

QK_X86_INLINE __m512 zp_vec(const NBitsArgs& g, const uint8_t* meta) {
  if (!g.asym) return _mm512_set1_ps(static_cast<float>(1u << (g.bits - 1)));
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(meta + 64))));
}

QK_X86_INLINE __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

QK_X86_INLINE void store_row(const NBitsArgs& g, size_t i, size_t p, __m512 acc) {
  const size_t col = p * kNBitsPanel;
  if (col >= g.n) return;
  __m512 y = _mm512_add_ps(acc, _mm512_loadu_ps(g.bias + col));
  if (g.relu) y = _mm512_max_ps(y, _mm512_setzero_ps());
  float* dst = g.y + i * g.ldy + col;
  if (col + kNBitsPanel <= g.n) _mm512_storeu_ps(dst, y);
  else _mm512_mask_storeu_ps(dst, static_cast<__mmask16>((1u << (g.n - col)) - 1), y);
}

template <int R, int P, int BITS>
__attribute__((noinline)) void tile_i8(const NBitsArgs& g, size_t i0, size_t p0) {
  constexpr int A = (R == 1 || BITS == 4) ? 2 : 1;  // 4 bits: low and high nibbles apart
  const size_t cb = nbits_code_bytes(g.bs, BITS);
  __m512 acc[R][P];
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < P; ++p) acc[r][p] = _mm512_setzero_ps();
  const int8_t* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = g.xq + (i0 + r) * g.ldxq;
  const __m512i m4 = _mm512_set1_epi8(15);
  for (size_t b = 0; b < g.kb; ++b) {
    const uint8_t* blk[P];
    for (int p = 0; p < P; ++p) blk[p] = nbits_block(g, p0 + p, b);
    // Software prefetch kPrefetch bytes ahead in each panel's stream, one line per 64 bytes read
    // (the GEMV streams weights larger than the caches; past the end it is harmless).
    for (int p = 0; p < P; ++p) {
      for (size_t o = 0; o < g.stride; o += 64) _mm_prefetch(reinterpret_cast<const char*>(blk[p] + kPrefetch + o), _MM_HINT_T0);
    }
    __m512i ia[A][R][P];
    for (int a = 0; a < A; ++a)
      for (int r = 0; r < R; ++r)
        for (int p = 0; p < P; ++p) ia[a][r][p] = _mm512_setzero_si512();
    const size_t k0 = b * g.bs;
    if constexpr (BITS == 4) {
      for (size_t q = 0; q < g.bs / 8; ++q) {
        // High nibbles stay in place (16 * code): their sums are 16 times the dot product and are
        // shifted back once per block (exact: |16 * sum| <= 256 * 240 * 128 < 2^31).
        __m512i lo[P], hi[P];
        for (int p = 0; p < P; ++p) {
          const __m512i v = _mm512_loadu_si512(blk[p] + q * 64);
          lo[p] = _mm512_and_si512(v, m4);
          hi[p] = _mm512_andnot_si512(m4, v);
        }
        for (int r = 0; r < R; ++r) {
          const __m512i xl = bcast4(xr[r] + k0 + 8 * q), xh = bcast4(xr[r] + k0 + 8 * q + 4);
          for (int p = 0; p < P; ++p) {
            ia[0][r][p] = _mm512_dpbusd_epi32(ia[0][r][p], lo[p], xl);
            ia[1][r][p] = _mm512_dpbusd_epi32(ia[1][r][p], hi[p], xh);
          }
        }
      }
    } else {
      for (size_t q = 0; q < g.bs / 4; q += 2) {
        __m512i v0[P], v1[P];
        for (int p = 0; p < P; ++p) {
          v0[p] = _mm512_loadu_si512(blk[p] + q * 64);
          v1[p] = _mm512_loadu_si512(blk[p] + q * 64 + 64);
        }
        for (int r = 0; r < R; ++r) {
          const __m512i x0 = bcast4(xr[r] + k0 + 4 * q), x1 = bcast4(xr[r] + k0 + 4 * q + 4);
          for (int p = 0; p < P; ++p) {
            ia[0][r][p] = _mm512_dpbusd_epi32(ia[0][r][p], v0[p], x0);
            ia[A - 1][r][p] = _mm512_dpbusd_epi32(ia[A - 1][r][p], v1[p], x1);
          }
        }
      }
    }
    for (int p = 0; p < P; ++p) {
      const __m512 sc = _mm512_loadu_ps(reinterpret_cast<const float*>(blk[p] + cb));
      const __m512 zp = zp_vec(g, blk[p] + cb);
      for (int r = 0; r < R; ++r) {
        __m512i raw = ia[0][r][p];
        if constexpr (BITS == 4) raw = _mm512_add_epi32(raw, _mm512_srai_epi32(ia[1][r][p], 4));
        else if constexpr (A == 2) raw = _mm512_add_epi32(raw, ia[A - 1][r][p]);
        const size_t e = (i0 + r) * g.kb + b;
        // d = raw - zp * sum(xq): exact in float (|terms| < 2^24).
        const __m512 d = _mm512_fnmadd_ps(zp, _mm512_set1_ps(g.xsum[e]), _mm512_cvtepi32_ps(raw));
        const __m512 t = _mm512_mul_ps(_mm512_set1_ps(g.xs[e]), sc);
        acc[r][p] = _mm512_fmadd_ps(d, t, acc[r][p]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < P; ++p) store_row(g, i0 + r, p0 + p, acc[r][p]);
}

template <int BITS>
void run_i8(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  const size_t pw = m1 - m0 == 1 ? 4 : 2;
  for (size_t p = p0; p < p1; p += pw) {
    const size_t np = p1 - p < pw ? p1 - p : pw;
    for (size_t i = m0; i < m1;) {
      const size_t nr = m1 - i >= 4 ? 4 : 1;
      if (nr == 4) {
        if (np == 2) tile_i8<4, 2, BITS>(g, i, p);
        else tile_i8<4, 1, BITS>(g, i, p);
      } else {
        switch (np) {
          case 4: tile_i8<1, 4, BITS>(g, i, p); break;
          case 3: tile_i8<1, 3, BITS>(g, i, p); break;
          case 2: tile_i8<1, 2, BITS>(g, i, p); break;
          default: tile_i8<1, 1, BITS>(g, i, p); break;
        }
      }
      i += nr;
    }
  }
}

}  // namespace

void nbits_i8_avx512vnni(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  if (g.bits == 8) run_i8<8>(g, m0, m1, p0, p1);
  else run_i8<4>(g, m0, m1, p0, p1);
}

}  // namespace qk
