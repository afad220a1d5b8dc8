// Graph helpers for rewriting ONNX models: constants (initializers and Constant nodes), producers
// and consumers, fresh names, attributes, operator-set versions and safe opset upgrades.
import { AttributeP, DT, GraphP, Int64, LoadedModel, makeTensor, ModelP, NodeP, num, TensorArray, TensorP, TensorValue, tensorValue } from './proto';
import { MAX_KNOWN_OPSET, OP_VERSIONS } from './op-versions';

export const ATTR = Object.freeze({ FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10 });

export function attr(n: NodeP, name: string): AttributeP | undefined {
  return n.attribute.find((a) => a.name === name);
}
export function attrInt(n: NodeP, name: string, dflt: number): number {
  const a = attr(n, name);
  return a === undefined || a.i === undefined ? dflt : num(a.i);
}
export function attrFloat(n: NodeP, name: string, dflt: number): number {
  const a = attr(n, name);
  return a === undefined || a.f === undefined ? dflt : a.f;
}
export function attrInts(n: NodeP, name: string): number[] | undefined {
  const a = attr(n, name);
  return a === undefined ? undefined : a.ints.map((v) => num(v));
}
export function attrString(n: NodeP, name: string): string | undefined {
  const a = attr(n, name);
  return a?.s === undefined ? undefined : Buffer.from(a.s).toString('utf8');
}

function emptyAttr(name: string, type: number): AttributeP {
  return { name, type, floats: [], ints: [], strings: [], tensors: [], graphs: [] };
}
export function intAttr(name: string, v: number): AttributeP {
  return { ...emptyAttr(name, ATTR.INT), i: v };
}
export function floatAttr(name: string, v: number): AttributeP {
  return { ...emptyAttr(name, ATTR.FLOAT), f: v };
}
export function intsAttr(name: string, v: number[]): AttributeP {
  return { ...emptyAttr(name, ATTR.INTS), ints: v.slice() };
}
export function stringAttr(name: string, v: string): AttributeP {
  return { ...emptyAttr(name, ATTR.STRING), s: new TextEncoder().encode(v) };
}

export function makeNode(opType: string, input: string[], output: string[], name: string, attrs: AttributeP[] = [], domain?: string): NodeP {
  const n: NodeP = { input, output, name, opType, attribute: attrs };
  if (domain) n.domain = domain;
  return n;
}

/** Every graph of a model (main graph first, then subgraphs depth first) with its path. */
export function allGraphs(g: GraphP, where = 'graph', depth = 0): { graph: GraphP; where: string; depth: number; owner: NodeP | null }[] {
  const out: { graph: GraphP; where: string; depth: number; owner: NodeP | null }[] = [{ graph: g, where, depth, owner: null }];
  const rec = (gr: GraphP, w: string, d: number): void => {
    for (const n of gr.node) {
      for (const a of n.attribute) {
        const subs = a.g ? [a.g] : a.graphs;
        subs.forEach((sg, i) => {
          const sw = `${w} > ${n.opType} '${n.name ?? ''}'.${a.name}${a.g ? '' : `[${i}]`}`;
          out.push({ graph: sg, where: sw, depth: d + 1, owner: n });
          rec(sg, sw, d + 1);
        });
      }
    }
  };
  rec(g, where, depth);
  return out;
}

/** Unique names: every value, node and initializer name already in the model is taken. */
export class Names {
  private readonly taken = new Set<string>();
  constructor(m: ModelP) {
    for (const { graph } of allGraphs(m.graph!)) {
      for (const n of graph.node) {
        if (n.name) this.taken.add(n.name);
        for (const v of [...n.input, ...n.output]) this.taken.add(v);
      }
      for (const t of graph.initializer) if (t.name) this.taken.add(t.name);
      for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) if (v.name) this.taken.add(v.name);
    }
  }
  fresh(base: string): string {
    let n = base;
    for (let i = 1; this.taken.has(n); i++) n = `${base}_${i}`;
    this.taken.add(n);
    return n;
  }
}

