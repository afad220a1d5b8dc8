// quantkit's GEMMs against the peer, onnxruntime-node, on small and odd shapes (the edges of every
// blocking loop): int8 (matmulInteger, gemm with packed, transposed, 2-thread and async calls) for
// every u8 / s8 combination of A and B with zero points on both sides, exactly; the fused outputs
// against their documented formulas applied to ORT's int32; fp32 (matmulF32 and its packed and
// transposed forms) within a bound independent of K; K up to the int32 bound; and all of it under
// every kernel path the addon supports (setIsa), whose QUANTKIT_ISA twin must select the same
// path. The helpers are the GEMM bench's (bench/gemm/), which runs the same checks on the timed
// shapes. Skipped, saying so, when onnxruntime-node is not installed.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cpuInfo, gemm, gemmAsync, getNumThreads, matmulF32, matmulInteger, packWeights, packWeightsF32, setIsa, setNumThreads,
} from '../lib/index';
// @ts-ignore -- plain JavaScript modules of the bench, without types
import { ORT_VERSION, rng } from '../bench/common.mjs';
// @ts-ignore -- the same
import { compareExact, compareF32, describeMismatch, F32_TOL } from '../bench/gemm/compare.mjs';
// @ts-ignore -- the same
import { forcedPaths, gemmPaths } from '../bench/gemm/paths.mjs';
// @ts-ignore -- the same
import { ortMatMul, ortMatMulInteger } from '../bench/gemm/peer.mjs';
// @ts-ignore -- the same
import { makeCodes, makeF32Data, shapeName } from '../bench/gemm/shapes.mjs';

type Codes = Int8Array | Uint8Array;
type Shape = { M: number; N: number; K: number };
type Exact = { mismatches: number; first?: unknown; note?: string };

const root = path.resolve(__dirname, '..');
let ort: any = null;
try {
  ort = createRequire(path.join(root, 'package.json'))('onnxruntime-node');
} catch {
  ort = null;
}
const SKIP = ort ? '' : ` (SKIPPED: onnxruntime-node is not installed; ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node@${ORT_VERSION} --ignore-scripts)`;

const threads0 = getNumThreads();
afterAll(() => {
  setIsa('auto');
  setNumThreads(threads0);
});

/** An exact comparison that fails with the first mismatch in the message. */
function expectExact(what: string, got: ArrayLike<number>, want: ArrayLike<number>, N: number): void {
  const c: Exact = compareExact(got, want, N);
  expect(c.mismatches === 0 ? 'ok' : `${what}: ${c.mismatches} differ${describeMismatch(c)}`).toBe('ok');
}

function expectF32(what: string, got: Float32Array, want: Float32Array, a: Float32Array, b: Float32Array, s: Shape): void {
  const c = compareF32(got, want, a, b, s);
  expect(c.bad === 0 ? 'ok' : `${what}: ${c.bad} beyond ${F32_TOL} x sum|a||b|${describeMismatch(c)}`).toBe('ok');
}

function transpose<T extends Codes | Float32Array>(b: T, K: number, N: number): T {
  const t = new (b.constructor as new (n: number) => T)(N * K);
  for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) t[j * K + k] = b[k * N + j];
  return t;
}

const CASES: Shape[] = [
  { M: 1, N: 1, K: 1 }, { M: 3, N: 17, K: 33 }, { M: 7, N: 64, K: 100 }, { M: 17, N: 31, K: 65 },
  { M: 64, N: 48, K: 256 }, { M: 5, N: 1000, K: 3 }, { M: 33, N: 130, K: 257 }, { M: 200, N: 80, K: 96 },
];
const COMBOS = [
  { aSigned: false, bSigned: true, aZp: 131, bZp: 0 },
  { aSigned: false, bSigned: true, aZp: 0, bZp: -7 },
  { aSigned: true, bSigned: true, aZp: -5, bZp: 9 },
  { aSigned: false, bSigned: false, aZp: 255, bZp: 128 },
  { aSigned: true, bSigned: false, aZp: 127, bZp: 3 },
];

