// Peak arithmetic throughput of this CPU for the instruction mixes quantkit's GEMM paths use,
// measured with small in-register loops (no memory traffic). Built and run by bench/gemm.mjs:
//
//   c++ -O2 -std=c++17 -pthread bench/peak.cc -o peak      (no -m flags: every loop carries its
//   ./peak [threads...] [--ms=N] [--reps=N]                  own target attribute, and runs only
//                                                            when CPUID says the CPU has it)
//
// Prints one JSON object per line: {"kernel","threads","gops","opsPerInstr","supported",...}.
// Ops are counted as 2 per multiply-accumulate (GOPS = 2*M*N*K/time for a GEMM):
//   vpdpbusd zmm          64 u8*s8 products into 16 int32 lanes       128 ops / instruction
//   vpdpbusd ymm          32 products                                  64 ops
//   vpmaddubsw+vpmaddwd+vpaddd (ymm / zmm)  32 / 64 products          64 / 128 ops per triple
//   vfmadd231ps zmm / ymm 16 / 8 fp32 FMAs                            32 / 16 flops
//   tdpbusd               16x16 int32 tile += 16x64 u8 x 64x16 s8     32768 ops
// Each loop keeps 6-12 independent accumulators (AMX: 4 accumulator tiles) so that the latency of
// one instruction is hidden and only throughput limits the rate. An empty asm statement that
// "modifies" the accumulators each iteration keeps the compiler from folding the loop.
// With N threads, every thread (pinned to CPU i when possible) runs the same loop after a common
// start signal. "gops" sums each thread's ops / its own CPU time (CLOCK_THREAD_CPUTIME_ID), so
// time slices taken by other processes do not count; "gopsWall" is total ops / wall time of the
// slowest thread. Both are the best of many short runs: the machine may be shared and noisy, and a
// peak is an upper bound.
#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>
#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <cpuid.h>

#if !defined(__x86_64__)
#error "bench/peak.cc measures x86-64 instruction throughput"
#endif

static volatile int32_t g_sink_i;
static volatile float g_sink_f;
static volatile int8_t g_seed8 = 3;  // loop inputs read from volatile memory: nothing is a constant

using Clock = std::chrono::steady_clock;

// ---- CPU features ------------------------------------------------------------------------

struct Features {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512vl = false;
  bool avx512vnni = false, avxvnni = false, amx_tile = false, amx_int8 = false;
  bool os_avx = false, os_avx512 = false, os_amx = false;
};

static uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

static Features detect() {
  Features f;
  unsigned a, b, c, d;
  if (!__get_cpuid_count(1, 0, &a, &b, &c, &d)) return f;
  bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  f.os_avx = (xcr0 & 0x6) == 0x6;
  f.os_avx512 = (xcr0 & 0xe6) == 0xe6;
  f.os_amx = (xcr0 & 0x60000) == 0x60000;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = b & (1u << 5);
    f.avx512f = b & (1u << 16);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = c & (1u << 11);
    f.amx_tile = d & (1u << 24);
    f.amx_int8 = d & (1u << 25);
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avxvnni = a & (1u << 4);
  if (!f.os_avx) f.avx2 = f.fma = f.avxvnni = false;
  if (!f.os_avx512) f.avx512f = f.avx512bw = f.avx512vl = f.avx512vnni = false;
  if (!f.os_amx) f.amx_tile = f.amx_int8 = false;
  return f;
}

// ---- loops: each returns the number of ops done (2 per multiply-accumulate) ------------------

