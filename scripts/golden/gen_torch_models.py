#!/usr/bin/python3
"""Generate test/golden/torch_mlp.safetensors and test/golden/torch_models.json, the PyTorch oracle
that test/torch-models.golden.test.ts checks quantkit's nn models and quantizeModel against.

Run with Debian's python (it has torch and numpy):  /usr/bin/python3 scripts/golden/gen_torch_models.py

What is generated (every number below comes out of torch, float32, CPU, one thread):

  1. A seeded torch.nn.Sequential MLP
       Flatten, Linear(20,16), ReLU, Linear(16,12), GELU, Linear(12,8), Tanh, LayerNorm(8),
       Linear(8,5), Sigmoid, Linear(5,4), Softmax(dim=-1)
     It has PyTorch's default initialisation (torch.manual_seed), except LayerNorm's weight and
     bias. Those are random, the weight about 20 so that Sigmoid saturates. Its state_dict is
     written to torch_mlp.safetensors by the writer below, under PyTorch's names ('1.weight', ...).
     JSON: 4 input batches and the output of every layer for each. One batch is [B, 4, 5], so that
     Flatten does something. One is randn * 200, so that Tanh saturates. Sigmoid gives exactly 1.0
     on 44 values in all.
  2. Training, on the same model without its final Softmax (cross entropy takes logits), with
     LayerNorm's weight and bias replaced by moderate values, which are in the JSON. The reason is
     the 'sigmoid probe' below. Stored: the loss (F.cross_entropy, mean) on given labels, and the
     gradient of every parameter. For torch.optim.Adam (lr 1e-3, default betas and eps) and
     torch.optim.SGD (lr 0.1, momentum 0.9): the parameters after one step and after two. Before
     the second step the gradients are recomputed at the updated parameters (stored too), so the
     optimizer state matters. Adam's first step is lr * g / (|g| + eps) whatever the betas.
  3. Weight quantization, for every Linear of the MLP: per output channel, symmetric int8,
     scale = max|w_row| / 127 (float32). Codes come from torch.quantize_per_channel(w, scales,
     zero_points=0, axis=0, torch.qint8). Stored too: torch's dequantized weights, and the MLP's
     forward (every layer) with each Linear using its dequantized weights (F.linear). Plus a 'ties'
     Linear(16, 6) whose rows are built to probe rounding. It has exact halves with scales 1 and 0.5
     (round half to even). It also has near-tie values (k + 0.5) * s and their float32 neighbours,
     for scales that are not powers of two.
  4. 'sigmoid probe': torch.sigmoid and its gradient for x in +-[15, 18) and a few more values.

For every forward output, loss and gradient, the JSON also has torch's own float32 error. That is
max |float32 - float64| of the same torch computation, with the float32 parameters and inputs
widened to float64. The test allows quantkit a multiple of it; it matters only where float32 loses
digits.

Findings the script checks (it aborts if they stop holding):
  * On this build (no FBGEMM) torch.quantize_per_channel computes rint(w * float32(1 / scale)), the
    float32 reciprocal, like torch.quantize_per_tensor (see README.md). quantizeModel uses the ONNX
    formula rint(w / scale) (docs/ptq.md). On the MLP's random weights the two agree on every code.
    On the constructed near-tie rows of the 'ties' layer they differ on 24 codes. The JSON keeps
    both the torch codes and the division codes, so the test can pin exactly where they differ.
  * torch's dequantize equals float32(q * scale).
  * torch's float32 sigmoid returns exactly 1.0 from x ~ 16.6 up. The correctly rounded value is
    1 - 2^-24 up to x ~ 17.3. So torch's gradient there is exactly 0, where the exact one is
    ~4e-8 * dy. Adam normalises the gradient, so it turns that into no step for torch and a step
    of up to lr for a correctly rounded implementation. Training therefore keeps every Sigmoid
    input below 8 (asserted).

safetensors writer: 8-byte little-endian u64 N, N bytes of compact JSON
{"__metadata__": {...}, name: {"dtype", "shape", "data_offsets"}, ...} padded with spaces to a
multiple of 8, then the data; tensors sorted by dtype size (descending), then name, as the
reference writer lays them out.

Floats in the JSON are the shortest decimal that reads back as the same float32 (checked here);
non-finite values do not occur.
"""
import copy
import json
import os
import struct
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
SEED = 20240613
torch.manual_seed(SEED)
RNG = np.random.default_rng(SEED)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "test", "golden")
ST_NAME = "torch_mlp.safetensors"
JSON_NAME = "torch_models.json"

