// Min/max observers: PyTorch's MinMaxObserver, MovingAverageMinMaxObserver,
// PerChannelMinMaxObserver and MovingAveragePerChannelMinMaxObserver (torch.ao.quantization),
// on quantkit's native min/max (vectorised on every path; NaN / Inf skipped and counted).
import { rangeError, typeError } from '../errors';
import * as native from '../native';
import { computeQParamsFromMinMax } from '../qparams';
import {
  batchLayout, checkArrayLength, checkFields, checkGranularity, decFA, decGroupShape, decInt, encFA, f32, Observer,
  ObserverQParams, parseOptions, optNumber, ParsedOptions, perGroupWhy, registerObserver,
} from './base';

/** Options shared by the min/max observers: the QuantSpec fields. */
export interface MinMaxObserverOptions {
  scheme?: 'symmetric' | 'asymmetric';
  bits?: number;
  signed?: boolean;
  range?: 'restricted' | 'full';
  /** 'per-tensor' (default), { axis } or { axis, blockSize } (the per-channel classes set { axis }). */
  granularity?: 'per-tensor' | { axis: number } | { axis: number; blockSize: number };
  formula?: 'onnx' | 'pytorch';
}
export interface MovingAverageOptions extends MinMaxObserverOptions {
  /** Weight of each new batch's min / max: min += c * (batchMin - min). Default 0.01 (PyTorch). */
  averagingConstant?: number;
}
export interface PerChannelOptions extends Omit<MinMaxObserverOptions, 'granularity'> {
  /** The channel axis (negative counts from the end). Default 0 (PyTorch's ch_axis). */
  axis?: number;
  granularity?: { axis: number };
}
export interface MovingAveragePerChannelOptions extends PerChannelOptions {
  averagingConstant?: number;
}

function perChannelParse(name: string, opts: unknown, ownKeys: readonly string[]): ParsedOptions {
  const p = parseOptions(name, opts, ownKeys);
  const g = p.specInput.granularity as unknown;
  let axis = p.own.axis;
  if (axis !== undefined && (typeof axis !== 'number' || !Number.isInteger(axis))) throw typeError(`${name}.axis`, 'an integer', axis);
  if (g !== undefined) {
    const ga = typeof g === 'object' && g !== null && !Array.isArray(g) && Object.keys(g).length === 1 ? (g as { axis?: unknown }).axis : undefined;
    if (typeof ga !== 'number' || !Number.isInteger(ga)) throw rangeError(`${name}.granularity`, '{ axis } (a per-channel observer)', JSON.stringify(g));
    if (axis !== undefined && axis !== ga) throw rangeError(`${name}.granularity`, `{ axis: ${String(axis)} } (the axis option)`, JSON.stringify(g));
    axis = ga;
  }
  if (axis === undefined) axis = 0;
  const q = parseOptions(name, { ...(opts as object), granularity: { axis } }, ownKeys);
  q.own.axis = axis;
  return q;
}

/** The four min/max observers: a running (or moving-average) min and max per group. */
abstract class MinMaxBase extends Observer {
  /** @internal */ protected _min = new Float32Array(0);
  /** @internal */ protected _max = new Float32Array(0);
  /** @internal */ protected _groupShape: number[] | null = null;
  /** @internal moving average only: EMA steps taken per group, and the first batch's min / max. */
  protected _steps = new Float64Array(0);
  protected _firstMin = new Float32Array(0);
  protected _firstMax = new Float32Array(0);
  /** @internal */ protected readonly _c: number | null;

  protected constructor(p: ParsedOptions, moving: boolean) {
    super(p);
    checkGranularity('granularity', p.spec, true, true);
    this._c = moving ? f32(optNumber('averagingConstant', p.own.averagingConstant, 0.01, 0, 1, { openLo: true })) : null;
    if (moving) p.own.averagingConstant = p.own.averagingConstant ?? 0.01;
  }

  observe(x: Float32Array, shape?: readonly number[]): this {
    const b = batchLayout(x, shape, this.spec, true);
    if (b.x.length === 0) return this;
    const L = b.L;
    const mm = native.minMax(b.x, L);
    if (this._groupShape === null) this._init(L.groups, L.scaleShape);
    else if (L.groups !== this._min.length || JSON.stringify(L.scaleShape) !== JSON.stringify(this._groupShape)) {
      throw rangeError('shape', `a shape giving ${this._min.length} groups of shape [${this._groupShape.join(', ')}] (as the earlier batches)`, `[${(shape ?? [b.x.length]).join(', ')}] (groups [${L.scaleShape.join(', ')}])`);
    }
    this._count(b.x.length, mm.nanCount, mm.infCount);
    for (let g = 0; g < L.groups; g++) this._fold(g, mm.min[g], mm.max[g]);
    return this;
  }

