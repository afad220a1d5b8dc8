#!/usr/bin/python3
"""Generate the golden data in test/golden/*.json that test/golden.test.ts checks quantkit against.

Run with Debian's python (it has torch and numpy):  /usr/bin/python3 scripts/golden/gen_golden.py

Sources of truth:
  * ONNX QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear: numpy float32 re-implementation
    of the opset-21 formulas (as docs/numerics.md states them), saturating.
  * formula 'pytorch' qparams: real torch.ao.quantization observers (MinMaxObserver,
    PerChannelMinMaxObserver).
  * formula 'onnx' qparams: numpy re-implementation of onnxruntime quant_utils.compute_scale_zp
    on float32 inputs (max - min in float32 as onnxruntime does, the division in float64, scale
    cast to float32 at the end; symmetric signed scale = absmax / qmax per quantkit's contract).
  * fakeQuantize: torch.fake_quantize_per_tensor_affine / per_channel_affine + autograd mask.
  * quantize() (scheme level): torch observers + torch.quantize_per_tensor / per_channel, and the
    documented formula where torch has no equivalent (4-bit, blocked, non-finite inputs).

Every torch-derived value is also recomputed with the documented formula and the script aborts if
the two disagree, so the JSON never encodes anything but quantkit's documented contract.

Floats are written so that they round-trip exactly to float32: finite values as the shortest
repr of the float32 value widened to a double, specials as "NaN", "Infinity", "-Infinity", "-0".
"""
import json
import math
import os
import sys
import warnings

import numpy as np
import torch
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

warnings.filterwarnings("ignore")
torch.manual_seed(0)
torch.set_num_threads(1)
SEED = 20240611
RNG = np.random.default_rng(SEED)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "test", "golden")

F32 = np.float32
EPS32 = F32(np.finfo(np.float32).eps)
TINY32 = float(np.finfo(np.float32).tiny)

# --------------------------------------------------------------------------------------------
# encoding helpers