F32 = np.float32

# --------------------------------------------------------------------------------------------
# encoding


def enc_f(v):
    v = F32(v)
    assert np.isfinite(v), "non-finite value in the golden data"
    if v == 0:
        return "-0" if np.signbit(v) else 0.0
    r = float(np.format_float_positional(v, unique=True)) if 1e-4 <= abs(v) < 1e7 else float(repr(v))
    assert F32(r) == v
    return r


def enc_fa(a):
    return [enc_f(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def enc_ia(a):
    return [int(v) for v in np.asarray(a).ravel()]


def t2n(t):
    return t.detach().cpu().contiguous().numpy().astype(np.float32)


# --------------------------------------------------------------------------------------------
# safetensors writer

ST_DTYPES = {np.dtype(np.float32): ("F32", 4), np.dtype(np.int8): ("I8", 1), np.dtype(np.uint8): ("U8", 1),
             np.dtype(np.int32): ("I32", 4)}


def safetensors_bytes(tensors, metadata=None):
    """tensors: {name: numpy array}. Returns the file's bytes."""
    plan = []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dtype, size = ST_DTYPES[a.dtype]
        plan.append((name, dtype, size, a))
    plan.sort(key=lambda p: (-p[2], p[0]))
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    off = 0
    for name, dtype, size, a in plan:
        n = a.nbytes
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + n]}
        off += n
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    data = b"".join(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes() for _, _, _, a in plan)
    return struct.pack("<Q", len(text)) + text + data


# --------------------------------------------------------------------------------------------
# the model


def make_mlp():
    return nn.Sequential(
        nn.Flatten(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 12), nn.GELU(), nn.Linear(12, 8), nn.Tanh(),
        nn.LayerNorm(8), nn.Linear(8, 5), nn.Sigmoid(), nn.Linear(5, 4), nn.Softmax(dim=-1),
    )


LAYER_TYPES = ["Flatten", "Linear", "ReLU", "Linear", "GELU", "Linear", "Tanh", "LayerNorm", "Linear", "Sigmoid", "Linear", "Softmax"]
LINEARS = [i for i, t in enumerate(LAYER_TYPES) if t == "Linear"]


def layer_outputs(model, x):
    outs = []
    with torch.no_grad():
        v = x
        for m in model:
            v = m(v)
            outs.append(t2n(v).reshape(v.shape[0], -1))
    return outs


def torch_error(model, x, outs):
    """torch's own float32 rounding error per layer: max |float32 output - float64 output| of the same
    model (float32 weights widened) on the same input. The test allows quantkit a multiple of it."""
    m64 = copy.deepcopy(model).double()
    errs = []
    with torch.no_grad():
        v = x.double()
        for m, o in zip(m64, outs):
            v = m(v)
            errs.append(enc_f(np.abs(o.astype(np.float64) - v.reshape(v.shape[0], -1).numpy()).max()))
    return errs


def grads_f64(model, x, labels):
    """loss and gradients of the float32 model's parameters, computed in float64."""
    m64 = copy.deepcopy(model).double()
    m64.zero_grad()
    loss = F.cross_entropy(m64(x.double()), labels)
    loss.backward()
    return loss.item(), {k: p.grad.numpy() for k, p in m64.named_parameters()}


def grad_errors(loss32, grads32, loss64, grads64):
    return enc_f(abs(loss32 - loss64)), {k: enc_f(np.abs(grads32[k].astype(np.float64) - grads64[k]).max()) for k in grads32}


