// The AMX tile operations the AMX gemm_i8 kernel uses (gemm_amx.h), behind one small interface
// with two implementations:
//
//   AmxHw   the instructions (ldtilecfg, tilezero, tileloadd, tdpbsud, tilestored, tilerelease)
//           through their intrinsics; only in files compiled with -mamx-tile -mamx-int8
//           (gemm_amx.cc), run only where the CPU and OS allow AMX (isa.def `amx`).
//   AmxEmu  the same operations in plain C++ on eight 1 KiB tiles held in the object: the
//           semantics of the Intel SDM (palette 1), including the zeroing of the rows and
//           bytes a load or configuration leaves out, and the configuration checks that raise #UD
//           on a real CPU (here: abort with a message). Built everywhere (x86-64 without AMX,
//           arm64): the tests run the kernel on it (native/tests/test_gemm_amx.cc).
//
// Both take the tile numbers as template arguments (the instructions encode them), so the kernel
// is one template over the implementation. The dot product is tdpbsud: A signed bytes (our
// activations, a_s) times B unsigned bytes (our weights, b_u), as kernel_types_gemm.h defines raw:
//   C[m][n] += sum over k < colsb(A) / 4, i < 4 of int32(s8 A[m][4k + i]) * int32(u8 B[k][4n + i])
// in int32 arithmetic mod 2^32 (no saturation). B's row k holds k-group k of 16 columns, 4 bytes
// per column: exactly a 16-column slice of a packed panel (rows 4 * panel width apart).
#pragma once
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
#include <immintrin.h>
#endif

