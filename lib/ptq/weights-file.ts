// Quantized weights files: a safetensors file without a layer graph (a plain state dict) whose
// Linear weights were quantized, with what was done recorded in __metadata__['quantkit.weights'].
// `quantkit quantize` writes one when its input has no quantkit graph; loadQuantizedWeights reads
// one back (codes and qparams as QuantizedTensors), dequantizeWeights turns it into a float state
// dict. The format is described in docs/ptq.md ("Quantized weights files"):
//
//   tensors: every tensor of the input, except that each quantized weight W (a non-empty 2-D F32
//     tensor named '*.weight' or 'weight', [out N, in K]) is replaced by
//       W               I8 [N, K] (symmetric, signed codes), U8 [N, K] (asymmetric, unsigned
//                       codes), or U8 [ceil(N*K/2)] at 4 bits or fewer (two codes a byte, low
//                       nibble first, the unused high nibble of an odd count 0)
//       W_scale         F32 [1] per-tensor, [N] per-channel, [N, ceil(K/groupSize)] per group
//       W_zero_point    U8, the scale's shape (asymmetric only)
//   __metadata__: the input's entries, plus 'quantkit.weights', a JSON text
//     { "version": 1, "mode": "dynamic" | "weight-only",
//       "tensors": { "<W>": { "shape": [N, K], "bits": 2..8, "scheme": "symmetric" | "asymmetric",
//                             "signed": true (symmetric) | false (asymmetric),
//                             "granularity": "per-tensor" | "per-channel" | { "groupSize": G },
//                             "packed": bits <= 4 } } }
//   Symmetric codes use the restricted range (int8: -127..127, int4: -7..7); asymmetric codes
//   0..2^bits - 1. Groups run along K and are only written for mode "weight-only".
//
// The reader checks every field of the metadata and every quantized tensor (dtype and shape before
// anything is allocated, then scales, zero points and codes): errors are WeightFileErrors naming
// the file and the field. The metadata JSON is bounded like every JSON quantkit reads
// (lib/io/json.ts: depth, and MAX_TENSORS entries).
import { checkInt, checkOneOf, checkOptions, rangeError, typeError } from '../errors';
import { MAX_TENSORS, parseJsonChecked } from '../io/json';
import { loadSafetensors, saveSafetensors, SafetensorsFile, SafetensorsTensor } from '../io/safetensors';
import { describeValue, WeightFileError } from '../io/errors';
import { QuantizedTensor } from '../tensor';
import { GRAPH_KEY, weightTensors } from './file';
import type { WeightGranularity } from './qmodel';
import { checkWeightGranularity, quantizeWeight } from './quantize-model';
import { readWeightCodes, weightCodeNames } from './weight-codes';

/** The __metadata__ key of a quantized weights file. */
export const WEIGHTS_KEY = 'quantkit.weights';
export const WEIGHTS_VERSION = 1;

/** How the weights are meant to run: int8 GEMM with dynamic activations, or dequantized (weight-only). */
export type WeightsFileMode = 'dynamic' | 'weight-only';

export interface QuantizeWeightsOptions {
  /** Default 'dynamic'. */
  mode?: WeightsFileMode;
  /** Weight bits 2..8 (default 8). */
  bits?: number;
  /** Default 'per-channel'; { groupSize: 32 } for 'weight-only'. Groups need 'weight-only'. */
  granularity?: WeightGranularity;
  /** Default 'symmetric'. */
  scheme?: 'symmetric' | 'asymmetric';
}

/** What quantizeWeights did. */
export interface QuantizeWeightsSummary {
  mode: WeightsFileMode;
  bits: number;
  scheme: 'symmetric' | 'asymmetric';
  granularity: WeightGranularity;
  /** Names of the quantized weights, in file order. */
  quantized: string[];
  /** Bytes of all tensors before and after. */
  bytesBefore: number;
  bytesAfter: number;
}

/** One quantized weight as the file describes it. */
export interface QuantizedWeightInfo {
  /** Its tensor name ('fc.weight'). */
  name: string;
  shape: [number, number];
  bits: number;
  scheme: 'symmetric' | 'asymmetric';
  signed: boolean;
  granularity: WeightGranularity;
  /** Two codes a byte (bits <= 4). */
  packed: boolean;
  /** Bytes of its tensors in the file: codes, scales and zero points. */
  bytes: number;
  /** Codes and qparams ([N, K]); tensor.dequantize() gives the float weight. */
  tensor: QuantizedTensor;
}

