// Shapes, axes and the [outer, axisDim, inner] view the native kernels take (a Layout is the
// NativeLayout of lib/native.ts plus what the TypeScript side needs).
import { checkInt, describe, rangeError, typeError } from './errors';
import { GranularityCode, NativeLayout } from './native';

// Short names of the GranularityCode values.
export const GRAN_PER_TENSOR = GranularityCode.PerTensor;
export const GRAN_PER_AXIS = GranularityCode.PerAxis;
export const GRAN_BLOCKED = GranularityCode.Blocked;
export type GranCode = GranularityCode;

export interface Layout extends NativeLayout {
  axis: number | null; // normalised axis, null for per-tensor
  groups: number; // number of scales
  /** Shape of the scale tensor (ONNX conventions). */
  scaleShape: number[];
}

export function checkShape(name: string, shape: unknown, numel: number | null, numelName = 'x'): number[] {
  if (!Array.isArray(shape)) throw typeError(name, 'an array of non-negative integers', shape);
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw typeError(`${name}[${i}]`, 'a non-negative integer', d);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw rangeError(name, 'a shape whose element count is a safe integer', `[${shape.join(', ')}]`);
  if (numel !== null && n !== numel) {
    throw rangeError(name, `a shape with ${numel} elements (the length of ${numelName})`, `[${shape.join(', ')}] (${n} elements)`);
  }
  return shape as number[];
}

export function normalizeAxis(name: string, axis: unknown, rank: number): number {
  if (typeof axis !== 'number' || !Number.isInteger(axis)) throw typeError(name, 'an integer', axis);
  if (rank === 0 || axis < -rank || axis >= rank) {
    throw rangeError(name, rank === 0 ? 'no axis (the shape has rank 0)' : `an axis between ${-rank} and ${rank - 1}`, `${axis} (shape of rank ${rank})`);
  }
  return axis < 0 ? axis + rank : axis;
}

export function perTensorLayout(numel: number): Layout {
  return { gran: GRAN_PER_TENSOR, outer: 1, axisDim: 1, inner: numel, blockSize: 0, axis: null, groups: 1, scaleShape: [] };
}

export function axisLayout(shape: readonly number[], axis: number, blockSize: number): Layout {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  const axisDim = shape[axis];
  if (blockSize > 0) {
    const nb = Math.ceil(axisDim / blockSize);
    const scaleShape = shape.slice();
    scaleShape[axis] = nb;
    return { gran: GRAN_BLOCKED, outer, axisDim, inner, blockSize, axis, groups: outer * nb * inner, scaleShape };
  }
  return { gran: GRAN_PER_AXIS, outer, axisDim, inner, blockSize: 0, axis, groups: axisDim, scaleShape: [axisDim] };
}

export type Granularity = 'per-tensor' | { axis: number } | { axis: number; blockSize: number };

/** Layout of a spec's granularity over a shape. */
export function granularityLayout(name: string, g: unknown, shape: readonly number[], numel: number): Layout {
  if (g === undefined || g === 'per-tensor') return perTensorLayout(numel);
  if (typeof g !== 'object' || g === null || Array.isArray(g)) {
    throw typeError(name, "'per-tensor', { axis } or { axis, blockSize }", g);
  }
  for (const k of Object.keys(g)) {
    if (k !== 'axis' && k !== 'blockSize') {
      throw new TypeError(`Unknown option '${k}' in ${name}; expected only 'axis', 'blockSize'`);
    }
  }
  const o = g as { axis?: unknown; blockSize?: unknown };
  if (o.axis === undefined) throw typeError(`${name}.axis`, 'an integer', undefined);
  const axis = normalizeAxis(`${name}.axis`, o.axis, shape.length);
  let block = 0;
  if (o.blockSize !== undefined) block = checkInt(`${name}.blockSize`, o.blockSize, 1, Number.MAX_SAFE_INTEGER);
  return axisLayout(shape, axis, block);
}

export function describeGranularity(L: Layout): string {
  if (L.gran === GRAN_PER_TENSOR) return 'per-tensor';
  if (L.gran === GRAN_PER_AXIS) return `per-axis (axis ${L.axis})`;
  return `blocked (axis ${L.axis}, blockSize ${L.blockSize})`;
}

export { describe };
