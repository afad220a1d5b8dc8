// Histogram observers. HistState keeps one histogram per group (per tensor or per channel) over a
// running range, built by the native histogram op (torch.histc's float32 bin formula on every
// path) and re-binned as the range grows the way PyTorch's HistogramObserver does it (1.13:
// _adjust_min_max relaxes the max so that the old bins map onto an upsampled grid, then
// _combine_histograms). HistogramObserver adds PyTorch's L2-norm search over that histogram.
//
// Differences from torch 1.13 (test/golden/observers.json: the scales are bit-identical to torch's
// on every generated case, where torch's own bug below does not bite):
//   * torch 1.13 calls torch.histc(x, bins, min=int(min_val), max=int(max_val)): the histogram range
//     is truncated to integers while the bins are read as spanning the float range. quantkit bins
//     over the float range (what torch computes whenever the range is integer-valued, and what
//     later torch versions pass).
//   * NaN and +-Inf are skipped and counted (torch's min/max would become NaN / Inf).
//   * A range of one value keeps its mass when a later batch widens the range (torch 1.13
//     re-initialises the histogram from the new batch and drops the earlier counts).
//   * Counts are float64 (torch: float32), and the search's L2 error is float64.
//   * The search quantizes into 2^bits levels (torch: 2^8 for its 8-bit dtypes, the same for 8 bits).
// merge(): when both observers hold the same histogram range the counts are added (exactly what
// observing both shards' batches in sequence gives); otherwise this observer's histogram is re-binned
// as torch does when the range grows and the other's is spread proportionally onto the new bins
// (uniform density inside each bin), which agrees with sequential observation up to re-binning.
import { rangeError, typeError } from '../errors';
import { Layout } from '../layout';
import * as native from '../native';
import { qparamsOne, roundHalfEven } from '../qparams';
import { ResolvedSpec } from '../spec';
import {
  batchLayout, checkArrayLength, checkFields, checkGranularity, decCounts, decFA, decGroupShape, encFA, f32, MAX_GROUPS,
  Observer, ObserverQParams, optNumber, ParsedOptions, parseOptions, perGroupWhy, registerObserver, shapeStr,
} from './base';

/** Default memoryLimit of the histogram observers: 1 GiB (26,132 groups at 2048 bins). */
export const DEFAULT_MEMORY_LIMIT = 2 ** 30;
/** Largest memoryLimit accepted: 1 TiB. */
export const MAX_MEMORY_LIMIT = 2 ** 40;

// ---- the bin formula (a replica of native/core/observe.cc hist_params + observe_bin.h) -----------

export interface BinParams {
  lo: number; hi: number; scale: number; loS: number; widthS: number; fbins: number; nbins: number;
}

export function binParams(lo: number, hi: number, nbins: number): BinParams {
  const FMAX = 3.4028234663852886e38;
  let s = 1;
  for (let k = 0; k < 300; k++) {
    const w = f32(f32(hi * s) - f32(lo * s));
    if (Number.isFinite(w) && w <= FMAX) break;
    s *= 0.5;
  }
  return { lo, hi, scale: s, loS: f32(lo * s), widthS: f32(f32(hi * s) - f32(lo * s)), fbins: nbins, nbins };
}

/** The bin of v (lo <= v <= hi) exactly as the native kernels compute it. */
export function binOf(v: number, p: BinParams): number {
  const t = f32(f32(f32(f32(v * p.scale) - p.loS) / p.widthS) * p.fbins);
  return t < p.fbins ? Math.trunc(t) : p.nbins - 1;
}

// ---- re-binning ---------------------------------------------------------------------------------------

/** PyTorch 1.13 _adjust_min_max in float32: the relaxed max, the downsample rate and the start index. */
function adjustMinMax(lo: number, hi: number, cmin: number, cmax: number, bins: number, up: number):
  { cmax: number; ds: number; start: number } | null {
  const hbw = f32(f32(hi - lo) / (bins * up));
  if (!(hbw > 0) || !Number.isFinite(hbw)) return null;
  const unit = f32(bins * hbw);
  const ds = Math.ceil(f32(f32(cmax - cmin) / unit));
  if (!Number.isFinite(ds) || ds < 1 || ds * bins > 2 ** 31) return null;
  const e = f32(f32(ds * unit) - f32(cmax - cmin));
  const cmax2 = f32(cmax + e);
  if (!Number.isFinite(cmax2) || !(cmax2 >= cmax)) return null;
  const start = roundHalfEven(f32(f32(lo - cmin) / hbw));
  return { cmax: cmax2, ds, start };
}

