// Int8 GEMM API: ONNX MatMulInteger / QLinearMatMul semantics against plain-JS oracles, the fused
// epilogues (float32 formula bit for bit, close to float64; int8 / uint8 with an int32 bias as
// QLinearConv / QGemm on every path), packed weights, dynamic linear, the int32 bound, concurrency
// (async calls in flight, worker_threads) and pinned error messages.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { rng } from './helpers';
import { native } from '../lib/binding';
import {
  gemm, gemmAsync, linearDynamic, linearDynamicAsync, matmulInteger, packWeights, PackedWeights, qlinearMatMul,
} from '../lib/gemm';
import { cpuInfo, dynamicQuantizeLinear, setIsa, setNumThreads, getNumThreads } from '../lib/index';
import * as q from '../lib/index';

type Codes = Int8Array | Uint8Array;


function codes(signed: boolean, n: number, r: () => number, kind = 0): Codes {
  const a = signed ? new Int8Array(n) : new Uint8Array(n);
  const lo = signed ? -128 : 0, hi = signed ? 127 : 255;
  for (let i = 0; i < n; i++) a[i] = kind === 1 ? (r() < 0.5 ? lo : hi) : lo + Math.floor(r() * 256);
  return a;
}

const zpAt = (z: number | ArrayLike<number>, i: number) => (typeof z === 'number' ? z : z.length === 1 ? z[0] : z[i]);

function refAcc(a: Codes, b: Codes, M: number, K: number, N: number, za: number | ArrayLike<number>, zb: number | ArrayLike<number>, bT = false): number[] {
  const out: number[] = new Array(M * N).fill(0);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (a[i * K + k] - zpAt(za, i)) * ((bT ? b[j * K + k] : b[k * N + j]) - zpAt(zb, j));
      out[i * N + j] = s;
    }
  }
  return out;
}