  /** @internal one batch's (finite) min / max of group g. */
  private _fold(g: number, bmin: number, bmax: number): void {
    if (!(bmin <= bmax)) return; // no finite value in this group
    if (this._c === null) {
      if (bmin < this._min[g]) this._min[g] = bmin;
      if (bmax > this._max[g]) this._max[g] = bmax;
      return;
    }
    if (this._steps[g] === 0) {
      this._min[g] = bmin;
      this._max[g] = bmax;
      this._firstMin[g] = bmin;
      this._firstMax[g] = bmax;
    } else {
      // PyTorch, in float32: min_val + c * (min_val_cur - min_val)
      const c = this._c;
      this._min[g] = f32(this._min[g] + f32(c * f32(bmin - this._min[g])));
      this._max[g] = f32(this._max[g] + f32(c * f32(bmax - this._max[g])));
    }
    this._steps[g]++;
  }

  /** Per group: min / max (float32); moving averages also steps (float64) and the first batch's min / max. */
  private _init(groups: number, shape: number[]): void {
    this._groupShape = shape.slice();
    this._min = new Float32Array(groups).fill(Infinity);
    this._max = new Float32Array(groups).fill(-Infinity);
    const m = this._c === null ? 0 : groups;
    this._steps = new Float64Array(m);
    this._firstMin = new Float32Array(m).fill(Infinity);
    this._firstMax = new Float32Array(m).fill(-Infinity);
  }

  /** @internal */
  protected _byteLength(): number {
    return this._min.byteLength + this._max.byteLength + this._steps.byteLength + this._firstMin.byteLength + this._firstMax.byteLength;
  }

  calculateQParams(): ObserverQParams {
    if (this._groupShape === null) {
      return { scale: Float32Array.of(1), zeroPoint: Int32Array.of(0), min: Float32Array.of(Infinity), max: Float32Array.of(-Infinity) };
    }
    const min = this._min.slice();
    const max = this._max.slice();
    const { scale, zeroPoint } = computeQParamsFromMinMax(min, max, this.spec);
    return { scale, zeroPoint, min, max };
  }

  /** @internal */
  protected _resetState(): void {
    this._groupShape = null;
    this._init(0, []);
    this._groupShape = null;
  }

