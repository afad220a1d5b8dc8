// Behaviour and argument errors of the public API. Messages are part of the contract: they are
// pinned here ("Expected X for name but received Y").
import { describe, expect, it } from 'vitest';
import {
  computeQParams, cpuInfo, dequantizeLinear, dynamicQuantizeLinear, fakeQuantize, getNumThreads, minMax,
  quantize, quantizeLinear, setNumThreads,
} from '../lib/index';

const f32 = (...v: number[]) => Float32Array.from(v);

describe('quantizeLinear', () => {
  it('rounds half to even and saturates (int8)', () => {
    const x = f32(0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, 1e30, -1e30, Infinity, -Infinity, -0);
    expect(Array.from(quantizeLinear(x, 1, 0, { dtype: 'int8' }))).toEqual([0, 0, 2, 2, 0, -2, -2, 126, 127, 127, -128, 127, -128, 0]);
  });

  it('maps NaN to the zero point', () => {
    expect(Array.from(quantizeLinear(f32(NaN, 1), 0.5, 10, { dtype: 'uint8' }))).toEqual([10, 12]);
  });

  it('defaults to uint8 without a zero point, and follows the zero point type', () => {
    const u = quantizeLinear(f32(-1, 1, 300), 1);
    expect(u).toBeInstanceOf(Uint8Array);
    expect(Array.from(u)).toEqual([0, 1, 255]);
    const s = quantizeLinear(f32(-1, 1, 300), 1, Int8Array.of(3));
    expect(s).toBeInstanceOf(Int8Array);
    expect(Array.from(s)).toEqual([2, 4, 127]);
  });

  it('divides by the scale (x / scale, not x * (1/scale))', () => {
    // scale 0.3f: 2.25 / 0.3f = 7.4999995 -> 7, while 2.25 * (1 / 0.3f) = 7.5 -> 8.
    const q = quantizeLinear(f32(2.25), Math.fround(0.3), 0, { dtype: 'int8' });
    expect(q[0]).toBe(7);
  });

  it('packs int4 two per byte, low nibble first, and saturates to -8..7', () => {
    const q = quantizeLinear(f32(1, -1, 7.5, -9, 3), 1, 0, { dtype: 'int4' });
    expect(q).toBeInstanceOf(Uint8Array);
    // codes 1, -1 (0xf), 7 (sat; 7.5 -> 8 -> 7), -8 (sat), 3; odd tail high nibble 0
    expect(Array.from(q)).toEqual([0xf1, 0x87, 0x03]);
    const u = quantizeLinear(f32(1, 20, 15), 1, 0, { dtype: 'uint4' });
    expect(Array.from(u)).toEqual([0xf1, 0x0f]);
  });

  it('quantizes per axis (default axis 1, negative axes)', () => {
    const x = f32(1, 2, 3, 4, 5, 6); // shape [2, 3]
    const sc = f32(1, 2, 4);
    const zp = Int8Array.of(0, 1, -1);
    expect(Array.from(quantizeLinear(x, sc, zp, { shape: [2, 3] }))).toEqual([1, 2, 0, 4, 3, 1]);
    expect(Array.from(quantizeLinear(x, sc, zp, { shape: [2, 3], axis: -1 }))).toEqual([1, 2, 0, 4, 3, 1]);
    const sc0 = f32(1, 0.5);
    expect(Array.from(quantizeLinear(x, sc0, Int8Array.of(0, 0), { shape: [2, 3], axis: 0 }))).toEqual([1, 2, 3, 8, 10, 12]);
  });

  it('quantizes blocked along an axis with a partial last block', () => {
    const x = f32(1, 2, 3, 4, 5, 10, 20, 30, 40, 50); // shape [2, 5], blocks of 2 along axis 1 -> 3 blocks
    const sc = f32(1, 2, 4, 10, 10, 10);
    const q = quantizeLinear(x, sc, Int8Array.of(0, 0, 0, 0, 0, 0), { shape: [2, 5], axis: 1, blockSize: 2 });
    expect(Array.from(q)).toEqual([1, 2, 2, 2, 1, 1, 2, 3, 4, 5]);
  });

  it('writes into a caller-supplied output and honours subarray offsets', () => {
    const big = new Float32Array(10).fill(3);
    big.set([1, 2, 3], 4);
    const x = big.subarray(4, 7);
    const outBuf = new Int8Array(8).fill(99);
    const out = outBuf.subarray(2, 5);
    const r = quantizeLinear(x, 1, 0, { dtype: 'int8', out });
    expect(r).toBe(out);
    expect(Array.from(outBuf)).toEqual([99, 99, 1, 2, 3, 99, 99, 99]);
  });

  it('handles empty tensors', () => {
    expect(quantizeLinear(new Float32Array(0), 1, 0, { dtype: 'int8' }).length).toBe(0);
    expect(quantizeLinear(new Float32Array(0), 1, 0, { dtype: 'int4' }).length).toBe(0);
  });

  it('rejects bad arguments with messages naming the argument', () => {
    const x = f32(1, 2, 3, 4, 5, 6);
    const cases: [() => unknown, string][] = [
      [() => quantizeLinear(new Int8Array(3) as never, 1), 'Expected Float32Array for x but received Int8Array of length 3'],
      [() => quantizeLinear([1, 2] as never, 1), 'Expected Float32Array for x but received Array of length 2'],
      [() => quantizeLinear(x, 0), 'Expected a positive finite number for scale but received 0'],
      [() => quantizeLinear(x, -1), 'Expected a positive finite number for scale but received -1'],
      [() => quantizeLinear(x, NaN), 'Expected a positive finite number for scale but received NaN'],
      [() => quantizeLinear(x, 1e-50), 'Expected a positive finite number for scale but received 1e-50'],
      [() => quantizeLinear(x, f32(1, NaN, 1), null, { shape: [2, 3] }), 'Expected a positive finite number for scale[1] but received NaN'],
      [() => quantizeLinear(x, '1' as never), "Expected a number or Float32Array for scale but received string '1'"],
      [() => quantizeLinear(x, 1, 300), 'Expected an integer between 0 and 255 (uint8) for zeroPoint but received 300'],
      [() => quantizeLinear(x, 1, 8, { dtype: 'int4' }), 'Expected an integer between -8 and 7 (int4) for zeroPoint but received 8'],
      [() => quantizeLinear(x, 1, 1.5, { dtype: 'int8' }), 'Expected an integer between -128 and 127 (int8) for zeroPoint but received 1.5'],
      [() => quantizeLinear(x, f32(1, 1, 1), Int8Array.of(0, 0), { shape: [2, 3] }), 'Expected length 3 for zeroPoint but received Int8Array of length 2'],
      [() => quantizeLinear(x, f32(1, 1, 1), Uint8Array.of(0, 0, 0), { shape: [2, 3], dtype: 'int8' }), 'Expected Int8Array or Int32Array (dtype int8) for zeroPoint but received Uint8Array of length 3'],
      [() => quantizeLinear(x, 1, 0, { shape: [4, 2] }), 'Expected a shape with 6 elements (the length of x) for opts.shape but received [4, 2] (8 elements)'],
      [() => quantizeLinear(x, 1, 0, { shape: [2, -3] }), 'Expected a non-negative integer for opts.shape[1] but received number -3'],
      [() => quantizeLinear(x, f32(1, 1, 1), null, { shape: [2, 3], axis: 2 }), 'Expected an axis between -2 and 1 for opts.axis but received 2 (shape of rank 2)'],
      [() => quantizeLinear(x, f32(1, 1), null, { shape: [2, 3] }), 'Expected length 3 (one per index of axis 1) for scale but received Float32Array of length 2'],
      [() => quantizeLinear(x, f32(1, 1), null, { shape: [2, 3], blockSize: 2 }), 'Expected length 4 (blocked scale of shape [2, 2]) for scale but received Float32Array of length 2'],
      [() => quantizeLinear(x, 1, null, { shape: [2, 3], blockSize: -2 }), 'Expected a positive integer for opts.blockSize but received -2'],
      [() => quantizeLinear(x, 1, 0, { dtype: 'int16' as never }), "Expected one of 'int8', 'uint8', 'int4', 'uint4' for opts.dtype but received 'int16'"],
      [() => quantizeLinear(x, 1, 0, { dtype: 'int8', out: new Uint8Array(6) }), 'Expected Int8Array for opts.out but received Uint8Array of length 6'],
      [() => quantizeLinear(x, 1, 0, { dtype: 'int8', out: new Int8Array(5) }), 'Expected length 6 for opts.out but received Int8Array of length 5'],
      [() => quantizeLinear(x, 1, 0, { dtype: 'int4', out: new Uint8Array(6) }), 'Expected length 3 for opts.out but received Uint8Array of length 6'],
      [() => quantizeLinear(x, 1, 0, { axes: 1 } as never), "Unknown option 'axes' in opts; expected only 'shape', 'axis', 'blockSize', 'dtype', 'out'"],
    ];
    for (const [fn, msg] of cases) expect(fn).toThrow(msg);
    expect(() => quantizeLinear(x, 0)).toThrow(RangeError);
    expect(() => quantizeLinear(new Int8Array(3) as never, 1)).toThrow(TypeError);
  });

  it('rejects a detached input with a clear error instead of crashing', () => {
    const x = new Float32Array(16);
    structuredClone(x.buffer, { transfer: [x.buffer] });
    expect(() => quantizeLinear(x, 1)).toThrow('Expected an attached buffer for x but received a Float32Array whose ArrayBuffer was detached (transferred)');
  });

  it('rejects an output that overlaps the input', () => {
    const buf = new ArrayBuffer(64);
    const x = new Float32Array(buf, 0, 8);
    const out = new Int8Array(buf, 4, 8);
    expect(() => quantizeLinear(x, 1, 0, { dtype: 'int8', out })).toThrow('Expected x and out not to overlap in memory but received views of the same bytes');
  });
});

