#!/usr/bin/python3
"""Golden data for quantization-aware training: test/golden/qat.json.

Run with Debian's python (torch 1.13 + numpy):  /usr/bin/python3 scripts/golden/gen_qat.py

Sources of truth (torch 1.13, CPU):
  * torch.fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine: output, and x.grad
    after backward(dy) (the straight-through estimator: dy * mask).
  * torch.ao.quantization.FakeQuantize with MovingAverageMinMaxObserver / MinMaxObserver /
    MovingAveragePerChannelMinMaxObserver / PerChannelMinMaxObserver over several batches: scale
    and zero point after each batch, the output and x.grad, with the observer or the fake-quant
    switched off for some batches.
  * torch._fake_quantize_learnable_per_tensor_affine / _per_channel_affine (LSQ): output, and the
    gradients for x, scale and zero point, with grad_factor 1 and with
    _LearnableFakeQuantize(use_grad_scaling=True)'s 1 / sqrt(numel * quant_max). Each element's
    contribution to the scale and zero-point gradients is also recorded (the op run on that one
    element with the same grad_factor), so the per-element arithmetic is checked bit for bit and
    only the final sum (torch: a float32 cascade sum) within a bound.
  * _LearnableFakeQuantize itself: qparams from its observer on the first batch, then learning.

The script checks every torch result against the formulas quantkit implements (lsq_ref below) and
aborts on any difference, so the file holds the contract as well as torch's outputs.
"""
import json
import os
import subprocess
import sys
import warnings

# PyTorch's scalar ("default") kernels: its AVX2 / AVX-512 builds of the learnable ops' backward
# are compiled with floating-point contraction, so x * inv_scale + zero_point and
# xfq - x become fused multiply-adds there and the per-element gradients (and, near rounding ties,
# the backward's clip decision) depend on the CPU. The scalar build is plain float32 arithmetic:
# the contract. check_capability() measures how far the vectorised build is from it.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")

import numpy as np
import torch
from torch.ao.quantization import (FakeQuantize, MinMaxObserver, MovingAverageMinMaxObserver,
                                   MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver)
from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize

warnings.filterwarnings("ignore")
torch.manual_seed(0)
torch.set_num_threads(1)
SEED = 20260115
RNG = np.random.default_rng(SEED)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "golden", "qat.json")
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


def same_bits(a, b):
    a = np.asarray(a, dtype=np.float32).ravel()
    b = np.asarray(b, dtype=np.float32).ravel()
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


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
    # default 8-bit ranges are left to torch (a passed quant_min/max is a "custom range": symmetric
    # quint8 would then get zero point 127 instead of 128)
    default = bits == 8 and (not signed or not (scheme == "symmetric" and rng_kind == "restricted"))
    kw = {} if default else dict(quant_min=qmin, quant_max=qmax)
    return dict(dtype=dtype, qscheme=qs, **kw)


def spec_of(scheme, bits, signed, rng_kind, granularity="per-tensor"):
    return {"scheme": scheme, "bits": bits, "signed": signed, "range": rng_kind,
            "granularity": granularity, "formula": "pytorch"}


def rint(v):
    return np.rint(np.asarray(v, dtype=np.float64))  # half to even, as std::nearbyint


# ---- the formulas quantkit implements (lib/nn/lsq.ts), in numpy float32 -----------------------------
def fq_ref(x, s, z, qmin, qmax):
    """fake_quantize_per_*_affine: y, mask (s, z broadcast to x)."""
    x = np.asarray(x, F32)
    inv = (F32(1) / np.asarray(s, F32)).astype(F32)
    v = (x * inv).astype(F32)
    c = rint(v) + z
    y = ((np.clip(c, qmin, qmax) - z).astype(F32) * np.asarray(s, F32)).astype(F32)
    return y, ((c >= qmin) & (c <= qmax))


def zp_forward(z, qmin, qmax):
    """Both learnable ops, forward: round half to even, then clamp."""
    return np.clip(rint(np.asarray(z, F32)), qmin, qmax)


