// Scheme-level API: quantize a tensor with a QuantSpec, fake-quantize, min/max reductions.
import { native } from './binding';
import { checkLength, checkOptions, checkTyped, rangeError, typeError } from './errors';
import { checkShape, GRAN_PER_TENSOR, Granularity, granularityLayout, Layout } from './layout';
import { computeQParamsFromMinMax } from './qparams';
import { isNibble, QuantSpec, ResolvedSpec, resolveSpec, SPEC_KEYS, StorageDtype, storageBytes } from './spec';

const F32 = [Float32Array] as const;

export interface MinMaxResult {
  /** Per group (one entry for per-tensor): the smallest finite value, +Infinity if none. */
  min: Float32Array;
  /** Per group: the largest finite value, -Infinity if none. */
  max: Float32Array;
  /** NaN values skipped. */
  nanCount: number;
  /** +-Infinity values skipped. */
  infCount: number;
}

/** Min and max of the finite values per tensor, per axis index, or per block. -0 is reported as 0. */
export function minMax(x: Float32Array, shape?: readonly number[], opts?: { granularity?: Granularity }): MinMaxResult {
  checkTyped<Float32Array>('x', x, F32);
  const sh = shape === undefined ? [x.length] : checkShape('shape', shape, x.length);
  const o = checkOptions('opts', opts, ['granularity']) as { granularity?: Granularity };
  const L = granularityLayout('opts.granularity', o.granularity, sh, x.length);
  return minMaxLayout(x, L);
}

export function minMaxLayout(x: Float32Array, L: Layout): MinMaxResult {
  const min = new Float32Array(L.groups);
  const max = new Float32Array(L.groups);
  const [nanCount, infCount] = native.minMax(x, min, max, L.outer, L.axisDim, L.inner, L.gran, L.blockSize);
  return { min, max, nanCount, infCount };
}

/** A quantized tensor: codes plus everything needed to read them back. */
export class QuantizedTensor {
  /** Codes: Int8Array (int8), Uint8Array (uint8), or packed Uint8Array, low nibble first (int4/uint4). */
  readonly data: Int8Array | Uint8Array;
  readonly shape: readonly number[];
  /** Storage type of data. */
  readonly dtype: StorageDtype;
  readonly bits: number;
  readonly signed: boolean;
  readonly scheme: QuantSpec['scheme'];
  readonly formula: QuantSpec['formula'];
  /** Code range actually used (e.g. -127..127 for restricted symmetric int8). */
  readonly qmin: number;
  readonly qmax: number;
  /** One per group: 1 (per-tensor), shape[axis] (per-axis), or the blocked shape's element count. */
  readonly scale: Float32Array;
  readonly zeroPoint: Int32Array;
  /** Quantization axis, or null for per-tensor. */
  readonly axis: number | null;
  /** Block size along axis, or null when not blocked. */
  readonly blockSize: number | null;

