// Golden tests of the fake-quantize modules against PyTorch 1.13 (test/golden/qat.json, written by
// scripts/golden/gen_qat.py from torch's scalar CPU kernels, ATEN_CPU_CAPABILITY=default):
//   fake_quantize_per_tensor_affine / _per_channel_affine: output and STE gradient bit for bit
//     (-0 included: dy * 0 for a negative dy on a clipped element).
//   FakeQuantize with MovingAverage / MinMax (per-channel) observers over 5 batches, with the observer
//     (eval mode or enableObserver(false)) or the fake-quant switched off for some: scale and zero
//     point after each batch, output and gradient, all bit for bit.
//   The learnable (LSQ) ops, with and without grad scaling, per tensor and per channel (axis 0 and
//     1), on rounding ties, at the clip edges and outside the range: output and dx bit for bit; each
//     element's scale / zero-point gradient term bit for bit (lsqGradOne); the summed gradients
//     within 2^-20 * sum|terms| (quantkit sums the float32 terms in float64 and rounds once; torch
//     sums in float32 with its cascade: the order differs, nothing else).
//   _LearnableFakeQuantize: scale / zero point from a MinMax observer on the first batch, then
//     learned over SGD steps: qparams, output, dx exact; gradients within the same bound.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeQuantize, LearnableFakeQuantize, lsqBackwardZeroPoint, lsqForwardZeroPoint, lsqGradFactor, lsqGradOne } from '../lib/nn';
import { fakeQuantize } from '../lib/tensor';

 
type Json = any;
const doc: Json = JSON.parse(readFileSync(join(__dirname, 'golden', 'qat.json'), 'utf8'));

function decF(v: number | string): number {
  if (typeof v === 'number') return v;
  return v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v === '-0' ? -0 : Number.NaN;
}
function f32(a: (number | string)[]): Float32Array {
  return Float32Array.from(a.map(decF));
}
/** Bit-for-bit equality of float32 arrays (-0 and +0 differ; NaN equals NaN). */
function expectBits(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, `${what} length`).toBe(want.length);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) expect.fail(`${what}[${i}]: got ${Object.is(got[i], -0) ? '-0' : got[i]}, torch ${Object.is(want[i], -0) ? '-0' : want[i]}`);
  }
}
function specNoGran(s: Json): Json {
  const { granularity: _g, ...rest } = s;
  return rest;
}

describe('golden: fake_quantize_per_tensor_affine / per_channel_affine (forward and STE)', () => {
  it('has per-tensor and per-channel cases at 2..8 bits', () => {
    expect(doc.ops.filter((c: Json) => c.op === 'per-tensor').length).toBeGreaterThanOrEqual(20);
    expect(doc.ops.filter((c: Json) => c.op === 'per-channel').length).toBeGreaterThanOrEqual(16);
  });
  for (const c of doc.ops) {
    it(c.name, () => {
      const x = f32(c.x);
      const mask = new Uint8Array(x.length);
      const y = fakeQuantize(x, c.shape, { scale: f32(c.scale), zeroPoint: Int32Array.from(c.zeroPoint) }, { ...c.spec, mask });
      expectBits(y, f32(c.y), 'y');
      // the STE as FakeQuantize.backward computes it: dy * mask
      const dx = Float32Array.from(f32(c.dy), (v, i) => v * mask[i]);
      expectBits(dx, f32(c.dx), 'dx');
    });
  }
});

describe('golden: FakeQuantize over several batches vs torch.ao.quantization.FakeQuantize', () => {
  it('has moving-average and minmax, per-tensor and per-channel cases, with switches', () => {
    const names = doc.module.map((c: Json) => c.name).join('\n');
    for (const s of ['moving-average', 'minmax', 'axis 0', 'axis 1', 'eval mode', 'fake-quant off']) expect(names).toContain(s);
  });
  for (const c of doc.module) {
    it(c.name, () => {
      const [B, F] = c.shape;
      const m = new FakeQuantize({ ...specNoGran(c.spec), granularity: c.spec.granularity, ...c.options });
      const evalSchedule = c.name.includes('eval mode');
      for (const [k, st] of c.steps.entries()) {
        if (evalSchedule) m.train(st.observer);
        else m.enableObserver(st.observer);
        m.enableFakeQuant(st.fakeQuant);
        const x = f32(st.x);
        const y = m.forward(x, B);
        const q = m.qparams!;
        expectBits(q.scale, f32(st.scale), `batch ${k} scale`);
        expect(Array.from(q.zeroPoint), `batch ${k} zero point`).toEqual(st.zeroPoint);
        expectBits(y, f32(st.y), `batch ${k} y`);
        if (!st.fakeQuant) expect(y).toBe(x);
        const dx = m.backward(f32(st.dy));
        expectBits(dx, f32(st.dx), `batch ${k} dx`);
        expect(B * F).toBe(x.length);
      }
      // calculateQParams is the observer's now (PyTorch's calculate_qparams)
      const cq = m.calculateQParams();
      expect(cq.scale.length).toBe(m.qparams!.scale.length);
    });
  }
});