/** Per-graph index: initializers, Constant nodes, producers, consumers. */
export class GraphIndex {
  readonly inits = new Map<string, TensorP>();
  readonly constNodes = new Map<string, NodeP>();
  readonly producer = new Map<string, NodeP>();
  readonly consumers = new Map<string, NodeP[]>();
  readonly graphInputs: Set<string>;
  readonly graphOutputs: Set<string>;
  /** Names read by subgraphs from this graph's scope (implicit inputs). */
  readonly outerUses = new Set<string>();

  constructor(readonly graph: GraphP, readonly outer: GraphIndex | null = null) {
    for (const t of graph.initializer) if (t.name) this.inits.set(t.name, t);
    this.graphInputs = new Set(graph.input.map((v) => v.name ?? ''));
    this.graphOutputs = new Set(graph.output.map((v) => v.name ?? ''));
    for (const n of graph.node) {
      for (const o of n.output) if (o) this.producer.set(o, n);
      for (const i of n.input) {
        if (!i) continue;
        const c = this.consumers.get(i);
        if (c) c.push(n); else this.consumers.set(i, [n]);
      }
      if (n.opType === 'Constant' && (n.domain ?? '') === '' && n.output.length === 1) {
        const v = attr(n, 'value');
        if (v?.t) this.constNodes.set(n.output[0], n);
      }
      for (const a of n.attribute) {
        for (const sg of a.g ? [a.g] : a.graphs) collectFreeNames(sg, this.outerUses);
      }
    }
  }

  /** The TensorProto of a constant: an initializer (not overridable by a graph input) or a Constant node's value, here or in an outer scope. */
  constant(name: string): TensorP | null {
    if (this.producer.has(name)) {
      const c = this.constNodes.get(name);
      return c ? attr(c, 'value')!.t! : null;
    }
    if (this.graphInputs.has(name)) return null;
    const t = this.inits.get(name);
    if (t) return t;
    return this.outer ? this.outer.constant(name) : null;
  }

  uses(name: string): number {
    return (this.consumers.get(name)?.length ?? 0) + (this.graphOutputs.has(name) ? 1 : 0) + (this.outerUses.has(name) ? 1 : 0);
  }
}

/** Names a (sub)graph reads without defining them (values from the enclosing scopes). */
function collectFreeNames(g: GraphP, out: Set<string>): void {
  const defined = new Set<string>([...g.input.map((v) => v.name ?? ''), ...g.initializer.map((t) => t.name ?? '')]);
  for (const n of g.node) for (const o of n.output) defined.add(o);
  for (const n of g.node) {
    for (const i of n.input) if (i && !defined.has(i)) out.add(i);
    for (const a of n.attribute) {
      for (const sg of a.g ? [a.g] : a.graphs) {
        const inner = new Set<string>();
        collectFreeNames(sg, inner);
        for (const i of inner) if (!defined.has(i)) out.add(i);
      }
    }
  }
  for (const o of g.output) if (o.name && !defined.has(o.name)) out.add(o.name);
}

export function constantValue(t: TensorP, lm: LoadedModel, field: string): TensorValue {
  return tensorValue(t, lm, field);
}

export function tensorInit(name: string, dataType: number, dims: readonly number[], data: TensorArray): TensorP {
  return makeTensor(name, dataType, dims, data);
}

export function scalarF32(name: string, v: number): TensorP {
  return makeTensor(name, DT.FLOAT, [], Float32Array.of(v));
}

// ---- operator sets ------------------------------------------------------------------------------------

export function opsetVersion(m: ModelP, domain: string): number | null {
  for (const o of m.opsetImport) if ((o.domain ?? '') === domain || (domain === '' && o.domain === 'ai.onnx')) return num(o.version);
  return null;
}

