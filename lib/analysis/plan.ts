// planMixedPrecision: per-layer bit widths (or float) for the smallest model whose predicted loss
// stays within a budget, from an analysis' sensitivity runs; measurePlan quantizes and measures it.
//
// The predictor. Quantization noise of different layers is taken as independent, so the output
// noise powers add: predicted noise = sum over layers of the output noise measured when only that
// layer was quantized at its width ('single' runs), and predicted output SQNR = signal / that sum.
// Predicted accuracy loss (percentage points, float accuracy minus quantized accuracy) is the
// larger of (a) the sum of the single-layer accuracy drops (negative ones counted as 0) and
// (b) the drop that every measured run (uniform, single, all-but-one) shows at the predicted SQNR:
// a non-increasing curve of drop against output SQNR fitted to those runs (isotonic regression),
// read by linear interpolation. (a) catches one fragile layer, (b) many small noises together.
// The rows behind these numbers are few (a changed prediction on 1 row of 1000 is 0.1 points), so
// an accuracy budget is checked against an upper bound: the predicted drop plus `confidence`
// (a z score, default 1.645: one-sided 95%) standard errors of a paired accuracy difference,
// sqrt(d / n) with d the predicted fraction of rows whose top-1 class changes (the same two-way
// prediction, from the runs' top-1 agreement) and n the rows compared.
import { checkOptions, rangeError, typeError } from '../errors';
import { quantizeModel, QuantizedModel } from '../index';
import type { LayerOverride, QuantizeModelOptions } from '../index';
import type { ModelAnalysis } from './analyze';
import type { OnnxObserverName } from '../onnx-model/calibrate';
import { onnxPlanSteps } from './onnx';
import { AnalysisData, batchesOf, checkEvalData, checkModel, EvalData, inEvalMode, inputWidth, leaves } from './model';
import { accuracyOf, compareOutputs, SensitivityRun } from './sensitivity';
import { sqnrDb } from './tensor-stats';

/** A layer's choice: weight bits, or 'float'. */
export type LayerChoice = number | 'float';

/** Accuracy loss in percentage points (a number is the same), or a floor on the output SQNR in dB. */
export type PlanBudget = number | { accuracyDrop: number } | { sqnrDb: number };

export interface PlanOptions {
  budget: PlanBudget;
  /** Accuracy budgets: standard errors added to the predicted drop before comparing (a z score, default 1.645; 0: the estimate alone). */
  confidence?: number;
  /** Choices per layer (default: the analysis' bit widths and 'float'). */
  candidates?: LayerChoice[];
}

export interface MixedPrecisionLayer {
  name: string;
  choice: LayerChoice;
  bytes: number;
  /** The single-layer run's output noise and accuracy drop at this choice (0 for float). */
  noise: number;
  accuracyDrop: number | null;
}

export interface PlanPoint {
  bytes: number;
  sqnrDb: number;
  /** Predicted accuracy drop (points), its upper bound (the estimate plus `confidence` standard errors) and the predicted fraction of rows whose top-1 class changes. */
  accuracyDrop: number | null;
  accuracyDropBound: number | null;
  changed: number;
  choices: LayerChoice[];
}

export interface MixedPrecisionPlan {
  budget: { accuracyDrop: number } | { sqnrDb: number };
  mode: ModelAnalysis['options']['mode'];
  layers: MixedPrecisionLayer[];
  /** What quantizeModel takes (add calibrationData for static mode): per-layer overrides for every Linear. */
  quantizeOptions: QuantizeModelOptions & { layers: Record<string, LayerOverride> };
  predicted: { bytes: number; sqnrDb: number; accuracyDrop: number | null; accuracyDropBound: number | null; changed: number; accuracy: number | null };
  /** The z score used for the bound, and the rows behind the prediction. */
  confidence: number;
  rows: number;
  float: { bytes: number; accuracy: number | null };
  /** False when no configuration meets the budget (then every layer stays float). */
  feasible: boolean;
  search: 'exhaustive' | 'greedy';
  configurations: number;
  /** Predicted size / loss trade-off: the configurations no other one beats on both (smallest first). */
  frontier: PlanPoint[];
  /** Plans of an analyzeOnnx analysis: the quantizeOnnx passes measureOnnxPlan runs (int8 nodes in `mode`, then weight-only nodes by bits). */
  onnx?: {
    output: string;
    mode: 'static' | 'dynamic';
    observer: OnnxObserverName;
    blockSize: number;
    int8: string[];
    weightOnly: Record<string, string[]>;
  };
}

