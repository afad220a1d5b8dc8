// Observer reference kernels (declarations).
#pragma once
#include "kernel_types.h"

namespace qk {}  // namespace qk
