// Losses with their gradient: softmax cross-entropy (fused) and mean squared error.
import { checkHonestLength, checkOneOf, checkOptions, checkTyped, describe, isTypedOf, rangeError, typeError } from '../errors';

export type Labels = Uint8Array | Uint16Array | Int32Array | Uint32Array | Int8Array | Int16Array | readonly number[];

export interface LossResult {
  /** The loss (mean over the batch by default). */
  loss: number;
  /** dLoss/dinput, same length as the input. */
  grad: Float32Array;
}

export interface SoftmaxCrossEntropyOptions {
  /** 'mean' over the batch (default, as PyTorch's CrossEntropyLoss) or 'sum'. */
  reduction?: 'mean' | 'sum';
}

const F32 = [Float32Array] as const;

export function checkLabels(labels: unknown): ArrayLike<number> {
  if (Array.isArray(labels)) return labels;
  if (isTypedOf(labels, 'Uint8Array') || isTypedOf(labels, 'Int32Array') || isTypedOf(labels, 'Uint16Array') || isTypedOf(labels, 'Uint32Array') ||
    isTypedOf(labels, 'Int8Array') || isTypedOf(labels, 'Int16Array')) {
    checkHonestLength('labels', labels);
    return labels;
  }
  throw typeError('labels', 'an integer typed array or an Array of class indices', labels);
}

/**
 * Cross-entropy of softmax(logits) against class indices, fused: logits [batch, classes]
 * row-major, labels [batch] (classes = logits.length / labels.length). loss = mean over rows of
 * logsumexp(row) - row[label]; grad = (softmax(row) - onehot(label)) / batch.
 */
export function softmaxCrossEntropy(logits: Float32Array, labels: Labels, opts?: SoftmaxCrossEntropyOptions): LossResult {
  const z = checkTyped<Float32Array>('logits', logits, F32);
  const y = checkLabels(labels);
  const o = checkOptions('opts', opts, ['reduction']);
  const reduction = o.reduction === undefined ? 'mean' : checkOneOf('opts.reduction', o.reduction, ['mean', 'sum'] as const);
  const B = y.length;
  if (B === 0) {
    if (z.length !== 0) throw rangeError('logits', 'length 0 for 0 labels', describe(z));
    return { loss: reduction === 'mean' ? NaN : 0, grad: new Float32Array(0) };
  }
  if (z.length === 0 || z.length % B !== 0) throw rangeError('logits', `a length divisible by the ${B} labels (batch * classes)`, describe(z));
  const C = z.length / B;
  const scale = reduction === 'mean' ? 1 / B : 1;
  const grad = new Float32Array(z.length);
  let total = 0;
  for (let r = 0; r < B; r++) {
    const t = y[r];
    if (!Number.isInteger(t) || t < 0 || t >= C) throw rangeError(`labels[${r}]`, `a class index between 0 and ${C - 1}`, String(t));
    const o = r * C;
    let m = -Infinity;
    for (let j = 0; j < C; j++) if (z[o + j] > m) m = z[o + j];
    let s = 0;
    for (let j = 0; j < C; j++) s += Math.exp(z[o + j] - m);
    const lse = m + Math.log(s);
    total += lse - z[o + t];
    const inv = 1 / s;
    for (let j = 0; j < C; j++) grad[o + j] = Math.exp(z[o + j] - m) * inv * scale;
    grad[o + t] -= scale;
  }
  return { loss: total * scale, grad };
}

/** Mean squared error: loss = mean((pred - target)^2) (or the sum), grad = 2 (pred - target) / n. */
export function mseLoss(pred: Float32Array, target: Float32Array, opts?: SoftmaxCrossEntropyOptions): LossResult {
  const p = checkTyped<Float32Array>('pred', pred, F32);
  const t = checkTyped<Float32Array>('target', target, F32);
  if (t.length !== p.length) throw rangeError('target', `length ${p.length} (as pred)`, describe(t));
  const o = checkOptions('opts', opts, ['reduction']);
  const reduction = o.reduction === undefined ? 'mean' : checkOneOf('opts.reduction', o.reduction, ['mean', 'sum'] as const);
  const scale = reduction === 'mean' ? 1 / p.length : 1;
  const grad = new Float32Array(p.length);
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const d = p[i] - t[i];
    s += d * d;
    grad[i] = 2 * d * scale;
  }
  return { loss: s * scale, grad };
}

/** Index of the largest value of each row of x [batch, classes] (first on ties). */
export function argmax(x: Float32Array, batch: number): Int32Array {
  const z = checkTyped<Float32Array>('x', x, F32);
  if (typeof batch !== 'number') throw typeError('batch', 'a positive integer', batch);
  if (!Number.isInteger(batch) || batch < 1 || z.length % batch !== 0 || z.length === 0) {
    throw rangeError('batch', `a positive integer dividing x's length ${z.length}`, String(batch));
  }
  const C = z.length / batch;
  const out = new Int32Array(batch);
  for (let r = 0; r < batch; r++) {
    const o = r * C;
    let best = 0;
    for (let j = 1; j < C; j++) if (z[o + j] > z[o + best]) best = j;
    out[r] = best;
  }
  return out;
}

/** Fraction of rows of logits [batch, classes] whose argmax equals the label. */
export function accuracy(logits: Float32Array, labels: Labels): number {
  const y = checkLabels(labels);
  if (y.length === 0) return NaN;
  return scoreRows(logits, y.length, y).correct / y.length;
}

/**
 * @internal The one accuracy count (accuracy(), and for ptq's evaluate and the CLI): rows of
 * logits [batch, classes] whose argmax equals labels[offset + row]; with skipNonFinite, rows
 * holding a NaN or +-Infinity are counted in nonFinite instead, never as correct.
 */
export function scoreRows(
  logits: Float32Array, batch: number, labels: ArrayLike<number>, offset = 0, skipNonFinite = false,
): { correct: number; nonFinite: number } {
  const p = argmax(logits, batch);
  const C = logits.length / batch;
  let correct = 0;
  let nonFinite = 0;
  for (let i = 0; i < batch; i++) {
    if (skipNonFinite && !rowFinite(logits, i * C, (i + 1) * C)) nonFinite++;
    else if (p[i] === labels[offset + i]) correct++;
  }
  return { correct, nonFinite };
}

function rowFinite(x: Float32Array, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (!Number.isFinite(x[k])) return false;
  return true;
}
