// MatMulNBits on AVX2: fp32 compute (nbits_f32), int8 compute (nbits_i8) and the activation
// quantizer (nbits_qx). A 16-column panel is two ymm halves (bytes 0..31 and 32..63 of each
// 64-byte code group); tiles of R rows x H halves: 1 x 8 (four panels) for one row, 4 x 4 else.
// int8: vpmaddubsw of the unsigned codes with the signed activations is exact for 4-bit codes
// (2 * 15 * 127 < 2^15); 8-bit codes are split into nibbles (d = d_lo + 16 d_hi, in int32) for the
// same reason. The block's integer dot product then follows nbits_i8_ref's float steps exactly.
#include "avx2_common.h"  // first: <immintrin.h>
#include "kernel_decls.h"

namespace qk {
namespace {

static_assert(geom::nbits_i8_avx2.nr == kNBitsPanel && geom::nbits_f32_avx2.nr == kNBitsPanel, "16-column panels");

QK_X86_INLINE const uint8_t* half_block(const NBitsArgs& g, size_t h, size_t b) {
  return nbits_block(g, h / 2, b) + 32 * (h % 2);  // codes of half h; meta at -32*(h%2) + cb
}

QK_X86_INLINE __m256 zp_half(const NBitsArgs& g, const uint8_t* meta, size_t h) {
  if (!g.asym) return _mm256_set1_ps(static_cast<float>(1u << (g.bits - 1)));
  return _mm256_cvtepi32_ps(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(meta + 64 + 8 * (h % 2)))));
}

QK_X86_INLINE void store_half(const NBitsArgs& g, size_t i, size_t h, __m256 acc) {
  const size_t col = h * 8;
  if (col >= g.n) return;
  __m256 y = _mm256_add_ps(acc, _mm256_loadu_ps(g.bias + col));
  if (g.relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
  float* dst = g.y + i * g.ldy + col;
  if (col + 8 <= g.n) {
    _mm256_storeu_ps(dst, y);
  } else {
    avx2::store_partial_ps(dst, y, g.n - col);
  }
}

QK_X86_INLINE __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

template <int R, int H, int BITS>
__attribute__((noinline)) void tile_f32(const NBitsArgs& g, size_t i0, size_t h0) {
  constexpr int A = R == 1 ? 2 : 1;
  const size_t cb = nbits_code_bytes(g.bs, BITS);
  __m256 acc[R][H];
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < H; ++h) acc[r][h] = _mm256_setzero_ps();
  const float* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = g.x + (i0 + r) * g.ldx;
  const __m256i m4 = _mm256_set1_epi32(15), m8 = _mm256_set1_epi32(255);
  for (size_t b = 0; b < g.kb; ++b) {
    const uint8_t* blk[H];
    __m256 zp[H];
    for (int h = 0; h < H; ++h) {
      blk[h] = half_block(g, h0 + h, b);
      zp[h] = zp_half(g, blk[h] - 32 * ((h0 + h) % 2) + cb, h0 + h);
    }
    __m256 d[A][R][H];
    for (int a = 0; a < A; ++a)
      for (int r = 0; r < R; ++r)
        for (int h = 0; h < H; ++h) d[a][r][h] = _mm256_setzero_ps();
    const size_t k0 = b * g.bs;
    constexpr int S = BITS == 4 ? 8 : 4;
    for (size_t q = 0; q < g.bs / S; ++q) {
      __m256i v[H];
      for (int h = 0; h < H; ++h) v[h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[h] + q * 64));
#pragma GCC unroll 8
      for (int s = 0; s < S; ++s) {
        const size_t k = BITS == 4 ? k0 + 8 * q + (s >> 1) + ((s & 1) ? 4 : 0) : k0 + 4 * q + s;
        __m256 w[H];
        for (int h = 0; h < H; ++h) {
          __m256i c = _mm256_srli_epi32(v[h], (32 / S) * s);
          if (s != S - 1) c = _mm256_and_si256(c, BITS == 4 ? m4 : m8);
          w[h] = _mm256_sub_ps(_mm256_cvtepi32_ps(c), zp[h]);
        }
        for (int r = 0; r < R; ++r) {
          const __m256 xv = _mm256_broadcast_ss(xr[r] + k);
          for (int h = 0; h < H; ++h) d[s & (A - 1)][r][h] = _mm256_fmadd_ps(xv, w[h], d[s & (A - 1)][r][h]);
        }
      }
    }
    for (int h = 0; h < H; ++h) {
      const __m256 sc =
          _mm256_loadu_ps(reinterpret_cast<const float*>(blk[h] - 32 * ((h0 + h) % 2) + cb) + 8 * ((h0 + h) % 2));
      for (int r = 0; r < R; ++r) {
        __m256 dd = d[0][r][h];
        if (A == 2) dd = _mm256_add_ps(dd, d[A - 1][r][h]);
        acc[r][h] = _mm256_fmadd_ps(dd, sc, acc[r][h]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < H; ++h) store_half(g, i0 + r, h0 + h, acc[r][h]);
}

// sum over each 32-bit lane's 4 byte products of u8 codes (< 16) and s8 activations, in int32.
QK_X86_INLINE __m256i dot4(__m256i codes, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, x), _mm256_set1_epi16(1));
}

