// Fake-quantize modules for quantization-aware training: FakeQuantize (an observer and the
// straight-through estimator, PyTorch's torch.ao.quantization.FakeQuantize) and
// LearnableFakeQuantize (LSQ / LSQ+: scale and zero point learned, PyTorch's
// _LearnableFakeQuantize on torch._fake_quantize_learnable_per_*_affine). Inputs are batches of
// rows [batch, features]; granularity { axis: 0 } is one scale per row, { axis: 1 } per feature.
// See docs/qat.md.
import { checkInt, checkOneOf, checkOptions, checkTyped, describe, isTypedOf, rangeError, typeError } from '../errors';
import { Observer } from '../observers/base';
import { MinMaxObserver, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver } from '../observers/minmax';
import { MSEObserver } from '../observers/mse';
import { FLOAT32_EPS } from '../qparams';
import { QuantSpec, ResolvedSpec, resolveSpec, SPEC_KEYS } from '../spec';
import { fakeQuantize } from '../tensor';
import * as native from '../native';
import { perTensorLayout } from '../layout';
import { lsqBackward, lsqBackwardZeroPoint, lsqForwardZeroPoint, lsqGradFactor } from './lsq';
import { checkBatch, Module, Parameter } from './module';

const F32 = [Float32Array] as const;

/** Per tensor, or one scale per index along axis 0 (rows) or 1 (features) of the [batch, features] input. */
export type FakeQuantizeGranularity = 'per-tensor' | { axis: number };

/** The quantization scheme of a fake-quantize module (QuantSpec; inputs are [batch, features]). */
export interface FakeQuantizeSpec {
  /** Default 'asymmetric' (PyTorch's default fake-quant: uint8 affine). */
  scheme?: QuantSpec['scheme'];
  /** 2..8 (default 8). */
  bits?: number;
  signed?: boolean;
  range?: QuantSpec['range'];
  /** Default 'pytorch': PyTorch's observer formulas and x * (1 / scale) rounding. */
  formula?: QuantSpec['formula'];
  granularity?: FakeQuantizeGranularity;
}

export interface FakeQuantizeOptions extends FakeQuantizeSpec {
  /**
   * 'moving-average' (default: PyTorch's MovingAverageMinMaxObserver, or its per-channel variant),
   * 'minmax' (MinMaxObserver / PerChannelMinMaxObserver: running min and max), or any quantkit
   * observer instance (its spec is the module's: spec fields given here must agree with it).
   */
  observer?: 'moving-average' | 'minmax' | Observer;
  /** The moving average's weight of each new batch, in (0, 1] (default 0.01). Only with observer 'moving-average'. */
  averagingConstant?: number;
}

/** The qparams of a fake-quantize module: one entry per group. */
export interface FakeQuantizeQParams {
  scale: Float32Array;
  zeroPoint: Int32Array;
}

const SPEC_FIELDS = SPEC_KEYS as readonly string[];

/** The resolved spec of a module: defaults 'asymmetric' and 'pytorch'; granularity per tensor or { axis } (axis normalised to 0 or 1). */
function moduleSpec(name: string, o: Record<string, unknown>): ResolvedSpec {
  const given: Record<string, unknown> = {};
  for (const k of SPEC_FIELDS) if (o[k] !== undefined) given[k] = o[k];
  if (given.scheme === undefined) given.scheme = 'asymmetric';
  if (given.formula === undefined) given.formula = 'pytorch';
  given.granularity = checkGranularity(`${name}.granularity`, given.granularity);
  return resolveSpec(name, given as Partial<QuantSpec>);
}

function checkGranularity(name: string, g: unknown): FakeQuantizeGranularity {
  if (g === undefined || g === 'per-tensor') return 'per-tensor';
  if (typeof g !== 'object' || g === null || Array.isArray(g)) throw typeError(name, "'per-tensor' or { axis } (axis 0: per row, 1: per feature)", g);
  const o = checkOptions(name, g, ['axis']);
  if (typeof o.axis !== 'number' || !Number.isInteger(o.axis)) throw typeError(`${name}.axis`, 'an integer between -2 and 1 (inputs are [batch, features])', o.axis);
  if (o.axis < -2 || o.axis > 1) throw rangeError(`${name}.axis`, 'an axis between -2 and 1 (inputs are [batch, features])', String(o.axis));
  return { axis: o.axis < 0 ? o.axis + 2 : o.axis };
}

