#pragma once
#if defined(__x86_64__) || defined(_M_X64)
#define QK_ARCH_X86_64 1
#else
#define QK_ARCH_X86_64 0
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define QK_ARCH_ARM64 1
#else
#define QK_ARCH_ARM64 0
#endif
