// safetensors (Hugging Face's tensor file format), read and write.
//
// Format: 8 bytes, little-endian u64 N; N bytes of UTF-8 JSON header
//   { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ...,
//     "__metadata__": { "<key>": "<string>" } }   (keys in any order, optional __metadata__)
// padded with spaces (the reference writer pads N to a multiple of 8); then the data section,
// every tensor little-endian, row-major, at [begin, end) relative to the section's start. The
// tensors cover the section exactly: no holes, no overlaps.
//
// Reading trusts nothing: every field is checked before it is used, each problem a
// WeightFileError naming the file and the field (e.g. "model.safetensors:
// header.tensors['0.weight'].data_offsets: ..."). The header's nesting depth and tensor count are
// checked by a flat scan before it is parsed (lib/io/json.ts: at most JSON_MAX_DEPTH levels,
// MAX_TENSORS tensors, MAX_RANK dimensions each). Writing is atomic (lib/io/atomic.ts): a
// temporary file in the same folder, fsync, the target's mode, rename.
import { runSync, wholeFileSteps } from './read';
import * as os from 'node:os';
import { checkOptions, describe, rangeError, typeError } from '../errors';
import type { LoadStateDictOptions, LoadStateDictResult, Module } from '../nn/module';
import { writeFileAtomicSync } from './atomic';
import { JSON_MAX_BYTES, MAX_RANK, MAX_TENSORS, parseJsonChecked } from './json';
import { cannotReadFile, describeValue, WeightFileError } from './errors';

export type SafetensorsDtype = 'F32' | 'I8' | 'U8' | 'I32';
export type SafetensorsArray = Float32Array | Int8Array | Uint8Array | Int32Array;

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsArray;
}

export interface SafetensorsFile {
  /** Tensors by name, in file order (by data offset). Each has its own ArrayBuffer. */
  tensors: Record<string, SafetensorsTensor>;
  /** The __metadata__ map ({} when absent). */
  metadata: Record<string, string>;
}