namespace qk {
namespace {

// The 64-byte tile configuration (palette 1): rows and bytes per row of tmm0..tmm7.
struct alignas(64) AmxTileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(AmxTileConfig) == 64, "the ldtilecfg memory operand is 64 bytes");

inline bool same_config(const AmxTileConfig& a, const AmxTileConfig& b) { return std::memcmp(&a, &b, 64) == 0; }

constexpr int kAmxTiles = 8, kAmxRows = 16, kAmxRowBytes = 64;

#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
// The intrinsics paste the tile number into the instruction text (GCC: "%%tmm" #n), so it must
// be a literal: each template argument selects its literal here.
#define QK_AMX_TILE(T, OP)     \
  if constexpr ((T) == 0)      \
    OP(0);                     \
  else if constexpr ((T) == 1) \
    OP(1);                     \
  else if constexpr ((T) == 2) \
    OP(2);                     \
  else if constexpr ((T) == 3) \
    OP(3);                     \
  else if constexpr ((T) == 4) \
    OP(4);                     \
  else if constexpr ((T) == 5) \
    OP(5);                     \
  else if constexpr ((T) == 6) \
    OP(6);                     \
  else                         \
    OP(7)

struct AmxHw {
  void configure(const AmxTileConfig& c) { _tile_loadconfig(&c); }
  void release() { _tile_release(); }
  template <int T>
  void zero() {
    static_assert(T >= 0 && T < kAmxTiles, "tmm0..tmm7");
#define QK_AMX_ZERO(n) _tile_zero(n)
    QK_AMX_TILE(T, QK_AMX_ZERO);
#undef QK_AMX_ZERO
  }
  template <int T>
  void load(const void* p, size_t stride) {
    static_assert(T >= 0 && T < kAmxTiles, "tmm0..tmm7");
#define QK_AMX_LOAD(n) _tile_loadd(n, p, stride)
    QK_AMX_TILE(T, QK_AMX_LOAD);
#undef QK_AMX_LOAD
  }
  template <int T>
  void store(void* p, size_t stride) {
    static_assert(T >= 0 && T < kAmxTiles, "tmm0..tmm7");
#define QK_AMX_STORE(n) _tile_stored(n, p, stride)
    QK_AMX_TILE(T, QK_AMX_STORE);
#undef QK_AMX_STORE
  }
  // The accumulator tile picks the literal triple; the kernel's four (gemm_amx.h) are listed.
  template <int C, int A, int B>
  void dpbsud() {
    static_assert((C == 0 && A == 4 && B == 6) || (C == 1 && A == 4 && B == 7) || (C == 2 && A == 5 && B == 6) ||
                      (C == 3 && A == 5 && B == 7),
                  "add the tile triple to AmxHw::dpbsud");
    if constexpr (C == 0)
      _tile_dpbsud(0, 4, 6);
    else if constexpr (C == 1)
      _tile_dpbsud(1, 4, 7);
    else if constexpr (C == 2)
      _tile_dpbsud(2, 5, 6);
    else
      _tile_dpbsud(3, 5, 7);
  }
};
#undef QK_AMX_TILE
#endif

class AmxEmu {
 public:
  void configure(const AmxTileConfig& c) {
    if (c.palette_id != 1 || c.start_row != 0) die("ldtilecfg: palette 1, start_row 0 expected");
    for (int t = 0; t < kAmxTiles; ++t) {
      if (c.rows[t] > kAmxRows || c.colsb[t] > kAmxRowBytes || (c.rows[t] == 0) != (c.colsb[t] == 0))
        die("ldtilecfg: tile %d has %d rows of %d bytes", t, c.rows[t], c.colsb[t]);
    }
    for (int t = kAmxTiles; t < 16; ++t)
      if (c.rows[t] || c.colsb[t]) die("ldtilecfg: palette 1 has 8 tiles");
    cfg_ = c;
    configured_ = true;
    std::memset(tile_, 0, sizeof tile_);  // ldtilecfg zeroes every tile
  }
  void release() {
    configured_ = false;
    std::memset(tile_, 0, sizeof tile_);
  }
  template <int T>
  void zero() {
    check_tile<T>("tilezero");
    std::memset(tile_[T], 0, sizeof tile_[T]);
  }
  // Rows [0, rows) of colsb bytes, stride bytes apart; the rest of the tile reads as 0.
  template <int T>
  void load(const void* p, size_t stride) {
    check_tile<T>("tileloadd");
    std::memset(tile_[T], 0, sizeof tile_[T]);
    const uint8_t* src = static_cast<const uint8_t*>(p);
    for (int r = 0; r < cfg_.rows[T]; ++r) std::memcpy(tile_[T][r], src + r * stride, cfg_.colsb[T]);
  }
  template <int T>
  void store(void* p, size_t stride) {
    check_tile<T>("tilestored");
    uint8_t* dst = static_cast<uint8_t*>(p);
    for (int r = 0; r < cfg_.rows[T]; ++r) std::memcpy(dst + r * stride, tile_[T][r], cfg_.colsb[T]);
  }
  // tdpbsud C, A, B with the SDM's #UD conditions on the shapes.
  template <int C, int A, int B>
  void dpbsud() {
    static_assert(C != A && C != B && A != B, "tdpbsud: three distinct tiles");
    check_tile<C>("tdpbsud C");
    check_tile<A>("tdpbsud A");
    check_tile<B>("tdpbsud B");
    const int M = cfg_.rows[C], Nb = cfg_.colsb[C], Kb = cfg_.colsb[A];
    if (cfg_.rows[A] != M || cfg_.colsb[B] != Nb || cfg_.rows[B] * 4 != Kb || Nb % 4 != 0 || Kb % 4 != 0)
      die("tdpbsud: shapes C %dx%d A %dx%d B %dx%d do not fit", M, Nb, cfg_.rows[A], Kb, cfg_.rows[B], cfg_.colsb[B]);
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < Nb / 4; ++n) {
        uint32_t acc;
        std::memcpy(&acc, tile_[C][m] + 4 * n, 4);
        for (int k = 0; k < Kb / 4; ++k)
          for (int i = 0; i < 4; ++i) {
            const int32_t a = static_cast<int8_t>(tile_[A][m][4 * k + i]);
            const int32_t b = tile_[B][k][4 * n + i];
            acc += static_cast<uint32_t>(a * b);  // |a * b| < 2^15: exact; the sum wraps
          }
        std::memcpy(tile_[C][m] + 4 * n, &acc, 4);
      }
  }

 private:
  template <int T>
  void check_tile(const char* op) const {
    static_assert(T >= 0 && T < kAmxTiles, "tmm0..tmm7");
    if (!configured_ || cfg_.rows[T] == 0) die("%s: tmm%d is not configured", op, T);
  }
  __attribute__((format(printf, 1, 2))) [[noreturn]] static void die(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "AMX emulation: ");
    std::vfprintf(stderr, fmt, ap);
    std::fprintf(stderr, " (a real CPU raises #UD)\n");
    va_end(ap);
    std::abort();
  }

  AmxTileConfig cfg_{};
  bool configured_ = false;
  alignas(64) uint8_t tile_[kAmxTiles][kAmxRows][kAmxRowBytes] = {};
};

}  // namespace
}  // namespace qk