describe('dequantizeLinear', () => {
  it('computes (q - zp) * scale in float32', () => {
    const y = dequantizeLinear(Int8Array.of(-128, -1, 0, 127), Math.fround(0.1), 3);
    expect(Array.from(y)).toEqual([-131, -4, -3, 124].map((v) => Math.fround(v * Math.fround(0.1))));
  });

  it('reads packed int4 / uint4 with sign extension', () => {
    const y = dequantizeLinear(Uint8Array.of(0xf1, 0x87, 0x03), 2, 0, { dtype: 'int4', shape: [5] });
    expect(Array.from(y)).toEqual([2, -2, 14, -16, 6]);
    const u = dequantizeLinear(Uint8Array.of(0xf1), 1, 1, { dtype: 'uint4' });
    expect(Array.from(u)).toEqual([0, 14]);
  });

  it('dequantizes per axis and blocked', () => {
    const q = Int8Array.of(1, 2, 3, 4, 5, 6);
    expect(Array.from(dequantizeLinear(q, f32(1, 2, 4), Int8Array.of(0, 1, -1), { shape: [2, 3] }))).toEqual([1, 2, 16, 4, 8, 28]);
    expect(Array.from(dequantizeLinear(q, f32(1, 10, 2, 20), Int8Array.of(0, 0, 0, 0), { shape: [2, 3], axis: 1, blockSize: 2 })))
      .toEqual([1, 2, 30, 8, 10, 120]);
  });

  it('round-trips quantizeLinear within half a step', () => {
    const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    const q = quantizeLinear(x, 0.05, Int8Array.of(0));
    const y = dequantizeLinear(q, 0.05, Int8Array.of(0));
    for (let i = 0; i < x.length; i++) expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(0.025 + 1e-6);
  });

  it('rejects bad arguments', () => {
    expect(() => dequantizeLinear(new Float32Array(2) as never, 1)).toThrow('Expected Int8Array or Uint8Array for q but received Float32Array of length 2');
    expect(() => dequantizeLinear(new Uint8Array(2), 1, 0, { dtype: 'int4', shape: [5] })).toThrow('Expected length 3 (5 int4 elements, two per byte) for q but received Uint8Array of length 2');
    expect(() => dequantizeLinear(new Uint8Array(2), 1, 0, { dtype: 'int8' })).toThrow('Expected Int8Array (dtype int8) for q but received Uint8Array of length 2');
    expect(() => dequantizeLinear(new Uint8Array(2), 1, 0, { out: new Float32Array(3) })).toThrow('Expected length 2 for opts.out but received Float32Array of length 3');
    expect(() => dequantizeLinear(new Uint8Array(2), Infinity)).toThrow('Expected a positive finite number for scale but received Infinity');
  });
});

