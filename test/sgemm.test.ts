// fp32 GEMM (lib/matmul-f32.ts): values against a float64 reference within the documented bound
// (docs/numerics.md, "fp32 GEMM") on many shapes under every usable path, packed weights, the
// bias / ReLU epilogue, subarray views, pinned error messages, and async == sync with many calls
// in flight.
import { afterAll, describe, expect, it } from 'vitest';
import { cpuInfo, getNumThreads, setIsa, setNumThreads } from '../lib/index';
import { matmulF32, matmulF32Async, packWeightsF32, PackedWeightsF32 } from '../lib/matmul-f32';
import { lcg as rng } from './helpers';

const paths = cpuInfo().supportedPaths.filter((p) => ['scalar', 'avx2', 'avx512', 'neon'].includes(p));
const threads0 = getNumThreads();

afterAll(() => {
  setIsa('auto');
  setNumThreads(threads0);
});

function matrix(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => {
    const u = r();
    const x = r() * 2 - 1;
    if (u < 0.05) return x * 1000;
    if (u < 0.1) return x * 1e-3;
    if (u < 0.15) return 0;
    if (u < 0.25) return Math.round(x * 8) / 8;
    return x;
  });
}

interface Case { M: number; K: number; N: number; transB?: boolean; bias?: Float32Array; relu?: boolean }

/** Checks c against the float64 product: |c - c64| <= (K + 1) 2^-23 (sum |a b| + |bias|) + tiny. */
function expectWithinBound(a: Float32Array, b: Float32Array, c: Float32Array, { M, K, N, transB, bias, relu }: Case): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      let mag = 0;
      for (let k = 0; k < K; k++) {
        const p = a[i * K + k] * (transB ? b[j * K + k] : b[k * N + j]);
        s += p;
        mag += Math.abs(p);
      }
      if (bias) {
        s += bias[j];
        mag += Math.abs(bias[j]);
      }
      if (relu && s < 0) s = 0;
      const bound = (K + 1) * 2 ** -23 * mag + (K + 1) * 2 ** -149;
      const got = c[i * N + j];
      if (!(Math.abs(got - s) <= bound)) {
        throw new Error(`C[${i}][${j}] = ${got}, float64 ${s}, bound ${bound} (M=${M} K=${K} N=${N} transB=${!!transB})`);
      }
    }
  }
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 5], [1, 300, 1031], [2, 3, 1], [3, 1, 2], [5, 17, 33], [7, 31, 47], [13, 257, 65],
  [14, 16, 32], [15, 33, 31], [29, 64, 100], [31, 7, 513], [64, 64, 64], [97, 300, 131], [250, 600, 47], [520, 40, 70],
];

