// Parts of model files that layer types share (file.ts reads and writes the graph; each layer
// type's registry entry reads and writes its own tensors with these): the loading context, tensor
// names, and quantized weights as tensors (codes, scales, zero points) plus their JSON description.
import { describeValue, WeightFileError } from '../io/errors';
import type { SafetensorsTensor } from '../io/safetensors';
import { resolveSpec } from '../spec';
import type { LayerSpec } from './registry';
import { readWeightCodes, weightCodeNames, weightScaleShape } from './weight-codes';
import { ActQParams, pfx, QuantWeight, WeightGranularity } from './stages';

export { pfx };

/** How a saved quantized weight was quantized (the graph's `weight` field). */
export interface WeightJSON {
  bits: number;
  scheme: 'symmetric' | 'asymmetric';
  signed: boolean;
  range: 'restricted' | 'full';
  granularity: WeightGranularity;
}

/**
 * Adds a quantized Linear weight's tensors under `name` ('1' -> '1.weight', '1.weight_scale',
 * '1.weight_zero_point' for unsigned codes) and returns its description for the graph.
 */
export function weightTensors(name: string, w: QuantWeight, out: Record<string, SafetensorsTensor>): WeightJSON {
  const t = w.tensor;
  const [N, K] = t.shape;
  const nib = t.bits <= 4;
  if (nib) out[pfx(name, 'weight')] = { dtype: 'U8', shape: [t.data.length], data: t.data };
  else out[pfx(name, 'weight')] = { dtype: t.signed ? 'I8' : 'U8', shape: [N, K], data: t.data };
  const g = w.granularity;
  const sshape = weightScaleShape(g, N, K);
  out[pfx(name, 'weight_scale')] = { dtype: 'F32', shape: sshape, data: t.scale };
  if (t.scheme === 'asymmetric' || !t.signed) out[pfx(name, 'weight_zero_point')] = { dtype: 'U8', shape: sshape, data: Uint8Array.from(t.zeroPoint) };
  const spec = resolveSpec('weight', { scheme: t.scheme, bits: t.bits, signed: t.signed });
  return { bits: t.bits, scheme: t.scheme, signed: t.signed, range: t.qmin === spec.qmin ? 'restricted' : 'full', granularity: g };
}

/** The loading context: the file, its tensors (each taken once, checked), and failing with a WeightFileError naming file and field. */
export class FileCtx {
  constructor(readonly file: string, readonly tensors: Record<string, SafetensorsTensor>) {}
  used = new Set<string>();
  fail(field: string, msg: string, cause?: unknown): never {
    throw new WeightFileError(this.file, field, msg, cause === undefined ? undefined : { cause });
  }
  obj(field: string, v: unknown): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, `expected an object but found ${describeValue(v)}`);
    return v as Record<string, unknown>;
  }
  tensor(name: string, dtypes: string[], shape: number[] | null): SafetensorsTensor {
    const t = Object.prototype.hasOwnProperty.call(this.tensors, name) ? this.tensors[name] : undefined;
    if (!t) this.fail(`tensors['${name}']`, 'missing (the graph needs it)');
    if (!dtypes.includes(t.dtype)) this.fail(`tensors['${name}'].dtype`, `expected ${dtypes.map((d) => `'${d}'`).join(' or ')} but found '${t.dtype}'`);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      this.fail(`tensors['${name}'].shape`, `expected [${shape.join(', ')}] but found [${t.shape.join(', ')}]`);
    }
    this.used.add(name);
    return t;
  }
  has(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.tensors, name);
  }
}

/** A saved layer as loadModel hands it to its layer type: name, checked spec, the graph entry and its field. */
export interface SavedLayer<S extends LayerSpec = LayerSpec> {
  name: string;
  spec: S;
  json: Record<string, unknown>;
  field: string;
}

