// evaluate(): accuracy, model bytes and batch latency of a float or quantized model.
import { checkInt, checkOptions, checkTyped, describe, ownCopy, rangeError, typeError } from '../errors';
import { checkLabels, scoreRows } from '../nn/loss';
import { Module } from '../nn/module';
import { QuantizedModel } from './qmodel';

export interface EvaluateOptions {
  /** Rows per forward, for accuracy and latency (default 64). */
  batchSize?: number;
  /** Timed forwards of one batch for the latency (default: as many as fit in about timeBudgetMs, at least 10). */
  runs?: number;
  /** Default 500. */
  timeBudgetMs?: number;
  /** Untimed forwards first (default 3). */
  warmup?: number;
}

export interface EvaluateResult {
  /** Fraction of rows whose argmax equals the label. */
  accuracy: number;
  correct: number;
  count: number;
  /** Rows whose outputs were not all finite (counted as wrong). */
  nonFiniteRows: number;
  /** Model bytes: float32 parameters x 4, or a QuantizedModel's byteLength (what its file's tensors take). */
  bytes: number;
  batchSize: number;
  /** Median wall time of one forward of batchSize rows, milliseconds. */
  latencyMs: number;
  /** 10th and 90th percentiles of the same. */
  latencyP10Ms: number;
  latencyP90Ms: number;
  /** Timed runs behind the percentiles. */
  runs: number;
}

type Model = Module | QuantizedModel;

function forwardOf(model: Model): (x: Float32Array, batch: number) => Float32Array {
  if (model instanceof QuantizedModel) return (x, b) => model.forward(x, b);
  if (model instanceof Module) return (x, b) => model.forward(x, b);
  throw typeError('model', 'an nn Module or a QuantizedModel', model);
}

/** Model bytes: a QuantizedModel's byteLength, or 4 bytes per float parameter. */
export function modelBytes(model: Model): number {
  if (model instanceof QuantizedModel) return model.byteLength;
  if (model instanceof Module) return model.numParameters() * 4;
  throw typeError('model', 'an nn Module or a QuantizedModel', model);
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))));
  return sorted[i];
}

/**
 * Runs `model` over x (rows of features) in batches and compares argmax with labels; then times
 * forwards of the first batchSize rows. A float Module is put in eval mode for the call and its
 * mode restored.
 */
export function evaluate(model: Model, x: Float32Array, labels: ArrayLike<number>, opts?: EvaluateOptions): EvaluateResult {
  const fwd = forwardOf(model);
  const xs = checkTyped<Float32Array>('x', x, [Float32Array]);
  checkLabels(labels);
  const n = labels.length;
  if (n === 0) throw rangeError('labels', 'at least one label', 'none');
  if (xs.length % n !== 0) throw rangeError('x', `a length that is a multiple of labels.length = ${n}`, describe(xs));
  const F = xs.length / n;
  const o = checkOptions('opts', opts, ['batchSize', 'runs', 'timeBudgetMs', 'warmup']);
  const B = o.batchSize === undefined ? 64 : checkInt('opts.batchSize', o.batchSize, 1, 2 ** 31);
  const runsGiven = o.runs === undefined ? null : checkInt('opts.runs', o.runs, 1, 1e7);
  const budget = o.timeBudgetMs === undefined ? 500 : checkInt('opts.timeBudgetMs', o.timeBudgetMs, 0, 1e9);
  const warmup = o.warmup === undefined ? 3 : checkInt('opts.warmup', o.warmup, 0, 1e6);
  for (let i = 0; i < n; i++) {
    const v = labels[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw rangeError(`labels[${i}]`, 'a class index (an integer >= 0)', String(v));
  }
  // Every module's own mode, restored afterwards (a Dropout may be in eval inside a training model).
  const modes: [Module, boolean][] = [];
  if (model instanceof Module) {
    const walk = (m: Module) => { modes.push([m, m.training]); m.children().forEach(([, c]) => walk(c)); };
    walk(model);
    model.eval();
  }
  try {
    let correct = 0;
    let nanRows = 0;
    for (let s = 0; s < n; s += B) {
      const b = Math.min(B, n - s);
      const y = fwd(xs.subarray(s * F, (s + b) * F), b);
      const C = y.length / b;
      for (let i = 0; i < b; i++) {
        if (labels[s + i] >= C) throw rangeError(`labels[${s + i}]`, `a class index below ${C} (the model's outputs)`, String(labels[s + i]));
      }
      const r = scoreRows(y, b, labels, s, true);
      correct += r.correct;
      nanRows += r.nonFinite;
    }
    const bt = Math.min(B, n);
    const xb = ownCopy(xs, 0, bt * F);
    for (let i = 0; i < warmup; i++) fwd(xb, bt);
    const times: number[] = [];
    const t0 = performance.now();
    for (;;) {
      const a = performance.now();
      fwd(xb, bt);
      times.push(performance.now() - a);
      if (runsGiven !== null ? times.length >= runsGiven : times.length >= 10 && performance.now() - t0 >= budget) break;
    }
    times.sort((a, b) => a - b);
    return {
      accuracy: correct / n, correct, count: n, nonFiniteRows: nanRows, bytes: modelBytes(model), batchSize: bt,
      latencyMs: percentile(times, 0.5), latencyP10Ms: percentile(times, 0.1), latencyP90Ms: percentile(times, 0.9), runs: times.length,
    };
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
}
