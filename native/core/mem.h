// Small helpers every native layer shares: integer rounding and 64-byte aligned buffers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace qk {

constexpr size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
constexpr size_t round_up(size_t a, size_t b) { return ceil_div(a, b) * b; }

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
template <class T>
using AlignedPtr = std::unique_ptr<T, AlignedFree>;

// n elements of T, 64-byte aligned (at least 64 bytes), uninitialised; null when out of memory
// or when the size overflows.
template <class T>
AlignedPtr<T> aligned_array(size_t n) {
  if (n > (SIZE_MAX - 63) / sizeof(T)) return AlignedPtr<T>(nullptr);
  const size_t bytes = round_up(n == 0 ? 1 : n * sizeof(T), 64);
  return AlignedPtr<T>(static_cast<T*>(std::aligned_alloc(64, bytes)));
}

}  // namespace qk
