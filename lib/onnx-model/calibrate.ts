// Calibration of ONNX activations: the float model runs in onnxruntime-node with the tensors to
// calibrate exposed as extra graph outputs; each batch's values go to a quantkit observer and are
// dropped (streaming: memory holds one batch, not every activation as ONNX Runtime's Python
// calibrators do).
import { describe, typedKind, typeError } from '../errors';
import { Observer } from '../observers/base';
import { makeObserver } from '../ptq/quantize-model';
import { encodeModel, ModelP, ValueInfoP } from './proto';

export type OnnxObserverName = 'minmax' | 'moving-average' | 'histogram' | 'percentile' | 'mse' | 'entropy';
export const OBSERVER_NAMES: readonly OnnxObserverName[] = ['minmax', 'moving-average', 'histogram', 'percentile', 'mse', 'entropy'];
/** An observer by name, or a factory called once per calibrated tensor (a fresh observer each time). */
export type OnnxObserverChoice = OnnxObserverName | ((tensor: string) => Observer);

/** A feed value: an onnxruntime-node Tensor, or { data, dims } (type from the typed array; `type` to override). */
export type FeedValue = { data: ArrayBufferView | readonly string[]; dims: readonly number[]; type?: string };
export type Feed = Record<string, unknown>;
export type CalibrationFeeds = Iterable<Feed> | AsyncIterable<Feed>;

/** A fresh per-tensor activation observer: uint8 (asymmetric 0..255) or int8 (asymmetric -128..127). */
export function makeActivationObserver(choice: OnnxObserverChoice, tensor: string, activationType: 'uint8' | 'int8'): Observer {
  return makeObserver(choice, tensor, activationType);
}

// ---- onnxruntime-node, loaded only here -----------------------------------------------------------------

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Ort = any;
let ortCache: Ort | null = null;

/** onnxruntime-node, or a clear error saying what to install. */
export function loadOrt(why: string): Ort {
  if (ortCache) return ortCache;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ortCache = require('onnxruntime-node');
  } catch (e) {
    throw new Error(`${why} needs onnxruntime-node, an optional peer dependency that is not installed: npm install onnxruntime-node`, { cause: e });
  }
  return ortCache;
}

const ORT_TYPES: Record<string, string> = {
  Float32Array: 'float32', Float64Array: 'float64', Int8Array: 'int8', Uint8Array: 'uint8', Int16Array: 'int16', Uint16Array: 'uint16',
  Int32Array: 'int32', Uint32Array: 'uint32', BigInt64Array: 'int64', BigUint64Array: 'uint64',
};