  /** @internal */
  protected _ownJSON(): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    if (this._c !== null) o.averagingConstant = this._own.averagingConstant;
    if (this._own.axis !== undefined) o.axis = this._own.axis;
    return o;
  }

  /** @internal */
  protected _stateJSON(): Record<string, unknown> {
    const s: Record<string, unknown> = {
      groupShape: this._groupShape,
      min: encFA(this._min),
      max: encFA(this._max),
    };
    if (this._c !== null) {
      s.steps = Array.from(this._steps);
      s.firstMin = encFA(this._firstMin);
      s.firstMax = encFA(this._firstMax);
    }
    return s;
  }

  /** @internal */
  protected _loadState(s: Record<string, unknown>): void {
    const arrays = this._c === null ? ['min', 'max'] : ['min', 'max', 'steps', 'firstMin', 'firstMax'];
    checkFields('state.state', s, ['groupShape', ...arrays]);
    const gs = decGroupShape(s.groupShape, this.spec);
    // every array's length before anything per group is allocated
    const groups = gs === null ? 0 : gs.groups;
    for (const k of arrays) {
      if (gs !== null || s[k] !== undefined) checkArrayLength(`state.state.${k}`, s[k], groups, perGroupWhy(gs && gs.shape));
    }
    if (gs === null) {
      this._resetState();
      return;
    }
    const mn = decFA('state.state.min', s.min, groups);
    const mx = decFA('state.state.max', s.max, groups);
    for (let g = 0; g < groups; g++) {
      const empty = mn[g] === Infinity && mx[g] === -Infinity;
      if (!empty && !(Number.isFinite(mn[g]) && Number.isFinite(mx[g]) && mn[g] <= mx[g] && f32(mn[g]) === mn[g] && f32(mx[g]) === mx[g])) {
        throw rangeError(`state.state.min[${g}]`, `float32 values with min <= max (or Infinity / -Infinity for an empty group)`, `${mn[g]}, max ${mx[g]}`);
      }
    }
    let steps: number[] = [];
    let fmn: number[] = [];
    let fmx: number[] = [];
    if (this._c !== null) {
      steps = (s.steps as unknown[]).map((v, g) => decInt(`state.state.steps[${g}]`, v, 0, Number.MAX_SAFE_INTEGER));
      fmn = decFA('state.state.firstMin', s.firstMin, groups);
      fmx = decFA('state.state.firstMax', s.firstMax, groups);
      for (let g = 0; g < groups; g++) {
        const empty = mn[g] === Infinity;
        if ((steps[g] === 0) !== empty) throw rangeError(`state.state.steps[${g}]`, empty ? '0 (an empty group)' : 'at least 1 (a group with data)', String(steps[g]));
        const ok = empty ? fmn[g] === Infinity && fmx[g] === -Infinity
          : Number.isFinite(fmn[g]) && Number.isFinite(fmx[g]) && fmn[g] <= fmx[g] && f32(fmn[g]) === fmn[g] && f32(fmx[g]) === fmx[g];
        if (!ok) {
          throw rangeError(`state.state.firstMin[${g}]`, 'float32 values with firstMin <= firstMax (or Infinity / -Infinity for an empty group)', `${fmn[g]}, firstMax ${fmx[g]}`);
        }
      }
    }
    this._init(groups, gs.shape);
    this._min.set(mn);
    this._max.set(mx);
    if (this._c !== null) {
      this._steps.set(steps);
      this._firstMin.set(fmn);
      this._firstMax.set(fmx);
    }
  }

  /** @internal */
  protected _mergeState(o: this): void {
    if (o._groupShape === null) return;
    if (this._groupShape === null) this._init(o._min.length, o._groupShape);
    else if (JSON.stringify(o._groupShape) !== JSON.stringify(this._groupShape)) {
      throw rangeError('other', `an observer with groups of shape [${this._groupShape.join(', ')}]`, `groups of shape [${o._groupShape.join(', ')}]`);
    }
    for (let g = 0; g < this._min.length; g++) {
      if (this._c === null) {
        this._fold(g, o._min[g], o._max[g]);
        continue;
      }
      const m = o._steps[g];
      if (m === 0) continue;
      if (this._steps[g] === 0 || m === 1) {
        // nothing here yet, or other saw one batch: exactly the sequential update
        if (this._steps[g] === 0) {
          this._min[g] = o._min[g];
          this._max[g] = o._max[g];
          this._firstMin[g] = o._firstMin[g];
          this._firstMax[g] = o._firstMax[g];
          this._steps[g] = m;
        } else {
          this._fold(g, o._firstMin[g], o._firstMax[g]);
        }
        continue;
      }
      // m batches b1..bm after state s: s_m = o + (1 - c)^m (s - b1), with o = other's state (float64, then float32)
      const k = Math.pow(1 - this._c, m);
      this._min[g] = f32(o._min[g] + k * (this._min[g] - o._firstMin[g]));
      this._max[g] = f32(o._max[g] + k * (this._max[g] - o._firstMax[g]));
      this._steps[g] += m;
    }
  }
}

/** PyTorch's MinMaxObserver: the running min and max of the finite values (per group). */
export class MinMaxObserver extends MinMaxBase {
  static readonly observerType: string = 'MinMaxObserver';
  constructor(opts?: MinMaxObserverOptions) {
    super(parseOptions('options', opts, []), false);
  }
}

/** PyTorch's MovingAverageMinMaxObserver: the first batch sets min / max, then min += c * (batchMin - min). */
export class MovingAverageMinMaxObserver extends MinMaxBase {
  static readonly observerType: string = 'MovingAverageMinMaxObserver';
  constructor(opts?: MovingAverageOptions) {
    super(parseOptions('options', opts, ['averagingConstant']), true);
  }
}

/** PyTorch's PerChannelMinMaxObserver: one running min / max per index along axis (default 0). */
export class PerChannelMinMaxObserver extends MinMaxBase {
  static readonly observerType: string = 'PerChannelMinMaxObserver';
  constructor(opts?: PerChannelOptions) {
    super(perChannelParse('options', opts, ['axis']), false);
  }
}

/** PyTorch's MovingAveragePerChannelMinMaxObserver. */
export class MovingAveragePerChannelMinMaxObserver extends MinMaxBase {
  static readonly observerType: string = 'MovingAveragePerChannelMinMaxObserver';
  constructor(opts?: MovingAveragePerChannelOptions) {
    super(perChannelParse('options', opts, ['axis', 'averagingConstant']), true);
  }
}

registerObserver(MinMaxObserver as never);
registerObserver(MovingAverageMinMaxObserver as never);
registerObserver(PerChannelMinMaxObserver as never);
registerObserver(MovingAveragePerChannelMinMaxObserver as never);
