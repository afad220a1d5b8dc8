// QAT results for the README and docs/qat.md: the demo's MLP (784-512-256-10, trained fp32 from
// seed 1 and cached in .bench-cache/) on MNIST and Fashion-MNIST, with weights at 8, 4, 3 and 2
// bits and 8-bit activations, and W4A4: fp32, PTQ (the best activation observer on held-out
// training images), QAT with the STE and QAT with LSQ, each QAT model fine-tuned from the fp32
// checkpoint and converted with convertQAT. Accuracy on the 10,000 test images, model bytes, the
// fine-tune time. Also the data of the figures (docs/qat-*.svg, written by --figures).
//   npx vite-node scripts/qat-results.ts --dataset fashion [--threads N]   (writes .bench-cache/qat-results-fashion.json)
//   npx vite-node scripts/qat-results.ts --table [--figures]              (Markdown table from the JSON; SVGs into docs/)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imagesToFloat32, loadMnistSync, mnistDataDir } from '../lib/data/idx';
import { accuracyOf, loadOrTrainMlp } from '../lib/demo/mnist-mlp';
import { fineTuneQAT } from '../lib/demo/qat';
import * as native from '../lib/native';
import { argmax, softmaxCrossEntropy } from '../lib/nn/loss';
import { Sequential } from '../lib/nn/sequential';
import { EntropyObserver } from '../lib/observers/entropy';
import { HistogramObserver } from '../lib/observers/histogram';
import { MinMaxObserver } from '../lib/observers/minmax';
import { MSEObserver } from '../lib/observers/mse';
import { PercentileObserver } from '../lib/observers/percentile';
import { Observer } from '../lib/observers/base';
import { QuantizedModel } from '../lib/ptq/qmodel';
import { ObserverName, quantizeModel } from '../lib/ptq/quantize-model';
import { conversionBound, convertQAT, prepareQAT, PrepareQATOptions, qatLayers } from '../lib/qat';

const ROOT = path.resolve(__dirname, '..');
const CACHE = path.join(ROOT, '.bench-cache');
const F = 784;
const args = process.argv.slice(2);
const arg = (k: string): string | undefined => (args.includes(k) ? args[args.indexOf(k) + 1] : undefined);

interface Row {
  setup: string; wbits: number; abits: number; method: 'fp32' | 'PTQ' | 'QAT STE' | 'QAT LSQ';
  accuracy: number; bytes: number; seconds?: number; observer?: string; steps?: number; lr?: number;
  /** QAT: the QAT model's own accuracy, class agreement with the converted model, largest logit difference, the bound's largest. */
  qatAccuracy?: number; same?: number; maxDiff?: number; bound?: number;
  /** The same with convertQAT(model, { requantize: 'int' }). */
  sameInt?: number; maxDiffInt?: number; boundInt?: number;
}

const SETUPS = [
  { wbits: 8, abits: 8 }, { wbits: 4, abits: 8 }, { wbits: 3, abits: 8 }, { wbits: 2, abits: 8 }, { wbits: 4, abits: 4 },
];
/** Fine-tune length and Adam's starting learning rate (cosine to 0): more for the harder setups. */
const EPOCHS = (wbits: number, abits: number): number => (wbits >= 4 && abits === 8 ? 1 : 2);
const LR = (wbits: number, abits: number): number => (wbits >= 4 && abits === 8 ? 1e-4 : 5e-4);
const OBSERVERS: ObserverName[] = ['minmax', 'histogram', 'percentile', 'mse', 'entropy'];

function loadData(dataset: string) {
  const dir = dataset === 'mnist' ? mnistDataDir()! : '/usr/share/datasets/fashion-mnist';
  const tr = loadMnistSync(dir, 'train'), te = loadMnistSync(dir, 't10k');
  return { xTrain: imagesToFloat32(tr), yTrain: tr.labels as Uint8Array, xTest: imagesToFloat32(te), yTest: te.labels as Uint8Array };
}

function bytesOf(m: Sequential | QuantizedModel): number {
  if (m instanceof QuantizedModel) return m.summary().reduce((s, r) => s + r.bytes, 0);
  return m.numParameters() * 4;
}

function agreement(qat: Sequential, qm: QuantizedModel, x: Float32Array, rows: number): { same: number; maxDiff: number } {
  let same = 0, maxDiff = 0;
  for (let s = 0; s < rows; s += 1000) {
    const n = Math.min(1000, rows - s);
    const xs = x.subarray(s * F, (s + n) * F);
    const a = qat.forward(xs, n), b = qm.forward(xs, n);
    const ia = argmax(a, n), ib = argmax(b, n);
    for (let r = 0; r < n; r++) if (ia[r] === ib[r]) same++;
    for (let k = 0; k < n * 10; k++) maxDiff = Math.max(maxDiff, Math.abs(a[k] - b[k]));
  }
  return { same, maxDiff };
}

