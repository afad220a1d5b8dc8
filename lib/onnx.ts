// ONNX-exact operators (opset 21 reference semantics): QuantizeLinear, DequantizeLinear,
// DynamicQuantizeLinear. See docs/numerics.md.
import { checkScaleCount, checkZeroPoints, outArray, scaleForm } from './args';
import { checkOneOf, checkOptions, checkTyped, describe, isTypedOf, rangeError, typeError } from './errors';
import { axisLayout, checkShape, GRAN_PER_TENSOR, Layout, normalizeAxis, perTensorLayout } from './layout';
import * as native from './native';
import { DTYPE_RANGE, isNibble, isSignedDtype, StorageDtype, storageBytes } from './spec';

export type QDtype = StorageDtype;
export type ZeroPoint = number | Int8Array | Uint8Array | Int32Array;

export interface QuantizeLinearOptions {
  /** Row-major shape of x (default [x.length]). */
  shape?: readonly number[];
  /** Quantization axis for per-axis and blocked scales (ONNX default 1; negative counts from the end). */
  axis?: number;
  /** Block size along axis; scale then has x's shape with that dimension divided (rounded up). */
  blockSize?: number;
  /** Output type (default: from zeroPoint's array type, else uint8 as in ONNX). */
  dtype?: QDtype;
  /** Output to fill instead of allocating: Int8Array for int8, Uint8Array for uint8/int4/uint4 (packed). */
  out?: Int8Array | Uint8Array;
}

export interface DequantizeLinearOptions {
  shape?: readonly number[];
  axis?: number;
  blockSize?: number;
  /** Input type (default: int8 for Int8Array, uint8 for Uint8Array); int4/uint4 read packed bytes. */
  dtype?: QDtype;
  out?: Float32Array;
}

const Q_OPTS = ['shape', 'axis', 'blockSize', 'dtype', 'out'] as const;
const DTYPES = ['int8', 'uint8', 'int4', 'uint4'] as const;
const F32 = [Float32Array] as const;

function zeroPointDtype(zp: unknown): QDtype | null {
  if (isTypedOf(zp, 'Int8Array')) return 'int8';
  if (isTypedOf(zp, 'Uint8Array')) return 'uint8';
  return null;
}

/** Works out per-tensor / per-axis / blocked from the scale's form and the options, as ONNX does. */
function onnxLayout(shape: readonly number[], numel: number, scale: number | Float32Array, o: { axis?: unknown; blockSize?: unknown }): Layout {
  const block = o.blockSize === undefined || o.blockSize === 0 ? 0 : o.blockSize;
  if (block !== 0 && (typeof block !== 'number' || !Number.isSafeInteger(block) || block < 1)) {
    if (typeof block !== 'number') throw typeError('opts.blockSize', 'a positive integer', block);
    throw rangeError('opts.blockSize', 'a positive integer', String(block));
  }
  const scalarScale = typeof scale === 'number' || (scale.length === 1 && o.axis === undefined);
  if (block === 0 && scalarScale) return perTensorLayout(numel);
  const axis = normalizeAxis('opts.axis', o.axis === undefined ? 1 : o.axis, shape.length);
  return axisLayout(shape, axis, block as number);
}

function describeScale(L: Layout): string {
  if (L.gran === GRAN_PER_TENSOR) return 'per-tensor';
  if (L.blockSize) return `blocked scale of shape [${L.scaleShape.join(', ')}]`;
  return `one per index of axis ${L.axis}`;
}

/** scale and zeroPoint against the layout (scale's form was checked before the layout was known); the zero point. */
function checkQParams(scale: number | Float32Array, zp: unknown, dtype: QDtype, L: Layout): ZeroPoint {
  checkScaleCount('scale', scale, L.groups, false, () => describeScale(L));
  if (zp === undefined || zp === null) return 0;
  const [lo, hi] = DTYPE_RANGE[dtype];
  return checkZeroPoints('zeroPoint', zp, lo, hi, L.groups, false, undefined, dtype);
}

/**
 * ONNX QuantizeLinear: y = saturate(round_half_even(x / scale) + zeroPoint).
 * NaN maps to the zero point; +-Inf and out-of-range values saturate.
 */