describe('matmulF32 values (every path)', () => {
  for (const path of paths) {
    it(`is within the bound of the float64 product on path ${path}`, () => {
      setIsa(path);
      try {
        let seed = 1;
        for (const [M, K, N] of SHAPES) {
          for (const transB of [false, true]) {
            const a = matrix(M * K, seed++);
            const b = matrix(K * N, seed++);
            const bias = seed % 3 ? matrix(N, seed++) : undefined;
            const relu = seed % 4 === 1;
            const c = matmulF32(a, b, { M, K, N, transB, bias, relu });
            expect(c).toBeInstanceOf(Float32Array);
            expect(c.length).toBe(M * N);
            expectWithinBound(a, b, c, { M, K, N, transB, bias, relu });
            // The same B packed gives the same bits (M > 1 or B not transposed: same kernel chain).
            const packed = packWeightsF32(b, { K, N, transposed: transB });
            const cp = matmulF32(a, packed, { M, bias, relu });
            if (M > 1 || !transB) expect(Buffer.from(cp.buffer).equals(Buffer.from(c.buffer))).toBe(true);
            else expectWithinBound(a, b, cp, { M, K, N, transB, bias, relu });
          }
        }
      } finally {
        setIsa('auto');
      }
    });
  }

  it('handles K = 0 (C = bias, then ReLU), M = 0 and N = 0', () => {
    const bias = Float32Array.from([1.5, -2, 0, -0]);
    expect(Array.from(matmulF32(new Float32Array(0), new Float32Array(0), { M: 3, K: 0, N: 4 }))).toEqual(new Array(12).fill(0));
    const c = matmulF32(new Float32Array(0), new Float32Array(0), { M: 2, K: 0, N: 4, bias });
    expect(Array.from(c)).toEqual([1.5, -2, 0, 0, 1.5, -2, 0, 0]);
    const r = matmulF32(new Float32Array(0), new Float32Array(0), { M: 1, K: 0, N: 4, bias, relu: true });
    expect(Array.from(r)).toEqual([1.5, 0, 0, 0]);
    expect(matmulF32(new Float32Array(0), new Float32Array(5 * 3), { M: 0, K: 5, N: 3 }).length).toBe(0);
    expect(matmulF32(new Float32Array(2 * 5), new Float32Array(0), { M: 2, K: 5, N: 0 }).length).toBe(0);
    const p0 = packWeightsF32(new Float32Array(0), { K: 0, N: 4 });
    expect(Array.from(matmulF32(new Float32Array(0), p0, { M: 1, bias }))).toEqual([1.5, -2, 0, 0]);
  });

  it('computes a small product exactly', () => {
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]); // 2 x 3
    const b = Float32Array.from([7, 8, 9, 10, 11, 12]); // 3 x 2
    expect(Array.from(matmulF32(a, b, { M: 2, K: 3, N: 2 }))).toEqual([58, 64, 139, 154]);
    const bt = Float32Array.from([7, 9, 11, 8, 10, 12]); // 2 x 3 (N x K)
    expect(Array.from(matmulF32(a, bt, { M: 2, K: 3, N: 2, transB: true }))).toEqual([58, 64, 139, 154]);
    const bias = Float32Array.from([-100, -200]);
    expect(Array.from(matmulF32(a, b, { M: 2, K: 3, N: 2, bias, relu: true }))).toEqual([0, 0, 39, 0]);
  });

  it('propagates NaN and Inf', () => {
    const a = new Float32Array(3 * 40).fill(0.5);
    a[5] = NaN;
    a[2 * 40 + 39] = Infinity;
    const b = new Float32Array(40 * 20).fill(0.25);
    const c = matmulF32(a, b, { M: 3, K: 40, N: 20, relu: true });
    for (let j = 0; j < 20; j++) {
      expect(c[j]).toBeNaN();
      expect(c[20 + j]).toBe(5);
      expect(c[40 + j]).toBe(Infinity);
    }
  });

  it('gives the same bits with 1, 2 and 3 threads', () => {
    const [M, K, N] = [300, 700, 200];
    const a = matrix(M * K, 5);
    const b = matrix(K * N, 6);
    setNumThreads(1);
    const c1 = matmulF32(a, b, { M, K, N });
    setNumThreads(2);
    const c2 = matmulF32(a, b, { M, K, N });
    setNumThreads(3);
    const c3 = matmulF32(a, b, { M, K, N });
    setNumThreads(threads0);
    expect(Buffer.from(c2.buffer).equals(Buffer.from(c1.buffer))).toBe(true);
    expect(Buffer.from(c3.buffer).equals(Buffer.from(c1.buffer))).toBe(true);
    expectWithinBound(a, b, c1, { M, K, N });
  });

  it('reads subarray views and writes into out in place', () => {
    const [M, K, N] = [5, 9, 7];
    const abig = matrix(M * K + 10, 1);
    const bbig = matrix(K * N + 6, 2);
    const biasBig = matrix(N + 3, 3);
    const a = abig.subarray(3, 3 + M * K);
    const b = bbig.subarray(5, 5 + K * N);
    const bias = biasBig.subarray(2, 2 + N);
    const outBuf = new Float32Array(M * N + 8).fill(-7);
    const out = outBuf.subarray(4, 4 + M * N);
    const ret = matmulF32(a, b, { M, K, N, out, bias });
    expect(ret).toBe(out);
    expectWithinBound(a, b, out, { M, K, N, bias });
    expect(Array.from(outBuf.subarray(0, 4))).toEqual([-7, -7, -7, -7]);
    expect(Array.from(outBuf.subarray(4 + M * N))).toEqual([-7, -7, -7, -7]);
    const packed = packWeightsF32(b, { K, N });
    const c2 = matmulF32(a, packed, { M, bias });
    expect(Array.from(c2)).toEqual(Array.from(out));
  });
});