function axisOf(s: ResolvedSpec): number | null {
  return s.granularity === 'per-tensor' ? null : (s.granularity as { axis: number }).axis;
}

function sameSpec(a: ResolvedSpec, b: ResolvedSpec): string | null {
  for (const k of ['scheme', 'bits', 'signed', 'range', 'formula'] as const) if (a[k] !== b[k]) return k;
  if (axisOf(a) !== axisOf(b)) return 'granularity';
  return null;
}

function describeSpec(s: ResolvedSpec): string {
  const g = axisOf(s);
  return `${s.scheme}, ${s.bits} bits, codes ${s.qmin}..${s.qmax}, ${g === null ? 'per-tensor' : `axis ${g}`}, formula '${s.formula}'`;
}

/**
 * QUANTKIT_QAT_BACKWARD=ts: the backward of both modules runs the TypeScript loops (lsqBackward of
 * lib/nn/lsq.ts, dy * mask) instead of the native kernels (native/core/qat.cc). They compute the
 * same values (the sums within the bound of docs/qat.md); bench:qat times both.
 */
let TS_BACKWARD = typeof process !== 'undefined' && process.env?.QUANTKIT_QAT_BACKWARD === 'ts';

/**
 * Internal (not exported by lib/index.ts): switch the backward of both modules between the native
 * kernels and the TypeScript loops at run time, for tests and bench/qat.mjs. Returns the previous one.
 */
export function setQatBackward(backend: 'native' | 'ts'): 'native' | 'ts' {
  const prev = TS_BACKWARD ? 'ts' : 'native';
  TS_BACKWARD = backend === 'ts';
  return prev;
}

/** NaN and +-Inf counts of x (native, one pass). */
function nonFinite(x: Float32Array): { nanCount: number; infCount: number } {
  return native.minMax(x, perTensorLayout(x.length));
}

/** x must hold no NaN (RangeError naming the first). */
function checkNoNaN(what: string, x: Float32Array): void {
  if (!TS_BACKWARD && x.length > 64 && nonFinite(x).nanCount === 0) return;
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== x[i]) throw rangeError(`${what}[${i}]`, 'a number (NaN cannot be fake-quantized; the layer before it or the loss diverged)', 'NaN');
  }
}

/** dy must be finite (RangeError naming the first value that is not). */
function checkFiniteDy(layer: string, dy: Float32Array, known = false): void {
  if (!known && !TS_BACKWARD && dy.length > 64) {
    const c = nonFinite(dy);
    if (c.nanCount + c.infCount === 0) return;
  }
  for (let i = 0; i < dy.length; i++) {
    const v = dy[i];
    if (v - v !== 0) throw rangeError(`dy[${i}]`, `a finite gradient (${layer}.backward; the loss diverged)`, String(v));
  }
}

function noForward(layer: string): Error {
  return new Error(`${layer}.backward called before forward`);
}

/** Number of groups of a [batch, features] input under a spec. */
function groupsOf(s: ResolvedSpec, batch: number, features: number): number {
  const a = axisOf(s);
  return a === null ? 1 : a === 0 ? batch : features;
}

/** The [outer, axisDim, inner] view of [batch, features] for a spec, with its granularity code. */
function layoutOf(s: ResolvedSpec, batch: number, features: number): native.NativeLayout {
  const a = axisOf(s);
  if (a === null) return { gran: native.GranularityCode.PerTensor, outer: 1, axisDim: 1, inner: batch * features, blockSize: 0 };
  return a === 0
    ? { gran: native.GranularityCode.PerAxis, outer: 1, axisDim: batch, inner: features, blockSize: 0 }
    : { gran: native.GranularityCode.PerAxis, outer: batch, axisDim: features, inner: 1, blockSize: 0 };
}

/**
 * PyTorch's FakeQuantize: in training mode (with the observer enabled) each forward observes x,
 * recomputes scale and zero point from the observer, and fake-quantizes x with them; backward
 * returns dy * mask, the straight-through estimator (mask: 1 where x was inside the code range,
 * else 0). In eval mode the observer is frozen (PyTorch keeps observing in eval unless the observer
 * is disabled: quantkit ties it to eval so that an evaluated model never moves its qparams).
 *
 * NaN in x is a RangeError; +-Infinity is skipped by the observer and clipped to the range's edge
 * with gradient 0. A non-finite dy is a RangeError.
 */
