// TensorFlow.js weights: model.json's weightsManifest plus its binary shards.
//
// Format (as TensorFlow.js defines its weights manifest): weightsManifest is an array of groups
//   { paths: string[], weights: [{ name, shape, dtype, quantization? }] }.
// The shards of a group, read in the order of `paths`, form one byte stream; the group's weights
// lie in it back to back, in manifest order, each taking numel * bytesPerElement bytes
// (little-endian). With `quantization: { dtype: 'uint8' | 'uint16', scale, min }` a weight is
// stored as codes q and its value is q * scale + min (rounded for int32 weights); with
// `quantization: { dtype: 'float16' }` a float32 weight is stored as IEEE half floats. Quantized
// weights are dequantized on load, as tfjs does, so `data` always has the weight's own dtype.
//
// Nothing in the files is trusted: every field is checked before it is used, the shard sizes are
// checked against what the manifest needs before any shard is read, and each problem is reported
// as a WeightFileError naming the file and the field. Limits (lib/io/json.ts): model.json at most
// JSON_MAX_BYTES bytes and JSON_MAX_DEPTH levels deep (checked before it is parsed), at most
// MAX_TENSORS weights, groups and shard files, MAX_RANK dimensions per weight. A shard must be
// inside the model folder both as written and once symlinks are resolved (its real path).
import * as fs from 'node:fs';
import { checkPathArg, FileSteps, readFailure, readStep, readTextStep, realpathStep, runAsync, runSync, statStep } from './read';
import * as path from 'node:path';
import { describeValue, WeightFileError } from './errors';
import { JSON_MAX_BYTES, MAX_RANK, MAX_TENSORS, scanJson } from './json';

export { WeightFileError, describeValue } from './errors';

/** Weight dtypes this loader reads. ('uint8' is not a tfjs dtype; it is accepted as raw bytes.) */
export type TfjsDtype = 'float32' | 'int32' | 'bool' | 'uint8';

export interface TfjsQuantization {
  dtype: 'uint8' | 'uint16' | 'float16';
  /** uint8 / uint16 only: value = code * scale + min. */
  scale?: number;
  min?: number;
}

export interface TfjsWeight {
  name: string;
  shape: number[];
  dtype: TfjsDtype;
  /** float32: Float32Array; int32: Int32Array; bool and uint8: Uint8Array (bool values 0 or 1). */
  data: Float32Array | Int32Array | Uint8Array;
  /** Index of the weight group (weightsManifest[group]) the weight came from. */
  group: number;
  /** The manifest's quantization entry when the weight was stored quantized (data is dequantized). */
  quantization?: TfjsQuantization;
}

const DTYPE_BYTES: Record<TfjsDtype, number> = { float32: 4, int32: 4, bool: 1, uint8: 1 };
const QDTYPE_BYTES = { uint8: 1, uint16: 2, float16: 2 } as const;
const UNSUPPORTED_DTYPES = ['string', 'complex64'];

interface WeightPlan {
  field: string;
  name: string;
  shape: number[];
  numel: number;
  dtype: TfjsDtype;
  quantization?: TfjsQuantization;
  offset: number; // in the group's byte stream
  bytes: number;
}

interface ShardPlan {
  field: string;
  /** As written in the manifest. */
  given: string;
  /** Resolved against the model folder (not following symlinks). */
  path: string;
}

interface GroupPlan {
  field: string;
  shards: ShardPlan[];
  weights: WeightPlan[];
  need: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkShapeField(file: string, field: string, v: unknown): { shape: number[]; numel: number } {
  const bad = () => new WeightFileError(file, field, `expected an array of non-negative integers but received ${describeValue(v)}`);
  if (!Array.isArray(v)) throw bad();
  if (v.length > MAX_RANK) throw new WeightFileError(file, field, `expected at most ${MAX_RANK} dimensions but received ${v.length}`);
  let numel = 1;
  for (const d of v) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw bad();
    numel *= d;
  }
  if (!Number.isSafeInteger(numel)) {
    throw new WeightFileError(file, field, `expected a shape whose element count is a safe integer but received ${describeValue(v)}`);
  }
  return { shape: v.slice() as number[], numel };
}

