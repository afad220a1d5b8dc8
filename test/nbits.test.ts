// Block-quantized GEMM (lib/nbits.ts): codes bit-identical to quantizeMatMulNBits, ORT layout round
// trips, values under every usable path against an independent JS oracle (unpacked with
// lib/formats/matmulnbits.ts, then a float64 matmul) within docs/nbits.md's bounds; the int8 compute
// bit-identical across paths and thread counts; pinned error messages; async == sync.
import { afterAll, describe, expect, it } from 'vitest';
import { cpuInfo, getNumThreads, setIsa, setNumThreads } from '../lib/index';
import { quantizeMatMulNBits, unpackMatMulNBits } from '../lib/formats/matmulnbits';
import { matmulNBits, matmulNBitsAsync, packWeightsNBits, PackedWeightsNBits } from '../lib/nbits';
import { matmulF32 } from '../lib/matmul-f32';
import { Linear, manualSeed, ReLU, Sequential } from '../lib/nn/index';
import { quantizeModel } from '../lib/ptq/index';
import { WeightOnlyStage } from '../lib/ptq/linear';
import { lcg as rng } from './helpers';

const paths = cpuInfo().supportedPaths;
const threads0 = getNumThreads();

afterAll(() => {
  setIsa('auto');
  setNumThreads(threads0);
});

function matrix(n: number, seed: number, spread = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => {
    const u = r();
    const x = r() * 2 - 1;
    if (u < 0.05) return x * 20 * spread;
    if (u < 0.1) return 0;
    return x * spread;
  });
}

interface Case { M: number; N: number; K: number; bits: 4 | 8; blockSize: number; symmetric: boolean; bias: boolean; relu: boolean }

const cases: Case[] = [];
{
  let t = 0;
  for (const blockSize of [16, 32, 64, 128, 256]) {
    for (const bits of [4, 8] as const) {
      for (const [M, N, K] of [[1, 33, 100], [1, 70, 257], [3, 17, 40], [5, 16, 300], [9, 40, 17], [2, 1, 1], [4, 65, 512]]) {
        t++;
        cases.push({ M, N, K, bits, blockSize, symmetric: t % 2 === 0, bias: t % 3 !== 0, relu: t % 4 === 1 });
      }
    }
  }
}

/** The oracle: codes unpacked with lib/formats, exact (q - zp) * scale, float64 sums. */
function oracle(w: { K: number; N: number; blockSize: number; bits: number; B: Uint8Array; scales: Float32Array; zeroPoints: Uint8Array | null }, x: Float32Array, M: number, bias: Float32Array | null) {
  const u = unpackMatMulNBits(w);
  const { K, N, blockSize } = w;
  const kb = Math.ceil(K / blockSize);
  const y = new Float64Array(M * N);
  const mag = new Float64Array(M * N);
  // int8 compute's activation quantization error: sum_b (s_b / 2) * sum_{k in b} |w_kn|.
  const qerr = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    const sx = new Float64Array(kb);
    for (let b = 0; b < kb; b++) {
      let m = 0;
      for (let k = b * blockSize; k < Math.min(K, (b + 1) * blockSize); k++) m = Math.max(m, Math.abs(x[i * K + k]));
      sx[b] = Math.fround(m / 127);
    }
    for (let n = 0; n < N; n++) {
      let s = 0, a = 0, e = 0;
      for (let k = 0; k < K; k++) {
        const b = Math.floor(k / blockSize);
        const wv = (u.codes[n * K + k] - u.zeroPoints[n * kb + b]) * u.scales[n * kb + b];
        s += x[i * K + k] * wv;
        a += Math.abs(x[i * K + k] * wv);
        e += (sx[b] * 0.5000001) * Math.abs(wv);
      }
      if (bias) { s += bias[n]; a += Math.abs(bias[n]); }
      y[i * N + n] = s;
      mag[i * N + n] = a;
      qerr[i * N + n] = e;
    }
  }
  return { y, mag, qerr };
}

