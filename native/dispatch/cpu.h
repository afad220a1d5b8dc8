// CPU feature detection: cpuid plus the OS checks that make a feature usable.
#pragma once
#include <string>
#include <vector>

namespace qk {

struct CpuFeatures {
  std::string arch;  // "x86_64", "arm64" or "other"
  // x86-64 (each true only when the OS also saves the register state)
  bool sse41 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false, avx512vnni = false;
  bool avxvnni = false;
  bool amx_tile = false, amx_int8 = false;
  bool amx_permitted = false;  // arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) succeeded
  // arm64
  bool neon = false, dotprod = false, i8mm = false;
};

const CpuFeatures& cpu_features();
std::vector<std::string> cpu_feature_names();  // the true flags, for cpuInfo()

}  // namespace qk