  /** @internal */
  constructor(init: {
    data: Int8Array | Uint8Array; shape: readonly number[]; spec: ResolvedSpec; scale: Float32Array; zeroPoint: Int32Array; layout: Layout;
  }) {
    this.data = init.data;
    this.shape = Object.freeze(init.shape.slice());
    this.dtype = init.spec.dtype;
    this.bits = init.spec.bits;
    this.signed = init.spec.signed;
    this.scheme = init.spec.scheme;
    this.formula = init.spec.formula;
    this.qmin = init.spec.qmin;
    this.qmax = init.spec.qmax;
    this.scale = init.scale;
    this.zeroPoint = init.zeroPoint;
    this.axis = init.layout.axis;
    this.blockSize = init.layout.blockSize || null;
    layouts.set(this, init.layout);
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Bytes of codes plus qparams. */
  get byteLength(): number {
    return this.data.byteLength + this.scale.byteLength + this.zeroPoint.byteLength;
  }

  /** Back to float32: (q - zeroPoint) * scale. */
  dequantize(out?: Float32Array): Float32Array {
    const n = this.numel;
    if (out === undefined) out = new Float32Array(n);
    else {
      checkTyped<Float32Array>('out', out, F32);
      checkLength('out', out, n);
    }
    const L = layouts.get(this) as Layout;
    native.dequantize(this.data, out, this.scale, this.zeroPoint, this.signed, isNibble(this.dtype) ? 1 : 0,
      L.outer, L.axisDim, L.inner, L.gran, L.blockSize);
    return out;
  }
}

const layouts = new WeakMap<QuantizedTensor, Layout>();

/**
 * Quantize x with a scheme: min/max of the finite values per granularity group, scale and zero
 * point by the spec's formula, then round half to even and saturate.
 */
export function quantize(x: Float32Array, shape: readonly number[], spec?: Partial<QuantSpec>): QuantizedTensor {
  checkTyped<Float32Array>('x', x, F32);
  const sh = checkShape('shape', shape, x.length);
  const s = resolveSpec('spec', checkOptions('spec', spec, SPEC_KEYS) as Partial<QuantSpec>);
  const L = granularityLayout('spec.granularity', s.granularity, sh, x.length);
  const mm = minMaxLayout(x, L);
  const { scale, zeroPoint } = computeQParamsFromMinMax(mm.min, mm.max, s);
  return quantizeWithQParams(x, sh, s, L, scale, zeroPoint);
}

/** @internal quantize with given qparams (one per group of the layout; valid, unchecked). */
export function quantizeWithQParams(x: Float32Array, sh: readonly number[], s: ResolvedSpec, L: Layout, scale: Float32Array, zeroPoint: Int32Array): QuantizedTensor {
  const bytes = storageBytes(s.dtype, x.length);
  const data = s.dtype === 'int8' ? new Int8Array(bytes) : new Uint8Array(bytes);
  native.quantize(x, data, scale, zeroPoint, isNibble(s.dtype) ? 1 : 0, L.outer, L.axisDim, L.inner, L.gran,
    L.blockSize, s.qmin, s.qmax, s.formula === 'pytorch' ? 1 : 0);
  return new QuantizedTensor({ data, shape: sh, spec: s, scale, zeroPoint, layout: L });
}

export interface FakeQuantizeOptions extends Partial<QuantSpec> {
  /** Output (may be x itself for in-place). */
  out?: Float32Array;
  /** Filled with the straight-through-estimator mask: 1 where x was inside the range, else 0. */
  mask?: Uint8Array;
}

/**
 * Fake-quantize: dequantize(quantize(x)) in one pass, with the spec's code range, granularity and
 * formula ('pytorch' multiplies by the float32 reciprocal of the scale, as PyTorch's
 * fake_quantize_per_*_affine do; 'onnx' divides).
 */
export function fakeQuantize(
  x: Float32Array, shape: readonly number[], qparams: { scale: number | Float32Array; zeroPoint: number | Int32Array | Int8Array | Uint8Array },
  opts?: FakeQuantizeOptions,
): Float32Array {
  checkTyped<Float32Array>('x', x, F32);
  const sh = checkShape('shape', shape, x.length);
  const o = checkOptions('opts', opts, [...SPEC_KEYS, 'out', 'mask']) as FakeQuantizeOptions;
  const { out: outOpt, mask, ...specPart } = o;
  const s = resolveSpec('opts', specPart);
  const L = granularityLayout('opts.granularity', s.granularity, sh, x.length);
  if (typeof qparams !== 'object' || qparams === null) throw typeError('qparams', 'an object { scale, zeroPoint }', qparams);
  const scale = qparams.scale;
  const zp = qparams.zeroPoint ?? 0;
  if (typeof scale === 'number') {
    if (L.gran !== GRAN_PER_TENSOR) throw typeError('qparams.scale', `a Float32Array of length ${L.groups}`, scale);
    if (!(scale > 0) || !Number.isFinite(scale)) throw rangeError('qparams.scale', 'a positive finite number', String(scale));
  } else {
    checkTyped<Float32Array>('qparams.scale', scale, F32);
    checkLength('qparams.scale', scale, L.groups);
    for (let i = 0; i < scale.length; i++) {
      if (!(scale[i] > 0) || scale[i] === Infinity) throw rangeError(`qparams.scale[${i}]`, 'a positive finite number', String(scale[i]));
    }
  }
  if (typeof zp === 'number') {
    if (!Number.isInteger(zp) || zp < s.qmin || zp > s.qmax) throw rangeError('qparams.zeroPoint', `an integer between ${s.qmin} and ${s.qmax}`, String(zp));
    if (L.groups !== 1) throw typeError('qparams.zeroPoint', `an Int32Array of length ${L.groups}`, zp);
  } else {
    checkTyped('qparams.zeroPoint', zp, [Int32Array, Int8Array, Uint8Array]);
    checkLength('qparams.zeroPoint', zp, L.groups);
    for (let i = 0; i < zp.length; i++) {
      if (zp[i] < s.qmin || zp[i] > s.qmax) throw rangeError(`qparams.zeroPoint[${i}]`, `an integer between ${s.qmin} and ${s.qmax}`, String(zp[i]));
    }
  }
  let out = outOpt;
  if (out === undefined) out = new Float32Array(x.length);
  else {
    checkTyped<Float32Array>('opts.out', out, F32);
    checkLength('opts.out', out, x.length);
  }
  let m: Uint8Array | null = null;
  if (mask !== undefined) {
    m = checkTyped<Uint8Array>('opts.mask', mask, [Uint8Array]);
    checkLength('opts.mask', m, x.length);
  }
  native.fakeQuantize(x, out, m, scale, zp, L.outer, L.axisDim, L.inner, L.gran, L.blockSize, s.qmin, s.qmax,
    s.formula === 'pytorch' ? 1 : 0);
  return out;
}