function run(c: Case, compute: 'fp32' | 'int8', seed: number) {
  const w = matrix(c.K * c.N, seed, 0.2);
  const x = matrix(c.M * c.K, seed + 1);
  const bias = c.bias ? matrix(c.N, seed + 2) : undefined;
  const p = packWeightsNBits(w, { K: c.K, N: c.N, bits: c.bits, blockSize: c.blockSize, symmetric: c.symmetric });
  const y = matmulNBits(x, p, { M: c.M, bias, relu: c.relu, compute });
  return { w, x, bias, p, y };
}

describe('packWeightsNBits', () => {
  it('gives quantizeMatMulNBits codes, scales and zero points bit for bit (also transposed)', () => {
    for (const c of cases.slice(0, 30)) {
      const w = matrix(c.K * c.N, 11, 0.3);
      const ref = quantizeMatMulNBits(w, c.K, c.N, { bits: c.bits, blockSize: c.blockSize, symmetric: c.symmetric });
      const p = packWeightsNBits(w, { K: c.K, N: c.N, bits: c.bits, blockSize: c.blockSize, symmetric: c.symmetric });
      expect(p.toMatMulNBits()).toEqual(ref);
      const wt = new Float32Array(c.K * c.N);
      for (let k = 0; k < c.K; k++) for (let n = 0; n < c.N; n++) wt[n * c.K + k] = w[k * c.N + n];
      const pt = packWeightsNBits(wt, { K: c.K, N: c.N, bits: c.bits, blockSize: c.blockSize, symmetric: c.symmetric, transposed: true });
      expect(pt.toMatMulNBits()).toEqual(ref);
      expect(packWeightsNBits.fromMatMulNBits(ref).toMatMulNBits()).toEqual(ref);
      expect(p.byteLength).toBeGreaterThan(0);
    }
  });

  it('fromCodes keeps the codes it is given', () => {
    const codes = Uint8Array.from({ length: 20 * 3 }, (_, i) => i % 16);
    const scales = Float32Array.from({ length: 20 * 1 }, (_, i) => 0.5 + i);
    const zps = Uint8Array.from({ length: 20 }, (_, i) => i % 16);
    const p = packWeightsNBits.fromCodes(codes, scales, zps, { K: 3, N: 20, bits: 4, blockSize: 16 });
    expect(p.codes()).toEqual({ codes, scales, zeroPoints: zps });
    expect(p.symmetric).toBe(false);
  });

  it('refuses bad arguments with named messages', () => {
    const w = new Float32Array(64);
    expect(() => packWeightsNBits(w, { K: 8, N: 8, bits: 3 as 4 })).toThrow('Expected 4 or 8 for opts.bits but received 3');
    expect(() => packWeightsNBits(w, { K: 8, N: 8, blockSize: 48 })).toThrow('Expected a power of two from 16 to 256 for opts.blockSize but received 48');
    expect(() => packWeightsNBits(w, { K: 8, N: 8, blockSize: 512 })).toThrow(RangeError);
    expect(() => packWeightsNBits(w, { K: 8, N: 9 })).toThrow('Expected length K * N = 72 (K x N) for w');
    expect(() => packWeightsNBits.fromCodes(new Uint8Array(4), new Float32Array(4), null, { K: 1, N: 4, bits: 4, blockSize: 16 })).not.toThrow();
    expect(() => packWeightsNBits.fromCodes(new Uint8Array(4), new Float32Array(4).fill(NaN), null, { K: 1, N: 4, bits: 4, blockSize: 16 }))
      .toThrow('Expected a finite scale for scales[0] but received NaN');
    expect(() => packWeightsNBits.fromCodes(Uint8Array.of(16, 0, 0, 0), new Float32Array(4).fill(1), null, { K: 1, N: 4, bits: 4, blockSize: 16 }))
      .toThrow('Expected a code between 0 and 15 for codes[0] but received 16');
    const shape = { K: 1, N: 4, bits: 4 as const, blockSize: 16 };
    expect(() => packWeightsNBits.fromCodes(new Uint8Array(4), new Float32Array(4), null, null as never))
      .toThrow(new TypeError('Expected an options object with K, N, bits and blockSize for opts but received null'));
    expect(() => packWeightsNBits.fromCodes(new Uint8Array(4), new Float32Array(4), new Uint8Array(3), shape))
      .toThrow(new RangeError('Expected length N * kBlocks = 4 for zeroPoints but received Uint8Array of length 3'));
    expect(() => packWeightsNBits.fromCodes(new Uint8Array(4), new Float32Array(4), Uint8Array.of(0, 1, 2, 16), shape))
      .toThrow(new RangeError('Expected a code between 0 and 15 for zeroPoints[3] but received 16'));
    expect(() => packWeightsNBits.fromMatMulNBits(null as never))
      .toThrow(new TypeError('Expected a MatMulNBits object { B, scales, zeroPoints, K, N, bits, blockSize } for packed but received null'));
    const p = packWeightsNBits(w, { K: 8, N: 8 });
    expect(() => matmulNBits(new Float32Array(7), p, { M: 1 })).toThrow('Expected length M * K = 8 for x');
    expect(() => matmulNBits(new Float32Array(8), p, { M: 1, compute: 'int4' as 'int8' })).toThrow("Expected one of 'fp32', 'int8' for opts.compute but received 'int4'");
    expect(() => matmulNBits(new Float32Array(8), w as unknown as PackedWeightsNBits, { M: 1 })).toThrow('Expected PackedWeightsNBits (from packWeightsNBits) for packed');
    expect(() => matmulNBits(new Float32Array(8), p, { M: 1, bias: new Float32Array(3) })).toThrow(RangeError);
  });
});