/** A 4-bit (or any) activation observer of a QAT input fake-quant (asymmetric unsigned, PyTorch formula). */
function actObserver(name: ObserverName, bits: number): Observer {
  const spec = { scheme: 'asymmetric' as const, bits, signed: false, formula: 'pytorch' as const };
  switch (name) {
    case 'minmax': return new MinMaxObserver(spec);
    case 'histogram': return new HistogramObserver(spec);
    case 'percentile': return new PercentileObserver(spec);
    case 'mse': return new MSEObserver(spec);
    case 'entropy': return new EntropyObserver(spec);
    default: throw new Error(name);
  }
}

/** Mean cross-entropy of a model over rows. */
function meanLoss(m: { forward(x: Float32Array, b: number): Float32Array }, x: Float32Array, y: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < y.length; i += 1000) {
    const n = Math.min(1000, y.length - i);
    s += softmaxCrossEntropy(m.forward(x.subarray(i * F, (i + n) * F), n), y.subarray(i, i + n)).loss * n;
  }
  return s / y.length;
}

/** Histogram of w / scale (per output channel) of one layer's weight, over [lo, hi]. */
function gridHistogram(w: Float32Array, scale: Float32Array, K: number, lo: number, hi: number, bins: number): number[] {
  const c = new Array<number>(bins).fill(0);
  for (let i = 0; i < w.length; i++) {
    const v = w[i] / scale[scale.length === 1 ? 0 : Math.floor(i / K)];
    const b = Math.floor(((v - lo) / (hi - lo)) * bins);
    if (b >= 0 && b < bins) c[b]++;
  }
  return c;
}