#define ACC12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define KEEP12(a) \
  __asm__ volatile("" : "+v"(a##0), "+v"(a##1), "+v"(a##2), "+v"(a##3), "+v"(a##4), "+v"(a##5)); \
  __asm__ volatile("" : "+v"(a##6), "+v"(a##7), "+v"(a##8), "+v"(a##9), "+v"(a##10), "+v"(a##11))

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static uint64_t loop_vnni_zmm(uint64_t iters) {
  const __m512i x = _mm512_set1_epi8(g_seed8), y = _mm512_set1_epi8(int8_t(g_seed8 + 1));
#define D(i) __m512i acc##i = _mm512_set1_epi32(i);
  ACC12(D)
#undef D
  for (uint64_t it = 0; it < iters; ++it) {
#define S(i) acc##i = _mm512_dpbusd_epi32(acc##i, x, y);
    ACC12(S)
#undef S
    KEEP12(acc);
  }
  __m512i s = acc0;
#define R(i) s = _mm512_add_epi32(s, acc##i);
  ACC12(R)
#undef R
  alignas(64) int32_t t[16];
  _mm512_store_si512(t, s);
  g_sink_i = t[0] + t[15];
  return iters * 12 * 128;
}

// vpdpbusd on ymm registers, EVEX encoding (AVX512-VNNI + AVX512VL).
__attribute__((target("avx512f,avx512vl,avx512vnni"))) static uint64_t loop_vnni_ymm_evex(uint64_t iters) {
  const __m256i x = _mm256_set1_epi8(g_seed8), y = _mm256_set1_epi8(int8_t(g_seed8 + 1));
#define D(i) __m256i acc##i = _mm256_set1_epi32(i);
  ACC12(D)
#undef D
  for (uint64_t it = 0; it < iters; ++it) {
#define S(i) acc##i = _mm256_dpbusd_epi32(acc##i, x, y);
    ACC12(S)
#undef S
    KEEP12(acc);
  }
  __m256i s = acc0;
#define R(i) s = _mm256_add_epi32(s, acc##i);
  ACC12(R)
#undef R
  alignas(32) int32_t t[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), s);
  g_sink_i = t[0] + t[7];
  return iters * 12 * 64;
}

// vpdpbusd on ymm registers, VEX encoding (AVX-VNNI). Needs a compiler that knows avxvnni (GCC 11+).
#if defined(__GNUC__) && (__GNUC__ >= 11 || defined(__clang__))
#define HAVE_AVXVNNI_INTRIN 1
__attribute__((target("avx2,avxvnni"))) static uint64_t loop_vnni_ymm_vex(uint64_t iters) {
  const __m256i x = _mm256_set1_epi8(g_seed8), y = _mm256_set1_epi8(int8_t(g_seed8 + 1));
#define D(i) __m256i acc##i = _mm256_set1_epi32(i);
  ACC12(D)
#undef D
  for (uint64_t it = 0; it < iters; ++it) {
#define S(i) acc##i = _mm256_dpbusd_avx_epi32(acc##i, x, y);
    ACC12(S)
#undef S
    KEEP12(acc);
  }
  __m256i s = acc0;
#define R(i) s = _mm256_add_epi32(s, acc##i);
  ACC12(R)
#undef R
  alignas(32) int32_t t[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), s);
  g_sink_i = t[0] + t[7];
  return iters * 12 * 64;
}
#endif

// The pre-VNNI int8 dot product: vpmaddubsw (u8*s8 pairs -> s16), vpmaddwd with ones (s16 pairs
// -> s32), vpaddd into the accumulator: 3 instructions per 32 (ymm) / 64 (zmm) products. As in a
// GEMM micro-kernel, each product pairs one of a few A broadcasts with one of a few B vectors, so
// every accumulator gets a distinct product (identical products would be computed once); an empty
// asm "modifies" the inputs every iteration so nothing is hoisted out of the loop.
// ymm (16 registers): 2 A x 3 B = 6 accumulators.
__attribute__((target("avx2"))) static uint64_t loop_maddubs_ymm(uint64_t iters) {
  __m256i a0 = _mm256_set1_epi8(g_seed8), a1 = _mm256_set1_epi8(int8_t(g_seed8 + 1));
  __m256i b0 = _mm256_set1_epi8(int8_t(g_seed8 + 2)), b1 = _mm256_set1_epi8(int8_t(g_seed8 + 3)),
          b2 = _mm256_set1_epi8(int8_t(g_seed8 + 4));
  const __m256i ones = _mm256_set1_epi16(int16_t(g_seed8 - 2));
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  for (uint64_t it = 0; it < iters; ++it) {
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(b0), "+v"(b1), "+v"(b2));
#define S(i, j) c##i##j = _mm256_add_epi32(c##i##j, _mm256_madd_epi16(_mm256_maddubs_epi16(a##i, b##j), ones));
    S(0, 0) S(0, 1) S(0, 2) S(1, 0) S(1, 1) S(1, 2)
#undef S
    __asm__ volatile("" : "+v"(c00), "+v"(c01), "+v"(c02), "+v"(c10), "+v"(c11), "+v"(c12));
  }
  __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c00, c01), _mm256_add_epi32(c02, c10)),
                               _mm256_add_epi32(c11, c12));
  alignas(32) int32_t t[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), s);
  g_sink_i = t[0] + t[7];
  return iters * 6 * 64;
}