describe.each(paths)('matmulNBits on path %s', (path) => {
  it('fp32 compute: within (blockSize + kBlocks + 2) 2^-23 (sum |x w| + |bias|) of the oracle', () => {
    setIsa(path);
    try {
      cases.forEach((c, ci) => {
        const { x, bias, p, y } = run(c, 'fp32', 100 + ci);
        const o = oracle(p.toMatMulNBits(), x, c.M, bias ?? null);
        const kb = Math.ceil(c.K / c.blockSize);
        for (let j = 0; j < y.length; j++) {
          const want = c.relu ? Math.max(0, o.y[j]) : o.y[j];
          const bound = (c.blockSize + kb + 2) * 2 ** -23 * o.mag[j] + 1e-30;
          if (!(Math.abs(y[j] - want) <= bound)) throw new Error(`${JSON.stringify(c)} y[${j}] = ${y[j]}, oracle ${want}, bound ${bound}`);
        }
      });
    } finally {
      setIsa('auto');
    }
  });

  it('int8 compute: bit-identical to the scalar path and within the activation quantization error of the oracle', () => {
    cases.forEach((c, ci) => {
      setIsa('scalar');
      const ref = run(c, 'int8', 200 + ci);
      setIsa(path);
      const got = run(c, 'int8', 200 + ci);
      setIsa('auto');
      expect(Buffer.from(got.y.buffer).equals(Buffer.from(ref.y.buffer))).toBe(true);
      const o = oracle(ref.p.toMatMulNBits(), ref.x, c.M, ref.bias ?? null);
      const kb = Math.ceil(c.K / c.blockSize);
      for (let j = 0; j < got.y.length; j++) {
        const want = c.relu ? Math.max(0, o.y[j]) : o.y[j];
        const bound = o.qerr[j] + (kb + 4) * 2 ** -23 * (o.mag[j] + o.qerr[j]) + 1e-30;
        if (!(Math.abs(got.y[j] - want) <= bound)) throw new Error(`${JSON.stringify(c)} y[${j}] = ${got.y[j]}, oracle ${want}, bound ${bound}`);
      }
    });
  });
});