describe('packWeightsF32', () => {
  it('is immutable, reports its size and K / N / transposed', () => {
    const p = packWeightsF32(new Float32Array(70 * 300), { K: 300, N: 70, transposed: true });
    expect(p).toBeInstanceOf(PackedWeightsF32);
    expect(p.K).toBe(300);
    expect(p.N).toBe(70);
    expect(p.transposed).toBe(true);
    expect(p.byteLength).toBe(96 * 300 * 4);
    expect(Object.isFrozen(p)).toBe(true);
    expect(() => { (p as unknown as { K: number }).K = 1; }).toThrow(TypeError);
  });

  it('serves every path (one packed B for all)', () => {
    const [M, K, N] = [33, 270, 45];
    const a = matrix(M * K, 8);
    const b = matrix(N * K, 9);
    const p = packWeightsF32(b, { K, N, transposed: true });
    for (const path of paths) {
      setIsa(path);
      try {
        expectWithinBound(a, b, matmulF32(a, p, { M, relu: true }), { M, K, N, transB: true, relu: true });
      } finally {
        setIsa('auto');
      }
    }
  });
});

describe('matmulF32Async', () => {
  it('equals the sync result with many calls in flight', async () => {
    const shapes: [number, number, number][] = [[1, 64, 100], [7, 33, 17], [64, 128, 96], [130, 300, 70], [1, 500, 1000]];
    const jobs: { args: [Float32Array, Float32Array | PackedWeightsF32, object]; want: Float32Array }[] = [];
    let seed = 100;
    for (let rep = 0; rep < 8; rep++) {
      for (const [M, K, N] of shapes) {
        const a = matrix(M * K, seed++);
        const b = matrix(K * N, seed++);
        const bias = matrix(N, seed++);
        const transB = rep % 2 === 1;
        const opts = { M, K, N, transB, bias, relu: rep % 3 === 0 };
        jobs.push({ args: [a, b, opts], want: matmulF32(a, b, opts) });
        const p = packWeightsF32(b, { K, N, transposed: transB });
        const popts = { M, bias };
        jobs.push({ args: [a, p, popts], want: matmulF32(a, p, popts) });
      }
    }
    const got = await Promise.all(jobs.map((j) => matmulF32Async(...(j.args as [Float32Array, Float32Array, { M: number; K: number; N: number }]))));
    for (let i = 0; i < jobs.length; i++) {
      expect(Buffer.from(got[i].buffer).equals(Buffer.from(jobs[i].want.buffer))).toBe(true);
    }
  });

  it('writes into out and resolves to it', async () => {
    const out = new Float32Array(2);
    const r = await matmulF32Async(Float32Array.from([1, 2]), Float32Array.from([3, 4, 5, 6]), { M: 1, K: 2, N: 2, out });
    expect(r).toBe(out);
    expect(Array.from(out)).toEqual([13, 16]);
  });

  it('rejects (does not throw) on bad arguments', async () => {
    await expect(matmulF32Async(new Int8Array(3) as unknown as Float32Array, new Float32Array(3), { M: 1, K: 3, N: 1 }))
      .rejects.toThrow('Expected Float32Array for a but received Int8Array of length 3');
  });
});

