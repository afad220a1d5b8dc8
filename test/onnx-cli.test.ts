// The ONNX commands of the CLI: info and quantize (dynamic, static with a safetensors calibration file).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { main } from '../lib/cli/main';
import { saveSafetensors } from '../lib/io/safetensors';
import { normal, realModels } from './onnx-helpers';

const real = realModels();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-onnx-cli-'));

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const code = await main(argv, { out: (s) => { out += s; }, err: (s) => { err += s; }, isTTY: false });
  return { code, out, err };
}

describe.skipIf(!real.paths)('quantkit CLI on ONNX models', () => {
  const oww = real.paths!.openwakeword;

  it('info lists opsets, inputs, operators and what each mode would quantize', async () => {
    const r = await run(['info', oww]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/IR 7, opsets ai.onnx 13, from pytorch 2.8.0/);
    expect(r.out).toMatch(/inputs: {2}onnx::Flatten_0 float \[1, 25, 96\]/);
    expect(r.out).toMatch(/Gemm 3/);
    expect(r.out).toMatch(/dynamic +3 +304.1 KiB +7\d\.\d KiB/);
  });

  it('quantize: dynamic and static (safetensors calibration, progress); the outputs run in ORT', async () => {
    const out = path.join(tmp, 'dyn.onnx');
    const d = await run(['quantize', oww, '-o', out]);
    expect(d.code, d.err).toBe(0);
    expect(d.out).toMatch(/dyn.onnx: dynamic; 3 nodes quantized; 308.6 KiB -> 8\d\.\d KiB/);
    await ort.InferenceSession.create(out);
    const cal = path.join(tmp, 'cal.safetensors');
    saveSafetensors(cal, { 'onnx::Flatten_0': { dtype: 'F32', shape: [20, 25, 96], data: normal(20 * 2400, 3) } });
    const sOut = path.join(tmp, 'static.onnx');
    const s = await run(['quantize', oww, '-o', sOut, '--mode', 'static', '--calibration', cal, '--observer', 'percentile', '--summary', path.join(tmp, 's.json')]);
    expect(s.code, s.err).toBe(0);
    expect(s.err).toMatch(/calibrating on 20 batches/);
    expect(s.err).toMatch(/calibrating 20\/20 \(100%\)/);
    const summary = JSON.parse(fs.readFileSync(path.join(tmp, 's.json'), 'utf8'));
    expect(summary.calibration).toMatchObject({ batches: 20, observer: 'percentile' });
    await ort.InferenceSession.create(sOut);
    const w = await run(['quantize', oww, '-o', path.join(tmp, 'w.onnx'), '--mode', 'weight-only', '--bits', '8', '--block-size', '64', '--exclude', '/last_layer/Gemm']);
    expect(w.code, w.err).toBe(0);
    expect(w.out).toMatch(/2 nodes quantized/);
    expect(w.out).toMatch(/left float: Gemm '\/last_layer\/Gemm' \(graph\): excluded/);
  });

  it('usage errors exit 2 with the ONNX help; bad files exit 1 naming the file', async () => {
    const u = await run(['quantize', oww, '-o', path.join(tmp, 'x.onnx'), '--mode', 'static']);
    expect(u.code).toBe(2);
    expect(u.err).toMatch(/--mode static needs --calibration FILE.safetensors/);
    const b = await run(['quantize', oww, '-o', path.join(tmp, 'x.onnx'), '--bits', '4']);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--bits is only for --mode weight-only/);
    const bad = path.join(tmp, 'bad.onnx');
    fs.writeFileSync(bad, 'not a model');
    const e = await run(['info', bad]);
    expect(e.code).toBe(1);
    expect(e.err).toMatch(/bad.onnx: /);
  });
});
