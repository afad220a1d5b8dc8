// Model files written before the layer registry (commit 10e2b99, test/fixtures/model-files,
// written by make.cjs there) still load with the same outputs, and the current code writes the
// same bytes for the same model: saving a loaded file gives the file back, and quantizing the
// float fixture with the fixture's options gives each quantized fixture byte for byte.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, QuantizedModel, quantizeModel, saveModel } from '../lib/index';
import type { Sequential } from '../lib/nn/index';

const dir = path.join(__dirname, 'fixtures', 'model-files');
const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as {
  x: number[]; calibration: number[]; files: Record<string, { options: Record<string, unknown> | null; y: number[] }>;
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-compat-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const x = Float32Array.from(expected.x);

describe('model files of the earlier format', () => {
  it.each(Object.keys(expected.files))('%s: loads, same outputs; saved again, the same bytes', (name) => {
    const file = path.join(dir, `${name}.safetensors`);
    const m = loadModel(file);
    expect(m instanceof QuantizedModel).toBe(expected.files[name].options !== null);
    if (!(m instanceof QuantizedModel)) m.eval(); // a loaded Sequential is in training mode (its Dropout active)
    expect(Array.from(m.forward(x, 3))).toEqual(expected.files[name].y);
    const again = path.join(tmp, `${name}.safetensors`);
    saveModel(again, m, { metadata: { fixture: name } });
    expect(fs.readFileSync(again).equals(fs.readFileSync(file))).toBe(true);
  });

  it.each(Object.keys(expected.files).filter((n) => expected.files[n].options !== null))('%s: quantizing the float fixture writes the same file', (name) => {
    const float = loadModel(path.join(dir, 'float.safetensors')) as Sequential;
    const opts = { ...expected.files[name].options } as Record<string, unknown>;
    if (opts.calibrationData !== undefined) opts.calibrationData = Float32Array.from(expected.calibration);
    const q = quantizeModel(float, opts as never);
    const out = path.join(tmp, `${name}-q.safetensors`);
    saveModel(out, q, { metadata: { fixture: name } });
    expect(fs.readFileSync(out).equals(fs.readFileSync(path.join(dir, `${name}.safetensors`)))).toBe(true);
    expect(Array.from(q.forward(x, 3))).toEqual(expected.files[name].y);
  });
});
