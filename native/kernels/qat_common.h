// The exported QAT backward entry points of one path (ste_grad_<isa>, lsq_grad_<isa>,
// lsq_grad_vec_<isa>): the ISA-free flag dispatch onto that path's ste_impl<kAcc>,
// lsq_impl<kDx, kAcc> and lsq_vec_impl<kDx, kAcc>. A path file defines those templates (in its
// anonymous namespace) and then expands QK_QAT_EXPORTS(isa) inside namespace qk.
#pragma once

#include "flags.h"

#define QK_QAT_EXPORTS(ISA)                                                                                       \
  uint64_t ste_grad_##ISA(const float* dy, const uint8_t* mask, size_t n, float* dx, uint32_t flags) {            \
    return (flags & QK_GRAD_ACC) ? ste_impl<true>(dy, mask, n, dx) : ste_impl<false>(dy, mask, n, dx);            \
  }                                                                                                               \
                                                                                                                  \
  uint64_t lsq_grad_##ISA(const float* x, const float* dy, size_t n, float scale, int32_t zb, const LsqParams& p, \
                          float* dx, double* sums) {                                                              \
    uint64_t bad = 0;                                                                                             \
    with_flags(                                                                                                   \
        [&](auto d, auto a) {                                                                                     \
          bad = lsq_impl<decltype(d)::value, decltype(a)::value>(x, dy, n, scale, zb, p, dx, sums);               \
        },                                                                                                        \
        dx != nullptr, (p.flags & QK_GRAD_ACC) != 0);                                                             \
    return bad;                                                                                                   \
  }                                                                                                               \
                                                                                                                  \
  uint64_t lsq_grad_vec_##ISA(const float* x, const float* dy, size_t n, const float* scale, const int32_t* zb,   \
                              const LsqParams& p, float* dx, double* ds, double* dz) {                            \
    uint64_t bad = 0;                                                                                             \
    with_flags(                                                                                                   \
        [&](auto d, auto a) {                                                                                     \
          bad = lsq_vec_impl<decltype(d)::value, decltype(a)::value>(x, dy, n, scale, zb, p, dx, ds, dz);         \
        },                                                                                                        \
        dx != nullptr, (p.flags & QK_GRAD_ACC) != 0);                                                             \
    return bad;                                                                                                   \
  }