describe('matmulF32 argument errors', () => {
  const a = new Float32Array(6);
  const b = new Float32Array(6);
  it('pins the messages', () => {
    expect(() => matmulF32(new Int8Array(3) as unknown as Float32Array, b, { M: 1, K: 3, N: 2 }))
      .toThrow(new TypeError('Expected Float32Array for a but received Int8Array of length 3'));
    expect(() => matmulF32(a, [1, 2] as unknown as Float32Array, { M: 2, K: 3, N: 2 }))
      .toThrow(new TypeError('Expected Float32Array or PackedWeightsF32 for b but received Array of length 2'));
    expect(() => matmulF32(a, b, undefined as unknown as { M: number }))
      .toThrow(new TypeError('Expected an options object with M, K and N for opts but received undefined'));
    expect(() => matmulF32(a, b, { M: 2, K: 3 } as { M: number }))
      .toThrow(new TypeError('Expected an integer between 0 and 1099511627776 for opts.N but received undefined'));
    expect(() => matmulF32(a, b, { M: 1.5, K: 3, N: 2 }))
      .toThrow(new RangeError('Expected an integer between 0 and 1099511627776 for opts.M but received 1.5'));
    expect(() => matmulF32(a, b, { M: -1, K: 3, N: 2 }))
      .toThrow(new RangeError('Expected an integer between 0 and 1099511627776 for opts.M but received -1'));
    expect(() => matmulF32(a, b, { M: 3, K: 3, N: 2 }))
      .toThrow(new RangeError('Expected length M * K = 9 for a but received Float32Array of length 6'));
    expect(() => matmulF32(a, b, { M: 2, K: 3, N: 3 }))
      .toThrow(new RangeError('Expected length K * N = 9 (K x N) for b but received Float32Array of length 6'));
    expect(() => matmulF32(a, b, { M: 2, K: 3, N: 3, transB: true }))
      .toThrow(new RangeError('Expected length K * N = 9 (N x K) for b but received Float32Array of length 6'));
    expect(() => matmulF32(a, b, { M: 2, K: 3, N: 2, transB: 1 as unknown as boolean }))
      .toThrow(new TypeError('Expected a boolean for opts.transB but received number 1'));
    expect(() => matmulF32(a, b, { M: 2, K: 3, N: 2, relu: 'yes' as unknown as boolean }))
      .toThrow(new TypeError("Expected a boolean for opts.relu but received string 'yes'"));
    expect(() => matmulF32(a, b, { M: 2, K: 3, N: 2, bias: new Float32Array(3) }))
      .toThrow(new RangeError('Expected length N = 2 for opts.bias but received Float32Array of length 3'));
    expect(() => matmulF32(a, b, { M: 2, K: 3, N: 2, bias: new Float64Array(2) as unknown as Float32Array }))
      .toThrow(new TypeError('Expected Float32Array for opts.bias but received Float64Array of length 2'));
    expect(() => matmulF32(a, b, { M: 2, K: 3, N: 2, out: new Float32Array(5) }))
      .toThrow(new RangeError('Expected length M * N = 4 for opts.out but received Float32Array of length 5'));
    expect(() => matmulF32(a, b, { M: 2, K: 3, N: 2, alpha: 1 } as unknown as { M: number }))
      .toThrow(new TypeError("Unknown option 'alpha' in opts; expected only 'M', 'K', 'N', 'transB', 'out', 'bias', 'relu'"));
  });

  it('rejects an out that overlaps a, b or bias', () => {
    const buf = new Float32Array(20);
    const x = buf.subarray(0, 6);
    expect(() => matmulF32(x, b, { M: 2, K: 3, N: 2, out: buf.subarray(4, 8) }))
      .toThrow(new RangeError('Expected an array that does not overlap a for opts.out but received views sharing bytes with a'));
    expect(() => matmulF32(a, x, { M: 2, K: 3, N: 2, out: buf.subarray(5, 9) }))
      .toThrow(new RangeError('Expected an array that does not overlap b for opts.out but received views sharing bytes with b'));
    expect(() => matmulF32(a, b, { M: 2, K: 3, N: 2, bias: buf.subarray(10, 12), out: buf.subarray(8, 12) }))
      .toThrow(new RangeError('Expected an array that does not overlap opts.bias for opts.out but received views sharing bytes with opts.bias'));
    // Adjacent, not overlapping: fine.
    expect(() => matmulF32(x, b, { M: 2, K: 3, N: 2, out: buf.subarray(6, 10) })).not.toThrow();
  });

  it('rejects detached buffers', () => {
    const d = new Float32Array(6);
    structuredClone(d.buffer, { transfer: [d.buffer] });
    expect(() => matmulF32(d, b, { M: 2, K: 3, N: 2 }))
      .toThrow(new TypeError('Expected an attached buffer for a but received a Float32Array whose ArrayBuffer was detached (transferred)'));
    const o = new Float32Array(4);
    structuredClone(o.buffer, { transfer: [o.buffer] });
    expect(() => matmulF32(a, b, { M: 2, K: 3, N: 2, out: o }))
      .toThrow(new TypeError('Expected an attached buffer for opts.out but received a Float32Array whose ArrayBuffer was detached (transferred)'));
  });

  it('checks a packed B against K / N and transB', () => {
    const p = packWeightsF32(b, { K: 3, N: 2 });
    expect(() => matmulF32(a, p, { M: 2, K: 4 }))
      .toThrow(new RangeError("Expected 3 (the packed B's K) or no K for opts.K but received 4"));
    expect(() => matmulF32(a, p, { M: 2, N: 3 }))
      .toThrow(new RangeError("Expected 2 (the packed B's N) or no N for opts.N but received 3"));
    expect(() => matmulF32(a, p, { M: 2, transB: true }))
      .toThrow(new TypeError("Unknown option 'transB' with a packed B: the layout is fixed by packWeightsF32({ transposed })"));
    expect(Array.from(matmulF32(a, p, { M: 2, K: 3, N: 2 }))).toEqual([0, 0, 0, 0]);
  });

  it('packWeightsF32 messages', () => {
    expect(() => packWeightsF32(new Int8Array(6) as unknown as Float32Array, { K: 3, N: 2 }))
      .toThrow(new TypeError('Expected Float32Array for b but received Int8Array of length 6'));
    expect(() => packWeightsF32(b, undefined as unknown as { K: number; N: number }))
      .toThrow(new TypeError('Expected an options object with K and N for opts but received undefined'));
    expect(() => packWeightsF32(b, { K: 4, N: 2 }))
      .toThrow(new RangeError('Expected length K * N = 8 (K x N) for b but received Float32Array of length 6'));
    expect(() => packWeightsF32(b, { K: 3, N: 2, transposed: 'no' as unknown as boolean }))
      .toThrow(new TypeError("Expected a boolean for opts.transposed but received string 'no'"));
  });

  it('the native layer re-checks its arguments without crashing', async () => {
    const { native } = await import('../lib/binding');
    const n = native as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(() => n.sgemm(a, b, new Float32Array(4), 2, 3, 2, false, null, false)).not.toThrow();
    expect(() => n.sgemm(a, b, new Float32Array(3), 2, 3, 2, false, null, false))
      .toThrow(new RangeError('Expected length 4 for out but received Float32Array of length 3'));
    expect(() => n.sgemm(a, {}, new Float32Array(4), 2, 3, 2, false, null, false))
      .toThrow(new TypeError('Expected Float32Array or PackedWeightsF32 for b but received object'));
    expect(() => n.sgemm(a, b, a, 2, 3, 2, false, null, false)).toThrow(RangeError);
    expect(() => n.sgemm(a, b, new Float32Array(4), 2, 3, 2, 0, null, false))
      .toThrow(new TypeError('Expected a boolean for transB but received number 0'));
    expect(() => n.sgemm(a, b, new Float32Array(4), 2, 3, 2, false, new Float32Array(3), false))
      .toThrow(new RangeError('Expected length 2 for bias but received Float32Array of length 3'));
    const [h] = n.sgemmPack(b, 3, 2, false) as [unknown, number];
    expect(() => n.sgemm(a, h, new Float32Array(9), 3, 2, 3, false, null, false))
      .toThrow(new RangeError('Expected K = 3 and N = 2 (the packed B) but received K = 2 and N = 3'));
    expect(() => n.sgemmPack(b, -1, 2, false)).toThrow(RangeError);
    expect(() => n.sgemmAsync(a, b, new Float32Array(3), 2, 3, 2, false, null, false)).toThrow(RangeError);
  });
});