describe('matmulInteger', () => {
  const shapes: [number, number, number][] = [[1, 1, 1], [1, 17, 5], [3, 16, 4], [7, 65, 13], [13, 100, 67], [6, 64, 128], [2, 131, 1], [1, 200, 257]];
  for (const [as, bs] of [[false, true], [false, false], [true, true], [true, false]]) {
    it(`is exact for ${as ? 's8' : 'u8'} x ${bs ? 's8' : 'u8'} on every tail, scalar and per-row/column zero points`, () => {
      const r = rng(as ? 7 : 3 + (bs ? 1 : 0));
      for (const [M, N, K] of shapes) {
        for (const kind of [0, 1]) {
          const a = codes(as, M * K, r, kind), b = codes(bs, K * N, r, kind);
          const alo = as ? -128 : 0, ahi = as ? 127 : 255, blo = bs ? -128 : 0, bhi = bs ? 127 : 255;
          for (const [za, zb] of [[0, 0], [alo, bhi], [ahi, blo]] as [number, number][]) {
            const got = matmulInteger(a, b, { K, N, aZeroPoint: za, bZeroPoint: zb });
            expect(got).toBeInstanceOf(Int32Array);
            expect(Array.from(got)).toEqual(refAcc(a, b, M, K, N, za, zb));
          }
          const zaRow = Int32Array.from({ length: M }, (_, i) => (i % 2 ? alo : ahi));
          const zbCol = (bs ? Int8Array : Uint8Array).from({ length: N }, (_, j) => (j % 3 ? bhi : blo));
          expect(Array.from(matmulInteger(a, b, { M, K, N, aZeroPoint: zaRow, bZeroPoint: zbCol }))).toEqual(refAcc(a, b, M, K, N, zaRow, zbCol));
        }
      }
    });
  }

  it('works out M, K, N from any one of them and fills opts.out', () => {
    const r = rng(5);
    const a = codes(false, 6 * 4, r), b = codes(true, 4 * 5, r);
    const want = refAcc(a, b, 6, 4, 5, 0, 0);
    expect(Array.from(matmulInteger(a, b, { K: 4 }))).toEqual(want);
    expect(Array.from(matmulInteger(a, b, { M: 6 }))).toEqual(want);
    expect(Array.from(matmulInteger(a, b, { N: 5 }))).toEqual(want);
    const out = new Int32Array(30);
    expect(matmulInteger(a, b, { K: 4, out })).toBe(out);
    expect(Array.from(out)).toEqual(want);
  });

  it('honours byteOffset of subarrays', () => {
    const r = rng(6);
    const abuf = codes(false, 100, r) as Uint8Array, bbuf = codes(true, 100, r) as Int8Array;
    const a = abuf.subarray(3, 3 + 4 * 7), b = bbuf.subarray(5, 5 + 7 * 9);
    expect(Array.from(matmulInteger(a, b, { K: 7 }))).toEqual(refAcc(a, b, 4, 7, 9, 0, 0));
  });

  it('refuses K that could overflow int32, naming K', () => {
    const K = 65794; // 65794 * 255 * 128 > 2^31 - 1 (u8 with zero point 0, s8 with 0)
    const a = new Uint8Array(K), b = new Int8Array(K);
    expect(() => matmulInteger(a, b, { K })).toThrow(RangeError);
    expect(() => matmulInteger(a, b, { K })).toThrow(/K = 65794/);
    expect(matmulInteger(a.subarray(1), b.subarray(1), { K: K - 1 })[0]).toBe(0);
  });

  it('pins argument errors', () => {
    const a = new Uint8Array(6), b = new Int8Array(6);
    expect(() => matmulInteger(new Float32Array(6) as never, b, { K: 3 })).toThrow(new TypeError('Expected Int8Array or Uint8Array for a but received Float32Array of length 6'));
    expect(() => matmulInteger(a, b, { K: 4 })).toThrow(new RangeError('Expected a length that is a multiple of K = 4 for b but received length 6'));
    expect(() => matmulInteger(a, b, { K: 3, aZeroPoint: 256 })).toThrow(new RangeError('Expected an integer between 0 and 255 for opts.aZeroPoint but received 256'));
    expect(() => matmulInteger(a, b, { K: 3, bZeroPoint: Int32Array.of(1, 2, 3) })).toThrow(new RangeError('Expected length 1 or 2 (one per column) for opts.bZeroPoint but received Int32Array of length 3'));
    expect(() => matmulInteger(a, b, { K: 3, out: new Int32Array(3) })).toThrow(new RangeError('Expected length 4 for opts.out but received Int32Array of length 3'));
    expect(() => matmulInteger(a, b, { K: 3, foo: 1 } as never)).toThrow(TypeError);
  });
});

