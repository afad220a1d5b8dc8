// SoftmaxCrossEntropyObserver: for logits that feed a softmax. The range minimising the cross
// entropy between softmax(v) and softmax(fakeQuantize(v)) (the same as minimising KL(p || q), as
// H(p) does not depend on the range). Per row of the softmax axis, with d = fakeQuantize(v) - v:
//   KL(p || q) = -E_p[d] + log E_p[exp(d)].
// The observer keeps, beside the value histogram, a histogram on the same bins weighted by each
// value's softmax probability in its row (each row adds weight 1), so E_p[.] over all rows is an
// integral over that histogram (uniform inside each bin). The sum over rows of log E_p[exp(d)] is
// taken as rows * log of the mean (the rows seen as one mixture). Errors on the largest logits
// (which carry the probability) cost the most, so the range keeps their order; very negative
// logits may be clipped.
import { rangeError, typeError } from '../errors';
import { Layout } from '../layout';
import { qparamsOne } from '../qparams';
import { checkSearchWork, f32, optNumber, parseOptions, registerObserver } from './base';
import { binOf, binParams, HistBase, HistogramRangeOptions, ObserverSpecOptions } from './histogram';
import { forEachPiece, searchRange } from './mse';

/** Mixture KL of fake-quantizing with (s, z), from the probability-weighted histogram. */
export function softmaxKl(w: Float64Array, lo: number, hi: number, s: number, z: number, qmin: number, qmax: number): number {
  const n = w.length;
  const bw = (hi - lo) / n;
  let total = 0;
  let a = 0; // E_p[d]
  let b = 0; // E_p[exp(d)]
  let pa = 0;
  let pb = 0;
  const piece = (l: number, h: number, v: number) => {
    pa += v * (h - l) - (h * h - l * l) / 2;
    pb += Math.exp(Math.min(700, v - l)) - Math.exp(Math.min(700, v - h));
  };
  for (let i = 0; i < n; i++) {
    const c = w[i];
    if (c === 0) continue;
    total += c;
    const x0 = lo + i * bw;
    pa = 0;
    pb = 0;
    forEachPiece(x0, x0 + bw, s, z, qmin, qmax, piece);
    a += (c / bw) * pa;
    b += (c / bw) * pb;
  }
  if (total === 0) return 0;
  return -a / total + Math.log(b / total);
}

export interface SoftmaxCrossEntropyObserverOptions extends ObserverSpecOptions, HistogramRangeOptions {
  /** 'per-tensor' only. */
  granularity?: 'per-tensor';
  /** The softmax (class) axis of each batch's shape (default -1, the last). */
  axis?: number;
  /** Candidate ranges per search dimension, 1 .. 100000 (default 100). */
  gridSize?: number;
}

export class SoftmaxCrossEntropyObserver extends HistBase {
  static readonly observerType: string = 'SoftmaxCrossEntropyObserver';
  private readonly _axis: number;
  private readonly _grid: number;
  constructor(opts?: SoftmaxCrossEntropyObserverOptions) {
    const p = parseOptions('options', opts, ['axis', 'bins', 'gridSize', 'upsampleRate', 'initialRange', 'memoryLimit']);
    super(p, { abs: false, allowAxis: false, layers: 2 });
    const ax = p.own.axis ?? -1;
    if (typeof ax !== 'number' || !Number.isInteger(ax)) throw typeError('axis', 'an integer', ax);
    this._axis = ax;
    this._grid = optNumber('gridSize', p.own.gridSize, 100, 1, 100000, { integer: true });
    p.own.axis = ax;
    checkSearchWork('softmax cross-entropy grid', ['bins', p.own.bins as number], ['gridSize', this._grid]);
    p.own.gridSize = this._grid;
  }

  /** @internal */
  protected override _observeBatch(x: Float32Array, L: Layout, mm: { min: Float32Array; max: Float32Array }, shape: readonly number[]): void {
    const rank = shape.length;
    if (rank === 0 || this._axis < -rank || this._axis >= rank) {
      throw rangeError('axis', rank === 0 ? 'no axis (the shape has rank 0)' : `an axis between ${-rank} and ${rank - 1}`, `${this._axis} (shape of rank ${rank})`);
    }
    const a = this._axis < 0 ? this._axis + rank : this._axis;
    let outer = 1;
    let inner = 1;
    for (let i = 0; i < a; i++) outer *= shape[i];
    for (let i = a + 1; i < rank; i++) inner *= shape[i];
    const C = shape[a];
    this._h.observe(x, L, mm, (qlo, qhi, out) => {
      const bp = binParams(qlo[0], qhi[0], this._h.bins);
      const w = out[0];
      const e = new Float64Array(C);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const base = o * C * inner + i;
          let m = -Infinity;
          for (let c = 0; c < C; c++) {
            const v = x[base + c * inner];
            if (Number.isFinite(v) && v > m) m = v;
          }
          if (m === -Infinity) continue;
          let s = 0;
          for (let c = 0; c < C; c++) {
            const v = x[base + c * inner];
            const ev = Number.isFinite(v) ? Math.exp(v - m) : 0;
            e[c] = ev;
            s += ev;
          }
          for (let c = 0; c < C; c++) {
            if (e[c] === 0) continue;
            const v = x[base + c * inner];
            if (v >= bp.lo && v <= bp.hi) w[binOf(v, bp)] += e[c] / s;
          }
        }
      }
    });
  }

  /** @internal */
  protected _rangeOf(g: number): [number, number] {
    const h = this._h;
    const lo = h.lo[g];
    const hi = h.hi[g];
    if (lo === hi) return [h.dmin[g], h.dmax[g]];
    const w = h.view(g, 1);
    const { qmin, qmax } = this.spec;
    return searchRange(h.dmin[g], h.dmax[g], this.spec, this._grid, (l, u) => {
      const [s, z] = qparamsOne(f32(l), f32(u), this.spec);
      return softmaxKl(w, lo, hi, s, z, qmin, qmax);
    });
  }
}

registerObserver(SoftmaxCrossEntropyObserver as never);