describe('matmulNBits', () => {
  it('thread counts never change a result; async equals sync; out is filled', async () => {
    const c: Case = { M: 3, N: 500, K: 1000, bits: 4, blockSize: 32, symmetric: false, bias: true, relu: false };
    for (const compute of ['fp32', 'int8'] as const) {
      setNumThreads(1);
      const a = run(c, compute, 7);
      setNumThreads(2);
      const b = run(c, compute, 7);
      setNumThreads(threads0);
      expect(Buffer.from(a.y.buffer).equals(Buffer.from(b.y.buffer))).toBe(true);
      const out = new Float32Array(c.M * c.N);
      const y = await matmulNBitsAsync(a.x, a.p, { M: c.M, bias: a.bias, compute, out });
      expect(y).toBe(out);
      expect(Buffer.from(out.buffer).equals(Buffer.from(a.y.buffer))).toBe(true);
      const y2 = await matmulNBitsAsync(a.x, a.p, { M: c.M, bias: a.bias, compute });
      expect(Buffer.from(y2.buffer).equals(Buffer.from(a.y.buffer))).toBe(true);
    }
  });

  it('M = 0 gives an empty output', () => {
    const p = packWeightsNBits(new Float32Array(16 * 4), { K: 16, N: 4 });
    expect(matmulNBits(new Float32Array(0), p, { M: 0 }).length).toBe(0);
  });
});

describe('quantizeModel weight-only on matmulNBits', () => {
  it('groups of 16..256 run on the packed weights (fp32 compute within the bound of the dequantized product; int8 on request)', async () => {
    manualSeed(5);
    const model = new Sequential(new Linear(72, 33), new ReLU(), new Linear(33, 7));
    model.eval();
    const x = matrix(4 * 72, 77);
    for (const [bits, groupSize, scheme] of [[4, 32, 'symmetric'], [8, 16, 'asymmetric'], [4, 64, 'asymmetric']] as const) {
      const q = quantizeModel(model, { mode: 'weight-only', bits, granularity: { groupSize }, scheme });
      const stages = q.stages.filter((s): s is WeightOnlyStage => s instanceof WeightOnlyStage);
      expect(stages.length).toBe(2);
      let h = x;
      for (const s of stages) {
        expect(s.nbits).not.toBeNull();
        const [N, K] = s.weight.tensor.shape;
        const y = s.run({ f: h }, 4).f as Float32Array;
        const ref = matmulF32(h, s.weight.tensor.dequantize(), { M: 4, K, N, transB: true, bias: s.bias ?? undefined, relu: s.relu });
        const wd = s.weight.tensor.dequantize();
        const kb = Math.ceil(K / groupSize);
        for (let i = 0; i < 4; i++) {
          for (let n = 0; n < N; n++) {
            let mag = Math.abs(s.bias?.[n] ?? 0);
            for (let k = 0; k < K; k++) mag += Math.abs(h[i * K + k] * wd[n * K + k]);
            // both within their bounds of the exact product: fp32 GEMM (K + 1) 2^-23, nbits (bs + kb + 2) 2^-23
            expect(Math.abs(y[i * N + n] - ref[i * N + n])).toBeLessThanOrEqual((K + 1 + groupSize + kb + 2) * 2 ** -23 * mag + 1e-30);
          }
        }
        s.compute = 'int8';
        const y8 = s.run({ f: h }, 4).f as Float32Array;
        const want8 = matmulNBits(h, s.nbits!, { M: 4, bias: s.bias ?? undefined, relu: s.relu, compute: 'int8' });
        expect(Buffer.from(y8.buffer).equals(Buffer.from(want8.buffer))).toBe(true);
        const y8a = (await s.runAsync({ f: h }, 4)).f as Float32Array;
        expect(Buffer.from(y8a.buffer).equals(Buffer.from(want8.buffer))).toBe(true);
        s.compute = 'fp32';
        h = y;
      }
    }
  });

  it('keeps the dequantize + fp32 GEMM path for groups nbits cannot take', () => {
    manualSeed(6);
    const model = new Sequential(new Linear(24, 10));
    for (const granularity of [{ groupSize: 8 }, { groupSize: 24 }, 'per-channel'] as const) {
      const q = quantizeModel(model, { mode: 'weight-only', bits: 4, granularity });
      expect((q.stages[0] as WeightOnlyStage).nbits).toBeNull();
    }
  });
});
