// EntropyObserver: TensorRT's entropy (KL divergence) calibration on a 2048-bin histogram of |x|.
// For every candidate threshold of i bins (i = startBin .. bins): the reference distribution P is
// bins[0:i] with all the mass beyond i folded into bin i-1; the candidate Q is bins[0:i] merged
// into `levels` quantization bins (np.digitize over linspace(0, i, levels + 1), as NVIDIA's
// pytorch-quantization) and expanded back, each merged bin's mass spread evenly over its non-zero
// source bins; KL(P || Q) on the normalised distributions (a bin where P > 0 and Q = 0 makes that
// candidate's divergence infinite). The minimum wins, the last one on ties; amax is the right edge
// of the i-th bin (edge index i).
import { checkSearchWork, optNumber, parseOptions, registerObserver } from './base';
import { HistBase, HistogramRangeOptions, ObserverSpecOptions } from './histogram';

/**
 * Number of histogram bins (edge index) of the chosen threshold. O(levels) per candidate: with
 * prefix sums of h, h log h and of the non-zero bin count, each merged group's mass, its non-zero
 * bins and sum(p log p) are differences of prefix sums (the last bin, which also holds the clipped
 * mass, is handled on its own).
 */
export function entropyThresholdBin(hist: Float64Array, levels: number, startBin: number): number {
  const n = hist.length;
  const start = Math.min(Math.max(1, startBin), n);
  const cs = new Float64Array(n + 1); // sum h
  const cl = new Float64Array(n + 1); // sum h log h
  const cz = new Float64Array(n + 1); // count of non-zero bins
  for (let j = 0; j < n; j++) {
    const h = hist[j];
    cs[j + 1] = cs[j] + h;
    cl[j + 1] = cl[j] + (h > 0 ? h * Math.log(h) : 0);
    cz[j + 1] = cz[j] + (h !== 0 ? 1 : 0);
  }
  const total = cs[n];
  let best = n;
  let bestKl = Infinity;
  for (let i = start; i <= n; i++) {
    const step = i / levels;
    const last = i - 1;
    const hl = hist[last];
    const outliers = total - cs[i];
    const sp = cs[i] + outliers; // = total
    if (sp === 0) continue;
    if (hl === 0 && outliers > 0) continue; // P > 0 where Q = 0: infinite divergence
    // Q's mass: every non-zero source bin gets its group's mean, so sum(q) = sum of the group sums
    // over groups with a non-zero bin = sum(h[0:i]).
    const sq = cs[i];
    if (sq === 0) continue;
    // sum over j < i of p_j log p_j, with p = h / sp except p_last = (h_last + outliers) / sp
    const pl = hl + outliers;
    const sumHlogH = cl[last] + (pl > 0 ? pl * Math.log(pl) : 0); // bins 0..i-2, then the last
    let cross = 0; // sum_j p_j log q_j * sp
    let k0 = 0;
    for (let k = 0; k < levels; k++) {
      const j0 = k === 0 ? 0 : k0;
      const j1 = k === levels - 1 ? i : Math.min(i, Math.ceil((k + 1) * step)); // group k: [j0, j1)
      k0 = j1;
      if (j1 <= j0) continue;
      const nz = cz[j1] - cz[j0];
      if (nz === 0) continue;
      const mass = cs[j1] - cs[j0];
      const lq = Math.log(mass / nz / sq);
      // p mass of the group's bins (the last bin carries the clipped mass too)
      const pm = mass + (j1 === i ? outliers : 0);
      cross += pm * lq;
    }
    const kl = (sumHlogH - cross) / sp - Math.log(sp);
    if (kl <= bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return best;
}

export interface EntropyObserverOptions extends ObserverSpecOptions, HistogramRangeOptions {
  granularity?: 'per-tensor' | { axis: number };
  /** First candidate threshold, in bins, 1 .. 2^20 (default 128). */
  startBin?: number;
  /** Quantization levels of |x|, 1 .. 2^16 (default 2^(bits-1) for signed codes, 2^bits for unsigned: 128 for int8). */
  levels?: number;
}

export class EntropyObserver extends HistBase {
  static readonly observerType: string = 'EntropyObserver';
  private readonly _start: number;
  private readonly _levels: number;
  constructor(opts?: EntropyObserverOptions) {
    const p = parseOptions('options', opts, ['bins', 'startBin', 'levels', 'upsampleRate', 'initialRange', 'memoryLimit']);
    super(p, { abs: true, allowAxis: true });
    this._start = optNumber('startBin', p.own.startBin, 128, 1, 1 << 20, { integer: true });
    this._levels = optNumber('levels', p.own.levels, p.spec.signed ? 2 ** (p.spec.bits - 1) : 2 ** p.spec.bits, 1, 1 << 16, { integer: true });
    checkSearchWork('entropy threshold', ['bins', p.own.bins as number], ['levels', this._levels]);
    p.own.startBin = this._start;
    p.own.levels = this._levels;
  }

  /** @internal */
  protected _rangeOf(g: number): [number, number] {
    const h = this._h;
    const amaxData = Math.max(Math.abs(h.dmin[g]), Math.abs(h.dmax[g]));
    let a = amaxData;
    if (h.lo[g] !== h.hi[g]) {
      const i = entropyThresholdBin(h.view(g), this._levels, this._start);
      a = Math.min(amaxData, h.lo[g] + (i * (h.hi[g] - h.lo[g])) / h.bins);
    }
    return [Math.max(-a, h.dmin[g]), Math.min(a, h.dmax[g])];
  }
}

registerObserver(EntropyObserver as never);
