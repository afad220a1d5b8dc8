// The layer graph of a Sequential model: its leaf layers in order with their dotted names
// ('0', '1', ... and '2.0' inside a nested Sequential, the state dict's names), each described
// as plain JSON (what model files keep in __metadata__) and rebuilt from that JSON.
import { rangeError, typeError } from '../errors';
import { Dropout, Flatten, GELU, Identity, LayerNorm, Linear, ReLU, Sigmoid, Softmax, Tanh } from '../nn/layers';
import { Module } from '../nn/module';
import { Sequential } from '../nn/sequential';

/** One leaf layer of a model, as model files describe it. */
export type LayerSpec =
  | { type: 'Linear'; inFeatures: number; outFeatures: number; bias: boolean }
  | { type: 'ReLU' | 'Tanh' | 'Sigmoid' | 'Softmax' | 'Flatten' | 'Identity' }
  | { type: 'GELU'; approximate: 'none' | 'tanh' }
  | { type: 'LayerNorm'; normalizedShape: number; eps: number; elementwiseAffine: boolean }
  | { type: 'Dropout'; p: number }
  | { type: 'Sequential' }; // an empty Sequential (a container with layers is flattened)

export interface NamedLayer {
  name: string;
  module: Module;
}

/** The leaf layers of a model in execution order (nested Sequentials flattened, names dotted). */
export function leafLayers(model: Module, name = 'model'): NamedLayer[] {
  if (!(model instanceof Module)) throw typeError(name, 'an nn Module (Sequential or a layer)', model);
  const out: NamedLayer[] = [];
  const walk = (m: Module, prefix: string): void => {
    if (m instanceof Sequential && (m.length > 0 || prefix === '')) {
      for (const [n, c] of m.children()) walk(c, prefix === '' ? n : `${prefix}.${n}`);
      return;
    }
    layerSpec(m, prefix === '' ? name : `${name} layer '${prefix}'`);
    out.push({ name: prefix, module: m });
  };
  walk(model, '');
  return out;
}

/** The JSON description of a leaf layer (throws for a module type the graph cannot hold). */
export function layerSpec(m: Module, where: string): LayerSpec {
  if (m instanceof Linear) return { type: 'Linear', inFeatures: m.inFeatures, outFeatures: m.outFeatures, bias: m.bias !== null };
  if (m instanceof ReLU) return { type: 'ReLU' };
  if (m instanceof Tanh) return { type: 'Tanh' };
  if (m instanceof Sigmoid) return { type: 'Sigmoid' };
  if (m instanceof Softmax) return { type: 'Softmax' };
  if (m instanceof GELU) return { type: 'GELU', approximate: m.approximate };
  if (m instanceof LayerNorm) return { type: 'LayerNorm', normalizedShape: m.normalizedShape, eps: m.eps, elementwiseAffine: m.weight !== null };
  if (m instanceof Dropout) return { type: 'Dropout', p: m.p };
  if (m instanceof Flatten) return { type: 'Flatten' };
  if (m instanceof Identity) return { type: 'Identity' };
  if (m instanceof Sequential && m.length === 0) return { type: 'Sequential' };
  throw typeError(where, 'a Sequential of nn layers (Linear, ReLU, GELU, Tanh, Sigmoid, Softmax, LayerNorm, Flatten, Dropout, Identity)', m);
}

/** Layers that return their input unchanged at inference. */
export function isPassThrough(m: Module): boolean {
  return m instanceof Identity || m instanceof Dropout || (m instanceof Sequential && m.length === 0); // Flatten extends Identity
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const SPEC_TYPES = ['Linear', 'ReLU', 'Tanh', 'Sigmoid', 'Softmax', 'Flatten', 'Identity', 'GELU', 'LayerNorm', 'Dropout', 'Sequential'];

function posInt(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2 ** 31) throw rangeError(field, 'a positive integer', JSON.stringify(v) ?? String(v));
  return v;
}

/** Checks a LayerSpec read from a file (every field); `field` names it in errors. */
export function checkLayerSpec(field: string, v: unknown): LayerSpec {
  if (!isObj(v)) throw typeError(field, 'a layer object', v);
  if (typeof v.type !== 'string' || !SPEC_TYPES.includes(v.type)) {
    throw rangeError(`${field}.type`, `one of ${SPEC_TYPES.map((t) => `'${t}'`).join(', ')}`, JSON.stringify(v.type) ?? String(v.type));
  }
  switch (v.type) {
    case 'Linear': {
      if (typeof v.bias !== 'boolean') throw typeError(`${field}.bias`, 'a boolean', v.bias);
      return { type: 'Linear', inFeatures: posInt(`${field}.inFeatures`, v.inFeatures), outFeatures: posInt(`${field}.outFeatures`, v.outFeatures), bias: v.bias };
    }
    case 'GELU':
      if (v.approximate !== 'none' && v.approximate !== 'tanh') throw rangeError(`${field}.approximate`, "'none' or 'tanh'", JSON.stringify(v.approximate) ?? 'undefined');
      return { type: 'GELU', approximate: v.approximate };
    case 'LayerNorm': {
      if (typeof v.eps !== 'number' || !(v.eps > 0) || !Number.isFinite(v.eps)) throw rangeError(`${field}.eps`, 'a positive number', JSON.stringify(v.eps) ?? 'undefined');
      if (typeof v.elementwiseAffine !== 'boolean') throw typeError(`${field}.elementwiseAffine`, 'a boolean', v.elementwiseAffine);
      return { type: 'LayerNorm', normalizedShape: posInt(`${field}.normalizedShape`, v.normalizedShape), eps: v.eps, elementwiseAffine: v.elementwiseAffine };
    }
    case 'Dropout':
      if (typeof v.p !== 'number' || !(v.p >= 0 && v.p <= 1)) throw rangeError(`${field}.p`, 'a number between 0 and 1', JSON.stringify(v.p) ?? 'undefined');
      return { type: 'Dropout', p: v.p };
    default:
      return { type: v.type as 'ReLU' };
  }
}

