// What the analysis needs from a float model and its data: the leaf layers in execution order
// (named as quantizeModel's per-layer overrides name them), the input width, eval-mode forwards,
// and data given as rows or as batches that can be read more than once (the analysis streams
// them two or more times and keeps none of them).
import { checkTyped, describe, isTypedOf, rangeError, typeError } from '../errors';
import { nn } from '../index';

type Module = InstanceType<typeof nn.Module>;

/** One leaf layer of the model: its dotted name ('1', '2.0', ...) and the module. */
export interface Leaf {
  name: string;
  module: Module;
}

/** Data to analyze: rows (Float32Array of rows x features), an array of batches, or a function returning batches afresh. */
export type AnalysisData =
  | Float32Array
  | readonly (Float32Array | { x: Float32Array })[]
  | (() => Iterable<Float32Array | { x: Float32Array }>);

/** Rows with labels (class indices) for accuracy; labels may be left out (output error only). */
export interface EvalData {
  x: Float32Array;
  labels?: ArrayLike<number>;
}

/** The model as a Sequential, checked (a TypeError naming what was given otherwise). */
export function checkModel(model: unknown): InstanceType<typeof nn.Sequential> {
  if (model instanceof nn.Sequential) return model;
  if (typeof model === 'string' || model instanceof Uint8Array) {
    throw new TypeError(`Expected a float nn.Sequential for model but received ${describe(model)}: ONNX models are analyzed by analyzeOnnx(model, options) (async: it runs onnxruntime-node)`);
  }
  if (model instanceof nn.Module) throw new TypeError(`Expected a Sequential for model but received ${(model as object).constructor.name} (wrap it: new Sequential(layer))`);
  throw typeError('model', 'a float nn.Sequential', model);
}

/** Leaf layers in execution order, nested Sequentials flattened (the names quantizeModel uses). */
export function leaves(model: Module): Leaf[] {
  const out: Leaf[] = [];
  const walk = (m: Module, prefix: string): void => {
    if (m instanceof nn.Sequential && (m.length > 0 || prefix === '')) {
      for (const [n, c] of m.children()) walk(c, prefix === '' ? n : `${prefix}.${n}`);
      return;
    }
    out.push({ name: prefix, module: m });
  };
  walk(model, '');
  return out;
}

/** Input features: the first Linear's or LayerNorm's. */
export function inputWidth(ls: readonly Leaf[]): number {
  for (const l of ls) {
    if (l.module instanceof nn.Linear) return l.module.inFeatures;
    if (l.module instanceof nn.LayerNorm) return l.module.normalizedShape;
  }
  throw rangeError('model', 'a model with at least one Linear layer to analyze', 'none');
}

/** Runs fn with every module of the model in eval mode, then restores each module's own mode. */
export function inEvalMode<T>(model: Module, fn: () => T): T {
  const modes: [Module, boolean][] = [];
  const walk = (m: Module): void => { modes.push([m, m.training]); m.children().forEach(([, c]) => walk(c)); };
  walk(model);
  model.eval();
  try {
    return fn();
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
}

/** A re-readable source of batches of whole rows. */
export interface Batches {
  /** Rows in all when known before reading. */
  rows: number | null;
  /** A fresh pass over the batches (x: rows x features, batch: the row count). */
  read(): Generator<{ x: Float32Array; batch: number }>;
}

/** Checks data and returns a re-readable source of batches; `name` names it in errors. */
export function batchesOf(name: string, data: unknown, features: number, batchSize: number): Batches {
  if (data === undefined || data === null) throw typeError(name, 'input rows (a Float32Array of rows x features) or an array of batches', data);
  if (isTypedOf(data, 'Float32Array')) {
    checkTyped<Float32Array>(name, data, [Float32Array]);
    if (data.length % features !== 0) throw rangeError(name, `a length that is a multiple of ${features} (the model's input features)`, describe(data));
    const rows = data.length / features;
    return {
      rows,
      *read() {
        for (let r = 0; r < rows; r += batchSize) {
          const n = Math.min(batchSize, rows - r);
          yield { x: data.subarray(r * features, (r + n) * features), batch: n };
        }
      },
    };
  }
  if (ArrayBuffer.isView(data)) throw typeError(name, 'a Float32Array of input rows', data);
  let source: () => Iterable<unknown>;
  if (typeof data === 'function') {
    source = () => {
      const it = (data as () => unknown)();
      if (typeof it !== 'object' || it === null || typeof (it as Iterable<unknown>)[Symbol.iterator] !== 'function') {
        throw typeError(`${name}()`, 'an iterable of batches', it);
      }
      return it as Iterable<unknown>;
    };
  } else if (Array.isArray(data)) {
    source = () => data;
  } else if (typeof data === 'object' && typeof (data as Iterable<unknown>)[Symbol.iterator] === 'function') {
    throw new TypeError(`Expected input rows, an array of batches or a function returning batches for ${name} but received a one-shot iterable: the analysis reads the data more than once (pass () => makeBatches())`);
  } else {
    throw typeError(name, 'input rows (a Float32Array of rows x features), an array of batches or a function returning batches', data);
  }
  return {
    rows: null,
    *read() {
      let i = 0;
      for (const b of source()) {
        const field = `${name}[${i++}]`;
        const isRows = isTypedOf(b, 'Float32Array');
        if (!isRows && (typeof b !== 'object' || b === null || ArrayBuffer.isView(b))) throw typeError(field, 'a Float32Array or { x }', b);
        const x = isRows ? (b as Float32Array) : checkTyped<Float32Array>(`${field}.x`, (b as { x?: unknown }).x, [Float32Array]);
        if (x.length % features !== 0) throw rangeError(isRows ? field : `${field}.x`, `a length that is a multiple of ${features} (the model's input features)`, describe(x));
        const batch = x.length / features;
        if (batch > 0) yield { x, batch };
      }
    },
  };
}

/** Checks eval data: rows of `features` values and, when given, one class index per row. */
export function checkEvalData(name: string, data: unknown, features: number): { x: Float32Array; rows: number; labels: Int32Array | null } {
  if (typeof data !== 'object' || data === null || ArrayBuffer.isView(data) || Array.isArray(data)) throw typeError(name, 'an object { x, labels? }', data);
  const d = data as { x?: unknown; labels?: unknown };
  for (const k of Object.keys(d)) if (k !== 'x' && k !== 'labels') throw new TypeError(`Unknown option '${k}' in ${name}; expected only 'x', 'labels'`);
  const x = checkTyped<Float32Array>(`${name}.x`, d.x, [Float32Array]);
  if (x.length % features !== 0) throw rangeError(`${name}.x`, `a length that is a multiple of ${features} (the model's input features)`, describe(x));
  const rows = x.length / features;
  if (rows === 0) throw rangeError(`${name}.x`, 'at least one row', 'none');
  if (d.labels === undefined) return { x, rows, labels: null };
  const l = d.labels as ArrayLike<number>;
  if (typeof l !== 'object' || l === null || typeof l.length !== 'number') throw typeError(`${name}.labels`, 'an array of class indices', l);
  if (l.length !== rows) throw rangeError(`${name}.labels`, `${rows} labels (one per row of ${name}.x)`, `${l.length}`);
  const labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const v = l[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw rangeError(`${name}.labels[${i}]`, 'a class index (an integer >= 0)', String(v));
    labels[i] = v;
  }
  return { x, rows, labels };
}