describe(`int8 and fp32 GEMM vs onnxruntime-node${SKIP}`, () => {
  if (!ort) {
    it.skip('needs onnxruntime-node', () => undefined);
    return;
  }

  it('int8: matmulInteger, gemm (packed, transposed B, 2 threads, async) equal MatMulInteger on small and odd shapes', async () => {
    let ci = 0;
    for (const s of CASES) {
      for (const cb of COMBOS) {
        ci++;
        const { M, N, K } = s;
        const r = rng(0xabc + ci);
        const a = makeCodes(cb.aSigned, M * K, r);
        const b = makeCodes(cb.bSigned, K * N, r);
        const bT = transpose(b, K, N);
        const label = `${shapeName(s)} ${cb.aSigned ? 's8' : 'u8'}${cb.bSigned ? 's8' : 'u8'} za=${cb.aZp} zb=${cb.bZp}`;
        const ref = await ortMatMulInteger(ort, { M, K, N, b, aSigned: cb.aSigned, aZeroPoint: cb.aZp, bZeroPoint: cb.bZp }, a);
        const dtype = cb.bSigned ? 'int8' : 'uint8';
        const pk = () => packWeights(b, { K, N, dtype, zeroPoint: cb.bZp });
        setNumThreads(1);
        expectExact(`${label} matmulInteger`, matmulInteger(a, b, { M, K, N, aZeroPoint: cb.aZp, bZeroPoint: cb.bZp }), ref, N);
        expectExact(`${label} gemm`, gemm(a, pk(), { M, aZeroPoint: cb.aZp, output: 'int32' }), ref, N);
        expectExact(`${label} gemm transposed B`, gemm(a, packWeights(bT, { K, N, dtype, zeroPoint: cb.bZp, transposed: true }), { M, aZeroPoint: cb.aZp, output: 'int32' }), ref, N);
        expectExact(`${label} gemmAsync`, await gemmAsync(a, pk(), { M, aZeroPoint: cb.aZp, output: 'int32' }), ref, N);
        setNumThreads(2);
        expectExact(`${label} gemm 2 threads`, gemm(a, pk(), { M, aZeroPoint: cb.aZp, output: 'int32' }), ref, N);
        setNumThreads(1);

        // Fused outputs, against the documented formulas (docs/numerics.md, "int8 GEMM") applied
        // in JS to ORT's exact int32 result:
        //   float32: y = f32(f32(acc) * f32(aScale * bScale)) + bias (f32 each step), ReLU y > 0 ? y : 0
        //   int8/uint8: mult = f32(f32(aScale * bScale) / outScale); q = clamp(rint(acc * mult + zp))
        //   (double, half to even), ReLU raises the lower bound to zp.
        const relu = ci % 2 === 1;
        const perRow = ci % 3 === 0;
        const aScale = perRow ? Float32Array.from({ length: M }, (_, i) => 0.01 + 0.001 * (i % 7)) : 0.0123;
        const bScale = Float32Array.from({ length: N }, (_, j) => 0.02 + 0.0005 * (j % 11));
        const bias = Float32Array.from({ length: N }, (_, j) => (j % 5) - 2.25);
        const f = Math.fround;
        const asOf = (i: number) => (typeof aScale === 'number' ? f(aScale) : aScale[i]);
        const RINT = 6755399441055744; // 1.5 * 2^52: (v + RINT) - RINT rounds half to even
        const scaled = packWeights(b, { K, N, dtype, zeroPoint: cb.bZp, scale: bScale });
        const lbl = `${label}${perRow ? ' per-row aScale' : ''}${relu ? ' relu' : ''}`;
        {
          const want = new Float32Array(M * N);
          for (let i = 0; i < M; i++) {
            for (let j = 0; j < N; j++) {
              const y = f(f(f(ref[i * N + j]) * f(asOf(i) * bScale[j])) + bias[j]);
              want[i * N + j] = relu && !(y > 0) ? 0 : y;
            }
          }
          expectExact(`${lbl} gemm float32 out`, gemm(a, scaled, { M, aZeroPoint: cb.aZp, output: 'float32', aScale, bias, relu }), want, N);
        }
        for (const [dt, qmin, qmax, zp, C] of [['int8', -128, 127, -3, Int8Array], ['uint8', 0, 255, 120, Uint8Array]] as const) {
          const want = new C(M * N);
          for (let i = 0; i < M; i++) {
            for (let j = 0; j < N; j++) {
              const mult = f(f(asOf(i) * bScale[j]) / f(0.37));
              const v = (ref[i * N + j] * mult + zp + RINT) - RINT;
              const lo = relu ? Math.max(qmin, zp) : qmin;
              want[i * N + j] = v < lo ? lo : v > qmax ? qmax : v;
            }
          }
          expectExact(`${lbl} gemm ${dt} out`, gemm(a, scaled, { M, aZeroPoint: cb.aZp, output: dt, aScale, outScale: 0.37, outZeroPoint: zp, relu }), want, N);
        }
      }
    }
  });

  it('fp32: matmulF32 (unpacked, transB, packed, packed transposed, 2 threads) within the bound of MatMul', async () => {
    for (const s of CASES) {
      const { M, N, K } = s;
      const df = makeF32Data(s, 0xf32 + M + N + K);
      const bT = transpose(df.b, K, N);
      const ref = await ortMatMul(ort, { M, K, N, b: df.b }, df.a);
      const label = `${shapeName(s)} f32`;
      setNumThreads(1);
      expectF32(`${label} matmulF32`, matmulF32(df.a, df.b, { M, K, N }), ref, df.a, df.b, s);
      expectF32(`${label} matmulF32 transB`, matmulF32(df.a, bT, { M, K, N, transB: true }), ref, df.a, df.b, s);
      expectF32(`${label} matmulF32 packed`, matmulF32(df.a, packWeightsF32(df.b, { K, N }), { M, K, N }), ref, df.a, df.b, s);
      expectF32(`${label} matmulF32 packed transposed`, matmulF32(df.a, packWeightsF32(bT, { K, N, transposed: true }), { M, K, N }), ref, df.a, df.b, s);
      setNumThreads(2);
      expectF32(`${label} matmulF32 packed 2 threads`, matmulF32(df.a, packWeightsF32(df.b, { K, N }), { M, K, N }), ref, df.a, df.b, s);
      setNumThreads(1);
    }
  });

  // Long K up to the documented int32 bound (K * max|a - za| * max|b - zb| <= 2^31 - 1), with
  // extreme codes: u8s8 zero points 0 at K = 65536 (255 * 128 * 65536 = 2139095040), u8u8 at
  // K = 33025 (255 * 255 * 33025 = 2147450625), at 1 and 2 threads; one K past the bound throws.
  it('int8: K up to the int32 bound with extreme codes, at 1 and 2 threads; K past it is a RangeError', async () => {
    for (const [M, N, K, bSigned] of [[7, 70, 65536, true], [5, 33, 33025, false]] as const) {
      const r = rng(0xb0 + K);
      const a = new Uint8Array(M * K);
      for (let i = 0; i < a.length; i++) a[i] = r() < 0.7 ? 255 : (r() * 256) | 0;
      const b = bSigned ? new Int8Array(K * N) : new Uint8Array(K * N);
      for (let i = 0; i < b.length; i++) b[i] = r() < 0.7 ? (bSigned ? -128 : 255) : ((r() * 256) | 0) - (bSigned ? 128 : 0);
      const ref = await ortMatMulInteger(ort, { M, K, N, b, aSigned: false, aZeroPoint: 0, bZeroPoint: 0 }, a);
      for (const th of [1, 2]) {
        setNumThreads(th);
        expectExact(`${M}x${N}x${K} u8${bSigned ? 's8' : 'u8'} ${th} threads`, gemm(a, packWeights(b, { K, N }), { M }), ref, N);
      }
      setNumThreads(1);
      if (!bSigned) {
        const K2 = K + 1;
        expect(() => gemm(new Uint8Array(K2), packWeights(new Uint8Array(K2), { K: K2, N: 1 }), { M: 1 })).toThrow(RangeError);
      }
    }
  });

  it('every supported kernel path (setIsa): gemm u8s8 / s8u8 with zero points and matmulF32 on odd shapes', async () => {
    const odd: Shape[] = [{ M: 3, N: 17, K: 33 }, { M: 17, N: 31, K: 65 }, { M: 33, N: 130, K: 257 }, { M: 5, N: 1000, K: 3 }, { M: 1, N: 200, K: 1000 }];
    const cases = [];
    for (const [i, s] of odd.entries()) {
      const r = rng(0x0dd + i);
      const aSigned = i % 2 === 1;
      const a = makeCodes(aSigned, s.M * s.K, r);
      const b = makeCodes(!aSigned, s.K * s.N, r);
      const aZp = aSigned ? -7 : 200;
      const bZp = aSigned ? 131 : 5;
      const f = makeF32Data(s, 0x0dd + i);
      const ref = await ortMatMulInteger(ort, { ...s, b, aSigned, aZeroPoint: aZp, bZeroPoint: bZp }, a);
      const refF = await ortMatMul(ort, { ...s, b: f.b }, f.a);
      cases.push({ s, a, b, aZp, bZp, ref, f, refF, label: `${shapeName(s)} ${aSigned ? 's8u8' : 'u8s8'} za=${aZp} zb=${bZp}` });
    }
    setNumThreads(1);
    const paths: string[] = forcedPaths(cpuInfo());
    expect(paths).toContain('scalar');
    try {
      for (const p of paths) {
        setIsa(p);
        for (const c of cases) {
          const { M, N, K } = c.s;
          expectExact(`path ${p}: gemm ${c.label}`, gemm(c.a, packWeights(c.b, { K, N, zeroPoint: c.bZp }), { M, aZeroPoint: c.aZp }), c.ref, N);
          expectF32(`path ${p}: matmulF32 ${c.label}`, matmulF32(c.f.a, c.f.b, { M, K, N }), c.refF, c.f.a, c.f.b, c.s);
        }
      }
    } finally {
      setIsa('auto');
    }
  });
});

describe('QUANTKIT_ISA at load selects what setIsa selects', () => {
  const dist = path.join(root, 'dist/cjs/index.js');
  it.skipIf(!fs.existsSync(dist))('the same int8 and fp32 GEMM paths for every supported path (a child process each)', () => {
    try {
      for (const p of forcedPaths(cpuInfo())) {
        setIsa(p);
        const viaSet = gemmPaths(cpuInfo());
        const r = spawnSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(dist)}).cpuInfo()))`], {
          encoding: 'utf8', env: { ...process.env, QUANTKIT_ISA: p }, timeout: 30000,
        });
        expect(r.stderr).toBe('');
        const viaEnv = gemmPaths(JSON.parse(r.stdout));
        expect({ path: p, int8: viaEnv.int8?.path, fp32: viaEnv.fp32?.path }).toEqual({ path: p, int8: viaSet.int8?.path, fp32: viaSet.fp32?.path });
      }
    } finally {
      setIsa('auto');
    }
  });
});
