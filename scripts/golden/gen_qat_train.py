#!/usr/bin/python3
"""A short QAT run in PyTorch 1.13, step by step: test/golden/qat_train.json.

Run with Debian's python (torch 1.13 + numpy):  /usr/bin/python3 scripts/golden/gen_qat_train.py

An MLP Linear(12, 10) -> ReLU -> Linear(10, 4) from fixed initial weights is trained for 6 SGD steps
on fixed batches (cross-entropy, mean) with fake-quant placed where quantkit's prepareQAT places it:
on each Linear's input (per tensor, unsigned codes) and on its weight (per output feature,
symmetric, restricted range). Variants:
  ste-w8a8 / ste-w4a8: torch.ao.quantization.FakeQuantize, MovingAveragePerChannelMinMaxObserver
    (averaging_constant 1) on weights, MovingAverageMinMaxObserver (0.01) on inputs: prepareQAT's
    defaults.
  ste-w2a8-minmax: PerChannelMinMaxObserver / MinMaxObserver.
  lsq-w4a8 / lsq-w3a4-momentum: _LearnableFakeQuantize (use_grad_scaling=True) whose scale and zero
    point come from a MinMax observer on the first forward, then learned (quantkit: learnable: true).
    The last one with SGD momentum 0.9.
After each step: the loss, every parameter, and the qparams the step's forward used. At the end:
the logits of a test batch with the observers disabled (quantkit: eval mode).

torch runs its scalar kernels (ATEN_CPU_CAPABILITY=default): see gen_qat.py on why.
"""
import json
import os
import warnings

os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")

import numpy as np
import torch
import torch.nn.functional as F
from torch.ao.quantization import (FakeQuantize, MinMaxObserver, MovingAverageMinMaxObserver,
                                   MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver)
from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
SEED = 20260116
RNG = np.random.default_rng(SEED)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "golden", "qat_train.json")
F32 = np.float32
SIZES = [(12, 10), (10, 4)]
STEPS = 6
BATCH = 8


def enc_f(v):
    v = F32(v)
    if np.isnan(v) or np.isinf(v):
        raise ValueError("non-finite value")
    if v == 0 and np.signbit(v):
        return "-0"
    r = float(np.format_float_positional(v, unique=True)) if 1e-4 <= abs(v) < 1e7 else float(repr(v))
    assert F32(r) == v
    return r


