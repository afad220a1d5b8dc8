#!/usr/bin/python3
"""Golden data for quantkit's calibration observers: test/golden/observers.json.

Run with Debian's python (torch 1.13 + numpy):  /usr/bin/python3 scripts/golden/gen_observers.py

Sources of truth (torch.ao.quantization, torch 1.13):
  * MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver: qparams and min/max after a sequence of batches.
  * HistogramObserver: qparams, the final histogram range (min_val / max_val) and the histogram.
    torch 1.13 calls torch.histc(x, bins, min=int(min_val), max=int(max_val)): the range is
    truncated to integers (a bug; later versions pass the floats). Every histogram case here is
    built so that the range stays integer-valued through every batch (integer data extremes, range
    growth by exact multiples of the bin grid), so the truncation is a no-op and torch computes
    what it means to compute. The script asserts this after every batch.
    A second set of HistogramObserver cases runs torch's own class with only that int() removed
    (HistogramObserverFloatRange below) on general data: non-integer ranges, relaxed maxima.
  * torch.histc: bin counts for values on and around bin edges (float32 formula).
"""
import json
import os
import sys
import warnings

import numpy as np
import torch
from torch.ao.quantization import (HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
                                   MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver)

warnings.filterwarnings("ignore")
torch.manual_seed(0)
torch.set_num_threads(1)
SEED = 20251125
RNG = np.random.default_rng(SEED)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "golden", "observers.json")
F32 = np.float32


