// Mini-batches over row-major samples with seeded shuffling (a new permutation every epoch).
import { checkInt, checkOptions, describe, isTypedOf, rangeError, typeError } from '../errors';
import { resolveRng, Rng } from '../nn/random';

type Rows = Float32Array | Uint8Array;
type LabelArray = Uint8Array | Int32Array | Uint16Array;

export interface Batch<X extends Rows = Float32Array, Y extends LabelArray = Uint8Array> {
  /** [batch, features] rows, copied from the dataset. */
  x: X;
  /** [batch] labels. */
  y: Y;
  /** Rows in this batch (the last one may be smaller unless dropLast). */
  batch: number;
  /** Dataset row of each batch row. */
  indices: Uint32Array;
}

export interface BatchLoaderOptions {
  /** Default 64. */
  batchSize?: number;
  /** New random order each epoch (default true). */
  shuffle?: boolean;
  /** Drop the last partial batch (default false). */
  dropLast?: boolean;
  /** Generator or seed for the order (default: the manualSeed generator). */
  rng?: Rng | number;
}

/**
 * Batches of (x, y): x holds `count` rows of `features` values. epoch() yields one pass; with
 * shuffle, each call draws a new permutation from the loader's generator, so a seed fixes the
 * order of every epoch.
 */
export class BatchLoader<X extends Rows = Float32Array, Y extends LabelArray = Uint8Array> {
  readonly x: X;
  readonly y: Y;
  readonly count: number;
  readonly features: number;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private readonly rng: Rng;
  private readonly order: Uint32Array;

  constructor(x: X, y: Y, opts?: BatchLoaderOptions) {
    if (!(isTypedOf(x, 'Float32Array') || isTypedOf(x, 'Uint8Array'))) throw typeError('x', 'Float32Array or Uint8Array', x);
    if (!(isTypedOf(y, 'Uint8Array') || isTypedOf(y, 'Int32Array') || isTypedOf(y, 'Uint16Array'))) throw typeError('y', 'Uint8Array, Uint16Array or Int32Array', y);
    const o = checkOptions('opts', opts, ['batchSize', 'shuffle', 'dropLast', 'rng']) as BatchLoaderOptions;
    this.count = y.length;
    if (this.count === 0 ? x.length !== 0 : x.length % this.count !== 0) {
      throw rangeError('x', `a length divisible by the ${this.count} labels`, describe(x));
    }
    this.x = x;
    this.y = y;
    this.features = this.count === 0 ? 0 : x.length / this.count;
    this.batchSize = o.batchSize === undefined ? 64 : checkInt('opts.batchSize', o.batchSize, 1, 2 ** 31);
    for (const k of ['shuffle', 'dropLast'] as const) {
      if (o[k] !== undefined && typeof o[k] !== 'boolean') throw typeError(`opts.${k}`, 'a boolean', o[k]);
    }
    this.shuffle = o.shuffle ?? true;
    this.dropLast = o.dropLast ?? false;
    this.rng = resolveRng('opts.rng', o.rng);
    this.order = new Uint32Array(this.count);
  }

  /** Batches per epoch. */
  get length(): number {
    return this.dropLast ? Math.floor(this.count / this.batchSize) : Math.ceil(this.count / this.batchSize);
  }

  /** One pass over the data (reshuffled first when shuffle is on). */
  *epoch(): Generator<Batch<X, Y>> {
    const order = this.order;
    for (let i = 0; i < order.length; i++) order[i] = i;
    if (this.shuffle) this.rng.shuffle(order);
    const F = this.features;
    const XC = this.x.constructor as new (n: number) => X;
    const YC = this.y.constructor as new (n: number) => Y;
    for (let s = 0; s < this.count; s += this.batchSize) {
      const n = Math.min(this.batchSize, this.count - s);
      if (n < this.batchSize && this.dropLast) break;
      const indices = order.slice(s, s + n);
      const x = new XC(n * F);
      const y = new YC(n);
      for (let r = 0; r < n; r++) {
        const k = indices[r];
        x.set(this.x.subarray(k * F, (k + 1) * F), r * F);
        y[r] = this.y[k];
      }
      yield { x, y, batch: n, indices };
    }
  }
}