// zmm (32 registers): 3 A x 4 B = 12 accumulators.
__attribute__((target("avx512f,avx512bw"))) static uint64_t loop_maddubs_zmm(uint64_t iters) {
  __m512i a0 = _mm512_set1_epi8(g_seed8), a1 = _mm512_set1_epi8(int8_t(g_seed8 + 1)),
          a2 = _mm512_set1_epi8(int8_t(g_seed8 + 2));
  __m512i b0 = _mm512_set1_epi8(int8_t(g_seed8 + 3)), b1 = _mm512_set1_epi8(int8_t(g_seed8 + 4)),
          b2 = _mm512_set1_epi8(int8_t(g_seed8 + 5)), b3 = _mm512_set1_epi8(int8_t(g_seed8 + 6));
  const __m512i ones = _mm512_set1_epi16(int16_t(g_seed8 - 2));
  __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00,
          c13 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  for (uint64_t it = 0; it < iters; ++it) {
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(b0), "+v"(b1), "+v"(b2), "+v"(b3));
#define S(i, j) c##i##j = _mm512_add_epi32(c##i##j, _mm512_madd_epi16(_mm512_maddubs_epi16(a##i, b##j), ones));
    S(0, 0) S(0, 1) S(0, 2) S(0, 3) S(1, 0) S(1, 1) S(1, 2) S(1, 3) S(2, 0) S(2, 1) S(2, 2) S(2, 3)
#undef S
    __asm__ volatile("" : "+v"(c00), "+v"(c01), "+v"(c02), "+v"(c03), "+v"(c10), "+v"(c11));
    __asm__ volatile("" : "+v"(c12), "+v"(c13), "+v"(c20), "+v"(c21), "+v"(c22), "+v"(c23));
  }
  __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c00, c01), _mm512_add_epi32(c02, c03)),
                               _mm512_add_epi32(_mm512_add_epi32(c10, c11), _mm512_add_epi32(c12, c13)));
  s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(c20, c21), _mm512_add_epi32(c22, c23)));
  alignas(64) int32_t t[16];
  _mm512_store_si512(t, s);
  g_sink_i = t[0] + t[15];
  return iters * 12 * 128;
}

__attribute__((target("avx512f"))) static uint64_t loop_fma_zmm(uint64_t iters) {
  const __m512 x = _mm512_set1_ps(float(g_seed8) * 1e-9f), y = _mm512_set1_ps(1.0f + float(g_seed8) * 1e-9f);
#define D(i) __m512 acc##i = _mm512_set1_ps(float(i));
  ACC12(D)
#undef D
  for (uint64_t it = 0; it < iters; ++it) {
#define S(i) acc##i = _mm512_fmadd_ps(acc##i, y, x);
    ACC12(S)
#undef S
    KEEP12(acc);
  }
  __m512 s = acc0;
#define R(i) s = _mm512_add_ps(s, acc##i);
  ACC12(R)
#undef R
  alignas(64) float t[16];
  _mm512_store_ps(t, s);
  g_sink_f = t[0] + t[15];
  return iters * 12 * 32;
}

