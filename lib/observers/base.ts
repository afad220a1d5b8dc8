// The observer interface shared by every calibration observer, option parsing, stats and the
// plain-JSON state format (see lib/observers/index.ts).
import { checkOptions, checkTyped, describe, rangeError, typeError } from '../errors';
import { checkShape, granularityLayout, Layout, GRAN_BLOCKED, GRAN_PER_TENSOR } from '../layout';
import { QuantSpec, ResolvedSpec, resolveSpec, SPEC_KEYS } from '../spec';

/** qparams of an observer: one entry per group (1 for per-tensor, one per channel for per-axis). */
export interface ObserverQParams {
  scale: Float32Array;
  zeroPoint: Int32Array;
  /** The range the qparams were computed from (after clipping by the observer's method). */
  min: Float32Array;
  max: Float32Array;
}

export interface ObserverStats {
  /** observe() calls that had at least one element. */
  batches: number;
  /** Elements seen (finite or not). */
  count: number;
  /** NaN values skipped. */
  nanCount: number;
  /** +-Infinity values skipped. */
  infCount: number;
}

/** Serialised observer: plain JSON (numbers, strings, arrays, objects). */
export interface ObserverState {
  type: string;
  version: number;
  spec: Record<string, unknown>;
  options: Record<string, unknown>;
  stats: ObserverStats;
  state: Record<string, unknown>;
}

export const STATE_VERSION = 1;
export const F32 = [Float32Array] as const;
const f32 = Math.fround;

/** A Float32Array holding one number. */
export function f32of(v: number): Float32Array {
  return Float32Array.of(v);
}

// ---- options -------------------------------------------------------------------------------------

export interface ParsedOptions {
  spec: ResolvedSpec;
  /** The spec fields as given (for toJSON / comparisons), granularity included. */
  specInput: Partial<QuantSpec>;
  own: Record<string, unknown>;
}

/** Splits one options object into the QuantSpec fields and the observer's own options. */
export function parseOptions(name: string, opts: unknown, ownKeys: readonly string[], defaults?: Partial<QuantSpec>): ParsedOptions {
  const o = checkOptions(name, opts, [...SPEC_KEYS, ...ownKeys]);
  const specInput: Record<string, unknown> = { ...(defaults ?? {}) };
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if ((SPEC_KEYS as readonly string[]).includes(k)) specInput[k] = v;
    else own[k] = v;
  }
  const spec = resolveSpec(name, specInput as Partial<QuantSpec>);
  return { spec, specInput: specInput as Partial<QuantSpec>, own };
}

export function optNumber(name: string, v: unknown, def: number, lo: number, hi: number, opts?: { integer?: boolean; openLo?: boolean; openHi?: boolean }): number {
  if (v === undefined) return def;
  const what = opts?.integer ? `an integer between ${lo} and ${hi}` : `a number ${opts?.openLo ? '>' : '>='} ${lo} and ${opts?.openHi ? '<' : '<='} ${hi}`;
  if (typeof v !== 'number') throw typeError(name, what, v);
  const okLo = opts?.openLo ? v > lo : v >= lo;
  const okHi = opts?.openHi ? v < hi : v <= hi;
  if (Number.isNaN(v) || !okLo || !okHi || (opts?.integer && !Number.isInteger(v))) throw rangeError(name, what, String(v));
  return v;
}

/**
 * Searches that grow with two options (EntropyObserver: bins x levels; MSE and softmax
 * observers: bins x gridSize) are bounded so that a state file or an options object cannot make
 * calculateQParams run for hours: at most 2^28 steps per group (the defaults take 2^18).
 */
export const MAX_SEARCH_WORK = 2 ** 28;

export function checkSearchWork(what: string, a: [string, number], b: [string, number]): void {
  if (a[1] * b[1] > MAX_SEARCH_WORK) {
    throw new RangeError(`Expected ${a[0]} x ${b[0]} of at most ${MAX_SEARCH_WORK} (the ${what} search takes that many steps per group) but received ${a[1]} x ${b[1]} = ${a[1] * b[1]}`);
  }
}

export function optBool(name: string, v: unknown, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw typeError(name, 'a boolean', v);
  return v;
}

/** Spec fields of a resolved spec as plain JSON (granularity as given). */
export function specJSON(s: ResolvedSpec): Record<string, unknown> {
  return { scheme: s.scheme, bits: s.bits, signed: s.signed, range: s.range, granularity: s.granularity, formula: s.formula };
}

// ---- layouts ---------------------------------------------------------------------------------------