/** A quantized weights file, read back. */
export interface QuantizedWeights {
  mode: WeightsFileMode;
  /** The quantized weights by tensor name, in the metadata's order. */
  weights: Record<string, QuantizedWeightInfo>;
  /** The file's other tensors, as stored. */
  tensors: Record<string, SafetensorsTensor>;
  /** __metadata__ without 'quantkit.weights'. */
  metadata: Record<string, string>;
}

const WEIGHT_NAME = /(^|\.)weight$/;
const MODES = ['dynamic', 'weight-only'] as const;
const ENTRY_KEYS = ['shape', 'bits', 'scheme', 'signed', 'granularity', 'packed'];

/** True when a file's metadata marks it as a quantized weights file. */
export function isQuantizedWeights(metadata: Record<string, string>): boolean {
  return Object.prototype.hasOwnProperty.call(metadata, WEIGHTS_KEY);
}

function own(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function setOwn<T>(o: Record<string, T>, k: string, v: T): void {
  // defineProperty: a tensor named '__proto__' stays an ordinary own entry.
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Quantizes the Linear weights (non-empty 2-D F32 tensors named '*.weight') of a state dict held
 * in memory; the other tensors pass through. `source` names it in errors (a file name).
 */
export function quantizeWeights(f: SafetensorsFile, opts?: QuantizeWeightsOptions, source = '<tensors>'): {
  tensors: Record<string, SafetensorsTensor>; metadata: Record<string, string>; summary: QuantizeWeightsSummary;
} {
  if (typeof f !== 'object' || f === null || typeof f.tensors !== 'object' || f.tensors === null || typeof f.metadata !== 'object' || f.metadata === null) {
    throw typeError('file', 'a SafetensorsFile { tensors, metadata }', f);
  }
  const o = checkOptions('opts', opts, ['mode', 'bits', 'granularity', 'scheme']);
  const mode = o.mode === undefined ? 'dynamic' : checkOneOf('opts.mode', o.mode, MODES);
  const bits = o.bits === undefined ? 8 : checkInt('opts.bits', o.bits, 2, 8);
  const scheme = o.scheme === undefined ? 'symmetric' : checkOneOf('opts.scheme', o.scheme, ['symmetric', 'asymmetric'] as const);
  const g = o.granularity === undefined ? (mode === 'weight-only' ? { groupSize: 32 } : 'per-channel') : checkWeightGranularity('opts.granularity', o.granularity);
  if (typeof g === 'object' && mode !== 'weight-only') {
    throw rangeError('opts.granularity', `'per-channel' or 'per-tensor' for mode '${mode}' (groups need mode 'weight-only': the int8 GEMM takes one scale per output column)`, JSON.stringify(g));
  }
  if (isQuantizedWeights(f.metadata)) throw new WeightFileError(source, '', `already quantized (its __metadata__ has '${WEIGHTS_KEY}'); quantize the float file`);
  if (own(f.metadata, GRAPH_KEY)) {
    throw new WeightFileError(source, '', `a quantkit model file (its __metadata__ has '${GRAPH_KEY}'): quantize the model with quantizeModel`);
  }
  const out: Record<string, SafetensorsTensor> = {};
  const described: Record<string, unknown> = {};
  const quantized: string[] = [];
  let bytesBefore = 0;
  for (const [name, t] of Object.entries(f.tensors)) {
    bytesBefore += t.data.byteLength;
    if (!(t.dtype === 'F32' && t.shape.length === 2 && t.data.length > 0 && WEIGHT_NAME.test(name))) {
      setOwn(out, name, t);
      continue;
    }
    const [N, K] = t.shape;
    const w = t.data as Float32Array;
    const bad = w.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new WeightFileError(source, `tensors['${name}']`, `element ${bad} is ${w[bad]}: only finite weights can be quantized`);
    const q = quantizeWeight(w, N, K, { bits, granularity: g, scheme });
    const added: Record<string, SafetensorsTensor> = {};
    weightTensors(name.slice(0, -'weight'.length).replace(/\.$/, ''), q, added);
    for (const extra of Object.keys(added)) {
      if (extra !== name && own(f.tensors, extra)) throw new WeightFileError(source, '', `tensor '${extra}' already exists: quantizing '${name}' would overwrite it`);
      setOwn(out, extra, added[extra]);
    }
    setOwn(described, name, { shape: [N, K], bits, scheme, signed: q.tensor.signed, granularity: g, packed: bits <= 4 });
    quantized.push(name);
  }
  if (quantized.length === 0) throw new WeightFileError(source, '', "no Linear weights to quantize (non-empty 2-D F32 tensors named '*.weight')");
  let bytesAfter = 0;
  for (const t of Object.values(out)) bytesAfter += t.data.byteLength;
  const metadata = { ...f.metadata, [WEIGHTS_KEY]: JSON.stringify({ version: WEIGHTS_VERSION, mode, tensors: described }) };
  return { tensors: out, metadata, summary: { mode, bits, scheme, granularity: g, quantized, bytesBefore, bytesAfter } };
}

/**
 * Reads the safetensors file `input`, quantizes its Linear weights (see quantizeWeights) and writes
 * the result to `output` atomically. Returns what was done.
 */
export function quantizeWeightsFile(input: string, output: string, opts?: QuantizeWeightsOptions): QuantizeWeightsSummary {
  if (typeof output !== 'string' || output === '') throw typeError('output', 'a path string', output);
  const r = quantizeWeights(loadSafetensors(input), opts, input);
  saveSafetensors(output, r.tensors, r.metadata);
  return r.summary;
}

// ---------------------------------------------------------------------------------------------
// Reading

type Fail = (field: string, message: string, cause?: unknown) => never;

function checkEntry(fail: Fail, field: string, name: string, v: unknown, mode: WeightsFileMode): Omit<QuantizedWeightInfo, 'bytes' | 'tensor'> {
  if (!WEIGHT_NAME.test(name)) fail(field, "expected a weight named '*.weight' (only those are quantized)");
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(field, `expected an object but found ${describeValue(v)}`);
  const e = v as Record<string, unknown>;
  for (const k of Object.keys(e)) if (!ENTRY_KEYS.includes(k)) fail(`${field}.${k}`, `unknown field (expected only ${ENTRY_KEYS.map((x) => `'${x}'`).join(', ')})`);
  for (const k of ENTRY_KEYS) if (!own(e, k)) fail(`${field}.${k}`, 'missing');
  const shape = e.shape;
  if (!Array.isArray(shape) || shape.length !== 2) fail(`${field}.shape`, `expected [out, in] but found ${describeValue(shape)}`);
  (shape as unknown[]).forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1) fail(`${field}.shape[${i}]`, `expected a positive integer but found ${describeValue(d)}`);
  });
  const [N, K] = shape as [number, number];
  if (!Number.isSafeInteger(N * K)) fail(`${field}.shape`, `[${N}, ${K}] is too large`);
  const bits = e.bits;
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 2 || bits > 8) fail(`${field}.bits`, `expected an integer 2..8 but found ${describeValue(bits)}`);
  const scheme = e.scheme;
  if (scheme !== 'symmetric' && scheme !== 'asymmetric') return fail(`${field}.scheme`, `expected 'symmetric' or 'asymmetric' but found ${describeValue(scheme)}`);
  if (e.signed !== (scheme === 'symmetric')) fail(`${field}.signed`, `expected ${scheme === 'symmetric'} (${scheme} codes) but found ${describeValue(e.signed)}`);
  const g = e.granularity;
  let granularity: WeightGranularity;
  if (g === 'per-tensor' || g === 'per-channel') granularity = g;
  else {
    const size = typeof g === 'object' && g !== null && !Array.isArray(g) && Object.keys(g).length === 1 ? (g as { groupSize?: unknown }).groupSize : undefined;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > 2 ** 31) {
      return fail(`${field}.granularity`, `expected 'per-tensor', 'per-channel' or { groupSize: 1..2^31 } but found ${describeValue(g)}`);
    }
    if (mode !== 'weight-only') fail(`${field}.granularity`, `groups are only written for mode 'weight-only', found ${describeValue(g)} in a '${mode}' file`);
    granularity = { groupSize: size };
  }
  if (e.packed !== (bits as number) <= 4) fail(`${field}.packed`, `expected ${(bits as number) <= 4} (${bits} bits) but found ${describeValue(e.packed)}`);
  return { name, shape: [N, K], bits: bits as number, scheme, signed: e.signed as boolean, granularity, packed: e.packed as boolean };
}

