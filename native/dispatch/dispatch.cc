#include "dispatch.h"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "../core/arch.h"
#include "../core/ref.h"
#include "cpu.h"

#include "../kernels/kernel_decls.h"

namespace qk {

namespace {

const char* const kIsaNames[] = {
#define QK_ISA(e, name, arch) name,
#include "isa.def"
#undef QK_ISA
};

const char* const kOpNames[] = {
#define QK_OP(op, type) #op,
#include "ops.def"
#undef QK_OP
};

// The paths a forced setting allows besides itself (a path implies the ones it extends).
bool implies(Isa forced, Isa p) {
  if (p == Isa::scalar || p == forced) return true;
  switch (forced) {
    case Isa::avx512: return p == Isa::avx2;
    case Isa::avxvnni: return p == Isa::avx2;
    case Isa::avx512vnni: return p == Isa::avx2 || p == Isa::avx512;
    case Isa::amx: return p == Isa::avx2 || p == Isa::avx512 || p == Isa::avx512vnni;
    case Isa::neon_dotprod: return p == Isa::neon;
    default: return false;
  }
}

bool cpu_can_run(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::avx512: return f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl;
    case Isa::avxvnni: return f.avx2 && f.fma && f.avxvnni;
    case Isa::avx512vnni:
      return f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx512vnni;
    case Isa::amx:
      return f.avx512f && f.avx512bw && f.avx512vnni && f.amx_tile && f.amx_int8 &&
             f.amx_permitted;
    case Isa::neon: return f.neon;
    case Isa::neon_dotprod: return f.neon && f.dotprod;
    default: return false;
  }
}

std::mutex g_mu;
KernelTable g_table;
std::string g_forced = "auto";
std::atomic<bool> g_ready{false};

KernelTable build_table(bool any, Isa forced) {
  KernelTable t;
  for (const KernelEntry& e : kernel_list()) {
    if (!isa_supported(e.isa)) continue;
    if (!any && !implies(forced, e.isa)) continue;
    switch (e.op) {
#define QK_OP(op, type)                                                   \
  case Op::op:                                                            \
    if (t.op == nullptr || static_cast<int>(e.isa) > static_cast<int>(t.op##_isa)) { \
      t.op = reinterpret_cast<type>(const_cast<void*>(e.fn));             \
      t.op##_isa = e.isa;                                                 \
    }                                                                     \
    break;
#include "ops.def"
#undef QK_OP
      default: break;
    }
  }
  return t;
}

std::string supported_list() {
  std::string s;
  for (int i = 0; i < static_cast<int>(Isa::count); ++i) {
    if (!isa_supported(static_cast<Isa>(i))) continue;
    if (!s.empty()) s += ", ";
    s += kIsaNames[i];
  }
  return s;
}

void ensure_ready() {
  if (g_ready.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_ready.load(std::memory_order_relaxed)) return;
  g_table = build_table(true, Isa::scalar);
  g_ready.store(true, std::memory_order_release);
}

}  // namespace

const char* isa_name(Isa isa) {
  const int i = static_cast<int>(isa);
  return (i >= 0 && i < static_cast<int>(Isa::count)) ? kIsaNames[i] : "?";
}

const char* op_name(Op op) {
  const int i = static_cast<int>(op);
  return (i >= 0 && i < static_cast<int>(Op::count)) ? kOpNames[i] : "?";
}

bool isa_from_name(const std::string& name, Isa* out) {
  for (int i = 0; i < static_cast<int>(Isa::count); ++i) {
    if (name == kIsaNames[i]) {
      *out = static_cast<Isa>(i);
      return true;
    }
  }
  return false;
}

const std::vector<KernelEntry>& kernel_list() {
  static const std::vector<KernelEntry> list = {
#define QK_KERNEL(op, isa, sym) {Op::op, Isa::isa, reinterpret_cast<const void*>(&sym), #sym},
#include "../kernels/kernels.def"
#undef QK_KERNEL
  };
  return list;
}

bool isa_built(Isa isa) {
  for (const KernelEntry& e : kernel_list())
    if (e.isa == isa) return true;
  return false;
}

bool isa_supported(Isa isa) { return isa_built(isa) && cpu_can_run(isa); }

const KernelTable& kernels() {
  ensure_ready();
  return g_table;
}

std::string set_isa(const std::string& name, const char* source) {
  ensure_ready();
  if (name.empty() || name == "auto") {
    std::lock_guard<std::mutex> lock(g_mu);
    g_table = build_table(true, Isa::scalar);
    g_forced = "auto";
    return "";
  }
  Isa isa;
  if (!isa_from_name(name, &isa)) {
    std::string all = "auto";
    for (const char* n : kIsaNames) all += std::string(", ") + n;
    return "Expected one of " + all + " for " + source + " but received '" + name + "'";
  }
  if (!isa_supported(isa)) {
    const bool env = std::string(source) == "QUANTKIT_ISA";
    return std::string(source) + (env ? "=" + name : " '" + name + "'") + " is not usable here: " +
           (isa_built(isa) ? "this CPU or OS does not support it"
                           : "this binary has no kernels for it (built for " +
                                 cpu_features().arch + ")") +
           "; usable paths: " + supported_list();
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_table = build_table(false, isa);
  g_forced = name;
  return "";
}

std::string forced_isa() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_forced;
}

std::string init_dispatch_from_env() {
  const char* env = std::getenv("QUANTKIT_ISA");
  if (env == nullptr || *env == '\0') {
    ensure_ready();
    return "";
  }
  return set_isa(env);
}

}  // namespace qk
