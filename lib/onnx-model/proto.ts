// ONNX model files: decoding and encoding ModelProto (protobufjs with the official schema,
// lib/onnx-model/schema.ts), checks of what a file holds before anything is allocated from it,
// tensor data (raw_data, the typed fields, external data files) and atomic writes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { onnxType } from './schema';
import { isTypedOf } from '../errors';

// ---- the message shapes (the fields quantkit reads or writes; protobufjs keeps the rest) ----------

type Long = protobuf.Long;
/** A Long's value as a number (exact up to 2^53). */
function longNumber(l: Long): number {
  return l.unsigned ? (l.high >>> 0) * 4294967296 + (l.low >>> 0) : l.high * 4294967296 + (l.low >>> 0);
}
export type Int64 = number | Long;

export interface StringEntry { key?: string; value?: string }
export interface OpsetId { domain?: string; version?: Int64 }
export interface TensorP {
  dims: Int64[];
  dataType?: number;
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  floatData: number[];
  int32Data: number[];
  int64Data: Int64[];
  doubleData: number[];
  uint64Data: Int64[];
  stringData: Uint8Array[];
  externalData: StringEntry[];
  dataLocation?: number;
  segment?: unknown;
}
export interface AttributeP {
  name?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorP;
  g?: GraphP;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorP[];
  graphs: GraphP[];
  refAttrName?: string;
}
export interface NodeP {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute: AttributeP[];
  docString?: string;
}
export interface DimP { dimValue?: Int64; dimParam?: string }
export interface TypeP { tensorType?: { elemType?: number; shape?: { dim: DimP[] } }; sequenceType?: unknown; mapType?: unknown; optionalType?: unknown }
export interface ValueInfoP { name?: string; type?: TypeP; docString?: string }
export interface GraphP {
  node: NodeP[];
  name?: string;
  initializer: TensorP[];
  sparseInitializer: unknown[];
  input: ValueInfoP[];
  output: ValueInfoP[];
  valueInfo: ValueInfoP[];
  quantizationAnnotation: unknown[];
  docString?: string;
}
export interface FunctionP { name?: string; domain?: string; node: NodeP[]; opsetImport: OpsetId[] }
export interface ModelP {
  irVersion?: Int64;
  opsetImport: OpsetId[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: Int64;
  docString?: string;
  graph?: GraphP;
  metadataProps: StringEntry[];
  trainingInfo: unknown[];
  functions: FunctionP[];
}

// ---- data types -------------------------------------------------------------------------------------

export const DT = Object.freeze({
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11,
  UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16, FLOAT8E4M3FN: 17, FLOAT8E4M3FNUZ: 18, FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20, UINT4: 21, INT4: 22, FLOAT4E2M1: 23, FLOAT8E8M0: 24, UINT2: 25, INT2: 26,
});
const DT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DT).map(([k, v]) => [v, k.toLowerCase()]));
export function dtypeName(t: number | undefined): string {
  return t === undefined ? 'undefined' : DT_NAMES[t] ?? `data type ${t}`;
}
/** Bits per element of each fixed-size data type (strings have none). */
const DT_BITS: Record<number, number> = {
  1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64, 15: 128, 16: 16,
  17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2,
};

/** Bytes a tensor of this type and element count takes in raw_data. */
export function rawBytes(dataType: number, numel: number): number {
  const bits = DT_BITS[dataType];
  if (bits === undefined) return -1;
  return Math.ceil((numel * bits) / 8);
}

// ---- errors -----------------------------------------------------------------------------------------

/** A malformed or unsupported ONNX file: the message names the file and the field. */
export class OnnxFileError extends Error {
  constructor(readonly file: string, readonly field: string, message: string, opts?: { cause?: unknown }) {
    super(`${file}: ${field ? `${field}: ` : ''}${message}`, opts);
    this.name = 'OnnxFileError';
  }
}

// ---- numbers ----------------------------------------------------------------------------------------

export function num(v: Int64 | undefined | null, dflt = 0): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'number') return v;
  return typeof v === 'object' && 'high' in v ? longNumber(v) : Number(v);
}

