// The QAT backward on the native kernels (native/core/qat.cc, lib/native.ts steBackward /
// lsqBackward) as FakeQuantize, LearnableFakeQuantize and QATLinear use them:
//  - every supported kernel path (setIsa) and thread count gives the same bits: dx, the scale and
//    zero-point gradients, the weight gradient accumulated in place;
//  - the same dx as the TypeScript loops (setQatBackward('ts'), the reference: lib/nn/lsq.ts), and
//    scale / zero-point gradients within the documented bound of their sequential float64 sum
//    (docs/qat.md: 2^-40 * sum |terms|; here also 1 float32 ulp after the final rounding);
//  - the errors of the TypeScript checks (NaN x, non-finite dy) on inputs long enough to take the
//    native detection path, with nothing accumulated;
//  - the addon's own argument checks.
import { afterEach, describe, expect, it } from 'vitest';
import { cpuInfo, setIsa, setNumThreads, getNumThreads, prepareQAT } from '../lib/index';
import { FakeQuantize, LearnableFakeQuantize, Linear, ReLU, Sequential, lsqBackwardZeroPoint, lsqGradFactor, lsqGradOne, manualSeed, softmaxCrossEntropy } from '../lib/nn';
import { setQatBackward } from '../lib/nn/fake-quantize';
import * as native from '../lib/native';

const f = Math.fround;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** x around every code boundary (ties k.5 * s), beyond the clip edges, +-Inf; dy with both signs. */
function data(n: number, s: number, seed: number): { x: Float32Array; dy: Float32Array } {
  const r = rng(seed);
  const x = new Float32Array(n);
  const dy = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.01) x[i] = r() < 0.5 ? Infinity : -Infinity;
    else if (k < 0.6) x[i] = (Math.floor(r() * 300) - 40 + (r() < 0.5 ? 0.5 : 0)) * s;
    else x[i] = (r() - 0.3) * 300 * s;
    dy[i] = (r() - 0.5) * (r() < 0.05 ? 1e-30 : 2);
  }
  return { x, dy };
}

interface Run {
  dx: Float32Array;
  gs: Float32Array;
  gz: Float32Array;
}

type Gran = 'per-tensor' | { axis: number };
const GRANS: Gran[] = ['per-tensor', { axis: 0 }, { axis: 1 }];

function lsqRun(gran: Gran, batch: number, F: number, x: Float32Array, dy: Float32Array, bits: number, gradScaling: boolean): Run {
  const channels = gran === 'per-tensor' ? undefined : gran.axis === 0 ? batch : F;
  const l = new LearnableFakeQuantize({ granularity: gran, bits, scale: 0.05, zeroPoint: 2.5, channels, gradScaling });
  if (channels) for (let c = 0; c < channels; c++) { l.scale.data[c] = 0.05 * (1 + (c % 7) / 8); l.zeroPoint.data[c] = (c % 9) + 0.5; }
  l.forward(x, batch);
  const dx = l.backward(dy);
  return { dx, gs: l.scale.grad.slice(), gz: l.zeroPoint.grad.slice() };
}

function steRun(gran: Gran, batch: number, x: Float32Array, dy: Float32Array): Run {
  const m = new FakeQuantize({ granularity: gran, observer: 'minmax' });
  const finite = x.map((v) => (Number.isFinite(v) ? v : 0));
  m.forward(finite, batch); // observe finite values, then the forward under test (Inf clipped)
  m.enableObserver(false);
  m.forward(x, batch);
  return { dx: m.backward(dy), gs: new Float32Array(0), gz: new Float32Array(0) };
}

function bits32(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Bit-identical float32 arrays (a loop: toEqual on long typed arrays is slow). */
function expectBits(label: string, a: Float32Array, b: Float32Array): void {
  expect(a.length, label).toBe(b.length);
  const x = bits32(a), y = bits32(b);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) expect(`${label}[${i}]: ${a[i]} (0x${x[i].toString(16)})`).toBe(`${label}[${i}]: ${b[i]} (0x${y[i].toString(16)})`);
  }
}

function expectSame(label: string, a: Run, b: Run): void {
  expectBits(`${label}: dx`, a.dx, b.dx);
  expectBits(`${label}: scale grad`, a.gs, b.gs);
  expectBits(`${label}: zero-point grad`, a.gz, b.gz);
}

const paths = (): string[] => cpuInfo().supportedPaths;
const threads0 = getNumThreads();

afterEach(() => {
  setIsa('auto');
  setNumThreads(threads0);
  setQatBackward('native');
});

