// MatMulNBits NEON tiles shared by nbits_neon.cc and nbits_neon_dotprod.cc (templates in an
// unnamed namespace: each file compiles its own copy with its own flags). A 16-column panel is four
// q registers of 4 columns (16 bytes of each 64-byte code group); tiles of R rows x P panels.
// int8: codes made signed (q - c, c = 8 or 128), per-column dot products in int32, then
// d = raw + (c - zp) * sum(xq) in float (exact: integers below 2^24) and nbits_i8_ref's steps.
#pragma once
#include <arm_neon.h>

#include <cstring>

#include "kernel_decls.h"

namespace qk {
namespace {

inline float32x4_t zp_quad(const NBitsArgs& g, const uint8_t* meta, int u) {
  if (!g.asym) return vdupq_n_f32(static_cast<float>(1u << (g.bits - 1)));
  const uint8_t* z = meta + 64 + 4 * u;
  const uint32_t v[4] = {z[0], z[1], z[2], z[3]};
  return vcvtq_f32_u32(vld1q_u32(v));
}

inline void store_quad(const NBitsArgs& g, size_t i, size_t col, float32x4_t acc) {
  if (col >= g.n) return;
  float32x4_t y = vaddq_f32(acc, vld1q_f32(g.bias + col));
  if (g.relu) y = vmaxnmq_f32(y, vdupq_n_f32(0.0f));  // NaN -> 0
  float* dst = g.y + i * g.ldy + col;
  if (col + 4 <= g.n) {
    vst1q_f32(dst, y);
  } else {
    float t[4];
    vst1q_f32(t, y);
    for (size_t c = 0; c < g.n - col; ++c) dst[c] = t[c];
  }
}

template <int R, int P, int BITS>
__attribute__((noinline)) void tile_f32(const NBitsArgs& g, size_t i0, size_t p0) {
  const size_t cb = nbits_code_bytes(g.bs, BITS);
  float32x4_t acc[R][P][4];
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < P; ++p)
      for (int u = 0; u < 4; ++u) acc[r][p][u] = vdupq_n_f32(0.0f);
  const uint32x4_t m4 = vdupq_n_u32(15), m8 = vdupq_n_u32(255);
  for (size_t b = 0; b < g.kb; ++b) {
    const uint8_t* blk[P];
    float32x4_t zp[P][4], d[R][P][4];
    for (int p = 0; p < P; ++p) {
      blk[p] = nbits_block(g, p0 + p, b);
      for (int u = 0; u < 4; ++u) zp[p][u] = zp_quad(g, blk[p] + cb, u);
      for (int r = 0; r < R; ++r)
        for (int u = 0; u < 4; ++u) d[r][p][u] = vdupq_n_f32(0.0f);
    }
    const size_t k0 = b * g.bs;
    constexpr int S = BITS == 4 ? 8 : 4;
    for (size_t q = 0; q < g.bs / S; ++q)
      for (int p = 0; p < P; ++p)
        for (int u = 0; u < 4; ++u) {
          const uint32x4_t v = vld1q_u32(reinterpret_cast<const uint32_t*>(blk[p] + q * 64 + 16 * u));
#pragma GCC unroll 8
          for (int s = 0; s < S; ++s) {
            const size_t k = BITS == 4 ? k0 + 8 * q + (s >> 1) + ((s & 1) ? 4 : 0) : k0 + 4 * q + s;
            const uint32x4_t c = vandq_u32(vshlq_u32(v, vdupq_n_s32(-(32 / S) * s)), BITS == 4 ? m4 : m8);
            const float32x4_t w = vsubq_f32(vcvtq_f32_u32(c), zp[p][u]);
            for (int r = 0; r < R; ++r) d[r][p][u] = vfmaq_n_f32(d[r][p][u], w, g.x[(i0 + r) * g.ldx + k]);
          }
        }
    for (int p = 0; p < P; ++p)
      for (int u = 0; u < 4; ++u) {
        const float32x4_t sc = vld1q_f32(reinterpret_cast<const float*>(blk[p] + cb) + 4 * u);
        for (int r = 0; r < R; ++r) acc[r][p][u] = vfmaq_f32(acc[r][p][u], d[r][p][u], sc);
      }
  }
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < P; ++p)
      for (int u = 0; u < 4; ++u) store_quad(g, i0 + r, (p0 + p) * kNBitsPanel + 4 * u, acc[r][p][u]);
}

