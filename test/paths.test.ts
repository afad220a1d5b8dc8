// Every kernel path this machine supports, through the public API, against the scalar path:
// bit-identical results for every op and granularity. Also QUANTKIT_ISA at load.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cpuInfo, dequantizeLinear, fakeQuantize, minMax, quantize, quantizeLinear, setIsa } from '../lib/index';
import { kernelList } from '../lib/native';

const root = path.resolve(__dirname, '..');
const info = cpuInfo();
const paths = info.supportedPaths;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function data(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const specials = [0, -0, Infinity, -Infinity, NaN, 1e-45, -1e-40, 3.4e38, -1e30, 0.5, -2.5, 127.5, -128.5];
  return Float32Array.from({ length: n }, () => {
    const u = r();
    if (u < 0.1) return specials[Math.floor(r() * specials.length)];
    if (u < 0.4) return (Math.floor(r() * 400) - 200 + 0.5) * 0.05; // ties at scale 0.05
    return (r() - 0.5) * 30;
  });
}

function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

// Everything one path computes, as buffers.
function runAll(): Buffer[] {
  const out: Buffer[] = [];
  for (const n of [0, 1, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 1000, 4097]) {
    const x = data(n, n + 1);
    for (const dtype of ['int8', 'uint8', 'int4', 'uint4'] as const) {
      const zp = dtype === 'int8' ? 3 : dtype === 'uint8' ? 100 : dtype === 'int4' ? -2 : 9;
      const q = quantizeLinear(x, 0.05, zp, { dtype });
      out.push(bytesOf(q), bytesOf(dequantizeLinear(q, 0.05, zp, { dtype, shape: [n] })));
    }
    const mask = new Uint8Array(n);
    out.push(bytesOf(fakeQuantize(x, [n], { scale: 0.05, zeroPoint: 1 }, { mask })), bytesOf(mask));
    out.push(bytesOf(fakeQuantize(x, [n], { scale: 0.05, zeroPoint: 1 }, { formula: 'pytorch', mask })), bytesOf(mask));
    const mm = minMax(x);
    out.push(bytesOf(mm.min), bytesOf(mm.max), Buffer.from([mm.nanCount, mm.infCount]));
  }
  // Per-axis on every axis and blocked on two axes of a 3-d tensor, incl. the innermost.
  const shape = [5, 37, 19];
  const x = data(5 * 37 * 19, 99);
  for (let axis = 0; axis < 3; axis++) {
    const t = quantize(x, shape, { granularity: { axis }, scheme: 'asymmetric', formula: axis === 1 ? 'pytorch' : 'onnx' });
    out.push(bytesOf(t.data), bytesOf(t.scale), bytesOf(t.zeroPoint), bytesOf(t.dequantize()));
    const mask = new Uint8Array(x.length);
    out.push(bytesOf(fakeQuantize(x, shape, t, { granularity: { axis }, scheme: 'asymmetric', mask })), bytesOf(mask));
  }
  for (const [axis, blockSize] of [[1, 8], [2, 4], [2, 32], [0, 2]]) {
    const t = quantize(x, shape, { granularity: { axis, blockSize }, bits: 4 });
    out.push(bytesOf(t.data), bytesOf(t.scale), bytesOf(t.dequantize()));
    const mm = minMax(x, shape, { granularity: { axis, blockSize } });
    out.push(bytesOf(mm.min), bytesOf(mm.max));
  }
  return out;
}

describe('kernel paths', () => {
  afterAll(() => setIsa('auto'));
  setIsa('scalar');
  const reference = runAll();

  it('the scalar reference produced results', () => {
    expect(reference.length).toBeGreaterThan(100);
  });

  for (const p of paths) {
    it(`path ${p} is bit-identical to scalar`, () => {
      setIsa(p);
      const sel = cpuInfo().selected;
      // Under a forced path no op may use a path beyond it.
      if (p === 'scalar') expect(Object.values(sel).every((v) => v === 'scalar')).toBe(true);
      else expect(Object.values(sel)).toContain(p);
      const got = runAll();
      expect(got.length).toBe(reference.length);
      for (let i = 0; i < got.length; i++) {
        if (!got[i].equals(reference[i])) throw new Error(`path ${p}: result #${i} differs from scalar`);
      }
    });
  }

  it('every path expected on this machine is supported (QK_EXPECT_PATHS)', () => {
    const expected = (process.env.QK_EXPECT_PATHS ?? '').split(',').filter(Boolean);
    for (const e of expected) expect(paths, `path ${e} expected here`).toContain(e);
  });
});

