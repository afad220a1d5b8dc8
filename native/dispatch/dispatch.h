// Runtime path selection. A path is usable when it was built into this binary and the CPU and OS
// support it; each op uses the most preferred usable path that has a kernel for it (isa.def order),
// limited by the forced setting (QUANTKIT_ISA or set_isa()).
#pragma once
#include <string>
#include <vector>

#include "../core/kernel_types.h"

namespace qk {

enum class Isa : int {
#define QK_ISA(e, name, arch) e,
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

const char* isa_name(Isa isa);
bool isa_from_name(const std::string& name, Isa* out);
bool isa_built(Isa isa);      // a kernel of this path is compiled into the binary
bool isa_supported(Isa isa);  // built, and the CPU and OS can run it
const char* op_name(Op op);

// One entry of the kernel list (native/kernels/kernels.def).
struct KernelEntry {
  Op op;
  Isa isa;
  const void* fn;
  const char* symbol;
};
const std::vector<KernelEntry>& kernel_list();

// The selected kernels.
struct KernelTable {
#define QK_OP(op, type) type op = nullptr; Isa op##_isa = Isa::scalar;
#include "ops.def"
#undef QK_OP
};
const KernelTable& kernels();

// Force a path: "auto" (or "") = best supported; otherwise a path name, which must be supported.
// Returns "" on success, else an error message (and the selection is left unchanged).
// `source` names the setting in messages: "QUANTKIT_ISA" (the environment) or "path" (setIsa).
std::string set_isa(const std::string& name, const char* source = "QUANTKIT_ISA");
std::string forced_isa();  // "auto" or the forced name
// Applies QUANTKIT_ISA from the environment once; returns an error message or "".
std::string init_dispatch_from_env();

}  // namespace qk