export function isSafe(v: Int64): boolean {
  if (typeof v === 'number') return Number.isSafeInteger(v);
  return Number.isSafeInteger(longNumber(v as Long)) && Math.abs((v as Long).high) < 0x200000;
}

// ---- limits -----------------------------------------------------------------------------------------

export interface ReadLimits {
  /** Deepest nesting of subgraphs (If / Loop / Scan bodies inside each other). */
  maxSubgraphDepth: number;
  /** Most dimensions of a tensor. */
  maxRank: number;
  /** Most elements of one tensor. */
  maxElements: number;
  /** Most nodes in all graphs together. */
  maxNodes: number;
}
export const DEFAULT_LIMITS: ReadLimits = { maxSubgraphDepth: 16, maxRank: 16, maxElements: 2 ** 32, maxNodes: 1_000_000 };

// ---- decoding ---------------------------------------------------------------------------------------

export interface LoadedModel {
  model: ModelP;
  /** The file it was read from, or '<bytes>'. */
  source: string;
  /** Folder external data is read from (the model file's folder), or null for bytes without one. */
  baseDir: string | null;
  /** Bytes of the encoded model (without external data). */
  bytes: number;
}

/** Decodes a ModelProto and checks its structure; errors name `source`. */
export function decodeModel(bytes: Uint8Array, source: string, baseDir: string | null, limits: ReadLimits = DEFAULT_LIMITS): LoadedModel {
  if (bytes.length === 0) throw new OnnxFileError(source, '', 'empty file (an ONNX model is a protobuf ModelProto)');
  let model: ModelP;
  try {
    model = onnxType('ModelProto').decode(bytes) as unknown as ModelP;
  } catch (e) {
    const why = e instanceof RangeError && /call stack/i.test(e.message) ? 'messages nested too deeply' : (e as Error).message;
    throw new OnnxFileError(source, '', `not a valid ONNX protobuf (${why})`, { cause: e });
  }
  checkModel(model, source, limits);
  return { model, source, baseDir, bytes: bytes.length };
}

function checkModel(m: ModelP, file: string, lim: ReadLimits): void {
  if (m.irVersion === undefined || num(m.irVersion) < 1 || num(m.irVersion) > 1000) {
    throw new OnnxFileError(file, 'ir_version', `expected an IR version between 1 and 1000 but found ${m.irVersion === undefined ? 'none' : String(m.irVersion)} (is this an ONNX model?)`);
  }
  if (!m.graph) throw new OnnxFileError(file, 'graph', 'the model has no graph');
  if (num(m.irVersion) >= 3 && m.opsetImport.length === 0) throw new OnnxFileError(file, 'opset_import', 'the model imports no operator set');
  for (const [i, o] of m.opsetImport.entries()) {
    if (!isSafe(o.version ?? 0) || num(o.version) < 1) throw new OnnxFileError(file, `opset_import[${i}].version`, `expected a positive version but found ${String(o.version)}`);
  }
  let nodes = 0;
  const walk = (g: GraphP, where: string, depth: number): void => {
    if (depth > lim.maxSubgraphDepth) throw new OnnxFileError(file, where, `subgraphs nested deeper than ${lim.maxSubgraphDepth} levels`);
    nodes += g.node.length;
    if (nodes > lim.maxNodes) throw new OnnxFileError(file, where, `more than ${lim.maxNodes} nodes`);
    for (const [i, t] of g.initializer.entries()) checkTensor(t, file, `${where}.initializer[${i}]${t.name ? ` '${t.name}'` : ''}`, lim);
    for (const [i, n] of g.node.entries()) {
      const nw = `${where}.node[${i}]${n.name ? ` '${n.name}'` : ''}`;
      if (!n.opType) throw new OnnxFileError(file, `${nw}.op_type`, 'a node without an operator type');
      for (const a of n.attribute) {
        const aw = `${nw}.attribute '${a.name ?? ''}'`;
        if (a.t) checkTensor(a.t, file, `${aw}.t`, lim);
        for (const t of a.tensors) checkTensor(t, file, `${aw}.tensors`, lim);
        if (a.g) walk(a.g, `${aw}.g`, depth + 1);
        for (const [j, sg] of a.graphs.entries()) walk(sg, `${aw}.graphs[${j}]`, depth + 1);
      }
    }
  };
  walk(m.graph, 'graph', 0);
  for (const [i, f] of m.functions.entries()) {
    for (const n of f.node) {
      for (const a of n.attribute) if (a.g) walk(a.g, `functions[${i}] '${f.name}'`, 1);
    }
  }
}

