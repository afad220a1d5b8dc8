// Statistics of one tensor for the analysis: a display histogram, moments and per-channel
// spread, and the SQNR a set of qparams gives. Everything accumulates batch by batch, so an
// activation tensor is never held whole.
import { codeRange, fakeQuantize } from '../index';

/** 10 log10(signal / noise) in dB; Infinity when the noise is 0 (exact), -Infinity when the signal is 0 and the noise is not. */
export function sqnrDb(signal: number, noise: number): number {
  if (noise === 0) return Infinity;
  if (signal === 0) return -Infinity;
  return 10 * Math.log10(signal / noise);
}

/** A histogram over [lo, hi] with counts per bin (values outside are counted in the end bins). */
export interface Histogram {
  lo: number;
  hi: number;
  counts: number[];
}

/** Per-channel and whole-tensor moments of values laid out as rows x channels (or channels x cols). */
export class Moments {
  readonly count: Float64Array;
  readonly sum: Float64Array;
  readonly sumSq: Float64Array;
  readonly min: Float64Array;
  readonly max: Float64Array;
  nonFinite = 0;

  constructor(readonly channels: number) {
    this.count = new Float64Array(channels);
    this.sum = new Float64Array(channels);
    this.sumSq = new Float64Array(channels);
    this.min = new Float64Array(channels).fill(Infinity);
    this.max = new Float64Array(channels).fill(-Infinity);
  }

  /**
   * Adds values; channelOf(i) is (i % channels) for rows x channels (activations) and
   * floor(i / cols) for channels x cols (weights): `rowMajorChannels` picks the latter.
   */
  add(x: Float32Array, rowMajorChannels = false): void {
    const C = this.channels;
    const cols = rowMajorChannels ? x.length / C : 0;
    const { count, sum, sumSq, min, max } = this;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (!Number.isFinite(v)) { this.nonFinite++; continue; }
      const c = rowMajorChannels ? Math.floor(i / cols) : i % C;
      count[c]++;
      sum[c] += v;
      sumSq[c] += v * v;
      if (v < min[c]) min[c] = v;
      if (v > max[c]) max[c] = v;
    }
  }

  total(): { count: number; min: number; max: number; mean: number; std: number; absMax: number; sumSq: number } {
    let n = 0, s = 0, ss = 0, mn = Infinity, mx = -Infinity;
    for (let c = 0; c < this.channels; c++) {
      n += this.count[c]; s += this.sum[c]; ss += this.sumSq[c];
      if (this.min[c] < mn) mn = this.min[c];
      if (this.max[c] > mx) mx = this.max[c];
    }
    const mean = n > 0 ? s / n : 0;
    const std = n > 0 ? Math.sqrt(Math.max(0, ss / n - mean * mean)) : 0;
    return { count: n, min: n > 0 ? mn : 0, max: n > 0 ? mx : 0, mean, std, absMax: n > 0 ? Math.max(-mn, mx) : 0, sumSq: ss };
  }

  /** Per channel: max |x|, the standard deviation, and their ratio (0 for a constant channel). */
  perChannel(): { absMax: number[]; std: number[]; spread: number[] } {
    const absMax: number[] = [], std: number[] = [], spread: number[] = [];
    for (let c = 0; c < this.channels; c++) {
      const n = this.count[c];
      const a = n > 0 ? Math.max(-this.min[c], this.max[c]) : 0;
      const m = n > 0 ? this.sum[c] / n : 0;
      const sd = n > 0 ? Math.sqrt(Math.max(0, this.sumSq[c] / n - m * m)) : 0;
      absMax.push(a);
      std.push(sd);
      spread.push(sd > 0 ? a / sd : 0);
    }
    return { absMax, std, spread };
  }
}

/** Fills a histogram of `bins` bins over [lo, hi]; non-finite values are skipped. */
export class HistogramAcc {
  readonly counts: Float64Array;
  constructor(readonly lo: number, readonly hi: number, bins: number) {
    this.counts = new Float64Array(bins);
  }
  add(x: Float32Array): void {
    const n = this.counts.length;
    const lo = this.lo;
    const w = this.hi - lo;
    const k = w > 0 ? n / w : 0;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (!Number.isFinite(v)) continue;
      let b = Math.floor((v - lo) * k);
      if (b < 0) b = 0; else if (b >= n) b = n - 1;
      this.counts[b]++;
    }
  }
  result(): Histogram {
    return { lo: this.lo, hi: this.hi, counts: Array.from(this.counts) };
  }
}

/** The qparams and spec of one quantization to measure: per tensor, or per channel along `axis`. */
export interface QuantConfig {
  scheme: 'symmetric' | 'asymmetric';
  bits: number;
  axis: number | null;
  scale: Float32Array;
  zeroPoint: Int32Array;
}

/** Sum of squared errors of fake-quantizing batches with one config, plus the clipped count (per-tensor configs). */
export class NoiseAcc {
  noise = 0;
  clipped = 0;
  private buf = new Float32Array(0);
  private readonly lo: number;
  private readonly hi: number;
  constructor(readonly cfg: QuantConfig) {
    const [qmin, qmax] = specCodes(cfg.scheme, cfg.bits);
    const s = cfg.scale[0], z = cfg.zeroPoint[0];
    this.lo = cfg.axis === null ? (qmin - z) * s : -Infinity;
    this.hi = cfg.axis === null ? (qmax - z) * s : Infinity;
  }
  /** x with `shape` (per-channel configs quantize along cfg.axis of it). */
  add(x: Float32Array, shape: number[]): void {
    if (this.buf.length < x.length) this.buf = new Float32Array(x.length);
    const out = this.buf.subarray(0, x.length);
    const c = this.cfg;
    fakeQuantize(x, shape, { scale: c.scale, zeroPoint: c.zeroPoint }, {
      scheme: c.scheme, bits: c.bits, granularity: c.axis === null ? 'per-tensor' : { axis: c.axis }, out,
    });
    let e = 0;
    let clip = 0;
    const { lo, hi } = this;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (!Number.isFinite(v)) continue;
      const d = v - out[i];
      e += d * d;
      if (v < lo || v > hi) clip++;
    }
    this.noise += e;
    this.clipped += clip;
  }
}

/** Codes of the analysis' specs: symmetric signed restricted (weights), asymmetric unsigned (activations). */
export function specCodes(scheme: 'symmetric' | 'asymmetric', bits: number): [number, number] {
  return codeRange(scheme, bits, scheme === 'symmetric', 'restricted');
}

/** The median of numbers (0 for none). */
export function median(a: readonly number[]): number {
  if (a.length === 0) return 0;
  const s = a.slice().sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
