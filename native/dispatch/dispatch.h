// Runtime path selection. A path is usable when it was built into this binary and the CPU and OS
// support it; each op uses the most preferred usable path that has a kernel for it (isa.def order),
// limited by the forced setting (QUANTKIT_ISA or set_isa()).
#pragma once
#include <string>
#include <vector>

#include "../core/kernel_types.h"

namespace qk {

enum class Isa : int {
#define QK_ISA(e, arch, implies, flags, support) e,
#include "isa.def"
#undef QK_ISA
  count
};

enum class Op : int {
#define QK_OP(op, type) op,
#include "ops.def"
#undef QK_OP
  count
};

const char* isa_name(Isa isa);  // the public name: the isa.def spelling with '-' for '_'
bool isa_from_name(const std::string& name, Isa* out);
const char* isa_arch(Isa isa);  // "any", "x86_64" or "arm64" (isa.def)
// `other` is allowed when `path` is forced: scalar, path itself and what it implies (isa.def,
// transitively).
bool isa_implies(Isa path, Isa other);
bool isa_cpu_ok(Isa isa);     // the CPU and OS can run it (and every path it implies)
bool isa_built(Isa isa);      // a kernel of this path is compiled into the binary
bool isa_supported(Isa isa);  // built, and the CPU and OS can run it
const char* op_name(Op op);

// One entry of the kernel list (native/kernels/kernels.def), in isa.def order.
struct KernelEntry {
  Op op;
  Isa isa;
  const void* fn;
  const char* symbol;
  KernelGeom geom;  // tiled kernels (GEMM families); zero for element-wise ones
};
const std::vector<KernelEntry>& kernel_list();
// The names of the bits set in traits (kernel_types.h, KernelTrait), e.g. {"packA"}.
std::vector<const char*> kernel_trait_names(uint32_t traits);

// The selected kernels, with their paths and geometry.
struct KernelTable {
#define QK_OP(op, type)       \
  type op = nullptr;          \
  Isa op##_isa = Isa::scalar; \
  KernelGeom op##_geom{};
#include "ops.def"
#undef QK_OP
};
const KernelTable& kernels();

// Force a path: "auto" (or "") = best supported; otherwise a path name, which must be supported.
// Returns "" on success, else an error message (and the selection is left unchanged).
// `source` names the setting in messages: "QUANTKIT_ISA" (the environment) or "path" (setIsa).
std::string set_isa(const std::string& name, const char* source = "QUANTKIT_ISA");
std::string forced_isa();  // "auto" or the forced name
// Tests only: `op` runs `fn` (of the op's type) with geometry `geom`, a kernel outside the list
// (the AMX gemm_i8 strip on emulated tiles, native/tests/test_gemm.cc), until the next set_isa().
void set_test_kernel(Op op, const void* fn, KernelGeom geom);
// Applies QUANTKIT_ISA from the environment once; returns an error message or "".
std::string init_dispatch_from_env();

}  // namespace qk