// The child processes load dist/ (npm test builds it first).
describe('QUANTKIT_ISA', () => {
  const load = (isa: string) => spawnSync(process.execPath, ['-e', "console.log(JSON.stringify(require('./dist/cjs/index.js').cpuInfo()))"], {
    cwd: root, env: { ...process.env, QUANTKIT_ISA: isa }, encoding: 'utf8',
  });

  it('forces the scalar path', () => {
    const r = load('scalar');
    expect(r.status).toBe(0);
    const ci = JSON.parse(r.stdout);
    expect(ci.forced).toBe('scalar');
    expect(Object.values(ci.selected).every((v) => v === 'scalar')).toBe(true);
  });

  it('refuses an unknown path at load with a clear error', () => {
    const r = load('avx9000');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("quantkit: Expected one of auto, scalar, avx2, avx512, avxvnni, avx512vnni, amx, neon, neon-dotprod for QUANTKIT_ISA but received 'avx9000'");
  });

  it('forced avxvnni runs gemm_i8 on AVX-VNNI and the rest on AVX2, where the CPU has AVX-VNNI', () => {
    if (!info.supportedPaths.includes('avxvnni')) return;
    const r = load('avxvnni');
    expect(r.status).toBe(0);
    const ci = JSON.parse(r.stdout);
    expect(ci.selected.gemm_i8).toBe('avxvnni');
    expect(ci.selected.sgemm_block).toBe('avx2');
  });

  it('forced amx runs gemm_i8 on AMX where the CPU and OS allow it, else is refused clearly', () => {
    if (info.arch !== 'x86_64') return;
    const r = load('amx');
    if (info.supportedPaths.includes('amx')) {
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout).selected.gemm_i8).toBe('amx');
    } else {
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('quantkit: QUANTKIT_ISA=amx is not usable here: this CPU or OS does not support it; usable paths: scalar, avx2');
      expect(r.stderr).not.toContain('Segmentation');
    }
  });

  it('refuses a path this machine cannot run at load', () => {
    const foreign = info.arch === 'arm64' ? 'avx2' : 'neon';
    const r = load(foreign);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`quantkit: QUANTKIT_ISA=${foreign} is not usable here`);
    expect(r.stderr).not.toContain('Segmentation');
  });
});

describe('int8 GEMM paths on x86-64 (AVX-VNNI, AMX)', () => {
  it('the gemm_i8 kernels are listed in path order with their geometry', () => {
    if (info.arch !== 'x86_64') return;
    const gemm = kernelList().filter((e) => e.op === 'gemm_i8');
    expect(gemm.map((e) => e.isa)).toEqual(['scalar', 'avx2', 'avxvnni', 'avx512vnni', 'amx']);
    expect(gemm.find((e) => e.isa === 'avxvnni')).toMatchObject({ symbol: 'gemm_i8_avxvnni', mr: 6, nr: 64, traits: [] });
    expect(gemm.find((e) => e.isa === 'amx')).toMatchObject({ symbol: 'gemm_i8_amx', mr: 32, nr: 32, traits: [] });
    for (const e of gemm) expect(e.supported).toBe(info.supportedPaths.includes(e.isa));
    expect(info.builtPaths).toEqual(expect.arrayContaining(['avxvnni', 'amx']));
  });

  it('avxvnni and amx are usable exactly where the CPU (and for AMX the OS permission) allow', () => {
    if (info.arch !== 'x86_64') return;
    const f = new Set(info.features);
    expect(info.supportedPaths.includes('avxvnni')).toBe(f.has('avxvnni'));
    const amx = f.has('amx-tile') && f.has('amx-int8') && f.has('amx-permitted') && info.supportedPaths.includes('avx512vnni');
    expect(info.supportedPaths.includes('amx')).toBe(amx);
    // Auto: the most preferred usable gemm_i8 path.
    const want = amx ? 'amx' : f.has('avx512vnni') && info.supportedPaths.includes('avx512vnni') ? 'avx512vnni'
      : f.has('avxvnni') ? 'avxvnni' : info.supportedPaths.includes('avx2') ? 'avx2' : 'scalar';
    expect(info.selected.gemm_i8).toBe(want);
  });
});