describe('dynamicQuantizeLinear', () => {
  it('follows the ONNX formula in float32', () => {
    const x = f32(0, 2, -3, -4, 0.5, 1000);
    const r = dynamicQuantizeLinear(x);
    const s = Math.fround(Math.fround(1000 - -4) / 255);
    expect(r.scale).toBe(s);
    expect(r.zeroPoint).toBe(Math.round(Math.fround(4 / s)));
    expect(Array.from(r.data)).toEqual([1, 2, 0, 0, 1, 255]);
  });

  it('gives scale 1 and zero point 0 for all-zero and empty input', () => {
    expect(dynamicQuantizeLinear(f32(0, 0, -0))).toEqual({ data: Uint8Array.of(0, 0, 0), scale: 1, zeroPoint: 0 });
    expect(dynamicQuantizeLinear(new Float32Array(0))).toEqual({ data: new Uint8Array(0), scale: 1, zeroPoint: 0 });
  });

  it('leaves NaN and Inf out of the range', () => {
    const r = dynamicQuantizeLinear(f32(NaN, Infinity, -Infinity, 0, 2.55));
    expect(r.scale).toBe(Math.fround(Math.fround(2.55) / 255));
    expect(r.zeroPoint).toBe(0);
    expect(Array.from(r.data)).toEqual([0, 255, 0, 0, 255]);
  });
});

