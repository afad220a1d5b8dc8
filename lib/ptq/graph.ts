// The layer graph of a Sequential model: its leaf layers in order with their dotted names
// ('0', '1', ... and '2.0' inside a nested Sequential, the state dict's names), each described
// as plain JSON (what model files keep in __metadata__) and rebuilt from that JSON, through the
// layer registry (registry.ts).
import { rangeError, typeError } from '../errors';
import { Module } from '../nn/module';
import { Sequential } from '../nn/sequential';
import { describeLayer, entryOf, LayerSpec, LayerType, layerTypeNamed, layerTypes } from './registry';

export type { LayerSpec } from './registry';

export interface NamedLayer {
  name: string;
  module: Module;
  /** Its description and its registry entry. */
  spec: LayerSpec;
  layerType: LayerType;
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
    const { type, spec } = describeLayer(m, prefix === '' ? name : `${name} layer '${prefix}'`);
    out.push({ name: prefix, module: m, spec, layerType: type });
  };
  walk(model, '');
  return out;
}

/** The JSON description of a leaf layer (throws for a module type the registry does not hold). */
export function layerSpec(m: Module, where: string): LayerSpec {
  return describeLayer(m, where).spec;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks a LayerSpec read from a file (every field, by its type's entry); `field` names it in errors. */
export function checkLayerSpec(field: string, v: unknown): LayerSpec {
  if (!isObj(v)) throw typeError(field, 'a layer object', v);
  const t = typeof v.type === 'string' ? layerTypeNamed(v.type) : undefined;
  if (!t) throw rangeError(`${field}.type`, `one of ${layerTypes().map((x) => `'${x.type}'`).join(', ')}`, JSON.stringify(v.type) ?? String(v.type));
  return t.check(field, v);
}

/** The parameters a layer of this spec has, with their shapes (state dict suffixes). */
export function paramShapes(s: LayerSpec): [string, number[]][] {
  return entryOf(s).params?.(s) ?? [];
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
  return entryOf(s).create(s);
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

/**
 * Input features of a model: those of its first layer that fixes them (a Linear's inFeatures, a
 * LayerNorm's normalizedShape), or null when none does or a layer that takes any input (an
 * Embedding's ids) comes first.
 */
export function inputFeatures(specs: readonly LayerSpec[]): number | null {
  for (const s of specs) {
    const f = entryOf(s).inFeatures?.(s);
    if (f !== undefined) return f === 'any' ? null : f;
  }
  return null;
}
