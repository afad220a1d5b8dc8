// Runtime flags of an element-wise kernel as template arguments: with_flags(f, a, b) calls
// f(std::bool_constant<a>{}, std::bool_constant<b>{}), so each combination of flags runs its own
// instantiation of the kernel's loop (read one in the lambda as decltype(x)::value).
// ISA-free; in an unnamed namespace, so each kernel file gets its own copy.
#pragma once
#include <type_traits>

namespace qk {
namespace {

template <class F>
inline __attribute__((always_inline)) void with_flags(F&& f, bool a) {
  if (a)
    f(std::true_type{});
  else
    f(std::false_type{});
}

template <class F>
inline __attribute__((always_inline)) void with_flags(F&& f, bool a, bool b) {
  with_flags([&](auto x) { with_flags([&](auto y) { f(x, y); }, b); }, a);
}

}  // namespace
}  // namespace qk