describe('computeQParams', () => {
  it('ONNX formula: symmetric int8 is absmax / 127, asymmetric uint8 has a rounded zero point', () => {
    const s = computeQParams(-2, 1, { scheme: 'symmetric' });
    expect(s.scale[0]).toBe(Math.fround(2 / 127));
    expect(s.zeroPoint[0]).toBe(0);
    const a = computeQParams(-1, 2, { scheme: 'asymmetric' });
    const sc = Math.fround(3) / 255;
    expect(a.scale[0]).toBe(Math.fround(sc));
    expect(a.zeroPoint[0]).toBe(Math.round(0 + 1 / sc));
  });

  it('PyTorch formula: full-range symmetric divides by 127.5, uint8 symmetric zero point 128, eps floor', () => {
    expect(computeQParams(-2, 1, { formula: 'pytorch', range: 'full' }).scale[0]).toBe(Math.fround(2 / 127.5));
    const u = computeQParams(-2, 1, { formula: 'pytorch', signed: false });
    expect(u.zeroPoint[0]).toBe(128);
    expect(u.scale[0]).toBe(Math.fround(2 / 127.5));
    expect(computeQParams(0, 0, { formula: 'pytorch' }).scale[0]).toBe(Math.fround(1.1920928955078125e-7));
    expect(computeQParams(0, 0, { formula: 'onnx' }).scale[0]).toBe(1);
  });

  it('widens the range to include zero', () => {
    const a = computeQParams(1, 3, { scheme: 'asymmetric', formula: 'pytorch' });
    expect(a.zeroPoint[0]).toBe(0);
    expect(a.scale[0]).toBe(Math.fround(3 / 255));
  });

  it('per channel, and "nothing observed" gives scale 1 / zero point 0', () => {
    const r = computeQParams(f32(-1, Infinity), f32(1, -Infinity), { formula: 'pytorch' });
    expect(Array.from(r.scale)).toEqual([Math.fround(1 / 127), 1]);
    expect(Array.from(r.zeroPoint)).toEqual([0, 0]);
  });

  it('rejects bad ranges and specs', () => {
    expect(() => computeQParams(2, 1)).toThrow('Expected a value <= max (1) for min but received 2');
    expect(() => computeQParams(NaN, 1)).toThrow('Expected a finite number (or +Infinity with max -Infinity for an empty range) for min but received NaN');
    expect(() => computeQParams(f32(0, 0), f32(1))).toThrow('Expected length 2 (the length of min) for max but received Float32Array of length 1');
    expect(() => computeQParams(0, 1, { bits: 9 })).toThrow('Expected an integer between 2 and 8 for spec.bits but received 9');
    expect(() => computeQParams(0, 1, { scheme: 'affine' as never })).toThrow("Expected one of 'symmetric', 'asymmetric' for spec.scheme but received 'affine'");
    expect(() => computeQParams(0, 1, { bitz: 8 } as never)).toThrow("Unknown option 'bitz' in spec");
  });
});

