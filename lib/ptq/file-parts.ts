// Parts of model files that layer types share (file.ts reads and writes the graph; each layer
// type's registry entry reads and writes its own tensors with these): the loading context, tensor
// names, and quantized weights as tensors (codes, scales, zero points) plus their JSON description.
import { WeightFileError, describeValue } from '../io/tfjs';
import type { SafetensorsTensor } from '../io/safetensors';
import { granularityLayout } from '../layout';
import { resolveSpec, storageBytes } from '../spec';
import { QuantizedTensor } from '../tensor';
import type { LayerSpec } from './registry';
import { ActQParams, layoutGranularity, pfx, QuantWeight, WeightGranularity } from './stages';

export { pfx };

/** How a saved quantized weight was quantized (the graph's `weight` field). */
export interface WeightJSON {
  bits: number;
  scheme: 'symmetric' | 'asymmetric';
  signed: boolean;
  range: 'restricted' | 'full';
  granularity: WeightGranularity;
}

/** Shape of a Linear weight's scale (and zero point) tensor: [1], [out] or [out, groups]. */
export function scaleShape(g: WeightGranularity, N: number, K: number): number[] {
  return g === 'per-tensor' ? [1] : g === 'per-channel' ? [N] : [N, Math.ceil(K / g.groupSize)];
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
  const sshape = scaleShape(g, N, K);
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
  return { scale: Math.fround(s), zeroPoint: z };
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
export function loadWeight(c: FileCtx, name: string, field: string, w: WeightJSON, N: number, K: number): QuantWeight {
  const spec = resolveSpec('weight', { scheme: w.scheme, bits: w.bits, signed: w.signed, range: w.range });
  const g = w.granularity;
  const sshape = scaleShape(g, N, K);
  const nib = w.bits <= 4;
  const wt = nib
    ? c.tensor(pfx(name, 'weight'), ['U8'], [storageBytes(spec.dtype, N * K)])
    : c.tensor(pfx(name, 'weight'), [spec.signed ? 'I8' : 'U8'], [N, K]);
  const sc = c.tensor(pfx(name, 'weight_scale'), ['F32'], sshape).data as Float32Array;
  for (let i = 0; i < sc.length; i++) {
    if (!(sc[i] > 0) || !Number.isFinite(sc[i])) c.fail(`tensors['${pfx(name, 'weight_scale')}'][${i}]`, `expected a positive finite scale but found ${sc[i]}`);
  }
  const zp = new Int32Array(sc.length);
  if (w.scheme === 'asymmetric' || !w.signed) {
    const z = c.tensor(pfx(name, 'weight_zero_point'), ['U8'], sshape).data as Uint8Array;
    for (let i = 0; i < z.length; i++) {
      if (z[i] < spec.qmin || z[i] > spec.qmax) c.fail(`tensors['${pfx(name, 'weight_zero_point')}'][${i}]`, `expected ${spec.qmin}..${spec.qmax} but found ${z[i]}`);
      zp[i] = z[i];
    }
  }
  const data = wt.data as Int8Array | Uint8Array;
  // Codes inside the scheme's range (a wrong code would silently change results).
  const n = N * K;
  for (let i = 0; i < n; i++) {
    let v: number;
    if (nib) {
      const b = data[i >> 1];
      v = i & 1 ? b >> 4 : b & 15;
      if (spec.signed && v >= 8) v -= 16;
    } else v = data[i];
    if (v < spec.qmin || v > spec.qmax) c.fail(`tensors['${pfx(name, 'weight')}']`, `code ${v} at element ${i} is outside ${spec.qmin}..${spec.qmax} (${field})`);
  }
  const granularity = layoutGranularity(g);
  const s2 = resolveSpec('weight', { scheme: w.scheme, bits: w.bits, signed: w.signed, range: w.range, granularity });
  const layout = granularityLayout('weight', granularity, [N, K], n);
  const tensor = new QuantizedTensor({ data, shape: [N, K], spec: s2, scale: sc, zeroPoint: zp, layout });
  return { tensor, granularity: g };
}
