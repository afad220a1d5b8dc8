// Declarations of every kernel in kernels.def. A kernel has the signature of its op's reference.
#pragma once
#include "../core/arch.h"
#include "../core/ref.h"

namespace qk {
#define QK_KERNEL(op, isa, sym) extern decltype(op##_ref) sym;
#include "kernels.def"
#undef QK_KERNEL
}  // namespace qk