def zp_backward_per_tensor(z, qmin, qmax):
    """_fake_quantize_learnable_per_tensor_affine_backward: float32 z + 0.5, clamp, truncate."""
    v = np.clip((np.asarray(z, F32) + F32(0.5)).astype(F32), qmin, qmax)
    return np.trunc(v)


def lsq_ref(x, dy, s, zb, qmin, qmax, gf):
    """Per-element dx, dscale, dzero (float32) of the learnable ops' backward; s, zb broadcast to x."""
    x = np.asarray(x, F32)
    dy = np.asarray(dy, F32)
    s = np.broadcast_to(np.asarray(s, F32), x.shape)
    zb = np.broadcast_to(np.asarray(zb, F32), x.shape)
    gf = F32(gf)
    inv = (F32(1) / s).astype(F32)
    q = rint((zb + (x * inv).astype(F32)).astype(F32))
    small = q < qmin
    big = q > qmax
    inr = ~(small | big)
    dx = (dy * inr.astype(F32)).astype(F32)
    xfq = ((np.clip(q, qmin, qmax) - zb).astype(F32) * s).astype(F32)
    ds_in = ((((dy * (xfq - x).astype(F32)).astype(F32)) * inv).astype(F32) * gf).astype(F32)
    ds_small = ((dy * (F32(qmin) - zb).astype(F32)).astype(F32) * gf).astype(F32)
    ds_big = ((dy * (F32(qmax) - zb).astype(F32)).astype(F32) * gf).astype(F32)
    ds = np.where(inr, ds_in, np.where(small, ds_small, ds_big)).astype(F32)
    dz_out = (((-dy) * s).astype(F32) * gf).astype(F32)
    dz = np.where(inr, F32(0), dz_out).astype(F32)
    return dx, ds, dz


# ------------------------------------------------------------------------------------------------
def tie_values(s, z, qmin, qmax, n_extra=0):
    """x on rounding ties ((k + 0.5) * s and float32 neighbours), at the clip edges (qmin - z) * s,
    (qmax - z) * s and half a step beyond, and far outside the range."""
    s = F32(s)
    out = []
    for k in [qmin - z - 2, qmin - z - 1, qmin - z, qmin - z + 1, -1, 0, 1, 2, qmax - z - 1, qmax - z, qmax - z + 1]:
        t = F32((k + 0.5) * np.float64(s))
        out += [t, np.nextafter(t, F32(np.inf)), np.nextafter(t, F32(-np.inf))]
        e = F32(k * np.float64(s))
        out += [e]
    lo, hi = F32((qmin - z) * np.float64(s)), F32((qmax - z) * np.float64(s))
    out += [lo, hi, np.nextafter(lo, F32(-np.inf)), np.nextafter(hi, F32(np.inf)),
            F32(lo - 0.5 * s), F32(hi + 0.5 * s), F32(lo - 3 * s), F32(hi + 7 * s), F32(-1e4 * s), F32(1e4 * s), F32(0), F32(-0.0)]
    return np.array(out, dtype=F32)


def rand_dy(n):
    dy = RNG.standard_normal(n).astype(F32)
    dy[::5] = -np.abs(dy[::5])  # negative dy on clipped elements: dx is -0
    return dy


# ---- fake_quantize_per_tensor_affine / per_channel_affine ------------------------------------------
OP_SPECS = [
    ("asymmetric", 8, False, "full"),
    ("symmetric", 8, True, "restricted"),
    ("symmetric", 8, True, "full"),
    ("asymmetric", 4, False, "full"),
    ("symmetric", 4, True, "restricted"),
    ("symmetric", 3, True, "restricted"),
    ("symmetric", 2, True, "restricted"),
    ("asymmetric", 2, False, "full"),
]