describe('packWeights and gemm', () => {
  it('packs K x N and N x K (transposed) to the same product, reports byteLength, is immutable', () => {
    const r = rng(11);
    const M = 5, K = 33, N = 70;
    const a = codes(false, M * K, r), b = codes(true, K * N, r) as Int8Array;
    const bt = new Int8Array(N * K);
    for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) bt[j * K + k] = b[k * N + j];
    const p1 = packWeights(b, { K, N, zeroPoint: 3 });
    const p2 = packWeights(bt, { K, N, transposed: true, zeroPoint: 3, dtype: 'int8' });
    expect(p1).toBeInstanceOf(PackedWeights);
    expect(p1.byteLength).toBeGreaterThanOrEqual(N * K);
    expect([p1.K, p1.N, p1.dtype, p2.transposed]).toEqual([K, N, 'int8', true]);
    const want = refAcc(a, b, M, K, N, 7, 3);
    expect(Array.from(gemm(a, p1, { aZeroPoint: 7 }))).toEqual(want);
    expect(Array.from(gemm(a, p2, { aZeroPoint: 7, M }))).toEqual(want);
    expect(Object.isFrozen(p1)).toBe(true);
    expect(() => { (p1 as unknown as { K: number }).K = 1; }).toThrow(TypeError);
    b.fill(0); // packing copied b
    expect(Array.from(gemm(a, p1, { aZeroPoint: 7 }))).toEqual(want);
  });

  it('float32 epilogue: float32(acc) * (aScale * bScale[j]) + bias[j] bit for bit, ReLU, close to float64', () => {
    const r = rng(12);
    const M = 9, K = 45, N = 37;
    const a = codes(true, M * K, r), b = codes(false, K * N, r);
    const bScale = Float32Array.from({ length: N }, () => 0.001 + r() * 0.01);
    const bias = Float32Array.from({ length: N }, () => (r() - 0.5) * 100);
    const zb = Uint8Array.from({ length: N }, () => Math.floor(r() * 256));
    const p = packWeights(b, { K, N, zeroPoint: zb, scale: bScale });
    const aScale = Math.fround(0.0371);
    const acc = refAcc(a, b, M, K, N, -5, zb);
    for (const relu of [false, true]) {
      const y = gemm(a, p, { aZeroPoint: -5, aScale, output: 'float32', bias, relu });
      expect(y).toBeInstanceOf(Float32Array);
      for (let e = 0; e < M * N; e++) {
        const j = e % N;
        let v = Math.fround(Math.fround(acc[e]) * Math.fround(aScale * bScale[j]));
        v = Math.fround(v + bias[j]);
        if (relu) v = v > 0 ? v : 0;
        expect(y[e]).toBe(v);
        const v64 = acc[e] * aScale * bScale[j] + bias[j];
        if (!relu) expect(Math.abs(y[e] - v64)).toBeLessThanOrEqual(4e-7 * (Math.abs(acc[e] * aScale * bScale[j]) + Math.abs(bias[j])) + 1e-30);
      }
    }
  });

  it('int8 / uint8 outputs requantize as ONNX QLinearMatMul (float64, half to even, saturate)', () => {
    const r = rng(13);
    const M = 4, K = 19, N = 66;
    const a = codes(false, M * K, r), b = codes(true, K * N, r);
    const bScale = 0.02, aScale = 0.05, outScale = 0.7;
    const p = packWeights(b, { K, N, zeroPoint: -3, scale: bScale });
    const acc = refAcc(a, b, M, K, N, 128, -3);
    const mult = Math.fround(Math.fround(Math.fround(aScale) * Math.fround(bScale)) / Math.fround(outScale));
    const rint = (x: number) => { const f = Math.floor(x); const d = x - f; return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f; };
    for (const [output, zp, lo, hi] of [['int8', 5, -128, 127], ['uint8', 200, 0, 255]] as const) {
      for (const relu of [false, true]) {
        const y = gemm(a, p, { aZeroPoint: 128, aScale, output, outScale, outZeroPoint: zp, relu });
        expect(y).toBeInstanceOf(output === 'int8' ? Int8Array : Uint8Array);
        for (let e = 0; e < M * N; e++) {
          const q = Math.min(hi, Math.max(relu ? zp : lo, rint(acc[e] * mult + zp)));
          expect(y[e]).toBe(q);
        }
      }
    }
  });

  it('pins gemm argument errors', () => {
    const p = packWeights(new Int8Array(6), { K: 3, N: 2 });
    const a = new Uint8Array(6);
    expect(() => gemm(a, {} as never)).toThrow(new TypeError('Expected PackedWeights (from packWeights) for packed but received object'));
    expect(() => gemm(a, p, { output: 'int16' as never })).toThrow(new RangeError("Expected one of 'int32', 'float32', 'int8', 'uint8' for opts.output but received 'int16'"));
    expect(() => gemm(a, p, { output: 'int8' })).toThrow(new TypeError("Expected a positive finite number (needed by output 'int8') for opts.outScale but received undefined"));
    expect(() => gemm(a, p, { bias: new Float32Array(2) })).toThrow(TypeError);
    expect(() => gemm(a, p, { output: 'float32', bias: new Float32Array(3) })).toThrow(new RangeError('Expected length N = 2 for opts.bias but received Float32Array of length 3'));
    expect(() => gemm(a.subarray(1), p)).toThrow(new RangeError('Expected a length that is a multiple of K = 3 for a but received Uint8Array of length 5'));
    expect(() => packWeights(new Int8Array(6), { K: 3, N: 2, dtype: 'uint8' })).toThrow(new TypeError('Expected Uint8Array (dtype uint8) for b but received Int8Array of length 6'));
    expect(() => packWeights(new Int8Array(6), { K: 3, N: 2, scale: 0 })).toThrow(new RangeError('Expected a positive finite number for opts.scale but received 0'));
  });
});