inline int8x16_t bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// DOT(acc, codes_s8 (4 columns x 4 k), x (4 k repeated)) -> acc + per-column sums.
template <int R, int P, int BITS, class Dot>
__attribute__((always_inline)) inline void tile_i8_body(const NBitsArgs& g, size_t i0, size_t p0, Dot dot) {
  const size_t cb = nbits_code_bytes(g.bs, BITS);
  constexpr int C = BITS == 4 ? 8 : 128;
  float32x4_t acc[R][P][4];
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < P; ++p)
      for (int u = 0; u < 4; ++u) acc[r][p][u] = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < g.kb; ++b) {
    const uint8_t* blk[P];
    int32x4_t ia[R][P][4];
    for (int p = 0; p < P; ++p) {
      blk[p] = nbits_block(g, p0 + p, b);
      for (int r = 0; r < R; ++r)
        for (int u = 0; u < 4; ++u) ia[r][p][u] = vdupq_n_s32(0);
    }
    const size_t k0 = b * g.bs;
    if (BITS == 4) {
      for (size_t q = 0; q < g.bs / 8; ++q) {
        int8x16_t xl[R], xh[R];
        for (int r = 0; r < R; ++r) {
          xl[r] = bcast4(g.xq + (i0 + r) * g.ldxq + k0 + 8 * q);
          xh[r] = bcast4(g.xq + (i0 + r) * g.ldxq + k0 + 8 * q + 4);
        }
        for (int p = 0; p < P; ++p)
          for (int u = 0; u < 4; ++u) {
            const uint8x16_t v = vld1q_u8(blk[p] + q * 64 + 16 * u);
            const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))), vdupq_n_s8(8));
            const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));
            for (int r = 0; r < R; ++r) ia[r][p][u] = dot(dot(ia[r][p][u], lo, xl[r]), hi, xh[r]);
          }
      }
    } else {
      for (size_t q = 0; q < g.bs / 4; ++q) {
        int8x16_t x[R];
        for (int r = 0; r < R; ++r) x[r] = bcast4(g.xq + (i0 + r) * g.ldxq + k0 + 4 * q);
        for (int p = 0; p < P; ++p)
          for (int u = 0; u < 4; ++u) {
            const int8x16_t c = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(blk[p] + q * 64 + 16 * u), vdupq_n_u8(0x80)));
            for (int r = 0; r < R; ++r) ia[r][p][u] = dot(ia[r][p][u], c, x[r]);
          }
      }
    }
    for (int p = 0; p < P; ++p)
      for (int u = 0; u < 4; ++u) {
        const float32x4_t sc = vld1q_f32(reinterpret_cast<const float*>(blk[p] + cb) + 4 * u);
        const float32x4_t czp = vsubq_f32(vdupq_n_f32(static_cast<float>(C)), zp_quad(g, blk[p] + cb, u));
        for (int r = 0; r < R; ++r) {
          const size_t e = (i0 + r) * g.kb + b;
          const float32x4_t d = vfmaq_n_f32(vcvtq_f32_s32(ia[r][p][u]), czp, g.xsum[e]);
          const float32x4_t t = vmulq_n_f32(sc, g.xs[e]);
          acc[r][p][u] = vfmaq_f32(acc[r][p][u], d, t);
        }
      }
  }
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < P; ++p)
      for (int u = 0; u < 4; ++u) store_quad(g, i0 + r, (p0 + p) * kNBitsPanel + 4 * u, acc[r][p][u]);
}

// Rows in tiles of 4 (then 1) x panels in pairs (then 1).
template <class Tile4, class Tile1>
inline void nbits_neon_loop(size_t m0, size_t m1, size_t p0, size_t p1, Tile4 t4, Tile1 t1) {
  for (size_t p = p0; p < p1; p += 2) {
    const int np = p1 - p >= 2 ? 2 : 1;
    for (size_t i = m0; i < m1;) {
      if (m1 - i >= 4) {
        t4(i, p, np);
        i += 4;
      } else {
        t1(i, p, np);
        i += 1;
      }
    }
  }
}

// The int8 tiles and their row / panel loop over them, for one dot product (dot_mull, dot_sdot).
using NBitsDot = int32x4_t (*)(int32x4_t, int8x16_t, int8x16_t);

template <int R, int P, int BITS, NBitsDot Dot>
__attribute__((noinline)) void tile_i8(const NBitsArgs& g, size_t i0, size_t p0) {
  tile_i8_body<R, P, BITS>(g, i0, p0, Dot);
}

template <int BITS, NBitsDot Dot>
void run_i8(const NBitsArgs& g, size_t m0, size_t m1, size_t p0, size_t p1) {
  nbits_neon_loop(
      m0, m1, p0, p1,
      [&](size_t i, size_t p, int np) {
        np == 2 ? tile_i8<4, 2, BITS, Dot>(g, i, p) : tile_i8<4, 1, BITS, Dot>(g, i, p);
      },
      [&](size_t i, size_t p, int np) {
        np == 2 ? tile_i8<1, 2, BITS, Dot>(g, i, p) : tile_i8<1, 1, BITS, Dot>(g, i, p);
      });
}

}  // namespace
}  // namespace qk