/** PyTorch 1.13 _combine_histograms: old upsampled by `up`, placed at `start` on a grid of bins * ds, summed per ds. */
function combineTorch(old: Float64Array, dst: Float64Array, bins: number, up: number, ds: number, start: number): void {
  const total = bins * ds;
  for (let i = 0; i < bins; i++) {
    const c = old[i];
    if (c === 0) continue;
    const a = start + i * up;
    const b = Math.min(a + up, total);
    if (a >= b) continue;
    for (let j = Math.floor(a / ds); j * ds < b; j++) {
      const ov = Math.min(b, (j + 1) * ds) - Math.max(a, j * ds);
      if (ov > 0) dst[j] += (c * ov) / up;
    }
  }
}

/** Spreads src (bins over [slo, shi], uniform density inside each bin) onto dst's bins over [dlo, dhi]. */
function rebinLinear(src: Float64Array, slo: number, shi: number, dst: Float64Array, dlo: number, dhi: number): void {
  const ns = src.length;
  const nd = dst.length;
  const ws = (shi - slo) / ns;
  const wd = (dhi - dlo) / nd;
  for (let i = 0; i < ns; i++) {
    const c = src[i];
    if (c === 0) continue;
    const a = slo + i * ws;
    const b = a + ws;
    let j = Math.max(0, Math.min(nd - 1, Math.floor((a - dlo) / wd)));
    const jb = Math.max(0, Math.min(nd - 1, Math.floor((b - dlo) / wd)));
    if (j === jb || ws <= 0) {
      dst[j] += c;
      continue;
    }
    for (; j <= jb; j++) {
      const lo = Math.max(a, dlo + j * wd);
      const hi = j === nd - 1 ? b : Math.min(b, dlo + (j + 1) * wd);
      if (hi > lo) dst[j] += (c * (hi - lo)) / ws;
    }
  }
}