// The low and high nibbles of each half-panel's 32 code bytes of group q.
template <int H>
QK_X86_INLINE void split_nibbles(const uint8_t* const* blk, size_t q, __m256i m4, __m256i* lo, __m256i* hi) {
  for (int h = 0; h < H; ++h) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[h] + q * 64));
    lo[h] = _mm256_and_si256(v, m4);
    hi[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  }
}

template <int R, int H, int BITS>
__attribute__((noinline)) void tile_i8(const NBitsArgs& g, size_t i0, size_t h0) {
  const size_t cb = nbits_code_bytes(g.bs, BITS);
  __m256 acc[R][H];
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < H; ++h) acc[r][h] = _mm256_setzero_ps();
  const int8_t* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = g.xq + (i0 + r) * g.ldxq;
  const __m256i m4 = _mm256_set1_epi8(15);
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t b = 0; b < g.kb; ++b) {
    const uint8_t* blk[H];
    for (int h = 0; h < H; ++h) blk[h] = half_block(g, h0 + h, b);
    __m256i ia[R][H];
    for (int r = 0; r < R; ++r)
      for (int h = 0; h < H; ++h) ia[r][h] = _mm256_setzero_si256();
    const size_t k0 = b * g.bs;
    if (BITS == 4) {
      for (size_t q = 0; q < g.bs / 8; ++q) {
        __m256i lo[H], hi[H];
        split_nibbles<H>(blk, q, m4, lo, hi);
        for (int r = 0; r < R; ++r) {
          const __m256i xl = bcast4(xr[r] + k0 + 8 * q), xh = bcast4(xr[r] + k0 + 8 * q + 4);
          for (int h = 0; h < H; ++h) {
            // two products per int16 lane from each half: |.| <= 2 * 2 * 15 * 127 < 2^15
            const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[h], xl), _mm256_maddubs_epi16(hi[h], xh));
            ia[r][h] = _mm256_add_epi32(ia[r][h], _mm256_madd_epi16(s16, ones));
          }
        }
      }
    } else {
      for (size_t q = 0; q < g.bs / 4; ++q) {
        __m256i lo[H], hi[H];
        split_nibbles<H>(blk, q, m4, lo, hi);
        for (int r = 0; r < R; ++r) {
          const __m256i x = bcast4(xr[r] + k0 + 4 * q);
          for (int h = 0; h < H; ++h)
            ia[r][h] =
                _mm256_add_epi32(ia[r][h], _mm256_add_epi32(dot4(lo[h], x), _mm256_slli_epi32(dot4(hi[h], x), 4)));
        }
      }
    }
    for (int h = 0; h < H; ++h) {
      const uint8_t* meta = blk[h] - 32 * ((h0 + h) % 2) + cb;
      const __m256 sc = _mm256_loadu_ps(reinterpret_cast<const float*>(meta) + 8 * ((h0 + h) % 2));
      const __m256 zp = zp_half(g, meta, h0 + h);
      for (int r = 0; r < R; ++r) {
        const size_t e = (i0 + r) * g.kb + b;
        const __m256 d = _mm256_fnmadd_ps(zp, _mm256_set1_ps(g.xsum[e]), _mm256_cvtepi32_ps(ia[r][h]));
        const __m256 t = _mm256_mul_ps(_mm256_set1_ps(g.xs[e]), sc);
        acc[r][h] = _mm256_fmadd_ps(d, t, acc[r][h]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < H; ++h) store_half(g, i0 + r, h0 + h, acc[r][h]);
}

template <bool INT8, int R, int H, int BITS>
QK_X86_INLINE void tile(const NBitsArgs& g, size_t i0, size_t h0) {
  if (INT8)
    tile_i8<R, H, BITS>(g, i0, h0);
  else
    tile_f32<R, H, BITS>(g, i0, h0);
}

template <bool INT8, int BITS>
void run(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  const size_t h0 = 2 * p0, h1 = 2 * p1;
  const size_t hw = m1 - m0 == 1 ? 8 : 4;
  for (size_t h = h0; h < h1; h += hw) {
    const size_t nh = h1 - h < hw ? h1 - h : hw;  // even: whole panels
    for (size_t i = m0; i < m1;) {
      const size_t nr = m1 - i >= 4 ? 4 : 1;
      if (nr == 4) {
        if (nh == 4)
          tile<INT8, 4, 4, BITS>(g, i, h);
        else
          tile<INT8, 4, 2, BITS>(g, i, h);
      } else {
        switch (nh) {
          case 8: tile<INT8, 1, 8, BITS>(g, i, h); break;
          case 6: tile<INT8, 1, 6, BITS>(g, i, h); break;
          case 4: tile<INT8, 1, 4, BITS>(g, i, h); break;
          default: tile<INT8, 1, 2, BITS>(g, i, h); break;
        }
      }
      i += nr;
    }
  }
}

}  // namespace

