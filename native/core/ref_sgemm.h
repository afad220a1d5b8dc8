// fp32 GEMM reference kernels (declarations).
#pragma once
#include "kernel_types.h"

namespace qk {}  // namespace qk