export class FakeQuantize extends Module {
  readonly spec: ResolvedSpec;
  readonly observer: Observer;
  private obsOn = true;
  private fqOn = true;
  private qp: FakeQuantizeQParams | null = null;
  private mask: Uint8Array | null = null;
  private n = -1;

  constructor(opts?: FakeQuantizeOptions) {
    super();
    const o = checkOptions('opts', opts, [...SPEC_KEYS, 'observer', 'averagingConstant']);
    const obs = o.observer === undefined ? 'moving-average' : o.observer;
    if (obs instanceof Observer) {
      if (o.averagingConstant !== undefined) throw typeError('opts.averagingConstant', "undefined (it configures observer 'moving-average', not an observer instance)", o.averagingConstant);
      const os = obs.spec;
      const g = os.granularity;
      if (g !== 'per-tensor' && (typeof g !== 'object' || (g as { blockSize?: number }).blockSize !== undefined)) {
        throw rangeError('opts.observer', "an observer with granularity 'per-tensor' or { axis }", JSON.stringify(g));
      }
      const ax = g === 'per-tensor' ? null : (g as { axis: number }).axis;
      if (ax !== null && (ax < -2 || ax > 1)) throw rangeError('opts.observer', 'an observer whose axis is between -2 and 1 (inputs are [batch, features])', `axis ${ax}`);
      const own = resolveSpec('opts.observer.spec', { ...os, granularity: ax === null ? 'per-tensor' : { axis: ax < 0 ? ax + 2 : ax } });
      if (SPEC_FIELDS.some((k) => o[k] !== undefined)) {
        const want = moduleSpec('opts', { scheme: own.scheme, formula: own.formula, ...o });
        const k = sameSpec(want, own);
        if (k !== null) throw rangeError(`opts.${k}`, `the observer's spec (${describeSpec(own)})`, describeSpec(want));
      }
      this.spec = own;
      this.observer = obs;
      if (obs.stats().count > 0) this.qp = this.observerQParams();
    } else {
      const name = checkOneOf('opts.observer', obs, ['moving-average', 'minmax'] as const);
      this.spec = moduleSpec('opts', o);
      if (name !== 'moving-average' && o.averagingConstant !== undefined) {
        throw typeError('opts.averagingConstant', "undefined (it configures observer 'moving-average')", o.averagingConstant);
      }
      const s = this.spec;
      const base = { scheme: s.scheme, bits: s.bits, signed: s.signed, range: s.range, formula: s.formula };
      const axis = axisOf(s);
      let c = {};
      if (o.averagingConstant !== undefined) {
        const v = o.averagingConstant;
        if (typeof v !== 'number') throw typeError('opts.averagingConstant', 'a number > 0 and <= 1', v);
        if (!(v > 0 && v <= 1)) throw rangeError('opts.averagingConstant', 'a number > 0 and <= 1', String(v));
        c = { averagingConstant: v };
      }
      if (axis === null) this.observer = name === 'minmax' ? new MinMaxObserver(base) : new MovingAverageMinMaxObserver({ ...base, ...c });
      else this.observer = name === 'minmax' ? new PerChannelMinMaxObserver({ ...base, axis }) : new MovingAveragePerChannelMinMaxObserver({ ...base, axis, ...c });
    }
  }

  /** Whether training forwards observe (PyTorch's observer_enabled). */
  get observerEnabled(): boolean {
    return this.obsOn;
  }

  /** Whether forward fake-quantizes (PyTorch's fake_quant_enabled); off, forward returns x itself and backward dy. */
  get fakeQuantEnabled(): boolean {
    return this.fqOn;
  }

  /** PyTorch's enable_observer / disable_observer (enableObserver(false)). */
  enableObserver(on = true): this {
    if (typeof on !== 'boolean') throw typeError('on', 'a boolean', on);
    this.obsOn = on;
    return this;
  }

  /** PyTorch's enable_fake_quant / disable_fake_quant (enableFakeQuant(false)). */
  enableFakeQuant(on = true): this {
    if (typeof on !== 'boolean') throw typeError('on', 'a boolean', on);
    this.fqOn = on;
    return this;
  }

  private observerQParams(): FakeQuantizeQParams {
    const q = this.observer.calculateQParams();
    return { scale: q.scale.slice(), zeroPoint: q.zeroPoint.slice() };
  }

