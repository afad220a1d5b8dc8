// GEMM reference kernels (declarations); the truth for every GEMM path.
#pragma once
#include "kernel_types.h"

namespace qk {}  // namespace qk