/** Checks saved activation qparams (scale a positive finite float32, zero point 0..255). */
export function checkAct(c: FileCtx, field: string, v: unknown): ActQParams {
  const o = c.obj(field, v);
  const s = o.scale;
  if (typeof s !== 'number' || !(s > 0) || !Number.isFinite(Math.fround(s)) || Math.fround(s) === 0) c.fail(`${field}.scale`, `expected a positive finite float32 but found ${describeValue(s)}`);
  const z = o.zeroPoint;
  if (typeof z !== 'number' || !Number.isInteger(z) || z < 0 || z > 255) c.fail(`${field}.zeroPoint`, `expected an integer 0..255 but found ${describeValue(z)}`);
  const out: ActQParams = { scale: Math.fround(s), zeroPoint: z };
  // Optional (QAT models with activations below 8 bits, PyTorch rounding of the float input).
  for (const k of ['qmin', 'qmax'] as const) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) c.fail(`${field}.${k}`, `expected an integer 0..255 but found ${describeValue(v)}`);
    out[k] = v;
  }
  const lo = out.qmin ?? 0, hi = out.qmax ?? 255;
  if (lo >= hi) c.fail(`${field}.qmax`, `expected more than qmin (${lo}) but found ${hi}`);
  if (z < lo || z > hi) c.fail(`${field}.zeroPoint`, `expected an integer ${lo}..${hi} (qmin..qmax) but found ${z}`);
  if (o.formula !== undefined) {
    if (o.formula !== 'onnx' && o.formula !== 'pytorch') c.fail(`${field}.formula`, `expected 'onnx' or 'pytorch' but found ${describeValue(o.formula)}`);
    if (o.formula === 'pytorch') out.formula = 'pytorch';
  }
  return out;
}

/** Checks a saved weight description (bits, scheme, signedness, range, granularity for the layer's mode). */
export function checkWeightJSON(c: FileCtx, field: string, v: unknown, mode: string): WeightJSON {
  const o = c.obj(field, v);
  const bits = o.bits;
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 2 || bits > 8) c.fail(`${field}.bits`, `expected an integer 2..8 but found ${describeValue(bits)}`);
  if (o.scheme !== 'symmetric' && o.scheme !== 'asymmetric') c.fail(`${field}.scheme`, `expected 'symmetric' or 'asymmetric' but found ${describeValue(o.scheme)}`);
  if (typeof o.signed !== 'boolean') c.fail(`${field}.signed`, `expected a boolean but found ${describeValue(o.signed)}`);
  if (o.range !== 'restricted' && o.range !== 'full') c.fail(`${field}.range`, `expected 'restricted' or 'full' but found ${describeValue(o.range)}`);
  const g = o.granularity;
  let gran: WeightGranularity;
  if (g === 'per-tensor' || g === 'per-channel') gran = g;
  else if (typeof g === 'object' && g !== null && !Array.isArray(g) && Object.keys(g).length === 1 && Number.isInteger((g as { groupSize?: unknown }).groupSize) && (g as { groupSize: number }).groupSize >= 1) {
    gran = { groupSize: (g as { groupSize: number }).groupSize };
    if (mode !== 'weight-only') c.fail(`${field}.granularity`, `groups are only for weight-only layers, found ${describeValue(g)} in a ${mode} layer`);
  } else c.fail(`${field}.granularity`, `expected 'per-tensor', 'per-channel' or { groupSize } but found ${describeValue(g)}`);
  return { bits, scheme: o.scheme, signed: o.signed, range: o.range, granularity: gran };
}

/** A quantized weight [N, K] from its tensors, every scale, zero point and code checked. */
export function loadWeight(c: FileCtx, name: string, _field: string, w: WeightJSON, N: number, K: number): QuantWeight {
  return readWeightCodes({ tensors: c.tensors, fail: (f, m) => c.fail(f, m), taken: (n) => c.used.add(n), missing: 'missing (the graph needs it)' },
    weightCodeNames(pfx(name, 'weight')), w, N, K);
}