export function quantizeLinear(
  x: Float32Array, scale: number | Float32Array, zeroPoint?: ZeroPoint | null, opts?: QuantizeLinearOptions,
): Int8Array | Uint8Array {
  checkTyped<Float32Array>('x', x, F32);
  const sc = scaleForm('scale', scale);
  const o = opts === undefined ? {} : checkOptions('opts', opts, Q_OPTS) as QuantizeLinearOptions;
  let dtype: QDtype;
  if (o.dtype !== undefined) dtype = checkOneOf('opts.dtype', o.dtype, DTYPES);
  else dtype = zeroPointDtype(zeroPoint) ?? 'uint8';
  const n = x.length;
  const shape = o.shape === undefined ? [n] : checkShape('opts.shape', o.shape, n);
  const L = onnxLayout(shape, n, sc, o);
  const zp = checkQParams(sc, zeroPoint, dtype, L);
  const out = outArray<Int8Array | Uint8Array>('opts.out', o.out, dtype === 'int8' ? [Int8Array] : [Uint8Array], storageBytes(dtype, n));
  const [qmin, qmax] = DTYPE_RANGE[dtype];
  native.quantize({ x, out, scale: sc, zeroPoint: zp, storage: native.storageOf(dtype), layout: L, qmin, qmax, formula: native.Formula.Onnx });
  return out;
}

/** ONNX DequantizeLinear: y = (q - zeroPoint) * scale in float32. */
export function dequantizeLinear(
  q: Int8Array | Uint8Array, scale: number | Float32Array, zeroPoint?: ZeroPoint | null, opts?: DequantizeLinearOptions,
): Float32Array {
  checkTyped<Int8Array | Uint8Array>('q', q, [Int8Array, Uint8Array]);
  const sc = scaleForm('scale', scale);
  const o = opts === undefined ? {} : checkOptions('opts', opts, Q_OPTS) as DequantizeLinearOptions;
  let dtype: QDtype;
  if (o.dtype !== undefined) {
    dtype = checkOneOf('opts.dtype', o.dtype, DTYPES);
    if (dtype === 'int8' && !isTypedOf(q, 'Int8Array')) throw typeError('q', 'Int8Array (dtype int8)', q);
    if (dtype === 'uint8' && !isTypedOf(q, 'Uint8Array')) throw typeError('q', 'Uint8Array (dtype uint8)', q);
  } else {
    dtype = isTypedOf(q, 'Int8Array') ? 'int8' : 'uint8';
  }
  const nib = isNibble(dtype);
  let n: number;
  let shape: readonly number[];
  if (o.shape === undefined) {
    n = nib ? q.length * 2 : q.length;
    shape = [n];
  } else {
    shape = checkShape('opts.shape', o.shape, null);
    n = shape.reduce((a, b) => a * b, 1);
    const want = storageBytes(dtype, n);
    if (q.length !== want) {
      throw rangeError('q', `length ${want} (${n} ${dtype} elements${nib ? ', two per byte' : ''})`, describe(q));
    }
  }
  const L = onnxLayout(shape, n, sc, o);
  const zp = checkQParams(sc, zeroPoint, dtype, L);
  const out = outArray('opts.out', o.out, F32, n);
  native.dequantize({ q, out, scale: sc, zeroPoint: zp, signed: isSignedDtype(dtype), storage: native.storageOf(dtype), layout: L });
  return out;
}

export interface DynamicQuantized {
  data: Uint8Array;
  scale: number;
  zeroPoint: number;
}

/**
 * ONNX DynamicQuantizeLinear (uint8): scale and zero point from the data's range widened to
 * include 0, then QuantizeLinear. NaN and +-Inf are left out of the range (and quantize to the
 * zero point / saturate). A zero range (all zeros, empty input) gives scale 1, zero point 0.
 */
export function dynamicQuantizeLinear(x: Float32Array, opts?: { out?: Uint8Array }): DynamicQuantized {
  checkTyped<Float32Array>('x', x, F32);
  const o = opts === undefined ? {} : checkOptions('opts', opts, ['out']) as { out?: Uint8Array };
  const out = outArray('opts.out', o.out, [Uint8Array], x.length);
  const [scale, zeroPoint] = native.dynamicQuantize(x, out);
  return { data: out, scale, zeroPoint };
}