__attribute__((target("avx2,fma"))) static uint64_t loop_fma_ymm(uint64_t iters) {
  const __m256 x = _mm256_set1_ps(float(g_seed8) * 1e-9f), y = _mm256_set1_ps(1.0f + float(g_seed8) * 1e-9f);
#define D(i) __m256 acc##i = _mm256_set1_ps(float(i));
  ACC12(D)
#undef D
  for (uint64_t it = 0; it < iters; ++it) {
#define S(i) acc##i = _mm256_fmadd_ps(acc##i, y, x);
    ACC12(S)
#undef S
    KEEP12(acc);
  }
  __m256 s = acc0;
#define R(i) s = _mm256_add_ps(s, acc##i);
  ACC12(R)
#undef R
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  g_sink_f = t[0] + t[7];
  return iters * 12 * 16;
}

// Clock estimate: a chain of dependent 64-bit adds runs at one add per cycle on every x86 core
// since the P6, so adds / second ~ the core clock while the loop runs.
static uint64_t loop_add_chain(uint64_t iters) {
  uint64_t v = uint64_t(g_seed8);
  for (uint64_t it = 0; it < iters; ++it) {
    __asm__ volatile(
        "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\t"
        "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\t"
        "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\t"
        "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0"
        : "+r"(v));
  }
  g_sink_i = int32_t(v);
  return iters * 16;  // adds (cycles)
}

// ---- AMX ----------------------------------------------------------------------------------
// Tiles 0-3: 16x16 int32 accumulators (16 rows x 64 bytes); tiles 4-5: A (16 rows x 64 u8);
// tiles 6-7: B in VNNI layout (16 rows x 64 s8). One tdpbusd = 16*16*64 products = 32768 ops.

#if defined(__GNUC__) && (__GNUC__ >= 11 || defined(__clang__))
#define HAVE_AMX_INTRIN 1
struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

static bool amx_request_permission() {
#if defined(__linux__)
  // ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
  return false;
#endif
}

__attribute__((target("amx-tile,amx-int8"))) static void amx_config() {
  TileConfig cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
}

alignas(64) static thread_local int8_t g_amx_buf[4][16 * 64];

// reload = false: operands stay in tiles; true: A and B tiles are reloaded from L1 every iteration.
template <bool Reload>
__attribute__((target("amx-tile,amx-int8"))) static uint64_t loop_amx(uint64_t iters) {
  amx_config();
  for (auto& b : g_amx_buf) std::memset(b, g_seed8, sizeof b);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, g_amx_buf[0], 64);
  _tile_loadd(5, g_amx_buf[1], 64);
  _tile_loadd(6, g_amx_buf[2], 64);
  _tile_loadd(7, g_amx_buf[3], 64);
  for (uint64_t it = 0; it < iters; ++it) {
    if (Reload) {
      _tile_loadd(4, g_amx_buf[0], 64);
      _tile_loadd(6, g_amx_buf[2], 64);
    }
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    if (Reload) {
      _tile_loadd(5, g_amx_buf[1], 64);
      _tile_loadd(7, g_amx_buf[3], 64);
    }
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
  alignas(64) int32_t out[16 * 16];
  _tile_stored(0, out, 64);
  g_sink_i = out[0];
  _tile_stored(3, out, 64);
  g_sink_i = g_sink_i + out[255];
  _tile_release();
  return iters * 4 * 32768ull;
}
#endif

// ---- harness ------------------------------------------------------------------------------

using LoopFn = uint64_t (*)(uint64_t);

static void pin_to_cpu(int i) {
#if defined(__linux__)
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  int n = CPU_COUNT(&allowed);
  if (n <= 0) return;
  int k = i % n, seen = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &allowed)) continue;
    if (seen++ == k) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      pthread_setaffinity_np(pthread_self(), sizeof one, &one);
      return;
    }
  }
#else
  (void)i;
#endif
}

