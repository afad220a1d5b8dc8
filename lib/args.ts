// The argument rules of the public API, each written once: matrix dimensions, flags, scales, zero
// points, output arrays, biases, overlaps. lib/tensor.ts, lib/onnx.ts, lib/gemm.ts and
// lib/matmul-f32.ts check with these before calling lib/native.ts; native/napi/args.h is the C++
// twin that checks again (memory safety never depends on this file). Generic checks (typed
// arrays, integers, option objects) and the message pattern are in errors.ts.
import { checkInt, checkTyped, describe, isTypedOf, rangeError, typedLength, typeError } from './errors';
import { isSignedDtype, StorageDtype } from './spec';

/** Largest matrix dimension (native/napi/args.h kMaxMatrixDim). */
export const MAX_DIM = 2 ** 40;

const F32 = [Float32Array] as const;
const I32 = [Int32Array] as const;
const ZP_KINDS = [Int32Array, Int8Array, Uint8Array] as const;

type Ctor<T> = { new (n: number): T; name: string };

function paren(s: string | undefined): string {
  return s === undefined ? '' : ` (${s})`;
}

/** A matrix dimension: an integer in [lo, 2^40]. */
export function checkDim(name: string, v: unknown, lo = 1): number {
  return checkInt(name, v, lo, MAX_DIM);
}

/** A boolean option, dflt when undefined. */
export function checkBool(name: string, v: unknown, dflt = false): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw typeError(name, 'a boolean', v);
  return v;
}

// How many scales or zero points an argument holds: `count`, or with `broadcast` also one for all.
// `what` names the count in messages ('one per row'); a function is called only for a message.
// (Hot: positional parameters, no object per call, messages built only when thrown.)
export type What = string | (() => string) | undefined;

function whatText(what: What): string {
  return paren(typeof what === 'function' ? what() : what);
}

function checkCount(name: string, v: ArrayBufferView, count: number, broadcast: boolean, what: What): void {
  const n = typedLength(v);
  if (n === count || (broadcast && n === 1)) return;
  throw rangeError(name, `length ${broadcast ? `1 or ${count}` : count}${whatText(what)}`, describe(v));
}

// ---- scales -----------------------------------------------------------------------------------

/** A positive finite number, as float32 too (the kernels' type). */
function scaleOk(v: number): boolean {
  const f = Math.fround(v);
  return v > 0 && v !== Infinity && f > 0 && f !== Infinity;
}

/** A scale given as a number: positive and finite, as float32 too. */
export function checkScaleNumber(name: string, v: unknown): number {
  if (typeof v !== 'number') throw typeError(name, 'a positive finite number', v);
  if (!scaleOk(v)) throw rangeError(name, 'a positive finite number', String(v));
  return v;
}

/** A scale's form: a number (checked) or a Float32Array (its values are checked by checkScaleCount). */
export function scaleForm(name: string, v: unknown): number | Float32Array {
  if (typeof v === 'number') return checkScaleNumber(name, v);
  if (!isTypedOf(v, 'Float32Array')) throw typeError(name, 'a number or Float32Array', v);
  return checkTyped<Float32Array>(name, v, F32);
}

/** The count rule, and each value of an array positive and finite. */
export function checkScaleCount(name: string, s: number | Float32Array, count: number, broadcast: boolean, what: What): number | Float32Array {
  if (typeof s === 'number') {
    if (broadcast || count === 1) return s;
    throw typeError(name, `a Float32Array of length ${count}${whatText(what)}`, s);
  }
  checkCount(name, s, count, broadcast, what);
  for (let i = 0; i < s.length; i++) {
    if (!(s[i] > 0) || s[i] === Infinity) throw rangeError(`${name}[${i}]`, 'a positive finite number', String(s[i]));
  }
  return s;
}