describe('QAT backward on the native kernels', () => {
  const shapes = [
    { batch: 3, F: 5 }, { batch: 17, F: 33 }, { batch: 64, F: 784 }, { batch: 300, F: 400 }, // the last: over 1 MiB, threaded
  ];

  it('every supported path and thread count gives the same bits (STE and LSQ, all granularities)', { timeout: 300_000 }, () => {
    expect(paths()).toContain('scalar');
    for (const [si, { batch, F }] of shapes.entries()) {
      const { x, dy } = data(batch * F, 0.05, 11 + si);
      for (const gran of GRANS) {
        setIsa('scalar');
        setNumThreads(1);
        const want = lsqRun(gran, batch, F, x, dy, 8, true);
        const wantSte = steRun(gran, batch, x, dy);
        for (const p of paths()) {
          for (const t of [1, 2, 3]) {
            setIsa(p);
            setNumThreads(t);
            const label = `${p} x${t} ${JSON.stringify(gran)} ${batch}x${F}`;
            expectSame(`LSQ ${label}`, lsqRun(gran, batch, F, x, dy, 8, true), want);
            expectSame(`STE ${label}`, steRun(gran, batch, x, dy), wantSte);
          }
        }
      }
    }
  });

  it('matches the TypeScript loops: dx bit for bit, the summed gradients within the bound', { timeout: 300_000 }, () => {
    for (const [si, { batch, F }] of shapes.entries()) {
      const { x, dy } = data(batch * F, 0.05, 101 + si);
      for (const gran of GRANS) {
        for (const [bits, gsc] of [[8, true], [4, false], [3, true]] as const) {
          const nat = lsqRun(gran, batch, F, x, dy, bits, gsc);
          setQatBackward('ts');
          const ts = lsqRun(gran, batch, F, x, dy, bits, gsc);
          const tsSte = steRun(gran, batch, x, dy);
          setQatBackward('native');
          const label = `${JSON.stringify(gran)} ${batch}x${F} ${bits} bits`;
          expectBits(`LSQ dx ${label}`, nat.dx, ts.dx);
          expectBits(`STE dx ${label}`, steRun(gran, batch, x, dy).dx, tsSte.dx);
          // sum |terms| per group, from lsqGradOne (the reference per element)
          const qmax = 2 ** bits - 1;
          const groups = nat.gs.length;
          const absS = new Float64Array(groups);
          const absZ = new Float64Array(groups);
          const gf = lsqGradFactor(x.length, qmax, gsc);
          const l = new LearnableFakeQuantize({ granularity: gran, bits, scale: 0.05, zeroPoint: 2.5, channels: groups > 1 ? groups : undefined });
          for (let c = 0; c < groups; c++) if (groups > 1) { l.scale.data[c] = 0.05 * (1 + (c % 7) / 8); l.zeroPoint.data[c] = (c % 9) + 0.5; }
          for (let i = 0; i < x.length; i++) {
            const g = gran === 'per-tensor' ? 0 : gran.axis === 0 ? Math.floor(i / F) : i % F;
            const s = l.scale.data[g];
            const zb = lsqBackwardZeroPoint(l.zeroPoint.data[g], 0, qmax, gran !== 'per-tensor');
            const [, ts1, tz1] = lsqGradOne(x[i], dy[i], s, f(1 / s), zb, 0, qmax, gf);
            absS[g] += Math.abs(ts1);
            absZ[g] += Math.abs(tz1);
          }
          for (let g = 0; g < groups; g++) {
            const ulp = (v: number) => Math.max(2 ** -149, Math.abs(v) * 2 ** -23);
            expect(Math.abs(nat.gs[g] - ts.gs[g]), `dScale[${g}] ${label}`).toBeLessThanOrEqual(2 ** -40 * absS[g] + ulp(ts.gs[g]));
            expect(Math.abs(nat.gz[g] - ts.gz[g]), `dZeroPoint[${g}] ${label}`).toBeLessThanOrEqual(2 ** -40 * absZ[g] + ulp(ts.gz[g]));
          }
        }
      }
    }
  });

  it('a QAT training step: the weight and bias gradients equal the TypeScript backward bit for bit', () => {
    // (the float GEMMs are not bit-identical across paths, so this compares on the selected one)
    const step = (learnable: boolean): [string, Float32Array][] => {
      manualSeed(3);
      const m = prepareQAT(new Sequential(new Linear(40, 30), new ReLU(), new Linear(30, 10)), { learnable });
      const r = rng(5);
      const x = Float32Array.from({ length: 32 * 40 }, () => r() * 2 - 0.5);
      const y = Int32Array.from({ length: 32 }, (_, i) => i % 10);
      const { grad } = softmaxCrossEntropy(m.forward(x, 32), y);
      m.backward(grad, { inputGrad: false });
      return m.namedParameters().map(([n, p]) => [n, p.grad.slice()]);
    };
    for (const learnable of [false, true]) {
      setQatBackward('ts');
      const ts = step(learnable);
      setQatBackward('native');
      const nat = step(learnable);
      expect(nat.map(([n]) => n)).toEqual(ts.map(([n]) => n));
      nat.forEach(([name, g], i) => {
        const t = ts[i][1];
        if (/\.(scale|zero_point)$/.test(name)) {
          // the scale / zero-point sums are reordered: here within 1 float32 ulp after rounding
          for (let j = 0; j < g.length; j++) expect(Math.abs(g[j] - t[j]), `${name}[${j}]`).toBeLessThanOrEqual(Math.abs(t[j]) * 2 ** -23 + 2 ** -149);
        } else {
          expectBits(`${name} (learnable ${learnable})`, g, t);
        }
      });
    }
  });

  it('NaN in x and non-finite dy on long inputs: the TypeScript errors, nothing accumulated', () => {
    const n = 4000;
    const x = new Float32Array(n).fill(0.3);
    const dy = new Float32Array(n).fill(0.5);
    for (const bad of [NaN, Infinity, -Infinity]) {
      const f1 = new FakeQuantize();
      f1.forward(x, 40);
      const d = dy.slice();
      d[1234] = bad;
      expect(() => f1.backward(d)).toThrow(/for dy\[1234\]/);
      const l = new LearnableFakeQuantize({ scale: 0.1 });
      l.forward(x, 40);
      expect(() => l.backward(d)).toThrow(/for dy\[1234\]/);
      expect(l.scale.grad[0]).toBe(0);
      expect(l.zeroPoint.grad[0]).toBe(0);
    }
    const xn = x.slice();
    xn[3001] = NaN;
    expect(() => new FakeQuantize().forward(xn, 40)).toThrow(/for x\[3001\] but received NaN/);
    expect(() => new LearnableFakeQuantize({ scale: 0.1 }).forward(xn, 40)).toThrow(/for x\[3001\] but received NaN/);
    // QATLinear's in-place weight gradient: checked before weight.grad is touched
    const q = prepareQAT(new Sequential(new Linear(100, 50)));
    q.forward(new Float32Array(8 * 100).fill(0.1), 8);
    const g = new Float32Array(8 * 50).fill(0.25);
    g[7] = NaN;
    expect(() => q.backward(g)).toThrow(RangeError);
    for (const p of q.parameters()) expect(p.grad.every((v) => v === 0)).toBe(true);
  });

  it('the addon checks its own arguments', () => {
    const L = { gran: native.GranularityCode.PerTensor, outer: 1, axisDim: 1, inner: 4, blockSize: 0 };
    const ok = () => ({
      x: new Float32Array(4), dy: new Float32Array(4), scale: Float32Array.of(0.1), zeroPoint: Int32Array.of(3), layout: L,
      qmin: 0, qmax: 255, gradFactor: 1, dx: new Float32Array(4) as Float32Array | null, accumulate: false,
      dScale: new Float64Array(1), dZeroPoint: new Float64Array(1),
    });
    expect(native.lsqBackward(ok())).toBe(0);
    expect(native.lsqBackward({ ...ok(), dx: null })).toBe(0);
    expect(() => native.lsqBackward({ ...ok(), dy: new Float32Array(3) })).toThrow(RangeError);
    expect(() => native.lsqBackward({ ...ok(), scale: Float32Array.of(0) })).toThrow(/scale/);
    expect(() => native.lsqBackward({ ...ok(), scale: Float32Array.of(1e-40) })).toThrow(/scale/);
    expect(() => native.lsqBackward({ ...ok(), zeroPoint: Int32Array.of(256) })).toThrow(/zeroPoint/);
    expect(() => native.lsqBackward({ ...ok(), gradFactor: Infinity })).toThrow(/gradFactor/);
    expect(() => native.lsqBackward({ ...ok(), qmin: 5, qmax: 5 })).toThrow(/qmin < qmax/);
    expect(() => native.lsqBackward({ ...ok(), dScale: new Float64Array(2) })).toThrow(RangeError);
    const o = ok();
    expect(() => native.lsqBackward({ ...o, dx: new Float32Array(o.x.buffer, 4, 4 - 1) })).toThrow(RangeError);
    const buf = new Float32Array(8);
    expect(() => native.lsqBackward({ ...ok(), x: buf.subarray(0, 4), dx: buf.subarray(2, 6) })).toThrow(/overlap|share/i);
    expect(native.steBackward(Float32Array.of(1, -2, Infinity), Uint8Array.of(1, 0, 1), new Float32Array(3), false)).toBe(1);
    expect(() => native.steBackward(new Float32Array(3), new Uint8Array(2), new Float32Array(3), false)).toThrow(RangeError);
    const dxs = new Float32Array(3);
    native.steBackward(Float32Array.of(1, -2, 3), Uint8Array.of(1, 0, 1), dxs, false);
    expect(Array.from(dxs)).toEqual([1, -0, 3]);
    expect(Object.is(dxs[1], -0)).toBe(true);
  });
});