describe('int8 / uint8 outputs with an int32 bias (ONNX QLinearConv / QGemm convention)', () => {
  afterAll(() => setIsa('auto'));
  const rint = (x: number) => { const f = Math.floor(x); const d = x - f; return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f; };
  const EXT = [2147483647, -2147483648, -2147483647, 0, 1, -1, 1 << 30];

  // Independent oracle: acc from plain JS loops, + bias (exact in float64), * the float32
  // multiplier, + zero point, round half to even, clamp (ReLU: at the zero point).
  function oracle(acc: number[], M: number, N: number, aScale: number | Float32Array, bScale: Float32Array,
    outScale: number, zp: number, bias: Int32Array, lo: number, hi: number, relu: boolean): number[] {
    const y: number[] = [];
    for (let i = 0; i < M; i++) {
      const as = Math.fround(typeof aScale === 'number' ? aScale : aScale[i]);
      for (let j = 0; j < N; j++) {
        const mult = Math.fround(Math.fround(as * bScale[j]) / Math.fround(outScale));
        const v = rint((acc[i * N + j] + bias[j]) * mult + zp);
        y.push(Math.min(hi, Math.max(relu ? zp : lo, v)));
      }
    }
    return y;
  }

  const SHAPES: [number, number, number][] = [[1, 1, 1], [2, 15, 7], [3, 16, 33], [5, 17, 4], [7, 63, 19], [6, 64, 64], [13, 65, 45], [4, 130, 129]];

  it('matches the float64 formula on every shape tail, per-tensor and per-row aScale, relu, and is identical on every path', () => {
    const r = rng(51);
    const cases = SHAPES.map(([M, N, K], c) => {
      const as_ = c % 2 === 0, bs_ = c % 3 !== 0;
      const a = codes(as_, M * K, r, c % 4 === 3 ? 1 : 0), b = codes(bs_, K * N, r, c % 4 === 3 ? 1 : 0);
      const za = as_ ? -3 : 131, zb = Int32Array.from({ length: N }, () => (bs_ ? -128 : 0) + Math.floor(r() * 256));
      const bScale = Float32Array.from({ length: N }, () => 0.0005 + r() * 0.005);
      const aScale = c % 2 ? Float32Array.from({ length: M }, () => 0.01 + r() * 0.1) : 0.037;
      const acc = refAcc(a, b, M, K, N, za, zb);
      // Random, extreme (+-(2^31 - 1), -2^31, 0, +-1) and cancelling row 0's acc.
      const bias = Int32Array.from({ length: N }, (_, j) =>
        c % 3 === 0 ? EXT[j % EXT.length] : c % 3 === 1 ? Math.floor((r() - 0.5) * 2 ** 20) : -acc[j] + Math.floor((r() - 0.5) * 4000));
      const p = packWeights(b, { K, N, zeroPoint: zb, scale: bScale });
      return { M, N, a, za, aScale, bScale, acc, bias, p, outScale: c % 3 === 0 ? 40 : 0.3 + c / 10 };
    });
    const want: Record<string, number[]> = {};
    for (const path of ['scalar', ...cpuInfo().supportedPaths.filter((x) => x !== 'scalar')]) {
      setIsa(path);
      try {
        cases.forEach((t, c) => {
          for (const [output, zp, lo, hi] of [['int8', -7, -128, 127], ['uint8', 140, 0, 255]] as const) {
            for (const relu of [false, true]) {
              const y = gemm(t.a, t.p, { aZeroPoint: t.za, aScale: t.aScale, output, outScale: t.outScale, outZeroPoint: zp, bias: t.bias, relu });
              expect(y).toBeInstanceOf(output === 'int8' ? Int8Array : Uint8Array);
              const key = `${c} ${output} ${relu}`;
              want[key] ??= oracle(t.acc, t.M, t.N, t.aScale, t.bScale, t.outScale, zp, t.bias, lo, hi, relu);
              expect(Array.from(y), `${path} ${key}`).toEqual(want[key]);
            }
          }
        });
      } finally {
        setIsa('auto');
      }
    }
  });

  it('the extreme sums are exact, never wrapped: (2^31 - 1 - ...) + (2^31 - 1) requantizes inside the range', () => {
    // acc = K * 255 * 255 (the largest K the int32 bound allows), bias = 2^31 - 1: the sum is about
    // 2^32 (an int32 sum would wrap to about -2^16); a tiny multiplier brings it back in range.
    const K = Math.floor(2147483647 / (255 * 255)), M = 2, N = 3;
    const a = new Uint8Array(M * K).fill(255), b = new Uint8Array(K * N).fill(255);
    const p = packWeights(b, { K, N, zeroPoint: 0, scale: 1e-4 });
    const acc = K * 255 * 255;
    const bias = Int32Array.of(2147483647, -2147483648, 0);
    const mult = Math.fround(Math.fround(Math.fround(1e-3) * Math.fround(1e-4)) / 40);
    const y = gemm(a, p, { aZeroPoint: 0, aScale: 1e-3, output: 'uint8', outScale: 40, outZeroPoint: 100, bias });
    const row = [0, 1, 2].map((j) => Math.min(255, Math.max(0, rint((acc + bias[j]) * mult + 100))));
    expect(row[0]).toBeGreaterThan(110);
    expect(Array.from(y)).toEqual([...row, ...row]);
  });

  it('an all-zero bias gives the bytes of no bias', () => {
    const r = rng(52);
    const M = 5, K = 23, N = 40;
    const a = codes(false, M * K, r), p = packWeights(codes(true, K * N, r), { K, N, zeroPoint: 2, scale: 0.01 });
    for (const output of ['int8', 'uint8'] as const) {
      const o = { aZeroPoint: 120, aScale: 0.02, output, outScale: 0.25, outZeroPoint: output === 'int8' ? 3 : 130 };
      expect(Array.from(gemm(a, p, { ...o, bias: new Int32Array(N) }))).toEqual(Array.from(gemm(a, p, o)));
    }
  });

  it('gemmAsync takes the bias too (on a private copy)', async () => {
    const r = rng(53);
    const M = 17, K = 70, N = 66;
    const a = codes(true, M * K, r), p = packWeights(codes(false, K * N, r), { K, N, zeroPoint: 129, scale: 0.003 });
    const bias = Int32Array.from({ length: N }, () => Math.floor((r() - 0.5) * 2 ** 16));
    const o = { aZeroPoint: -1, aScale: 0.05, output: 'int8', outScale: 0.2, outZeroPoint: 1, bias, relu: true } as const;
    const want = gemm(a, p, o);
    const pr = gemmAsync(a, p, o);
    bias.fill(0); // the call copied it
    const got = await pr;
    expect(got).toBeInstanceOf(Int8Array);
    expect(Array.from(got)).toEqual(Array.from(want));
    expect(Array.from(got)).not.toEqual(Array.from(gemm(a, p, { ...o, bias: undefined })));
    await expect(gemmAsync(a, p, { ...o, bias: new Int32Array(N + 1) })).rejects.toThrow(RangeError);
  });

  it('pins the bias errors (TypeScript and native)', () => {
    const p = packWeights(new Int8Array(6), { K: 3, N: 2 });
    const a = new Uint8Array(6);
    expect(() => gemm(a, p, { output: 'int8', outScale: 1, bias: new Float32Array(2) })).toThrow(
      new TypeError("Expected Int32Array (output 'int8' bias, scale aScale * bScale, zero point 0) for opts.bias but received Float32Array of length 2"));
    expect(() => gemm(a, p, { output: 'uint8', outScale: 1, bias: [1, 2] as never })).toThrow(
      new TypeError("Expected Int32Array (output 'uint8' bias, scale aScale * bScale, zero point 0) for opts.bias but received Array of length 2"));
    expect(() => gemm(a, p, { output: 'uint8', outScale: 1, bias: new Int32Array(3) })).toThrow(
      new RangeError('Expected length N = 2 for opts.bias but received Int32Array of length 3'));
    expect(() => gemm(a, p, { output: 'float32', bias: new Int32Array(2) })).toThrow(
      new TypeError('Expected Float32Array for opts.bias but received Int32Array of length 2'));
    expect(() => gemm(a, p, { bias: new Int32Array(2) })).toThrow(
      new TypeError("Option 'bias' needs output 'float32', 'int8' or 'uint8'; output is 'int32'"));
    const h = native.gemmPack(new Int8Array(6), true, 3, 2, false, 0, 1)[0];
    expect(() => native.gemm(a, false, 2, h, 0, 2, new Int8Array(4), null, new Float32Array(2), false, 1, 0)).toThrow(
      new TypeError('Expected Int32Array for bias but received Float32Array of length 2'));
    expect(() => native.gemm(a, false, 2, h, 0, 3, new Uint8Array(4), null, new Int32Array(1), false, 1, 0)).toThrow(
      new RangeError('Expected length 2 for bias but received Int32Array of length 1'));
    expect(() => native.gemm(a, false, 2, h, 0, 1, new Float32Array(4), null, new Int32Array(2), false, 1, 0)).toThrow(
      new TypeError('Expected Float32Array for bias but received Int32Array of length 2'));
    expect(() => native.gemm(a, false, 2, h, 0, 0, new Int32Array(4), null, new Int32Array(2), false, 1, 0)).toThrow(
      new TypeError('Expected null (output int32) for bias but received Int32Array of length 2'));
  });
});

