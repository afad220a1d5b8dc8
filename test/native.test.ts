// The native boundary (docs/architecture-boundary.md): lib/native.ts is the one caller of the
// addon, its enums are the addon's (native/napi/enums.def), and its unchecked entry still runs the
// addon's checks.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { native as addon } from '../lib/binding';
import { dequantizeLinear, fakeQuantize, minMax, packWeights, quantizeLinear } from '../lib/index';
import { packedHandle } from '../lib/gemm';
import { perTensorLayout } from '../lib/layout';
import * as native from '../lib/native';

const lib = path.join(__dirname, '..', 'lib');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('lib/native.ts', () => {
  it('declares the enums of native/napi/enums.def, value for value', () => {
    expect(native.enumMismatches(addon.enums)).toEqual([]);
    expect(Object.keys(addon.enums).sort()).toEqual(Object.keys(native.ENUMS).sort());
    // and the .def file itself lists what the addon exports
    const def = fs.readFileSync(path.join(__dirname, '..', 'native', 'napi', 'enums.def'), 'utf8');
    const fromDef: Record<string, Record<string, number>> = {};
    for (const m of def.matchAll(/^QK_ENUM\((\w+), (\w+), (\d+)\)$/gm)) (fromDef[m[1]] ??= {})[m[2]] = Number(m[3]);
    expect(fromDef).toEqual(addon.enums);
  });

  it('names a drift between the TypeScript and native enums', () => {
    const t = JSON.parse(JSON.stringify(addon.enums));
    t.OutputKind.Uint8 = 4;
    t.Storage.Crumb = 2;
    delete t.Formula;
    expect(native.enumMismatches(t)).toEqual([
      'OutputKind.Uint8: 3 here, 4 natively',
      'Storage.Crumb: undefined here, 2 natively',
      'Formula: not in enums.def',
    ]);
    expect(native.enumMismatches(undefined)).toEqual(['no enum table']);
  });

  it('is the only module of lib/ that loads the addon', () => {
    // Callers the lead switches at merge (docs/architecture-boundary.md, "Still to switch").
    const pending: string[] = [];
    const users = sources(lib)
      .filter((f) => /import\s+\{[^}]*\}\s+from '\.\.?\/binding'/.test(fs.readFileSync(f, 'utf8'))) // not type-only imports
      .map((f) => path.relative(lib, f).split(path.sep).join('/'))
      .sort();
    expect(users.filter((f) => !pending.includes(f))).toEqual(['native.ts']);
  });

  it('maps named arguments to the same results as the public API', () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 3);
    const L = perTensorLayout(x.length);
    const q = new Uint8Array(64);
    native.quantize({ x, out: q, scale: 0.05, zeroPoint: 128, storage: native.Storage.Byte, layout: L, qmin: 0, qmax: 255, formula: native.Formula.Onnx });
    expect(q).toEqual(quantizeLinear(x, 0.05, Uint8Array.of(128)));
    const nib = new Uint8Array(32);
    native.quantize({ x, out: nib, scale: 0.5, zeroPoint: 0, storage: native.Storage.Nibble, layout: L, qmin: -8, qmax: 7, formula: native.Formula.Onnx });
    expect(nib).toEqual(quantizeLinear(x, 0.5, 0, { dtype: 'int4' }));
    const y = new Float32Array(64);
    native.dequantize({ q, out: y, scale: 0.05, zeroPoint: 128, signed: false, storage: native.Storage.Byte, layout: L });
    expect(y).toEqual(dequantizeLinear(q, 0.05, Uint8Array.of(128)));
    const f = new Float32Array(64);
    native.fakeQuantize({ x, out: f, mask: null, scale: 0.3, zeroPoint: 0, layout: L, qmin: -127, qmax: 127, formula: native.Formula.Pytorch });
    expect(f).toEqual(fakeQuantize(x, [64], { scale: 0.3, zeroPoint: 0 }, { formula: 'pytorch' }));
    x[3] = NaN;
    expect(native.minMax(x, L)).toEqual(minMax(x));
    expect(native.minMax(x, L).nanCount).toBe(1);
  });

  it('the unchecked entry still runs the native checks (a bad call throws, never crashes)', () => {
    const x = new Float32Array(8);
    const L = perTensorLayout(8);
    expect(() => native.quantize({ x, out: new Uint8Array(7), scale: 1, zeroPoint: 0, storage: native.Storage.Byte, layout: L, qmin: 0, qmax: 255, formula: native.Formula.Onnx }))
      .toThrow(new RangeError('Expected length 8 for out but received Uint8Array of length 7'));
    expect(() => native.quantize({ x, out: new Uint8Array(8), scale: 1, zeroPoint: 0, storage: 2 as native.Storage, layout: L, qmin: 0, qmax: 255, formula: native.Formula.Onnx }))
      .toThrow(new RangeError('Expected an integer between 0 and 1 for storage but received number 2'));
    expect(() => native.quantize({ x, out: new Uint8Array(8), scale: 0, zeroPoint: 0, storage: native.Storage.Byte, layout: L, qmin: 0, qmax: 255, formula: native.Formula.Onnx }))
      .toThrow(new RangeError('Expected a positive finite number for scale but received 0'));
    expect(() => native.quantize({ x, out: new Uint8Array(8), scale: 1, zeroPoint: 0, storage: native.Storage.Byte, layout: { ...L, gran: 3 as native.GranularityCode }, qmin: 0, qmax: 255, formula: native.Formula.Onnx }))
      .toThrow(new RangeError('Expected an integer between 0 and 2 for granularity but received number 3'));
    const p = packWeights(new Int8Array(6), { K: 3, N: 2 });
    const g = {
      a: new Uint8Array(3), aSigned: false, M: 1, packed: packedHandle(p), aZeroPoint: 0, output: native.OutputKind.Uint8,
      out: new Uint8Array(2) as ArrayBufferView, aScale: 1, bias: null, relu: false, outScale: 1, outZeroPoint: 0,
    };
    expect(() => native.gemm(g)).not.toThrow();
    expect(() => native.gemm({ ...g, output: 4 as native.OutputKind })).toThrow(new RangeError('Expected an integer between 0 and 3 for outKind but received number 4'));
    expect(() => native.gemm({ ...g, out: new Int8Array(2) })).toThrow(new TypeError('Expected Uint8Array for out but received Int8Array of length 2'));
    expect(() => native.gemm({ ...g, aZeroPoint: Int32Array.of(1, 2) })).toThrow(new RangeError('Expected length 1 or 1 for aZeroPoint but received Int32Array of length 2'));
    expect(() => native.histogram({ x, counts: new Float64Array(4), lo: Float32Array.of(0), hi: Float32Array.of(1), bins: 4, abs: false, layout: { ...L, gran: native.GranularityCode.Blocked, blockSize: 2 } }))
      .toThrow(new RangeError('Expected an integer between 0 and 1 for granularity but received number 2'));
  });

  it('reads scales and zero points with one rule natively (per group, or one or per row / column)', () => {
    const x = new Float32Array(6);
    const L = { gran: native.GranularityCode.PerAxis, outer: 2, axisDim: 3, inner: 1, blockSize: 0 };
    const args = { x, out: new Uint8Array(6), scale: new Float32Array(3).fill(1) as number | Float32Array, zeroPoint: 0 as number | Int32Array, storage: native.Storage.Byte, layout: L, qmin: 0, qmax: 255, formula: native.Formula.Onnx };
    expect(() => native.quantize(args)).toThrow(new RangeError('Expected a typed array of length 3 for zeroPoint but received a number'));
    expect(() => native.quantize({ ...args, scale: 1 })).toThrow(new RangeError('Expected a Float32Array of length 3 for scale but received a number'));
    expect(() => native.quantize({ ...args, zeroPoint: Int32Array.of(0, 300, 0) })).toThrow(new RangeError('Expected an integer between 0 and 255 for zeroPoint[1] but received 300'));
    expect(() => native.quantize({ ...args, scale: Float32Array.of(1, Infinity, 1), zeroPoint: new Int32Array(3) }))
      .toThrow(new RangeError('Expected a positive finite number for scale[1] but received Infinity'));
    expect(() => native.quantize({ ...args, zeroPoint: 'a' as never })).toThrow(new TypeError('Expected a number, Int32Array, Int8Array or Uint8Array for zeroPoint but received string'));
    expect(() => native.gemmPack({ b: new Int8Array(6), signed: true, K: 3, N: 2, transposed: false, zeroPoint: 0, scale: Float32Array.of(1, 1, 1) }))
      .toThrow(new RangeError('Expected length 1 or 2 for scale but received Float32Array of length 3'));
    expect(() => native.gemmPack({ b: new Int8Array(6), signed: true, K: 3, N: 2, transposed: false, zeroPoint: 0, scale: 'a' as never }))
      .toThrow(new TypeError('Expected a number or Float32Array for scale but received string'));
  });
});