/** The parameters a layer of this spec has, with their shapes (state dict suffixes). */
export function paramShapes(s: LayerSpec): [string, number[]][] {
  if (s.type === 'Linear') return s.bias ? [['weight', [s.outFeatures, s.inFeatures]], ['bias', [s.outFeatures]]] : [['weight', [s.outFeatures, s.inFeatures]]];
  if (s.type === 'LayerNorm' && s.elementwiseAffine) return [['weight', [s.normalizedShape]], ['bias', [s.normalizedShape]]];
  return [];
}

/**
 * Checks that dotted names describe a valid nesting of Sequentials (each name the next position
 * in its container), without building anything.
 */
export function checkNesting(field: string, layers: { name: string; spec: LayerSpec }[]): void {
  interface Node { kids: Node[]; leaf: boolean }
  const root: Node = { kids: [], leaf: false };
  for (let i = 0; i < layers.length; i++) {
    const { name, spec } = layers[i];
    const parts = name.split('.');
    if (parts.length > 32) throw rangeError(`${field}[${i}].name`, 'at most 32 levels of nesting', `${parts.length} levels`);
    if (parts.some((p) => !/^(0|[1-9][0-9]{0,8})$/.test(p))) throw rangeError(`${field}[${i}].name`, "a dotted position such as '0' or '2.1'", JSON.stringify(name));
    let node = root;
    for (let d = 0; d < parts.length; d++) {
      const pos = Number(parts[d]);
      const last = d === parts.length - 1;
      if (pos < node.kids.length) {
        const existing = node.kids[pos];
        if (last || existing.leaf) throw rangeError(`${field}[${i}].name`, 'a new position after the previous layer', JSON.stringify(name));
        node = existing;
        continue;
      }
      if (pos !== node.kids.length) throw rangeError(`${field}[${i}].name`, `position ${node.kids.length} next in its Sequential`, JSON.stringify(name));
      const child: Node = { kids: [], leaf: last && spec.type !== 'Sequential' };
      node.kids.push(child);
      if (last && spec.type === 'Sequential') child.leaf = true; // an empty container stays empty
      node = child;
    }
  }
}

/** A fresh layer (parameters zero) from its spec. */
export function moduleFromSpec(s: LayerSpec): Module {
  switch (s.type) {
    case 'Linear': {
      const l = new Linear(s.inFeatures, s.outFeatures, { bias: s.bias, rng: 0 });
      l.weight.data.fill(0);
      l.bias?.data.fill(0);
      return l;
    }
    case 'ReLU': return new ReLU();
    case 'Tanh': return new Tanh();
    case 'Sigmoid': return new Sigmoid();
    case 'Softmax': return new Softmax();
    case 'Flatten': return new Flatten();
    case 'Identity': return new Identity();
    case 'GELU': return new GELU({ approximate: s.approximate });
    case 'LayerNorm': return new LayerNorm(s.normalizedShape, { eps: s.eps, elementwiseAffine: s.elementwiseAffine });
    case 'Dropout': return new Dropout(s.p);
    case 'Sequential': return new Sequential();
  }
}

/**
 * A Sequential from named leaf specs: names '0', '1', ... at the top level, '2.0' for a layer of a
 * nested Sequential at position 2 (rebuilt as nested Sequentials, so state dict names match).
 */
export function sequentialFromSpecs(field: string, layers: { name: string; spec: LayerSpec }[]): { model: Sequential; modules: Module[] } {
  checkNesting(field, layers);
  const root = new Sequential();
  const modules: Module[] = [];
  for (const { name, spec } of layers) {
    const parts = name.split('.').map(Number);
    let seq = root;
    for (const pos of parts.slice(0, -1)) {
      if (pos === seq.length) seq.add(new Sequential());
      seq = seq.at(pos) as Sequential;
    }
    const m = moduleFromSpec(spec);
    seq.add(m);
    modules.push(m);
  }
  return { model: root, modules };
}

/** Input features of a model: the first Linear's or LayerNorm's, or null when neither fixes them. */
export function inputFeatures(specs: readonly LayerSpec[]): number | null {
  for (const s of specs) {
    if (s.type === 'Linear') return s.inFeatures;
    if (s.type === 'LayerNorm') return s.normalizedShape;
  }
  return null;
}
