// Parameter initialisation, as torch.nn.init, drawing from a seeded Rng (default: the generator
// set by manualSeed). Values are drawn in row-major order.
import { checkOneOf, checkOptions, checkTyped, isTypedOf, rangeError, typeError } from '../errors';
import { resolveRng, Rng } from './random';

type Target = Float32Array | { data: Float32Array };
const F32 = [Float32Array] as const;

function arr(t: Target): Float32Array {
  if (isTypedOf(t, 'Float32Array')) return t;
  if (typeof t === 'object' && t !== null && 'data' in t) return checkTyped<Float32Array>('tensor.data', t.data, F32);
  throw typeError('tensor', 'a Float32Array or a Parameter', t);
}

function finite(name: string, v: unknown): number {
  if (typeof v !== 'number') throw typeError(name, 'a finite number', v);
  if (!Number.isFinite(v)) throw rangeError(name, 'a finite number', String(v));
  return v;
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number') throw typeError(name, 'a positive integer', v);
  if (!Number.isInteger(v) || v < 1) throw rangeError(name, 'a positive integer', String(v));
  return v;
}

export type Nonlinearity = 'linear' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu';

/** torch.nn.init.calculate_gain. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  const n = checkOneOf('nonlinearity', nonlinearity, ['linear', 'sigmoid', 'tanh', 'relu', 'leaky_relu'] as const);
  switch (n) {
    case 'linear': case 'sigmoid': return 1;
    case 'tanh': return 5 / 3;
    case 'relu': return Math.SQRT2;
    default: {
      const a = param === undefined ? 0.01 : finite('param', param);
      return Math.sqrt(2 / (1 + a * a));
    }
  }
}

/** Fills with U(lo, hi). */
export function uniform(t: Target, lo: number, hi: number, rng?: Rng | number): Float32Array {
  const a = arr(t);
  finite('lo', lo);
  finite('hi', hi);
  const r = resolveRng('rng', rng);
  for (let i = 0; i < a.length; i++) a[i] = r.uniform(lo, hi);
  return a;
}

/** Fills with N(mean, std^2). */
export function normal(t: Target, mean = 0, std = 1, rng?: Rng | number): Float32Array {
  const a = arr(t);
  finite('mean', mean);
  finite('std', std);
  const r = resolveRng('rng', rng);
  for (let i = 0; i < a.length; i++) a[i] = mean + std * r.normal();
  return a;
}

export function constant(t: Target, value: number): Float32Array {
  return arr(t).fill(value);
}

export function zeros(t: Target): Float32Array {
  return arr(t).fill(0);
}

export function ones(t: Target): Float32Array {
  return arr(t).fill(1);
}

export interface KaimingOptions {
  /** Negative slope for 'leaky_relu' (default 0). */
  a?: number;
  /** Default 'leaky_relu', as PyTorch. */
  nonlinearity?: Nonlinearity;
  rng?: Rng | number;
}

function kaimingBound(opts: KaimingOptions | undefined, fanIn: number, name: string): [number, Rng] {
  const o = checkOptions('opts', opts, ['a', 'nonlinearity', 'rng']) as KaimingOptions;
  positiveInt(name, fanIn);
  const nl = o.nonlinearity ?? 'leaky_relu';
  const gain = calculateGain(nl, nl === 'leaky_relu' ? (o.a === undefined ? 0 : finite('opts.a', o.a)) : undefined);
  return [gain / Math.sqrt(fanIn), resolveRng('opts.rng', o.rng)];
}

/**
 * torch.nn.init.kaiming_uniform_ (fan_in mode): U(-b, b), b = gain * sqrt(3 / fanIn).
 * With { a: sqrt(5) } this is PyTorch Linear's default weight init, b = 1 / sqrt(fanIn).
 */
export function kaimingUniform(t: Target, fanIn: number, opts?: KaimingOptions): Float32Array {
  const [s, r] = kaimingBound(opts, fanIn, 'fanIn');
  const b = Math.sqrt(3) * s;
  return uniform(t, -b, b, r);
}

/** torch.nn.init.kaiming_normal_ (fan_in mode): N(0, (gain / sqrt(fanIn))^2). */
export function kaimingNormal(t: Target, fanIn: number, opts?: KaimingOptions): Float32Array {
  const [s, r] = kaimingBound(opts, fanIn, 'fanIn');
  return normal(t, 0, s, r);
}

export interface XavierOptions {
  gain?: number;
  rng?: Rng | number;
}

/** torch.nn.init.xavier_uniform_: U(-b, b), b = gain * sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform(t: Target, fanIn: number, fanOut: number, opts?: XavierOptions): Float32Array {
  const o = checkOptions('opts', opts, ['gain', 'rng']) as XavierOptions;
  positiveInt('fanIn', fanIn);
  positiveInt('fanOut', fanOut);
  const gain = o.gain === undefined ? 1 : finite('opts.gain', o.gain);
  const b = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform(t, -b, b, resolveRng('opts.rng', o.rng));
}

/** torch.nn.init.xavier_normal_: N(0, (gain * sqrt(2 / (fanIn + fanOut)))^2). */
export function xavierNormal(t: Target, fanIn: number, fanOut: number, opts?: XavierOptions): Float32Array {
  const o = checkOptions('opts', opts, ['gain', 'rng']) as XavierOptions;
  positiveInt('fanIn', fanIn);
  positiveInt('fanOut', fanOut);
  const gain = o.gain === undefined ? 1 : finite('opts.gain', o.gain);
  return normal(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), resolveRng('opts.rng', o.rng));
}