void nbits_f32_avx2(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  if (g.bits == 8)
    run<false, 8>(g, m0, m1, p0, p1);
  else
    run<false, 4>(g, m0, m1, p0, p1);
}

void nbits_i8_avx2(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  if (g.bits == 8)
    run<true, 8>(g, m0, m1, p0, p1);
  else
    run<true, 4>(g, m0, m1, p0, p1);
}

void nbits_qx_avx2(const float* x, size_t K, size_t bs, int8_t* xq, float* xs, float* xsum) {
  const size_t kb = (K + bs - 1) / bs;
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  alignas(32) float buf[256];
  for (size_t b = 0; b < kb; ++b) {
    const size_t k0 = b * bs, valid = K - k0 < bs ? K - k0 : bs;
    std::memcpy(buf, x + k0, valid * sizeof(float));
    for (size_t k = valid; k < bs; ++k) buf[k] = 0.0f;
    __m256 m = _mm256_setzero_ps();
    for (size_t k = 0; k < bs; k += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_load_ps(buf + k), absmask), m);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const float s = _mm_cvtss_f32(m4) / 127.0f;
    const float inv = s != 0.0f ? 1.0f / s : 0.0f;
    const __m256 iv = _mm256_set1_ps(inv);
    __m256i sum = _mm256_setzero_si256();
    for (size_t k = 0; k < bs; k += 8) {
      __m256 t = _mm256_max_ps(_mm256_mul_ps(_mm256_load_ps(buf + k), iv), lo);  // NaN -> -127
      t = _mm256_min_ps(t, hi);
      const __m256i keep =
          _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(valid - (k < valid ? k : valid))), iota);
      const __m256i q = _mm256_and_si256(_mm256_cvtps_epi32(t), keep);
      sum = _mm256_add_epi32(sum, q);
      const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(xq + k0 + k), _mm_packs_epi16(q16, q16));
    }
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    xs[b] = s;
    xsum[b] = static_cast<float>(_mm_cvtsi128_si32(s4));
  }
}

}  // namespace qk