type Ctor = { new (n: number): SafetensorsArray; BYTES_PER_ELEMENT: number; name: string };
const CTORS: Record<SafetensorsDtype, Ctor> = { F32: Float32Array, I8: Int8Array, U8: Uint8Array, I32: Int32Array };
const DTYPES = Object.keys(CTORS) as SafetensorsDtype[];
/** Dtypes of the format that this reader does not convert. */
const OTHER_DTYPES = ['BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'I16', 'U16', 'F16', 'BF16', 'U32', 'I64', 'U64', 'F64', 'C64'];

/** Largest header accepted (the reference implementation's limit). */
export const SAFETENSORS_MAX_HEADER = JSON_MAX_BYTES;

const LE = os.endianness() === 'LE';

function keyField(name: string): string {
  return `['${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Entry {
  name: string;
  field: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Parses a whole safetensors file held in memory. `file` names the source in errors. */
export function parseSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw typeError('bytes', 'a Uint8Array or Buffer', bytes);
  if (typeof file !== 'string') throw typeError('file', 'a string', file);
  const err = (field: string, msg: string, cause?: unknown) => new WeightFileError(file, field, msg, cause === undefined ? undefined : { cause });
  if (!LE) throw err('', 'big-endian hosts are not supported');
  if (bytes.length < 8) throw err('header length', `the file has ${bytes.length} bytes, too short for the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(SAFETENSORS_MAX_HEADER)) {
    throw err('header length', `${n64} bytes is more than the ${SAFETENSORS_MAX_HEADER} allowed; not a safetensors file or corrupt`);
  }
  const N = Number(n64);
  if (8 + N > bytes.length) {
    throw err('header length', `${N} bytes of header but the file has only ${bytes.length - 8} bytes after the length; truncated or corrupt`);
  }
  if (N < 2) throw err('header', `${N} bytes is too short for a JSON object`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + N));
  } catch (e) {
    throw err('header', 'not valid UTF-8', e);
  }
  if (text[0] !== '{') throw err('header', `expected a JSON object starting with '{' but found ${describeValue(text.slice(0, 20))}`);
  const tooMany = `more than ${MAX_TENSORS} tensors (the limit)`;
  const header = parseJsonChecked(text, {
    field: 'header',
    fail: (field, msg, cause) => { throw err(field, msg, cause); },
    maxTopMembers: MAX_TENSORS + 1, // the tensors and __metadata__
    topMembersMessage: tooMany,
    keyText: (key, level, parent) => (level === 1
      ? (key === '__metadata__' ? '.__metadata__' : `.tensors${keyField(key)}`)
      : level === 2 && parent === '__metadata__' ? keyField(key) : undefined),
  });
  if (!isPlainObject(header)) throw err('header', `expected a JSON object but found ${describeValue(header)}`);
  const names = Object.keys(header);
  if (names.length - (Object.prototype.hasOwnProperty.call(header, '__metadata__') ? 1 : 0) > MAX_TENSORS) throw err('header', tooMany);
  const dataStart = 8 + N;
  const dataSize = bytes.length - dataStart;

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (v === null) continue;
      if (!isPlainObject(v)) throw err('header.__metadata__', `expected an object of strings but found ${describeValue(v)}`);
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') throw err(`header.__metadata__${keyField(k)}`, `expected a string but found ${describeValue(s)}`);
        metadata[k] = s;
      }
      continue;
    }
    const field = `header.tensors${keyField(name)}`;
    if (!isPlainObject(v)) throw err(field, `expected an object { dtype, shape, data_offsets } but found ${describeValue(v)}`);
    for (const k of Object.keys(v)) {
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') throw err(`${field}.${k}`, "unknown field (expected only 'dtype', 'shape' and 'data_offsets')");
    }
    const dtype = v.dtype;
    if (typeof dtype !== 'string') throw err(`${field}.dtype`, `expected a string but found ${describeValue(dtype)}`);
    if (!(DTYPES as string[]).includes(dtype)) {
      const why = OTHER_DTYPES.includes(dtype) ? 'is not supported' : 'is not a safetensors dtype';
      throw err(`${field}.dtype`, `'${dtype.slice(0, 40)}' ${why} (supported: ${DTYPES.join(', ')})`);
    }
    const shape = v.shape;
    if (!Array.isArray(shape)) throw err(`${field}.shape`, `expected an array of non-negative integers but found ${describeValue(shape)}`);
    if (shape.length > MAX_RANK) throw err(`${field}.shape`, `${shape.length} dimensions is more than the ${MAX_RANK} allowed`);
    shape.forEach((d, i) => {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        throw err(`${field}.shape[${i}]`, `expected a non-negative integer but found ${describeValue(d)}`);
      }
    });
    const numel = numelOf(shape as number[]);
    const itemsize = CTORS[dtype as SafetensorsDtype].BYTES_PER_ELEMENT;
    if (!Number.isSafeInteger(numel * itemsize)) throw err(`${field}.shape`, `[${shape.join(', ')}] is too large`);
    const offs = v.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2) {
      throw err(`${field}.data_offsets`, `expected [begin, end] but found ${describeValue(offs)}`);
    }
    offs.forEach((d, i) => {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        throw err(`${field}.data_offsets[${i}]`, `expected a non-negative integer but found ${describeValue(d)}`);
      }
    });
    const [begin, end] = offs as [number, number];
    if (begin > end) throw err(`${field}.data_offsets`, `begin ${begin} is after end ${end}`);
    if (end > dataSize) {
      throw err(`${field}.data_offsets`, `end ${end} is past the end of the data section (${dataSize} bytes); truncated or corrupt`);
    }
    if (end - begin !== numel * itemsize) {
      throw err(`${field}.data_offsets`, `[${begin}, ${end}] holds ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${numel * itemsize}`);
    }
    entries.push({ name, field, dtype: dtype as SafetensorsDtype, shape: (shape as number[]).slice(), begin, end });
  }

  // The tensors must tile the data section: sorted by offset, each starts where the last ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: Entry | null = null;
  for (const e of entries) {
    if (e.begin < at) {
      throw err(`${e.field}.data_offsets`, `[${e.begin}, ${e.end}] overlaps tensor '${prev?.name}' at [${prev?.begin}, ${prev?.end}]`);
    }
    if (e.begin > at) throw err(`${e.field}.data_offsets`, `begins at ${e.begin}, leaving bytes [${at}, ${e.begin}) of the data section unused (holes are not allowed)`);
    at = e.end;
    prev = e;
  }
  if (at !== dataSize) {
    throw err('data', `${dataSize - at} bytes at [${at}, ${dataSize}) of the data section belong to no tensor (holes are not allowed)`);
  }

  const tensors: Record<string, SafetensorsTensor> = {};
  for (const e of entries) {
    const C = CTORS[e.dtype];
    const data = new C((e.end - e.begin) / C.BYTES_PER_ELEMENT);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    // defineProperty: a tensor named '__proto__' stays an ordinary own entry.
    Object.defineProperty(tensors, e.name, { value: { dtype: e.dtype, shape: e.shape, data }, enumerable: true, writable: true, configurable: true });
  }
  return { tensors, metadata };
}

