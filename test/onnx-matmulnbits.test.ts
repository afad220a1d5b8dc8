// ORT's MatMulNBits layout (lib/formats/matmulnbits.ts): bit-exact packing, round trips, and the
// packed tensors run in onnxruntime-node against x @ dequantized(B).
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { dequantizeMatMulNBits, matMulNBitsSizes, packMatMulNBits, quantizeMatMulNBits, unpackMatMulNBits } from '../lib/index';
import { intAttr, makeNode } from '../lib/onnx-model/graph';
import { DT, encodeModel, makeTensor } from '../lib/onnx-model/proto';
import { normal, rng } from './onnx-helpers';

describe('MatMulNBits layout', () => {
  it('packs 4-bit codes two per byte, first in the low nibble, blocks N-major, padding = zero point', () => {
    // N = 2, K = 20, block 16: 2 blocks per row, 8 bytes each.
    const K = 20, N = 2;
    const codes = Uint8Array.from({ length: N * K }, (_, i) => i % 16);
    const scales = Float32Array.from({ length: 4 }, (_, i) => i + 1);
    const p = packMatMulNBits(codes, scales, null, { K, N, bits: 4, blockSize: 16 });
    expect(p.B.length).toBe(2 * 2 * 8);
    expect(Array.from(p.B.subarray(0, 8))).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    // row 0, block 1: codes 0,1,2,3 (k = 16..19) then padding 8
    expect(Array.from(p.B.subarray(8, 16))).toEqual([0x10, 0x32, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88]);
    // row 1 starts at k = 0 with code 20 % 16 = 4
    expect(p.B[16]).toBe(0x54);
    expect(p.zeroPoints).toBeNull();
  });

  it('packs zero points per row, two per byte, each row padded to whole bytes', () => {
    const K = 48, N = 2, bs = 16; // 3 blocks per row -> 2 bytes per row
    const zps = Uint8Array.of(1, 2, 3, 4, 5, 6);
    const p = packMatMulNBits(new Uint8Array(N * K), new Float32Array(6).fill(1), zps, { K, N, bits: 4, blockSize: bs });
    expect(Array.from(p.zeroPoints!)).toEqual([0x21, 0x03, 0x54, 0x06]);
    // padding codes of a block are its zero point: none here (K is a multiple of 16).
    expect(unpackMatMulNBits(p).zeroPoints).toEqual(zps);
  });

  it('round-trips codes, scales and zero points for 2..8 bits and ragged K', () => {
    for (let bits = 2; bits <= 8; bits++) {
      for (const [K, N, bs] of [[17, 3, 16], [64, 5, 32], [100, 2, 64], [33, 1, 16]]) {
        const r = rng(bits * 1000 + K);
        const kb = Math.ceil(K / bs);
        const codes = Uint8Array.from({ length: N * K }, () => Math.floor(r() * (1 << bits)));
        const zps = Uint8Array.from({ length: N * kb }, () => Math.floor(r() * (1 << bits)));
        const scales = Float32Array.from({ length: N * kb }, () => r() + 0.01);
        const p = packMatMulNBits(codes, scales, zps, { K, N, bits, blockSize: bs });
        const { bBytes, zpRowBytes } = matMulNBitsSizes({ K, N, bits, blockSize: bs });
        expect(p.B.length).toBe(bBytes);
        expect(p.zeroPoints!.length).toBe(N * zpRowBytes);
        const u = unpackMatMulNBits(p);
        expect(u.codes).toEqual(codes);
        expect(u.zeroPoints).toEqual(zps);
        expect(u.scales).toEqual(scales);
      }
    }
  });

  it('refuses bad shapes and codes with clear errors', () => {
    expect(() => packMatMulNBits(new Uint8Array(4), new Float32Array(1), null, { K: 4, N: 1, bits: 4, blockSize: 24 })).toThrow(/power of two >= 16 for shape.blockSize but received 24/);
    expect(() => packMatMulNBits(new Uint8Array(4), new Float32Array(1), null, { K: 4, N: 1, bits: 9, blockSize: 16 })).toThrow(/shape.bits/);
    expect(() => packMatMulNBits(Uint8Array.of(16, 0, 0, 0), new Float32Array(1), null, { K: 4, N: 1, bits: 4, blockSize: 16 })).toThrow(/a code between 0 and 15 for codes\[0\] but received 16/);
    expect(() => unpackMatMulNBits({ B: new Uint8Array(3), scales: new Float32Array(1), K: 4, N: 1, bits: 4, blockSize: 16 })).toThrow(/length .* = 8 for packed.B/);
  });

  it('quantizeMatMulNBits: symmetric codes are round(w / (absmax / 7)) + 8 per block', () => {
    const K = 32, N = 2;
    const w = new Float32Array(K * N);
    for (let k = 0; k < K; k++) { w[k * N] = (k - 16) / 16; w[k * N + 1] = k === 3 ? -2 : 0.5; }
    const p = quantizeMatMulNBits(w, K, N, { bits: 4, blockSize: 32 });
    const u = unpackMatMulNBits(p);
    expect(u.scales[0]).toBe(Math.fround(1 / 7));
    expect(u.codes[0]).toBe(8 - 7); // -1 -> -7
    expect(u.codes[16]).toBe(8); // 0
    expect(u.scales[1]).toBe(Math.fround(2 / 7));
    expect(u.codes[K + 3]).toBe(1);
    expect(u.codes[K + 0]).toBe(8 + 2); // 0.5 / (2/7) = 1.75 -> 2
  });

  it('runs in onnxruntime-node: MatMulNBits(x, B, scales[, zero points]) = x @ dequantized(B)', async () => {
    for (const [bits, sym, K, N] of [[4, true, 64, 24], [4, false, 80, 16], [8, true, 64, 8], [8, false, 48, 8], [2, false, 64, 8]] as const) {
      const bs = 16;
      const w = normal(K * N, bits * 7 + K);
      const p = quantizeMatMulNBits(w, K, N, { bits, blockSize: bs, symmetric: sym });
      const kb = Math.ceil(K / bs);
      const inits = [makeTensor('B', DT.UINT8, [N, kb, (bs * bits) / 8], p.B), makeTensor('S', DT.FLOAT, [N * kb], p.scales)];
      const ins = ['x', 'B', 'S'];
      if (p.zeroPoints) { inits.push(makeTensor('Z', DT.UINT8, [p.zeroPoints.length], p.zeroPoints)); ins.push('Z'); }
      const node = makeNode('MatMulNBits', ins, ['y'], 'mm', [intAttr('K', K), intAttr('N', N), intAttr('bits', bits), intAttr('block_size', bs)], 'com.microsoft');
      const vi = (name: string, d: number) => ({ name, type: { tensorType: { elemType: DT.FLOAT, shape: { dim: [{ dimValue: 3 }, { dimValue: d }] } } } });
      const bytes = encodeModel({
        irVersion: 10, opsetImport: [{ domain: '', version: 21 }, { domain: 'com.microsoft', version: 1 }], metadataProps: [], trainingInfo: [], functions: [],
        graph: { node: [node], initializer: inits, sparseInitializer: [], input: [vi('x', K)], output: [vi('y', N)], valueInfo: [], quantizationAnnotation: [] },
      });
      const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
      const x = normal(3 * K, 99);
      const y = (await s.run({ x: new ort.Tensor('float32', x, [3, K]) })).y.data as Float32Array;
      const wd = dequantizeMatMulNBits(p);
      for (let m = 0; m < 3; m++) {
        for (let n = 0; n < N; n++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += x[m * K + k] * wd[k * N + n];
          expect(Math.abs(y[m * N + n] - acc), `bits ${bits} sym ${sym} [${m},${n}]`).toBeLessThan(1e-4 * (1 + Math.abs(acc)));
        }
      }
    }
  });
});