static double thread_cpu_seconds() {
#if defined(__linux__)
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
#else
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
#endif
}

struct RunResult {
  double wall;      // seconds from the common start to the last thread's end
  double cpu_rate;  // sum over threads of ops / (that thread's CPU time)
  uint64_t ops;     // total
};

// Runs fn(iters) on `threads` threads started together.
static RunResult run_parallel(LoopFn fn, int threads, uint64_t iters, bool amx) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<uint64_t> ops(threads, 0);
  std::vector<double> cpu(threads, 0);
  std::vector<Clock::time_point> end(threads);
  Clock::time_point start;
  auto body = [&](int t) {
    if (threads > 1) pin_to_cpu(t);
#ifdef HAVE_AMX_INTRIN
    if (amx) amx_request_permission();
#else
    (void)amx;
#endif
    fn(iters / 64 + 1);  // warm-up: wake the vector units, fault in the code
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) {
    }
    double c0 = thread_cpu_seconds();
    ops[t] = fn(iters);
    cpu[t] = thread_cpu_seconds() - c0;
    end[t] = Clock::now();
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(body, t);
  while (ready.load() < threads) std::this_thread::yield();
  start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  Clock::time_point last = *std::max_element(end.begin(), end.end());
  RunResult r{std::chrono::duration<double>(last - start).count(), 0, 0};
  for (int t = 0; t < threads; ++t) {
    r.ops += ops[t];
    r.cpu_rate += double(ops[t]) / std::max(cpu[t], 1e-9);
  }
  return r;
}

// Best of `reps` short runs of about `ms` milliseconds: ops per second, by wall time and by the
// threads' own CPU time. The machine may be shared: other processes take the CPUs away for whole
// time slices, so the best of many short runs is the estimate of what the hardware does; the
// CPU-time figure also leaves out time slices lost to other processes of this OS.
struct Measured {
  double wall_rate, cpu_rate;
};
static Measured measure(LoopFn fn, int threads, double ms, int reps, bool amx) {
  uint64_t iters = 1000;
  RunResult r = run_parallel(fn, 1, iters, amx);
  // grow until a run lasts at least 2 ms, then scale to the target
  while (r.wall < 2e-3) {
    iters *= 4;
    r = run_parallel(fn, 1, iters, amx);
  }
  iters = std::max<uint64_t>(1, uint64_t(double(iters) * (ms * 1e-3) / r.wall));
  Measured best{0, 0};
  for (int k = 0; k < reps; ++k) {
    r = run_parallel(fn, threads, iters, amx);
    best.wall_rate = std::max(best.wall_rate, double(r.ops) / r.wall);
    best.cpu_rate = std::max(best.cpu_rate, r.cpu_rate);
  }
  return best;
}

struct Kernel {
  const char* name;
  const char* instr;
  int opsPerInstr;  // per instruction (per vpmaddubsw+vpmaddwd+vpaddd triple for the maddubs loops)
  LoopFn fn;
  bool supported;
  bool amx;
  const char* why;  // when not supported
};

int main(int argc, char** argv) {
  std::vector<int> threads;
  double ms = 10;
  int reps = 15;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--ms=", 5) == 0) ms = std::atof(argv[i] + 5);
    else if (std::strncmp(argv[i], "--reps=", 7) == 0) reps = std::max(1, std::atoi(argv[i] + 7));
    else threads.push_back(std::max(1, std::atoi(argv[i])));
  }
  if (threads.empty()) threads = {1, 2};
  Features f = detect();
  bool amx_ok = false;
  const char* amx_why = "CPU has no AMX-INT8";
#ifdef HAVE_AMX_INTRIN
  if (f.amx_tile && f.amx_int8) {
    amx_ok = amx_request_permission();
    if (!amx_ok) amx_why = "arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) refused";
  }
#else
  if (f.amx_tile && f.amx_int8) amx_why = "compiler too old for AMX intrinsics";
#endif
  bool vex_vnni = false;