/** Reads a .safetensors file (synchronously); see parseSafetensors for the checks. */
export function loadSafetensors(file: string): SafetensorsFile {
  return runSync(wholeFileSteps(file, {
    arg: 'file',
    expected: 'a path string',
    parse: parseSafetensors,
    readError: cannotReadFile(WeightFileError),
  }));
}

// ---------------------------------------------------------------------------------------------
// Writing

interface Planned {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsArray;
}

function planTensors(tensors: unknown): Planned[] {
  const list = tensors instanceof Map ? [...tensors.entries()] : isPlainObject(tensors) ? Object.entries(tensors) : null;
  if (!list) throw typeError('tensors', 'a Record or Map of { dtype, shape, data }', tensors);
  // What the reader accepts, the writer writes: no file quantkit could not load back.
  if (list.length > MAX_TENSORS) throw rangeError('tensors', `at most ${MAX_TENSORS} tensors`, String(list.length));
  const out: Planned[] = [];
  for (const [name, t] of list) {
    if (typeof name !== 'string') throw typeError('tensors key', 'a string', name);
    const f = `tensors${keyField(name)}`;
    if (name === '__metadata__') throw rangeError('tensors key', 'a tensor name other than \'__metadata__\'', "'__metadata__'");
    if (!isPlainObject(t)) throw typeError(f, 'an object { dtype, shape, data }', t);
    const dtype = t.dtype;
    if (typeof dtype !== 'string') throw typeError(`${f}.dtype`, `one of ${DTYPES.map((d) => `'${d}'`).join(', ')}`, dtype);
    if (!(DTYPES as string[]).includes(dtype)) throw rangeError(`${f}.dtype`, `one of ${DTYPES.map((d) => `'${d}'`).join(', ')}`, `'${dtype}'`);
    const C = CTORS[dtype as SafetensorsDtype];
    const shape = t.shape;
    if (!Array.isArray(shape)) throw typeError(`${f}.shape`, 'an Array of non-negative integers', shape);
    if (shape.length > MAX_RANK) throw rangeError(`${f}.shape`, `at most ${MAX_RANK} dimensions`, String(shape.length));
    shape.forEach((d, i) => {
      if (typeof d !== 'number') throw typeError(`${f}.shape[${i}]`, 'a non-negative integer', d);
      if (!Number.isSafeInteger(d) || d < 0) throw rangeError(`${f}.shape[${i}]`, 'a non-negative integer', String(d));
    });
    const data = t.data;
    if (!(data instanceof C)) throw typeError(`${f}.data`, `${C.name} (dtype ${dtype})`, data);
    const numel = numelOf(shape as number[]);
    if (data.length !== numel) throw rangeError(`${f}.data`, `length ${numel} (shape [${shape.join(', ')}])`, describe(data));
    out.push({ name, dtype: dtype as SafetensorsDtype, shape: (shape as number[]).slice(), data });
  }
  // The reference writer's order: larger items first (keeps every tensor aligned), then by name.
  out.sort((a, b) => CTORS[b.dtype].BYTES_PER_ELEMENT - CTORS[a.dtype].BYTES_PER_ELEMENT || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}

function checkMetadata(metadata: unknown): Record<string, string> | null {
  if (metadata === undefined || metadata === null) return null;
  if (!isPlainObject(metadata)) throw typeError('metadata', 'a Record of strings', metadata);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw typeError(`metadata${keyField(k)}`, 'a string', v);
  }
  return metadata as Record<string, string>;
}

