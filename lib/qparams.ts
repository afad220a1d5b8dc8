// Scale and zero point from a range, exactly as ONNX Runtime's quantization tools or PyTorch's
// observers compute them (see docs/numerics.md and ../shared/reference/formulas.md).
import { checkOptions, describe, isTypedOf, rangeError, typeError } from './errors';
import { QuantSpec, ResolvedSpec, resolveSpec, SPEC_KEYS } from './spec';

export interface QParams {
  scale: Float32Array;
  zeroPoint: Int32Array;
}

/** float32 machine epsilon: PyTorch's scale floor. */
export const FLOAT32_EPS = 1.1920928955078125e-7;
/** Smallest normal float32: ONNX Runtime's "scale too small" threshold. */
export const FLOAT32_TINY = 1.1754943508222875e-38;

const f32 = Math.fround;

/** Round half to even (numpy.round, torch.round, nearbyint). */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** One range -> [scale, zeroPoint]. min/max are float32 values; min <= max, or +inf/-inf for "nothing seen". */
export function qparamsOne(min: number, max: number, s: ResolvedSpec): [number, number] {
  if (min === Infinity && max === -Infinity) return [1, 0]; // nothing observed (PyTorch's convention)
  const { qmin, qmax } = s;
  const minNeg = Math.min(min, 0);
  const maxPos = Math.max(max, 0);
  if (s.formula === 'pytorch') {
    if (s.scheme === 'symmetric') {
      const absmax = Math.max(-minNeg, maxPos);
      const scale = Math.max(f32(absmax / f32((qmax - qmin) / 2)), FLOAT32_EPS);
      let zp = 0;
      if (!s.signed) zp = s.bits === 8 && qmin === 0 && qmax === 255 ? 128 : Math.floor((qmin + qmax) / 2);
      return [scale, zp];
    }
    const scale = Math.max(f32(f32(maxPos - minNeg) / (qmax - qmin)), FLOAT32_EPS);
    const zp = clamp(qmin - roundHalfEven(f32(minNeg / scale)), qmin, qmax);
    return [scale, zp];
  }
  // ONNX Runtime quant_utils.compute_scale_zp: float64 arithmetic, scale cast to float32 last.
  if (s.scheme === 'symmetric') {
    const absmax = Math.max(-minNeg, maxPos);
    if (s.signed) {
      const scale64 = absmax / qmax;
      if (scale64 < FLOAT32_TINY) return [1, 0];
      return [f32(scale64), 0];
    }
    const scale64 = f32(2 * absmax) / (qmax - qmin);
    if (scale64 < FLOAT32_TINY) return [1, 0];
    return [f32(scale64), roundHalfEven((qmin + qmax) / 2)];
  }
  const scale64 = f32(maxPos - minNeg) / (qmax - qmin);
  if (scale64 < FLOAT32_TINY) return [1, 0];
  const zp = clamp(roundHalfEven(qmin - minNeg / scale64), qmin, qmax);
  return [f32(scale64), zp];
}

function checkRange(i: number | null, min: number, max: number): void {
  const at = i === null ? '' : `[${i}]`;
  if (min === Infinity && max === -Infinity) return;
  if (Number.isNaN(min) || !Number.isFinite(min)) throw rangeError(`min${at}`, 'a finite number (or +Infinity with max -Infinity for an empty range)', String(min));
  if (Number.isNaN(max) || !Number.isFinite(max)) throw rangeError(`max${at}`, 'a finite number (or -Infinity with min +Infinity for an empty range)', String(max));
  if (min > max) throw rangeError(`min${at}`, `a value <= max${at} (${max})`, String(min));
}

function toF32(name: string, v: unknown): Float32Array | number {
  if (typeof v === 'number') return v;
  if (isTypedOf(v, 'Float32Array')) return v;
  if (isTypedOf(v, 'Float64Array') || Array.isArray(v)) return Float32Array.from(v as ArrayLike<number>);
  throw typeError(name, 'a number, a Float32Array or an array of numbers', v);
}

/**
 * Scale and zero point for ranges [min, max] (numbers, or arrays for per-channel / per-block).
 * Values are taken as float32. min = +Infinity with max = -Infinity means "nothing observed" and
 * gives scale 1, zero point 0.
 */
export function computeQParams(min: number | Float32Array | readonly number[], max: number | Float32Array | readonly number[], spec?: Partial<QuantSpec>): QParams {
  const s = resolveSpec('spec', checkOptions('spec', spec, SPEC_KEYS) as Partial<QuantSpec>);
  const mn = toF32('min', min);
  const mx = toF32('max', max);
  if (typeof mn === 'number' || typeof mx === 'number') {
    if (typeof mn !== 'number' || typeof mx !== 'number') {
      throw typeError('max', typeof mn === 'number' ? 'a number (as min is a number)' : `a Float32Array of length ${(mn as Float32Array).length} (as min is an array)`, max);
    }
    const a = f32(mn);
    const b = f32(mx);
    checkRange(null, a, b);
    const [scale, zp] = qparamsOne(a, b, s);
    return { scale: Float32Array.of(scale), zeroPoint: Int32Array.of(zp) };
  }
  if (mn.length !== mx.length) throw rangeError('max', `length ${mn.length} (the length of min)`, describe(mx));
  const scale = new Float32Array(mn.length);
  const zeroPoint = new Int32Array(mn.length);
  for (let i = 0; i < mn.length; i++) {
    checkRange(i, mn[i], mx[i]);
    const [sc, zp] = qparamsOne(mn[i], mx[i], s);
    scale[i] = sc;
    zeroPoint[i] = zp;
  }
  return { scale, zeroPoint };
}

/** qparams for every group of a min/max reduction (values come from minMax: no checks). */
export function computeQParamsFromMinMax(min: Float32Array, max: Float32Array, s: ResolvedSpec): QParams {
  const scale = new Float32Array(min.length);
  const zeroPoint = new Int32Array(min.length);
  for (let i = 0; i < min.length; i++) {
    const [sc, zp] = qparamsOne(min[i], max[i], s);
    scale[i] = sc;
    zeroPoint[i] = zp;
  }
  return { scale, zeroPoint };
}
