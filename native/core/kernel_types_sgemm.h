// fp32 GEMM kernel signatures (see kernel_types.h).
#pragma once
#include <cstddef>
#include <cstdint>

namespace qk {}  // namespace qk
