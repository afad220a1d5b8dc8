// ONNX's own backend node tests (Debian libonnx-testdata) for the quantization operators, run on
// quantkit's ONNX-level functions: outputs must match the reference outputs exactly. And every
// node test model of that package must survive quantkit's decode + encode byte for byte.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dequantizeLinear, dynamicQuantizeLinear, matmulInteger, qlinearMatMul, quantizeLinear, readTensorProto } from '../lib/index';
import { decodeModel, encodeModel } from '../lib/onnx-model/proto';
import { BACKEND_DIR, backendAvailable } from './onnx-helpers';

const HAVE = backendAvailable();
if (!HAVE) console.warn(`onnx-backend tests skipped: ${BACKEND_DIR} not found (apt-get install libonnx-testdata)`);

function load(test: string): { inputs: ReturnType<typeof readTensorProto>[]; outputs: ReturnType<typeof readTensorProto>[] } {
  const d = path.join(BACKEND_DIR, test, 'test_data_set_0');
  const files = fs.readdirSync(d).sort();
  const get = (p: string) => files.filter((f) => f.startsWith(p)).sort((a, b) => parseInt(a.slice(p.length)) - parseInt(b.slice(p.length))).map((f) => readTensorProto(path.join(d, f)));
  return { inputs: get('input_'), outputs: get('output_') };
}

const arr = (v: ArrayLike<number | bigint>) => Array.from(v as ArrayLike<number>, Number);

describe.skipIf(!HAVE)('ONNX backend node tests on quantkit functions', () => {
  it('QuantizeLinear (per tensor and per axis)', () => {
    for (const t of ['test_quantizelinear', 'test_quantizelinear_axis']) {
      const { inputs: [x, s, z], outputs: [y] } = load(t);
      const opts = { shape: x.dims, ...(s.dims.length ? { axis: 1 } : {}) };
      const q = quantizeLinear(x.data as Float32Array, s.dims.length ? (s.data as Float32Array) : (s.data as Float32Array)[0], z.data as Uint8Array, opts);
      expect(arr(q), t).toEqual(arr(y.data));
    }
  });

  it('DequantizeLinear (per tensor and per axis)', () => {
    for (const t of ['test_dequantizelinear', 'test_dequantizelinear_axis']) {
      const { inputs: [x, s, z], outputs: [y] } = load(t);
      const opts = { shape: x.dims, ...(s.dims.length ? { axis: 1 } : {}) };
      const f = dequantizeLinear(x.data as Uint8Array, s.dims.length ? (s.data as Float32Array) : (s.data as Float32Array)[0], z ? (z.data as Uint8Array) : 0, opts);
      expect(arr(f), t).toEqual(arr(y.data));
    }
  });

  it('DynamicQuantizeLinear (three data sets)', () => {
    for (const t of ['test_dynamicquantizelinear', 'test_dynamicquantizelinear_max_adjusted', 'test_dynamicquantizelinear_min_adjusted']) {
      const { inputs: [x], outputs: [y, s, z] } = load(t);
      const r = dynamicQuantizeLinear(x.data as Float32Array);
      expect(arr(r.data), t).toEqual(arr(y.data));
      expect(r.scale, t).toBe((s.data as Float32Array)[0]);
      expect(r.zeroPoint, t).toBe((z.data as Uint8Array)[0]);
    }
  });

  it('MatMulInteger', () => {
    const { inputs: [a, b, az, bz], outputs: [y] } = load('test_matmulinteger');
    const [M, K] = a.dims, N = b.dims[1];
    const r = matmulInteger(a.data as Uint8Array, b.data as Uint8Array, { M, K, N, aZeroPoint: (az.data as Uint8Array)[0], bZeroPoint: (bz.data as Uint8Array)[0] });
    expect(arr(r)).toEqual(arr(y.data));
  });

  it('QLinearMatMul 2-D', () => {
    const { inputs: [a, as, az, b, bs, bz, ys, yz], outputs: [y] } = load('test_qlinearmatmul_2D');
    const [M, K] = a.dims, N = b.dims[1];
    const r = qlinearMatMul(a.data as Uint8Array, (as.data as Float32Array)[0], (az.data as Uint8Array)[0], b.data as Uint8Array, (bs.data as Float32Array)[0],
      (bz.data as Uint8Array)[0], (ys.data as Float32Array)[0], yz.data as Uint8Array, { M, K, N });
    expect(arr(r)).toEqual(arr(y.data));
  });

  it('every node test model decodes and encodes back byte for byte', () => {
    let n = 0;
    for (const t of fs.readdirSync(BACKEND_DIR)) {
      const f = path.join(BACKEND_DIR, t, 'model.onnx');
      if (!fs.existsSync(f)) continue;
      const b = fs.readFileSync(f);
      const lm = decodeModel(b, f, path.dirname(f));
      expect(Buffer.compare(Buffer.from(encodeModel(lm.model)), b), f).toBe(0);
      n++;
    }
    expect(n).toBeGreaterThan(500);
  });
});
