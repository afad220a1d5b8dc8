// Argument validation with one message pattern (as in sharp):
//   "Expected <what> for <name> but received <what was given>"
// TypeError for wrong types, RangeError for wrong values and sizes.

export function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) {
    const name = (v as object).constructor?.name ?? 'TypedArray';
    return 'length' in v ? `${name} of length ${(v as unknown as { length: number }).length}` : name;
  }
  if (Array.isArray(v)) return `Array of length ${v.length}`;
  switch (typeof v) {
    case 'number': return `number ${String(v)}`;
    case 'string': return `string '${v.length > 40 ? v.slice(0, 40) + '...' : v}'`;
    case 'boolean': return `boolean ${String(v)}`;
    case 'bigint': return `bigint ${String(v)}`;
    case 'function': return 'function';
    case 'symbol': return 'symbol';
    default: return v instanceof ArrayBuffer ? 'ArrayBuffer' : 'object';
  }
}

export function typeError(name: string, expected: string, received: unknown): TypeError {
  return new TypeError(`Expected ${expected} for ${name} but received ${describe(received)}`);
}

export function rangeError(name: string, expected: string, received: string): RangeError {
  return new RangeError(`Expected ${expected} for ${name} but received ${received}`);
}

type TypedArrayCtor = { new (n: number): ArrayBufferView; name: string };

/** True when the view's buffer was detached (transferred); only called on empty views. */
function detached(v: ArrayBufferView): boolean {
  if (v.byteLength !== 0 || v.buffer.byteLength !== 0) return false;
  try {
    new Uint8Array(v.buffer);
    return false;
  } catch {
    return true;
  }
}

export function checkTyped<T extends ArrayBufferView>(
  name: string, v: unknown, ctors: readonly TypedArrayCtor[],
): T {
  for (const c of ctors) {
    if (v instanceof (c as unknown as new () => T)) {
      if ((v as ArrayBufferView).byteLength === 0 && detached(v as ArrayBufferView)) {
        throw new TypeError(`Expected an attached buffer for ${name} but received a ${c.name} whose ArrayBuffer was detached (transferred)`);
      }
      return v as T;
    }
  }
  throw typeError(name, ctors.map((c) => c.name).join(' or '), v);
}

export function checkLength(name: string, v: { length: number; constructor: { name: string } }, want: number): void {
  if (v.length !== want) {
    throw rangeError(name, `length ${want}`, `${v.constructor.name} of length ${v.length}`);
  }
}

export function checkInt(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number') throw typeError(name, `an integer between ${lo} and ${hi}`, v);
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw rangeError(name, `an integer between ${lo} and ${hi}`, String(v));
  }
  return v;
}

export function checkOneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  const list = allowed.map((a) => `'${a}'`).join(', ');
  if (typeof v !== 'string') throw typeError(name, `one of ${list}`, v);
  throw rangeError(name, `one of ${list}`, `'${v}'`);
}

export function checkOptions(name: string, v: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) throw typeError(name, 'an options object', v);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) {
      throw new TypeError(`Unknown option '${k}' in ${name}; expected only ${allowed.map((a) => `'${a}'`).join(', ')}`);
    }
  }
  return v as Record<string, unknown>;
}