export interface PlanMeasurement {
  rows: number;
  bytes: number;
  sqnrDb: number;
  agreement: number;
  /** ONNX plans: cosine similarity of all compared outputs (quantized vs float). */
  cosine?: number;
  accuracy: number | null;
  floatAccuracy: number | null;
  accuracyDrop: number | null;
  /** Whether the measured loss is within the plan's budget. */
  withinBudget: boolean;
}

/** Isotonic (non-increasing) fit of y against x, by pool-adjacent-violators; points sorted by x. */
export function fitNonIncreasing(points: { x: number; y: number }[]): { x: number; y: number }[] {
  const p = points.filter((q) => Number.isFinite(q.x) && Number.isFinite(q.y)).sort((a, b) => a.x - b.x);
  const blocks: { sum: number; n: number }[] = [];
  for (const q of p) {
    blocks.push({ sum: q.y, n: 1 });
    while (blocks.length > 1) {
      const a = blocks[blocks.length - 2], b = blocks[blocks.length - 1];
      if (a.sum / a.n >= b.sum / b.n) break;
      a.sum += b.sum; a.n += b.n;
      blocks.pop();
    }
  }
  const out: { x: number; y: number }[] = [];
  let i = 0;
  for (const b of blocks) for (let k = 0; k < b.n; k++, i++) out.push({ x: p[i].x, y: b.sum / b.n });
  return out;
}

/** The fitted curve at x: linear between points, flat beyond the ends. */
export function curveAt(fit: { x: number; y: number }[], x: number): number {
  if (fit.length === 0) return 0;
  if (x <= fit[0].x) return fit[0].y;
  if (x >= fit[fit.length - 1].x) return fit[fit.length - 1].y;
  for (let i = 1; i < fit.length; i++) {
    if (x <= fit[i].x) {
      const a = fit[i - 1], b = fit[i];
      return b.x === a.x ? Math.max(a.y, b.y) : a.y + ((x - a.x) / (b.x - a.x)) * (b.y - a.y);
    }
  }
  return fit[fit.length - 1].y;
}

function checkBudget(v: unknown): { accuracyDrop: number } | { sqnrDb: number } {
  const num = (name: string, x: unknown, lo: number): number => {
    if (typeof x !== 'number') throw typeError(name, `a number >= ${lo}`, x);
    if (!Number.isFinite(x) || x < lo) throw rangeError(name, `a finite number >= ${lo}`, String(x));
    return x;
  };
  if (typeof v === 'number') return { accuracyDrop: num('options.budget', v, 0) };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw typeError('options.budget', 'accuracy points (a number), { accuracyDrop } or { sqnrDb }', v);
  const o = checkOptions('options.budget', v, ['accuracyDrop', 'sqnrDb']);
  if ((o.accuracyDrop === undefined) === (o.sqnrDb === undefined)) throw typeError('options.budget', 'one of { accuracyDrop } or { sqnrDb }', v);
  return o.accuracyDrop !== undefined ? { accuracyDrop: num('options.budget.accuracyDrop', o.accuracyDrop, 0) } : { sqnrDb: num('options.budget.sqnrDb', o.sqnrDb, -1000) };
}

/**
 * The smallest configuration (bytes) whose predicted loss stays within the budget, searched over
 * every combination of candidates when there are at most 65,536, else greedily (from all float,
 * lowering the layer that saves the most bytes per unit of predicted loss while the budget holds).
 */
