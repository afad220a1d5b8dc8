// Linked into the prebuilt Linux binaries (scripts/prebuild.js) to keep the glibc they need low.
//
// With -static-libstdc++, GCC 12's libstdc++.a drags in std::random_device (random.o, through the
// COW std::string instantiations that std::runtime_error uses), and on glibc >= 2.36 that calls
// arc4random@GLIBC_2.36 -- a symbol quantkit never uses, which alone would make the binary refuse
// to load on glibc 2.34/2.35 (Ubuntu 22.04, RHEL 9, Amazon Linux 2023). A hidden definition here
// satisfies the reference inside the addon, so no versioned import is emitted.
#include <cstdint>
#include <cstdlib>
#if defined(__linux__) && defined(__GLIBC__)
#include <unistd.h>

extern "C" __attribute__((visibility("hidden"))) uint32_t arc4random(void) noexcept {
  uint32_t v;
  if (getentropy(&v, sizeof v) != 0) abort();  // GLIBC_2.25; never fails for 4 bytes
  return v;
}
#endif