describe('qlinearMatMul', () => {
  it('matches the ONNX formula with per-row a and per-column b qparams', () => {
    const r = rng(21);
    const M = 3, K = 10, N = 18;
    const a = codes(true, M * K, r), b = codes(false, K * N, r);
    const aScale = Float32Array.from({ length: M }, () => 0.01 + r() * 0.1);
    const aZp = Int8Array.from({ length: M }, () => Math.floor(r() * 20) - 10);
    const bScale = Float32Array.from({ length: N }, () => 0.01 + r() * 0.1);
    const bZp = Uint8Array.from({ length: N }, () => 100 + Math.floor(r() * 50));
    const y = qlinearMatMul(a, aScale, aZp, b, bScale, bZp, 0.3, Uint8Array.of(128), { K });
    expect(y).toBeInstanceOf(Uint8Array);
    const acc = refAcc(a, b, M, K, N, aZp, bZp);
    const rint = (x: number) => { const f = Math.floor(x); const d = x - f; return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f; };
    for (let e = 0; e < M * N; e++) {
      const i = Math.floor(e / N), j = e % N;
      const m = Math.fround(Math.fround(aScale[i] * bScale[j]) / Math.fround(0.3));
      expect(y[e]).toBe(Math.min(255, Math.max(0, rint(acc[e] * m + 128))));
    }
  });
});