/** The layout of one observe() call: shape defaults to [x.length]. */
export function batchLayout(x: unknown, shape: unknown, spec: ResolvedSpec, allowBlocked: boolean): { x: Float32Array; L: Layout } {
  const xa = checkTyped<Float32Array>('x', x, F32);
  const sh = shape === undefined ? [xa.length] : checkShape('shape', shape, xa.length);
  const L = granularityLayout('granularity', spec.granularity, sh, xa.length);
  if (L.gran === GRAN_BLOCKED && !allowBlocked) {
    throw typeError('granularity', "'per-tensor' or { axis } (this observer keeps a histogram per group; blocks are not supported)", spec.granularity);
  }
  return { x: xa, L };
}

export function checkGranularity(name: string, spec: ResolvedSpec, allowAxis: boolean, allowBlocked: boolean): void {
  const g = spec.granularity as unknown;
  if (g === 'per-tensor') return;
  if (typeof g !== 'object' || g === null || Array.isArray(g)) throw typeError(name, "'per-tensor', { axis } or { axis, blockSize }", g);
  const o = g as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'axis' && k !== 'blockSize') throw new TypeError(`Unknown option '${k}' in ${name}; expected only 'axis', 'blockSize'`);
  }
  if (typeof o.axis !== 'number' || !Number.isInteger(o.axis)) throw typeError(`${name}.axis`, 'an integer', o.axis);
  if (o.blockSize !== undefined) {
    if (!allowBlocked) throw rangeError(name, allowAxis ? "'per-tensor' or { axis } (no blocks for this observer)" : "'per-tensor'", JSON.stringify(g));
    if (typeof o.blockSize !== 'number' || !Number.isInteger(o.blockSize) || o.blockSize < 1) {
      throw rangeError(`${name}.blockSize`, 'a positive integer', describe(o.blockSize));
    }
  } else if (!allowAxis) {
    throw rangeError(name, "'per-tensor' (use the per-channel observer for { axis })", JSON.stringify(g));
  }
}

export function isPerTensor(L: Layout): boolean {
  return L.gran === GRAN_PER_TENSOR;
}

// ---- JSON encoding of floats -------------------------------------------------------------------------

export type EncFloat = number | 'Infinity' | '-Infinity' | 'NaN';

export function encF(v: number): EncFloat {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return v;
}

export function encFA(a: ArrayLike<number>): EncFloat[] {
  return Array.from(a, encF);
}

export function decF(name: string, v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (v === 'NaN') return NaN;
  throw typeError(name, "a finite number or 'Infinity', '-Infinity', 'NaN'", v);
}

export function decFA(name: string, v: unknown, len: number | null): number[] {
  if (!Array.isArray(v)) throw typeError(name, len === null ? 'an array' : `an array of length ${len}`, v);
  if (len !== null && v.length !== len) throw rangeError(name, `an array of length ${len}`, `an array of length ${v.length}`);
  return v.map((e, i) => decF(`${name}[${i}]`, e));
}

/** Non-negative finite numbers (histogram counts), into out when given (its length is len). */
export function decCounts(name: string, v: unknown, len: number, out?: Float64Array): Float64Array {
  checkArrayLength(name, v, len, null);
  const a = v as unknown[];
  const dst = out ?? new Float64Array(len);
  for (let i = 0; i < len; i++) {
    const e = a[i];
    if (typeof e !== 'number' || !Number.isFinite(e) || e < 0) throw rangeError(`${name}[${i}]`, 'a non-negative finite number', describe(e));
    dst[i] = e;
  }
  return dst;
}

/**
 * Checks that v is an array of length len before anything of that size is allocated. why says
 * where len comes from (e.g. "one value per group: state.state.groupShape is [4]").
 */
export function checkArrayLength(name: string, v: unknown, len: number, why: string | null): void {
  const what = `an array of length ${len}${why ? ` (${why})` : ''}`;
  if (!Array.isArray(v)) throw typeError(name, what, v);
  if (v.length !== len) throw rangeError(name, what, `an array of length ${v.length}`);
}