/** Element count of dims (checked: non-negative, bounded rank and size). */
export function checkDims(dims: Int64[], file: string, field: string, lim: ReadLimits = DEFAULT_LIMITS): number {
  if (dims.length > lim.maxRank) throw new OnnxFileError(file, `${field}.dims`, `rank ${dims.length} is above the limit of ${lim.maxRank}`);
  let n = 1;
  for (const [i, d] of dims.entries()) {
    if (!isSafe(d) || num(d) < 0) throw new OnnxFileError(file, `${field}.dims[${i}]`, `expected a non-negative dimension but found ${String(d)}`);
    n *= num(d);
  }
  if (n > lim.maxElements) throw new OnnxFileError(file, `${field}.dims`, `${n} elements is above the limit of ${lim.maxElements}`);
  return n;
}

function checkTensor(t: TensorP, file: string, field: string, lim: ReadLimits): void {
  const n = checkDims(t.dims, file, field, lim);
  const dt = t.dataType ?? 0;
  if (dt === 0) throw new OnnxFileError(file, `${field}.data_type`, 'tensor without a data type');
  if (dt === DT.STRING) return;
  const want = rawBytes(dt, n);
  if (want < 0) throw new OnnxFileError(file, `${field}.data_type`, `unknown data type ${dt}`);
  if (t.dataLocation === 1 || t.externalData.length > 0) return; // checked when read
  if (t.rawData && t.rawData.length > 0) {
    if (t.rawData.length !== want) {
      throw new OnnxFileError(file, `${field}.raw_data`, `${t.rawData.length} bytes for ${n} elements of ${dtypeName(dt)} [${t.dims.map(String).join(', ')}] (expected ${want})`);
    }
    return;
  }
  const have = fieldCount(t, dt);
  const expect = dt === DT.INT4 || dt === DT.UINT4 ? Math.ceil(n / 2) : dt === DT.COMPLEX64 || dt === DT.COMPLEX128 ? 2 * n : n;
  if (have !== expect && !(n === 0 && have === 0)) {
    throw new OnnxFileError(file, field, `${have} values stored for ${n} elements of ${dtypeName(dt)} [${t.dims.map(String).join(', ')}]`);
  }
}

function fieldCount(t: TensorP, dt: number): number {
  switch (dt) {
    case DT.FLOAT: case DT.COMPLEX64: return t.floatData.length;
    case DT.DOUBLE: case DT.COMPLEX128: return t.doubleData.length;
    case DT.INT64: return t.int64Data.length;
    case DT.UINT32: case DT.UINT64: return t.uint64Data.length;
    default: return t.int32Data.length;
  }
}

// ---- tensor data ------------------------------------------------------------------------------------

export type TensorArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

export interface TensorValue {
  dataType: number;
  dims: number[];
  /** Elements (one per element; int4/uint4 unpacked to Int8Array/Uint8Array; float16/bfloat16 as Uint16Array bits). */
  data: TensorArray;
}

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function ctorFor(dt: number): { new (n: number): TensorArray; new (b: ArrayBuffer, o: number, n: number): TensorArray; BYTES_PER_ELEMENT: number } | null {
  switch (dt) {
    case DT.FLOAT: return Float32Array as never;
    case DT.DOUBLE: return Float64Array as never;
    case DT.INT8: return Int8Array as never;
    case DT.UINT8: case DT.BOOL: return Uint8Array as never;
    case DT.INT16: return Int16Array as never;
    case DT.UINT16: case DT.FLOAT16: case DT.BFLOAT16: return Uint16Array as never;
    case DT.INT32: return Int32Array as never;
    case DT.UINT32: return Uint32Array as never;
    case DT.INT64: return BigInt64Array as never;
    case DT.UINT64: return BigUint64Array as never;
    default: return null;
  }
}