describe('quantize (scheme level)', () => {
  it('per-tensor symmetric int8 uses the restricted range -127..127 by default', () => {
    const t = quantize(f32(-1, 0, 0.5, 1), [4]);
    expect(t.qmin).toBe(-127);
    expect(t.scale[0]).toBe(Math.fround(1 / 127));
    expect(Array.from(t.data)).toEqual([-127, 0, 64, 127]);
    expect(t.dtype).toBe('int8');
    expect(t.axis).toBeNull();
  });

  it('per-channel on any axis, with dequantize', () => {
    const x = f32(1, -2, 4, 8, -16, 32); // [2, 3]
    const t = quantize(x, [2, 3], { granularity: { axis: 0 } });
    expect(Array.from(t.scale)).toEqual([Math.fround(4 / 127), Math.fround(32 / 127)]);
    expect(t.axis).toBe(0);
    const y = t.dequantize();
    for (let i = 0; i < 6; i++) expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(t.scale[i < 3 ? 0 : 1] / 2 + 1e-6);
  });

  it('4-bit blocks are stored packed', () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => i - 32);
    const t = quantize(x, [2, 32], { bits: 4, granularity: { axis: 1, blockSize: 16 } });
    expect(t.dtype).toBe('int4');
    expect(t.data.length).toBe(32);
    expect(t.scale.length).toBe(4);
    expect(t.blockSize).toBe(16);
    expect(t.qmax).toBe(7);
    expect(t.scale[0]).toBe(Math.fround(32 / 7));
  });

  it('asymmetric defaults to unsigned', () => {
    const t = quantize(f32(0, 1, 2, 3), [4], { scheme: 'asymmetric' });
    expect(t.dtype).toBe('uint8');
    expect(Array.from(t.data)).toEqual([0, 85, 170, 255]);
  });

  it('rejects a granularity axis out of range', () => {
    expect(() => quantize(f32(1, 2), [2], { granularity: { axis: 1 } })).toThrow('Expected an axis between -1 and 0 for spec.granularity.axis but received 1 (shape of rank 1)');
    expect(() => quantize(f32(1, 2), [2], { granularity: 'per-channel' as never })).toThrow("Expected 'per-tensor', { axis } or { axis, blockSize } for spec.granularity but received 'per-channel'");
  });
});

describe('fakeQuantize', () => {
  it('equals dequantize(quantize(x)) and writes the STE mask', () => {
    const x = f32(-3, -0.26, 0.25, 0.74, 2.9, NaN);
    const mask = new Uint8Array(6);
    const y = fakeQuantize(x, [6], { scale: 0.5, zeroPoint: 0 }, { bits: 3, mask });
    // int3 restricted: -3..3 -> -1.5..1.5
    expect(Array.from(y)).toEqual([-1.5, -0.5, 0, 0.5, 1.5, 0]);
    expect(Array.from(mask)).toEqual([0, 1, 1, 1, 0, 0]);
  });

  it('PyTorch formula multiplies by the float32 reciprocal', () => {
    const sc = Math.fround(0.3);
    const x = f32(2.25);
    const onnx = fakeQuantize(x, [1], { scale: sc, zeroPoint: 0 });
    const torch = fakeQuantize(x, [1], { scale: sc, zeroPoint: 0 }, { formula: 'pytorch' });
    expect(onnx[0]).toBe(Math.fround(7 * sc));
    expect(torch[0]).toBe(Math.fround(8 * sc));
  });

  it('works in place', () => {
    const x = f32(0.3, 0.6);
    const y = fakeQuantize(x, [2], { scale: 0.5, zeroPoint: 0 }, { out: x });
    expect(y).toBe(x);
    expect(Array.from(x)).toEqual([0.5, 0.5]);
  });

  it('rejects qparams of the wrong size', () => {
    expect(() => fakeQuantize(f32(1, 2), [2], { scale: f32(1), zeroPoint: Int32Array.of(0) }, { granularity: { axis: 0 } }))
      .toThrow('Expected length 2 for qparams.scale but received Float32Array of length 1');
    expect(() => fakeQuantize(f32(1, 2), [2], { scale: 1, zeroPoint: 200 })).toThrow('Expected an integer between -127 and 127 for qparams.zeroPoint but received 200');
  });
});