def enc_fa(a):
    return [enc_f(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def weight_fq(kind, bits, out_features):
    qmax = (1 << (bits - 1)) - 1
    if kind == "lsq":
        m = _LearnableFakeQuantize(observer=PerChannelMinMaxObserver, quant_min=-qmax, quant_max=qmax, channel_len=out_features,
                                   use_grad_scaling=True, dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0)
        return m
    if kind == "minmax":
        return FakeQuantize(observer=PerChannelMinMaxObserver, quant_min=-qmax, quant_max=qmax, dtype=torch.qint8,
                            qscheme=torch.per_channel_symmetric, ch_axis=0)
    return FakeQuantize(observer=MovingAveragePerChannelMinMaxObserver, quant_min=-qmax, quant_max=qmax, dtype=torch.qint8,
                        qscheme=torch.per_channel_symmetric, ch_axis=0, averaging_constant=1.0)


def act_fq(kind, bits):
    qmax = (1 << bits) - 1
    if kind == "lsq":
        return _LearnableFakeQuantize(observer=MinMaxObserver, quant_min=0, quant_max=qmax, use_grad_scaling=True,
                                      dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    kw = {} if bits == 8 else dict(quant_min=0, quant_max=qmax)
    if kind == "minmax":
        return FakeQuantize(observer=MinMaxObserver, dtype=torch.quint8, qscheme=torch.per_tensor_affine, **kw)
    return FakeQuantize(observer=MovingAverageMinMaxObserver, dtype=torch.quint8, qscheme=torch.per_tensor_affine, **kw)


class QATLinearT(torch.nn.Module):
    def __init__(self, w, b, wfq, afq):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(w))
        self.bias = torch.nn.Parameter(torch.tensor(b))
        self.wfq = wfq
        self.afq = afq

    def forward(self, x):
        return F.linear(self.afq(x), self.wfq(self.weight), self.bias)


def qparams(fq):
    if isinstance(fq, _LearnableFakeQuantize):
        s, z = fq.calculate_qparams()
    else:
        s, z = fq.scale, fq.zero_point
    return {"scale": enc_fa(s.detach().numpy()), "zeroPoint": [int(v) for v in z.detach().numpy().ravel()]}


def run(variant, init, batches, test_x):
    kind, wbits, abits, momentum = variant["kind"], variant["wbits"], variant["abits"], variant["momentum"]
    layers = []
    for (i, o), (w, b) in zip(SIZES, init):
        layers.append(QATLinearT(w, b, weight_fq(kind, wbits, o), act_fq(kind, abits)))
    lsq = kind == "lsq"
    if lsq:
        for l in layers:
            for fq in (l.wfq, l.afq):
                fq.enable_param_learning()
                fq.toggle_observer_update(True)  # the first forward sets scale / zero point from the observer
    params = []
    for l in layers:
        params += [l.weight, l.bias]
        if lsq:
            params += [l.wfq.scale, l.wfq.zero_point, l.afq.scale, l.afq.zero_point]
    opt = torch.optim.SGD(params, lr=variant["lr"], momentum=momentum)
    steps = []
    for k, (x, y) in enumerate(batches):
        opt.zero_grad()
        h = layers[0](torch.tensor(x))
        h = torch.relu(h)
        logits = layers[1](h)
        loss = F.cross_entropy(logits, torch.tensor(y, dtype=torch.int64))
        used = [{"weight": qparams(l.wfq), "input": qparams(l.afq)} for l in layers]
        loss.backward()
        opt.step()
        if lsq and k == 0:
            for l in layers:
                l.wfq.toggle_observer_update(False)
                l.afq.toggle_observer_update(False)
        st = {"loss": float(loss.item()), "qparams": used, "layers": []}
        for l in layers:
            e = {"weight": enc_fa(l.weight.detach().numpy()), "bias": enc_fa(l.bias.detach().numpy())}
            if lsq:
                e["weightScale"] = enc_fa(l.wfq.scale.detach().numpy())
                e["inputScale"] = enc_fa(l.afq.scale.detach().numpy())
                e["inputZeroPoint"] = enc_fa(l.afq.zero_point.detach().numpy())
            st["layers"].append(e)
        steps.append(st)
    # eval: observers frozen
    for l in layers:
        for fq in (l.wfq, l.afq):
            if lsq:
                fq.toggle_observer_update(False)
            else:
                fq.disable_observer()
    with torch.no_grad():
        out = layers[1](torch.relu(layers[0](torch.tensor(test_x))))
    return {"steps": steps, "evalLogits": enc_fa(out.numpy()),
            "evalQParams": [{"weight": qparams(l.wfq), "input": qparams(l.afq)} for l in layers]}


def main():
    assert os.environ["ATEN_CPU_CAPABILITY"] == "default"
    torch.manual_seed(SEED % 2 ** 31)
    init = []
    for i, o in SIZES:
        lin = torch.nn.Linear(i, o)
        init.append((lin.weight.detach().numpy().astype(F32), lin.bias.detach().numpy().astype(F32)))
    # inputs like pixels: non-negative, some exact zeros
    batches = []
    for _ in range(STEPS):
        x = np.maximum(RNG.standard_normal((BATCH, SIZES[0][0])) * 0.8 + 0.3, 0).astype(F32)
        y = RNG.integers(0, SIZES[-1][1], BATCH)
        batches.append((x, y))
    test_x = np.maximum(RNG.standard_normal((16, SIZES[0][0])) * 0.8 + 0.3, 0).astype(F32)
    variants = [
        {"name": "ste-w8a8", "kind": "ste", "wbits": 8, "abits": 8, "momentum": 0.0, "lr": 0.1,
         "options": {}},
        {"name": "ste-w4a8", "kind": "ste", "wbits": 4, "abits": 8, "momentum": 0.0, "lr": 0.1,
         "options": {"weight": {"bits": 4}}},
        {"name": "ste-w2a8-minmax", "kind": "minmax", "wbits": 2, "abits": 8, "momentum": 0.0, "lr": 0.1,
         "options": {"weight": {"bits": 2}, "observer": "minmax"}},
        {"name": "lsq-w4a8", "kind": "lsq", "wbits": 4, "abits": 8, "momentum": 0.0, "lr": 0.1,
         "options": {"learnable": True, "weight": {"bits": 4}}},
        {"name": "lsq-w3a4-momentum", "kind": "lsq", "wbits": 3, "abits": 4, "momentum": 0.9, "lr": 0.05,
         "options": {"learnable": True, "weight": {"bits": 3}, "activation": {"bits": 4}}},
    ]
    runs = []
    for v in variants:
        r = run(v, init, batches, test_x)
        runs.append({"name": v["name"], "options": v["options"], "lr": v["lr"], "momentum": v["momentum"], **r})
    doc = {
        "torch": torch.__version__, "seed": SEED, "capability": "default", "sizes": SIZES,
        "init": [{"weight": enc_fa(w), "bias": enc_fa(b)} for w, b in init],
        "batches": [{"x": enc_fa(x), "labels": [int(v) for v in y]} for x, y in batches],
        "testX": enc_fa(test_x), "runs": runs,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"), allow_nan=False)
    print(f"wrote {OUT}: {len(runs)} runs of {STEPS} steps ({os.path.getsize(OUT)} bytes)")
    for r in runs:
        print(r["name"], "losses", [round(s["loss"], 5) for s in r["steps"]])


if __name__ == "__main__":
    main()