async function run(dataset: string): Promise<void> {
  fs.mkdirSync(CACHE, { recursive: true });
  const d = loadData(dataset);
  const epochs = dataset === 'fashion' ? 10 : 8;
  const t0 = performance.now();
  const { model: float } = loadOrTrainMlp(d, {
    dataset, epochs, seed: 1, dir: CACHE,
    onEvent: (e) => console.error(`${dataset}: checkpoint ${e.kind}${'file' in e ? ' ' + e.file : ''}`),
  });
  float.eval();
  // PTQ observers are chosen on held-out training rows (the last 5000), never on the test set.
  const xVal = d.xTrain.subarray(55000 * F), yVal = d.yTrain.subarray(55000);
  const calX = d.xTrain.subarray(0, 2000 * F);
  const rows: Row[] = [];
  const fpAcc = accuracyOf(float, d.xTest, d.yTest);
  rows.push({ setup: 'fp32', wbits: 32, abits: 32, method: 'fp32', accuracy: fpAcc, bytes: bytesOf(float) });
  console.error(`${dataset}: fp32 ${(fpAcc * 100).toFixed(2)} %`);
  const figures: Record<string, unknown> = { fp32Loss: meanLoss(float, d.xTrain.subarray(0, 10000 * F), d.yTrain.subarray(0, 10000)) };

  for (const { wbits, abits } of SETUPS) {
    const setup = `W${wbits}A${abits}`;
    // PTQ: the best observer on the validation rows.
    let best: { acc: number; obs: string; m: QuantizedModel } | null = null;
    for (const obs of OBSERVERS) {
      let m: QuantizedModel;
      if (abits === 8) {
        m = quantizeModel(float, { mode: 'static', bits: wbits, calibrationData: calX, observer: obs });
      } else {
        // Activations below 8 bits: quantizeModel's calibration is uint8; calibrate the fake-quant
        // observers of a QAT model instead (training-mode forwards, no step) and convert.
        const q = prepareQAT(float, { weight: { bits: wbits, observer: 'minmax' }, activation: { bits: abits, observer: () => actObserver(obs, abits) } });
        for (let i = 0; i < 2000; i += 250) q.forward(calX.subarray(i * F, (i + 250) * F), 250);
        q.eval();
        m = convertQAT(q);
      }
      const acc = accuracyOf(m, xVal, yVal);
      if (!best || acc > best.acc) best = { acc, obs, m };
    }
    const ptqAcc = accuracyOf(best!.m, d.xTest, d.yTest);
    rows.push({ setup, wbits, abits, method: 'PTQ', accuracy: ptqAcc, bytes: bytesOf(best!.m), observer: best!.obs });
    console.error(`${dataset} ${setup} PTQ (${best!.obs}): ${(ptqAcc * 100).toFixed(2)} %`);
    const ptqLoss = meanLoss(best!.m, d.xTrain.subarray(0, 10000 * F), d.yTrain.subarray(0, 10000));

    for (const method of ['QAT STE', 'QAT LSQ'] as const) {
      const lsq = method === 'QAT LSQ';
      const opts: PrepareQATOptions = lsq
        ? { weight: { bits: wbits, init: 'mse' }, activation: { bits: abits }, learnable: true }
        : { weight: { bits: wbits }, activation: { bits: abits } };
      const ep = EPOCHS(wbits, abits), lr = LR(wbits, abits);
      // The weights relative to the grid before training (the scale prepareQAT starts from).
      const before = prepareQAT(float, opts);
      const l0 = qatLayers(before)[1].layer;
      const K = l0.inFeatures;
      const h0 = gridHistogram(l0.weight.data, l0.quantizedWeight().scale, K, -2.5, 2.5, 100);
      const ft = fineTuneQAT(float, d.xTrain, d.yTrain, {
        qat: opts, epochs: ep, lr, seed: 1,
        onStep: (s, n, loss) => { if (s % 100 === 0 || s === n) console.error(`${dataset} ${setup} ${method}: step ${s}/${n} loss ${loss.toFixed(4)}`); },
      });
      const qm = convertQAT(ft.model);
      const acc = accuracyOf(qm, d.xTest, d.yTest);
      const ag = agreement(ft.model, qm, d.xTest, d.yTest.length);
      const bound = conversionBound(ft.model);
      const agInt = agreement(ft.model, convertQAT(ft.model, { requantize: 'int' }), d.xTest, d.yTest.length);
      const l1 = qatLayers(ft.model)[1].layer;
      const h1 = gridHistogram(l1.weight.data, l1.qparams().weight.scale, K, -2.5, 2.5, 100);
      rows.push({
        setup, wbits, abits, method, accuracy: acc, bytes: bytesOf(qm), seconds: ft.seconds, steps: ft.losses.length, lr,
        qatAccuracy: accuracyOf(ft.model, d.xTest, d.yTest), same: ag.same, maxDiff: ag.maxDiff, bound: Math.max(...bound),
        sameInt: agInt.same, maxDiffInt: agInt.maxDiff, boundInt: Math.max(...conversionBound(ft.model, { requantize: 'int' })),
      });
      console.error(`${dataset} ${setup} ${method}: ${(acc * 100).toFixed(2)} % in ${ft.seconds.toFixed(0)} s; agreement ${ag.same}, max diff ${ag.maxDiff.toFixed(3)}`);
      if (wbits <= 3 && abits === 8) {
        figures[`${setup} ${method}`] = { losses: ft.losses, ptqLoss, before: h0, after: h1, qmin: l1.qparams().weight.qmin, qmax: l1.qparams().weight.qmax };
      }
    }
  }
  const out = { dataset, threads: native.getNumThreads(), cpu: cpuName(), seconds: (performance.now() - t0) / 1000, rows, figures };
  fs.writeFileSync(path.join(CACHE, `qat-results-${dataset}.json`), JSON.stringify(out));
  console.error(`${dataset}: done in ${out.seconds.toFixed(0)} s`);
}