/** Scales: a positive finite number or a Float32Array of them, as many as the count rule says. */
export function checkScales(name: string, v: unknown, count: number, broadcast: boolean, what: What): number | Float32Array {
  if (typeof v === 'number' && (broadcast || count === 1) && scaleOk(v)) return v; // the common case, kept small for inlining
  return checkScaleCount(name, scaleForm(name, v), count, broadcast, what);
}

// ---- zero points ------------------------------------------------------------------------------

/**
 * Zero points: an integer or an Int32Array / Int8Array / Uint8Array of them, in [lo, hi], as many
 * as the count rule says. With dtype, messages name it and an Int8Array / Uint8Array must have its
 * signedness.
 */
export function checkZeroPoints(
  name: string, v: unknown, lo: number, hi: number, count: number, broadcast: boolean, what: What, dtype: StorageDtype | undefined,
): number | Int32Array | Int8Array | Uint8Array {
  // the common case, kept small for inlining
  if (typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi && (broadcast || count === 1)) return v;
  return zeroPointsChecked(name, v, lo, hi, count, broadcast, what, dtype);
}

function zeroPointsChecked(
  name: string, v: unknown, lo: number, hi: number, count: number, broadcast: boolean, what: What, dtype: StorageDtype | undefined,
): number | Int32Array | Int8Array | Uint8Array {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < lo || v > hi) throw rangeError(name, rangeText(lo, hi, dtype), String(v));
    if (broadcast || count === 1) return v;
    throw typeError(name, `an Int32Array of length ${count}${whatText(what)}`, v);
  }
  const z = checkTyped<Int32Array | Int8Array | Uint8Array>(name, v, ZP_KINDS);
  if (dtype !== undefined && !isTypedOf(z, 'Int32Array') && isTypedOf(z, 'Int8Array') !== isSignedDtype(dtype)) {
    throw typeError(name, `${isSignedDtype(dtype) ? 'Int8Array' : 'Uint8Array'} or Int32Array (dtype ${dtype})`, z);
  }
  checkCount(name, z, count, broadcast, what);
  for (let i = 0; i < z.length; i++) {
    if (z[i] < lo || z[i] > hi) throw rangeError(`${name}[${i}]`, rangeText(lo, hi, dtype), String(z[i]));
  }
  return z;
}

function rangeText(lo: number, hi: number, dtype: StorageDtype | undefined): string {
  return `an integer between ${lo} and ${hi}${paren(dtype)}`;
}

// ---- arrays -----------------------------------------------------------------------------------

/**
 * An output option: a `ctors` array of n elements, else a new `ctors[0]` (sync) or null (async:
 * the addon creates it). `label` names n in messages ('M * N = ').
 */
export function outArray<T extends ArrayBufferView>(
  name: string, out: unknown, ctors: readonly Ctor<T>[], n: number, async = false, label = '',
): T {
  if (out === undefined) return async ? (null as unknown as T) : new ctors[0](n);
  const o = checkTyped<T>(name, out, ctors);
  if (typedLength(o) !== n) throw rangeError(name, `length ${label}${n}`, describe(o));
  return o;
}

/** A bias of N values: Float32Array, or Int32Array for requantizing outputs. */
export function checkBias(name: string, v: unknown, kind: 'Float32Array', N: number): Float32Array;
export function checkBias(name: string, v: unknown, kind: 'Int32Array', N: number): Int32Array;
export function checkBias(name: string, v: unknown, kind: 'Float32Array' | 'Int32Array', N: number): Float32Array | Int32Array {
  const b = checkTyped<Float32Array | Int32Array>(name, v, kind === 'Float32Array' ? F32 : I32);
  if (typedLength(b) !== N) throw rangeError(name, `length N = ${N}`, describe(b));
  return b;
}

/** Whether two views share bytes. */
export function overlaps(x: ArrayBufferView, y: ArrayBufferView): boolean {
  if (x.buffer !== y.buffer || x.byteLength === 0 || y.byteLength === 0) return false;
  return x.byteOffset < y.byteOffset + y.byteLength && y.byteOffset < x.byteOffset + x.byteLength;
}