  /**
   * The observer's scale and zero point now (PyTorch's calculate_qparams). Nothing observed: scale 1,
   * zero point 0.
   */
  calculateQParams(): FakeQuantizeQParams {
    return this.observerQParams();
  }

  /**
   * The qparams the next forward uses: those computed after the last observation (copies), or null
   * before any. In eval mode they no longer change; these are what conversion to int8 takes.
   */
  get qparams(): FakeQuantizeQParams | null {
    return this.qp ? { scale: this.qp.scale.slice(), zeroPoint: this.qp.zeroPoint.slice() } : null;
  }

  forward(x: Float32Array, batch: number): Float32Array {
    const F = checkBatch(x, batch);
    checkNoNaN('x', x);
    if (this.training && this.obsOn && x.length > 0) {
      this.observer.observe(x, [batch, F]);
      if (this.observer.stats().count > 0) this.qp = this.observerQParams();
    }
    this.n = x.length;
    if (!this.fqOn) {
      this.mask = null;
      return x;
    }
    const qp = this.qp;
    if (qp === null) {
      throw new Error(`FakeQuantize has no qparams: its observer has seen nothing (${this.training ? 'the observer is disabled' : 'eval mode freezes the observer'}); run training forwards first`);
    }
    const groups = groupsOf(this.spec, batch, F);
    if (qp.scale.length !== groups) {
      throw rangeError('x', `a batch with ${qp.scale.length} ${axisOf(this.spec) === 0 ? 'rows' : 'features'} (one per scale of this per-channel FakeQuantize)`, `${batch} rows of ${F} features`);
    }
    // the mask is internal: reused while the length stays (the kernel writes every byte)
    const mask = this.mask !== null && this.mask.length === x.length ? this.mask : new Uint8Array(x.length);
    const s = this.spec;
    const y = fakeQuantize(x, [batch, F], qp, {
      scheme: s.scheme, bits: s.bits, signed: s.signed, range: s.range, formula: s.formula, granularity: s.granularity, mask,
    });
    this.mask = mask;
    return y;
  }

  backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null {
    if (this.n < 0) throw noForward('FakeQuantize');
    if (dy.length !== this.n) throw rangeError('dy', `length ${this.n} (the FakeQuantize output of the last forward)`, describe(dy));
    const m = this.mask;
    if (!inputGrad || m === null || TS_BACKWARD) {
      checkFiniteDy('FakeQuantize', dy);
      if (!inputGrad) return null;
      if (m === null) return dy;
    }
    const dx = new Float32Array(dy.length);
    if (TS_BACKWARD) {
      for (let i = 0; i < dx.length; i++) dx[i] = dy[i] * m[i]; // dy * 0 is -0 for a negative dy, as PyTorch's dY * mask
      return dx;
    }
    // dx = dy * mask in float32 (native/core/qat.cc); non-finite dy are counted, then refused here
    if (native.steBackward(dy, m, dx, false) > 0) checkFiniteDy('FakeQuantize', dy, true);
    return dx;
  }

  /**
   * Internal (QATLinear's weight): grad += the input gradient of dy, float32 adds, as
   * backwardImpl(dy, true) followed by a loop adding it, without the intermediate array. dy is
   * checked before grad is touched.
   */
  backwardAccumulate(dy: Float32Array, grad: Float32Array): void {
    const m = this.mask;
    if (TS_BACKWARD || m === null || grad.length !== dy.length) {
      const dx = this.backwardImpl(dy, true) as Float32Array;
      if (grad.length !== dx.length) throw rangeError('grad', `length ${dx.length}`, describe(grad));
      for (let i = 0; i < dx.length; i++) grad[i] += dx[i];
      return;
    }
    if (this.n < 0) throw noForward('FakeQuantize');
    if (dy.length !== this.n) throw rangeError('dy', `length ${this.n} (the FakeQuantize output of the last forward)`, describe(dy));
    checkFiniteDy('FakeQuantize', dy);
    native.steBackward(dy, m, grad, true);
  }

  toString(): string {
    const s = this.spec;
    return `FakeQuantize(fake_quant_enabled=${this.fqOn}, observer_enabled=${this.obsOn}, quant_min=${s.qmin}, quant_max=${s.qmax}, ` +
      `scheme=${s.scheme}, granularity=${axisOf(s) === null ? 'per-tensor' : `axis ${axisOf(s)}`}, observer=${(this.observer.constructor as { observerType?: string }).observerType ?? this.observer.constructor.name})`;
  }
}