/** Float32 sum of terms in float64, rounded once: what the modules add to the gradients. */
function groupSums(terms: Float32Array, shape: number[], axis: number | null): { sum: Float64Array; abs: Float64Array } {
  const [B, F] = shape;
  const groups = axis === null ? 1 : axis === 0 ? B : F;
  const sum = new Float64Array(groups);
  const abs = new Float64Array(groups);
  for (let r = 0; r < B; r++) {
    for (let c = 0; c < F; c++) {
      const g = axis === null ? 0 : axis === 0 ? r : c;
      const t = terms[r * F + c];
      sum[g] += t;
      abs[g] += Math.abs(t);
    }
  }
  return { sum, abs };
}

const SUM_BOUND = 2 ** -20;
let worstSum = 0;

describe('golden: the learnable (LSQ) ops vs torch._fake_quantize_learnable_per_*_affine', () => {
  it('has the behaviours the contract names: zero-point rounding that differs between forward and backward', () => {
    expect(doc.capability).toBe('default');
    expect(doc.found['backward zp differs']).toBeGreaterThan(0);
    expect(doc.found['backward mask differs']).toBeGreaterThan(0);
    expect(doc.learnable.filter((c: Json) => c.axis === null).length).toBeGreaterThanOrEqual(40);
    expect(doc.learnable.filter((c: Json) => c.axis === 0).length).toBeGreaterThanOrEqual(10);
    expect(doc.learnable.filter((c: Json) => c.axis === 1).length).toBeGreaterThanOrEqual(10);
    expect(doc.learnable.filter((c: Json) => c.gradScaling).length).toBe(doc.learnable.length / 2);
  });

  it('zero-point rounding: forward half to even; per-tensor backward float32 z + 0.5, clamped, truncated', () => {
    expect(lsqForwardZeroPoint(2.5, 0, 10)).toBe(2);
    expect(lsqForwardZeroPoint(3.5, 0, 10)).toBe(4);
    expect(lsqForwardZeroPoint(-0.7, -8, 7)).toBe(-1);
    expect(lsqForwardZeroPoint(10.6, 0, 10)).toBe(10);
    expect(lsqBackwardZeroPoint(2.5, 0, 10, false)).toBe(3);
    expect(lsqBackwardZeroPoint(3.5, 0, 10, false)).toBe(4);
    expect(lsqBackwardZeroPoint(-0.7, -8, 7, false)).toBe(0);
    expect(lsqBackwardZeroPoint(-1.5, -8, 7, false)).toBe(-1);
    expect(lsqBackwardZeroPoint(2.4999998, 0, 10, false)).toBe(2); // float32 2.4999998 + 0.5 = 2.9999998
    expect(lsqBackwardZeroPoint(2.5, 0, 10, true)).toBe(2);
    for (const c of doc.learnable) {
      const z = f32(c.zeroPoint);
      expect(Array.from(z, (v) => lsqForwardZeroPoint(v, c.qmin, c.qmax)), c.name).toEqual(c.forwardZeroPoint);
      expect(Array.from(z, (v) => lsqBackwardZeroPoint(v, c.qmin, c.qmax, c.axis !== null)), c.name).toEqual(c.backwardZeroPoint);
    }
  });

  it('grad factor: float32(1 / sqrt(numel * qmax))', () => {
    for (const c of doc.learnable) {
      const n = c.shape[0] * c.shape[1];
      expect(lsqGradFactor(n, c.qmax, c.gradScaling), c.name).toBe(Math.fround(decF(c.gradFactor)));
    }
  });

  for (const c of doc.learnable) {
    it(c.name, () => {
      const x = f32(c.x);
      const dy = f32(c.dy);
      const [B, F] = c.shape;
      const scale = f32(c.scale);
      const zp = f32(c.zeroPoint);
      const gf = Math.fround(decF(c.gradFactor));
      const axis: number | null = c.axis;
      // per element: lsqGradOne == torch's one-element op (a one-element sum turns -0 into +0)
      const tS = f32(c.dScaleTerms);
      const tZ = f32(c.dZeroPointTerms);
      const dxWant = f32(c.dx);
      const dxOne = new Float32Array(x.length);
      const ts = new Float32Array(x.length);
      const tz = new Float32Array(x.length);
      for (let r = 0; r < B; r++) {
        for (let k = 0; k < F; k++) {
          const i = r * F + k;
          const g = axis === null ? 0 : axis === 0 ? r : k;
          const zb = lsqBackwardZeroPoint(zp[g], c.qmin, c.qmax, axis !== null);
          const [a, b, d] = lsqGradOne(x[i], dy[i], scale[g], Math.fround(1 / scale[g]), zb, c.qmin, c.qmax, gf);
          dxOne[i] = a;
          ts[i] = b + 0;
          tz[i] = d + 0;
        }
      }
      expectBits(dxOne, dxWant, 'dx (lsqGradOne)');
      expectBits(ts, tS, 'dScale terms');
      expectBits(tz, tZ, 'dZeroPoint terms');
      // the module
      const m = new LearnableFakeQuantize({
        ...specNoGran(c.spec), granularity: c.spec.granularity, scale, zeroPoint: zp, gradScaling: c.gradScaling,
        ...(axis === null ? {} : { channels: scale.length }),
      });
      expect([m.spec.qmin, m.spec.qmax]).toEqual([c.qmin, c.qmax]);
      const y = m.forward(x, B);
      expectBits(y, f32(c.y), 'y');
      const dx = m.backward(dy);
      expectBits(dx, dxWant, 'dx');
      for (const [p, key, terms] of [[m.scale, 'dScale', tS], [m.zeroPoint, 'dZeroPoint', tZ]] as const) {
        const want = f32(c[key]);
        const { sum, abs } = groupSums(terms, c.shape, axis);
        for (let g = 0; g < want.length; g++) {
          expect(p.grad[g], `${key}[${g}]: ours = float32(float64 sum of the terms)`).toBe(Math.fround(sum[g]));
          const d = Math.abs(p.grad[g] - want[g]);
          if (abs[g] > 0) worstSum = Math.max(worstSum, d / abs[g]);
          expect(d, `${key}[${g}] vs torch ${want[g]}`).toBeLessThanOrEqual(SUM_BOUND * abs[g]);
        }
      }
    });
  }

  it('summed gradients: worst |ours - torch| / sum|terms| is within 2^-20', () => {
    expect(worstSum).toBeLessThanOrEqual(SUM_BOUND);
  });
});