describe('minMax', () => {
  it('skips and counts NaN and Inf, reports -0 as 0', () => {
    const r = minMax(f32(NaN, -0, Infinity, 3, -Infinity, NaN));
    expect(Array.from(r.min)).toEqual([0]);
    expect(Object.is(r.min[0], 0)).toBe(true);
    expect(Array.from(r.max)).toEqual([3]);
    expect(r.nanCount).toBe(2);
    expect(r.infCount).toBe(2);
  });

  it('per axis and per block; empty groups are +Inf/-Inf', () => {
    const r = minMax(f32(1, 5, 2, 9, -4, 0), [2, 3], { granularity: { axis: 1 } });
    expect(Array.from(r.min)).toEqual([1, -4, 0]);
    expect(Array.from(r.max)).toEqual([9, 5, 2]);
    const e = minMax(new Float32Array(0));
    expect(Array.from(e.min)).toEqual([Infinity]);
    expect(Array.from(e.max)).toEqual([-Infinity]);
  });
});

describe('threads and cpuInfo', () => {
  it('reports paths and threads', () => {
    const info = cpuInfo();
    expect(info.supportedPaths).toContain('scalar');
    expect(info.threads).toBeGreaterThanOrEqual(1);
    setNumThreads(1);
    expect(getNumThreads()).toBe(1);
    setNumThreads(info.defaultThreads);
    expect(() => setNumThreads(0)).toThrow('Expected an integer between 1 and 1024 for n but received 0');
  });

  it('gives the same results with 1 and 2 threads on large tensors', () => {
    const n = (1 << 20) + 3;
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.001) * 100);
    setNumThreads(1);
    const a = quantizeLinear(x, 0.7, 0, { dtype: 'int4' });
    const fa = fakeQuantize(x, [n], { scale: 0.7, zeroPoint: 0 });
    setNumThreads(2);
    const b = quantizeLinear(x, 0.7, 0, { dtype: 'int4' });
    const fb = fakeQuantize(x, [n], { scale: 0.7, zeroPoint: 0 });
    setNumThreads(cpuInfo().defaultThreads);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(fa.buffer).equals(Buffer.from(fb.buffer))).toBe(true);
  });
});

describe('outputs may not share memory with the qparams they are computed from', () => {
  it('rejects out overlapping scale or zeroPoint', () => {
    const ab = new ArrayBuffer(4096);
    const sc = new Float32Array(ab, 0, 2).fill(1);
    const out = new Uint8Array(ab);
    expect(() => quantizeLinear(new Float32Array(4096).fill(3), sc, new Uint8Array(2), { shape: [2, 2048], axis: 0, out }))
      .toThrow('Expected scale and out not to overlap in memory but received views of the same bytes');
    const ab2 = new ArrayBuffer(64);
    const zp = new Int32Array(ab2, 0, 2);
    const y = new Float32Array(ab2, 0, 4);
    expect(() => dequantizeLinear(Int8Array.of(1, 2, 3, 4), f32(1, 1), zp, { shape: [2, 2], axis: 0, out: y }))
      .toThrow('Expected zeroPoint and out not to overlap in memory but received views of the same bytes');
  });
});