export interface LearnableFakeQuantizeOptions extends FakeQuantizeSpec {
  /** Initial scale: a number (every channel), or a Float32Array with one per channel. Absent: from the first training batch (init). */
  scale?: number | Float32Array;
  /**
   * Initial zero point (float; rounded and clamped in the forward): a number or a Float32Array per
   * channel. Only with scale. Default: the scheme's fixed zero point (0 for signed symmetric) or 0.
   */
  zeroPoint?: number | Float32Array;
  /** Channels of a per-channel module whose scale is not a Float32Array (PyTorch's channel_len). */
  channels?: number;
  /** Without scale: the observer that sets scale and zero point from the first training batch, 'minmax' (default) or 'mse'. */
  init?: 'minmax' | 'mse';
  /** Multiply the scale and zero-point gradients by 1 / sqrt(numel * qmax) (default true: LSQ's gradient scaling). */
  gradScaling?: boolean;
}

/**
 * The smallest scale LearnableFakeQuantize uses: float32 machine epsilon 2^-23 (PyTorch's eps clamp).
 * Before each forward and in calculateQParams, scale values below it (zero and negative included)
 * are raised to it in place; a NaN or infinite scale is a RangeError.
 */
export const LSQ_SCALE_FLOOR = FLOAT32_EPS;

/**
 * LSQ / LSQ+ (Esser et al. 2020; Bhalgat et al. 2020) with PyTorch 1.13's
 * _fake_quantize_learnable_per_tensor_affine / _per_channel_affine semantics: 'scale' and
 * 'zero_point' are Parameters (float). The forward fake-quantizes with the zero point rounded half
 * to even and clamped to the code range; backward gives PyTorch's gradients for x, scale and zero
 * point (lib/nn/lsq.ts). The zero point is learned only for asymmetric schemes: symmetric ones fix
 * it at the scheme's zero point (requiresGrad false). Granularity { axis } learns one scale (and
 * zero point) per row (axis 0) or feature (axis 1).
 */
export class LearnableFakeQuantize extends Module {
  readonly spec: ResolvedSpec;
  readonly scale: Parameter;
  readonly zeroPoint: Parameter;
  readonly gradScaling: boolean;
  readonly init: 'minmax' | 'mse';
  private ready: boolean;
  private fixedZp: number | null;
  private saved: { x: Float32Array; batch: number; features: number; scale: Float32Array; zb: Int32Array; gf: number } | null = null;

  constructor(opts?: LearnableFakeQuantizeOptions) {
    super();
    const o = checkOptions('opts', opts, [...SPEC_KEYS, 'scale', 'zeroPoint', 'channels', 'init', 'gradScaling']);
    this.spec = moduleSpec('opts', o);
    const s = this.spec;
    if (s.formula !== 'pytorch') throw rangeError('opts.formula', "'pytorch' (the learnable ops multiply by the float32 reciprocal of the scale)", `'${s.formula}'`);
    this.init = o.init === undefined ? 'minmax' : checkOneOf('opts.init', o.init, ['minmax', 'mse'] as const);
    if (o.gradScaling !== undefined && typeof o.gradScaling !== 'boolean') throw typeError('opts.gradScaling', 'a boolean', o.gradScaling);
    this.gradScaling = (o.gradScaling as boolean | undefined) ?? true;
    const perChannel = axisOf(s) !== null;
    let channels = 1;
    if (perChannel) {
      if (o.channels !== undefined) channels = checkInt('opts.channels', o.channels, 1, 2 ** 31);
      else if (isTypedOf(o.scale, 'Float32Array')) channels = o.scale.length;
      else throw typeError('opts.channels', 'the number of channels (a per-channel LearnableFakeQuantize needs it, or a Float32Array scale)', undefined);
    } else if (o.channels !== undefined && o.channels !== 1) {
      throw rangeError('opts.channels', '1 or undefined (a per-tensor LearnableFakeQuantize)', describe(o.channels));
    }
    const fixed = s.scheme === 'symmetric' ? (s.signed ? 0 : s.bits === 8 && s.qmin === 0 && s.qmax === 255 ? 128 : Math.floor((s.qmin + s.qmax) / 2)) : null;
    this.fixedZp = fixed;
    this.scale = new Parameter(perChannel ? [channels] : [1]);
    this.zeroPoint = new Parameter(perChannel ? [channels] : [1]);
    this.scale.data.fill(1);
    this.zeroPoint.data.fill(fixed ?? 0);
    if (fixed !== null) this.zeroPoint.requiresGrad = false;
    this.ownParams.push(['scale', this.scale], ['zero_point', this.zeroPoint]);
    if (o.zeroPoint !== undefined && o.scale === undefined) {
      throw typeError('opts.scale', 'an initial scale (a zeroPoint is given: give both, or neither to initialise from the first batch)', undefined);
    }
    this.ready = o.scale !== undefined;
    if (o.scale !== undefined) {
      this.setInitial('opts.scale', o.scale, channels, (v) => Number.isFinite(v) && v > 0, 'a positive finite number', this.scale.data);
      if (o.zeroPoint !== undefined) {
        this.setInitial('opts.zeroPoint', o.zeroPoint, channels, Number.isFinite, 'a finite number', this.zeroPoint.data);
        if (fixed !== null) {
          const bad = this.zeroPoint.data.findIndex((v) => v !== fixed);
          if (bad >= 0) throw rangeError(`opts.zeroPoint${perChannel ? `[${bad}]` : ''}`, `${fixed} (a ${s.scheme} scheme fixes the zero point)`, String(this.zeroPoint.data[bad]));
        }
      }
    }
  }