describe('linearDynamic', () => {
  it('quantizes rows with DynamicQuantizeLinear and matches the float32 formula', () => {
    const r = rng(31);
    const M = 4, K = 24, N = 20;
    const x = Float32Array.from({ length: M * K }, () => (r() - 0.3) * 8);
    const b = codes(true, K * N, r);
    const bScale = 0.01;
    const bias = Float32Array.from({ length: N }, () => r());
    const p = packWeights(b, { K, N, scale: bScale });
    const y = linearDynamic(x, p, { bias });
    for (let i = 0; i < M; i++) {
      const { data: q, scale, zeroPoint } = dynamicQuantizeLinear(x.subarray(i * K, (i + 1) * K));
      const acc = refAcc(q as Uint8Array, b, 1, K, N, zeroPoint as number, 0);
      for (let j = 0; j < N; j++) {
        const v = Math.fround(Math.fround(Math.fround(acc[j]) * Math.fround(scale * Math.fround(bScale))) + bias[j]);
        expect(y[i * N + j]).toBe(v);
        let f = 0;
        for (let k = 0; k < K; k++) f += x[i * K + k] * b[k * N + j] * bScale;
        expect(Math.abs(y[i * N + j] - (f + bias[j]))).toBeLessThan(0.05 * Math.sqrt(K));
      }
    }
    const t = linearDynamic(x, p, { bias, activation: 'int8', granularity: 'per-tensor', relu: true });
    expect(t.every((v) => v >= 0)).toBe(true);
  });
});

