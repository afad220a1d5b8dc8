// Checking the fields of a layer spec read from a model file: the layer registry's entries use
// these in their check functions, so every type reports a bad field the same way.
import { rangeError, typeError } from '../errors';

function received(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** A positive integer field (at most 2^31). */
export function specInt(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2 ** 31) throw rangeError(field, 'a positive integer', received(v));
  return v;
}

/** A boolean field. */
export function specBool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw typeError(field, 'a boolean', v);
  return v;
}

/** A number field for which ok(v) holds (`expected` says what that is). */
export function specNumber(field: string, v: unknown, expected: string, ok: (v: number) => boolean): number {
  if (typeof v !== 'number' || !ok(v)) throw rangeError(field, expected, received(v));
  return v;
}

/** One of a few strings. */
export function specOneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
  if (!(allowed as readonly unknown[]).includes(v)) {
    const q = allowed.map((a) => `'${a}'`);
    throw rangeError(field, q.length > 1 ? `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}` : q[0], received(v));
  }
  return v as T;
}
