// Argument validation with one message pattern (as in sharp):
//   "Expected <what> for <name> but received <what was given>"
// TypeError for wrong types, RangeError for wrong values and sizes.

// TypedArrays are recognised by their internal slots, read through the built-in getters of
// %TypedArray%.prototype: a Proxy, an overridden constructor / length / Symbol.toStringTag or an
// array from another realm (vm, a worker's message) cannot fool them, and no user code runs.
const TypedArrayProto = Object.getPrototypeOf(Int8Array.prototype) as object;
function intrinsicGetter(key: PropertyKey): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor(TypedArrayProto, key)!.get as (this: unknown) => unknown;
}
const kindOf = intrinsicGetter(Symbol.toStringTag);
const lengthOf = intrinsicGetter('length');
const byteLengthOf = intrinsicGetter('byteLength');
const bufferOf = intrinsicGetter('buffer');
const byteOffsetOf = intrinsicGetter('byteOffset');

/** The kind of TypedArray v is ('Float32Array', ...), from its internal slot; undefined for anything else. */
export function typedKind(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  return kindOf.call(v) as string | undefined;
}

interface TypedKinds {
  Int8Array: Int8Array; Uint8Array: Uint8Array; Uint8ClampedArray: Uint8ClampedArray; Int16Array: Int16Array;
  Uint16Array: Uint16Array; Int32Array: Int32Array; Uint32Array: Uint32Array; Float32Array: Float32Array;
  Float64Array: Float64Array; BigInt64Array: BigInt64Array; BigUint64Array: BigUint64Array;
}

/** True when v is a TypedArray of that kind (subclasses and other realms included, Proxies not). */
export function isTypedOf<K extends keyof TypedKinds>(v: unknown, kind: K): v is TypedKinds[K] {
  return typedKind(v) === kind;
}

/** The element count of a TypedArray, from its internal slot (an own 'length' property cannot lie). */
export function typedLength(v: ArrayBufferView): number {
  return lengthOf.call(v) as number;
}

/**
 * A private copy of a TypedArray made without calling anything the caller can override (its
 * slice, constructor or Symbol.species): a new array of the same kind, filled by the built-in set.
 */
export function ownCopy<T extends Float32Array | Int8Array | Uint8Array | Int32Array>(v: T, start = 0, end?: number): T {
  const n = typedLength(v);
  const e = end === undefined ? n : Math.min(end, n);
  const kind = typedKind(v) as 'Float32Array' | 'Int8Array' | 'Uint8Array' | 'Int32Array';
  const Ctor = { Float32Array, Int8Array, Uint8Array, Int32Array }[kind];
  const out = new Ctor(Math.max(0, e - start));
  const src = new Ctor(bufferOf.call(v) as ArrayBuffer, (byteOffsetOf.call(v) as number) + start * Ctor.BYTES_PER_ELEMENT, out.length);
  out.set(src);
  return out as T;
}

export function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  const kind = typedKind(v);
  if (kind !== undefined) return `${kind} of length ${lengthOf.call(v) as number}`;
  if (ArrayBuffer.isView(v)) return 'DataView';
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
  if (byteLengthOf.call(v) !== 0) return false;
  const buf = bufferOf.call(v) as ArrayBufferLike;
  try {
    new Uint8Array(buf);
    return false;
  } catch {
    return true;
  }
}

/**
 * Refuses a TypedArray whose length property (an own property, a subclass's getter) differs from
 * its real length: code reading .length would otherwise loop over or size things by the lie.
 */
export function checkHonestLength(name: string, v: ArrayBufferView): void {
  const real = lengthOf.call(v) as number;
  const said = (v as unknown as { length: unknown }).length;
  if (said !== real) {
    throw new TypeError(`Expected a ${typedKind(v)} whose length property is its length (${real}) for ${name} but received one whose length says ${String(said)}`);
  }
}

/**
 * v as one of the given TypedArray kinds (by internal slot: subclasses, Node Buffers and arrays of
 * other realms pass; Proxies and look-alikes do not), attached.
 */
export function checkTyped<T extends ArrayBufferView>(
  name: string, v: unknown, ctors: readonly TypedArrayCtor[],
): T {
  const kind = typedKind(v);
  for (const c of ctors) {
    if (kind === c.name) {
      if (byteLengthOf.call(v) === 0 && detached(v as ArrayBufferView)) {
        throw new TypeError(`Expected an attached buffer for ${name} but received a ${c.name} whose ArrayBuffer was detached (transferred)`);
      }
      checkHonestLength(name, v as ArrayBufferView);
      return v as T;
    }
  }
  throw typeError(name, ctors.map((c) => c.name).join(' or '), v);
}

export function checkLength(name: string, v: ArrayBufferView & { length: number }, want: number): void {
  if (typedLength(v) !== want) throw rangeError(name, `length ${want}`, describe(v));
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
