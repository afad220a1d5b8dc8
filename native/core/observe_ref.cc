// Scalar reference histogram (torch.histc's float32 formula; see kernel_types_observe.h).
#include "observe_bin.h"
#include "ref.h"

namespace qk {

void histogram_ref(const float* x, size_t n, const HistParams& p, uint32_t* counts) { hist_scalar(x, n, p, counts); }

}  // namespace qk
