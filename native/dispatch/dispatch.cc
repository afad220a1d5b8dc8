#include "dispatch.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "../core/arch.h"
#include "../core/ref.h"
#include "cpu.h"

#include "../kernels/kernel_decls.h"

namespace qk {

namespace {

// Public names: the isa.def spelling with '-' for '_' ("neon_dotprod" -> "neon-dotprod").
template <size_t N>
struct IsaName {
  char s[N];
};
template <size_t N>
constexpr IsaName<N> public_name(const char (&id)[N]) {
  IsaName<N> r{};
  for (size_t i = 0; i < N; ++i) r.s[i] = id[i] == '_' ? '-' : id[i];
  return r;
}
#define QK_ISA(e, arch, implies, flags, support) constexpr auto kName_##e = public_name(#e);
#include "isa.def"
#undef QK_ISA

const char* const kIsaNames[] = {
#define QK_ISA(e, arch, implies, flags, support) kName_##e.s,
#include "isa.def"
#undef QK_ISA
};

const char* const kIsaArchs[] = {
#define QK_ISA(e, arch, implies, flags, support) #arch,
#include "isa.def"
#undef QK_ISA
};

const char* const kOpNames[] = {
#define QK_OP(op, type) #op,
#include "ops.def"
#undef QK_OP
};

constexpr int kIsaCount = static_cast<int>(Isa::count);

// The implies column of isa.def as bit sets: inside this namespace a path's name is its bit, so
// the column ("avx2 | avx512", "none") reads as an expression.
namespace isa_bits {
#define QK_ISA(e, arch, implies, flags, support) constexpr uint32_t e = 1u << static_cast<int>(Isa::e);
#include "isa.def"
#undef QK_ISA
constexpr uint32_t none = 0;
constexpr uint32_t kDirect[] = {
#define QK_ISA(e, arch, implies, flags, support) (implies),
#include "isa.def"
#undef QK_ISA
};
}  // namespace isa_bits
static_assert(kIsaCount <= 32, "isa.def: at most 32 paths (bit sets)");

// Transitive closure; a path implies only rows above it (so one pass in row order suffices).
struct Implied {
  uint32_t bits[kIsaCount > 0 ? kIsaCount : 1];
};
constexpr Implied implied_closure() {
  Implied r{};
  for (int i = 0; i < kIsaCount; ++i) {
    uint32_t b = isa_bits::kDirect[i];
    for (int j = 0; j < i; ++j)
      if (b & (1u << j)) b |= r.bits[j];
    r.bits[i] = b;
  }
  return r;
}
constexpr Implied kImplied = implied_closure();
constexpr bool implies_only_rows_above() {
  for (int i = 0; i < kIsaCount; ++i)
    if (isa_bits::kDirect[i] >> i) return false;
  return true;
}
static_assert(implies_only_rows_above(), "isa.def: a path may imply only paths in rows above it");

// The support column of isa.def: what this path adds to the paths it implies.
bool own_support(Isa isa, const CpuFeatures& f) {
  (void)f;
  switch (isa) {
#define QK_ISA(e, arch, implies, flags, support) \
  case Isa::e:                                   \
    return (support);
#include "isa.def"
#undef QK_ISA
    default: return false;
  }
}

bool cpu_can_run(Isa isa) {
  const int i = static_cast<int>(isa);
  if (i < 0 || i >= kIsaCount) return false;
  const CpuFeatures& f = cpu_features();
  if (!own_support(isa, f)) return false;
  for (int j = 0; j < i; ++j)
    if ((kImplied.bits[i] >> j & 1u) && !own_support(static_cast<Isa>(j), f)) return false;
  return true;
}

std::mutex g_mu;
KernelTable g_table;
std::string g_forced = "auto";
std::atomic<bool> g_ready{false};

KernelTable build_table(bool any, Isa forced) {
  KernelTable t;
  for (const KernelEntry& e : kernel_list()) {
    if (!isa_supported(e.isa)) continue;
    if (!any && !isa_implies(forced, e.isa)) continue;
    switch (e.op) {
#define QK_OP(op, type)                                                              \
  case Op::op:                                                                       \
    if (t.op == nullptr || static_cast<int>(e.isa) > static_cast<int>(t.op##_isa)) { \
      t.op = reinterpret_cast<type>(const_cast<void*>(e.fn));                        \
      t.op##_isa = e.isa;                                                            \
      t.op##_geom = e.geom;                                                          \
    }                                                                                \
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

const char* isa_arch(Isa isa) {
  const int i = static_cast<int>(isa);
  return (i >= 0 && i < kIsaCount) ? kIsaArchs[i] : "?";
}

bool isa_implies(Isa path, Isa other) {
  const int i = static_cast<int>(path), j = static_cast<int>(other);
  if (i < 0 || i >= kIsaCount || j < 0 || j >= kIsaCount) return false;
  return other == Isa::scalar || other == path || (kImplied.bits[i] >> j & 1u);
}

bool isa_cpu_ok(Isa isa) { return cpu_can_run(isa); }

const std::vector<KernelEntry>& kernel_list() {
  // The address is taken as the op's function type: a symbol of another type does not compile.
  static const std::vector<KernelEntry> list = [] {
    std::vector<KernelEntry> v = {
#define QK_KERNEL(op, isa, sym, ...)                                                                    \
  {Op::op, Isa::isa, reinterpret_cast<const void*>(static_cast<decltype(KernelTable::op)>(&sym)), #sym, \
   KernelGeom{__VA_ARGS__}},
#include "../kernels/kernels.def"
#undef QK_KERNEL
    };
    // isa.def order (then list order): kernelList() shows the paths in order of preference.
    std::stable_sort(v.begin(), v.end(), [](const KernelEntry& a, const KernelEntry& b) {
      return static_cast<int>(a.isa) < static_cast<int>(b.isa);
    });
    return v;
  }();
  return list;
}

std::vector<const char*> kernel_trait_names(uint32_t traits) {
  std::vector<const char*> v;
  if (traits & kPackA) v.push_back("packA");
  if (traits & kSpreadRows) v.push_back("spreadRows");
  if (traits & kRowMajorB) v.push_back("rowMajorB");
  return v;
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
                           : "this binary has no kernels for it (built for " + cpu_features().arch + ")") +
           "; usable paths: " + supported_list();
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_table = build_table(false, isa);
  g_forced = name;
  return "";
}

void set_test_kernel(Op op, const void* fn, KernelGeom geom) {
  ensure_ready();
  std::lock_guard<std::mutex> lock(g_mu);
  switch (op) {
#define QK_OP(o, type)                                         \
  case Op::o:                                                  \
    g_table.o = reinterpret_cast<type>(const_cast<void*>(fn)); \
    g_table.o##_geom = geom;                                   \
    break;
#include "ops.def"
#undef QK_OP
    default: break;
  }
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
