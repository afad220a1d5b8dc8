// PercentileObserver: the range that keeps a given percentile of the values, from a histogram
// (linear interpolation inside the bin). Symmetric: the percentile of |x| gives [-a, a];
// two-sided: the (100 - p)th and pth percentiles of x.
import { checkOneOf } from '../errors';
import { optNumber, parseOptions, registerObserver } from './base';
import { HistBase, HistogramRangeOptions, ObserverSpecOptions } from './histogram';

/** The value below which a fraction q of the histogram's mass lies (linear inside the bin). */
export function histQuantile(hist: Float64Array, lo: number, hi: number, q: number): number {
  const n = hist.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += hist[i];
  if (total === 0) return lo;
  const target = q * total;
  const w = (hi - lo) / n;
  let cum = 0;
  for (let i = 0; i < n; i++) {
    const c = hist[i];
    if (c > 0 && cum + c >= target) {
      const frac = Math.min(1, Math.max(0, (target - cum) / c));
      return lo + (i + frac) * w;
    }
    cum += c;
  }
  return hi;
}

export interface PercentileObserverOptions extends ObserverSpecOptions, HistogramRangeOptions {
  granularity?: 'per-tensor' | { axis: number };
  /** Percentile in (0, 100] (default 99.99). */
  percentile?: number;
  /** 'symmetric': percentile of |x|; 'two-sided': both tails of x. Default: from the scheme. */
  mode?: 'symmetric' | 'two-sided';
}

export class PercentileObserver extends HistBase {
  static readonly observerType: string = 'PercentileObserver';
  private readonly _p: number;
  private readonly _mode: 'symmetric' | 'two-sided';
  constructor(opts?: PercentileObserverOptions) {
    const p = parseOptions('options', opts, ['percentile', 'mode', 'bins', 'upsampleRate', 'initialRange', 'memoryLimit']);
    const mode = p.own.mode === undefined ? (p.spec.scheme === 'symmetric' ? 'symmetric' : 'two-sided')
      : checkOneOf('mode', p.own.mode, ['symmetric', 'two-sided'] as const);
    super(p, { abs: mode === 'symmetric', allowAxis: true });
    this._p = optNumber('percentile', p.own.percentile, 99.99, 0, 100, { openLo: true });
    this._mode = mode;
    p.own.percentile = this._p;
    p.own.mode = mode;
  }

  /** @internal */
  protected _rangeOf(g: number): [number, number] {
    const h = this._h;
    const lo = h.lo[g];
    const hi = h.hi[g];
    const q = this._p / 100;
    if (this._mode === 'symmetric') {
      const amaxData = Math.max(Math.abs(h.dmin[g]), Math.abs(h.dmax[g]));
      const a = lo === hi ? amaxData : Math.min(histQuantile(h.view(g), lo, hi, q), amaxData);
      return [Math.max(-a, h.dmin[g]), Math.min(a, h.dmax[g])];
    }
    if (lo === hi) return [lo, hi];
    const hist = h.view(g);
    const a = Math.max(histQuantile(hist, lo, hi, 1 - q), h.dmin[g]);
    const b = Math.min(histQuantile(hist, lo, hi, q), h.dmax[g]);
    return [Math.min(a, b), Math.max(a, b)];
  }
}

registerObserver(PercentileObserver as never);