describe('concurrency', () => {
  it('many async gemms in flight give the serial results, with 1 and 2 threads', async () => {
    const r = rng(41);
    const M = 37, K = 300, N = 130;
    const b = codes(true, K * N, r);
    const p = packWeights(b, { K, N, zeroPoint: 1, scale: 0.01 });
    const inputs = Array.from({ length: 24 }, () => codes(false, M * K, r) as Uint8Array);
    const saved = getNumThreads();
    for (const t of [1, 2]) {
      setNumThreads(t);
      const serial = inputs.map((a) => gemm(a, p, { aZeroPoint: 9, aScale: 0.1, output: 'float32' }));
      const xs = inputs.map((a) => Float32Array.from(a, (v) => v / 10));
      const lserial = xs.map((x) => linearDynamic(x, p));
      const par = await Promise.all(inputs.map((a) => gemmAsync(a, p, { aZeroPoint: 9, aScale: 0.1, output: 'float32' })));
      const lpar = await Promise.all(xs.map((x) => linearDynamicAsync(x, p)));
      par.forEach((y, i) => expect(Buffer.compare(Buffer.from(y.buffer), Buffer.from(serial[i].buffer))).toBe(0));
      lpar.forEach((y, i) => expect(Buffer.compare(Buffer.from(y.buffer), Buffer.from(lserial[i].buffer))).toBe(0));
    }
    setNumThreads(saved);
    await expect(gemmAsync(new Uint8Array(1), p)).rejects.toThrow(RangeError);
  });

  it('calls from several worker_threads give the same results as serial calls', async () => {
    const r = rng(42);
    const M = 20, K = 200, N = 100;
    const a = codes(false, M * K, r), b = codes(true, K * N, r);
    const want = matmulInteger(a, b, { K, aZeroPoint: 3, bZeroPoint: -2 });
    const addon = path.resolve(__dirname, '..', 'build', 'Release', 'quantkit.node');
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const q = require(workerData.addon);
      const { a, b, M, K, N } = workerData;
      const [h] = q.gemmPack(b, true, K, N, false, -2, 1);
      const results = [];
      for (let r = 0; r < 10; r++) {
        const out = new Int32Array(M * N);
        q.gemm(a, false, M, h, 3, 0, out, null, null, false, 1, 0);
        results.push(out);
      }
      parentPort.postMessage(results);`;
    const runs = await Promise.all(Array.from({ length: 4 }, () => new Promise<Int32Array[]>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { addon, a, b, M, K, N } });
      w.once('message', resolve);
      w.once('error', reject);
    })));
    for (const rs of runs) for (const got of rs) expect(Array.from(got)).toEqual(Array.from(want));
  });
});

describe('async calls on arrays detached or resized meanwhile (never a crash)', () => {
  it('matmulF32Async / gemmAsync / linearDynamicAsync compute on private copies', async () => {
    const n = 300;
    const a = new Float32Array(n * n).fill(1);
    const p = q.matmulF32Async(a, new Float32Array(n * n).fill(2), { M: n, K: n, N: n });
    structuredClone(a.buffer, { transfer: [a.buffer] }); // detach the input right away
    const c = await p;
    expect(c[0]).toBe(2 * n);
    expect(c[n * n - 1]).toBe(2 * n);

    const codes = new Uint8Array(64 * 64).fill(3);
    const packed = q.packWeights(new Int8Array(64 * 64).fill(-2), { K: 64, N: 64, dtype: 'int8' });
    const pg = q.gemmAsync(codes, packed, { M: 64 });
    structuredClone(codes.buffer, { transfer: [codes.buffer] });
    expect((await pg)[0]).toBe(3 * -2 * 64);

    const x = new Float32Array(64 * 64).fill(0.5);
    const pl = q.linearDynamicAsync(x, packed, { M: 64 });
    structuredClone(x.buffer, { transfer: [x.buffer] });
    expect((await pl).length).toBe(64 * 64);
  });

  it('rejects when the output was resized before the result arrived', async () => {
    const n = 200;
    const ab = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void })(n * n * 4, { maxByteLength: n * n * 4 });
    const out = new Float32Array(ab);
    const p = q.matmulF32Async(new Float32Array(n * n).fill(1), new Float32Array(n * n).fill(1), { M: n, K: n, N: n, out });
    ab.resize(0);
    await expect(p).rejects.toThrow('Expected opts.out to keep its length 40000 until the promise settled but received a Float32Array of length 0 (detached or resized meanwhile)');
  });
});
