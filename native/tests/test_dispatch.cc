// The kernel list and the path table as data: every entry's geometry fits its op's driver, symbols
// follow the one spelling of their path, isa.def's implication is consistent with the CPU check,
// and a forced path (or auto) selects, op by op, the kernel and geometry it should.
#include <cstdio>
#include <set>
#include <string>

#include "core/arch.h"
#include "core/kernel_types.h"
#include "dispatch/cpu.h"
#include "dispatch/dispatch.h"
#include "test_util.h"

using namespace qk;

namespace {

const KernelEntry kList{Op::quant_uniform, Isa::scalar, nullptr, "kernel list", {}};

bool tiled(Op op) { return op == Op::gemm_i8 || op == Op::sgemm_block || op == Op::nbits_f32 || op == Op::nbits_i8; }

// The isa.def spelling of a path: its public name with '_' for '-'.
std::string spelling(Isa isa) {
  std::string s = isa_name(isa);
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

void check(bool ok, const char* fmt, const char* a, const char* b = "") {
  ++checks();
  if (!ok) fail(kList, fmt, a, b);
}

void test_entries() {
  std::set<std::string> seen;
  std::set<int> ops_with_scalar;
  for (const KernelEntry& e : kernel_list()) {
    const KernelGeom& g = e.geom;
    const std::string key = std::string(op_name(e.op)) + "/" + isa_name(e.isa);
    check(seen.insert(key).second, "%s listed twice", key.c_str());
    if (e.isa == Isa::scalar) ops_with_scalar.insert(static_cast<int>(e.op));
    // One spelling: <op>_<path> (the scalar reference: <op>_ref).
    const std::string want = std::string(op_name(e.op)) + "_" + (e.isa == Isa::scalar ? "ref" : spelling(e.isa));
    check(want == e.symbol, "%s: symbol should be %s", e.symbol, want.c_str());
    // Built for this architecture only.
    const std::string arch = isa_arch(e.isa);
    check(arch == "any" || arch == cpu_features().arch, "%s: path of another architecture (%s)", e.symbol,
          arch.c_str());
    check((g.traits & ~kKernelTraitsAll) == 0, "%s: unknown trait bits", e.symbol);
    if (!tiled(e.op)) {
      check(g.mr == 0 && g.nr == 0 && g.traits == 0, "%s: an element-wise kernel has no geometry", e.symbol);
      continue;
    }
    check(g.mr >= 1 && g.mr <= 64 && g.nr >= 1, "%s: a tiled kernel needs mr in 1..64 and nr >= 1", e.symbol);
    if (e.op == Op::gemm_i8) {
      // Strips cut panels of 64 columns padded to 16: nr divides the panel, and every strip but
      // a panel's last is nr wide (nr a multiple of 16, or a divisor of 16).
      check(kGemmPanel % g.nr == 0 && (g.nr % kGemmColAlign == 0 || kGemmColAlign % g.nr == 0),
            "%s: gemm_i8 nr must divide the 64-column panel in steps of 16", e.symbol);
      check(g.traits == 0, "%s: gemm_i8 kernels take A and B in the one internal form (no traits)", e.symbol);
    } else if (e.op == Op::nbits_f32 || e.op == Op::nbits_i8) {
      // Whole 16-column panels of the one packed layout (kernel_types_nbits.h).
      check(g.nr == kNBitsPanel && g.traits == 0, "%s: nbits kernels take whole 16-column panels (no traits)",
            e.symbol);
    } else {
      // Strips start at a panel (or a panel half): nr is a multiple of 32 or divides 32.
      check(g.nr % kSgemmPanel == 0 || kSgemmPanel % g.nr == 0,
            "%s: sgemm_block nr must be a multiple or a divisor of 32", e.symbol);
      // Packed slivers are mr rows from the top: they cannot serve a kernel that spreads rows.
      check(!((g.traits & kPackA) && (g.traits & kSpreadRows)), "%s: kPackA and kSpreadRows exclude each other",
            e.symbol);
    }
  }
  for (int op = 0; op < static_cast<int>(Op::count); ++op)
    check(ops_with_scalar.count(op) == 1, "op %s has no scalar reference in the list", op_name(static_cast<Op>(op)));
  // kernelList() order: paths in isa.def order.
  for (size_t i = 1; i < kernel_list().size(); ++i)
    check(static_cast<int>(kernel_list()[i - 1].isa) <= static_cast<int>(kernel_list()[i].isa),
          "kernel list out of path order at %s", kernel_list()[i].symbol);
  std::vector<const char*> names = kernel_trait_names(kKernelTraitsAll);
  check(names.size() == 3, "every trait has a name%s", "");
}

void test_paths() {
  const int n = static_cast<int>(Isa::count);
  std::set<std::string> names;
  for (int i = 0; i < n; ++i) {
    const Isa a = static_cast<Isa>(i);
    const std::string name = isa_name(a);
    check(name.find('_') == std::string::npos && !name.empty(), "path name %s: '-' not '_'", name.c_str());
    check(names.insert(name).second, "path name %s twice", name.c_str());
    Isa back;
    check(isa_from_name(name, &back) && back == a, "isa_from_name(%s) does not give the path back", name.c_str());
    check(isa_implies(a, a) && isa_implies(a, Isa::scalar), "%s allows itself and scalar", name.c_str());
    for (int j = 0; j < n; ++j) {
      const Isa b = static_cast<Isa>(j);
      if (!isa_implies(a, b)) continue;
      check(j <= i, "%s implies %s, a row below it", name.c_str(), isa_name(b));
      check(std::string(isa_arch(b)) == "any" || std::string(isa_arch(b)) == isa_arch(a),
            "%s implies %s of another architecture", name.c_str(), isa_name(b));
      check(!isa_cpu_ok(a) || isa_cpu_ok(b), "%s is usable where %s is not", name.c_str(), isa_name(b));
      for (int k = 0; k < n; ++k)
        if (isa_implies(b, static_cast<Isa>(k)))
          check(isa_implies(a, static_cast<Isa>(k)), "implication not transitive at %s -> %s", name.c_str(),
                isa_name(b));
    }
  }
  // The rows of isa.def as the docs state them.
  auto implies = [](const char* a, const char* b) {
    Isa x, y;
    return isa_from_name(a, &x) && isa_from_name(b, &y) && isa_implies(x, y);
  };
  check(implies("avx512", "avx2") && !implies("avx2", "avx512"), "avx512 implies avx2, not the other way%s", "");
  check(implies("avx512vnni", "avx512") && implies("avx512vnni", "avx2") && !implies("avx512vnni", "avxvnni"),
        "avx512vnni implies avx512 and avx2 only%s", "");
  check(implies("avxvnni", "avx2") && !implies("avxvnni", "avx512"), "avxvnni implies avx2 only%s", "");
  check(implies("amx", "avx512vnni") && implies("amx", "avx2"), "amx implies avx512vnni%s", "");
  check(implies("neon-dotprod", "neon") && !implies("neon", "neon-dotprod"), "neon-dotprod implies neon%s", "");
  check(!implies("neon-dotprod", "avx2") && !implies("avx2", "neon"), "no implication across architectures%s", "");
}

// The kernel an op should run with `forced` ("auto": any path): the most preferred supported
// path that has a kernel for it and that the forced path allows.
const KernelEntry* expected(Op op, bool any, Isa forced) {
  const KernelEntry* best = nullptr;
  for (const KernelEntry& e : kernel_list())
    if (e.op == op && isa_supported(e.isa) && (any || isa_implies(forced, e.isa)))
      if (!best || static_cast<int>(e.isa) > static_cast<int>(best->isa)) best = &e;
  return best;
}

const char* selected_isa(Op op) {
  const KernelTable& t = kernels();
  switch (op) {
#define QK_OP(o, type) \
  case Op::o:          \
    return isa_name(t.o##_isa);
#include "dispatch/ops.def"
#undef QK_OP
    default: return "?";
  }
}

void check_table(const std::string& path) {
  const bool any = path == "auto";
  Isa forced = Isa::scalar;
  if (!any && !isa_from_name(path, &forced)) return;
  const KernelTable& t = kernels();
  for (int o = 0; o < static_cast<int>(Op::count); ++o) {
    const Op op = static_cast<Op>(o);
    const KernelEntry* e = expected(op, any, forced);
    if (!e) {
      check(false, "[%s] no kernel for %s", path.c_str(), op_name(op));
      continue;
    }
    const void* fn = nullptr;
    KernelGeom g;
    Isa isa = Isa::scalar;
    switch (op) {
#define QK_OP(o2, type)                       \
  case Op::o2:                                \
    fn = reinterpret_cast<const void*>(t.o2); \
    g = t.o2##_geom;                          \
    isa = t.o2##_isa;                         \
    break;
#include "dispatch/ops.def"
#undef QK_OP
      default: break;
    }
    char what[96];
    std::snprintf(what, sizeof what, "%s %s", path.c_str(), op_name(op));
    check(fn == e->fn && isa == e->isa, "[%s] selected %s", what, selected_isa(op));
    check(g.mr == e->geom.mr && g.nr == e->geom.nr && g.traits == e->geom.traits,
          "[%s] the table's geometry is not its entry's (%s)", what, e->symbol);
  }
}

// Path -> op -> the path it must select, where both are usable here (the docs' examples).
void check_named(const char* path, Op op, const char* want) {
  Isa p, w;
  if (!isa_from_name(path, &p) || !isa_from_name(want, &w) || !isa_supported(p) || !isa_supported(w)) return;
  if (!set_isa(path).empty()) {
    check(false, "set_isa(%s) refused", path);
    return;
  }
  check(std::string(selected_isa(op)) == want, "forced %s does not select %s", path, want);
}

void test_selection() {
  std::vector<std::string> paths = {"auto"};
  for (int i = 0; i < static_cast<int>(Isa::count); ++i)
    if (isa_supported(static_cast<Isa>(i))) paths.push_back(isa_name(static_cast<Isa>(i)));
  for (const std::string& p : paths) {
    const std::string err = set_isa(p);
    check(err.empty(), "set_isa(%s) refused a supported path: %s", p.c_str(), err.c_str());
    if (err.empty()) check_table(p);
  }
  check_named("avx512vnni", Op::gemm_i8, "avx512vnni");
  check_named("avx512vnni", Op::sgemm_block, "avx512");
  check_named("avx512", Op::gemm_i8, "avx2");  // no AVX-512 gemm_i8 kernel: the path it implies
  check_named("avxvnni", Op::gemm_i8, "avxvnni");
  check_named("avxvnni", Op::sgemm_block, "avx2");  // AVX-VNNI adds only gemm_i8 to avx2
  check_named("avxvnni", Op::quant_uniform, "avx2");
  check_named("avx512", Op::quant_uniform, "avx512");
  check_named("avx2", Op::sgemm_block, "avx2");
  check_named("scalar", Op::gemm_i8, "scalar");
  check_named("neon-dotprod", Op::gemm_i8, "neon-dotprod");
  check_named("neon-dotprod", Op::sgemm_block, "neon");
  check_named("neon", Op::gemm_i8, "neon");
  check_named("amx", Op::gemm_i8, "amx");
  check_named("amx", Op::sgemm_block, "avx512");  // AMX adds only gemm_i8 to avx512vnni
  // A path without kernels (of another architecture, or none yet) is refused, and so is a built
  // path this CPU or OS cannot run (AMX on a CPU without it, or without the kernel's permission);
  // the selection stays as it was, and neither is in the supported paths.
  set_isa("auto");
  for (int i = 0; i < static_cast<int>(Isa::count); ++i) {
    const Isa a = static_cast<Isa>(i);
    if (isa_supported(a)) continue;
    const std::string err = set_isa(isa_name(a));
    const char* why = isa_built(a) ? "this CPU or OS does not support it" : "this binary has no kernels for it";
    check(err.find(why) != std::string::npos && err.find("usable paths: ") != std::string::npos,
          "set_isa(%s) not refused clearly: %s", isa_name(a), err.c_str());
    check(forced_isa() == "auto", "a refused set_isa(%s) changed the selection", isa_name(a));
    check(!isa_cpu_ok(a) || !isa_built(a), "%s: built and runnable but not supported", isa_name(a));
  }
  set_isa("auto");
#if QK_ARCH_X86_64
  // The AMX kernel is built into every x86-64 binary; it is usable exactly where the CPU has
  // AMX-TILE and AMX-INT8 with the OS state enabled and the permission granted (isa.def).
  {
    Isa amx;
    isa_from_name("amx", &amx);
    const CpuFeatures& f = cpu_features();
    check(isa_built(amx), "the amx path is not built into this x86-64 binary%s", "");
    check(isa_supported(amx) == (f.amx_tile && f.amx_int8 && f.amx_permitted && isa_cpu_ok(Isa::avx512vnni)),
          "amx usable %s against the CPU flags", isa_supported(amx) ? "yes" : "no");
    check(!f.amx_permitted || (f.amx_tile && f.amx_int8), "AMX permission asked without AMX%s", "");
  }
#endif
}

void run() {
  test_entries();
  test_paths();
  test_selection();
}

static qk::TestSuite s("dispatch", run);

}  // namespace
