// Observer reference kernels (declarations): the truth for every histogram path.
#pragma once
#include "kernel_types.h"

namespace qk {

void histogram_ref(const float* x, size_t n, const HistParams& p, uint32_t* counts);

}  // namespace qk