function toOrtTensor(ort: Ort, v: unknown, field: string): unknown {
  if (v instanceof ort.Tensor) return v;
  if (typeof v !== 'object' || v === null) throw typeError(field, 'an onnxruntime-node Tensor or { data, dims }', v);
  const o = v as FeedValue;
  if (!Array.isArray(o.dims) || !o.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw typeError(`${field}.dims`, 'an array of non-negative integers', o.dims);
  const kind = typedKind(o.data);
  const type = o.type ?? (kind ? ORT_TYPES[kind] : Array.isArray(o.data) ? 'string' : undefined);
  if (type === undefined) throw typeError(`${field}.data`, 'a typed array (Float32Array, BigInt64Array, ...)', o.data);
  const n = o.dims.reduce((a, b) => a * b, 1);
  const len = Array.isArray(o.data) ? o.data.length : (o.data as unknown as { length: number }).length;
  if (len !== n) throw new RangeError(`Expected ${n} values (dims [${o.dims.join(', ')}]) for ${field}.data but received ${describe(o.data)}`);
  return new ort.Tensor(type, o.data, o.dims);
}

export interface CalibrationResult {
  observers: Map<string, Observer>;
  batches: number;
  /** Tensors that came back in a type other than float32 (not calibrated). */
  notFloat: string[];
}

/** A tensor as onnxruntime-node returns it. */
export interface OrtValue {
  type: string;
  dims: readonly number[];
  data: ArrayLike<unknown>;
}

/**
 * Runs a model over feeds with `tensors` (existing values) exposed as extra graph outputs and
 * calls `fn` with every output of each run (graph outputs and the exposed tensors), one feed at a
 * time; nothing is kept. The model is not changed (outputs are added to an encoded copy). Feed
 * keys must be graph input names and every input needs a value (RangeErrors naming them).
 * `what` names the data in errors and `why` the feature in the missing-onnxruntime error.
 */
export async function runWithOutputs(
  model: ModelP | Uint8Array, tensors: string[], data: CalibrationFeeds, fn: (out: Record<string, OrtValue>, index: number) => void,
  opts: { sessionOptions?: Record<string, unknown>; what?: string; why?: string } = {},
): Promise<number> {
  const ort = loadOrt(opts.why ?? "quantizeOnnx's static mode (calibration runs the float model)");
  const what = opts.what ?? 'options.calibrationData';
  let bytes: Uint8Array;
  if (model instanceof Uint8Array) {
    if (tensors.length > 0) throw new Error('internal: runWithOutputs exposes tensors of a decoded model only');
    bytes = model;
  } else {
    const g = model.graph!;
    const existing = new Set(g.output.map((o) => o.name ?? ''));
    // No type: onnxruntime infers it.
    const added: ValueInfoP[] = [...new Set(tensors)].filter((t) => !existing.has(t)).map((name) => ({ name }));
    const saved = g.output;
    try {
      g.output = [...saved, ...added];
      bytes = encodeModel(model);
    } finally {
      g.output = saved;
    }
  }
  if (data === null || typeof data !== 'object' || (typeof (data as Iterable<Feed>)[Symbol.iterator] !== 'function' && typeof (data as AsyncIterable<Feed>)[Symbol.asyncIterator] !== 'function') || ArrayBuffer.isView(data)) {
    throw typeError(what, 'an iterable or async iterable of feeds ({ inputName: Tensor | { data, dims } })', data);
  }
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'basic', logSeverityLevel: 3, ...(opts.sessionOptions ?? {}) });
  const inputNames: string[] = session.inputNames;
  let batches = 0;
  try {
    for await (const feed of data as AsyncIterable<Feed>) {
      const field = `${what}[${batches}]`;
      if (typeof feed !== 'object' || feed === null || Array.isArray(feed)) throw typeError(field, 'a feed object mapping graph input names to tensors', feed);
      const feeds: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(feed)) {
        if (!inputNames.includes(k)) throw new RangeError(`Expected graph input names (${inputNames.map((n) => `'${n}'`).join(', ')}) for the keys of ${field} but received '${k}'`);
        feeds[k] = toOrtTensor(ort, v, `${field}['${k}']`);
      }
      for (const n of inputNames) if (!(n in feeds)) throw new RangeError(`Expected a value for graph input '${n}' in ${field} but received none`);
      const out = await session.run(feeds);
      try {
        fn(out as Record<string, OrtValue>, batches);
      } finally {
        for (const v of Object.values(out)) (v as { dispose?: () => void }).dispose?.();
      }
      batches++;
    }
  } finally {
    await session.release?.();
  }
  return batches;
}

/**
 * Runs the float model over the feeds with `tensors` exposed and observes each. The model is not
 * changed (outputs are added to an encoded copy).
 */
export async function calibrate(
  model: ModelP, tensors: string[], data: CalibrationFeeds, makeObs: (t: string) => Observer,
  opts: { onProgress?: (done: number) => void; sessionOptions?: Record<string, unknown> } = {},
): Promise<CalibrationResult> {
  const observers = new Map<string, Observer>();
  for (const t of tensors) observers.set(t, makeObs(t));
  const notFloat = new Set<string>();
  const batches = await runWithOutputs(model, tensors, data, (out, i) => {
    for (const [t, ob] of observers) {
      const v = out[t];
      if (!v || v.type !== 'float32') { notFloat.add(t); continue; }
      if (v.data.length > 0) ob.observe(v.data as Float32Array);
    }
    opts.onProgress?.(i + 1);
  }, { sessionOptions: opts.sessionOptions });
  if (batches === 0) throw new RangeError('Expected at least one feed for options.calibrationData but received none');
  return { observers, batches, notFloat: [...notFloat] };
}
