// Generated from the kernel list (kernels.def): every kernel declared with its op's function type
// (native/dispatch/ops.def), and its geometry as qk::geom::<symbol>. Every kernel file includes
// this header and is compiled with -Werror=missing-declarations (CMakeLists.txt), so a kernel whose
// signature differs from its op's type, or that is missing from the list, does not compile.
#pragma once
#include <type_traits>

#include "../core/arch.h"
#include "../core/ref.h"

namespace qk {

// qk::<op>_kernel: the function type of op's kernels.
#define QK_OP(op, type) using op##_kernel = std::remove_pointer_t<type>;
#include "../dispatch/ops.def"
#undef QK_OP

#define QK_KERNEL(op, isa, sym, ...)     \
  extern op##_kernel sym;                \
  namespace geom {                       \
  constexpr KernelGeom sym{__VA_ARGS__}; \
  }
#include "kernels.def"
#undef QK_KERNEL

}  // namespace qk
