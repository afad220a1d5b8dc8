// The quantkit command line (bin/quantkit.js -> dist/cjs/cli/main.js), run as users run it: a
// child process. Usage errors (exit 2) and runtime errors (exit 1) with their exact messages,
// quantize / info / eval on a tiny model and tiny IDX files written here, and every file the CLI
// and saveModel write checked by an independent reader (scripts/check_safetensors.py, Python).
// The CLI runs from dist/: `npm test` builds it first (`npm run build:ts` when running this alone).
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  data, loadModel, loadSafetensors, nn, parseSafetensors, QuantizedModel, quantizeModel, saveModel, saveSafetensors,
} from '../lib/index';
import type { SafetensorsTensor } from '../lib/index';

const root = path.resolve(__dirname, '..');
const BIN = path.join(root, 'bin', 'quantkit.js');
const CHECKER = path.join(root, 'scripts', 'check_safetensors.py');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// No stack traces in stderr (QUANTKIT_DEBUG adds them), no user cache.
const env: NodeJS.ProcessEnv = { ...process.env, QUANTKIT_CACHE_DIR: path.join(tmp, 'cache') };
delete env.QUANTKIT_DEBUG;

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs `node bin/quantkit.js ...args` in the temp folder (file names in messages stay short). */
function cli(...args: string[]): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, env, encoding: 'utf8', timeout: 60000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const at = (f: string) => path.join(tmp, f);
const USAGE_HINT = "Run 'quantkit --help' for usage.\n";

/** IDX3 uint8 images [n, rows, cols] (magic 0x00000803, big-endian dims). */
function writeImages(file: string, n: number, rows: number, cols: number, px: (i: number) => number): Uint8Array {
  const b = Buffer.alloc(16 + n * rows * cols);
  b.writeUInt32BE(0x803, 0);
  b.writeUInt32BE(n, 4);
  b.writeUInt32BE(rows, 8);
  b.writeUInt32BE(cols, 12);
  for (let i = 0; i < n * rows * cols; i++) b[16 + i] = px(i) & 255;
  fs.writeFileSync(file, b);
  return new Uint8Array(b.subarray(16));
}

/** IDX1 uint8 labels (magic 0x00000801). */
function writeLabels(file: string, labels: number[]): void {
  const b = Buffer.alloc(8 + labels.length);
  b.writeUInt32BE(0x801, 0);
  b.writeUInt32BE(labels.length, 4);
  labels.forEach((l, i) => { b[8 + i] = l; });
  fs.writeFileSync(file, b);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function tensorBytes(file: string): number {
  return Object.values(loadSafetensors(file).tensors).reduce((s, t) => s + t.data.byteLength, 0);
}

// The tiny model: 8 inputs (2x4 images), 4 outputs; 848 bytes of float32 parameters.
const ROWS = 2, COLS = 4, FEATURES = ROWS * COLS;
let model: nn.Sequential;
const FLOAT = 'model.safetensors';
const FLOAT_BYTES = (8 * 16 + 16 + 16 * 4 + 4) * 4;
// Inputs in [-1, 1] for the dynamic and weight-only checks; calibration images for static.
const X = Float32Array.from({ length: 16 * FEATURES }, (_, i) => Math.sin(i * 1.7));
const CAL_N = 6;
let calX: Float32Array;
// A dynamic int8 model file written by the library (the CLI writes the same bytes: tested below).
const DYN_LIB = 'dyn-lib.safetensors';
// A state dict without a graph.
const FOREIGN_W = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i) * (1 + (i % 3)));
const FOREIGN: Record<string, SafetensorsTensor> = {
  'fc.weight': { dtype: 'F32', shape: [4, 8], data: FOREIGN_W },
  'fc.bias': { dtype: 'F32', shape: [4], data: new Float32Array([1, -2, 3.5, 4]) },
  other: { dtype: 'I32', shape: [3], data: new Int32Array([5, -6, 7]) },
};

beforeAll(() => {
  if (!fs.existsSync(path.join(root, 'dist/cjs/cli/main.js'))) {
    throw new Error('dist/cjs/cli/main.js is missing: run `npm run build:ts` first (npm test does)');
  }
  nn.manualSeed(7);
  model = new nn.Sequential(new nn.Flatten(), new nn.Linear(FEATURES, 16), new nn.ReLU(), new nn.Linear(16, 4));
  model.eval();
  saveModel(at(FLOAT), model);
  // Calibration images in the MNIST layout (the CLI pairs *-images-idx3-* with *-labels-idx1-*).
  const px = writeImages(at('calib-images-idx3-ubyte'), CAL_N, ROWS, COLS, (i) => (i * 37 + 11) % 256);
  writeLabels(at('calib-labels-idx1-ubyte'), [0, 1, 2, 3, 0, 1]);
  calX = Float32Array.from(px, (v) => v / 255);
  saveModel(at(DYN_LIB), quantizeModel(model, { mode: 'dynamic' }));
  saveSafetensors(at('foreign.safetensors'), FOREIGN, { source: 'test' });
});

