// The quantization scheme: what integer range and which framework's arithmetic.
import { checkInt, checkOneOf, rangeError, typeError } from './errors';
import type { Granularity } from './layout';

export type Scheme = 'symmetric' | 'asymmetric';
export type Range = 'restricted' | 'full';
export type Formula = 'onnx' | 'pytorch';
export type StorageDtype = 'int8' | 'uint8' | 'int4' | 'uint4';

/** A quantization scheme. Every field has a default (see DEFAULT_SPEC). */
export interface QuantSpec {
  /** 'symmetric': zero point fixed (0 for signed); 'asymmetric' (affine): zero point from min/max. */
  scheme: Scheme;
  /** Bit width 2..8. 5..8 bits are stored one code per byte, 2..4 bits two per byte. */
  bits: number;
  /** Signed codes (int8-like) or unsigned (uint8-like). Default: true for symmetric, false for asymmetric. */
  signed: boolean;
  /** Symmetric signed only: 'restricted' = -(2^(b-1)-1)..2^(b-1)-1 (default), 'full' = -2^(b-1)..2^(b-1)-1. */
  range: Range;
  granularity: Granularity;
  /** Whose qparams and rounding arithmetic to reproduce exactly: ONNX Runtime's tools or PyTorch's observers. */
  formula: Formula;
}

export const SPEC_KEYS = ['scheme', 'bits', 'signed', 'range', 'granularity', 'formula'] as const;

export interface ResolvedSpec extends QuantSpec {
  qmin: number;
  qmax: number;
  dtype: StorageDtype;
}

export function resolveSpec(name: string, s: Partial<QuantSpec> | undefined | null): ResolvedSpec {
  const o = (s ?? {}) as Record<string, unknown>;
  const scheme = o.scheme === undefined ? 'symmetric' : checkOneOf(`${name}.scheme`, o.scheme, ['symmetric', 'asymmetric'] as const);
  const bits = o.bits === undefined ? 8 : checkInt(`${name}.bits`, o.bits, 2, 8);
  let signed: boolean;
  if (o.signed === undefined) signed = scheme === 'symmetric';
  else if (typeof o.signed === 'boolean') signed = o.signed;
  else throw typeError(`${name}.signed`, 'a boolean', o.signed);
  const range = o.range === undefined ? 'restricted' : checkOneOf(`${name}.range`, o.range, ['restricted', 'full'] as const);
  const formula = o.formula === undefined ? 'onnx' : checkOneOf(`${name}.formula`, o.formula, ['onnx', 'pytorch'] as const);
  const granularity = (o.granularity ?? 'per-tensor') as Granularity;
  if (typeof granularity === 'string' && granularity !== 'per-tensor') {
    throw rangeError(`${name}.granularity`, "'per-tensor', { axis } or { axis, blockSize }", `'${granularity}'`);
  }
  const [qmin, qmax] = codeRange(scheme, bits, signed, range);
  const dtype: StorageDtype = bits <= 4 ? (signed ? 'int4' : 'uint4') : (signed ? 'int8' : 'uint8');
  return { scheme, bits, signed, range, granularity, formula, qmin, qmax, dtype };
}

export function codeRange(scheme: Scheme, bits: number, signed: boolean, range: Range): [number, number] {
  if (!signed) return [0, 2 ** bits - 1];
  const half = 2 ** (bits - 1);
  if (scheme === 'symmetric' && range === 'restricted') return [-(half - 1), half - 1];
  return [-half, half - 1];
}

export const DTYPE_RANGE: Record<StorageDtype, [number, number]> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int4: [-8, 7],
  uint4: [0, 15],
};

export function isNibble(d: StorageDtype): boolean {
  return d === 'int4' || d === 'uint4';
}

export function isSignedDtype(d: StorageDtype): boolean {
  return d === 'int8' || d === 'int4';
}

export function storageBytes(d: StorageDtype, numel: number): number {
  return isNibble(d) ? Math.ceil(numel / 2) : numel;
}