/** Reads external data: location relative to the model's folder, offset, length; never outside it. */
function externalBytes(t: TensorP, lm: LoadedModel, field: string, want: number): Uint8Array {
  const kv: Record<string, string> = {};
  for (const e of t.externalData) if (e.key) kv[e.key] = e.value ?? '';
  const loc = kv.location;
  if (!loc) throw new OnnxFileError(lm.source, `${field}.external_data`, 'external data without a location');
  if (lm.baseDir === null) {
    throw new OnnxFileError(lm.source, `${field}.external_data`, `the tensor's data is in the external file '${loc}': load the model from its path, or pass opts.baseDir`);
  }
  if (path.isAbsolute(loc) || loc.split(/[\\/]/).includes('..')) {
    throw new OnnxFileError(lm.source, `${field}.external_data.location`, `expected a path inside the model's folder but found '${loc}'`);
  }
  const offset = kv.offset === undefined ? 0 : Number(kv.offset);
  const length = kv.length === undefined ? want : Number(kv.length);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new OnnxFileError(lm.source, `${field}.external_data.offset`, `expected a non-negative integer but found '${kv.offset}'`);
  if (length !== want) throw new OnnxFileError(lm.source, `${field}.external_data.length`, `${kv.length} bytes for a tensor of ${want} bytes`);
  const file = path.join(lm.baseDir, loc);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new OnnxFileError(lm.source, `${field}.external_data.location`, `cannot open the external data file ${file} (${(e as NodeJS.ErrnoException).code})`, { cause: e });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new OnnxFileError(lm.source, `${field}.external_data.location`, `${file} is not a regular file`);
    if (offset + length > st.size) throw new OnnxFileError(lm.source, `${field}.external_data`, `bytes ${offset}..${offset + length} are past the end of ${file} (${st.size} bytes)`);
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const r = fs.readSync(fd, out, got, length - got, offset + got);
      if (r === 0) break;
      got += r;
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** The bytes of a tensor's raw_data or external data (little-endian), or null when stored in typed fields. */
export function tensorRawBytes(t: TensorP, lm: LoadedModel, field: string): Uint8Array | null {
  const n = checkDims(t.dims, lm.source, field);
  const want = rawBytes(t.dataType ?? 0, n);
  if (t.dataLocation === 1 || t.externalData.length > 0) return externalBytes(t, lm, field, want);
  if (t.rawData && t.rawData.length > 0) return t.rawData;
  return null;
}

/** A tensor's values as a typed array (a copy; aligned). */
export function tensorValue(t: TensorP, lm: LoadedModel, field: string): TensorValue {
  const dt = t.dataType ?? 0;
  const n = checkDims(t.dims, lm.source, field);
  const dims = t.dims.map((d) => num(d));
  if (dt === DT.INT4 || dt === DT.UINT4) {
    const raw = tensorRawBytes(t, lm, field);
    const out = dt === DT.INT4 ? new Int8Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const b = raw ? raw[i >> 1] : t.int32Data[i >> 1];
      let v = i & 1 ? (b >> 4) & 15 : b & 15;
      if (dt === DT.INT4 && v >= 8) v -= 16;
      out[i] = v;
    }
    return { dataType: dt, dims, data: out };
  }
  const C = ctorFor(dt);
  if (C === null) throw new OnnxFileError(lm.source, `${field}.data_type`, `tensors of ${dtypeName(dt)} are not supported here`);
  const raw = tensorRawBytes(t, lm, field);
  if (raw) {
    if (!LE) throw new Error('ONNX tensors on big-endian hosts are not supported');
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    return { dataType: dt, dims, data: new C(copy.buffer, 0, n) };
  }
  const out = new C(n);
  switch (dt) {
    case DT.FLOAT: (out as Float32Array).set(t.floatData); break;
    case DT.DOUBLE: (out as Float64Array).set(t.doubleData); break;
    case DT.INT64: for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = BigInt(String(t.int64Data[i])); break;
    case DT.UINT64: for (let i = 0; i < n; i++) (out as BigUint64Array)[i] = BigInt.asUintN(64, BigInt(String(t.uint64Data[i]))); break;
    case DT.UINT32: for (let i = 0; i < n; i++) (out as Uint32Array)[i] = num(t.uint64Data[i]); break;
    default: for (let i = 0; i < n; i++) (out as Int32Array)[i] = t.int32Data[i]; // int8..int32, bool, float16 bits
  }
  return { dataType: dt, dims, data: out };
}