/** Rejects fields of a state object outside allowed (TypeError naming the field). */
export function checkFields(name: string, o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new TypeError(`Unknown field '${k}' in ${name}; expected only ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
}

/** Most groups any observer state may have (group shapes in states are checked against it first). */
export const MAX_GROUPS = 2 ** 31;

/** "[a, b]" */
export function shapeStr(shape: readonly unknown[]): string {
  return `[${shape.map((d) => String(d)).join(', ')}]`;
}

/** Why an array of a state has its length: one value per group of the group shape. */
export function perGroupWhy(shape: readonly number[] | null): string {
  return shape === null ? 'nothing observed: state.state.groupShape is null' : `one value per group: state.state.groupShape is ${shapeStr(shape)}`;
}

/**
 * state.state.groupShape: null (nothing observed) or the shape of the groups, checked against the
 * observer's granularity (per-tensor: []; per-channel: [channels]; blocked: the data's rank) and
 * against maxGroups before the caller allocates anything per group.
 */
export function decGroupShape(v: unknown, spec: ResolvedSpec, maxGroups = MAX_GROUPS): { shape: number[]; groups: number } | null {
  const name = 'state.state.groupShape';
  if (v === null || v === undefined) return null;
  if (!Array.isArray(v)) throw typeError(name, 'an array of positive integers or null', v);
  const g = spec.granularity as unknown;
  if (g === 'per-tensor') {
    if (v.length !== 0) throw rangeError(name, '[] (one group: a per-tensor observer)', shapeStr(v));
  } else if ((g as { blockSize?: unknown }).blockSize === undefined) {
    if (v.length !== 1) throw rangeError(name, 'one dimension [channels] (a per-channel observer)', shapeStr(v));
  } else if (v.length === 0) {
    throw rangeError(name, 'one dimension per dimension of the data (a blocked observer)', '[]');
  }
  const shape = v.map((d, i) => decInt(`${name}[${i}]`, d, 1, MAX_GROUPS));
  const groups = shape.reduce((a, b) => a * b, 1);
  if (groups > maxGroups) throw rangeError(name, `at most ${maxGroups} groups`, `${shapeStr(shape)} (${groups} groups)`);
  return { shape, groups };
}

export function decInt(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    if (typeof v !== 'number') throw typeError(name, `an integer between ${lo} and ${hi}`, v);
    throw rangeError(name, `an integer between ${lo} and ${hi}`, String(v));
  }
  return v;
}

export function decObject(name: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw typeError(name, 'an object', v);
  return v as Record<string, unknown>;
}

export function decStats(v: unknown): ObserverStats {
  const o = decObject('state.stats', v);
  checkFields('state.stats', o, ['batches', 'count', 'nanCount', 'infCount']);
  const big = Number.MAX_SAFE_INTEGER;
  const st = {
    batches: decInt('state.stats.batches', o.batches, 0, big),
    count: decInt('state.stats.count', o.count, 0, big),
    nanCount: decInt('state.stats.nanCount', o.nanCount, 0, big),
    infCount: decInt('state.stats.infCount', o.infCount, 0, big),
  };
  // every counted batch had an element; NaN / Inf are counted among the elements
  const nonFinite = st.nanCount + st.infCount;
  if (nonFinite > st.count) throw rangeError('state.stats.nanCount + state.stats.infCount', `at most ${st.count} (state.stats.count)`, String(nonFinite));
  if (st.batches > st.count) throw rangeError('state.stats.batches', `at most ${st.count} (state.stats.count)`, String(st.batches));
  return st;
}

// ---- the base class ------------------------------------------------------------------------------------

type ObserverCtor = { new (opts?: Record<string, unknown>): Observer; readonly observerType: string };
const registry = new Map<string, ObserverCtor>();

/** Makes Observer.fromJSON able to rebuild this class. */
export function registerObserver(ctor: ObserverCtor): void {
  registry.set(ctor.observerType, ctor);
}

/**
 * Calibration observer: observe() batches (any number, any sizes), then calculateQParams().
 * Memory is the observer's statistics (min/max or histograms per group), never the data seen;
 * histogram observers bound theirs by the memoryLimit option (see histogram.ts).
 */
export abstract class Observer {
  readonly spec: ResolvedSpec;
  /** @internal */ protected readonly _specInput: Partial<QuantSpec>;
  /** @internal */ protected readonly _own: Record<string, unknown>;
  /** @internal */ protected _stats: ObserverStats = { batches: 0, count: 0, nanCount: 0, infCount: 0 };

  protected constructor(p: ParsedOptions) {
    this.spec = p.spec;
    this._specInput = p.specInput;
    this._own = p.own;
  }

  /** Folds one batch in. shape defaults to [x.length]; per-axis granularities need it. */
  abstract observe(x: Float32Array, shape?: readonly number[]): this;
  /** Scale and zero point (and the range they come from) per group. Nothing observed: scale 1, zero point 0. */
  abstract calculateQParams(): ObserverQParams;
  /** Forgets everything observed. */
  reset(): void {
    this._stats = { batches: 0, count: 0, nanCount: 0, infCount: 0 };
    this._resetState();
  }
  /** Elements seen and non-finite values skipped. */
  stats(): ObserverStats {
    return { ...this._stats };
  }

  /** Plain-JSON state (with a version field): Observer.fromJSON(JSON.parse(JSON.stringify(o.toJSON()))) rebuilds it. */
  toJSON(): ObserverState {
    const ctor = this.constructor as unknown as ObserverCtor;
    return {
      type: ctor.observerType,
      version: STATE_VERSION,
      spec: specJSON(this.spec),
      options: this._ownJSON(),
      stats: { ...this._stats },
      state: this._stateJSON(),
    };
  }

  /**
   * Folds other's statistics into this observer, as if this observer had also seen other's batches
   * after its own. other must be of the same class with the same options (else a TypeError /
   * RangeError). Exact for MinMax / PerChannelMinMax (min of mins, max of maxes); for the moving
   * averages exact when other saw one batch, and otherwise s' = other + (1 - c)^m (this - other's
   * first batch) (m = other's batches; the sequential result up to float rounding); for histogram
   * observers exact (counts added) when both hold the same histogram range, else re-binned (see
   * histogram.ts). Statistics (batches, counts, NaN / Inf) add.
   */
  merge(other: Observer): this {
    const ctor = this.constructor as unknown as ObserverCtor;
    if (!(other instanceof Observer) || other.constructor !== this.constructor) {
      if (other instanceof Observer) {
        throw new TypeError(`Expected a ${ctor.observerType} for other but received a ${(other.constructor as unknown as ObserverCtor).observerType}`);
      }
      throw typeError('other', `a ${ctor.observerType}`, other);
    }
    const a = JSON.stringify({ s: specJSON(this.spec), o: this._mergeOptionsJSON() });
    const b = JSON.stringify({ s: specJSON(other.spec), o: other._mergeOptionsJSON() });
    if (a !== b) throw new RangeError(`Expected an observer with the same options for other but received ${b} (this observer: ${a})`);
    this._mergeState(other as this);
    this._stats.batches += other._stats.batches;
    this._stats.count += other._stats.count;
    this._stats.nanCount += other._stats.nanCount;
    this._stats.infCount += other._stats.infCount;
    return this;
  }

  /**
   * Rebuilds an observer from toJSON() output; a corrupt or foreign state throws a TypeError /
   * RangeError naming the field. Every field is checked, and every size (group shape, array
   * lengths, the histogram observers' memoryLimit) before anything of that size is allocated.
   * XObserver.fromJSON(state) accepts only states of XObserver (Observer.fromJSON: any class).
   */
  static fromJSON(state: unknown): Observer {
    const o = decObject('state', state);
    checkFields('state', o, ['type', 'version', 'spec', 'options', 'stats', 'state']);
    if (typeof o.type !== 'string') throw typeError('state.type', 'an observer class name', o.type);
    const ctor = registry.get(o.type);
    if (!ctor) throw rangeError('state.type', `one of ${[...registry.keys()].map((k) => `'${k}'`).join(', ')}`, `'${o.type}'`);
    const want = this as unknown as ObserverCtor;
    if ((want as unknown) !== Observer && ctor !== want && !(ctor.prototype instanceof (want as unknown as typeof Observer))) {
      throw rangeError('state.type', `'${want.observerType}'`, `'${o.type}'`);
    }
    if (typeof o.version !== 'number') throw typeError('state.version', `${STATE_VERSION}`, o.version);
    if (o.version !== STATE_VERSION) throw rangeError('state.version', `${STATE_VERSION}`, describe(o.version));
    const spec = decObject('state.spec', o.spec);
    checkFields('state.spec', spec, SPEC_KEYS);
    const options = decObject('state.options', o.options);
    for (const k of Object.keys(options)) {
      if ((SPEC_KEYS as readonly string[]).includes(k)) {
        throw new TypeError(`Expected the observer's own options for state.options but received the spec field '${k}' (it belongs in state.spec)`);
      }
    }
    let obs: Observer;
    try {
      obs = new ctor({ ...spec, ...options });
    } catch (e) {
      const E = e instanceof RangeError ? RangeError : TypeError;
      throw new E(`Expected valid options in state.spec / state.options but received an error: ${(e as Error).message}`);
    }
    obs._stats = decStats(o.stats);
    obs._loadState(decObject('state.state', o.state));
    return obs;
  }

  /** Bytes of the statistics this observer holds (its typed arrays); 0 before the first batch. */
  get byteLength(): number {
    return this._byteLength();
  }

  /** @internal */ protected abstract _resetState(): void;
  /** @internal */ protected abstract _ownJSON(): Record<string, unknown>;
  /** @internal */ protected abstract _stateJSON(): Record<string, unknown>;
  /** @internal */ protected abstract _loadState(s: Record<string, unknown>): void;
  /** @internal */ protected abstract _mergeState(other: this): void;
  /** @internal */ protected abstract _byteLength(): number;
  /** @internal the options two observers must share to merge (default: all of _ownJSON()). */
  protected _mergeOptionsJSON(): Record<string, unknown> {
    return this._ownJSON();
  }

  /** @internal */
  protected _count(n: number, nan: number, inf: number): void {
    if (n > 0) this._stats.batches++;
    this._stats.count += n;
    this._stats.nanCount += nan;
    this._stats.infCount += inf;
  }
}

export { f32 };