def gen_ops():
    cases = []
    for scheme, bits, signed, rk in OP_SPECS:
        qmin, qmax = spec_range(scheme, bits, signed, rk)
        # per tensor
        for s in [F32(0.0371), F32(1 / 3), F32(2.5e-3)]:
            z = 0 if scheme == "symmetric" and signed else int(RNG.integers(qmin, qmax + 1))
            x = np.concatenate([tie_values(s, z, qmin, qmax), (RNG.standard_normal(24) * s * (qmax - qmin) / 3).astype(F32)])
            B = 4 if len(x) % 4 == 0 else 1
            x = x[: len(x) - len(x) % B]
            dy = rand_dy(len(x))
            X = torch.tensor(x, requires_grad=True)
            Y = torch.fake_quantize_per_tensor_affine(X, float(s), z, qmin, qmax)
            Y.backward(torch.tensor(dy))
            y, m = fq_ref(x, s, z, qmin, qmax)
            assert same_bits(Y.detach().numpy(), y), "per-tensor forward"
            assert same_bits(X.grad.numpy(), (dy * m.astype(F32)).astype(F32)), "per-tensor STE"
            cases.append({"name": f"per-tensor {scheme} {'int' if signed else 'uint'}{bits} {rk} scale {s} zp {z}", "op": "per-tensor",
                          "spec": spec_of(scheme, bits, signed, rk), "shape": [B, len(x) // B], "x": enc_fa(x), "dy": enc_fa(dy),
                          "scale": enc_fa([s]), "zeroPoint": [z], "y": enc_fa(Y.detach().numpy()), "dx": enc_fa(X.grad.numpy())})
        # per channel, axis 0 and 1 of [B, F]
        for axis in (0, 1):
            B, Fn = (5, 7)
            C = B if axis == 0 else Fn
            s = (RNG.uniform(0.01, 0.2, C)).astype(F32)
            z = np.zeros(C, np.int32) if scheme == "symmetric" and signed else RNG.integers(qmin, qmax + 1, C).astype(np.int32)
            x = (RNG.standard_normal((B, Fn)) * (qmax - qmin) / 3).astype(F32)
            sb = s[:, None] if axis == 0 else s[None, :]
            x = (x * sb).astype(F32)
            # a few ties per channel
            for c in range(C):
                t = F32((1.5) * np.float64(s[c]))
                if axis == 0:
                    x[c, 0] = t
                    x[c, 1] = np.nextafter(t, F32(1))
                else:
                    x[0, c] = t
                    x[1, c] = np.nextafter(t, F32(-1))
            dy = rand_dy(B * Fn).reshape(B, Fn)
            X = torch.tensor(x, requires_grad=True)
            Y = torch.fake_quantize_per_channel_affine(X, torch.tensor(s), torch.tensor(z), axis, qmin, qmax)
            Y.backward(torch.tensor(dy))
            zb = z[:, None] if axis == 0 else z[None, :]
            y, m = fq_ref(x, sb, zb, qmin, qmax)
            assert same_bits(Y.detach().numpy(), y), "per-channel forward"
            assert same_bits(X.grad.numpy(), (dy * m.astype(F32)).astype(F32)), "per-channel STE"
            cases.append({"name": f"per-channel axis {axis} {scheme} {'int' if signed else 'uint'}{bits} {rk}", "op": "per-channel",
                          "spec": spec_of(scheme, bits, signed, rk, {"axis": axis}), "shape": [B, Fn], "x": enc_fa(x), "dy": enc_fa(dy),
                          "scale": enc_fa(s), "zeroPoint": [int(v) for v in z], "y": enc_fa(Y.detach().numpy()), "dx": enc_fa(X.grad.numpy())})
    return cases


# ---- the FakeQuantize module -------------------------------------------------------------------------
def gen_module():
    cases = []
    Bn, Fn = 6, 5

    def batches(kind, n=5):
        out = []
        for k in range(n):
            if kind == "drift":
                x = RNG.standard_normal((Bn, Fn)) * (1 + 0.5 * k) + 0.3 * k
            elif kind == "relu":
                x = np.maximum(RNG.standard_normal((Bn, Fn)) * (2 - 0.3 * k), 0)
            else:  # columns on different scales (per feature)
                x = RNG.standard_normal((Bn, Fn)) * np.array([0.1, 1, 3, 0.5, 8])[None, :] * (1 + 0.2 * k)
            out.append(x.astype(F32))
        return out

    # per batch: which switches are on ([observer, fakeQuant]); eval mode = observer off
    SCHEDULES = {
        "all on": [(1, 1)] * 5,
        "observer off for batches 3-4 (eval mode)": [(1, 1), (1, 1), (1, 1), (0, 1), (0, 1)],
        "fake-quant off for batch 2, observer off for batch 4": [(1, 1), (1, 0), (1, 1), (0, 1), (1, 1)],
    }
    configs = [
        # observer, averaging constant, scheme, bits, signed, range, granularity axis or None, data
        ("moving-average", None, "asymmetric", 8, False, "full", None, "drift"),
        ("moving-average", None, "symmetric", 8, True, "restricted", None, "drift"),
        ("moving-average", None, "symmetric", 8, False, "full", None, "relu"),
        ("moving-average", 0.25, "asymmetric", 4, False, "full", None, "relu"),
        ("moving-average", 1.0, "symmetric", 4, True, "restricted", None, "drift"),
        ("minmax", None, "asymmetric", 8, False, "full", None, "drift"),
        ("minmax", None, "asymmetric", 3, False, "full", None, "relu"),
        ("moving-average", None, "symmetric", 8, True, "restricted", 0, "drift"),
        ("moving-average", 1.0, "symmetric", 4, True, "restricted", 0, "columns"),
        ("moving-average", None, "asymmetric", 8, False, "full", 1, "columns"),
        ("minmax", None, "symmetric", 2, True, "restricted", 1, "columns"),
        ("minmax", None, "asymmetric", 8, True, "full", 0, "drift"),
    ]
    for ci, (obs, c, scheme, bits, signed, rk, axis, data) in enumerate(configs):
        for sname, sched in SCHEDULES.items():
            if sname != "all on" and ci % 3 != 0:
                continue
            per_channel = axis is not None
            if per_channel:
                cls = MovingAveragePerChannelMinMaxObserver if obs == "moving-average" else PerChannelMinMaxObserver
            else:
                cls = MovingAverageMinMaxObserver if obs == "moving-average" else MinMaxObserver
            kw = torch_args(scheme, bits, signed, rk, per_channel)
            if per_channel:
                kw["ch_axis"] = axis
            if c is not None:
                kw["averaging_constant"] = c
            fq = FakeQuantize(observer=cls, **kw)
            qmin, qmax = fq.activation_post_process.quant_min, fq.activation_post_process.quant_max
            assert (qmin, qmax) == spec_range(scheme, bits, signed, rk)
            steps = []
            for x, (o_on, f_on) in zip(batches(data), sched):
                fq.enable_observer(bool(o_on))
                fq.enable_fake_quant(bool(f_on))
                dy = rand_dy(x.size).reshape(x.shape)
                X = torch.tensor(x, requires_grad=True)
                Y = fq(X)
                Y.backward(torch.tensor(dy))
                sc = fq.scale.detach().numpy().astype(F32).ravel()
                zp = fq.zero_point.detach().numpy().astype(np.int64).ravel()
                if f_on:
                    bs = sc[:, None] if axis == 0 else sc[None, :] if axis == 1 else sc[0]
                    bz = zp[:, None] if axis == 0 else zp[None, :] if axis == 1 else zp[0]
                    y, m = fq_ref(x, bs, bz, qmin, qmax)
                    assert same_bits(Y.detach().numpy(), y), "module forward"
                    assert same_bits(X.grad.numpy(), (dy * m.astype(F32)).astype(F32)), "module STE"
                steps.append({"x": enc_fa(x), "dy": enc_fa(dy), "observer": bool(o_on), "fakeQuant": bool(f_on),
                              "scale": enc_fa(sc), "zeroPoint": [int(v) for v in zp],
                              "y": enc_fa(Y.detach().numpy()), "dx": enc_fa(X.grad.numpy())})
            g = "per-tensor" if axis is None else {"axis": axis}
            opts = {"observer": obs}
            if c is not None:
                opts["averagingConstant"] = c
            cases.append({"name": f"FakeQuantize {obs}{'' if c is None else f' c={c}'} {scheme} {'int' if signed else 'uint'}{bits} {rk} {g if axis is None else f'axis {axis}'} {data}: {sname}",
                          "spec": spec_of(scheme, bits, signed, rk, g), "options": opts, "shape": [Bn, Fn], "steps": steps})
    return cases


# ---- the learnable (LSQ) ops -----------------------------------------------------------------------
def learnable_call(x, dy, s, z, qmin, qmax, gf, axis):
    X = torch.tensor(x, requires_grad=True)
    S = torch.tensor(np.asarray(s, F32).reshape(-1), requires_grad=True)
    Z = torch.tensor(np.asarray(z, F32).reshape(-1), requires_grad=True)
    if axis is None:
        Y = torch._fake_quantize_learnable_per_tensor_affine(X, S, Z, qmin, qmax, gf)
    else:
        Y = torch._fake_quantize_learnable_per_channel_affine(X, S, Z, axis, qmin, qmax, gf)
    Y.backward(torch.tensor(dy))
    return Y.detach().numpy(), X.grad.numpy(), S.grad.numpy().astype(F32), Z.grad.numpy().astype(F32)


def check_learnable(x, dy, s, z, qmin, qmax, gf, axis):
    """torch's op on the whole tensor, each element alone, and the reference; returns the case data."""
    y, dx, ds, dz = learnable_call(x, dy, s, z, qmin, qmax, gf, axis)
    s = np.asarray(s, F32).reshape(-1)
    z = np.asarray(z, F32).reshape(-1)
    if axis is None:
        zf = zp_forward(z, qmin, qmax)[0]
        zb = zp_backward_per_tensor(z, qmin, qmax)[0]
        sb, zfb, zbb = s[0], zf, zb
    else:
        zf = zp_forward(z, qmin, qmax)
        zb = zf  # the per-channel backward rounds like the forward
        shp = [1] * x.ndim
        shp[axis] = -1
        sb, zfb, zbb = s.reshape(shp), zf.reshape(shp), zb.reshape(shp)
    yr, _ = fq_ref(x, sb, zfb, qmin, qmax)
    assert same_bits(y, yr), "learnable forward"
    dxr, dsr, dzr = lsq_ref(x, dy, sb, zbb, qmin, qmax, gf)
    assert same_bits(dx, dxr), "learnable dx"
    # each element alone: its contribution to dscale / dzero, bit for bit
    ts, tz = per_element(x, dy, s, z, qmin, qmax, gf, axis)
    # (a one-element sum turns a -0 term into +0: compare the terms + 0)
    assert same_bits(ts, dsr + F32(0)), "learnable dscale terms"
    assert same_bits(tz, dzr + F32(0)), "learnable dzero terms"
    # the sums: float64 sum of the float32 terms, rounded once, vs torch's float32 reduction
    red = tuple(i for i in range(x.ndim) if i != axis) if axis is not None else None
    s64 = ts.astype(np.float64).sum(axis=red)
    z64 = tz.astype(np.float64).sum(axis=red)
    abs_s = np.abs(ts.astype(np.float64)).sum(axis=red)
    abs_z = np.abs(tz.astype(np.float64)).sum(axis=red)
    assert np.all(np.abs(F32(s64) - ds) <= 2.0 ** -20 * abs_s + 1e-30), "dscale sum bound"
    assert np.all(np.abs(F32(z64) - dz) <= 2.0 ** -20 * abs_z + 1e-30), "dzero sum bound"
    return {"y": enc_fa(y), "dx": enc_fa(dx), "dScale": enc_fa(ds), "dZeroPoint": enc_fa(dz),
            "dScaleTerms": enc_fa(ts), "dZeroPointTerms": enc_fa(tz),
            "forwardZeroPoint": [int(v) for v in np.atleast_1d(zf)], "backwardZeroPoint": [int(v) for v in np.atleast_1d(zb)]}


LSQ_SPECS = [
    ("asymmetric", 8, False, "full"),
    ("symmetric", 8, True, "restricted"),
    ("asymmetric", 8, True, "full"),
    ("asymmetric", 4, False, "full"),
    ("symmetric", 4, True, "restricted"),
    ("symmetric", 2, True, "restricted"),
    ("asymmetric", 3, False, "full"),
]


def gen_learnable():
    cases = []
    found = {"backward zp differs": 0, "backward mask differs": 0}
    for scheme, bits, signed, rk in LSQ_SPECS:
        qmin, qmax = spec_range(scheme, bits, signed, rk)
        sym = scheme == "symmetric"
        # per tensor: several zero points, among them .5 ties and values outside the range
        zps = [0.0] if sym else [float(qmin + (qmax - qmin) // 3), qmin + 2.5, qmin + 3.5, qmin + 1.4999999, qmin + 0.6,
                                 float(qmax) + 0.7, float(qmin) - 1.3, (qmin + qmax) / 2 + 0.5]
        if not sym and qmin < 0:
            zps += [-0.7, -1.5]
        for z in zps:
            s = F32(RNG.uniform(0.005, 0.3))
            zr = int(zp_forward([z], qmin, qmax)[0])
            x = np.concatenate([tie_values(s, zr, qmin, qmax), (RNG.standard_normal(12) * s * (qmax - qmin) / 3 + (qmin + qmax) / 2 * s - zr * s).astype(F32)])
            x = x[: len(x) - len(x) % 2]
            x = x.reshape(2, -1)
            dy = rand_dy(x.size).reshape(x.shape)
            n = x.size
            for gs in (False, True):
                gf = 1.0 / (n * qmax) ** 0.5 if gs else 1.0
                d = check_learnable(x, dy, [s], [z], qmin, qmax, gf, None)
                if d["forwardZeroPoint"] != d["backwardZeroPoint"]:
                    found["backward zp differs"] += 1
                zb = d["backwardZeroPoint"][0]
                _, mf = fq_ref(x, s, d["forwardZeroPoint"][0], qmin, qmax)
                q = rint((F32(zb) + (x * (F32(1) / s)).astype(F32)).astype(F32))
                if not np.array_equal(mf, (q >= qmin) & (q <= qmax)):
                    found["backward mask differs"] += 1
                cases.append({"name": f"per-tensor {scheme} {'int' if signed else 'uint'}{bits} {rk} zp {z}{' grad scaling' if gs else ''}",
                              "spec": spec_of(scheme, bits, signed, rk), "axis": None, "qmin": qmin, "qmax": qmax, "shape": list(x.shape), "x": enc_fa(x), "dy": enc_fa(dy),
                              "scale": enc_fa([s]), "zeroPoint": enc_fa([z]), "gradFactor": enc_f(gf), "gradScaling": gs, **d})
        # per channel, axis 0 and 1
        for axis in (0, 1):
            B, Fn = (4, 9) if axis == 0 else (9, 4)
            C = B if axis == 0 else Fn
            s = RNG.uniform(0.01, 0.3, C).astype(F32)
            if sym:
                z = np.zeros(C, F32)
            else:
                z = np.array([qmin + 2.5, qmin + 3.5, float(qmax) + 0.6, qmin + 1.3][:C], F32)
            x = (RNG.standard_normal((B, Fn)) * (qmax - qmin) / 3).astype(F32)
            zr = zp_forward(z, qmin, qmax)
            for c in range(C):
                vals = tie_values(s[c], int(zr[c]), qmin, qmax)
                sel = RNG.choice(len(vals), size=(Fn if axis == 0 else B) - 2, replace=False)
                v = np.concatenate([vals[sel], (RNG.standard_normal(2) * s[c] * 3).astype(F32)])
                if axis == 0:
                    x[c, :] = v
                else:
                    x[:, c] = v
            dy = rand_dy(x.size).reshape(x.shape)
            for gs in (False, True):
                gf = 1.0 / (x.size * qmax) ** 0.5 if gs else 1.0
                d = check_learnable(x, dy, s, z, qmin, qmax, gf, axis)
                cases.append({"name": f"per-channel axis {axis} {scheme} {'int' if signed else 'uint'}{bits} {rk}{' grad scaling' if gs else ''}",
                              "spec": spec_of(scheme, bits, signed, rk, {"axis": axis}), "axis": axis, "qmin": qmin, "qmax": qmax, "shape": list(x.shape), "x": enc_fa(x), "dy": enc_fa(dy),
                              "scale": enc_fa(s), "zeroPoint": enc_fa(z), "gradFactor": enc_f(gf), "gradScaling": gs, **d})
    # the behaviours the contract documents must be present in the data
    assert found["backward zp differs"] > 0 and found["backward mask differs"] > 0, found
    return cases, found


def gen_learnable_module():
    """_LearnableFakeQuantize: qparams from a MinMax observer on the first batch, then learned."""
    cases = []
    for scheme, bits, signed, rk, axis in [("asymmetric", 8, False, "full", None), ("asymmetric", 4, False, "full", None),
                                           ("symmetric", 4, True, "restricted", 0), ("symmetric", 8, True, "restricted", 0),
                                           ("asymmetric", 3, False, "full", 1)]:
        qmin, qmax = spec_range(scheme, bits, signed, rk)
        B, Fn = 6, 5
        per_channel = axis is not None
        obs = PerChannelMinMaxObserver if per_channel else MinMaxObserver
        kw = torch_args(scheme, bits, signed, rk, per_channel)
        kw.pop("quant_min", None)
        kw.pop("quant_max", None)
        if per_channel:
            kw["ch_axis"] = axis
        C = (B if axis == 0 else Fn) if per_channel else -1
        lfq = _LearnableFakeQuantize(observer=obs, quant_min=qmin, quant_max=qmax, use_grad_scaling=True, channel_len=C, **kw)
        lfq.enable_param_learning()
        lfq.toggle_observer_update(True)  # the first forward sets scale / zero point from the observer
        steps = []
        for k in range(3):
            x = (RNG.standard_normal((B, Fn)) * (1 + 0.4 * k) + (0.5 if scheme == "asymmetric" else 0)).astype(F32)
            dy = rand_dy(x.size).reshape(x.shape)
            X = torch.tensor(x, requires_grad=True)
            if lfq.scale.grad is not None:
                lfq.scale.grad = None
                lfq.zero_point.grad = None
            Y = lfq(X)
            Y.backward(torch.tensor(dy))
            sc = lfq.scale.detach().numpy().astype(F32).copy()
            zp = lfq.zero_point.detach().numpy().astype(F32).copy()
            steps.append({"x": enc_fa(x), "dy": enc_fa(dy), "scale": enc_fa(sc), "zeroPoint": enc_fa(zp), "y": enc_fa(Y.detach().numpy()),
                          "dx": enc_fa(X.grad.numpy()), "dScale": enc_fa(lfq.scale.grad.numpy()),
                          "dZeroPoint": enc_fa(lfq.zero_point.grad.numpy() if lfq.zero_point.grad is not None else np.zeros_like(zp))})
            lfq.toggle_observer_update(False)
            with torch.no_grad():  # a plain SGD step, lr 0.01, so the next batch sees learned values
                lfq.scale -= 0.01 * lfq.scale.grad
                if scheme == "asymmetric":
                    lfq.zero_point -= 0.01 * lfq.zero_point.grad
        g = "per-tensor" if axis is None else {"axis": axis}
        cases.append({"name": f"_LearnableFakeQuantize {scheme} {'int' if signed else 'uint'}{bits} {rk} {g if axis is None else f'axis {axis}'}",
                      "spec": spec_of(scheme, bits, signed, rk, g), "shape": [B, Fn], "lr": 0.01, "steps": steps})
    return cases


def per_element(x, dy, s, z, qmin, qmax, gf, axis):
    ts = np.zeros(x.shape, F32)
    tz = np.zeros(x.shape, F32)
    for idx in np.ndindex(*x.shape):
        if axis is None:
            _, _, a, b = learnable_call(np.array([x[idx]], F32), np.array([dy[idx]], F32), s, z, qmin, qmax, gf, None)
        else:
            c = idx[axis]
            _, _, a, b = learnable_call(np.array([[x[idx]]], F32), np.array([[dy[idx]]], F32), s[c:c + 1], z[c:c + 1], qmin, qmax, gf, 0)
        ts[idx], tz[idx] = a[0], b[0]
    return ts, tz


def dec(v):
    return np.array([float(e) if not isinstance(e, str) else {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf, "-0": -0.0}[e]
                     for e in v], dtype=F32)


def eval_cases(inp, out):
    """Subprocess mode: the learnable cases' gradients under this process's ATEN_CPU_CAPABILITY."""
    with open(inp) as f:
        cases = json.load(f)
    res = []
    for c in cases:
        x = dec(c["x"]).reshape(c["shape"])
        dy = dec(c["dy"]).reshape(c["shape"])
        s, z = dec(c["scale"]), dec(c["zeroPoint"])
        gf = float(c["gradFactor"])
        _, dx, ds, dz = learnable_call(x, dy, s, z, c["qmin"], c["qmax"], gf, c["axis"])
        ts, tz = per_element(x, dy, s, z, c["qmin"], c["qmax"], gf, c["axis"])
        res.append({"dx": enc_fa(dx), "dScale": enc_fa(ds), "dZeroPoint": enc_fa(dz), "dScaleTerms": enc_fa(ts), "dZeroPointTerms": enc_fa(tz)})
    with open(out, "w") as f:
        json.dump(res, f)


def check_capability(cases, cap):
    """How far torch's `cap` build of the learnable backward is from its scalar build (the golden data)."""
    tmp_in = OUT + ".cases.tmp"
    tmp_out = OUT + ".res.tmp"
    with open(tmp_in, "w") as f:
        json.dump(cases, f)
    env = dict(os.environ, ATEN_CPU_CAPABILITY=cap)
    subprocess.run([sys.executable, __file__, "--eval-cases", tmp_in, tmp_out], env=env, check=True)
    with open(tmp_out) as f:
        res = json.load(f)
    os.remove(tmp_in)
    os.remove(tmp_out)
    st = {"capability": cap, "elements": 0, "dxDiffer": 0, "scaleTermsDiffer": 0, "zeroPointTermsDiffer": 0,
          "maxScaleSumDiffOverAbsSum": 0.0, "maxZeroPointSumDiffOverAbsSum": 0.0}
    for c, r in zip(cases, res):
        st["elements"] += len(c["x"])
        st["dxDiffer"] += int(np.sum(dec(c["dx"]).view(np.uint32) != dec(r["dx"]).view(np.uint32)))
        st["scaleTermsDiffer"] += int(np.sum(dec(c["dScaleTerms"]) != dec(r["dScaleTerms"])))
        st["zeroPointTermsDiffer"] += int(np.sum(dec(c["dZeroPointTerms"]) != dec(r["dZeroPointTerms"])))
        for k, kt, key in [("dScale", "dScaleTerms", "maxScaleSumDiffOverAbsSum"), ("dZeroPoint", "dZeroPointTerms", "maxZeroPointSumDiffOverAbsSum")]:
            terms = dec(c[kt]).reshape(c["shape"]).astype(np.float64)
            red = tuple(i for i in range(terms.ndim) if i != c["axis"]) if c["axis"] is not None else None
            a = np.atleast_1d(np.abs(terms).sum(axis=red))
            d = np.abs(dec(c[k]).astype(np.float64) - dec(r[k]).astype(np.float64))
            m = np.where(a > 0, d / np.where(a > 0, a, 1), d)
            st[key] = max(st[key], float(m.max()))
    return st


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--eval-cases":
        eval_cases(sys.argv[2], sys.argv[3])
        return
    assert os.environ["ATEN_CPU_CAPABILITY"] == "default", "the golden data comes from torch's scalar kernels"
    ops = gen_ops()
    module = gen_module()
    learnable, found = gen_learnable()
    lmod = gen_learnable_module()
    caps = [check_capability(learnable, cap) for cap in ("avx2", "avx512")]
    doc = {
        "torch": torch.__version__, "numpy": np.__version__, "seed": SEED, "capability": "default",
        "found": found, "vectorisedBuilds": caps,
        "ops": ops, "module": module, "learnable": learnable, "learnableModule": lmod,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"), allow_nan=False)
    print(f"wrote {OUT}: {len(ops)} op cases, {len(module)} module cases, {len(learnable)} learnable op cases, "
          f"{len(lmod)} learnable module cases ({os.path.getsize(OUT)} bytes); {found}")
    for c in caps:
        print(c)


if __name__ == "__main__":
    main()