def enc_f(v):
    v = F32(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0 and np.signbit(v):
        return "-0"
    return float(v)


def enc_fa(a):
    return [enc_f(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def enc_ia(a):
    return [int(v) for v in np.asarray(a).ravel()]


def f32arr(vals):
    return np.array(vals, dtype=np.float32)


def meta():
    return {
        "generator": "scripts/golden/gen_golden.py",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "seed": SEED,
    }


def write(name, cases):
    assert len(cases) > 0
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), f"duplicate case names in {name}"
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as f:
        json.dump({"meta": meta(), "cases": cases}, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"{name}: {len(cases)} cases, {os.path.getsize(path)} bytes")


# --------------------------------------------------------------------------------------------
# ranges and reference math

ONNX_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int4": (-8, 7), "uint4": (0, 15)}


def spec_range(scheme, bits, signed, rng_kind):
    """quantkit's qmin/qmax for a spec."""
    if not signed:
        return 0, (1 << bits) - 1
    if scheme == "symmetric" and rng_kind == "restricted":
        return -((1 << (bits - 1)) - 1), (1 << (bits - 1)) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def make_spec(scheme, bits, signed, rng_kind, granularity, formula):
    spec = {"scheme": scheme, "bits": bits, "signed": signed, "granularity": granularity,
            "formula": formula}
    if rng_kind is not None:
        spec["range"] = rng_kind
    return spec


def broadcast_params(p, shape, axis, block):
    """Expand per-tensor / per-axis / blocked parameters to the input's shape."""
    p = np.asarray(p)
    if axis is None:
        return np.broadcast_to(p.reshape(()) if p.size == 1 else p, shape)
    nd = len(shape)
    ax = axis % nd
    if block:
        e = np.repeat(p, block, axis=ax)
        e = np.take(e, np.arange(shape[ax]), axis=ax)
        return e
    vshape = [1] * nd
    vshape[ax] = shape[ax]
    return np.broadcast_to(p.reshape(vshape), shape)


def quant_ref(x, scale, zp, qmin, qmax, recip=False):
    """y = saturate(round_half_even(x / scale) + zp) in float32 (or x * (1/scale) when recip).
    NaN -> zp. The clip happens in float64 before any integer cast (nothing wraps)."""
    x = np.asarray(x, dtype=np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    zp = np.asarray(zp, dtype=np.int64)
    with np.errstate(all="ignore"):
        if recip:
            inv = (F32(1.0) / scale).astype(np.float32)
            v = (x * inv).astype(np.float32)
        else:
            v = (x / scale).astype(np.float32)
        c = np.rint(v).astype(np.float64) + zp.astype(np.float64)
        c = np.clip(c, qmin, qmax)
        c = np.where(np.isnan(v), zp.astype(np.float64), c)
    return c.astype(np.int64)


def in_range_mask(x, scale, zp, qmin, qmax):
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(all="ignore"):
        inv = (F32(1.0) / np.asarray(scale, dtype=np.float32)).astype(np.float32)
        v = (x * inv).astype(np.float32)
        c = np.rint(v).astype(np.float64) + np.asarray(zp, dtype=np.float64)
        return ((c >= qmin) & (c <= qmax)).astype(np.int64)


def dequant_ref(q, scale, zp):
    q = np.asarray(q, dtype=np.int64)
    d = (q - np.asarray(zp, dtype=np.int64)).astype(np.float32)
    return (d * np.asarray(scale, dtype=np.float32)).astype(np.float32)


def pack4(codes):
    codes = np.asarray(codes, dtype=np.int64).ravel()
    out = np.zeros((codes.size + 1) // 2, dtype=np.int64)
    for i, c in enumerate(codes):
        out[i // 2] |= (int(c) & 0xF) << (4 * (i % 2))
    return out


def tiesf(scale, ks):
    """float32 values (k + 0.5) * scale."""
    return np.array([(k + 0.5) * float(F32(scale)) for k in ks], dtype=np.float32)


def nudge(a):
    a = np.asarray(a, dtype=np.float32)
    return np.concatenate([np.nextafter(a, F32(np.inf)), np.nextafter(a, F32(-np.inf))])


# --------------------------------------------------------------------------------------------
# 1. QuantizeLinear / DequantizeLinear


def special_values(scale, qmin, qmax, zp):
    s = float(F32(scale))
    base = [0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, float("nan"), float("inf"), float("-inf"),
            1e30, -1e30, 3.4028234663852886e38, -3.4028234663852886e38,
            (qmax - zp + 10) * s, (qmin - zp - 10) * s, (qmax - zp) * s, (qmin - zp) * s,
            (qmax - zp + 0.5) * s, (qmin - zp - 0.5) * s, (qmax - zp + 0.49) * s,
            (qmin - zp - 0.49) * s]
    ties = tiesf(scale, range(-6, 6))
    near = nudge(tiesf(scale, [-3, -2, 0, 1, 2]))
    return np.concatenate([f32arr(base), ties, near]).astype(np.float32)


def ql_case(cases, dq_cases, name, x, shape, scale, zp, dtype, opts, scale_kind, zp_kind,
            axis=None, block=0, expect_dtype=None):
    qmin, qmax = ONNX_RANGES[dtype]
    sc = np.asarray(scale, dtype=np.float32)
    zpa = np.asarray(0 if zp is None else zp, dtype=np.int64)
    s_b = broadcast_params(sc, shape, axis, block)
    z_b = broadcast_params(zpa, shape, axis, block)
    xr = np.asarray(x, dtype=np.float32).reshape(shape)
    codes = quant_ref(xr, s_b, z_b, qmin, qmax)
    assert codes.min() >= qmin and codes.max() <= qmax
    four = dtype in ("int4", "uint4")
    out = pack4(codes) if four else codes.ravel()
    case = {
        "name": name,
        "x": enc_fa(xr),
        "scale": enc_f(sc.ravel()[0]) if scale_kind == "number" else enc_fa(sc),
        "scaleKind": scale_kind,
        "zeroPoint": None if zp is None else (int(zpa.ravel()[0]) if zp_kind == "number"
                                              else enc_ia(zpa)),
        "zpKind": zp_kind,
        "opts": opts,
        "outType": "Uint8Array" if (four or dtype == "uint8") else "Int8Array",
        "expectedDtype": expect_dtype or dtype,
        "expected": enc_ia(out),
        "expectedCodes": enc_ia(codes),
    }
    cases.append(case)
    # DequantizeLinear of the same codes (round trip)
    dq = dequant_ref(codes, s_b, z_b)
    dq_opts = {k: v for k, v in opts.items() if k != "out"}
    if four:
        dq_opts["dtype"] = dtype
        dq_opts["shape"] = list(shape)
    dq_cases.append({
        "name": "dequantize " + name,
        "q": enc_ia(out),
        "qType": "Uint8Array" if (four or dtype == "uint8") else "Int8Array",
        "scale": case["scale"],
        "scaleKind": scale_kind,
        "zeroPoint": case["zeroPoint"],
        "zpKind": zp_kind,
        "opts": dq_opts,
        "expected": enc_fa(dq),
    })


def gen_quantize_linear():
    cases, dq = [], []
    # ---- per-tensor, all four dtypes, special values
    for dtype, scale, zp, zk in [
        ("int8", 0.5, 0, "number"),
        ("int8", 0.1, -3, "int8"),
        ("int8", 0.0235, 17, "int32"),
        ("uint8", 0.5, 128, "uint8"),
        ("uint8", 0.1, 3, "number"),
        ("uint8", 1.0 / 3.0, 250, "int32"),
        ("int4", 0.5, 0, "number"),
        ("int4", 0.25, -1, "int32"),
        ("uint4", 0.5, 8, "number"),
        ("uint4", 0.3, 2, "int32"),
    ]:
        qmin, qmax = ONNX_RANGES[dtype]
        x = special_values(scale, qmin, qmax, zp)
        n = x.size
        opts = {"dtype": dtype}
        if zk == "int32" or dtype in ("int4", "uint4"):
            opts["shape"] = [n]
        zpv = np.array([zp])
        ql_case(cases, dq, f"per-tensor {dtype} scale {float(F32(scale))!r} zp {zp} ({zk} zero point)"
                f" ties/saturation/specials, n={n}",
                x, [n], F32(scale), zpv, dtype, opts, "number" if zk != "int32" else "array",
                zk)

    # dtype inference: from the zero point's array type / default uint8
    x = special_values(0.25, -128, 127, 0)
    ql_case(cases, dq, "per-tensor dtype inferred int8 from Int8Array zero point (length 1)", x,
            [x.size], F32(0.25), np.array([-2]), "int8", {}, "number", "int8")
    x = special_values(0.25, 0, 255, 100)
    ql_case(cases, dq, "per-tensor dtype inferred uint8 from Uint8Array zero point (length 1)", x,
            [x.size], F32(0.25), np.array([100]), "uint8", {}, "number", "uint8")
    ql_case(cases, dq, "per-tensor default dtype uint8 with no zero point", x, [x.size],
            F32(0.25), None, "uint8", {}, "number", "none")
    ql_case(cases, dq, "per-tensor default dtype uint8 with number zero point", x, [x.size],
            F32(0.25), np.array([100]), "uint8", {}, "number", "number")
    ql_case(cases, dq, "per-tensor Float32Array scale of length 1", x, [x.size],
            f32arr([0.25]), np.array([7]), "uint8", {"dtype": "uint8"}, "array", "uint8")

    # ---- int4/uint4 with an odd element count
    x = special_values(0.5, -8, 7, 0)[:15]
    ql_case(cases, dq, "int4 per-tensor odd element count 15 (last high nibble 0)", x, [3, 5],
            F32(0.5), np.array([1]), "int4", {"dtype": "int4", "shape": [3, 5]}, "number",
            "number")
    x = special_values(0.5, 0, 15, 8)[:13]
    ql_case(cases, dq, "uint4 per-tensor odd element count 13 (last high nibble 0)", x, [13],
            F32(0.5), np.array([8]), "uint4", {"dtype": "uint4", "shape": [13]}, "number",
            "number")
    x = f32arr([-3.0])
    ql_case(cases, dq, "int4 single element", x, [1], F32(1.0), np.array([0]), "int4",
            {"dtype": "int4", "shape": [1]}, "number", "number")

    # ---- per-axis on a [3,4,5] tensor
    shape = [3, 4, 5]

    def axis_data(scales_b, spread):
        k = RNG.integers(-spread, spread + 1, size=shape).astype(np.float64)
        half = RNG.integers(0, 2, size=shape) * 0.5
        jitter = np.where(RNG.random(size=shape) < 0.2, RNG.uniform(-0.49, 0.49, size=shape), 0.0)
        x = ((k + half + jitter) * scales_b.astype(np.float64)).astype(np.float32)
        flat = x.ravel()
        flat[3] = np.nan
        flat[7] = np.inf
        flat[11] = -np.inf
        flat[13] = F32(-0.0)
        flat[17] = F32(1e30)
        flat[19] = F32(1e-41)
        return flat.reshape(shape)

    for axis, dtype, zk in [(0, "int8", "int8"), (1, "uint8", "uint8"), (-1, "int8", "int32"),
                            (-1, "uint8", "uint8"), (1, "int4", "int32"), (0, "uint4", "int32"),
                            (-2, "int8", "int8"), (2, "uint4", "int32")]:
        qmin, qmax = ONNX_RANGES[dtype]
        d = shape[axis % 3]
        sc = f32arr(RNG.choice([0.5, 0.25, 0.1, 0.03, 1.0 / 3.0, 0.7, 2.0], size=d))
        zp = RNG.integers(qmin // 2, qmax // 2 + 1, size=d)
        x = axis_data(broadcast_params(sc, shape, axis, 0), (qmax - qmin) // 2 + 20)
        opts = {"shape": shape, "axis": axis, "dtype": dtype}
        ql_case(cases, dq, f"per-axis {dtype} axis {axis} of [3,4,5] with per-channel zero points"
                f" ({zk})", x, shape, sc, zp, dtype, opts, "array", zk, axis=axis)
    # axis omitted -> ONNX default 1
    sc = f32arr([0.5, 0.1, 0.25, 1.0 / 3.0])
    zp = np.array([-5, 0, 3, 10])
    x = axis_data(broadcast_params(sc, shape, 1, 0), 150)
    ql_case(cases, dq, "per-axis int8 with axis omitted (ONNX default axis 1), scale length 4",
            x, shape, sc, zp, "int8", {"shape": shape, "dtype": "int8"}, "array", "int8", axis=1)

    # ---- blocked
    for axis, block, dtype, zk in [(1, 2, "int8", "int8"), (1, 3, "uint8", "uint8"),
                                   (-1, 2, "int8", "int32"), (2, 3, "uint8", "uint8"),
                                   (1, 3, "int4", "int32"), (-1, 2, "uint4", "int32"),
                                   (-1, 3, "int4", "int32")]:
        qmin, qmax = ONNX_RANGES[dtype]
        ax = axis % 3
        sshape = list(shape)
        sshape[ax] = -(-shape[ax] // block)
        sc = f32arr(RNG.choice([0.5, 0.25, 0.1, 0.03, 1.0 / 3.0, 0.7], size=sshape))
        zp = RNG.integers(qmin // 2, qmax // 2 + 1, size=sshape)
        x = axis_data(broadcast_params(sc, shape, axis, block), (qmax - qmin) // 2 + 20)
        opts = {"shape": shape, "axis": axis, "blockSize": block, "dtype": dtype}
        partial = " (partial last block)" if shape[ax] % block else ""
        ql_case(cases, dq, f"blocked {dtype} axis {axis} blockSize {block} of [3,4,5]{partial}"
                f" ({zk} zero points)", x, shape, sc, zp, dtype, opts, "array", zk, axis=axis,
                block=block)
    # blocked with an odd element count, int4
    shp = [3, 5]
    sc = f32arr([[0.5, 0.25, 0.1], [1.0, 0.3, 0.2], [0.125, 2.0, 0.7]])
    zp = np.array([[0, -1, 2], [3, -4, 1], [-8, 7, 0]])
    x = (RNG.integers(-12, 13, size=shp) * 0.5 * broadcast_params(sc, shp, 1, 2)).astype(np.float32)
    ql_case(cases, dq, "blocked int4 axis 1 blockSize 2 of [3,5] (odd element count, partial block)",
            x, shp, sc, zp, "int4", {"shape": shp, "axis": 1, "blockSize": 2, "dtype": "int4"},
            "array", "int32", axis=1, block=2)

    # ---- overflow of x / scale itself: 1e30 / 1e-10 = inf
    x = f32arr([1e30, -1e30, 1e20, -1e20, 1.0, -1.0])
    ql_case(cases, dq, "per-tensor int8 tiny scale 1e-10: x / scale overflows to +-Inf -> saturate",
            x, [6], F32(1e-10), np.array([0]), "int8", {"dtype": "int8"}, "number", "number")

    # ---- dequantize over every code
    codes8 = np.arange(-128, 128)
    dq.append({"name": "dequantize every int8 code, scale 0.1 zp -7", "q": enc_ia(codes8),
               "qType": "Int8Array", "scale": enc_f(0.1), "scaleKind": "number",
               "zeroPoint": -7, "zpKind": "number", "opts": {},
               "expected": enc_fa(dequant_ref(codes8, F32(0.1), -7))})
    codesu = np.arange(0, 256)
    dq.append({"name": "dequantize every uint8 code, scale 0.0235 zp 131 (Uint8Array zero point)",
               "q": enc_ia(codesu), "qType": "Uint8Array", "scale": enc_f(0.0235),
               "scaleKind": "number", "zeroPoint": [131], "zpKind": "uint8", "opts": {},
               "expected": enc_fa(dequant_ref(codesu, F32(0.0235), 131))})
    dq.append({"name": "dequantize uint8 with no zero point (zero point 0), huge scale 3e38",
               "q": enc_ia(codesu), "qType": "Uint8Array", "scale": enc_f(3e38),
               "scaleKind": "number", "zeroPoint": None, "zpKind": "none", "opts": {},
               "expected": enc_fa(dequant_ref(codesu, F32(3e38), 0))})
    c4 = np.arange(-8, 8)
    dq.append({"name": "dequantize every int4 code (packed, 16 elements), scale 0.3 zp 2",
               "q": enc_ia(pack4(c4)), "qType": "Uint8Array", "scale": enc_f(0.3),
               "scaleKind": "number", "zeroPoint": 2, "zpKind": "number",
               "opts": {"dtype": "int4", "shape": [16]},
               "expected": enc_fa(dequant_ref(c4, F32(0.3), 2))})
    c4u = np.concatenate([np.arange(0, 16), [15, 0, 9]])
    dq.append({"name": "dequantize every uint4 code (packed, odd count 19), scale 1/3 zp 9",
               "q": enc_ia(pack4(c4u)), "qType": "Uint8Array", "scale": enc_f(1.0 / 3.0),
               "scaleKind": "number", "zeroPoint": 9, "zpKind": "number",
               "opts": {"dtype": "uint4", "shape": [19]},
               "expected": enc_fa(dequant_ref(c4u, F32(1.0 / 3.0), 9))})
    write("quantize_linear.json", cases)
    write("dequantize_linear.json", dq)
    return len(cases), len(dq)


# --------------------------------------------------------------------------------------------
# 2. DynamicQuantizeLinear


def dyn_ref(x):
    x = np.asarray(x, dtype=np.float32)
    mn = np.minimum(F32(0), x.min()).astype(np.float32)
    mx = np.maximum(F32(0), x.max()).astype(np.float32)
    rng = F32(mx - mn)
    if rng == 0:
        return F32(1.0), 0, np.zeros(x.size, dtype=np.int64)  # quantkit's documented choice
    s = F32(rng / F32(255))
    zpf = np.rint(F32(F32(0) - F32(mn / s)))
    zp = int(np.clip(zpf, 0, 255))
    return s, zp, quant_ref(x, s, zp, 0, 255)


def gen_dynamic():
    cases = []
    inputs = []
    inputs.append(("random normal, 64 values", RNG.standard_normal(64).astype(np.float32)))
    inputs.append(("all negative (max' = 0, zero point 255)",
                   (-np.abs(RNG.standard_normal(40)) * 3 - 0.1).astype(np.float32)))
    inputs.append(("all positive (min' = 0, zero point 0)",
                   (np.abs(RNG.standard_normal(40)) * 5 + 0.25).astype(np.float32)))
    t = np.concatenate([f32arr([-10.5, 244.5]), tiesf(1.0, range(-10, 244, 7)),
                        RNG.uniform(-10, 244, 10).astype(np.float32)])
    inputs.append(("zero point tie: min -10.5 max 244.5 -> scale 1, 10.5 rounds to even 10, "
                   "data ties", t))
    t = np.concatenate([f32arr([-11.5, 243.5]), tiesf(1.0, range(-11, 243, 9))])
    inputs.append(("zero point tie: min -11.5 max 243.5 -> scale 1, 11.5 rounds to even 12", t))
    inputs.append(("large magnitude (+-1e30)",
                   np.concatenate([f32arr([-1e30, 2.5e30, 1e29, -3e29, 0.0, 1.0]),
                                   (RNG.standard_normal(20) * 1e30).astype(np.float32)])))
    inputs.append(("tiny magnitude (1e-30)", (RNG.standard_normal(24) * 1e-30).astype(np.float32)))
    inputs.append(("all zero (quantkit: scale 1, zero point 0)", np.zeros(16, dtype=np.float32)))
    inputs.append(("zeros and negative zeros only", f32arr([0.0, -0.0, -0.0, 0.0, -0.0])))
    inputs.append(("single value 3.0", f32arr([3.0])))
    for name, x in inputs:
        s, zp, y = dyn_ref(x)
        cases.append({"name": name, "x": enc_fa(x), "expectedScale": enc_f(s),
                      "expectedZeroPoint": zp, "expected": enc_ia(y)})
    write("dynamic_quantize_linear.json", cases)
    return len(cases)


# --------------------------------------------------------------------------------------------
# 3. computeQParams


def torch_observer_args(scheme, bits, signed, rng_kind):
    """dtype and quant_min/quant_max kwargs that give quantkit's range for the spec."""
    qmin, qmax = spec_range(scheme, bits, signed, rng_kind)
    dtype = torch.qint8 if signed else torch.quint8
    default = (bits == 8 and (not signed or not (scheme == "symmetric" and rng_kind == "restricted")))
    kw = {} if default else {"quant_min": qmin, "quant_max": qmax}
    return dtype, kw, qmin, qmax


def pytorch_formula(mn, mx, scheme, bits, signed, rng_kind):
    """quantkit's documented 'pytorch' formula in float32 (cross-check for torch)."""
    qmin, qmax = spec_range(scheme, bits, signed, rng_kind)
    mn, mx = F32(mn), F32(mx)
    if mn == np.inf and mx == -np.inf:
        return F32(1.0), 0
    mnn = np.minimum(mn, F32(0))
    mxp = np.maximum(mx, F32(0))
    if scheme == "symmetric":
        a = np.maximum(-mnn, mxp)
        s = np.maximum(F32(a / F32((qmax - qmin) / 2)), EPS32)
        if signed:
            zp = 0
        elif bits == 8:
            zp = 128
        else:
            zp = (qmin + qmax) // 2
        return F32(s), zp
    s = np.maximum(F32((mxp - mnn) / F32(qmax - qmin)), EPS32)
    zp = qmin - int(np.rint(F32(mnn / s)))
    return F32(s), min(max(zp, qmin), qmax)


def onnx_compute_scale_zp(rmin, rmax, qmin, qmax, symmetric, signed):
    """onnxruntime quant_utils.compute_scale_zp on float32 rmin/rmax, as quantkit documents it.

    Mirrors the onnxruntime source: rmin/rmax stay numpy float32, so `rmax - rmin` (and
    2 * absmax for symmetric) is a float32 operation; it is then widened to float64 and divided
    by (qmax - qmin) in float64; zero point = round_half_even(qmin - rmin / scale) with the
    float64 scale; a scale below float32 tiny gives (1, 0); the scale is cast to float32 last.
    One deliberate difference (quantkit's contract): symmetric *signed* uses scale = absmax / qmax
    and zero point 0. For restricted ranges (the only ones onnxruntime uses for symmetric signed)
    this is bit-identical to onnxruntime's 2 * absmax / (qmax - qmin); for 'full' ranges
    onnxruntime would give 2 * absmax / (qmax - qmin) instead.
    """
    rmin = np.minimum(F32(rmin), F32(0))
    rmax = np.maximum(F32(rmax), F32(0))
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        if signed:
            scale = np.float64(absmax) / np.float64(qmax)
        else:
            dr = np.float64(F32(absmax - (-absmax)))
            scale = dr / (np.float64(qmax) - np.float64(qmin))
    else:
        dr = np.float64(F32(rmax - rmin))
        scale = dr / (np.float64(qmax) - np.float64(qmin))
    if scale < TINY32:
        return F32(1.0), 0
    if symmetric:
        zp = 0 if signed else int(np.round((qmin + qmax) / np.float64(2.0)))
    else:
        zp = int(np.round(np.float64(qmin) - np.float64(rmin) / scale))
    return F32(scale), zp


SPEC_CONFIGS = []
for _bits in (2, 3, 4, 7, 8):
    SPEC_CONFIGS += [("asymmetric", _bits, False, None), ("asymmetric", _bits, True, None),
                     ("symmetric", _bits, False, None), ("symmetric", _bits, True, "restricted"),
                     ("symmetric", _bits, True, "full")]


def spec_label(scheme, bits, signed, rng_kind):
    s = f"{scheme} {bits}-bit {'signed' if signed else 'unsigned'}"
    if rng_kind:
        s += f" {rng_kind}"
    qmin, qmax = spec_range(scheme, bits, signed, rng_kind)
    return s + f" [{qmin},{qmax}]"


def gen_compute_qparams():
    cases = []
    exact_all = True
    pairs = [
        ("mixed sign", F32(-1.7123), F32(3.1094)),
        ("min > 0", F32(0.5), F32(2.25)),
        ("max < 0", F32(-3.3), F32(-0.2)),
        ("all zero", F32(0.0), F32(0.0)),
        ("tiny range, scale floored at eps", F32(-1e-6), F32(2e-6)),
        ("large range", F32(-2.5e30), F32(1e29)),
    ]
    for scheme, bits, signed, rng_kind in SPEC_CONFIGS:
        dtype, kw, qmin, qmax = torch_observer_args(scheme, bits, signed, rng_kind)
        qs = torch.per_tensor_symmetric if scheme == "symmetric" else torch.per_tensor_affine
        for pname, mn, mx in pairs + [("nothing observed (+Inf, -Inf)", None, None)]:
            ob = MinMaxObserver(dtype=dtype, qscheme=qs, **kw)
            assert (ob.quant_min, ob.quant_max) == (qmin, qmax)
            if mn is not None:
                ob(torch.from_numpy(f32arr([mn, mx, (float(mn) + float(mx)) / 2])))
            s, z = ob.calculate_qparams()
            omin = F32(ob.min_val.item())
            omax = F32(ob.max_val.item())
            ts, tz = F32(s.numpy()[0]), int(z[0])
            fs, fz = pytorch_formula(omin, omax, scheme, bits, signed, rng_kind)
            assert tz == fz, (scheme, bits, signed, rng_kind, pname, tz, fz)
            assert abs(float(ts) - float(fs)) <= 1e-6 * float(fs)
            if ts != fs:
                exact_all = False
            cases.append({
                "name": f"pytorch {spec_label(scheme, bits, signed, rng_kind)} per-tensor: {pname}",
                "source": "torch MinMaxObserver",
                "min": enc_f(omin), "max": enc_f(omax),
                "spec": make_spec(scheme, bits, signed, rng_kind, "per-tensor", "pytorch"),
                "expectedScale": [enc_f(ts)], "expectedZeroPoint": [tz],
            })
    # per-channel, real PerChannelMinMaxObserver on [C, 4] data
    ch = [(F32(-1.7123), F32(3.1094)), (F32(0.5), F32(2.25)), (F32(-3.3), F32(-0.2)),
          (F32(0.0), F32(0.0)), (F32(-1e-6), F32(2e-6)), (F32(-0.0625), F32(127.0))]
    for scheme, bits, signed, rng_kind in [("symmetric", 8, True, "restricted"),
                                           ("symmetric", 8, True, "full"),
                                           ("asymmetric", 8, False, None),
                                           ("asymmetric", 8, True, None),
                                           ("symmetric", 8, False, None),
                                           ("asymmetric", 4, True, None),
                                           ("symmetric", 4, False, None),
                                           ("symmetric", 3, True, "restricted"),
                                           ("asymmetric", 2, False, None)]:
        dtype, kw, qmin, qmax = torch_observer_args(scheme, bits, signed, rng_kind)
        qs = torch.per_channel_symmetric if scheme == "symmetric" else torch.per_channel_affine
        ob = PerChannelMinMaxObserver(ch_axis=0, dtype=dtype, qscheme=qs, **kw)
        data = np.stack([f32arr([a, b, (float(a) + float(b)) / 2, a]) for a, b in ch])
        ob(torch.from_numpy(data))
        s, z = ob.calculate_qparams()
        omin = ob.min_val.numpy().astype(np.float32)
        omax = ob.max_val.numpy().astype(np.float32)
        ts = s.numpy().astype(np.float32)
        tz = z.numpy().astype(np.int64)
        for i in range(len(ch)):
            fs, fz = pytorch_formula(omin[i], omax[i], scheme, bits, signed, rng_kind)
            assert tz[i] == fz and abs(float(ts[i]) - float(fs)) <= 1e-6 * float(fs)
            if ts[i] != fs:
                exact_all = False
        cases.append({
            "name": f"pytorch {spec_label(scheme, bits, signed, rng_kind)} per-channel axis 0, "
                    f"{len(ch)} channels",
            "source": "torch PerChannelMinMaxObserver",
            "min": enc_fa(omin), "max": enc_fa(omax),
            "spec": make_spec(scheme, bits, signed, rng_kind, {"axis": 0}, "pytorch"),
            "expectedScale": enc_fa(ts), "expectedZeroPoint": enc_ia(tz),
        })
    # per-channel with one channel that observed nothing: torch asserts, so formula only
    for scheme, bits, signed, rng_kind in [("asymmetric", 8, False, None),
                                           ("symmetric", 8, True, "restricted")]:
        mins = f32arr([-1.0, np.inf, 0.25])
        maxs = f32arr([2.0, -np.inf, 4.0])
        res = [pytorch_formula(a, b, scheme, bits, signed, rng_kind) for a, b in zip(mins, maxs)]
        cases.append({
            "name": f"pytorch {spec_label(scheme, bits, signed, rng_kind)} per-channel with an "
                    "empty channel (+Inf,-Inf) -> scale 1 zp 0 for that channel",
            "source": "documented formula (torch asserts min <= max per channel)",
            "min": enc_fa(mins), "max": enc_fa(maxs),
            "spec": make_spec(scheme, bits, signed, rng_kind, {"axis": 0}, "pytorch"),
            "expectedScale": enc_fa([r[0] for r in res]),
            "expectedZeroPoint": [r[1] for r in res],
        })

    # ---- 'onnx' formula
    onnx_pairs = pairs + [
        ("zero point tie -10.5/244.5", F32(-10.5), F32(244.5)),
        ("tiny range 0..1e-36", F32(0.0), F32(1e-36)),
        ("tiny range -5.1e-36..0", F32(-5.1e-36), F32(0.0)),
        ("subnormal range 0..1e-38 (scale < float32 tiny -> 1, 0)", F32(0.0), F32(1e-38)),
        ("placeholder", F32(0), F32(0)),
    ]
    # find a pair where float64 (max - min) and float32 (max - min) give different final scales
    found = None
    for _ in range(200000):
        a = F32(-abs(RNG.standard_normal()) * 10.0 ** RNG.integers(-9, -3))
        b = F32(abs(RNG.standard_normal()) * 10.0 ** RNG.integers(-1, 2))
        s64 = F32((np.float64(b) - np.float64(a)) / 255.0)
        s32 = F32(np.float64(F32(b - a)) / 255.0)
        if s64 != s32:
            found = (a, b)
            break
    assert found is not None
    onnx_pairs[-1] = ("max - min rounds in float32 before the float64 division (as onnxruntime)",
                      found[0], found[1])
    for scheme, bits, signed, rng_kind in SPEC_CONFIGS:
        qmin, qmax = spec_range(scheme, bits, signed, rng_kind)
        for pname, mn, mx in onnx_pairs:
            s, zp = onnx_compute_scale_zp(mn, mx, qmin, qmax, scheme == "symmetric", signed)
            assert qmin <= zp <= qmax
            note = ""
            if scheme == "symmetric" and signed and rng_kind == "full":
                note = " [contract absmax/qmax; onnxruntime itself would use 2*absmax/(qmax-qmin)]"
            cases.append({
                "name": f"onnx {spec_label(scheme, bits, signed, rng_kind)}: {pname}{note}",
                "source": "numpy re-implementation of onnxruntime compute_scale_zp (contract)",
                "min": enc_f(mn), "max": enc_f(mx),
                "spec": make_spec(scheme, bits, signed, rng_kind, "per-tensor", "onnx"),
                "expectedScale": [enc_f(s)], "expectedZeroPoint": [zp],
            })
    # onnx per-channel
    mins = f32arr([-1.7123, 0.5, -3.3, 0.0, -10.5])
    maxs = f32arr([3.1094, 2.25, -0.2, 0.0, 244.5])
    for scheme, bits, signed, rng_kind in [("asymmetric", 8, False, None),
                                           ("symmetric", 8, True, "restricted"),
                                           ("asymmetric", 4, True, None)]:
        qmin, qmax = spec_range(scheme, bits, signed, rng_kind)
        res = [onnx_compute_scale_zp(a, b, qmin, qmax, scheme == "symmetric", signed)
               for a, b in zip(mins, maxs)]
        cases.append({
            "name": f"onnx {spec_label(scheme, bits, signed, rng_kind)} per-channel axis 0, 5 channels",
            "source": "numpy re-implementation of onnxruntime compute_scale_zp (contract)",
            "min": enc_fa(mins), "max": enc_fa(maxs),
            "spec": make_spec(scheme, bits, signed, rng_kind, {"axis": 0}, "onnx"),
            "expectedScale": enc_fa([r[0] for r in res]),
            "expectedZeroPoint": [r[1] for r in res],
        })
    write("compute_qparams.json", cases)
    return len(cases), exact_all


# --------------------------------------------------------------------------------------------
# 4. fakeQuantize (torch)


def torch_fq(x, shape, scale, zp, qmin, qmax, axis):
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(shape).copy())
    xt.requires_grad_(True)
    if axis is None:
        y = torch.fake_quantize_per_tensor_affine(xt, float(F32(scale)), int(zp), qmin, qmax)
    else:
        y = torch.fake_quantize_per_channel_affine(
            xt, torch.from_numpy(np.asarray(scale, dtype=np.float32)),
            torch.from_numpy(np.asarray(zp, dtype=np.int32)), axis % len(shape), qmin, qmax)
    y.backward(torch.ones_like(y))
    return y.detach().numpy().astype(np.float32), xt.grad.numpy()


def gen_fake_quantize():
    cases = []
    configs = [
        ("asymmetric", 8, True, None, 0.1, -5),
        ("asymmetric", 8, False, None, 0.0235, 128),
        ("asymmetric", 8, False, None, 0.5, 3),
        ("symmetric", 8, True, "restricted", 0.02, 0),
        ("symmetric", 8, True, "full", 1.0 / 3.0, 0),
        ("symmetric", 8, False, None, 0.07, 128),
        ("asymmetric", 4, True, None, 0.3, 1),
        ("symmetric", 4, False, None, 0.25, 7),
        ("symmetric", 4, True, "restricted", 0.125, 0),
        ("symmetric", 3, True, "full", 0.7, 0),
        ("asymmetric", 2, False, None, 1.0 / 3.0, 1),
        ("asymmetric", 7, False, None, 0.013, 40),
    ]
    for scheme, bits, signed, rng_kind, scale, zp in configs:
        qmin, qmax = spec_range(scheme, bits, signed, rng_kind)
        s = F32(scale)
        ks = range(qmin - zp - 4, qmax - zp + 4)
        ties = tiesf(s, ks)
        x = np.concatenate([
            ties, nudge(ties[::3]),
            f32arr([0.0, -0.0, 1e-40, -1e-40, 1e-45, (qmax - zp + 100) * float(s),
                    (qmin - zp - 100) * float(s), 1e4, -1e4]),
            (RNG.standard_normal(16) * float(s) * (qmax - qmin) / 2).astype(np.float32),
        ]).astype(np.float32)
        y, g = torch_fq(x, [x.size], s, zp, qmin, qmax, None)
        codes = quant_ref(x, s, zp, qmin, qmax, recip=True)
        fy = dequant_ref(codes, s, zp)
        fm = in_range_mask(x, s, zp, qmin, qmax)
        assert np.array_equal(y.view(np.uint32), fy.view(np.uint32)), (scheme, bits, scale)
        assert np.array_equal((g != 0).astype(np.int64), fm)
        assert set(np.unique(g)) <= {0.0, 1.0}
        scale_kind = "number" if bits != 8 else "array"
        cases.append({
            "name": f"per-tensor {spec_label(scheme, bits, signed, rng_kind)} scale "
                    f"{float(s)!r} zp {zp}: ties, near-ties, out of range, -0, denormals",
            "x": enc_fa(x), "shape": [int(x.size)],
            "scale": enc_f(s) if scale_kind == "number" else [enc_f(s)],
            "zeroPoint": zp if scale_kind == "number" else [zp],
            "qparamsKind": scale_kind,
            "spec": make_spec(scheme, bits, signed, rng_kind, "per-tensor", "pytorch"),
            "expected": enc_fa(y), "expectedMask": enc_ia((g != 0).astype(np.int64)),
        })
    shape = [3, 4, 5]
    for axis, scheme, bits, signed, rng_kind in [(1, "asymmetric", 8, False, None),
                                                 (0, "symmetric", 8, True, "restricted"),
                                                 (-1, "asymmetric", 4, True, None),
                                                 (2, "symmetric", 8, False, None),
                                                 (-3, "asymmetric", 8, True, None)]:
        qmin, qmax = spec_range(scheme, bits, signed, rng_kind)
        d = shape[axis % 3]
        sc = f32arr(RNG.choice([0.5, 0.25, 0.1, 0.03, 1.0 / 3.0, 0.7, 0.0235], size=d))
        if scheme == "symmetric":
            zp = np.full(d, 0 if signed else 128, dtype=np.int64)
        else:
            zp = RNG.integers(qmin, qmax + 1, size=d)
        sb = broadcast_params(sc, shape, axis, 0).astype(np.float64)
        zb = broadcast_params(zp, shape, axis, 0)
        k = RNG.integers(qmin - 6, qmax + 7, size=shape) - zb
        half = RNG.integers(0, 2, size=shape) * 0.5
        x = ((k + half) * sb).astype(np.float32)
        x.ravel()[0] = F32(-0.0)
        y, g = torch_fq(x, shape, sc, zp, qmin, qmax, axis)
        codes = quant_ref(x, broadcast_params(sc, shape, axis, 0), zb, qmin, qmax, recip=True)
        fy = dequant_ref(codes, broadcast_params(sc, shape, axis, 0), zb)
        fm = in_range_mask(x, broadcast_params(sc, shape, axis, 0), zb, qmin, qmax)
        assert np.array_equal(y.view(np.uint32), fy.view(np.uint32))
        assert np.array_equal((g != 0).astype(np.int64), fm)
        cases.append({
            "name": f"per-channel axis {axis} of [3,4,5] {spec_label(scheme, bits, signed, rng_kind)}",
            "x": enc_fa(x), "shape": shape, "scale": enc_fa(sc), "zeroPoint": enc_ia(zp),
            "qparamsKind": "array",
            "spec": make_spec(scheme, bits, signed, rng_kind, {"axis": axis}, "pytorch"),
            "expected": enc_fa(y), "expectedMask": enc_ia((g != 0).astype(np.int64)),
        })
    write("fake_quantize.json", cases)
    return len(cases)


# --------------------------------------------------------------------------------------------
# 5. quantize() at scheme level


def finite_minmax(x, shape, axis, block):
    """Per-group min/max over finite values (groups laid out like ONNX scale tensors)."""
    x = np.asarray(x, dtype=np.float32).reshape(shape)
    fin = np.isfinite(x)
    lo = np.where(fin, x, np.inf).astype(np.float32)
    hi = np.where(fin, x, -np.inf).astype(np.float32)
    if axis is None:
        return f32arr([lo.min()]), f32arr([hi.max()])
    ax = axis % len(shape)
    if not block:
        other = tuple(i for i in range(len(shape)) if i != ax)
        return lo.min(axis=other).astype(np.float32), hi.max(axis=other).astype(np.float32)
    nb = -(-shape[ax] // block)
    mins, maxs = [], []
    for b in range(nb):
        idx = np.arange(b * block, min((b + 1) * block, shape[ax]))
        mins.append(np.take(lo, idx, axis=ax).min(axis=ax, keepdims=True))
        maxs.append(np.take(hi, idx, axis=ax).max(axis=ax, keepdims=True))
    return (np.concatenate(mins, axis=ax).astype(np.float32),
            np.concatenate(maxs, axis=ax).astype(np.float32))


def quantize_case(name, x, shape, scheme, bits, signed, rng_kind, axis, block, torch_codes=None,
                  torch_qparams=None, source=""):
    qmin, qmax = spec_range(scheme, bits, signed, rng_kind)
    mins, maxs = finite_minmax(x, shape, axis, block)
    sc = np.empty(mins.size, dtype=np.float32)
    zp = np.empty(mins.size, dtype=np.int64)
    for i, (a, b) in enumerate(zip(mins.ravel(), maxs.ravel())):
        sc[i], zp[i] = pytorch_formula(a, b, scheme, bits, signed, rng_kind)
    sc = sc.reshape(mins.shape)
    zp = zp.reshape(mins.shape)
    if torch_qparams is not None:
        ts, tz = torch_qparams
        assert np.array_equal(np.asarray(ts, dtype=np.float32).ravel(), sc.ravel()), name
        assert np.array_equal(np.asarray(tz).ravel(), zp.ravel()), name
    sb = broadcast_params(sc.ravel() if axis is not None and not block else sc, shape, axis, block)
    zb = broadcast_params(zp.ravel() if axis is not None and not block else zp, shape, axis, block)
    codes = quant_ref(np.asarray(x).reshape(shape), sb, zb, qmin, qmax, recip=True)
    if torch_codes is not None:
        assert np.array_equal(np.asarray(torch_codes).reshape(shape), codes), name
    four = bits <= 4
    dtype = ("int4" if signed else "uint4") if four else ("int8" if signed else "uint8")
    gran = "per-tensor" if axis is None else ({"axis": axis, "blockSize": block} if block
                                              else {"axis": axis})
    return {
        "name": name, "source": source, "x": enc_fa(x), "shape": list(shape),
        "spec": make_spec(scheme, bits, signed, rng_kind, gran, "pytorch"),
        "expectedDtype": dtype, "expectedBits": bits,
        "expectedScale": enc_fa(sc), "expectedZeroPoint": enc_ia(zp),
        "expectedData": enc_ia(pack4(codes) if four else codes),
        "expectedCodes": enc_ia(codes),
        "expectedDequantized": enc_fa(dequant_ref(codes, sb, zb)),
        "_deq": dequant_ref(codes, sb, zb),
    }


def tie_heavy(n, lo, hi, scale, extra=()):
    """Data with min lo, max hi and many values at exact float32 (k + 0.5) * scale (and their
    neighbours) inside [lo, hi]."""
    ks = np.arange(int(np.ceil(lo / scale)) - 1, int(np.floor(hi / scale)) + 1)
    t = tiesf(scale, ks)
    t = np.concatenate([t, nudge(t)])
    t = t[(t > lo) & (t < hi)]
    t = RNG.choice(t, size=min(n, t.size), replace=False)
    return np.concatenate([f32arr([lo, hi]), t, f32arr(extra)]).astype(np.float32)


def gen_quantize():
    cases = []
    mismatch_div = {}

    # (a) per-tensor affine quint8: torch observer + torch.quantize_per_tensor
    for lo, hi in [(-1.0, 1.55), (-0.37, 2.9), (0.25, 3.0), (-5.0, -0.5)]:
        lo, hi = F32(lo), F32(hi)
        s0, _ = pytorch_formula(lo, hi, "asymmetric", 8, False, None)
        x = tie_heavy(120, lo, hi, s0, extra=[0.0, -0.0])
        ob = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
        xt = torch.from_numpy(x)
        ob(xt)
        s, z = ob.calculate_qparams()
        tq = torch.quantize_per_tensor(xt, float(s[0]), int(z[0]), torch.quint8).int_repr().numpy()
        div = quant_ref(x, F32(s[0]), int(z[0]), 0, 255, recip=False)
        mismatch_div[f"quint8 [{lo},{hi}]"] = int((div != tq.astype(np.int64)).sum())
        cases.append(quantize_case(
            f"per-tensor affine uint8 (quint8) data in [{float(lo)!r}, {float(hi)!r}], tie-heavy",
            x, [x.size], "asymmetric", 8, False, None, None, 0, torch_codes=tq,
            torch_qparams=(s.numpy(), z.numpy()),
            source="torch MinMaxObserver + torch.quantize_per_tensor"))

    # (b) per-tensor symmetric qint8 (default -128..127) and restricted (-127..127)
    for rng_kind, kw in [("full", {}), ("restricted", {"quant_min": -127, "quant_max": 127})]:
        lo, hi = F32(-2.3), F32(1.9)
        s0, _ = pytorch_formula(lo, hi, "symmetric", 8, True, rng_kind)
        x = tie_heavy(120, lo, hi, s0, extra=[0.0])
        ob = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, **kw)
        xt = torch.from_numpy(x)
        ob(xt)
        s, z = ob.calculate_qparams()
        tq = torch.quantize_per_tensor(xt, float(s[0]), int(z[0]), torch.qint8).int_repr().numpy()
        div = quant_ref(x, F32(s[0]), int(z[0]), -128, 127, recip=False)
        mismatch_div[f"qint8 symmetric {rng_kind}"] = int((div != tq.astype(np.int64)).sum())
        cases.append(quantize_case(
            f"per-tensor symmetric int8 {rng_kind} (qint8), tie-heavy",
            x, [x.size], "symmetric", 8, True, rng_kind, None, 0, torch_codes=tq,
            torch_qparams=(s.numpy(), z.numpy()),
            source="torch MinMaxObserver + torch.quantize_per_tensor"))

    # (c) per-tensor symmetric quint8 (zero point 128)
    lo, hi = F32(-0.8), F32(3.3)
    s0, _ = pytorch_formula(lo, hi, "symmetric", 8, False, None)
    x = tie_heavy(100, lo, hi, s0)
    ob = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric)
    xt = torch.from_numpy(x)
    ob(xt)
    s, z = ob.calculate_qparams()
    tq = torch.quantize_per_tensor(xt, float(s[0]), int(z[0]), torch.quint8).int_repr().numpy()
    cases.append(quantize_case("per-tensor symmetric uint8 (quint8, zero point 128), tie-heavy",
                               x, [x.size], "symmetric", 8, False, None, None, 0, torch_codes=tq,
                               torch_qparams=(s.numpy(), z.numpy()),
                               source="torch MinMaxObserver + torch.quantize_per_tensor"))

    # (d) per-channel affine quint8 axis 0 and symmetric qint8 restricted axis 1
    for shape, axis, scheme, signed, rng_kind in [([4, 6], 0, "asymmetric", False, None),
                                                  ([3, 4, 5], 1, "symmetric", True, "restricted")]:
        x = (RNG.standard_normal(shape) * RNG.choice([0.5, 2.0, 7.0], size=shape)).astype(np.float32)
        dtype, kw, qmin, qmax = torch_observer_args(scheme, 8, signed, rng_kind)
        qs = torch.per_channel_symmetric if scheme == "symmetric" else torch.per_channel_affine
        ob = PerChannelMinMaxObserver(ch_axis=axis, dtype=dtype, qscheme=qs, **kw)
        xt = torch.from_numpy(x)
        ob(xt)
        s, z = ob.calculate_qparams()
        # add exact ties of each channel's scale (inside the channel's range) to the data
        sb = broadcast_params(s.numpy().astype(np.float32), shape, axis, 0).astype(np.float64)
        mn = broadcast_params(ob.min_val.numpy(), shape, axis, 0)
        mx = broadcast_params(ob.max_val.numpy(), shape, axis, 0)
        tie = ((np.floor(x / sb) + 0.5) * sb).astype(np.float32)
        ok = (tie > mn) & (tie < mx) & (x > mn) & (x < mx) & (RNG.random(shape) < 0.5)
        x = np.where(ok, tie, x).astype(np.float32)
        xt = torch.from_numpy(x)
        tq = torch.quantize_per_channel(xt, s.double(), z.long(), axis, dtype).int_repr().numpy()
        cases.append(quantize_case(
            f"per-channel {scheme} 8-bit {'signed' if signed else 'unsigned'}"
            f"{' ' + rng_kind if rng_kind else ''} axis {axis} of {shape}, with ties",
            x, shape, scheme, 8, signed, rng_kind, axis, 0, torch_codes=tq,
            torch_qparams=(s.numpy(), z.numpy()),
            source="torch PerChannelMinMaxObserver + torch.quantize_per_channel"))

    # (e) 4-bit per-tensor: torch observer qparams, codes from the formula (checked against
    #     torch.fake_quantize_per_tensor_affine)
    for scheme, signed, rng_kind, lo, hi in [("asymmetric", False, None, -0.6, 2.1),
                                             ("symmetric", True, "restricted", -1.3, 0.9)]:
        lo, hi = F32(lo), F32(hi)
        s0, _ = pytorch_formula(lo, hi, scheme, 4, signed, rng_kind)
        x = tie_heavy(25, lo, hi, s0)  # odd-ish count
        if x.size % 2 == 0:
            x = x[:-1]
        dtype, kw, qmin, qmax = torch_observer_args(scheme, 4, signed, rng_kind)
        qs = torch.per_tensor_symmetric if scheme == "symmetric" else torch.per_tensor_affine
        ob = MinMaxObserver(dtype=dtype, qscheme=qs, **kw)
        ob(torch.from_numpy(x))
        s, z = ob.calculate_qparams()
        y, _ = torch_fq(x, [x.size], s.numpy()[0], int(z[0]), qmin, qmax, None)
        c = quantize_case(f"per-tensor {spec_label(scheme, 4, signed, rng_kind)} packed, odd "
                          f"count {x.size}", x, [x.size], scheme, 4, signed, rng_kind, None, 0,
                          torch_qparams=(s.numpy(), z.numpy()),
                          source="torch MinMaxObserver qparams; codes from the formula, checked "
                                 "against torch.fake_quantize_per_tensor_affine")
        assert np.array_equal(c.pop("_deq").view(np.uint32), y.view(np.uint32))
        cases.append(c)

    # (f) blocked int4 symmetric: qparams from a per-channel observer over the blocks
    shape, block = [3, 8], 4
    x = (RNG.standard_normal(shape) * 1.5).astype(np.float32)
    ob = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                  quant_min=-7, quant_max=7)
    ob(torch.from_numpy(x.reshape(6, 4)))
    s, z = ob.calculate_qparams()
    cases.append(quantize_case("blocked int4 symmetric restricted axis 1 blockSize 4 of [3,8]",
                               x, shape, "symmetric", 4, True, "restricted", 1, block,
                               torch_qparams=(s.numpy().reshape(3, 2), z.numpy().reshape(3, 2)),
                               source="torch PerChannelMinMaxObserver over the blocks; codes "
                                      "from the formula"))
    shape, block = [2, 7], 3
    x = (RNG.standard_normal(shape) * 3).astype(np.float32)
    cases.append(quantize_case("blocked uint8 asymmetric axis 1 blockSize 3 of [2,7] (partial block)",
                               x, shape, "asymmetric", 8, False, None, 1, block,
                               source="documented formula"))

    # (g) non-finite values: min/max over finite values, NaN -> zp, +-Inf saturate
    x = np.concatenate([f32arr([np.nan, np.inf, -np.inf, 1e30, -0.0]),
                        (RNG.standard_normal(20)).astype(np.float32)]).astype(np.float32)
    cases.append(quantize_case("per-tensor affine uint8 with NaN/Inf/1e30 (finite min/max includes "
                               "1e30; NaN -> zero point, +-Inf saturate)", x, [x.size],
                               "asymmetric", 8, False, None, None, 0, source="documented formula"))
    x = np.concatenate([f32arr([np.nan, np.inf, -np.inf, -0.0]),
                        (RNG.standard_normal(12)).astype(np.float32)]).astype(np.float32)
    cases.append(quantize_case("per-tensor symmetric int8 restricted with NaN/+-Inf",
                               x, [x.size], "symmetric", 8, True, "restricted", None, 0,
                               source="documented formula"))
    for c in cases:
        c.pop("_deq", None)
    write("quantize.json", cases)
    return len(cases), mismatch_div


# --------------------------------------------------------------------------------------------
# 6. minMax


def gen_min_max():
    cases = []
    shape = [3, 4, 5]
    x = (RNG.standard_normal(shape) * 4).astype(np.float32)
    flat = x.ravel()
    flat[[2, 30, 41]] = np.nan
    flat[[5, 33]] = np.inf
    flat[[8]] = -np.inf
    x = flat.reshape(shape)
    nan_c, inf_c = 3, 3
    for gran, axis, block in [("per-tensor", None, 0), ({"axis": 0}, 0, 0), ({"axis": 1}, 1, 0),
                              ({"axis": -1}, -1, 0), ({"axis": 1, "blockSize": 3}, 1, 3),
                              ({"axis": 2, "blockSize": 2}, 2, 2)]:
        mn, mx = finite_minmax(x, shape, axis, block)
        cases.append({"name": f"minMax [3,4,5] granularity {json.dumps(gran)} with NaN/Inf",
                      "x": enc_fa(x), "shape": shape, "granularity": gran,
                      "expectedMin": enc_fa(mn), "expectedMax": enc_fa(mx),
                      "nanCount": nan_c, "infCount": inf_c})
    # a group with nothing finite
    y = f32arr([[1.0, -2.0, 3.0], [np.nan, np.inf, -np.inf], [0.5, 0.25, -7.0]])
    mn, mx = finite_minmax(y, [3, 3], 0, 0)
    cases.append({"name": "minMax per-axis 0 with a row of only NaN/Inf (+Infinity/-Infinity)",
                  "x": enc_fa(y), "shape": [3, 3], "granularity": {"axis": 0},
                  "expectedMin": enc_fa(mn), "expectedMax": enc_fa(mx), "nanCount": 1,
                  "infCount": 2})
    write("min_max.json", cases)
    return len(cases)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    nq, ndq = gen_quantize_linear()
    nd = gen_dynamic()
    nc, exact = gen_compute_qparams()
    nf = gen_fake_quantize()
    nqz, mism = gen_quantize()
    nm = gen_min_max()
    print(f"torch observer scales equal the float32 formula bit for bit in all cases: {exact}")
    print("torch.quantize_per_tensor codes that differ from the x / scale formula:", mism)
    summary = {"quantizeLinear": nq, "dequantizeLinear": ndq, "dynamicQuantizeLinear": nd,
               "computeQParams": nc, "fakeQuantize": nf, "quantize": nqz, "minMax": nm,
               "pytorchScalesExact": exact}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