/** The 8-byte length plus the padded JSON header for planned tensors. */
function headerBytes(plan: Planned[], metadata: Record<string, string> | null): Uint8Array {
  const parts: string[] = [];
  if (metadata) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let off = 0;
  for (const t of plan) {
    const end = off + t.data.byteLength;
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${off},${end}]}`);
    off = end;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > SAFETENSORS_MAX_HEADER) throw rangeError('metadata and tensor names', `a header of at most ${SAFETENSORS_MAX_HEADER} bytes`, `${padded} bytes`);
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

function asBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The whole file as bytes (in memory). */
export function serializeSafetensors(tensors: Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>, metadata?: Record<string, string>): Uint8Array {
  if (!LE) throw new Error('safetensors: big-endian hosts are not supported');
  const plan = planTensors(tensors);
  const head = headerBytes(plan, checkMetadata(metadata));
  const total = head.length + plan.reduce((s, t) => s + t.data.byteLength, 0);
  const out = new Uint8Array(total);
  out.set(head, 0);
  let at = head.length;
  for (const t of plan) {
    out.set(asBytes(t.data), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Writes tensors (and string metadata) to `file` atomically (lib/io/atomic.ts): a temporary file
 * in the same folder is written and fsynced, given the mode of the file it replaces, then renamed
 * over `file`; temp files of dead writers of the same file are removed first. Tensors are laid
 * out as the reference writer does (by item size, then name).
 */
export function saveSafetensors(
  file: string, tensors: Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>, metadata?: Record<string, string>,
): void {
  if (typeof file !== 'string' || file === '') throw typeError('file', 'a path string', file);
  if (!LE) throw new Error('safetensors: big-endian hosts are not supported');
  const plan = planTensors(tensors);
  const head = headerBytes(plan, checkMetadata(metadata));
  writeFileAtomicSync(file, (put) => {
    put(head);
    for (const t of plan) put(asBytes(t.data));
  });
}

// ---------------------------------------------------------------------------------------------
// Models

/**
 * Loads a safetensors file into a module's parameters by name (module.loadStateDict): F32
 * tensors whose names and shapes match, e.g. '0.weight' [out, in] for a Linear at position 0
 * of a Sequential (PyTorch's state_dict names and layout). Returns the file's metadata too.
 */
export function loadSafetensorsInto(module: Module, file: string, opts?: LoadStateDictOptions): LoadStateDictResult & { metadata: Record<string, string> } {
  if (typeof module !== 'object' || module === null || typeof (module as Module).loadStateDict !== 'function') {
    throw typeError('module', 'an nn Module', module);
  }
  checkOptions('opts', opts, ['strict']);
  const { tensors, metadata } = loadSafetensors(file);
  let r: LoadStateDictResult;
  try {
    r = module.loadStateDict(tensors, opts);
  } catch (e) {
    throw new WeightFileError(file, '', (e as Error).message, { cause: e });
  }
  return { ...r, metadata };
}