#ifdef HAVE_AVXVNNI_INTRIN
  vex_vnni = f.avxvnni;
#endif
  std::vector<Kernel> ks = {
      {"vnni_zmm", "vpdpbusd zmm", 128, loop_vnni_zmm, f.avx512vnni && f.avx512bw, false, "CPU has no AVX512-VNNI"},
#ifdef HAVE_AVXVNNI_INTRIN
      {"vnni_ymm", vex_vnni ? "vpdpbusd ymm (VEX, AVX-VNNI)" : "vpdpbusd ymm (EVEX, AVX512-VNNI+VL)", 64,
       vex_vnni ? loop_vnni_ymm_vex : loop_vnni_ymm_evex, vex_vnni || (f.avx512vnni && f.avx512vl), false,
       "CPU has neither AVX-VNNI nor AVX512-VNNI"},
#else
      {"vnni_ymm", "vpdpbusd ymm (EVEX, AVX512-VNNI+VL)", 64, loop_vnni_ymm_evex, f.avx512vnni && f.avx512vl, false,
       "CPU has no AVX512-VNNI+VL"},
#endif
      {"maddubs_zmm", "vpmaddubsw+vpmaddwd+vpaddd zmm", 128, loop_maddubs_zmm, f.avx512bw, false, "CPU has no AVX512BW"},
      {"maddubs_ymm", "vpmaddubsw+vpmaddwd+vpaddd ymm", 64, loop_maddubs_ymm, f.avx2, false, "CPU has no AVX2"},
      {"fma_zmm", "vfmadd231ps zmm", 32, loop_fma_zmm, f.avx512f, false, "CPU has no AVX-512F"},
      {"fma_ymm", "vfmadd231ps ymm", 16, loop_fma_ymm, f.avx2 && f.fma, false, "CPU has no FMA"},
#ifdef HAVE_AMX_INTRIN
      {"amx", "tdpbusd, tiles in registers", 32768, loop_amx<false>, amx_ok, true, amx_why},
      {"amx_l1", "tdpbusd, reloading A/B tiles from L1", 32768, loop_amx<true>, amx_ok, true, amx_why},
#else
      {"amx", "tdpbusd, tiles in registers", 32768, nullptr, false, true, amx_why},
      {"amx_l1", "tdpbusd, reloading A/B tiles from L1", 32768, nullptr, false, true, amx_why},
#endif
  };
  (void)vex_vnni;
  // Clock of one core running alone (best of the runs), used for ops/cycle at every thread count.
  const double hz1 = measure(loop_add_chain, 1, ms / 2, 3 * reps, false).cpu_rate;
  for (int t : threads) {
    double hz = t == 1 ? hz1 : measure(loop_add_chain, t, ms / 2, 3 * reps, false).cpu_rate / t;  // per thread
    std::printf("{\"kernel\":\"clock\",\"instr\":\"dependent add chain (est. GHz per thread)\",\"threads\":%d,\"ghz\":%.3f,\"supported\":true}\n",
                t, hz * 1e-9);
    std::fflush(stdout);
    for (const Kernel& k : ks) {
      if (!k.supported) {
        std::printf("{\"kernel\":\"%s\",\"instr\":\"%s\",\"threads\":%d,\"gops\":null,\"opsPerInstr\":%d,\"supported\":false,\"why\":\"%s\"}\n",
                    k.name, k.instr, t, k.opsPerInstr, k.why);
        continue;
      }
      Measured m = measure(k.fn, t, ms, reps, k.amx);
      std::printf("{\"kernel\":\"%s\",\"instr\":\"%s\",\"threads\":%d,\"gops\":%.2f,\"gopsWall\":%.2f,\"opsPerInstr\":%d,\"supported\":true,\"opsPerCycle\":%.2f}\n",
                  k.name, k.instr, t, m.cpu_rate * 1e-9, m.wall_rate * 1e-9, k.opsPerInstr, m.cpu_rate / t / hz1);
      std::fflush(stdout);
    }
  }
  return 0;
}