function sum(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

/**
 * One histogram per group (and per layer: layer 0 counts values, layer 1 is an optional weighted
 * histogram on the same bins). A group is empty (lo = +Infinity), degenerate (lo = hi: all its
 * mass, in bin 0, sits at that one value) or a histogram over [lo, hi].
 */
export class HistState {
  readonly bins: number;
  readonly up: number;
  readonly abs: boolean;
  readonly layers: number;
  groupShape: number[] | null = null;
  lo = new Float32Array(0);
  hi = new Float32Array(0);
  /** finite data min / max per group (signed values, also in |x| mode) */
  dmin = new Float32Array(0);
  dmax = new Float32Array(0);
  hist = new Float64Array(0);

  /** The range every group starts with (option initialRange), or null: the first batch's. */
  readonly initial: [number, number] | null;
  /** Bytes the histograms and the working buffers of one observe() may take (option memoryLimit). */
  readonly memoryLimit: number;

  constructor(bins: number, up: number, abs: boolean, layers: number, initial: [number, number] | null = null, memoryLimit = DEFAULT_MEMORY_LIMIT) {
    this.bins = bins;
    this.up = up;
    this.abs = abs;
    this.layers = layers;
    this.initial = initial;
    this.memoryLimit = memoryLimit;
  }

  get groups(): number {
    return this.lo.length;
  }

  /**
   * Peak bytes per group: its counts (8 bytes per bin and layer) and, while observe() bins a
   * batch, the batch's counts (8 per bin and layer) and the native op's 32-bit counters (4 per bin),
   * plus under 128 bytes of ranges and bookkeeping.
   */
  get bytesPerGroup(): number {
    return this.bins * (16 * this.layers + 4) + 128;
  }

  /** Most groups memoryLimit allows. */
  get maxGroups(): number {
    return Math.min(MAX_GROUPS, Math.floor(this.memoryLimit / this.bytesPerGroup));
  }

  /** Throws (before anything is allocated) when `groups` histograms would not fit memoryLimit. */
  checkGroups(name: string, groups: number, received: string): void {
    if (groups <= this.maxGroups) return;
    throw rangeError(name, `at most ${this.maxGroups} groups (memoryLimit ${this.memoryLimit} bytes, ${this.bytesPerGroup} bytes per group at ${this.bins} bins)`,
      `${received}; use fewer bins or a larger memoryLimit`);
  }

  /** Bytes held: the ranges and the counts. */
  get byteLength(): number {
    return this.lo.byteLength + this.hi.byteLength + this.dmin.byteLength + this.dmax.byteLength + this.hist.byteLength;
  }

  /** Allocates the groups' ranges and histograms; callers check the size first (checkGroups). */
  init(shape: number[]): void {
    const g = shape.reduce((a, b) => a * b, 1);
    this.groupShape = shape.slice();
    this.lo = new Float32Array(g).fill(this.initial ? this.initial[0] : Infinity);
    this.hi = new Float32Array(g).fill(this.initial ? this.initial[1] : -Infinity);
    this.dmin = new Float32Array(g).fill(Infinity);
    this.dmax = new Float32Array(g).fill(-Infinity);
    this.hist = new Float64Array(g * this.layers * this.bins);
  }

  reset(): void {
    this.groupShape = null;
    this.lo = new Float32Array(0);
    this.hi = new Float32Array(0);
    this.dmin = new Float32Array(0);
    this.dmax = new Float32Array(0);
    this.hist = new Float64Array(0);
  }

  /** Histogram of group g, layer k (a view). */
  view(g: number, k = 0): Float64Array {
    const o = (g * this.layers + k) * this.bins;
    return this.hist.subarray(o, o + this.bins);
  }

  /**
   * Folds one batch in. mm: the batch's finite min / max per group. weighted(lo, hi, out): adds the
   * batch's layer-1 histogram over the given per-group ranges (for layers = 2).
   */
  observe(x: Float32Array, L: Layout, mm: { min: Float32Array; max: Float32Array },
    weighted?: (lo: Float32Array, hi: Float32Array, out: Float64Array[]) => void): void {
    if (this.groupShape === null) {
      this.checkGroups('shape', L.groups, `a shape giving ${L.groups} groups`);
      this.init(L.scaleShape);
    }
    else if (L.groups !== this.groups || JSON.stringify(L.scaleShape) !== JSON.stringify(this.groupShape)) {
      throw rangeError('shape', `a shape giving ${this.groups} groups (as the earlier batches)`, `a shape giving ${L.groups} groups`);
    }
    const G = this.groups;
    const bins = this.bins;
    const nlo = new Float32Array(G); // new range per group
    const nhi = new Float32Array(G);
    const qlo = new Float32Array(G); // range passed to the native op (lo < hi)
    const qhi = new Float32Array(G);
    // what to do with each group's histogram (typed: nothing per group beyond these arrays)
    const SKIP = 0;
    const INIT = 1;
    const ADD = 2;
    const TORCH = 3;
    const LINEAR = 4;
    const kind = new Uint8Array(G);
    const dsOf = new Float64Array(G); // TORCH: downsample rate and start index
    const startOf = new Float64Array(G);
    for (let g = 0; g < G; g++) {
      let bmin = mm.min[g];
      let bmax = mm.max[g];
      qlo[g] = 0;
      qhi[g] = 1;
      if (!(bmin <= bmax)) {
        kind[g] = SKIP;
        continue;
      }
      if (bmin < this.dmin[g]) this.dmin[g] = bmin;
      if (bmax > this.dmax[g]) this.dmax[g] = bmax;
      if (this.abs) {
        bmax = Math.max(Math.abs(bmin), Math.abs(bmax));
        bmin = 0; // |x| histograms always start at 0
      }
      const lo = this.lo[g];
      const hi = this.hi[g];
      if (lo === Infinity) {
        nlo[g] = bmin;
        nhi[g] = bmax;
        kind[g] = INIT;
      } else {
        const cmin = Math.min(bmin, lo);
        let cmax = Math.max(bmax, hi);
        if (lo === hi || cmin === cmax) {
          nlo[g] = cmin;
          nhi[g] = cmax;
          kind[g] = cmin === lo && cmax === hi ? ADD : LINEAR;
        } else {
          const adj = adjustMinMax(lo, hi, cmin, cmax, bins, this.up);
          if (adj === null) {
            nlo[g] = cmin;
            nhi[g] = cmax;
            kind[g] = LINEAR;
          } else {
            cmax = adj.cmax;
            nlo[g] = cmin;
            nhi[g] = cmax;
            if (cmin === lo && cmax === hi) kind[g] = ADD;
            else {
              kind[g] = TORCH;
              dsOf[g] = adj.ds;
              startOf[g] = adj.start;
            }
          }
        }
      }
      // torch.histc over [v - 1, v + 1] when the range is one value
      if (nlo[g] === nhi[g]) {
        qlo[g] = f32(nlo[g] - 1);
        qhi[g] = f32(nhi[g] + 1);
        if (!(qlo[g] < qhi[g])) {
          qlo[g] = f32(nlo[g] - Math.abs(nlo[g]) * 1e-6);
          qhi[g] = f32(nhi[g] + Math.abs(nhi[g]) * 1e-6);
        }
      } else {
        qlo[g] = nlo[g];
        qhi[g] = nhi[g];
      }
    }
    // the batch's counts, layer by layer: group g of layer k at (k * G + g) * bins
    const batch = new Float64Array(G * bins * (this.layers > 1 && weighted ? this.layers : 1));
    native.histogram({ x, counts: batch.subarray(0, G * bins), lo: qlo, hi: qhi, bins, abs: this.abs, layout: L });
    if (this.layers > 1 && weighted) {
      const w: Float64Array[] = [];
      for (let g = 0; g < G; g++) w.push(batch.subarray((G + g) * bins, (G + g + 1) * bins));
      weighted(qlo, qhi, w);
    }
    const batchLayers = batch.length / (G * bins);
    const zeros = new Float64Array(bins);
    const next = new Float64Array(bins);
    for (let g = 0; g < G; g++) {
      const p = kind[g];
      if (p === SKIP) continue;
      const degenerate = nlo[g] === nhi[g];
      for (let k = 0; k < this.layers; k++) {
        const cur = this.view(g, k);
        const b = k < batchLayers ? batch.subarray((k * G + g) * bins, (k * G + g + 1) * bins) : zeros;
        const add0 = degenerate ? sum(b) : 0; // a one-value range keeps its mass in bin 0
        if (p === INIT) {
          cur.fill(0);
          if (degenerate) cur[0] = add0;
          else cur.set(b);
        } else if (p === ADD) {
          if (degenerate) cur[0] += add0;
          else for (let i = 0; i < bins; i++) cur[i] += b[i];
        } else {
          next.fill(0);
          this._rebinInto(g, cur, next, nlo[g], nhi[g], p === TORCH ? { ds: dsOf[g], start: startOf[g] } : null);
          if (degenerate) next[0] += add0;
          else for (let i = 0; i < bins; i++) next[i] += b[i];
          cur.set(next);
        }
      }
      this.lo[g] = nlo[g];
      this.hi[g] = nhi[g];
    }
  }

  /** Moves group g's histogram `cur` (over this.lo/hi[g]) onto [nlo, nhi] into `next`. */
  private _rebinInto(g: number, cur: Float64Array, next: Float64Array, nlo: number, nhi: number,
    torch: { ds: number; start: number } | null): void {
    const lo = this.lo[g];
    const hi = this.hi[g];
    if (lo === hi) {
      // one value: all the mass goes to the bin of that value
      const m = cur[0];
      if (nlo === nhi) next[0] += m;
      else next[binOf(lo, binParams(nlo, nhi, this.bins))] += m;
      return;
    }
    if (torch) combineTorch(cur, next, this.bins, this.up, torch.ds, torch.start);
    else rebinLinear(cur, lo, hi, next, nlo, nhi);
  }

  /** Adds other's histograms (same bins, layers, groups) into this one, re-binning onto the union range. */
  merge(o: HistState): void {
    if (o.groupShape === null) return;
    if (this.groupShape === null) {
      this.checkGroups('other', o.groups, `${shapeStr(o.groupShape)} (${o.groups} groups)`);
      this.init(o.groupShape);
    } else if (JSON.stringify(o.groupShape) !== JSON.stringify(this.groupShape)) {
      throw rangeError('other', `an observer with groups of shape [${this.groupShape.join(', ')}]`, `groups of shape [${o.groupShape.join(', ')}]`);
    }
    const bins = this.bins;
    for (let g = 0; g < this.groups; g++) {
      if (o.dmin[g] === Infinity) continue; // nothing observed there
      const mine = this.dmin[g] !== Infinity;
      this.dmin[g] = Math.min(this.dmin[g], o.dmin[g]);
      this.dmax[g] = Math.max(this.dmax[g], o.dmax[g]);
      if (!mine) {
        this.lo[g] = o.lo[g];
        this.hi[g] = o.hi[g];
        for (let k = 0; k < this.layers; k++) this.view(g, k).set(o.view(g, k));
        continue;
      }
      const lo = this.lo[g];
      const hi = this.hi[g];
      const cmin = Math.min(lo, o.lo[g]);
      let cmax = Math.max(hi, o.hi[g]);
      let torch: { ds: number; start: number } | null = null;
      if (lo !== hi && cmin !== cmax) {
        const adj = adjustMinMax(lo, hi, cmin, cmax, bins, this.up);
        if (adj) {
          cmax = adj.cmax;
          torch = { ds: adj.ds, start: adj.start };
        }
      }
      for (let k = 0; k < this.layers; k++) {
        const cur = this.view(g, k);
        const oh = o.view(g, k);
        const next = new Float64Array(bins);
        if (cmin === lo && cmax === hi) next.set(cur);
        else this._rebinInto(g, cur, next, cmin, cmax, torch);
        // other's histogram onto the (possibly new) range
        if (o.lo[g] === cmin && o.hi[g] === cmax) {
          for (let i = 0; i < bins; i++) next[i] += oh[i];
        } else if (o.lo[g] === o.hi[g]) {
          if (cmin === cmax) next[0] += oh[0];
          else next[binOf(o.lo[g], binParams(cmin, cmax, bins))] += oh[0];
        } else {
          rebinLinear(oh, o.lo[g], o.hi[g], next, cmin, cmax);
        }
        cur.set(next);
      }
      this.lo[g] = cmin;
      this.hi[g] = cmax;
    }
  }

  toJSON(): Record<string, unknown> {
    return {
      groupShape: this.groupShape,
      lo: encFA(this.lo),
      hi: encFA(this.hi),
      dataMin: encFA(this.dmin),
      dataMax: encFA(this.dmax),
      hist: Array.from(this.hist),
    };
  }

  /**
   * Loads toJSON() output (state.state), checking every field; the group count against
   * memoryLimit and every array's length come before anything per group is allocated.
   */
  load(s: Record<string, unknown>, spec: ResolvedSpec): void {
    const arrays = ['lo', 'hi', 'dataMin', 'dataMax', 'hist'];
    checkFields('state.state', s, ['groupShape', ...arrays]);
    const gs = decGroupShape(s.groupShape, spec);
    const G = gs === null ? 0 : gs.groups;
    if (gs !== null) this.checkGroups('state.state.groupShape', G, `${shapeStr(gs.shape)} (${G} groups)`);
    const why = perGroupWhy(gs && gs.shape);
    for (const k of arrays.slice(0, 4)) {
      if (gs !== null || s[k] !== undefined) checkArrayLength(`state.state.${k}`, s[k], G, why);
    }
    const histLen = G * this.layers * this.bins;
    if (gs !== null || s.hist !== undefined) {
      checkArrayLength('state.state.hist', s.hist, histLen, gs === null ? why
        : `${this.bins} bins${this.layers > 1 ? ` in ${this.layers} layers` : ''} for each of ${G} group${G === 1 ? '' : 's'}: state.state.groupShape is ${shapeStr(gs.shape)}`);
    }
    if (gs === null) {
      this.reset();
      return;
    }
    const lo = decFA('state.state.lo', s.lo, G);
    const hi = decFA('state.state.hi', s.hi, G);
    const dmin = decFA('state.state.dataMin', s.dataMin, G);
    const dmax = decFA('state.state.dataMax', s.dataMax, G);
    this.init(gs.shape);
    decCounts('state.state.hist', s.hist, histLen, this.hist);
    for (let g = 0; g < G; g++) {
      const noRange = lo[g] === Infinity && hi[g] === -Infinity;
      const ok = noRange || (Number.isFinite(lo[g]) && Number.isFinite(hi[g]) && lo[g] <= hi[g] && f32(lo[g]) === lo[g] && f32(hi[g]) === hi[g]);
      if (!ok) throw rangeError(`state.state.lo[${g}]`, 'float32 values with lo <= hi (or Infinity / -Infinity for an empty group)', `${lo[g]}, hi ${hi[g]}`);
      const empty = dmin[g] === Infinity && dmax[g] === -Infinity;
      const dok = empty || (!noRange && Number.isFinite(dmin[g]) && Number.isFinite(dmax[g]) && dmin[g] <= dmax[g] &&
        f32(dmin[g]) === dmin[g] && f32(dmax[g]) === dmax[g]);
      if (!dok) throw rangeError(`state.state.dataMin[${g}]`, 'float32 values with dataMin <= dataMax (or Infinity / -Infinity for an empty group)', `${dmin[g]}, dataMax ${dmax[g]}`);
      if (noRange && this.initial) throw rangeError(`state.state.lo[${g}]`, `a range (the observer has initialRange [${this.initial.join(', ')}])`, 'Infinity');
      if (this.abs && !noRange && lo[g] !== 0) throw rangeError(`state.state.lo[${g}]`, '0 (a histogram of |x|)', String(lo[g]));
      if (empty) {
        for (let k = 0; k < this.layers; k++) if (sum(this.view(g, k)) !== 0) throw rangeError(`state.state.hist`, 'zeros for an empty group', `counts in group ${g}`);
      }
      if (!noRange && lo[g] === hi[g]) {
        // a one-value range keeps all its mass in bin 0
        for (let k = 0; k < this.layers; k++) {
          const v = this.view(g, k);
          for (let i = 1; i < this.bins; i++) {
            if (v[i] !== 0) {
              throw rangeError(`state.state.hist[${(g * this.layers + k) * this.bins + i}]`, `0 (group ${g} has a one-value range: its mass is in its bin 0)`, String(v[i]));
            }
          }
        }
      }
      this.lo[g] = lo[g];
      this.hi[g] = hi[g];
      this.dmin[g] = dmin[g];
      this.dmax[g] = dmax[g];
    }
  }
}

// ---- PyTorch's L2 search (HistogramObserver._non_linear_param_search) -------------------------------

/** L2 error of quantizing the histogram's [startBin, endBin] into dstBins levels (uniform density per bin). */
function quantError(hist: Float64Array, binWidth: number, start: number, end: number, dstBins: number): number {
  const bins = hist.length;
  const dstW = (binWidth * (end - start + 1)) / dstBins;
  if (dstW === 0) return 0;
  const norm3 = (a: number, b: number) => (b * b * b - a * a * a) / 3;
  const half = dstW / 2;
  let total = 0;
  for (let i = 0; i < bins; i++) {
    const c = hist[i];
    if (c === 0) continue;
    const density = c / binWidth;
    const sb = (i - start) * binWidth;
    const se = sb + binWidth;
    const db = Math.min(Math.max(Math.floor(sb / dstW), 0), dstBins - 1);
    const de = Math.min(Math.max(Math.floor(se / dstW), 0), dstBins - 1);
    const dbc = (db + 0.5) * dstW;
    let n = density * norm3(sb - dbc, half);
    n += (de - db - 1) * density * norm3(-half, half);
    const dec = de * dstW + half;
    n += density * norm3(-half, se - dec);
    total += n;
  }
  return total;
}

/** [newMin, newMax] of PyTorch's search over a histogram of [lo, hi] (float32 results as torch's tensors). */
export function torchHistogramSearch(hist: Float64Array, lo: number, hi: number, dstBins: number): [number, number] {
  const bins = hist.length;
  const binWidth32 = f32(f32(hi - lo) / bins);
  const binWidth = (hi - lo) / bins; // torch: (max_val.item() - min_val.item()) / bins in double
  let total = 0;
  const cSum = new Float64Array(bins);
  for (let i = 0; i < bins; i++) {
    total += hist[i];
    cSum[i] = total;
  }
  const step = 1e-5;
  let alpha = 0;
  let beta = 1;
  let start = 0;
  let end = bins - 1;
  let normMin = Infinity;
  while (alpha < beta) {
    const na = alpha + step;
    const nb = beta - step;
    let l = start;
    let r = end;
    while (l < end && cSum[l] < na * total) l++;
    while (r > start && cSum[r] > nb * total) r--;
    let ns = start;
    let ne = end;
    if (l - start > end - r) {
      ns = l;
      alpha = na;
    } else {
      ne = r;
      beta = nb;
    }
    if (ns === start && ne === end) continue;
    const norm = quantError(hist, binWidth, ns, ne, dstBins);
    if (norm > normMin) break;
    normMin = norm;
    start = ns;
    end = ne;
  }
  if (!Number.isFinite(binWidth32)) return [f32(lo + binWidth * start), f32(lo + binWidth * (end + 1))]; // width overflows float32
  return [f32(lo + f32(binWidth32 * start)), f32(lo + f32(binWidth32 * (end + 1)))];
}

// ---- the observer base for histogram observers -------------------------------------------------------

export abstract class HistBase extends Observer {
  /** @internal */ protected _h: HistState;

  protected constructor(p: ParsedOptions, o: { abs: boolean; layers?: number; allowAxis: boolean; defaultBins?: number }) {
    super(p);
    checkGranularity('granularity', p.spec, o.allowAxis, false);
    const bins = optNumber('bins', p.own.bins, o.defaultBins ?? 2048, 1, 1 << 20, { integer: true });
    const up = optNumber('upsampleRate', p.own.upsampleRate, 128, 1, 4096, { integer: true });
    const memoryLimit = optNumber('memoryLimit', p.own.memoryLimit, DEFAULT_MEMORY_LIMIT, 1, MAX_MEMORY_LIMIT, { integer: true });
    p.own.bins = bins;
    p.own.upsampleRate = up;
    p.own.memoryLimit = memoryLimit;
    let initial: [number, number] | null = null;
    const ir = p.own.initialRange;
    if (ir !== undefined) {
      const bad = () => rangeError('initialRange', 'an array [lo, hi] of finite numbers with lo < hi', Array.isArray(ir) ? JSON.stringify(ir) : String(ir));
      if (!Array.isArray(ir)) throw typeError('initialRange', 'an array [lo, hi] of finite numbers with lo < hi', ir);
      if (ir.length !== 2 || typeof ir[0] !== 'number' || typeof ir[1] !== 'number') throw bad();
      const a = f32(ir[0]);
      const b = f32(ir[1]);
      if (!Number.isFinite(a) || !Number.isFinite(b) || !(a < b)) throw bad();
      initial = o.abs ? [0, Math.max(Math.abs(a), Math.abs(b))] : [a, b];
      p.own.initialRange = [a, b];
    }
    this._h = new HistState(bins, up, o.abs, o.layers ?? 1, initial, memoryLimit);
  }

  observe(x: Float32Array, shape?: readonly number[]): this {
    const b = batchLayout(x, shape, this.spec, false);
    if (b.x.length === 0) return this;
    const received = `${shapeStr(shape ?? [b.x.length])} (${b.L.groups} groups)`;
    if (this._h.groupShape === null) this._h.checkGroups('shape', b.L.groups, received); // before any per-group allocation
    else if (b.L.groups !== this._h.groups) throw rangeError('shape', `a shape giving ${this._h.groups} groups (as the earlier batches)`, received);
    const mm = native.minMax(b.x, b.L);
    this._observeBatch(b.x, b.L, mm, shape ?? [b.x.length]);
    this._count(b.x.length, mm.nanCount, mm.infCount);
    return this;
  }

  /** @internal */
  protected _observeBatch(x: Float32Array, L: Layout, mm: { min: Float32Array; max: Float32Array }, _shape: readonly number[]): void {
    this._h.observe(x, L, mm);
  }

  /** @internal the clipping range [lo, hi] of group g (which has data). */
  protected abstract _rangeOf(g: number): [number, number];

  calculateQParams(): ObserverQParams {
    const h = this._h;
    if (h.groupShape === null) {
      return { scale: Float32Array.of(1), zeroPoint: Int32Array.of(0), min: Float32Array.of(Infinity), max: Float32Array.of(-Infinity) };
    }
    const G = h.groups;
    const out = { scale: new Float32Array(G), zeroPoint: new Int32Array(G), min: new Float32Array(G), max: new Float32Array(G) };
    for (let g = 0; g < G; g++) {
      let lo = Infinity;
      let hi = -Infinity;
      if (h.dmin[g] !== Infinity) [lo, hi] = this._rangeOf(g);
      const [s, z] = qparamsOne(f32(lo), f32(hi), this.spec);
      out.scale[g] = s;
      out.zeroPoint[g] = z;
      out.min[g] = lo;
      out.max[g] = hi;
    }
    return out;
  }

  /** @internal */ protected _resetState(): void { this._h.reset(); }
  /** @internal */ protected _ownJSON(): Record<string, unknown> { return { ...this._own }; }
  /** @internal */ protected _stateJSON(): Record<string, unknown> { return this._h.toJSON(); }
  /** @internal */ protected _loadState(s: Record<string, unknown>): void { this._h.load(s, this.spec); }
  /** @internal */ protected _mergeState(o: this): void { this._h.merge(o._h); }
  /** @internal */ protected _byteLength(): number { return this._h.byteLength; }
  /** @internal memoryLimit bounds memory, not results: observers with different limits merge. */
  protected override _mergeOptionsJSON(): Record<string, unknown> {
    const o = { ...this._own };
    delete o.memoryLimit;
    return o;
  }
}

/** The spec fields every observer takes (lib/spec.ts); each observer narrows granularity itself. */
export interface ObserverSpecOptions {
  scheme?: 'symmetric' | 'asymmetric';
  bits?: number;
  signed?: boolean;
  range?: 'restricted' | 'full';
  formula?: 'onnx' | 'pytorch';
}

/** Options of the histogram-based observers. */
export interface HistogramRangeOptions {
  /** Histogram bins per group, 1 .. 2^20 (default 2048). */
  bins?: number;
  /** Upsampling of the old histogram when the range grows, 1 .. 4096 (default 128). */
  upsampleRate?: number;
  /**
   * Bytes the histograms may take, 1 .. 2^40 (default 2^30, 1 GiB): groups * (bins * (16 * layers
   * + 4) + 128) must fit (layers: 2 for SoftmaxCrossEntropyObserver, else 1), i.e. each group's
   * float64 counts plus the working buffers of one observe(). Checked before the first allocation
   * (the first observe(), merge into an empty observer, fromJSON): a per-channel observer over too
   * many channels throws a RangeError instead of allocating. At 2048 bins: 26,132 groups (41,088
   * bytes each). Results do not depend on it; observers with different limits merge.
   */
  memoryLimit?: number;
  /**
   * Start every group's histogram over this range (|x| observers: [0, max |lo|, |hi|]). Shards built
   * with the same initialRange (e.g. from a merged MinMaxObserver pass) merge exactly.
   */
  initialRange?: [number, number];
}

export interface HistogramObserverOptions extends ObserverSpecOptions, HistogramRangeOptions {
  /** 'per-tensor' only (as PyTorch's HistogramObserver). */
  granularity?: 'per-tensor';
}

/**
 * PyTorch's HistogramObserver: a 2048-bin histogram over the running range, re-binned as the range
 * grows, and the search that trims the histogram's CDF from whichever side removes more mass while
 * the L2 quantization error (uniform density per bin) decreases.
 */
export class HistogramObserver extends HistBase {
  static readonly observerType: string = 'HistogramObserver';
  constructor(opts?: HistogramObserverOptions) {
    super(parseOptions('options', opts, ['bins', 'upsampleRate', 'initialRange', 'memoryLimit']), { abs: false, allowAxis: false });
  }

  /** @internal */
  protected _rangeOf(g: number): [number, number] {
    const h = this._h;
    if (h.lo[g] === h.hi[g]) return [h.lo[g], h.hi[g]];
    return torchHistogramSearch(h.view(g), h.lo[g], h.hi[g], 2 ** this.spec.bits);
  }
}

registerObserver(HistogramObserver as never);