export function planMixedPrecision(analysis: ModelAnalysis, options: PlanOptions): MixedPrecisionPlan {
  if (typeof analysis !== 'object' || analysis === null || analysis.version !== 1 || !Array.isArray(analysis.layers)) {
    throw typeError('analysis', 'the result of analyzeModel', analysis);
  }
  const s = analysis.sensitivity;
  if (!s) throw rangeError('analysis', 'an analysis with sensitivity runs (analyzeModel with sensitivity: true)', 'sensitivity: null');
  const o = checkOptions('options', options, ['budget', 'candidates', 'confidence']);
  let z = 1.645;
  if (o.confidence !== undefined) {
    if (typeof o.confidence !== 'number') throw typeError('options.confidence', 'a z score (a number >= 0)', o.confidence);
    if (!(o.confidence >= 0) || !Number.isFinite(o.confidence)) throw rangeError('options.confidence', 'a finite number >= 0', String(o.confidence));
    z = o.confidence;
  }
  if (o.budget === undefined) throw typeError('options.budget', 'accuracy points (a number), { accuracyDrop } or { sqnrDb }', undefined);
  const budget = checkBudget(o.budget);
  if ('accuracyDrop' in budget && !s.labels) {
    throw rangeError('options.budget', "{ sqnrDb } (an accuracy budget needs labels: give analyzeModel evalData with labels)", `{ accuracyDrop: ${budget.accuracyDrop} }`);
  }
  let cands: LayerChoice[] = [...s.bits, 'float'];
  if (o.candidates !== undefined) {
    if (!Array.isArray(o.candidates) || o.candidates.length === 0) throw typeError('options.candidates', "a non-empty array of bit widths and 'float'", o.candidates);
    cands = o.candidates.map((c, i) => {
      if (c === 'float') return c;
      if (typeof c !== 'number' || !s.bits.includes(c)) throw rangeError(`options.candidates[${i}]`, `'float' or a bit width the analysis measured (${s.bits.join(', ')})`, JSON.stringify(c) ?? String(c));
      return c;
    });
    cands = [...new Set(cands)];
  }
  // Most precise first: float, then descending bits.
  cands.sort((a, b) => (a === 'float' ? -1 : b === 'float' ? 1 : b - a));

  const L = s.layers.length;
  const single = new Map<string, SensitivityRun>();
  for (const r of s.single) single.set(`${r.layer}@${r.bits}`, r);
  const noiseOf = (l: string, c: LayerChoice): number => (c === 'float' ? 0 : single.get(`${l}@${c}`)!.noise);
  const dropOf = (l: string, c: LayerChoice): number => (c === 'float' ? 0 : Math.max(0, single.get(`${l}@${c}`)!.accuracyDrop ?? 0));
  const bytesOf = (l: string, c: LayerChoice): number => (c === 'float' ? s.layerBytes[l].float : s.layerBytes[l].bits[String(c)]);
  const runs = [...s.uniform, ...s.single, ...s.allBut];
  const fit = s.labels ? fitNonIncreasing(runs.map((r) => ({ x: r.sqnrDb, y: r.accuracyDrop as number }))) : [];
  const fitChanged = fitNonIncreasing(runs.map((r) => ({ x: r.sqnrDb, y: 1 - r.agreement })));
  const changedOf = (l: string, c: LayerChoice): number => (c === 'float' ? 0 : 1 - single.get(`${l}@${c}`)!.agreement);

  const evaluate = (choice: LayerChoice[]): PlanPoint => {
    let noise = 0, add = 0, addChanged = 0, bytes = s.otherBytes;
    for (let i = 0; i < L; i++) {
      noise += noiseOf(s.layers[i], choice[i]);
      add += dropOf(s.layers[i], choice[i]);
      addChanged += changedOf(s.layers[i], choice[i]);
      bytes += bytesOf(s.layers[i], choice[i]);
    }
    const q = sqnrDb(s.signal, noise);
    const exact = choice.every((c) => c === 'float');
    const changed = exact ? 0 : Math.min(1, Math.max(addChanged, curveAt(fitChanged, q), 0));
    const drop = s.labels ? (exact ? 0 : Math.max(add, curveAt(fit, q), 0)) : null;
    const bound = drop === null ? null : exact ? 0 : drop + z * Math.sqrt(changed / s.rows) * 100;
    return { bytes, sqnrDb: q, accuracyDrop: drop, accuracyDropBound: bound, changed, choices: choice.slice() };
  };
  const fits = (p: PlanPoint): boolean => ('accuracyDrop' in budget ? (p.accuracyDropBound as number) <= budget.accuracyDrop + 1e-9 : p.sqnrDb >= budget.sqnrDb);
  const loss = (p: PlanPoint): number => ('accuracyDrop' in budget ? (p.accuracyDropBound as number) : -p.sqnrDb);
  const better = (a: PlanPoint, b: PlanPoint | null): boolean => b === null || a.bytes < b.bytes || (a.bytes === b.bytes && loss(a) < loss(b));

  // Each layer's choices: those with a single-layer run (an ONNX Conv has no weight-only width).
  const per: LayerChoice[][] = s.layers.map((l) => cands.filter((c) => c === 'float' || single.has(`${l}@${c}`)));
  const at = (idx: number[]): LayerChoice[] => idx.map((k, i) => per[i][k]);
  const all: PlanPoint[] = [];
  let best: PlanPoint | null = null;
  let search: 'exhaustive' | 'greedy';
  let configurations = 0;
  if (per.reduce((a, c) => a * c.length, 1) <= 65536) {
    search = 'exhaustive';
    const idx = new Array<number>(L).fill(0);
    for (;;) {
      const p = evaluate(at(idx));
      configurations++;
      all.push(p);
      if (fits(p) && better(p, best)) best = p;
      let d = 0;
      while (d < L && ++idx[d] === per[d].length) idx[d++] = 0;
      if (d === L) break;
    }
  } else {
    search = 'greedy';
    const idx = new Array<number>(L).fill(0);
    let cur = evaluate(at(idx));
    configurations++;
    all.push(cur);
    if (fits(cur)) best = cur;
    for (;;) {
      let pick: { i: number; p: PlanPoint; score: number } | null = null;
      for (let i = 0; i < L; i++) {
        if (idx[i] + 1 >= per[i].length) continue;
        idx[i]++;
        const p = evaluate(at(idx));
        idx[i]--;
        configurations++;
        all.push(p);
        if (!fits(p)) continue;
        const saved = cur.bytes - p.bytes;
        const score = saved / Math.max(1e-12, loss(p) - loss(cur));
        if (saved > 0 && (pick === null || score > pick.score)) pick = { i, p, score };
      }
      if (!pick) break;
      idx[pick.i]++;
      cur = pick.p;
      if (better(cur, best)) best = cur;
    }
  }
  const feasible = best !== null;
  if (!best) best = evaluate(new Array<LayerChoice>(L).fill('float'));

  // The frontier: sorted by bytes, keep points whose loss beats every smaller one's.
  const frontier: PlanPoint[] = [];
  for (const p of all.slice().sort((a, b) => a.bytes - b.bytes || loss(a) - loss(b))) {
    if (frontier.length === 0 || loss(p) < loss(frontier[frontier.length - 1]) - 1e-12) {
      if (frontier.length && frontier[frontier.length - 1].bytes === p.bytes) frontier.pop();
      frontier.push(p);
    }
  }

  const layers: MixedPrecisionLayer[] = s.layers.map((n, i) => {
    const c = best!.choices[i];
    return { name: n, choice: c, bytes: bytesOf(n, c), noise: noiseOf(n, c), accuracyDrop: s.labels ? (c === 'float' ? 0 : single.get(`${n}@${c}`)!.accuracyDrop) : null };
  });
  const overrides: Record<string, LayerOverride> = {};
  for (const l of layers) overrides[l.name] = l.choice === 'float' ? { mode: 'float' } : { bits: l.choice };
  const q: QuantizeModelOptions & { layers: Record<string, LayerOverride> } = { mode: analysis.options.mode, layers: overrides };
  if (analysis.options.granularity !== null) q.granularity = analysis.options.granularity;
  if (analysis.options.mode === 'static') q.observer = analysis.options.observer;
  const fa = s.float.accuracy;
  return {
    budget, mode: analysis.options.mode, layers, quantizeOptions: q,
    predicted: {
      bytes: best.bytes, sqnrDb: best.sqnrDb, accuracyDrop: best.accuracyDrop, accuracyDropBound: best.accuracyDropBound, changed: best.changed,
      accuracy: fa === null || best.accuracyDrop === null ? null : fa - best.accuracyDrop / 100,
    },
    float: { bytes: s.float.bytes, accuracy: fa }, confidence: z, rows: s.rows,
    feasible, search, configurations, frontier,
    ...(analysis.onnx ? { onnx: onnxPlanSteps(analysis, new Map(layers.map((l) => [l.name, l.choice]))) } : {}),
  };
}