/** A float32 view of a FLOAT tensor (other types: null). */
export function floatValue(t: TensorP, lm: LoadedModel, field: string): Float32Array | null {
  if (t.dataType !== DT.FLOAT) return null;
  return tensorValue(t, lm, field).data as Float32Array;
}

/** A TensorProto from values (raw_data, little-endian; int4/uint4 packed low nibble first). */
export function makeTensor(name: string, dataType: number, dims: readonly number[], data: TensorArray): TensorP {
  let raw: Uint8Array;
  if (dataType === DT.INT4 || dataType === DT.UINT4) {
    const n = dims.reduce((a, b) => a * b, 1);
    raw = new Uint8Array(Math.ceil(n / 2));
    for (let i = 0; i < n; i++) raw[i >> 1] |= (Number(data[i]) & 15) << ((i & 1) * 4);
  } else {
    raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  }
  return { name, dataType, dims: dims.slice(), rawData: raw, floatData: [], int32Data: [], int64Data: [], doubleData: [], uint64Data: [], stringData: [], externalData: [] };
}

// ---- reading and writing files ----------------------------------------------------------------------

export interface LoadOptions {
  /** Folder of external data files when the model is given as bytes. */
  baseDir?: string;
}

/** Reads a model from a path or bytes. */
export function readModel(src: string | Uint8Array, opts: LoadOptions = {}): LoadedModel {
  if (typeof src === 'string') {
    let st: fs.Stats;
    try {
      st = fs.statSync(src);
    } catch (e) {
      throw new OnnxFileError(src, '', `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
    if (!st.isFile()) throw new OnnxFileError(src, '', 'not a regular file');
    if (st.size > 2 ** 31) throw new OnnxFileError(src, '', `${st.size} bytes: above protobuf's 2 GiB limit (large models keep their weights in external data files)`);
    const bytes = fs.readFileSync(src);
    return decodeModel(bytes, src, opts.baseDir ?? path.dirname(path.resolve(src)));
  }
  if (!isTypedOf(src, 'Uint8Array')) throw new TypeError(`Expected a path string or a Uint8Array for model but received ${typeof src}`);
  return decodeModel(src, '<bytes>', opts.baseDir ?? null);
}

/** Encodes a ModelProto. */
export function encodeModel(m: ModelP): Uint8Array {
  return onnxType('ModelProto').encode(m as never).finish();
}


/**
 * A TensorProto file (e.g. ONNX's backend test data input_0.pb) as values: int4/uint4 unpacked,
 * int64 as BigInt64Array, float16 as Uint16Array bits.
 */
export function readTensorProto(src: string | Uint8Array): TensorValue & { name: string } {
  const source = typeof src === 'string' ? src : '<bytes>';
  let bytes: Uint8Array;
  if (typeof src === 'string') {
    try {
      bytes = fs.readFileSync(src);
    } catch (e) {
      throw new OnnxFileError(source, '', `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
  } else bytes = src;
  let t: TensorP;
  try {
    t = onnxType('TensorProto').decode(bytes) as unknown as TensorP;
  } catch (e) {
    throw new OnnxFileError(source, '', `not a valid TensorProto (${(e as Error).message})`, { cause: e });
  }
  checkTensor(t, source, 'tensor', DEFAULT_LIMITS);
  const lm: LoadedModel = { model: { opsetImport: [], metadataProps: [], trainingInfo: [], functions: [] }, source, baseDir: typeof src === 'string' ? path.dirname(path.resolve(src)) : null, bytes: bytes.length };
  return { name: t.name ?? '', ...tensorValue(t, lm, 'tensor') };
}