describe('golden: _LearnableFakeQuantize (MinMax initialisation on the first batch, then learning)', () => {
  for (const c of doc.learnableModule) {
    it(c.name, () => {
      const [B, F] = c.shape;
      const g = c.spec.granularity;
      const axis: number | null = g === 'per-tensor' ? null : g.axis;
      const channels = axis === null ? undefined : axis === 0 ? B : F;
      const m = new LearnableFakeQuantize({ ...specNoGran(c.spec), granularity: g, ...(channels ? { channels } : {}) });
      expect(m.initialized).toBe(false);
      for (const [k, st] of c.steps.entries()) {
        if (k > 0) {
          // torch's SGD step (lr 0.01) is not under test here: start each step from torch's values
          m.scale.data.set(f32(st.scale));
          m.zeroPoint.data.set(f32(st.zeroPoint));
        }
        m.zeroGrad();
        const x = f32(st.x);
        const dy = f32(st.dy);
        const y = m.forward(x, B);
        expect(m.initialized).toBe(true);
        expectBits(m.scale.data, f32(st.scale), `step ${k} scale`);
        expectBits(m.zeroPoint.data, f32(st.zeroPoint), `step ${k} zero point`);
        expectBits(y, f32(st.y), `step ${k} y`);
        const dx = m.backward(dy);
        expectBits(dx, f32(st.dx), `step ${k} dx`);
        // the bound of the sums, from the per-element terms (checked bit for bit above)
        const gf = lsqGradFactor(x.length, m.spec.qmax, true);
        const absS = new Float64Array(m.scale.numel);
        const absZ = new Float64Array(m.scale.numel);
        for (let r = 0; r < B; r++) {
          for (let j = 0; j < F; j++) {
            const gi = axis === null ? 0 : axis === 0 ? r : j;
            const s = m.scale.data[gi];
            const zb = lsqBackwardZeroPoint(m.zeroPoint.data[gi], m.spec.qmin, m.spec.qmax, axis !== null);
            const [, ts, tz] = lsqGradOne(x[r * F + j], dy[r * F + j], s, Math.fround(1 / s), zb, m.spec.qmin, m.spec.qmax, gf);
            absS[gi] += Math.abs(ts);
            absZ[gi] += Math.abs(tz);
          }
        }
        for (const [p, key, abs] of [[m.scale, 'dScale', absS], [m.zeroPoint, 'dZeroPoint', absZ]] as const) {
          const want = f32(st[key]);
          for (let i = 0; i < want.length; i++) {
            expect(Math.abs(p.grad[i] - want[i]), `step ${k} ${key}[${i}]: ours ${p.grad[i]}, torch ${want[i]}`).toBeLessThanOrEqual(SUM_BOUND * abs[i]);
          }
        }
      }
    });
  }
});
