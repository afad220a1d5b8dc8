// Scheme-level API: quantize a tensor with a QuantSpec, fake-quantize, min/max reductions.
import { checkScales, checkZeroPoints, outArray } from './args';
import { checkLength, checkOptions, checkTyped, typeError } from './errors';
import { checkShape, Granularity, granularityLayout, Layout } from './layout';
import * as native from './native';
import type { MinMaxResult } from './native';
import { computeQParamsFromMinMax } from './qparams';
import { QuantSpec, ResolvedSpec, resolveSpec, SPEC_KEYS, StorageDtype, storageBytes } from './spec';

export type { MinMaxResult };

const F32 = [Float32Array] as const;

/** Min and max of the finite values per tensor, per axis index, or per block. -0 is reported as 0. */
export function minMax(x: Float32Array, shape?: readonly number[], opts?: { granularity?: Granularity }): MinMaxResult {
  checkTyped<Float32Array>('x', x, F32);
  const sh = shape === undefined ? [x.length] : checkShape('shape', shape, x.length);
  const o = checkOptions('opts', opts, ['granularity']) as { granularity?: Granularity };
  return native.minMax(x, granularityLayout('opts.granularity', o.granularity, sh, x.length));
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
    const o = outArray('out', out, F32, this.numel);
    native.dequantize({
      q: this.data, out: o, scale: this.scale, zeroPoint: this.zeroPoint, signed: this.signed, storage: native.storageOf(this.dtype),
      layout: layouts.get(this) as Layout,
    });
    return o;
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
  const mm = native.minMax(x, L);
  const { scale, zeroPoint } = computeQParamsFromMinMax(mm.min, mm.max, s);
  return quantizeWithQParams(x, sh, s, L, scale, zeroPoint);
}

/** @internal quantize with given qparams (one per group of the layout; valid, unchecked). */
export function quantizeWithQParams(x: Float32Array, sh: readonly number[], s: ResolvedSpec, L: Layout, scale: Float32Array, zeroPoint: Int32Array): QuantizedTensor {
  const bytes = storageBytes(s.dtype, x.length);
  const data = s.dtype === 'int8' ? new Int8Array(bytes) : new Uint8Array(bytes);
  native.quantize({
    x, out: data, scale, zeroPoint, storage: native.storageOf(s.dtype), layout: L, qmin: s.qmin, qmax: s.qmax, formula: native.formulaOf(s.formula),
  });
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
  const scale = checkScales('qparams.scale', qparams.scale, L.groups, false, undefined);
  const zeroPoint = checkZeroPoints('qparams.zeroPoint', qparams.zeroPoint ?? 0, s.qmin, s.qmax, L.groups, false, undefined, undefined);
  const out = outArray('opts.out', outOpt, F32, x.length);
  let m: Uint8Array | null = null;
  if (mask !== undefined) {
    m = checkTyped<Uint8Array>('opts.mask', mask, [Uint8Array]);
    checkLength('opts.mask', m, x.length);
  }
  native.fakeQuantize({
    x, out, mask: m, scale, zeroPoint, layout: L, qmin: s.qmin, qmax: s.qmax, formula: native.formulaOf(s.formula),
  });
  return out;
}

