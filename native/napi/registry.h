// Each native/napi/<family>.cc adds its functions to the addon's exports with
//   static qk::napi::Module m(+[](Napi::Env env, Napi::Object exports) { exports.Set(...); });
#pragma once
#include <napi.h>

#include <vector>

namespace qk {
namespace napi {

using RegisterFn = void (*)(Napi::Env env, Napi::Object exports);

inline std::vector<RegisterFn>& modules() {
  static std::vector<RegisterFn> m;
  return m;
}

struct Module {
  explicit Module(RegisterFn fn) { modules().push_back(fn); }
};

inline void register_all(Napi::Env env, Napi::Object exports) {
  for (RegisterFn fn : modules()) fn(env, exports);
}

}  // namespace napi
}  // namespace qk