function checkQuantization(file: string, field: string, v: unknown, dtype: TfjsDtype): TfjsQuantization {
  if (!isObject(v)) throw new WeightFileError(file, field, `expected an object { dtype, scale, min } but received ${describeValue(v)}`);
  const qd = v.dtype;
  if (qd !== 'uint8' && qd !== 'uint16' && qd !== 'float16') {
    throw new WeightFileError(file, `${field}.dtype`, `expected one of 'uint8', 'uint16', 'float16' but received ${describeValue(qd)}`);
  }
  if (qd === 'float16') {
    if (dtype !== 'float32') {
      throw new WeightFileError(file, `${field}.dtype`, `expected 'uint8' or 'uint16' for a weight of dtype '${dtype}' (float16 storage is for float32 weights) but received 'float16'`);
    }
    return { dtype: qd };
  }
  if (dtype !== 'float32' && dtype !== 'int32') {
    throw new WeightFileError(file, field, `expected no quantization for a weight of dtype '${dtype}' but received ${describeValue(v)}`);
  }
  const { scale, min } = v;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || !(scale > 0)) {
    throw new WeightFileError(file, `${field}.scale`, `expected a positive finite number but received ${describeValue(scale)}`);
  }
  if (typeof min !== 'number' || !Number.isFinite(min)) {
    throw new WeightFileError(file, `${field}.min`, `expected a finite number but received ${describeValue(min)}`);
  }
  return { dtype: qd, scale, min };
}

