// MatMulNBits int8 compute on AVX512-VNNI: vpdpbusd of the unsigned codes (u8) with the quantized
// activations (s8), 4 k per 32-bit lane; per block the exact integer dot product, its zero-point
// correction in float (exact: every term is an integer below 2^24) and acc = fma(d, s_x * s_w, acc)
// in block order: bit-identical to nbits_i8_ref. Tiles as in nbits_avx512.cc (1 x 4 panels for
// one row, 4 x 2 otherwise).
#include "x86_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"
#include "nbits_avx512_common.h"

namespace qk {
namespace {

static_assert(geom::nbits_i8_avx512vnni.nr == kNBitsPanel, "one panel of 16 columns");
constexpr size_t kPrefetch = 1024;  // measured best of 0 / 1 / 2 / 4 KiB on Zen 5 (80 MiB GEMV)

// acc += u8 a x s8 b (vpdpbusd). Inline asm: with the intrinsic, GCC copies every accumulator into
// a scratch register and back around each instruction (two extra moves per dot product).
QK_X86_INLINE __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

QK_X86_INLINE __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
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
      for (size_t o = 0; o < g.stride; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(blk[p] + kPrefetch + o), _MM_HINT_T0);
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
            ia[0][r][p] = dpbusd(ia[0][r][p], lo[p], xl);
            ia[1][r][p] = dpbusd(ia[1][r][p], hi[p], xh);
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
            ia[0][r][p] = dpbusd(ia[0][r][p], v0[p], x0);
            ia[A - 1][r][p] = dpbusd(ia[A - 1][r][p], v1[p], x1);
          }
        }
      }
    }
    for (int p = 0; p < P; ++p) {
      const __m512 sc = _mm512_loadu_ps(reinterpret_cast<const float*>(blk[p] + cb));
      const __m512 zp = zp_vec(g, blk[p] + cb);
      for (int r = 0; r < R; ++r) {
        __m512i raw = ia[0][r][p];
        if constexpr (BITS == 4)
          raw = _mm512_add_epi32(raw, _mm512_srai_epi32(ia[1][r][p], 4));
        else if constexpr (A == 2)
          raw = _mm512_add_epi32(raw, ia[A - 1][r][p]);
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

// One row, four panels, 4-bit codes: the GEMV's hot loop with named accumulators (the array form
// above made GCC copy and spill them every group). Same arithmetic and order as tile_i8<1, 4, 4>.
__attribute__((noinline)) void gemv4_i8(const NBitsArgs& g, size_t i0, size_t p0) {
  const size_t cb = nbits_code_bytes(g.bs, 4);
  const int8_t* xr = g.xq + i0 * g.ldxq;
  const __m512i m4 = _mm512_set1_epi8(15);
  __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
  const uint8_t* b0 = nbits_block(g, p0, 0);
  const uint8_t* b1 = nbits_block(g, p0 + 1, 0);
  const uint8_t* b2 = nbits_block(g, p0 + 2, 0);
  const uint8_t* b3 = nbits_block(g, p0 + 3, 0);
  const size_t groups = g.bs / 8;
  for (size_t b = 0; b < g.kb; ++b) {
    for (size_t o = 0; o < g.stride; o += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(b0 + kPrefetch + o), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b1 + kPrefetch + o), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b2 + kPrefetch + o), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b3 + kPrefetch + o), _MM_HINT_T0);
    }
    __m512i l0 = _mm512_setzero_si512(), l1 = l0, l2 = l0, l3 = l0, h0 = l0, h1 = l0, h2 = l0, h3 = l0;
    const int8_t* xb = xr + b * g.bs;
    for (size_t q = 0; q < groups; ++q) {
      const __m512i xl = bcast4(xb + 8 * q), xh = bcast4(xb + 8 * q + 4);
      const __m512i v0 = _mm512_loadu_si512(b0 + q * 64), v1 = _mm512_loadu_si512(b1 + q * 64);
      const __m512i v2 = _mm512_loadu_si512(b2 + q * 64), v3 = _mm512_loadu_si512(b3 + q * 64);
      l0 = dpbusd(l0, _mm512_and_si512(v0, m4), xl);
      h0 = dpbusd(h0, _mm512_andnot_si512(m4, v0), xh);
      l1 = dpbusd(l1, _mm512_and_si512(v1, m4), xl);
      h1 = dpbusd(h1, _mm512_andnot_si512(m4, v1), xh);
      l2 = dpbusd(l2, _mm512_and_si512(v2, m4), xl);
      h2 = dpbusd(h2, _mm512_andnot_si512(m4, v2), xh);
      l3 = dpbusd(l3, _mm512_and_si512(v3, m4), xl);
      h3 = dpbusd(h3, _mm512_andnot_si512(m4, v3), xh);
    }
    const size_t e = i0 * g.kb + b;
    const __m512 sx = _mm512_set1_ps(g.xs[e]), sm = _mm512_set1_ps(g.xsum[e]);
    auto fold = [&](__m512 acc, __m512i lo, __m512i hi, const uint8_t* blk) {
      const __m512i raw = _mm512_add_epi32(lo, _mm512_srai_epi32(hi, 4));
      const __m512 d = _mm512_fnmadd_ps(zp_vec(g, blk + cb), sm, _mm512_cvtepi32_ps(raw));
      const __m512 t = _mm512_mul_ps(sx, _mm512_loadu_ps(reinterpret_cast<const float*>(blk + cb)));
      return _mm512_fmadd_ps(d, t, acc);
    };
    c0 = fold(c0, l0, h0, b0);
    c1 = fold(c1, l1, h1, b1);
    c2 = fold(c2, l2, h2, b2);
    c3 = fold(c3, l3, h3, b3);
    b0 += g.stride;
    b1 += g.stride;
    b2 += g.stride;
    b3 += g.stride;
  }
  store_row(g, i0, p0, c0);
  store_row(g, i0, p0 + 1, c1);
  store_row(g, i0, p0 + 2, c2);
  store_row(g, i0, p0 + 3, c3);
}

template <int BITS>
void run_i8(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  const size_t pw = m1 - m0 == 1 ? 4 : 2;
  for (size_t p = p0; p < p1; p += pw) {
    const size_t np = p1 - p < pw ? p1 - p : pw;
    for (size_t i = m0; i < m1;) {
      const size_t nr = m1 - i >= 4 ? 4 : 1;
      if (nr == 4) {
        if (np == 2)
          tile_i8<4, 2, BITS>(g, i, p);
        else
          tile_i8<4, 1, BITS>(g, i, p);
      } else {
        switch (np) {
          case 4:
            if constexpr (BITS == 4)
              gemv4_i8(g, i, p);
            else
              tile_i8<1, 4, BITS>(g, i, p);
            break;
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
  if (g.bits == 8)
    run_i8<8>(g, m0, m1, p0, p1);
  else
    run_i8<4>(g, m0, m1, p0, p1);
}

}  // namespace qk
