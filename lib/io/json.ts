// JSON read from files (safetensors headers, tfjs model.json, quantkit's model graph), parsed only
// after one flat pass over the text has checked what JSON.parse and the code after it cannot
// bound on their own: the nesting depth (code that walks a value recursively, JSON.stringify
// included, overflows the stack at a few thousand levels) and, where the caller asks, the number
// of members of the top-level container (each one becomes a tensor). The pass allocates nothing
// per value and never recurses, so a hostile file costs one linear scan before it is refused.

/**
 * Deepest nesting accepted, in objects and arrays counted from the top-level value (1). The same
 * as serde_json's default recursion limit, which the reference safetensors reader enforces.
 */
export const JSON_MAX_DEPTH = 128;
/** Largest JSON text read from a file: a safetensors header, a tfjs model.json (bytes). */
export const JSON_MAX_BYTES = 100_000_000;
/** Most tensors in one safetensors file, or weights in one tfjs manifest. */
export const MAX_TENSORS = 262_144;
/** Most dimensions of one tensor (NumPy 2 allows 64). */
export const MAX_RANK = 64;

export interface JsonScanOptions {
  /** Prefix of every field in errors ('header', '' for the file's top level). */
  field: string;
  /** Throws the reader's file error. */
  fail: (field: string, message: string, cause?: unknown) => never;
  /** Members allowed in the top-level container, and the error when there are more. */
  maxTopMembers?: number;
  topMembersMessage?: string;
  /** Renders an object key at `level` (1: a member of the top-level object); undefined: default. */
  keyText?: (key: string, level: number, parentKey: string | undefined) => string | undefined;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
/** Segments of a path shown before it is cut short with '...'. */
const PATH_SEGMENTS = 8;

export function bracketKey(key: string): string {
  const k = key.length > 60 ? key.slice(0, 60) + '...' : key;
  return `['${k.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
}

/**
 * Checks the nesting depth (and optionally the top-level member count) of JSON text, then parses
 * it. Text that is not JSON gets past the scan and is reported by JSON.parse (as `fail(field,
 * 'not valid JSON (...)')`).
 */
export function parseJsonChecked(text: string, o: JsonScanOptions): unknown {
  scanJson(text, o);
  try {
    return JSON.parse(text);
  } catch (e) {
    return o.fail(o.field, `not valid JSON (${(e as Error).message})`, e);
  }
}

/** The scan alone (see parseJsonChecked). */
export function scanJson(text: string, o: JsonScanOptions): void {
  const max = JSON_MAX_DEPTH;
  // Per open container (index = depth): object or array, commas seen, where its current key's
  // string token starts and ends, whether the next string is a key.
  const isObj = new Uint8Array(max + 2);
  const commas = new Float64Array(max + 2);
  const keyStart = new Int32Array(max + 2);
  const keyEnd = new Int32Array(max + 2);
  const wantKey = new Uint8Array(max + 2);
  let depth = 0;
  const n = text.length;

  const pathTo = (levels: number): string => {
    let s = o.field;
    let shown = 0;
    let parentKey: string | undefined;
    for (let d = 1; d <= levels; d++) {
      if (shown === PATH_SEGMENTS) return s + '...';
      if (isObj[d]) {
        let key = '?';
        if (keyStart[d] >= 0) {
          try {
            key = JSON.parse(text.slice(keyStart[d], keyEnd[d])) as string;
          } catch { /* an invalid string: shown as '?' */ }
        }
        const custom = o.keyText?.(key, d, parentKey);
        s += custom ?? (IDENT.test(key) ? `${s === '' ? '' : '.'}${key}` : bracketKey(key));
        parentKey = key;
      } else {
        s += `[${commas[d]}]`;
        parentKey = undefined;
      }
      shown++;
    }
    return s;
  };

  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // a string: skip to its closing quote
      const start = i;
      for (i++; i < n; i++) {
        const k = text.charCodeAt(i);
        if (k === 0x5c) i++;
        else if (k === 0x22) break;
      }
      if (depth > 0 && isObj[depth] && wantKey[depth]) {
        keyStart[depth] = start;
        keyEnd[depth] = Math.min(i + 1, n);
        wantKey[depth] = 0;
      }
    } else if (c === 0x7b || c === 0x5b) { // { [
      if (depth === max) {
        o.fail(pathTo(depth), `nested more than ${max} levels deep (at byte ${Buffer.byteLength(text.slice(0, i))}); the limit is ${max}`);
      }
      depth++;
      isObj[depth] = c === 0x7b ? 1 : 0;
      commas[depth] = 0;
      keyStart[depth] = -1;
      wantKey[depth] = isObj[depth];
    } else if (c === 0x7d || c === 0x5d) { // } ]
      if (depth > 0) depth--;
    } else if (c === 0x2c) { // ,
      if (depth > 0) {
        commas[depth]++;
        if (isObj[depth]) {
          wantKey[depth] = 1;
          keyStart[depth] = -1;
        }
        if (depth === 1 && o.maxTopMembers !== undefined && commas[1] + 1 > o.maxTopMembers) {
          o.fail(o.field, o.topMembersMessage ?? `more than ${o.maxTopMembers} members (the limit)`);
        }
      }
    }
  }
}