/** Parse and check model.json; resolve shard paths against dir. Reads no shard. */
function plan(file: string, text: string, dir: string): GroupPlan[] {
  scanJson(text, { field: '', fail: (field, msg) => { throw new WeightFileError(file, field, msg); } });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WeightFileError(file, '', `invalid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!isObject(json)) throw new WeightFileError(file, '', `expected a JSON object but received ${describeValue(json)}`);
  const wm = json.weightsManifest;
  if (!Array.isArray(wm)) {
    throw new WeightFileError(file, 'weightsManifest', `expected an array of weight groups { paths, weights } but received ${describeValue(wm)}`);
  }
  const names = new Map<string, string>();
  const groups: GroupPlan[] = [];
  // Counted before anything is built for them.
  let nWeights = 0, nShards = 0;
  for (const g of wm) {
    if (isObject(g) && Array.isArray(g.weights)) nWeights += g.weights.length;
    if (isObject(g) && Array.isArray(g.paths)) nShards += g.paths.length;
  }
  if (wm.length > MAX_TENSORS) throw new WeightFileError(file, 'weightsManifest', `more than ${MAX_TENSORS} weight groups (the limit)`);
  if (nWeights > MAX_TENSORS) throw new WeightFileError(file, 'weightsManifest', `more than ${MAX_TENSORS} weights (the limit)`);
  if (nShards > MAX_TENSORS) throw new WeightFileError(file, 'weightsManifest', `more than ${MAX_TENSORS} shard files (the limit)`);
  wm.forEach((g: unknown, gi: number) => {
    const gf = `weightsManifest[${gi}]`;
    if (!isObject(g)) throw new WeightFileError(file, gf, `expected an object { paths, weights } but received ${describeValue(g)}`);
    if (!Array.isArray(g.paths)) {
      throw new WeightFileError(file, `${gf}.paths`, `expected an array of shard file names but received ${describeValue(g.paths)}`);
    }
    const shards = g.paths.map((p: unknown, pi: number): ShardPlan => {
      const pf = `${gf}.paths[${pi}]`;
      if (typeof p !== 'string' || p.length === 0) throw new WeightFileError(file, pf, `expected a non-empty string but received ${describeValue(p)}`);
      if (path.isAbsolute(p) || /^[a-z][a-z0-9+.-]+:/i.test(p)) {
        throw new WeightFileError(file, pf, `expected a path relative to the directory of the model file but received ${describeValue(p)}`);
      }
      const resolved = path.resolve(dir, p);
      const rel = path.relative(dir, resolved);
      if (rel === '' || rel === '..' || rel.startsWith('..' + path.sep) || path.isAbsolute(rel)) {
        throw new WeightFileError(file, pf, `expected a path inside the directory of the model file but received ${describeValue(p)}`);
      }
      return { field: pf, given: p, path: resolved };
    });
    if (!Array.isArray(g.weights)) {
      throw new WeightFileError(file, `${gf}.weights`, `expected an array of weight entries { name, shape, dtype } but received ${describeValue(g.weights)}`);
    }
    let offset = 0;
    const weights = g.weights.map((w: unknown, wi: number): WeightPlan => {
      const wf = `${gf}.weights[${wi}]`;
      if (!isObject(w)) throw new WeightFileError(file, wf, `expected an object { name, shape, dtype } but received ${describeValue(w)}`);
      if (typeof w.name !== 'string' || w.name.length === 0) {
        throw new WeightFileError(file, `${wf}.name`, `expected a non-empty string but received ${describeValue(w.name)}`);
      }
      const prev = names.get(w.name);
      if (prev !== undefined) {
        throw new WeightFileError(file, `${wf}.name`, `expected a unique name but received ${describeValue(w.name)}, already the name of ${prev}`);
      }
      names.set(w.name, wf);
      const { shape, numel } = checkShapeField(file, `${wf}.shape`, w.shape);
      const dt = w.dtype;
      if (typeof dt !== 'string' || !(dt in DTYPE_BYTES)) {
        const unsupported = typeof dt === 'string' && UNSUPPORTED_DTYPES.includes(dt) ? ` (${dt} weights are not supported)` : '';
        throw new WeightFileError(file, `${wf}.dtype`, `expected one of 'float32', 'int32', 'bool', 'uint8' but received ${describeValue(dt)}${unsupported}`);
      }
      const dtype = dt as TfjsDtype;
      let quantization: TfjsQuantization | undefined;
      let per = DTYPE_BYTES[dtype];
      if (w.quantization !== undefined && w.quantization !== null) {
        quantization = checkQuantization(file, `${wf}.quantization`, w.quantization, dtype);
        per = QDTYPE_BYTES[quantization.dtype];
      }
      const bytes = numel * per;
      if (!Number.isSafeInteger(offset + bytes)) {
        throw new WeightFileError(file, `${wf}.shape`, `expected a shape whose byte size is a safe integer but received ${describeValue(w.shape)}`);
      }
      const wp: WeightPlan = { field: wf, name: w.name, shape, numel, dtype, quantization, offset, bytes };
      offset += bytes;
      return wp;
    });
    groups.push({ field: gf, shards, weights, need: offset });
  });
  return groups;
}

/** Check the shard sizes of every group against what its weights need. */
function checkSizes(file: string, groups: GroupPlan[], sizes: number[][]): void {
  groups.forEach((g, gi) => {
    const have = sizes[gi].reduce((a, b) => a + b, 0);
    if (have === g.need) return;
    const list = `${g.shards.length} shard${g.shards.length === 1 ? '' : 's'}`;
    if (have > g.need) {
      throw new WeightFileError(file, `${g.field}.paths`,
        `expected shards holding exactly the ${g.need} bytes the weights need but received ${list} of ${have} bytes (${have - g.need} bytes too many)`);
    }
    const w = g.weights.find((x) => x.offset + x.bytes > have) as WeightPlan;
    throw new WeightFileError(file, `${g.field}.paths`,
      `expected shards holding the ${g.need} bytes the weights need but received ${list} of ${have} bytes ` +
      `(${g.need - have} bytes short; ${w.field} '${w.name}' needs bytes ${w.offset}..${w.offset + w.bytes})`);
  });
}

const HOST_LE = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function decodeWeight(file: string, w: WeightPlan, bytes: Uint8Array, group: number): TfjsWeight {
  const b = bytes.subarray(w.offset, w.offset + w.bytes);
  const n = w.numel;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let data: Float32Array | Int32Array | Uint8Array;
  const q = w.quantization;
  if (q) {
    const out = w.dtype === 'float32' ? new Float32Array(n) : new Int32Array(n);
    if (q.dtype === 'float16') {
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
    } else {
      const scale = q.scale as number;
      const min = q.min as number;
      const round = w.dtype === 'int32';
      for (let i = 0; i < n; i++) {
        const code = q.dtype === 'uint8' ? b[i] : dv.getUint16(2 * i, true);
        const v = code * scale + min;
        out[i] = round ? Math.round(v) : v;
      }
    }
    data = out;
  } else if (w.dtype === 'float32' || w.dtype === 'int32') {
    const out = w.dtype === 'float32' ? new Float32Array(n) : new Int32Array(n);
    if (HOST_LE) new Uint8Array(out.buffer).set(b);
    else if (w.dtype === 'float32') for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
    else for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
    data = out;
  } else {
    data = b.slice();
    if (w.dtype === 'bool') {
      for (let i = 0; i < n; i++) {
        if (data[i] > 1) throw new WeightFileError(file, w.field, `expected bool values 0 or 1 but received ${data[i]} at element ${i} of '${w.name}'`);
      }
    }
  }
  const r: TfjsWeight = { name: w.name, shape: w.shape, dtype: w.dtype, data, group };
  if (q) r.quantization = q;
  return r;
}

function ioError(file: string, field: string, what: string, e: unknown): WeightFileError {
  return new WeightFileError(file, field, `${what}: ${readFailure(e)}`, { cause: e });
}

function notAFile(file: string, field: string, p: string): WeightFileError {
  return new WeightFileError(file, field, `expected a regular file but '${p}' is not one`);
}

/** The real path of a shard, refused when it leaves the real model folder (a symlink out). */
function insideFolder(file: string, realDir: string, sh: ShardPlan, real: string): string {
  const rel = path.relative(realDir, real);
  if (rel === '' || rel === '..' || rel.startsWith('..' + path.sep) || path.isAbsolute(rel)) {
    throw new WeightFileError(file, sh.field,
      `expected a weight file inside the model folder ${realDir} but ${describeValue(sh.given)} resolves to ${real} (a symlink out of the folder)`);
  }
  return real;
}

function* tfjsSteps(modelJsonPath: unknown): FileSteps<TfjsWeight[]> {
  const file = checkPathArg('modelJsonPath', modelJsonPath);
  let text: string;
  try {
    text = yield* readTextStep(file, JSON_MAX_BYTES);
  } catch (e) {
    throw ioError(file, '', 'cannot read the model file', e);
  }
  const dir = path.dirname(path.resolve(file));
  const groups = plan(file, text, dir);
  let realDir: string;
  try {
    realDir = yield* realpathStep(dir);
  } catch (e) {
    throw ioError(file, '', `cannot resolve the model folder '${dir}'`, e);
  }
  // Every shard's real path and size first: checked against the manifest before any is read.
  const sizes: number[][] = [];
  const reals: string[][] = [];
  for (const g of groups) {
    const s: number[] = [];
    const r: string[] = [];
    for (const sh of g.shards) {
      let st: fs.Stats;
      let real: string;
      try {
        real = yield* realpathStep(sh.path);
      } catch (e) {
        throw ioError(file, sh.field, `cannot read shard '${sh.path}'`, e);
      }
      insideFolder(file, realDir, sh, real);
      try {
        st = yield* statStep(real);
      } catch (e) {
        throw ioError(file, sh.field, `cannot read shard '${sh.path}'`, e);
      }
      if (!st.isFile()) throw notAFile(file, sh.field, sh.path);
      s.push(st.size);
      r.push(real);
    }
    sizes.push(s);
    reals.push(r);
  }
  checkSizes(file, groups, sizes);
  const out: TfjsWeight[] = [];
  for (let gi = 0; gi < groups.length; gi++) {
    const g = groups[gi];
    const stream = new Uint8Array(g.need);
    let at = 0;
    for (let si = 0; si < g.shards.length; si++) {
      const sh = g.shards[si];
      let buf: Buffer;
      try {
        buf = yield* readStep(reals[gi][si]);
      } catch (e) {
        throw ioError(file, sh.field, `cannot read shard '${sh.path}'`, e);
      }
      if (buf.length !== sizes[gi][si]) {
        throw new WeightFileError(file, sh.field, `shard '${sh.path}' changed size while being read (${sizes[gi][si]} then ${buf.length} bytes)`);
      }
      stream.set(buf, at);
      at += buf.length;
    }
    for (const w of g.weights) out.push(decodeWeight(file, w, stream, gi));
  }
  return out;
}

/**
 * Load the weights of a TensorFlow.js model (model.json with a weightsManifest, plus its shard
 * files next to it). Quantized weights (uint8 / uint16 / float16 storage) are dequantized.
 * Every field and every shard size is checked; problems throw a WeightFileError naming the file
 * and the field, e.g. "model.json: weightsManifest[0].weights[3].shape: expected an array of
 * non-negative integers but received [2,-1]". Shards are read through their real paths, which
 * must stay inside the model folder (symlinks out of it are refused).
 */
export function loadTfjsWeights(modelJsonPath: string): Promise<TfjsWeight[]> {
  return runAsync(tfjsSteps(modelJsonPath));
}

/** Synchronous loadTfjsWeights. */
export function loadTfjsWeightsSync(modelJsonPath: string): TfjsWeight[] {
  return runSync(tfjsSteps(modelJsonPath));
}