  private setInitial(name: string, v: unknown, channels: number, ok: (v: number) => boolean, what: string, dst: Float32Array): void {
    if (typeof v === 'number') {
      if (!ok(v)) throw rangeError(name, what, String(v));
      dst.fill(v);
      return;
    }
    const a = checkTyped<Float32Array>(name, v, F32);
    if (a.length !== channels) throw rangeError(name, `a number or a Float32Array of length ${channels} (one per channel)`, describe(a));
    for (let i = 0; i < a.length; i++) if (!ok(a[i])) throw rangeError(`${name}[${i}]`, what, String(a[i]));
    dst.set(a);
  }

  /** True once scale and zero point hold values (given, or from the first training batch). */
  get initialized(): boolean {
    return this.ready;
  }

  /** Raises scale values below the floor to it, in place; NaN or Infinity is a RangeError. */
  private clampScale(): void {
    const d = this.scale.data;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (v !== v || v === Infinity) throw rangeError(`scale${d.length > 1 ? `[${i}]` : ''}`, 'a finite scale (a NaN or infinite gradient or learning rate reached it)', String(v));
      if (!(v >= LSQ_SCALE_FLOOR)) d[i] = LSQ_SCALE_FLOOR;
    }
    const z = this.zeroPoint.data;
    for (let i = 0; i < z.length; i++) {
      if (!Number.isFinite(z[i])) throw rangeError(`zeroPoint${z.length > 1 ? `[${i}]` : ''}`, 'a finite zero point (a NaN or infinite gradient or learning rate reached it)', String(z[i]));
    }
    if (this.fixedZp !== null) z.fill(this.fixedZp);
  }

  private initFrom(x: Float32Array, batch: number, features: number): void {
    const s = this.spec;
    const base = { scheme: s.scheme, bits: s.bits, signed: s.signed, range: s.range, formula: s.formula };
    const axis = axisOf(s);
    let obs: Observer;
    if (this.init === 'mse') obs = new MSEObserver({ ...base, granularity: axis === null ? 'per-tensor' : { axis } });
    else obs = axis === null ? new MinMaxObserver(base) : new PerChannelMinMaxObserver({ ...base, axis });
    obs.observe(x, [batch, features]);
    const q = obs.calculateQParams();
    this.scale.data.set(q.scale);
    for (let i = 0; i < q.zeroPoint.length; i++) this.zeroPoint.data[i] = q.zeroPoint[i];
    this.ready = true;
  }

  /** Scale (clamped at the floor) and the zero point the forward uses (rounded, clamped): copies. */
  calculateQParams(): FakeQuantizeQParams {
    this.clampScale();
    const s = this.spec;
    return {
      scale: this.scale.data.slice(),
      zeroPoint: Int32Array.from(this.zeroPoint.data, (z) => lsqForwardZeroPoint(z, s.qmin, s.qmax)),
    };
  }

  forward(x: Float32Array, batch: number): Float32Array {
    const F = checkBatch(x, batch);
    checkNoNaN('x', x);
    const s = this.spec;
    const groups = groupsOf(s, batch, F);
    if (groups !== this.scale.numel) {
      throw rangeError('x', `a batch with ${this.scale.numel} ${axisOf(s) === 0 ? 'rows' : 'features'} (one per scale of this per-channel LearnableFakeQuantize)`, `${batch} rows of ${F} features`);
    }
    if (!this.ready) {
      if (!this.training) throw new Error('LearnableFakeQuantize has no scale yet: give opts.scale, or run a training forward (it initialises scale and zero point from the first batch)');
      this.initFrom(x, batch, F);
    }
    const { scale, zeroPoint } = this.calculateQParams();
    const y = fakeQuantize(x, [batch, F], { scale, zeroPoint }, {
      scheme: s.scheme, bits: s.bits, signed: s.signed, range: s.range, formula: s.formula, granularity: s.granularity,
    });
    const perChannel = axisOf(s) !== null;
    const zb = Int32Array.from(this.zeroPoint.data, (z) => lsqBackwardZeroPoint(z, s.qmin, s.qmax, perChannel));
    this.saved = { x, batch, features: F, scale, zb, gf: lsqGradFactor(x.length, s.qmax, this.gradScaling) };
    return y;
  }

  backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null {
    const dx = inputGrad ? new Float32Array(dy.length) : null;
    this.backwardInto(dy, dx, false);
    return dx;
  }

  /**
   * Internal (QATLinear's weight): grad += the input gradient of dy (float32 adds), and the scale
   * and zero-point gradients as backward, without the intermediate array. dy is checked before
   * grad is touched.
   */
  backwardAccumulate(dy: Float32Array, grad: Float32Array): void {
    if (TS_BACKWARD || grad.length !== dy.length) {
      const dx = this.backwardImpl(dy, true) as Float32Array;
      if (grad.length !== dx.length) throw rangeError('grad', `length ${dx.length}`, describe(grad));
      for (let i = 0; i < dx.length; i++) grad[i] += dx[i];
      return;
    }
    checkFiniteDy('LearnableFakeQuantize', dy);
    this.backwardInto(dy, grad, true);
  }

  private backwardInto(dy: Float32Array, dx: Float32Array | null, accumulate: boolean): void {
    const sv = this.saved;
    if (!sv) throw noForward('LearnableFakeQuantize');
    if (dy.length !== sv.x.length) throw rangeError('dy', `length ${sv.x.length} (the LearnableFakeQuantize output of the last forward)`, describe(dy));
    const s = this.spec;
    const groups = sv.scale.length;
    const ds = new Float64Array(groups);
    const dz = new Float64Array(groups);
    const L = layoutOf(s, sv.batch, sv.features);
    if (TS_BACKWARD) {
      checkFiniteDy('LearnableFakeQuantize', dy);
      lsqBackward(sv.x, dy, sv.scale, sv.zb, L, s.qmin, s.qmax, sv.gf, dx, ds, dz);
    } else if (dy.length > 0) {
      // native/core/qat.cc: the same per-element values, the sums in a fixed order (docs/qat.md).
      // Bad elements (dy not finite; x NaN if the caller changed x since the forward) give +0 and
      // are counted: refused here before any gradient is touched.
      const bad = native.lsqBackward({
        x: sv.x, dy, scale: sv.scale, zeroPoint: sv.zb, layout: L, qmin: s.qmin, qmax: s.qmax, gradFactor: sv.gf,
        dx, accumulate, dScale: ds, dZeroPoint: dz,
      });
      if (bad > 0) {
        checkFiniteDy('LearnableFakeQuantize', dy, true);
        checkNoNaN('x (the input of the last forward, changed since)', sv.x);
      }
    }
    const gs = this.scale.grad;
    const gz = this.zeroPoint.grad;
    for (let g = 0; g < groups; g++) {
      gs[g] += Math.fround(ds[g]);
      gz[g] += Math.fround(dz[g]);
    }
  }

  toString(): string {
    const s = this.spec;
    return `LearnableFakeQuantize(quant_min=${s.qmin}, quant_max=${s.qmax}, scheme=${s.scheme}, ` +
      `granularity=${axisOf(s) === null ? 'per-tensor' : `axis ${axisOf(s)}`}, channels=${this.scale.numel}, grad_scaling=${this.gradScaling})`;
  }
}