function cpuName(): string {
  try {
    return /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

// ---- table and figures ------------------------------------------------------------------------

function table(): void {
  const res = ['mnist', 'fashion'].map((ds) => path.join(CACHE, `qat-results-${ds}.json`)).filter((f) => fs.existsSync(f)).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
  const pct = (v: number) => `${(v * 100).toFixed(2)}`;
  const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
  for (const r of res) {
    const rows = r.rows as Row[];
    const fp = rows[0];
    console.log(`\n**${r.dataset === 'mnist' ? 'MNIST' : 'Fashion-MNIST'}** (fp32 ${pct(fp.accuracy)} %, ${kib(fp.bytes)}; ${r.cpu}, ${r.threads} threads)\n`);
    console.log('| setup | PTQ (observer) | QAT STE | QAT LSQ | bytes | QAT fine-tune (STE / LSQ) |');
    console.log('|---|---|---|---|---|---|');
    for (const s of SETUPS) {
      const tag = `W${s.wbits}A${s.abits}`;
      const g = (m: string) => rows.find((x) => x.setup === tag && x.method === m)!;
      const p = g('PTQ'), a = g('QAT STE'), b = g('QAT LSQ');
      const d = (x: Row) => `${pct(x.accuracy)} (${x.accuracy >= fp.accuracy ? '+' : ''}${((x.accuracy - fp.accuracy) * 100).toFixed(2)})`;
      console.log(`| ${tag} | ${d(p)} (${p.observer}) | ${d(a)} | ${d(b)} | ${kib(b.bytes)} | ${a.steps} steps: ${a.seconds!.toFixed(0)} s / ${b.seconds!.toFixed(0)} s |`);
    }
    console.log(`\n| setup | method | QAT model | converted | same class | max logit diff | bound | same class, 'int' | max diff, 'int' | bound, 'int' |`);
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const x of rows.filter((x) => x.method.startsWith('QAT'))) {
      const i = x.sameInt === undefined ? '| | | ' : `| ${x.sameInt} | ${x.maxDiffInt!.toFixed(3)} | ${x.boundInt!.toFixed(1)} `;
      console.log(`| ${x.setup} | ${x.method.slice(4)} | ${pct(x.qatAccuracy!)} | ${pct(x.accuracy)} | ${x.same} | ${x.maxDiff!.toFixed(3)} | ${x.bound!.toFixed(1)} ${i}|`);
    }
  }
  if (args.includes('--figures')) figuresOut(res);
}

const STYLE = 'font-family:sans-serif;font-size:11px';
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#7f7f7f'];

function svgFrame(w: number, h: number, title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" style="${STYLE}">` +
    `<rect width="${w}" height="${h}" fill="white"/><text x="${w / 2}" y="16" text-anchor="middle" font-size="13">${title}</text>${body}</svg>\n`;
}

/** Lines on linear axes with a legend. */
function lineChart(title: string, series: { label: string; pts: [number, number][]; dash?: boolean }[], xl: string, yl: string, yMax?: number): string {
  const W = 560, H = 300, L = 52, R = 12, T = 28, B = 40;
  const xs = series.flatMap((s) => s.pts.map((p) => p[0])), ys = series.flatMap((s) => s.pts.map((p) => p[1]));
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = 0, y1 = Math.ceil((yMax ?? Math.max(...ys) * 1.05) * 4) / 4;
  const X = (v: number) => L + ((v - x0) / (x1 - x0 || 1)) * (W - L - R), Y = (v: number) => H - B - ((Math.min(v, y1) - y0) / (y1 - y0)) * (H - T - B);
  let s = `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`;
  for (let i = 0; i <= 5; i++) {
    const v = y0 + ((y1 - y0) * i) / 5;
    s += `<text x="${L - 4}" y="${Y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text><line x1="${L}" x2="${W - R}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/>`;
    const u = x0 + ((x1 - x0) * i) / 5;
    s += `<text x="${X(u)}" y="${H - B + 14}" text-anchor="middle">${Math.round(u)}</text>`;
  }
  s += `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">${xl}</text><text transform="translate(12 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${yl}</text>`;
  series.forEach((se, i) => {
    const d = se.pts.map((p, k) => `${k ? 'L' : 'M'}${X(p[0]).toFixed(1)} ${Y(p[1]).toFixed(1)}`).join('');
    s += `<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5"${se.dash ? ' stroke-dasharray="5 3"' : ''}/>`;
    const ly = T + 70 + i * 14;
    s += `<line x1="${W - R - 190}" x2="${W - R - 170}" y1="${ly}" y2="${ly}" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"${se.dash ? ' stroke-dasharray="5 3"' : ''}/><text x="${W - R - 165}" y="${ly + 4}">${se.label}</text>`;
  });
  return svgFrame(W, H, title, s);
}

/** Two histograms (before / after) over [lo, hi] as outlines, with the grid points marked. */
function gridChart(title: string, lo: number, hi: number, hists: { label: string; counts: number[] }[], qmin: number, qmax: number): string {
  const W = 560, H = 300, L = 52, R = 12, T = 28, B = 40;
  const n = hists[0].counts.length, top = Math.max(...hists.flatMap((h) => h.counts)) * 1.05;
  const X = (v: number) => L + ((v - lo) / (hi - lo)) * (W - L - R), Y = (c: number) => H - B - (c / top) * (H - T - B);
  let s = `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`;
  for (let q = Math.ceil(lo); q <= Math.floor(hi); q++) {
    const inside = q >= qmin && q <= qmax;
    s += `<line x1="${X(q)}" x2="${X(q)}" y1="${T}" y2="${H - B}" stroke="${inside ? '#999' : '#ddd'}" stroke-dasharray="2 3"/><text x="${X(q)}" y="${H - B + 14}" text-anchor="middle">${q}</text>`;
  }
  for (let i = 0; i <= 4; i++) s += `<text x="${L - 4}" y="${Y((top * i) / 4) + 4}" text-anchor="end">${Math.round((top * i) / 4)}</text>`;
  s += `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">w / scale (grid points: codes ${qmin}..${qmax})</text><text transform="translate(12 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">weights</text>`;
  hists.forEach((h, i) => {
    const bw = (hi - lo) / n;
    let d = `M${X(lo).toFixed(1)} ${Y(0).toFixed(1)}`;
    for (let k = 0; k < n; k++) d += `L${X(lo + k * bw).toFixed(1)} ${Y(h.counts[k]).toFixed(1)}L${X(lo + (k + 1) * bw).toFixed(1)} ${Y(h.counts[k]).toFixed(1)}`;
    d += `L${X(hi).toFixed(1)} ${Y(0).toFixed(1)}`;
    s += `<path d="${d}" fill="${COLORS[i]}" fill-opacity="0.15" stroke="${COLORS[i]}" stroke-width="1.2"/>`;
    s += `<rect x="${W - R - 190}" y="${T + 2 + i * 14}" width="10" height="10" fill="${COLORS[i]}" fill-opacity="0.4" stroke="${COLORS[i]}"/><text x="${W - R - 175}" y="${T + 11 + i * 14}">${h.label}</text>`;
  });
  return svgFrame(W, H, title, s);
}

function smooth(xs: number[], k: number): [number, number][] {
  const out: [number, number][] = [];
  let s = 0;
  for (let i = 0; i < xs.length; i++) {
    s += xs[i];
    if (i >= k) s -= xs[i - k];
    if ((i + 1) % 5 === 0 || i === xs.length - 1) out.push([i + 1, s / Math.min(i + 1, k)]);
  }
  return out;
}

function figuresOut(res: { dataset: string; figures: Record<string, { losses: number[]; ptqLoss: number; before: number[]; after: number[]; qmin: number; qmax: number }> & { fp32Loss: number } }[]): void {
  const r = res.find((x) => x.dataset === 'fashion') ?? res[0];
  const name = r.dataset === 'mnist' ? 'MNIST' : 'Fashion-MNIST';
  const docs = path.join(ROOT, 'docs');
  const fg = r.figures;
  for (const setup of ['W2A8']) {
    const ste = fg[`${setup} QAT STE`], lsq = fg[`${setup} QAT LSQ`];
    const n = lsq.losses.length;
    fs.writeFileSync(path.join(docs, 'qat-loss.svg'), lineChart(`${name} MLP, ${setup}: training loss (mean of the last 50 steps)`, [
      { label: 'QAT LSQ', pts: smooth(lsq.losses, 50) },
      { label: 'QAT STE', pts: smooth(ste.losses, 50) },
      { label: `PTQ model (${setup})`, pts: [[1, lsq.ptqLoss], [n, lsq.ptqLoss]], dash: true },
      { label: 'fp32 model', pts: [[1, fg.fp32Loss], [n, fg.fp32Loss]], dash: true },
    ], 'step', 'cross-entropy', Math.min(Math.max(lsq.ptqLoss, ste.losses[0]) * 1.1, 2.5)));
    fs.writeFileSync(path.join(docs, 'qat-grid-lsq.svg'), gridChart(`${name} MLP, layer '3' (512 x 256), ${setup} LSQ: weights on the grid`, -2.5, 2.5, [
      { label: 'before QAT (MSE-initialised scale)', counts: lsq.before }, { label: 'after QAT (learned scale)', counts: lsq.after },
    ], lsq.qmin, lsq.qmax));
    fs.writeFileSync(path.join(docs, 'qat-grid-ste.svg'), gridChart(`${name} MLP, layer '3' (512 x 256), ${setup} STE: weights on the grid`, -2.5, 2.5, [
      { label: 'before QAT (min/max scale)', counts: ste.before }, { label: 'after QAT (observed scale)', counts: ste.after },
    ], ste.qmin, ste.qmax));
  }
  console.error('wrote docs/qat-loss.svg, docs/qat-grid-lsq.svg, docs/qat-grid-ste.svg');
}

if (arg('--threads')) native.setNumThreads(Number(arg('--threads')));
if (args.includes('--table')) table();
else await run(arg('--dataset') ?? 'fashion');