export function setOpset(m: ModelP, domain: string, version: number): void {
  for (const o of m.opsetImport) {
    if ((o.domain ?? '') === domain || (domain === '' && o.domain === 'ai.onnx')) {
      o.version = version;
      return;
    }
  }
  m.opsetImport.push({ domain, version });
}

/** Versions in which an operator changed only the types it accepts or added an attribute whose default keeps the old behaviour. */
const COMPATIBLE_CHANGES = new Set([
  'Relu-14', 'Add-14', 'Sub-14', 'Mul-14', 'Div-14', 'Identity-14', 'Reshape-14', 'BatchNormalization-14', 'LSTM-14', 'GRU-14', 'RNN-14', 'CumSum-14',
  'BatchNormalization-15', 'Pow-15', 'Shape-15',
  'Identity-16', 'If-16', 'Loop-16', 'Scan-16', 'LeakyRelu-16', 'PRelu-16', 'Where-16', 'GreaterOrEqual-16', 'LessOrEqual-16', 'ScatterElements-16', 'ScatterND-16',
  'Cast-19', 'CastLike-19', 'Constant-19', 'Equal-19', 'Identity-19', 'If-19', 'Loop-19', 'Pad-19', 'QuantizeLinear-19', 'DequantizeLinear-19', 'Reshape-19',
  'Scan-19', 'Shape-19', 'Size-19', 'AveragePool-19', 'Resize-19',
  'ConstantOfShape-20', 'IsInf-20', 'IsNaN-20', 'ReduceMax-20', 'ReduceMin-20',
  'Cast-21', 'CastLike-21', 'Constant-21', 'ConstantOfShape-21', 'DequantizeLinear-21', 'Flatten-21', 'Identity-21', 'If-21', 'Loop-21', 'Pad-21',
  'QuantizeLinear-21', 'Reshape-21', 'Scan-21', 'Shape-21', 'Size-21', 'Squeeze-21', 'Transpose-21', 'Unsqueeze-21', 'QLinearMatMul-21',
]);

/** The IR version an opset needs (ONNX's versioning table). */
export function irForOpset(opset: number): number {
  if (opset <= 8) return 3;
  if (opset === 9) return 4;
  if (opset === 10) return 5;
  if (opset === 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

/** Default-domain operators of the model (all graphs and functions that import ai.onnx). */
export function defaultDomainOps(m: ModelP): Set<string> {
  const ops = new Set<string>();
  for (const { graph } of allGraphs(m.graph!)) for (const n of graph.node) if ((n.domain ?? '') === '' || n.domain === 'ai.onnx') ops.add(n.opType ?? '');
  return ops;
}

/**
 * Whether the model's ai.onnx opset can be raised from `from` to `to` without changing what any
 * of its operators means; the operators that block it otherwise.
 */
export function opsetUpgradeBlockers(m: ModelP, from: number, to: number): string[] {
  const blockers: string[] = [];
  if (to > MAX_KNOWN_OPSET) return ['(opset above the known table)'];
  if (m.functions.length > 0) blockers.push('(model-local functions)');
  for (const op of defaultDomainOps(m)) {
    const vs = OP_VERSIONS[op];
    if (vs === undefined) continue; // not in the default domain's table: left to the runtime
    for (const v of vs) if (v > from && v <= to && !COMPATIBLE_CHANGES.has(`${op}-${v}`)) blockers.push(`${op}-${v}`);
  }
  return blockers;
}

/** Raises the default-domain opset (and the IR version it needs); returns false when unsafe. */
export function raiseOpset(m: ModelP, to: number): { ok: boolean; from: number; blockers: string[] } {
  const from = opsetVersion(m, '') ?? 1;
  if (from >= to) return { ok: true, from, blockers: [] };
  const blockers = opsetUpgradeBlockers(m, from, to);
  if (blockers.length) return { ok: false, from, blockers };
  setOpset(m, '', to);
  const ir = irForOpset(to);
  if (num(m.irVersion) < ir) m.irVersion = ir as Int64;
  return { ok: true, from, blockers: [] };
}