describe('help and version', () => {
  it('--help exits 0 and lists the commands', () => {
    const r = cli('--help');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^quantkit: quantization for Node\.js \(PTQ, QAT, ONNX models, reports\)\n\nUsage:\n/);
    for (const c of ['quantkit demo [options]', 'quantkit quantize IN -o OUT', 'quantkit eval MODEL', 'quantkit info FILE']) {
      expect(r.stdout).toContain(`\n  ${c}`);
    }
    for (const o of ['--mode dynamic|static|weight-only', '--bits N', '--granularity G', '--scheme symmetric|asymmetric', '--calibration FILE|mnist|fashion', '--observer NAME']) {
      expect(r.stdout).toContain(o);
    }
    expect(cli('-h').stdout).toBe(r.stdout);
  });

  it('no arguments: the usage on stderr, exit 2', () => {
    const r = cli();
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(cli('--help').stdout);
    expect(r.stdout).toBe('');
  });

  it('--version prints the package version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    const r = cli('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${pkg.version}\n`);
    expect(r.stderr).toBe('');
  });
});

describe('usage errors: exit 2, the message and the hint on stderr, nothing written', () => {
  const cases: [string, string[], string][] = [
    ['unknown command', ['frobnicate'], "unknown command 'frobnicate' (commands: demo, quantize, eval, info, report)"],
    ['unknown option (parseArgs)', ['quantize', FLOAT, '-o', 'x.safetensors', '--frob'], "Unknown option '--frob'"],
    ['option without its value', ['quantize', FLOAT, '-o'], "Option '-o, --output <value>' argument missing"],
    ['quantize without input', ['quantize', '-o', 'x.safetensors'], 'quantize needs an input file: quantkit quantize IN.safetensors -o OUT.safetensors'],
    ['quantize without -o', ['quantize', FLOAT], 'quantize needs an output file: -o OUT.safetensors'],
    ['quantize with two inputs', ['quantize', FLOAT, 'other.safetensors', '-o', 'x.safetensors'], `quantize takes one input file, got 2: ${FLOAT} other.safetensors`],
    ['--mode bogus', ['quantize', FLOAT, '-o', 'x.safetensors', '--mode', 'bogus'], "--mode expects one of dynamic, static, weight-only, got 'bogus'"],
    ['--bits 9', ['quantize', FLOAT, '-o', 'x.safetensors', '--bits', '9'], "--bits expects an integer between 2 and 8, got '9'"],
    ['--bits 1', ['quantize', FLOAT, '-o', 'x.safetensors', '--bits', '1'], "--bits expects an integer between 2 and 8, got '1'"],
    ['--bits x', ['quantize', FLOAT, '-o', 'x.safetensors', '--bits', 'x'], "--bits expects an integer between 2 and 8, got 'x'"],
    ['--bits 4.5', ['quantize', FLOAT, '-o', 'x.safetensors', '--bits=4.5'], "--bits expects an integer between 2 and 8, got '4.5'"],
    ['--granularity bad', ['quantize', FLOAT, '-o', 'x.safetensors', '--granularity', 'bad'], "--granularity expects per-channel, per-tensor or group:N, got 'bad'"],
    ['--granularity group:0', ['quantize', FLOAT, '-o', 'x.safetensors', '--mode', 'weight-only', '--granularity', 'group:0'], "--granularity expects per-channel, per-tensor or group:N, got 'group:0'"],
    ['--granularity group:32 with --mode dynamic', ['quantize', FLOAT, '-o', 'x.safetensors', '--mode', 'dynamic', '--granularity', 'group:32'],
      '--granularity group:N needs --mode weight-only (the int8 GEMM takes one scale per output channel)'],
    ['--scheme bogus', ['quantize', FLOAT, '-o', 'x.safetensors', '--scheme', 'bogus'], "--scheme expects one of symmetric, asymmetric, got 'bogus'"],
    ['--observer bogus', ['quantize', FLOAT, '-o', 'x.safetensors', '--mode', 'static', '--calibration', 'calib-images-idx3-ubyte', '--observer', 'bogus'],
      "--observer expects one of minmax, moving-average, histogram, percentile, mse, entropy, got 'bogus'"],
    ['--mode static without --calibration', ['quantize', FLOAT, '-o', 'x.safetensors', '--mode', 'static'],
      '--mode static needs --calibration FILE|mnist|fashion (images to calibrate activation ranges on)'],
    ['--calibration with dynamic mode', ['quantize', FLOAT, '-o', 'x.safetensors', '--calibration', 'calib-images-idx3-ubyte'], '--calibration is only for --mode static'],
    ['--calibration with weight-only mode', ['quantize', FLOAT, '-o', 'x.safetensors', '--mode', 'weight-only', '--calibration', 'mnist'], '--calibration is only for --mode static'],
    ['eval without a file', ['eval'], 'eval needs one model file: quantkit eval MODEL.safetensors'],
    ['eval with two files', ['eval', FLOAT, FLOAT], 'eval needs one model file: quantkit eval MODEL.safetensors'],
    ['eval --dataset bogus', ['eval', FLOAT, '--dataset', 'bogus'], "--dataset expects one of mnist, fashion, got 'bogus'"],
    ['info without a file', ['info'], 'info needs one file: quantkit info FILE.safetensors'],
    ['info with an option', ['info', FLOAT, '--mode', 'dynamic'], "Unknown option '--mode'"],
    ['demo with a positional argument', ['demo', 'extra'], "demo takes no positional arguments, got 'extra'"],
    ['demo --dataset bogus', ['demo', '--dataset', 'bogus'], "--dataset expects one of mnist, fashion, got 'bogus'"],
    ['demo --epochs 0', ['demo', '--epochs', '0'], "--epochs expects an integer between 1 and 1000, got '0'"],
    ['demo --qat-bits without --qat', ['demo', '--qat-bits', '4'], '--qat-bits needs --qat'],
    ['demo --qat --qat-bits 1', ['demo', '--qat', '--qat-bits', '1'], "--qat-bits expects an integer between 2 and 8, got '1'"],
    ['demo --qat --qat-method bogus', ['demo', '--qat', '--qat-method', 'bogus'], "--qat-method expects one of ste, lsq, got 'bogus'"],
  ];
  it.each(cases)('%s', (_, args, msg) => {
    const r = cli(...args);
    expect(r.stderr).toBe(`quantkit: ${msg}\n${USAGE_HINT}`);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(fs.existsSync(at('x.safetensors'))).toBe(false);
  });
});

describe('demo --qat', () => {
  it('fine-tunes with QAT, converts, and adds PTQ and QAT rows to the table', async () => {
    const d = at('tiny-mnist');
    fs.mkdirSync(d, { recursive: true });
    const lab = (n: number) => Array.from({ length: n }, (_, i) => i % 10);
    writeImages(path.join(d, 'train-images-idx3-ubyte'), 256, 28, 28, (i) => ((i >> 3) * 31 + Math.floor(i / 784)) % 256);
    writeLabels(path.join(d, 'train-labels-idx1-ubyte'), lab(256));
    writeImages(path.join(d, 't10k-images-idx3-ubyte'), 40, 28, 28, (i) => (i * 17 + Math.floor(i / 784)) % 256);
    writeLabels(path.join(d, 't10k-labels-idx1-ubyte'), lab(40));
    // Asynchronously: a long spawnSync would block the test worker's reports to vitest.
    const r = await new Promise<Run>((resolve, reject) => {
      execFile(process.execPath, [BIN, 'demo', '--data', d, '--epochs', '1', '--calibration', '64', '--qat', '--qat-bits', '2', '--qat-method', 'lsq'],
        { cwd: tmp, env, encoding: 'utf8', timeout: 120000 }, (err, stdout, stderr) => {
          if (err && typeof err.code !== 'number') reject(err);
          else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
        });
    });
    expect(r.stderr).toMatch(/QAT: fine-tuning W2A8 \(LSQ, learned scales\), 1 epoch/);
    expect(r.stderr).toMatch(/QAT W2A8: 2 steps in [\d.]+ s/);
    expect(r.stderr).toMatch(/converted to a static int8 model: same class as the QAT model on \d+ \/ 40 test images/);
    expect(r.stdout).toMatch(/^W2A8 static PTQ +\d/m);
    expect(r.stdout).toMatch(/^W2A8 static QAT \(LSQ\) +\d/m);
    expect(r.code).toBe(0);
  }, 120_000);
});

describe('missing and corrupt files: exit 1, one line naming the file, no stack trace', () => {
  const fail = (r: Run, line: string) => {
    expect(r.stderr).toBe(`quantkit: ${line}\n`);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
  };

  it('quantize, eval and info of a file that does not exist', () => {
    fail(cli('quantize', 'nope.safetensors', '-o', 'x.safetensors'), 'nope.safetensors: no such file');
    expect(fs.existsSync(at('x.safetensors'))).toBe(false);
    fail(cli('eval', 'nope.safetensors'), 'nope.safetensors: no such file');
    fail(cli('info', 'nope.safetensors'), 'nope.safetensors: no such file');
  });

  it('static calibration file that does not exist', () => {
    fail(cli('quantize', FLOAT, '-o', 'x.safetensors', '--mode', 'static', '--calibration', 'nocalib.idx'), 'nocalib.idx: calibration file not found');
    expect(fs.existsSync(at('x.safetensors'))).toBe(false);
  });

  it('demo and eval with a data folder that does not exist', () => {
    fail(cli('demo', '--data', 'no-such-dir'), 'no-such-dir/train-images-idx3-ubyte: not found (nor train-images-idx3-ubyte.gz)');
    nn.manualSeed(4);
    saveModel(at('wide.safetensors'), new nn.Sequential(new nn.Linear(784, 3)));
    fail(cli('eval', 'wide.safetensors', '--data', 'no-such-dir'), 'no-such-dir/t10k-images-idx3-ubyte: not found (nor t10k-images-idx3-ubyte.gz)');
  });

  it('a truncated file (header cut) and a garbage header', () => {
    const full = fs.readFileSync(at(FLOAT));
    fs.writeFileSync(at('trunc.safetensors'), full.subarray(0, 100));
    const n = Number(full.readBigUInt64LE(0));
    expect(n).toBeGreaterThan(92);
    const junk = Buffer.alloc(64, 0x41);
    junk.writeBigUInt64LE(16n, 0);
    fs.writeFileSync(at('garbage.safetensors'), junk);
    const truncMsg = `trunc.safetensors: header length: ${n} bytes of header but the file has only 92 bytes after the length; truncated or corrupt`;
    const junkMsg = "garbage.safetensors: header: expected a JSON object starting with '{' but found 'AAAAAAAAAAAAAAAA'";
    for (const [file, msg] of [['trunc.safetensors', truncMsg], ['garbage.safetensors', junkMsg]]) {
      fail(cli('quantize', file, '-o', 'x.safetensors'), msg);
      fail(cli('info', file), msg);
      fail(cli('eval', file), msg);
    }
    expect(fs.existsSync(at('x.safetensors'))).toBe(false);
  });

  it('a file whose data section is cut short', () => {
    const full = fs.readFileSync(at(FLOAT));
    fs.writeFileSync(at('short.safetensors'), full.subarray(0, full.length - 10));
    for (const args of [['info', 'short.safetensors'], ['quantize', 'short.safetensors', '-o', 'x.safetensors']]) {
      const r = cli(...args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^quantkit: short\.safetensors: header\.tensors\['[^']+'\]\.data_offsets: end \d+ is past the end of the data section \(\d+ bytes\); truncated or corrupt\n$/);
      expect(r.stdout).toBe('');
    }
  });
});

describe('quantize a quantkit model file', () => {
  it('a model without a Linear layer: exit 1', () => {
    saveModel(at('nolinear.safetensors'), new nn.Sequential(new nn.Flatten(), new nn.ReLU()));
    const r = cli('quantize', 'nolinear.safetensors', '-o', 'x.safetensors');
    expect(r.stderr).toBe('quantkit: nolinear.safetensors: the model has no Linear layer to quantize\n');
    expect(r.code).toBe(1);
    expect(fs.existsSync(at('x.safetensors'))).toBe(false);
  });

  it('default (dynamic int8): the same file as the library writes, close to the float model', () => {
    const r = cli('quantize', FLOAT, '-o', 'dyn.safetensors');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const bytes = tensorBytes(at('dyn.safetensors'));
    expect(bytes).toBeLessThan(FLOAT_BYTES / 2);
    expect(r.stdout).toBe(`dyn.safetensors: dynamic 2/2 Linear layers quantized; ${bytes} B of tensors (${(bytes / FLOAT_BYTES).toFixed(3)}x of ${FLOAT_BYTES} B)\n`);

    const q = loadModel(at('dyn.safetensors'));
    expect(q).toBeInstanceOf(QuantizedModel);
    const qm = q as QuantizedModel;
    expect(qm.mode).toBe('dynamic');
    expect(qm.byteLength).toBe(bytes);
    expect(qm.summary().filter((s) => s.type === 'Linear').map((s) => s.mode)).toEqual(['dynamic', 'dynamic']);
    const f = loadSafetensors(at('dyn.safetensors'));
    expect(f.tensors['1.weight'].dtype).toBe('I8');
    expect(f.tensors['1.weight'].shape).toEqual([16, FEATURES]);
    expect(f.tensors['1.weight_scale'].shape).toEqual([16]);
    expect(f.metadata.format).toBe('pt');

    // Byte for byte what saveModel(quantizeModel(model, dynamic)) writes.
    expect(fs.readFileSync(at('dyn.safetensors')).equals(fs.readFileSync(at(DYN_LIB)))).toBe(true);

    const y = model.forward(X, 16);
    const d = maxAbsDiff(qm.forward(X, 16), y);
    expect(d).toBeGreaterThan(0); // really quantized
    expect(d).toBeLessThan(0.05 * maxAbs(y)); // int8 weights and activations: well under 5%
  });

  it('--mode weight-only --bits 4 --granularity group:4: packed nibbles, one scale per group', () => {
    const r = cli('quantize', FLOAT, '-o', 'w4.safetensors', '--mode', 'weight-only', '--bits', '4', '--granularity', 'group:4');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const bytes = tensorBytes(at('w4.safetensors'));
    expect(r.stdout).toBe(`w4.safetensors: weight-only 2/2 Linear layers quantized; ${bytes} B of tensors (${(bytes / FLOAT_BYTES).toFixed(3)}x of ${FLOAT_BYTES} B)\n`);
    const f = loadSafetensors(at('w4.safetensors'));
    expect([f.tensors['1.weight'].dtype, f.tensors['1.weight'].shape]).toEqual(['U8', [16 * FEATURES / 2]]);
    expect(f.tensors['1.weight_scale'].shape).toEqual([16, FEATURES / 4]);
    expect([f.tensors['3.weight'].dtype, f.tensors['3.weight'].shape]).toEqual(['U8', [4 * 16 / 2]]);
    expect(f.tensors['3.weight_scale'].shape).toEqual([4, 16 / 4]);

    const q = loadModel(at('w4.safetensors')) as QuantizedModel;
    expect(q).toBeInstanceOf(QuantizedModel);
    expect(q.mode).toBe('weight-only');
    const lib = quantizeModel(model, { mode: 'weight-only', bits: 4, granularity: { groupSize: 4 } });
    const out = q.forward(X, 16);
    expect(Array.from(out)).toEqual(Array.from(lib.forward(X, 16)));
    const y = model.forward(X, 16);
    const d = maxAbsDiff(out, y);
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(0.15 * maxAbs(y)); // int4 weights (groups of 4), float activations
  });

  it('--mode static --calibration IDX: calibrated like the library, runs close to float on those images', () => {
    const r = cli('quantize', FLOAT, '-o', 'static.safetensors', '--mode', 'static', '--calibration', 'calib-images-idx3-ubyte');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const bytes = tensorBytes(at('static.safetensors'));
    expect(r.stdout).toBe(`static.safetensors: static 2/2 Linear layers quantized; ${bytes} B of tensors (${(bytes / FLOAT_BYTES).toFixed(3)}x of ${FLOAT_BYTES} B)\n`);
    const q = loadModel(at('static.safetensors')) as QuantizedModel;
    expect(q).toBeInstanceOf(QuantizedModel);
    expect(q.mode).toBe('static');
    // The first Linear requantizes into the second: its bias is int32.
    expect(loadSafetensors(at('static.safetensors')).tensors['1.bias'].dtype).toBe('I32');

    const lib = quantizeModel(model, { mode: 'static', calibrationData: calX, observer: 'histogram', bits: 8, scheme: 'symmetric' });
    saveModel(at('static-lib.safetensors'), lib);
    expect(fs.readFileSync(at('static.safetensors')).equals(fs.readFileSync(at('static-lib.safetensors')))).toBe(true);

    const out = q.forward(calX, CAL_N);
    const y = model.forward(calX, CAL_N);
    const d = maxAbsDiff(out, y);
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(0.1 * maxAbs(y));
  });

  it('--observer minmax --granularity per-tensor --scheme asymmetric reach the file', () => {
    const r = cli('quantize', FLOAT, '-o', 'static-mm.safetensors', '--mode', 'static', '--calibration', 'calib-images-idx3-ubyte',
      '--observer', 'minmax', '--granularity', 'per-tensor', '--scheme', 'asymmetric');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lib = quantizeModel(model, { mode: 'static', calibrationData: calX, observer: 'minmax', granularity: 'per-tensor', scheme: 'asymmetric' });
    saveModel(at('static-mm-lib.safetensors'), lib);
    expect(fs.readFileSync(at('static-mm.safetensors')).equals(fs.readFileSync(at('static-mm-lib.safetensors')))).toBe(true);
    const f = loadSafetensors(at('static-mm.safetensors'));
    expect(f.tensors['1.weight'].dtype).toBe('U8');
    expect(f.tensors['1.weight_scale'].shape).toEqual([1]);
    expect(f.tensors['1.weight_zero_point'].shape).toEqual([1]);
  });

  it('keeps the input file\'s own metadata', () => {
    saveModel(at('meta.safetensors'), model, { metadata: { dataset: 'tiny', note: 'x=1' } });
    const r = cli('quantize', 'meta.safetensors', '-o', 'meta-q.safetensors');
    expect(r.code).toBe(0);
    const m = loadSafetensors(at('meta-q.safetensors')).metadata;
    expect(m.dataset).toBe('tiny');
    expect(m.note).toBe('x=1');
    expect(JSON.parse(m['quantkit.graph']).mode).toBe('dynamic');
  });

  it('an already quantized file: exit 1', () => {
    const r = cli('quantize', DYN_LIB, '-o', 'x.safetensors');
    expect(r.stderr).toBe(`quantkit: ${DYN_LIB}: already quantized (mode dynamic); quantize the float model\n`);
    expect(r.code).toBe(1);
    expect(fs.existsSync(at('x.safetensors'))).toBe(false);
  });

  it('a calibration IDX file without a *-labels-idx1-* sibling is accepted (labels are not needed)', () => {
    writeImages(at('calib.idx'), CAL_N, ROWS, COLS, (i) => (i * 37 + 11) % 256);
    const r = cli('quantize', FLOAT, '-o', 'static-nolabels.safetensors', '--mode', 'static', '--calibration', 'calib.idx');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('calibration images whose size is not the model\'s input features are refused', () => {
    writeImages(at('c16-images-idx3-ubyte'), 3, 4, 4, (i) => i * 5);
    writeLabels(at('c16-labels-idx1-ubyte'), [0, 1, 2]);
    const r = cli('quantize', FLOAT, '-o', 'static-16.safetensors', '--mode', 'static', '--calibration', 'c16-images-idx3-ubyte');
    expect(r.stderr).toBe('quantkit: c16-images-idx3-ubyte: images of 4x4 = 16 values but the model takes 8 input features\n');
    expect(r.code).toBe(1);
    const m = cli('quantize', FLOAT, '-o', 'static-m.safetensors', '--mode', 'static', '--calibration', 'mnist');
    expect(m.stderr).toBe('quantkit: --calibration mnist: its 28x28 images give 784 features but the model takes 8\n');
    expect(m.code).toBe(1);
  });

  it('--observer outside static mode is a usage error; -o into a missing folder names the output', () => {
    const r = cli('quantize', FLOAT, '-o', 'x.safetensors', '--observer', 'mse');
    expect(r.stderr).toBe("quantkit: --observer is only for --mode static\nRun 'quantkit --help' for usage.\n");
    expect(r.code).toBe(2);
    const d = cli('quantize', FLOAT, '-o', 'no-dir/x.safetensors');
    expect(d.stderr).toBe(`quantkit: no-dir/x.safetensors: cannot write it, the folder ${at('no-dir')} does not exist\n`);
    expect(d.code).toBe(1);
  });
});

describe('quantize a safetensors file without a graph (a state dict)', () => {
  const W = FOREIGN_W, tensors = FOREIGN;

  it('dynamic: I8 weight, F32 per-channel scale, the other tensors unchanged', () => {
    const r = cli('quantize', 'foreign.safetensors', '-o', 'foreign-q.safetensors');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // before: 128 + 16 + 12 bytes; after: 32 (I8) + 16 (scales) + 16 + 12.
    expect(r.stdout).toBe('foreign-q.safetensors: 1 Linear weight quantized to int8 (per-channel); 76 B of tensors (0.487x of 156 B)\n');
    const f = loadSafetensors(at('foreign-q.safetensors'));
    expect(Object.keys(f.tensors).sort()).toEqual(['fc.bias', 'fc.weight', 'fc.weight_scale', 'other']);
    const w = f.tensors['fc.weight'];
    const s = f.tensors['fc.weight_scale'];
    expect([w.dtype, w.shape, s.dtype, s.shape]).toEqual(['I8', [4, 8], 'F32', [4]]);
    for (const n of ['fc.bias', 'other']) {
      expect(f.tensors[n].dtype).toBe(tensors[n].dtype);
      expect(f.tensors[n].shape).toEqual(tensors[n].shape);
      expect(Array.from(f.tensors[n].data)).toEqual(Array.from(tensors[n].data));
    }
    // Symmetric per-channel int8: scale = max|row| / 127, codes round(w / scale).
    const codes = w.data as Int8Array, scale = s.data as Float32Array;
    for (let j = 0; j < 4; j++) {
      const row = W.subarray(j * 8, j * 8 + 8);
      expect(scale[j]).toBeCloseTo(maxAbs(row) / 127, 6);
      for (let k = 0; k < 8; k++) expect(Math.abs(codes[j * 8 + k] * scale[j] - row[k])).toBeLessThanOrEqual(scale[j] / 2 + 1e-6);
    }
    expect(f.metadata.source).toBe('test');
    expect(JSON.parse(f.metadata['quantkit.weights'])).toEqual({
      version: 1, mode: 'dynamic',
      tensors: { 'fc.weight': { shape: [4, 8], bits: 8, scheme: 'symmetric', signed: true, granularity: 'per-channel', packed: false } },
    });
  });

  it('weight-only --bits 4: packed nibbles, groups of 32 by default', () => {
    const r = cli('quantize', 'foreign.safetensors', '-o', 'foreign-w4.safetensors', '--mode', 'weight-only', '--bits', '4');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('foreign-w4.safetensors: 1 Linear weight quantized to int4 (group 32); 60 B of tensors (0.385x of 156 B)\n');
    const f = loadSafetensors(at('foreign-w4.safetensors'));
    expect([f.tensors['fc.weight'].dtype, f.tensors['fc.weight'].shape]).toEqual(['U8', [16]]);
    expect(f.tensors['fc.weight_scale'].shape).toEqual([4, 1]);
  });

  it('--mode static: exit 1, the graph is missing', () => {
    const r = cli('quantize', 'foreign.safetensors', '-o', 'x.safetensors', '--mode', 'static', '--calibration', 'calib-images-idx3-ubyte');
    expect(r.stderr).toBe("quantkit: foreign.safetensors: static mode needs the layer graph of a quantkit model file (this file has no __metadata__['quantkit.graph']); use --mode dynamic or weight-only\n");
    expect(r.code).toBe(1);
    expect(fs.existsSync(at('x.safetensors'))).toBe(false);
  });

  it('no 2-D F32 *.weight tensor: exit 1', () => {
    saveSafetensors(at('noweights.safetensors'), {
      'fc.bias': { dtype: 'F32', shape: [4], data: new Float32Array(4) },
      'emb.weight': { dtype: 'F32', shape: [8], data: new Float32Array(8) },
      'q.weight': { dtype: 'I8', shape: [2, 2], data: new Int8Array(4) },
    });
    const r = cli('quantize', 'noweights.safetensors', '-o', 'x.safetensors');
    expect(r.stderr).toBe("quantkit: noweights.safetensors: no Linear weights to quantize (non-empty 2-D F32 tensors named '*.weight')\n");
    expect(r.code).toBe(1);
    expect(fs.existsSync(at('x.safetensors'))).toBe(false);
  });

  it('eval of a file without a graph: exit 1 naming the file', () => {
    const r = cli('eval', 'foreign.safetensors', '--data', 'no-such-dir');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("quantkit: foreign.safetensors: not a quantkit model file (no layer graph in __metadata__['quantkit.graph']); eval needs one written by quantkit (demo, quantize or saveModel)\n");
  });

  it('a name collision with an existing tensor is an error, not an overwrite', () => {
    saveSafetensors(at('collide.safetensors'), {
      'a.weight': { dtype: 'F32', shape: [3, 4], data: new Float32Array(12).fill(0.5) },
      'a.weight_scale': { dtype: 'F32', shape: [2], data: Float32Array.of(7, 8) },
    });
    const r = cli('quantize', 'collide.safetensors', '-o', 'c.safetensors');
    expect(r.stderr).toBe("quantkit: collide.safetensors: tensor 'a.weight_scale' already exists: quantizing 'a.weight' would overwrite it\n");
    expect(r.code).toBe(1);
    expect(fs.existsSync(at('c.safetensors'))).toBe(false);
  });

  it('a file quantized without a graph is not quantized again', () => {
    expect(cli('quantize', 'foreign.safetensors', '-o', 'fq1.safetensors').code).toBe(0);
    const r = cli('quantize', 'fq1.safetensors', '-o', 'fq2.safetensors');
    expect(r.stderr).toBe("quantkit: fq1.safetensors: already quantized (its __metadata__ has 'quantkit.weights'); quantize the float file\n");
    expect(r.code).toBe(1);
  });
});

describe('info', () => {
  it('the tensor table, the graph and the metadata of a float model file', () => {
    const r = cli('info', FLOAT);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const table = [
      'tensor    dtype  shape    bytes',
      '--------  -----  -------  -----',
      '1.bias    F32    [16]        64',
      '1.weight  F32    [16, 8]    512',
      '3.bias    F32    [4]         16',
      '3.weight  F32    [4, 16]    256',
    ].join('\n');
    expect(r.stdout).toBe(`${table}\n\n${model.toString()}\n\nmetadata:\n  format: pt\n`);
    expect(model.toString()).toContain('(1): Linear(in_features=8, out_features=16, bias=true)');
  });

  it('a quantized file shows the QuantizedModel', () => {
    const r = cli('info', DYN_LIB);
    expect(r.code).toBe(0);
    const q = loadModel(at(DYN_LIB));
    expect(r.stdout).toContain('\n1.weight        I8     [16, 8]    128\n');
    expect(r.stdout).toContain(`\n\n${q.toString()}\n`);
    expect(r.stdout).toContain('(1): Linear [dynamic, int8 per-channel]');
  });

  it('a file without a graph: only tensors and metadata', () => {
    const r = cli('info', 'foreign.safetensors');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe([
      'tensor     dtype  shape   bytes',
      '---------  -----  ------  -----',
      'fc.bias    F32    [4]        16',
      'fc.weight  F32    [4, 8]    128',
      'other      I32    [3]        12',
      '',
      'metadata:',
      '  source: test',
      '',
    ].join('\n'));
  });
});

describe('info on a quantized weights file', () => {
  it('the tensors, then per weight its bits, granularity and bytes; the metadata without the JSON', () => {
    expect(cli('quantize', 'foreign.safetensors', '-o', 'foreign-info.safetensors', '--mode', 'weight-only', '--bits', '4', '--granularity', 'group:4', '--scheme', 'asymmetric').code).toBe(0);
    const r = cli('info', 'foreign-info.safetensors');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe([
      'tensor                dtype  shape   bytes',
      '--------------------  -----  ------  -----',
      'fc.bias               F32    [4]        16',
      'fc.weight_scale       F32    [4, 2]     32',
      'other                 I32    [3]        12',
      'fc.weight             U8     [16]       16',
      'fc.weight_zero_point  U8     [4, 2]      8',
      '',
      'quantized weights (mode weight-only):',
      'weight     shape   bits  scheme      granularity  bytes  vs F32',
      '---------  ------  ----  ----------  -----------  -----  ------',
      // 16 bytes of codes, 8 scales (32 bytes), 8 zero points: 56 of the 128 bytes of F32.
      'fc.weight  [4, 8]     4  asymmetric  group 4         56  0.438x',
      '',
      'metadata:',
      '  source: test',
      '',
    ].join('\n'));
    expect(r.stdout).not.toContain('quantkit.weights');
  });

  it('a damaged weights file: exit 1 naming the file and the field', () => {
    const f = loadSafetensors(at('foreign-info.safetensors'));
    (f.tensors['fc.weight_scale'].data as Float32Array)[5] = -1;
    saveSafetensors(at('foreign-bad.safetensors'), f.tensors, f.metadata);
    const r = cli('info', 'foreign-bad.safetensors');
    expect(r.stderr).toBe("quantkit: foreign-bad.safetensors: tensors['fc.weight_scale'][5]: expected a positive finite scale but found -1\n");
    expect(r.code).toBe(1);
  });
});

describe('eval --data DIR (a tiny t10k set of 28x28 images)', () => {
  let m784: nn.Sequential;
  let xs: Float32Array;
  const N = 5;
  beforeAll(() => {
    nn.manualSeed(11);
    m784 = new nn.Sequential(new nn.Linear(784, 10));
    m784.eval();
    saveModel(at('m784.safetensors'), m784);
    fs.mkdirSync(at('t10k'));
    const px = writeImages(at('t10k/t10k-images-idx3-ubyte'), N, 28, 28, (i) => (i * 131 + (i >> 5) * 7) % 256);
    xs = data.imagesToFloat32(px);
    // Labels: the model's prediction for images 0..2, another class for 3 and 4 (60%).
    const pred = nn.argmax(m784.forward(xs, N), N);
    writeLabels(at('t10k/t10k-labels-idx1-ubyte'), Array.from(pred, (p, i) => (i < 3 ? p : (p + 1) % 10)));
  });

  const accuracyOf = (fwd: (x: Float32Array, n: number) => Float32Array) => {
    const set = data.loadMnistSync(at('t10k'), 't10k');
    const pred = nn.argmax(fwd(data.imagesToFloat32(set), set.count), set.count);
    return pred.reduce((c: number, p: number, i: number) => c + (p === set.labels[i] ? 1 : 0), 0) / set.count;
  };

  it('float model: the accuracy the library computes', () => {
    const r = cli('eval', 'm784.safetensors', '--data', 't10k');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const acc = accuracyOf((x, n) => m784.forward(x, n));
    expect(acc).toBe(0.6);
    expect(r.stdout).toMatch(new RegExp(`^m784\\.safetensors: float; accuracy ${(acc * 100).toFixed(2)}% on ${N} mnist test images; 30\\.7 KiB; \\d+\\.\\d{3} ms per batch of ${N}\\n$`));
  });

  it('a quantized model from the CLI, --dataset fashion names the set', () => {
    expect(cli('quantize', 'm784.safetensors', '-o', 'm784-q.safetensors').code).toBe(0);
    const q = loadModel(at('m784-q.safetensors')) as QuantizedModel;
    const r = cli('eval', 'm784-q.safetensors', '--data', 't10k', '--dataset', 'fashion');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const acc = accuracyOf((x, n) => q.forward(x, n));
    const size = q.byteLength;
    expect(size).toBeGreaterThan(7840);
    expect(r.stdout).toMatch(new RegExp(`^m784-q\\.safetensors: quantized \\(dynamic\\); accuracy ${(acc * 100).toFixed(2)}% on ${N} fashion test images; ${(size / 1024).toFixed(1)} KiB; \\d+\\.\\d{3} ms per batch of ${N}\\n$`));
  });

  it('a model whose inputs are not 784: exit 1, no stack trace', () => {
    const r = cli('eval', FLOAT, '--data', 't10k');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`quantkit: ${FLOAT}: the model takes 8 input features; eval runs 28x28 images (784)\n`);
  });
});

// ---- the independent reader ---------------------------------------------------------------------

/** Runs scripts/check_safetensors.py; python3 is required (CI installs it), so missing it fails. */
function pycheck(file: string): Run {
  const r = spawnSync('python3', [CHECKER, file], { encoding: 'utf8', timeout: 60000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT'
      ? 'python3 not found on PATH: it is needed to run scripts/check_safetensors.py (apt-get install python3; .ci/run installs it)'
      : `python3 ${CHECKER} failed to start: ${r.error.message}`);
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The checker's listing, computed from what loadSafetensors reads (sha256 with node:crypto). */
function jsListing(file: string): string {
  const f = loadSafetensors(file);
  const lines = Object.keys(f.tensors).sort(byName).map((n) => {
    const t = f.tensors[n];
    const sha = createHash('sha256').update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)).digest('hex');
    return `${esc(n)} ${t.dtype} [${t.shape.join(',')}] ${sha}`;
  });
  for (const k of Object.keys(f.metadata).sort(byName)) lines.push(`metadata ${esc(k)}=${esc(f.metadata[k])}`);
  return lines.map((l) => l + '\n').join('');
}

/** A file by hand: u64 LE header length, the header text padded with spaces to 8, then data. */
function handFile(header: string, dataBytes: number, n?: number): Buffer {
  let h = Buffer.from(header, 'utf8');
  if (h.length % 8) h = Buffer.concat([h, Buffer.alloc(8 - (h.length % 8), 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(n ?? h.length), 0);
  return Buffer.concat([len, h, Buffer.from(Array.from({ length: dataBytes }, (_, i) => (i * 29 + 3) & 255))]);
}

describe('scripts/check_safetensors.py agrees with loadSafetensors', () => {
  it('on saveModel files: float, dynamic, static, weight-only (int4 groups, asymmetric int8)', () => {
    const files: Record<string, QuantizedModel | nn.Sequential> = {
      'py-float.safetensors': model,
      'py-dynamic.safetensors': quantizeModel(model, { mode: 'dynamic' }),
      'py-dynamic-asym.safetensors': quantizeModel(model, { mode: 'dynamic', scheme: 'asymmetric', granularity: 'per-tensor' }),
      'py-static.safetensors': quantizeModel(model, { mode: 'static', calibrationData: calX }),
      'py-wo4.safetensors': quantizeModel(model, { mode: 'weight-only', bits: 4, granularity: { groupSize: 4 } }),
      'py-wo3.safetensors': quantizeModel(model, { mode: 'weight-only', bits: 3, granularity: { groupSize: 3 } }),
      'py-wo8-asym.safetensors': quantizeModel(model, { mode: 'weight-only', bits: 8, scheme: 'asymmetric' }),
    };
    const dtypes = new Set<string>();
    for (const [name, m] of Object.entries(files)) {
      saveModel(at(name), m, { metadata: { 'multi\nline': 'a\\b' } });
      const r = pycheck(at(name));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const want = jsListing(at(name));
      expect(r.stdout).toBe(want);
      expect(r.stdout).toContain('metadata multi\\nline=a\\\\b\n');
      for (const l of r.stdout.split('\n')) if (l && !l.startsWith('metadata ')) dtypes.add(l.split(' ')[1]);
    }
    expect([...dtypes].sort()).toEqual(['F32', 'I32', 'I8', 'U8']);
  });

  it('on the files the CLI writes', () => {
    const runs: Record<string, string[]> = {
      'py-cli-dyn.safetensors': [FLOAT],
      'py-cli-w4.safetensors': [FLOAT, '--mode', 'weight-only', '--bits', '4', '--granularity', 'group:4'],
      'py-cli-static.safetensors': [FLOAT, '--mode', 'static', '--calibration', 'calib-images-idx3-ubyte'],
      'py-cli-foreign.safetensors': ['foreign.safetensors'],
      'py-cli-foreign-w3.safetensors': ['foreign.safetensors', '--mode', 'weight-only', '--bits', '3', '--scheme', 'asymmetric'],
    };
    for (const [name, args] of Object.entries(runs)) {
      expect(cli('quantize', ...args, '-o', name).code).toBe(0);
      const r = pycheck(at(name));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(jsListing(at(name)));
    }
  });

  it('on a hand-written file: the sha256 of each tensor\'s own bytes', () => {
    const header = '{"__metadata__":{"k":"v"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"a":{"dtype":"U8","shape":[1,3],"data_offsets":[8,11]},"z":{"dtype":"I8","shape":[0],"data_offsets":[11,11]}}';
    const b = handFile(header, 11);
    fs.writeFileSync(at('hand.safetensors'), b);
    const d = b.subarray(b.length - 11);
    const sha = (x: Uint8Array) => createHash('sha256').update(x).digest('hex');
    const r = pycheck(at('hand.safetensors'));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`a U8 [1,3] ${sha(d.subarray(8, 11))}\nb F32 [2] ${sha(d.subarray(0, 8))}\nz I8 [0] ${sha(d.subarray(0, 0))}\nmetadata k=v\n`);
    expect(r.stdout).toBe(jsListing(at('hand.safetensors')));
  });

  it('accepts the format\'s other dtypes by their bit sizes (F16, BF16, F64, F4 in whole bytes)', () => {
    const header = '{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"g":{"dtype":"BF16","shape":[1],"data_offsets":[6,8]},' +
      '"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},"f":{"dtype":"F4","shape":[2,2],"data_offsets":[16,18]}}';
    fs.writeFileSync(at('dtypes.safetensors'), handFile(header, 18));
    const r = pycheck(at('dtypes.safetensors'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual(['d F64 [1]', 'f F4 [2,2]', 'g BF16 [1]', 'h F16 [3]', '']);
  });

  const T = (name: string, dtype: string, shape: number[], b: number, e: number) => `"${name}":{"dtype":"${dtype}","shape":[${shape}],"data_offsets":[${b},${e}]}`;
  const rejects: [string, Buffer, string | RegExp, boolean | null][] = [
    // [what, file bytes, the checker's message, whether loadSafetensors rejects it too (null: not compared)]
    ['a hole between two tensors', handFile(`{${T('a', 'F32', [1], 0, 4)},${T('b', 'F32', [1], 8, 12)}}`, 12), 'tensor "b": data_offsets [8, 12] leaves a hole [4, 8)', true],
    ['overlapping tensors', handFile(`{${T('a', 'F32', [2], 0, 8)},${T('b', 'F32', [1], 4, 8)}}`, 8), 'tensor "b": data_offsets [4, 8] overlaps the previous tensor', true],
    ['a hole at the start', handFile(`{${T('a', 'F32', [1], 4, 8)}}`, 8), 'tensor "a": data_offsets [4, 8] leaves a hole [0, 4)', true],
    ['trailing bytes', handFile(`{${T('a', 'F32', [1], 0, 4)}}`, 8), 'the tensors cover 4 bytes but the data section has 8', true],
    ['data cut short', handFile(`{${T('a', 'F32', [2], 0, 8)}}`, 6), 'the tensors cover 8 bytes but the data section has 6', true],
    ['size not shape x dtype', handFile(`{${T('a', 'F32', [2], 0, 4)}}`, 4), 'tensor "a": data_offsets [0, 4] hold 4 bytes but shape [2] of F32 needs 8', true],
    ['end before begin', handFile(`{${T('a', 'U8', [0], 4, 0)}}`, 4), 'tensor "a": data_offsets [4, 0] end before begin', true],
    ['an unknown dtype', handFile(`{${T('a', 'F31', [1], 0, 4)}}`, 4), 'tensor "a": unknown dtype "F31"', true],
    ['a negative dimension', handFile(`{${T('a', 'U8', [-1], 0, 0)}}`, 0), 'tensor "a": shape [-1] is not a list of non-negative integers', true],
    ['a fractional dimension', handFile(`{${T('a', 'U8', [1.5], 0, 0)}}`, 0), 'tensor "a": shape [1.5] is not a list of non-negative integers', true],
    ['an unknown field', handFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}', 1), 'tensor "a": fields missing [], unknown [\'x\']', true],
    ['a missing field', handFile('{"a":{"dtype":"U8","shape":[1]}}', 1), 'tensor "a": fields missing [\'data_offsets\'], unknown []', true],
    ['a non-string metadata value', handFile(`{"__metadata__":{"n":1},${T('a', 'U8', [1], 0, 1)}}`, 1), '__metadata__["n"] is not a string', true],
    ['a header that is not an object', handFile('[1, 2]', 0), "the header does not start with '{'", true],
    ['invalid JSON', handFile('{"a":', 0), /^the header is not valid JSON \(Expecting value: .+\)$/, true], // Python's own words
    ['a header length past the end', handFile('{}', 0, 64), 'header length 64 but only 8 bytes follow the length', true],
    ['a header length over 100 MB', handFile('{}', 0, 100_000_001), 'header length 100000001 is more than 100000000', true],
    ['F4 in half a byte', handFile(`{${T('a', 'F4', [3], 0, 2)}}`, 2), 'tensor "a": 3 elements of F4 are not a whole number of bytes', true],
    // Refused here; loadSafetensors (JSON.parse) keeps the last of two equal keys, not compared.
    ['a duplicate key', handFile(`{${T('a', 'U8', [1], 0, 1)},${T('a', 'U8', [1], 0, 1)}}`, 1), 'duplicate key "a" in the header', null],
  ];
  it.each(rejects)('rejects %s', (what, bytes, msg, jsRejects) => {
    const file = at(`bad-${what.replace(/\W+/g, '-')}.safetensors`);
    fs.writeFileSync(file, bytes);
    const r = pycheck(file);
    expect(r.stderr.startsWith(`error: ${file}: `) && r.stderr.endsWith('\n')).toBe(true);
    const text = r.stderr.slice(`error: ${file}: `.length, -1);
    if (typeof msg === 'string') expect(text).toBe(msg);
    else expect(text).toMatch(msg);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    if (jsRejects) expect(() => parseSafetensors(bytes)).toThrow();
  });

  it('a file that does not exist, and no argument', () => {
    const r = pycheck(at('nope.safetensors'));
    expect(r.stderr).toBe(`error: ${at('nope.safetensors')}: cannot read (No such file or directory)\n`);
    expect(r.code).toBe(1);
    const u = spawnSync('python3', [CHECKER], { encoding: 'utf8' });
    expect(u.status).toBe(2);
    expect(u.stderr).toBe('usage: check_safetensors.py FILE\n');
  });
});
