// MSEObserver: the clipping range that minimises the mean squared error between x and
// fakeQuantize(x), by grid search over candidate ranges, evaluated on the observer's histogram
// (uniform density inside each bin, the error integrated exactly per quantization step).
// Per tensor or per channel (granularity { axis }).
import { qparamsOne } from '../qparams';
import { ResolvedSpec } from '../spec';
import { checkSearchWork, f32, optNumber, parseOptions, registerObserver } from './base';
import { HistBase, HistogramRangeOptions, ObserverSpecOptions } from './histogram';

/**
 * Calls fn(l, h, v) for the pieces of [a, b) on which fakeQuantize is constant (= v), for scale s,
 * zero point z and codes qmin..qmax (the code of x is clamp(round(x / s) + z)).
 */
export function forEachPiece(a: number, b: number, s: number, z: number, qmin: number, qmax: number,
  fn: (l: number, h: number, v: number) => void): void {
  let k = Math.min(qmax, Math.max(qmin, Math.floor(a / s + 0.5) + z));
  let cur = a;
  while (cur < b) {
    const bnd = k < qmax ? (k - z + 0.5) * s : Infinity;
    const h = Math.min(b, bnd);
    if (h > cur) fn(cur, h, (k - z) * s);
    cur = h;
    k++;
  }
}

/** The non-zero bins of a histogram over [lo, hi]: their lower edges and counts, and the bin width. */
export interface CompactHist {
  edge: Float64Array;
  count: Float64Array;
  width: number;
}

export function compactHist(hist: Float64Array, lo: number, hi: number): CompactHist {
  const n = hist.length;
  const w = (hi - lo) / n;
  let m = 0;
  for (let i = 0; i < n; i++) if (hist[i] !== 0) m++;
  const edge = new Float64Array(m);
  const count = new Float64Array(m);
  for (let i = 0, k = 0; i < n; i++) {
    if (hist[i] === 0) continue;
    edge[k] = lo + i * w;
    count[k++] = hist[i];
  }
  return { edge, count, width: w };
}

/** Sum over the histogram of the squared error of fake-quantizing with (s, z) (not divided by the count). */
export function histSquaredError(h: CompactHist, s: number, z: number, qmin: number, qmax: number): number {
  const w = h.width;
  const { edge, count } = h;
  let total = 0;
  for (let i = 0; i < edge.length; i++) {
    const a = edge[i];
    const b = a + w;
    // the pieces of [a, b) on which fakeQuantize is constant (as forEachPiece, inlined)
    let k = Math.min(qmax, Math.max(qmin, Math.floor(a / s + 0.5) + z));
    let cur = a;
    let acc = 0;
    while (cur < b) {
      const bnd = k < qmax ? (k - z + 0.5) * s : Infinity;
      const hh = bnd < b ? bnd : b;
      if (hh > cur) {
        const v = (k - z) * s;
        const dh = hh - v;
        const dl = cur - v;
        acc += dh * dh * dh - dl * dl * dl;
      }
      cur = hh;
      k++;
    }
    total += (count[i] / w) * (acc / 3);
  }
  return total;
}

/**
 * Grid search of a range for a cost(lo, hi). Symmetric schemes: [-a, a] for a = amax * k / G.
 * Asymmetric: [min' * k / G, max' * k / G], then two rounds of refining min with max fixed and max
 * with min fixed over the same grids. Ties keep the wider range.
 */
export function searchRange(dmin: number, dmax: number, spec: ResolvedSpec, grid: number, cost: (lo: number, hi: number) => number): [number, number] {
  const mn = Math.min(dmin, 0);
  const mx = Math.max(dmax, 0);
  if (mn === mx) return [dmin, dmax];
  if (spec.scheme === 'symmetric') {
    const amax = Math.max(-mn, mx);
    let best = amax;
    let bestC = Infinity;
    for (let k = grid; k >= 1; k--) {
      const a = (amax * k) / grid;
      const c = cost(-a, a);
      if (c < bestC) {
        bestC = c;
        best = a;
      }
    }
    return [Math.max(-best, mn), Math.min(best, mx)];
  }
  let bl = mn;
  let bh = mx;
  let bestC = Infinity;
  for (let k = grid; k >= 1; k--) {
    const c = cost((mn * k) / grid, (mx * k) / grid);
    if (c < bestC) {
      bestC = c;
      bl = (mn * k) / grid;
      bh = (mx * k) / grid;
    }
  }
  for (let round = 0; round < 2; round++) {
    if (mn < 0) {
      for (let k = grid; k >= 0; k--) {
        const l = (mn * k) / grid;
        const c = cost(l, bh);
        if (c < bestC) {
          bestC = c;
          bl = l;
        }
      }
    }
    if (mx > 0) {
      for (let k = grid; k >= 0; k--) {
        const h = (mx * k) / grid;
        const c = cost(bl, h);
        if (c < bestC) {
          bestC = c;
          bh = h;
        }
      }
    }
  }
  return [bl, bh];
}

export interface MSEObserverOptions extends ObserverSpecOptions, HistogramRangeOptions {
  /** 'per-tensor' (default) or { axis } (one histogram and one search per channel). */
  granularity?: 'per-tensor' | { axis: number };
  /** Candidate ranges per search dimension, 1 .. 100000 (default 100). */
  gridSize?: number;
}

/** The range minimising E[(x - fakeQuantize(x))^2] over the observed distribution, by grid search. */
export class MSEObserver extends HistBase {
  static readonly observerType: string = 'MSEObserver';
  private readonly _grid: number;
  constructor(opts?: MSEObserverOptions) {
    const p = parseOptions('options', opts, ['bins', 'gridSize', 'upsampleRate', 'initialRange', 'memoryLimit']);
    super(p, { abs: false, allowAxis: true });
    this._grid = optNumber('gridSize', p.own.gridSize, 100, 1, 100000, { integer: true });
    checkSearchWork('MSE grid', ['bins', p.own.bins as number], ['gridSize', this._grid]);
    p.own.gridSize = this._grid;
  }

  /** @internal */
  protected _rangeOf(g: number): [number, number] {
    const h = this._h;
    const lo = h.lo[g];
    const hi = h.hi[g];
    if (lo === hi) return [h.dmin[g], h.dmax[g]];
    const ch = compactHist(h.view(g), lo, hi);
    const { qmin, qmax } = this.spec;
    return searchRange(h.dmin[g], h.dmax[g], this.spec, this._grid, (l, u) => {
      const [s, z] = qparamsOne(f32(l), f32(u), this.spec);
      return histSquaredError(ch, s, z, qmin, qmax);
    });
  }
}

registerObserver(MSEObserver as never);
