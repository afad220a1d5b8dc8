// Tensor-level ops (native/core/quant.cc) against a per-element oracle that computes each
// element's group index from the definition, for every granularity, axis, block size, storage,
// forced path and thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/quant.h"
#include "core/ref.h"
#include "core/threadpool.h"
#include "dispatch/dispatch.h"
#include "test_util.h"

namespace qk {
namespace {

const KernelEntry kCore{Op::quant_uniform, Isa::scalar, nullptr, "core", {}};

struct Case {
  std::vector<size_t> shape;
  int axis;      // -1: per-tensor
  size_t block;  // 0: per-axis
};

Layout make_layout(const Case& c) {
  Layout L;
  size_t n = 1;
  for (size_t d : c.shape) n *= d;
  if (c.axis < 0) {
    L.gran = Gran::PerTensor;
    L.inner = n;
    return L;
  }
  L.gran = c.block ? Gran::Blocked : Gran::PerAxis;
  L.block = c.block;
  for (int i = 0; i < c.axis; ++i) L.outer *= c.shape[i];
  L.axis_dim = c.shape[c.axis];
  for (size_t i = c.axis + 1; i < c.shape.size(); ++i) L.inner *= c.shape[i];
  return L;
}

size_t group_of(const Layout& L, size_t e) {
  if (L.gran == Gran::PerTensor) return 0;
  const size_t i = e % L.inner, a = (e / L.inner) % L.axis_dim, o = e / (L.inner * L.axis_dim);
  if (L.gran == Gran::PerAxis) return a;
  return (o * L.num_blocks() + a / L.block) * L.inner + i;
}

void check_case(const Case& c, const QRange& r, bool nibble, const std::string& tag) {
  const Layout L = make_layout(c);
  const size_t n = L.numel(), G = L.num_groups();
  std::vector<float> x = adversarial(n, 0.05f, static_cast<uint32_t>(n * 31 + G));
  std::vector<float> scale(G);
  std::vector<int32_t> zp(G);
  for (size_t g = 0; g < G; ++g) {
    scale[g] = 0.01f + 0.003f * static_cast<float>(g % 17);
    zp[g] = pick_zp(r, g);
  }
  // Oracle codes.
  std::vector<uint8_t> codes(n);
  for (size_t e = 0; e < n; ++e) {
    const size_t g = group_of(L, e);
    quant_uniform_ref(&x[e], 1, scale[g], zp[g], r, &codes[e]);
  }
  const Storage st = nibble ? Storage::Nibble : Storage::Byte;
  const size_t bytes = nibble ? (n + 1) / 2 : n;
  std::vector<uint8_t> want(bytes + 8, 0xCD), got(bytes + 8, 0xCD);
  if (nibble)
    pack_nibbles(codes.data(), n, 0, want.data());
  else
    std::copy(codes.begin(), codes.end(), want.begin());
  quantize(x.data(), L, QParamsView{scale.data(), zp.data()}, r, st, got.data());
  CHECK_BYTES(kCore, want, got, bytes + 8, "quantize %s n=%zu", tag.c_str(), n);

  // Dequantize the codes back.
  const bool is_signed = r.qmin < 0;
  std::vector<float> dwant(n + 4, 5.0f), dgot(n + 4, 5.0f);
  for (size_t e = 0; e < n; ++e) {
    const size_t g = group_of(L, e);
    uint8_t cb = codes[e];
    if (nibble && is_signed) cb = static_cast<uint8_t>(static_cast<int8_t>(cb << 4) >> 4);
    dequant_uniform_ref(&cb, 1, is_signed, scale[g], zp[g], &dwant[e]);
  }
  dequantize(got.data(), L, QParamsView{scale.data(), zp.data()}, is_signed, st, dgot.data());
  CHECK_FLOATS(kCore, dwant, dgot, n + 4, "dequantize %s n=%zu", tag.c_str(), n);

  // Fake-quantize equals dequantize(quantize(x)); the mask is the in-range test.
  if (!nibble) {
    std::vector<float> fgot(n + 4, 5.0f);
    std::vector<uint8_t> mwant(n + 4, 9), mgot(n + 4, 9);
    for (size_t e = 0; e < n; ++e) {
      const size_t g = group_of(L, e);
      float f;
      fakequant_uniform_ref(&x[e], 1, scale[g], zp[g], r, &f, &mwant[e]);
      if (fbits(f) != fbits(dwant[e])) {
        fail(kCore, "fake != deq(quant) %s e=%zu", tag.c_str(), e);
        break;
      }
    }
    fake_quantize(x.data(), L, QParamsView{scale.data(), zp.data()}, r, fgot.data(), mgot.data());
    CHECK_FLOATS(kCore, dwant, fgot, n + 4, "fake_quantize %s n=%zu", tag.c_str(), n);
    CHECK_BYTES(kCore, mwant, mgot, n + 4, "fake_quantize mask %s n=%zu", tag.c_str(), n);
  }

  // Min/max per group.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> mnw(G, inf), mxw(G, -inf), mng(G), mxg(G);
  uint64_t nan = 0, infs = 0;
  for (size_t e = 0; e < n; ++e) {
    const size_t g = group_of(L, e);
    if (std::isnan(x[e])) {
      ++nan;
      continue;
    }
    if (std::isinf(x[e])) {
      ++infs;
      continue;
    }
    mnw[g] = std::min(mnw[g], x[e]);
    mxw[g] = std::max(mxw[g], x[e]);
  }
  MinMaxAcc acc;
  min_max(x.data(), L, mng.data(), mxg.data(), &acc);
  ++checks();
  for (size_t g = 0; g < G; ++g) {
    if (mng[g] != mnw[g] || mxg[g] != mxw[g] || std::signbit(mng[g]) != (mnw[g] < 0) ||
        std::signbit(mxg[g]) != (mxw[g] < 0)) {
      fail(kCore, "min_max %s group %zu: want %g..%g got %g..%g", tag.c_str(), g, mnw[g], mxw[g], mng[g], mxg[g]);
      break;
    }
  }
  if (acc.nan != nan || acc.inf != infs) fail(kCore, "min_max counts %s", tag.c_str());
}

void run_all(const std::string& tag) {
  std::vector<Case> cases = {
      {{0}, -1, 0},        {{1}, -1, 0},        {{7}, -1, 0},         {{1000}, -1, 0},      {{300001}, -1, 0},
      {{5, 0, 3}, 1, 0},   {{4, 6}, 0, 0},      {{4, 6}, 1, 0},       {{3, 5, 7}, 0, 0},    {{3, 5, 7}, 1, 0},
      {{3, 5, 7}, 2, 0},   {{2, 3, 40}, 1, 0},  {{2, 3, 4, 5}, 2, 0}, {{64, 4099}, 1, 0},   {{9, 33}, 1, 8},
      {{9, 33}, 1, 32},    {{9, 33}, 1, 33},    {{9, 33}, 1, 1},      {{9, 33}, 1, 100},    {{33, 9}, 0, 4},
      {{4, 10, 3}, 1, 3},  {{4, 10, 33}, 1, 4}, {{2, 7, 5, 3}, 2, 2}, {{5, 131072}, 1, 32}, {{131072, 5}, 0, 128},
      {{700, 1000}, 0, 0},
  };
  const QRange ranges[] = {{-128, 127, 0}, {0, 255, 0}, {-8, 7, 0}, {0, 15, QK_RECIP}, {-7, 7, 0}};
  for (const Case& c : cases)
    for (const QRange& r : ranges) {
      const bool nib = r.qmax <= 15 && r.qmin >= -8;
      check_case(c, r, false, tag);
      if (nib) check_case(c, r, true, tag + "/nibble");
    }
}

void test_nibbles() {
  // pack at every offset parity, then unpack: round trip with sign extension.
  for (size_t off = 0; off < 4; ++off)
    for (size_t n = 0; n < 40; ++n) {
      std::vector<uint8_t> codes(n), packed(32, 0), back(n);
      for (size_t i = 0; i < n; ++i) codes[i] = static_cast<uint8_t>((i * 5 + off) & 0x0f);
      if (off & 1) packed[off >> 1] = 0x0a;  // low nibble written earlier
      pack_nibbles(codes.data(), n, off, packed.data());
      unpack_nibbles(packed.data(), off, n, false, back.data());
      ++checks();
      if (back != codes) fail(kCore, "nibbles off=%zu n=%zu", off, n);
      if ((off & 1) && n && (packed[off >> 1] & 0x0f) != 0x0a) fail(kCore, "nibble clobbered off=%zu", off);
      if (((off + n) & 1) && (packed[(off + n) >> 1] >> 4) != 0) fail(kCore, "odd tail high nibble not zero");
      unpack_nibbles(packed.data(), off, n, true, back.data());
      for (size_t i = 0; i < n; ++i) {
        const int v = (codes[i] & 8) ? static_cast<int>(codes[i]) - 16 : codes[i];
        if (static_cast<int8_t>(back[i]) != v) {
          fail(kCore, "signed nibble off=%zu i=%zu", off, i);
          break;
        }
      }
    }
}

void test_dynamic() {
  // ONNX DynamicQuantizeLinear: scale and zero point from the float32 formula.
  std::vector<float> x = {0.0f, 2.0f, -3.0f, -4.0f, 0.5f, 1000.0f};
  std::vector<uint8_t> q(x.size());
  float s;
  int32_t z;
  dynamic_quantize(x.data(), x.size(), q.data(), &s, &z);
  const float s_want = (1000.0f - -4.0f) / 255.0f;
  ++checks();
  if (s != s_want || z != static_cast<int32_t>(std::nearbyint(4.0f / s_want)))
    fail(kCore, "dynamic scale %g zp %d", s, z);
  std::vector<float> zeros(5, 0.0f);
  dynamic_quantize(zeros.data(), zeros.size(), q.data(), &s, &z);
  if (s != 1.0f || z != 0 || q[0] != 0) fail(kCore, "dynamic all-zero: scale %g zp %d", s, z);
  dynamic_quantize(nullptr, 0, q.data(), &s, &z);
  if (s != 1.0f || z != 0) fail(kCore, "dynamic empty");
}

}  // namespace

void run_layout_tests() {
  test_nibbles();
  test_dynamic();
  for (int i = 0; i < static_cast<int>(Isa::count); ++i) {
    const Isa isa = static_cast<Isa>(i);
    if (!isa_supported(isa)) continue;
    if (!set_isa(isa_name(isa)).empty()) {
      fail_plain("set_isa(%s) failed", isa_name(isa));
      continue;
    }
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      run_all(std::string(isa_name(isa)) + "/t" + std::to_string(threads));
    }
  }
  set_isa("auto");
  // A forced path that this machine cannot run is refused with a message.
  ++checks();
  if (set_isa("no-such-path").find("Expected one of") == std::string::npos) fail_plain("unknown path not refused");
}

}  // namespace qk