/** Reads a quantized weights file held in memory (parsed by parseSafetensors); `file` names it in errors. */
export function parseQuantizedWeights(f: SafetensorsFile, file = '<buffer>'): QuantizedWeights {
  if (typeof f !== 'object' || f === null || typeof f.tensors !== 'object' || f.tensors === null || typeof f.metadata !== 'object' || f.metadata === null) {
    throw typeError('file', 'a SafetensorsFile { tensors, metadata }', f);
  }
  const fail: Fail = (field, message, cause) => {
    throw new WeightFileError(file, field, message, cause === undefined ? undefined : { cause });
  };
  const top = `__metadata__['${WEIGHTS_KEY}']`;
  if (!isQuantizedWeights(f.metadata)) {
    fail(top, `missing: not a quantized weights file (${own(f.metadata, GRAPH_KEY) ? 'a quantkit model file: use loadModel' : 'a plain state dict: use loadSafetensors'})`);
  }
  if (own(f.metadata, GRAPH_KEY)) fail(`__metadata__['${GRAPH_KEY}']`, `unexpected in a quantized weights file (it has '${WEIGHTS_KEY}')`);
  const root = parseJsonChecked(f.metadata[WEIGHTS_KEY], { field: top, fail });
  if (typeof root !== 'object' || root === null || Array.isArray(root)) return fail(top, `expected an object but found ${describeValue(root)}`);
  const r = root as Record<string, unknown>;
  for (const k of Object.keys(r)) if (k !== 'version' && k !== 'mode' && k !== 'tensors') fail(`${top}.${k}`, "unknown field (expected only 'version', 'mode' and 'tensors')");
  if (r.version !== WEIGHTS_VERSION) fail(`${top}.version`, `expected ${WEIGHTS_VERSION} but found ${describeValue(r.version)}`);
  const mode = r.mode;
  if (mode !== 'dynamic' && mode !== 'weight-only') return fail(`${top}.mode`, `expected 'dynamic' or 'weight-only' but found ${describeValue(mode)}`);
  const entries = r.tensors;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) return fail(`${top}.tensors`, `expected an object but found ${describeValue(entries)}`);
  const names = Object.keys(entries);
  if (names.length === 0) fail(`${top}.tensors`, 'empty: a quantized weights file has at least one quantized weight');
  if (names.length > MAX_TENSORS) fail(`${top}.tensors`, `more than ${MAX_TENSORS} entries (the limit)`);

  const taken = new Set<string>();
  const src = { tensors: f.tensors, fail: (field: string, msg: string): never => fail(field, msg), taken: (n: string) => { taken.add(n); } };
  const weights: Record<string, QuantizedWeightInfo> = {};
  for (const name of names) {
    const field = `${top}.tensors['${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
    const d = checkEntry(fail, field, name, (entries as Record<string, unknown>)[name], mode);
    const [N, K] = d.shape;
    const q = readWeightCodes(src, weightCodeNames(name), { ...d, range: 'restricted' }, N, K);
    const t = q.tensor;
    setOwn(weights, name, { ...d, bytes: t.data.byteLength + t.scale.byteLength + (d.scheme === 'asymmetric' ? t.scale.length : 0), tensor: t });
  }
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [n, t] of Object.entries(f.tensors)) if (!taken.has(n)) setOwn(tensors, n, t);
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(f.metadata)) if (k !== WEIGHTS_KEY) metadata[k] = v;
  return { mode, weights, tensors, metadata };
}

/** Reads a quantized weights file (written by quantizeWeightsFile or `quantkit quantize`); see parseQuantizedWeights. */
export function loadQuantizedWeights(file: string): QuantizedWeights {
  return parseQuantizedWeights(loadSafetensors(file), file);
}

/**
 * The float state dict of a quantized weights file: each quantized weight dequantized to F32
 * [N, K] under its own name, the other tensors as stored (their scale and zero point tensors
 * dropped). Loads into a model with module.loadStateDict.
 */
export function dequantizeWeights(q: QuantizedWeights): Record<string, SafetensorsTensor> {
  if (typeof q !== 'object' || q === null || typeof q.weights !== 'object' || typeof q.tensors !== 'object') {
    throw typeError('weights', 'a QuantizedWeights { weights, tensors }', q);
  }
  const out: Record<string, SafetensorsTensor> = {};
  for (const [n, t] of Object.entries(q.tensors)) setOwn(out, n, t);
  for (const [n, w] of Object.entries(q.weights)) setOwn(out, n, { dtype: 'F32', shape: [...w.shape], data: w.tensor.dequantize() });
  return out;
}