def enc_f(v):
    v = F32(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0 and np.signbit(v):
        return "-0"
    r = float(np.format_float_positional(v, unique=True)) if 1e-4 <= abs(v) < 1e7 else float(repr(v))
    assert F32(r) == v
    return r


def enc_fa(a):
    return [enc_f(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def spec_range(scheme, bits, signed, rng_kind):
    if not signed:
        return 0, (1 << bits) - 1
    if scheme == "symmetric" and rng_kind == "restricted":
        return -((1 << (bits - 1)) - 1), (1 << (bits - 1)) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def torch_args(scheme, bits, signed, rng_kind, per_channel=False):
    qmin, qmax = spec_range(scheme, bits, signed, rng_kind)
    dtype = torch.qint8 if signed else torch.quint8
    if per_channel:
        qs = torch.per_channel_symmetric if scheme == "symmetric" else torch.per_channel_affine
    else:
        qs = torch.per_tensor_symmetric if scheme == "symmetric" else torch.per_tensor_affine
    # default 8-bit ranges are left to torch (passing quant_min/max makes torch treat them as a
    # custom range, e.g. symmetric quint8 then gets zero point 127 instead of 128)
    default = bits == 8 and (not signed or not (scheme == "symmetric" and rng_kind == "restricted"))
    kw = {} if default else dict(quant_min=qmin, quant_max=qmax)
    return dict(dtype=dtype, qscheme=qs, **kw)


def spec_of(scheme, bits, signed, rng_kind, granularity="per-tensor"):
    return {"scheme": scheme, "bits": bits, "signed": signed, "range": rng_kind,
            "granularity": granularity, "formula": "pytorch"}


SPECS = [
    ("asymmetric", 8, False, "full"),
    ("symmetric", 8, True, "full"),
    ("symmetric", 8, True, "restricted"),
    ("asymmetric", 8, True, "full"),
    ("symmetric", 8, False, "full"),
    ("asymmetric", 4, False, "full"),
    ("symmetric", 4, True, "restricted"),
]


def label(scheme, bits, signed, rng_kind):
    return f"{scheme} {'int' if signed else 'uint'}{bits}{' ' + rng_kind if scheme == 'symmetric' and signed else ''}"


SEQS = {}


def seq_ref(name, seq):
    """Stores a batch sequence once; cases refer to it by name."""
    if name not in SEQS:
        SEQS[name] = [batch(b) for b in seq]
    return name


def batch(x, shape=None):
    x = np.asarray(x, dtype=np.float32)
    return {"x": enc_fa(x), "shape": list(shape if shape is not None else x.shape)}


def run(ob, batches):
    for b in batches:
        ob(torch.from_numpy(np.asarray(b, dtype=np.float32)))
    s, z = ob.calculate_qparams()
    return s.reshape(-1).numpy().astype(np.float32), z.reshape(-1).numpy().astype(np.int64)


# ------------------------------------------------------------------------------------------------
def gen_minmax():
    cases = []
    seqs = {
        "one batch": [RNG.standard_normal(257).astype(F32) * 3],
        "three batches of different sizes": [RNG.standard_normal(n).astype(F32) * s + o
                                             for n, s, o in [(100, 1.0, 0.5), (7, 4.0, -1.0), (1000, 0.5, 2.0)]],
        "positive data": [np.abs(RNG.standard_normal(n)).astype(F32) * 2 + 0.25 for n in (64, 33)],
        "growing then shrinking range": [RNG.uniform(-a, b, 200).astype(F32) for a, b in [(1, 1), (3, 5), (0.5, 0.1), (6, 2)]],
    }
    for scheme, bits, signed, rk in SPECS:
        for sname, seq in seqs.items():
            for cls, extra, opts in [(MinMaxObserver, {}, {}), (MovingAverageMinMaxObserver, {}, {}),
                                     (MovingAverageMinMaxObserver, {"averaging_constant": 0.3}, {"averagingConstant": 0.3})]:
                ob = cls(**torch_args(scheme, bits, signed, rk), **extra)
                s, z = run(ob, seq)
                cases.append({"name": f"{cls.__name__} {label(scheme, bits, signed, rk)} {sname}{' c=0.3' if extra else ''}",
                              "observer": cls.__name__, "spec": spec_of(scheme, bits, signed, rk), "options": opts,
                              "batches": seq_ref("minmax " + sname, seq), "expectedScale": enc_fa(s), "expectedZeroPoint": [int(v) for v in z],
                              "expectedMin": enc_fa([ob.min_val.item()]), "expectedMax": enc_fa([ob.max_val.item()])})
    # per channel
    shapes = [([4, 5, 3], 0), ([4, 5, 3], 1), ([4, 5, 3], 2), ([6, 8], 1), ([6, 8], -1)]
    pc_seqs = {}
    for shape, axis in shapes:
        seq = []
        for k in range(3):
            sh = list(shape)
            # other dims may change between batches; the channel dim may not
            ax = axis % len(shape)
            sh[0 if ax != 0 else -1] += k
            seq.append((RNG.standard_normal(sh) * (1 + k) + 0.3 * k).astype(F32))
        pc_seqs[(tuple(shape), axis)] = seq
    for scheme, bits, signed, rk in SPECS[:4] + [SPECS[6]]:
        for shape, axis in shapes:
            seq = pc_seqs[(tuple(shape), axis)]
            for cls, extra, opts in [(PerChannelMinMaxObserver, {}, {}), (MovingAveragePerChannelMinMaxObserver, {}, {}),
                                     (MovingAveragePerChannelMinMaxObserver, {"averaging_constant": 0.25}, {"averagingConstant": 0.25})]:
                ob = cls(ch_axis=axis, **torch_args(scheme, bits, signed, rk, per_channel=True), **extra)
                s, z = run(ob, seq)
                cases.append({"name": f"{cls.__name__} {label(scheme, bits, signed, rk)} shape {shape} axis {axis}{' c=0.25' if extra else ''}",
                              "observer": cls.__name__, "spec": spec_of(scheme, bits, signed, rk, {"axis": axis}),
                              "options": {**opts, "axis": axis},
                              "batches": seq_ref(f"per-channel {shape} axis {axis}", seq), "expectedScale": enc_fa(s), "expectedZeroPoint": [int(v) for v in z],
                              "expectedMin": enc_fa(ob.min_val.numpy()), "expectedMax": enc_fa(ob.max_val.numpy())})
    return cases


# ------------------------------------------------------------------------------------------------
def clipped(x, lo, hi):
    """x strictly inside (lo, hi), then the integer extremes lo and hi themselves included."""
    x = np.asarray(x, dtype=np.float64)
    eps = (hi - lo) * 1e-6
    x = np.clip(x, lo + eps, hi - eps).astype(F32)
    x[0] = lo
    x[1] = hi
    RNG.shuffle(x)
    return x


def gen_histogram():
    cases = []
    n = 4000
    seqs = {
        "gaussian [-4, 4]": [clipped(RNG.standard_normal(n) * 1.2, -4, 4)],
        "gaussian with outliers at +-20": [clipped(np.concatenate([RNG.standard_normal(8000), [19.5, -19.5, 15.0]]), -20, 20)],
        "laplace [-8, 8]": [clipped(RNG.laplace(0, 1.0, n), -8, 8)],
        "uniform [-2, 6]": [clipped(RNG.uniform(-2, 6, n), -2, 6)],
        "range grows: [-4, 4], [-6, 9], [-2, 3]": [clipped(RNG.standard_normal(n), -4, 4),
                                                   clipped(RNG.standard_normal(n) * 3 + 1, -6, 9),
                                                   clipped(RNG.standard_normal(n), -2, 3)],
        "relu-like: [0, 4] then [0, 10]": [clipped(np.maximum(RNG.standard_normal(n) * 1.5, 0), 0, 4),
                                           clipped(np.maximum(RNG.standard_normal(n) * 3, 0), 0, 10)],
        "range grows on the low side: [-1, 3], [-5, 2], [-1, 1]": [clipped(RNG.standard_normal(n), -1, 3),
                                                                  clipped(RNG.standard_normal(n) * 2 - 1, -5, 2),
                                                                  clipped(RNG.standard_normal(n), -1, 1)],
        "same range twice: [-8, 8], [-8, 8]": [clipped(RNG.standard_normal(n) * 2, -8, 8), clipped(RNG.laplace(0, 1.5, n), -8, 8)],
    }
    for scheme, bits, signed, rk in SPECS[:4]:
        for sname, seq in seqs.items():
            ob = HistogramObserver(**torch_args(scheme, bits, signed, rk))
            for b in seq:
                ob(torch.from_numpy(b))
                mn, mx = ob.min_val.item(), ob.max_val.item()
                assert mn == int(mn) and mx == int(mx), f"histogram range not integer: {mn} {mx} ({sname})"
            s, z = ob.calculate_qparams()
            new_min, new_max = ob._non_linear_param_search()
            cases.append({"name": f"HistogramObserver {label(scheme, bits, signed, rk)} {sname}",
                          "observer": "HistogramObserver", "spec": spec_of(scheme, bits, signed, rk), "options": {},
                          "batches": seq_ref("histogram " + sname, seq),
                          "expectedScale": enc_fa(s.reshape(-1).numpy()), "expectedZeroPoint": [int(v) for v in z.reshape(-1)],
                          "expectedSearchMin": enc_f(new_min.item()), "expectedSearchMax": enc_f(new_max.item()),
                          "expectedHistMin": enc_f(ob.min_val.item()), "expectedHistMax": enc_f(ob.max_val.item()),
                          "expectedHistogram": [float(v) for v in ob.histogram.numpy()]})
    return cases


class HistogramObserverFloatRange(HistogramObserver):
    """torch 1.13's HistogramObserver.forward, verbatim but for torch.histc's range: the float
    min/max instead of int(min) / int(max) (the fix later torch versions made). Everything else
    (_adjust_min_max, _combine_histograms, the search) is torch's own code."""

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach()
        min_val = self.min_val
        max_val = self.max_val
        same_values = min_val.item() == max_val.item()
        is_uninitialized = min_val == float("inf") and max_val == float("-inf")
        if is_uninitialized or same_values:
            min_val, max_val = torch.aminmax(x)
            self.min_val.resize_(min_val.shape)
            self.min_val.copy_(min_val)
            self.max_val.resize_(max_val.shape)
            self.max_val.copy_(max_val)
            torch.histc(x, self.bins, min=min_val.item(), max=max_val.item(), out=self.histogram)
        else:
            new_min, new_max = torch.aminmax(x)
            combined_min = torch.min(new_min, min_val)
            combined_max = torch.max(new_max, max_val)
            combined_min, combined_max, downsample_rate, start_idx = self._adjust_min_max(
                combined_min, combined_max, self.upsample_rate)
            combined_histogram = torch.histc(x, self.bins, min=combined_min.item(), max=combined_max.item())
            if combined_min == min_val and combined_max == max_val:
                combined_histogram += self.histogram
            else:
                combined_histogram = self._combine_histograms(
                    combined_histogram, self.histogram, self.upsample_rate, downsample_rate, start_idx, self.bins)
            self.histogram.detach_().resize_(combined_histogram.shape)
            self.histogram.copy_(combined_histogram)
            self.min_val.detach_().resize_(combined_min.shape)
            self.min_val.copy_(combined_min)
            self.max_val.detach_().resize_(combined_max.shape)
            self.max_val.copy_(combined_max)
        return x_orig


def gen_histogram_float_range():
    """General data (non-integer ranges, range growth with a relaxed max) against torch 1.13's
    HistogramObserver with the histc range fix (HistogramObserverFloatRange)."""
    cases = []
    n = 3000
    seqs = {
        "gaussian": [RNG.standard_normal(n).astype(F32) * 1.3 + 0.1],
        "gaussian with a few outliers": [np.concatenate([RNG.standard_normal(n), [9.7, -7.3]]).astype(F32)],
        "range grows three times": [(RNG.standard_normal(n) * s + o).astype(F32) for s, o in [(0.7, 0.2), (1.9, -0.4), (1.0, 1.5), (3.3, 0.0)]],
        "relu activations, growing": [np.maximum(RNG.standard_normal(n) * s, 0).astype(F32) for s in (0.8, 1.7, 1.2)],
        "range grows on both sides": [RNG.uniform(-a, b, n).astype(F32) for a, b in [(0.3, 0.9), (2.2, 0.5), (0.1, 4.1)]],
    }
    for scheme, bits, signed, rk in SPECS[:4]:
        for sname, seq in seqs.items():
            ob = HistogramObserverFloatRange(**torch_args(scheme, bits, signed, rk))
            for b in seq:
                ob(torch.from_numpy(b))
            s, z = ob.calculate_qparams()
            new_min, new_max = ob._non_linear_param_search()
            cases.append({"name": f"HistogramObserver (histc float range) {label(scheme, bits, signed, rk)} {sname}",
                          "observer": "HistogramObserver", "spec": spec_of(scheme, bits, signed, rk), "options": {},
                          "batches": seq_ref("histogram-float " + sname, seq),
                          "expectedScale": enc_fa(s.reshape(-1).numpy()), "expectedZeroPoint": [int(v) for v in z.reshape(-1)],
                          "expectedSearchMin": enc_f(new_min.item()), "expectedSearchMax": enc_f(new_max.item()),
                          "expectedHistMin": enc_f(ob.min_val.item()), "expectedHistMax": enc_f(ob.max_val.item()),
                          "expectedHistogram": [float(v) for v in ob.histogram.numpy()]})
    return cases


# ------------------------------------------------------------------------------------------------
def gen_histc():
    cases = []
    for lo, hi, bins in [(-1.0, 1.0, 2048), (-3.7e-3, 1.2e-2, 2048), (0.0, 5.3, 256), (-6.0, 10.0, 7), (0.1, 0.7, 100),
                         (-20.0, 20.0, 2048), (2.0, 2.0000005, 3)]:
        lo32, hi32 = F32(lo), F32(hi)
        vals = []
        w32 = F32((hi32 - lo32) / F32(bins))
        for j in range(bins + 1):
            for e in (F32(lo32 + F32(j) * w32), F32(float(lo32) + j * (float(hi32) - float(lo32)) / bins)):
                vals += [e, np.nextafter(e, F32(-np.inf)), np.nextafter(e, F32(np.inf)),
                         np.nextafter(np.nextafter(e, F32(np.inf)), F32(np.inf))]
        vals += list(RNG.uniform(lo, hi, 500).astype(F32))
        x = np.array(vals, dtype=F32)
        x = x[(x >= lo32) & (x <= hi32)]
        h = torch.histc(torch.from_numpy(x), bins, min=float(lo32), max=float(hi32)).numpy()
        assert int(h.sum()) == x.size
        cases.append({"name": f"histc [{lo}, {hi}] {bins} bins, values on and around every edge",
                      "x": enc_fa(x), "lo": enc_f(lo32), "hi": enc_f(hi32), "bins": bins,
                      "expected": [int(v) for v in h]})
    return cases


def main():
    doc = {"meta": {"generator": "scripts/golden/gen_observers.py", "python": sys.version.split()[0],
                    "torch": torch.__version__, "numpy": np.__version__, "seed": SEED},
           "minmax": gen_minmax(), "histogram": gen_histogram() + gen_histogram_float_range(), "histc": gen_histc()}
    doc["sequences"] = SEQS
    for k in ("minmax", "histogram", "histc"):
        names = [c["name"] for c in doc[k]]
        assert len(names) == len(set(names)), k
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"{OUT}: minmax {len(doc['minmax'])}, histogram {len(doc['histogram'])}, histc {len(doc['histc'])} cases, "
          f"{os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