def main():
    model = make_mlp()
    with torch.no_grad():
        model[7].weight.copy_(torch.randn(8) * 20)
        model[7].bias.copy_(torch.randn(8) * 3)
    model.eval()
    state = {k: t2n(v) for k, v in model.state_dict().items()}
    assert list(state) == ["1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias", "7.weight", "7.bias",
                           "8.weight", "8.bias", "10.weight", "10.bias"], list(state)
    metadata = {"format": "pt"}
    st = safetensors_bytes(state, metadata)
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, ST_NAME), "wb") as f:
        f.write(st)

    # ---- 1. forward, every layer
    batches = []
    specs = [
        ("randn [8, 20]", torch.randn(8, 20)),
        ("randn [6, 4, 5] (Flatten)", torch.randn(6, 4, 5) * 1.5),
        ("large values x200 [6, 20] (Tanh saturates)", torch.randn(6, 20) * 200),
        ("uniform [-3, 3] [5, 20]", torch.rand(5, 20) * 6 - 3),
    ]
    sat = {"tanh": 0, "sigmoid1": 0, "sigmoid_small": 0, "sigmoid_tiny": 0}
    for name, x in specs:
        outs = layer_outputs(model, x)
        th = outs[6]
        sg = outs[9]
        sat["tanh"] += int((np.abs(th) == 1).sum())
        sat["sigmoid1"] += int((sg == 1).sum())
        sat["sigmoid_small"] += int((sg < 1e-4).sum())
        sat["sigmoid_tiny"] += int((sg < 1e-6).sum())
        # LayerNorm must not see (nearly) constant rows: that would amplify float32 rounding
        var = th.var(axis=1)
        assert var.min() > 0.01, (name, var.min())
        batches.append({"name": name, "shape": list(x.shape), "batch": int(x.shape[0]), "x": enc_fa(t2n(x)),
                        "outputs": [enc_fa(o) for o in outs], "torchError": torch_error(model, x, outs)})
    assert sat["tanh"] >= 10 and sat["sigmoid1"] >= 10 and sat["sigmoid_small"] >= 1 and sat["sigmoid_tiny"] >= 1, sat

    # ---- 2. training step (model without Softmax)
    # LayerNorm's weight and bias are replaced by moderate values (in the JSON), so that no Sigmoid
    # input comes near torch's float32 saturation point (see the module docstring, and the
    # 'sigmoid probe' below).
    train_ln = {"7.weight": torch.randn(8) * 1.5, "7.bias": torch.randn(8) * 0.5}

    def train_model():
        m = nn.Sequential(*[copy.deepcopy(model[i]) for i in range(len(model) - 1)])
        with torch.no_grad():
            m[7].weight.copy_(train_ln["7.weight"])
            m[7].bias.copy_(train_ln["7.bias"])
        m.train()
        return m

    xt = torch.randn(10, 20)
    labels = torch.from_numpy(RNG.integers(0, 4, 10)).long()
    m = train_model()
    loss64, g64 = grads_f64(m, xt, labels)
    loss = F.cross_entropy(m(xt), labels)
    loss.backward()
    grads = {k: t2n(p.grad) for k, p in m.named_parameters()}
    assert all(np.abs(g).max() > 0 for g in grads.values())

    def two_steps(make_opt):
        """Two optimizer steps from the initial parameters, the second at the gradients recomputed
        at the updated parameters (so that the optimizer's state matters)."""
        mm = train_model()
        opt = make_opt(mm.parameters())
        F.cross_entropy(mm(xt), labels).backward()
        opt.step()
        p1 = {k: t2n(p) for k, p in mm.named_parameters()}
        opt.zero_grad()
        l2_64, g2_64 = grads_f64(mm, xt, labels)
        opt.zero_grad()
        l2 = F.cross_entropy(mm(xt), labels)
        l2.backward()
        g2 = {k: t2n(p.grad) for k, p in mm.named_parameters()}
        opt.step()
        p2 = {k: t2n(p) for k, p in mm.named_parameters()}
        pre = layer_outputs(mm, xt)[8]
        assert np.abs(pre).max() < 8, np.abs(pre).max()
        l2_err, g2_err = grad_errors(l2.item(), g2, l2_64, g2_64)
        return opt, {"paramsStep1": {k: enc_fa(v) for k, v in p1.items()},
                     "lossStep2": enc_f(l2.item()), "lossStep2TorchError": l2_err,
                     "gradsStep2": {k: enc_fa(v) for k, v in g2.items()}, "gradsStep2TorchError": g2_err,
                     "paramsStep2": {k: enc_fa(v) for k, v in p2.items()}}

    opt, adam = two_steps(lambda ps: torch.optim.Adam(ps, lr=1e-3))
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["eps"] == 1e-8 and opt.defaults["weight_decay"] == 0
    assert opt.defaults["amsgrad"] is False and opt.defaults["maximize"] is False
    opt, sgd = two_steps(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9))
    assert opt.defaults["dampening"] == 0 and opt.defaults["nesterov"] is False and opt.defaults["weight_decay"] == 0

    pre = layer_outputs(m, xt)[8]
    assert np.abs(pre).max() < 8, np.abs(pre).max()
    loss_err, grad_err = grad_errors(loss.item(), grads, loss64, g64)
    train = {
        "x": enc_fa(t2n(xt)), "batch": 10, "labels": enc_ia(labels.numpy()),
        "stateOverrides": {k: enc_fa(t2n(v)) for k, v in train_ln.items()},
        "loss": enc_f(loss.item()), "lossTorchError": loss_err, "gradsTorchError": grad_err,
        "grads": {k: enc_fa(v) for k, v in grads.items()},
        "adam": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, **adam},
        "sgd": {"lr": 0.1, "momentum": 0.9, "dampening": 0, "nesterov": False, **sgd},
    }

    # ---- 3. per-channel int8 weight quantization
    def quant_rows(w):
        """torch codes, scales, dequantized weights, and the two formulas in numpy."""
        wt = torch.from_numpy(w)
        scales = wt.abs().amax(dim=1) / 127  # float32
        zps = torch.zeros(w.shape[0], dtype=torch.long)
        qw = torch.quantize_per_channel(wt, scales, zps, axis=0, dtype=torch.qint8)
        codes = qw.int_repr().numpy().astype(np.int32)
        qs = qw.q_per_channel_scales().numpy()
        s32 = t2n(scales)
        assert np.array_equal(qs.astype(np.float32), s32) and np.array_equal(qs, s32.astype(np.float64))
        # scale = max|w| / 127 correctly rounded to float32 (float64 division then float32: exact same)
        assert np.array_equal(s32, (np.abs(w).max(axis=1).astype(np.float64) / 127).astype(np.float32))
        deq = t2n(qw.dequantize())
        assert np.array_equal(deq, (codes.astype(np.float32) * s32[:, None]).astype(np.float32))
        div = np.clip(np.rint(w / s32[:, None]), -127, 127).astype(np.int32)
        recip = np.clip(np.rint(w * (F32(1) / s32)[:, None]), -128, 127).astype(np.int32)
        assert np.array_equal(codes, recip), "torch.quantize_per_channel is not rint(w * (1/scale)) here"
        return codes, s32, deq, div

    qlayers = []
    deq_model = copy.deepcopy(model)
    for i in LINEARS:
        w = state[f"{i}.weight"]
        codes, s32, deq, div = quant_rows(w)
        assert np.array_equal(codes, div), f"layer {i}: division and reciprocal codes differ on random weights"
        assert codes.min() >= -127
        with torch.no_grad():
            deq_model[i].weight.copy_(torch.from_numpy(deq))
        qlayers.append({"name": str(i), "shape": list(w.shape), "codes": enc_ia(codes), "scales": enc_fa(s32),
                        "dequantized": enc_fa(deq)})
    # check that the dequantized model is F.linear with the dequantized weights
    wo_batches = []
    for b, (name, x) in zip(batches, specs):
        outs = layer_outputs(deq_model, x)
        with torch.no_grad():
            xf = x.reshape(x.shape[0], -1)
            y = F.linear(xf, deq_model[1].weight, deq_model[1].bias)
            assert np.array_equal(t2n(y), outs[1])
        wo_batches.append({"name": name, "outputs": [enc_fa(o) for o in outs], "torchError": torch_error(deq_model, x, outs)})

    # the 'ties' layer: rows probing round half to even and the rounding formula
    K = 16
    rows = []
    r0 = np.array([127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5, 126.5, -126.5, 4.5, 5.5, -5.5, 0.49999997, 0], dtype=np.float32)
    r1 = (np.array([127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5, 126.5, -126.5, 4.5, 5.5, -5.5, 0, 1]) * 0.5).astype(np.float32)
    rows += [r0, r1]
    near_tie_scales = []
    for absmax in [1.0, 0.3, 0.77, 2.5]:
        s = F32(F32(absmax) / F32(127))
        k = RNG.integers(-120, 120, 4000).astype(np.float32)
        base = ((k + F32(0.5)) * s).astype(np.float32)
        cand = np.concatenate([base, np.nextafter(base, np.float32(np.inf)), np.nextafter(base, np.float32(-np.inf))])
        cand = cand[np.abs(cand) < F32(absmax)]
        dv = np.rint(cand / s)
        rc = np.rint(cand * (F32(1) / s))
        differ = cand[dv != rc]
        agree_ties = cand[(dv == rc) & (np.abs(cand / s - np.trunc(cand / s)) == 0.5)]
        agree_other = cand[dv == rc]
        assert len(differ) >= 6, (absmax, len(differ))
        pick = list(differ[:6]) + list(agree_ties[:4]) + list(agree_other[-5:])
        row = np.array([absmax] + pick, dtype=np.float32)
        assert row.size == K
        rows.append(row)
        near_tie_scales.append(float(absmax))
    wt = np.stack(rows).astype(np.float32)
    codes, s32, deq, div = quant_rows(wt)
    n_diff = int((codes != div).sum())
    assert n_diff >= 12, n_diff
    assert np.array_equal(codes[:2], div[:2])
    # rows 0 and 1 are exact ties: check round half to even explicitly
    assert enc_ia(codes[0]) == [127, 0, 2, 2, 0, -2, -2, 4, -4, 126, -126, 4, 6, -6, 0, 0]
    assert enc_ia(codes[1]) == [127, 0, 2, 2, 0, -2, -2, 4, -4, 126, -126, 4, 6, -6, 0, 1]
    assert s32[0] == 1 and s32[1] == 0.5
    bias = (torch.rand(6) - 0.5).numpy().astype(np.float32)
    ties = {"name": "0", "shape": [6, K], "weight": enc_fa(wt), "bias": enc_fa(bias), "codes": enc_ia(codes),
            "divisionCodes": enc_ia(div), "scales": enc_fa(s32), "differing": n_diff,
            "nearTieAbsmax": near_tie_scales}

    # ---- sigmoid near saturation: torch's float32 value and gradient (of sum) vs the correctly rounded
    xs = np.concatenate([np.arange(150, 180, dtype=np.float32) / F32(10), -np.arange(150, 180, dtype=np.float32) / F32(10),
                         np.array([0, 0.5, -0.5, 3, -3, 30, -30, 88, -88], dtype=np.float32)]).astype(np.float32)
    xt_s = torch.from_numpy(xs.copy()).requires_grad_(True)
    ys = torch.sigmoid(xt_s)
    ys.sum().backward()
    y_t = t2n(ys)
    g_t = t2n(xt_s.grad)
    y_exact = (1 / (1 + np.exp(-xs.astype(np.float64)))).astype(np.float32)
    rounds_to_one = int(((y_t == 1) & (y_exact < 1)).sum())
    assert rounds_to_one >= 5, rounds_to_one
    sigmoid_probe = {"x": enc_fa(xs), "y": enc_fa(y_t), "grad": enc_fa(g_t), "torchOneExactBelow": rounds_to_one,
                     "torchZeroGrad": int(((g_t == 0) & (y_exact < 1) & (xs > 0)).sum())}

    doc = {
        "meta": {
            "generator": "scripts/golden/gen_torch_models.py", "python": sys.version.split()[0],
            "torch": torch.__version__, "numpy": np.__version__, "seed": SEED,
            "quantizedEngines": list(torch.backends.quantized.supported_engines),
        },
        "mlp": {
            "file": ST_NAME, "metadata": metadata, "layers": LAYER_TYPES, "stateDictNames": list(state),
            "shapes": {k: list(v.shape) for k, v in state.items()},
            "batches": batches,
        },
        "train": train,
        "sigmoidProbe": sigmoid_probe,
        "quant": {"layers": qlayers, "weightOnly": wo_batches, "ties": ties},
    }
    with open(os.path.join(OUT_DIR, JSON_NAME), "w") as f:
        json.dump(doc, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    sizes = {n: os.path.getsize(os.path.join(OUT_DIR, n)) for n in (ST_NAME, JSON_NAME)}
    print(f"wrote {sizes}; saturation {sat}; ties layer: {n_diff} codes where rint(w/s) != torch's rint(w*(1/s))")


if __name__ == "__main__":
    main()