/**
 * Quantizes `model` as the plan says (calibrating on calibrationData in static mode) and measures
 * it against the float model on evalData: bytes, output SQNR, top-1 agreement and, with labels,
 * accuracy and its drop. Returns the quantized model too.
 */
export function measurePlan(model: unknown, plan: MixedPrecisionPlan, data: { calibrationData?: AnalysisData; evalData: EvalData; batchSize?: number }):
  { model: QuantizedModel; measured: PlanMeasurement } {
  if (typeof plan === 'object' && plan !== null && plan.onnx) throw new TypeError('Expected a plan of analyzeModel for plan but received a plan of an ONNX analysis: measure it with measureOnnxPlan(model, plan, data)');
  const seq = checkModel(model);
  if (typeof plan !== 'object' || plan === null || typeof plan.quantizeOptions !== 'object') throw typeError('plan', 'the result of planMixedPrecision', plan);
  const d = checkOptions('data', data, ['calibrationData', 'evalData', 'batchSize']);
  const ls = leaves(seq);
  const features = inputWidth(ls);
  const ev = checkEvalData('data.evalData', d.evalData, features);
  const B = (d.batchSize as number | undefined) ?? 256;
  const opts: QuantizeModelOptions = { ...plan.quantizeOptions };
  if (plan.mode === 'static' && plan.layers.some((l) => l.choice !== 'float')) {
    if (d.calibrationData === undefined) throw typeError('data.calibrationData', 'input rows to calibrate the static plan on', undefined);
    opts.calibrationData = batchesOf('data.calibrationData', d.calibrationData, features, B).read();
  }
  const q = quantizeModel(seq, opts);
  const rows = (): Iterable<{ x: Float32Array; batch: number }> => (function* () {
    for (let r = 0; r < ev.rows; r += B) {
      const n = Math.min(B, ev.rows - r);
      yield { x: ev.x.subarray(r * features, (r + n) * features), batch: n };
    }
  })();
  return inEvalMode(seq, () => {
    const parts: Float32Array[] = [];
    for (const { x, batch } of rows()) parts.push(seq.forward(x, batch).slice());
    const all = parts.length === 1 ? parts[0] : (() => {
      const a = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let off = 0;
      for (const p of parts) { a.set(p, off); off += p.length; }
      return a;
    })();
    let signal = 0;
    for (let i = 0; i < all.length; i++) signal += all[i] * all[i];
    const c = compareOutputs((x, b) => q.forward(x, b), rows(), all, ev.labels);
    const fl = ev.labels ? accuracyOf(all, ev.rows, ev.labels) : null; // the float outputs are `all`: no second pass
    const drop = c.accuracy === null || fl === null ? null : (fl - c.accuracy) * 100;
    const sq = sqnrDb(signal, c.noise);
    const within = 'accuracyDrop' in plan.budget ? drop !== null && drop <= plan.budget.accuracyDrop + 1e-9 : sq >= plan.budget.sqnrDb;
    return {
      model: q,
      measured: { rows: ev.rows, bytes: q.byteLength, sqnrDb: sq, agreement: c.agreement, accuracy: c.accuracy, floatAccuracy: fl, accuracyDrop: drop, withinBudget: within },
    };
  });
}
