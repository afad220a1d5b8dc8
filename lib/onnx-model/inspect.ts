// inspectOnnx: what an ONNX model holds (opsets, inputs and outputs, operators, weight bytes) and
// what each mode of quantizeOnnx would quantize (dynamic and weight-only are planned without
// running anything; static quantizes the dynamic set plus Adds of two activations).
import { allGraphs } from './graph';
import { dtypeName, num, readModel, TypeP } from './proto';
import { OnnxNodeSummary, quantizeOnnx } from './quantize';

export interface OnnxValueInfo {
  name: string;
  /** 'float32', 'int64', ... or 'sequence' / 'map' / 'optional' / 'unknown'. */
  type: string;
  /** Dimensions: numbers, symbolic names, or null when unknown. */
  shape: (number | string | null)[] | null;
}

export interface OnnxInfo {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: string;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** Operator counts over every graph, subgraphs included. */
  ops: Record<string, number>;
  nodes: number;
  subgraphs: number;
  /** Initializer bytes by data type (raw sizes). */
  initializerBytes: Record<string, number>;
  fileBytes: number;
  /** Nodes each mode would quantize, and the rest with reasons. */
  plan: { dynamic: OnnxNodeSummary[]; 'weight-only': OnnxNodeSummary[] };
}

function typeOf(t: TypeP | undefined): Pick<OnnxValueInfo, 'type' | 'shape'> {
  if (!t) return { type: 'unknown', shape: null };
  if (t.tensorType) {
    const shape = t.tensorType.shape ? t.tensorType.shape.dim.map((d) => (d.dimValue !== undefined ? num(d.dimValue) : d.dimParam ?? null)) : null;
    return { type: dtypeName(t.tensorType.elemType), shape };
  }
  return { type: t.sequenceType ? 'sequence' : t.mapType ? 'map' : t.optionalType ? 'optional' : 'unknown', shape: null };
}

export async function inspectOnnx(model: string | Uint8Array, opts: { baseDir?: string } = {}): Promise<OnnxInfo> {
  const lm = readModel(model, opts);
  const m = lm.model;
  const g = m.graph!;
  const inits = new Set(g.initializer.map((t) => t.name));
  const ops: Record<string, number> = {};
  const bytes: Record<string, number> = {};
  let nodes = 0;
  const graphs = allGraphs(g);
  for (const { graph } of graphs) {
    for (const n of graph.node) {
      const k = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType!;
      ops[k] = (ops[k] ?? 0) + 1;
      nodes++;
    }
    for (const t of graph.initializer) {
      const d = dtypeName(t.dataType);
      const n = t.dims.reduce<number>((a, b) => a * num(b), 1);
      const b = t.rawData?.length || n * ({ float: 4, double: 8, int64: 8, int32: 4, int16: 2, float16: 2 } as Record<string, number>)[d] || n;
      bytes[d] = (bytes[d] ?? 0) + b;
    }
  }
  const plan = async (mode: 'dynamic' | 'weight-only'): Promise<OnnxNodeSummary[]> => (await quantizeOnnx(model, { mode, baseDir: opts.baseDir })).summary.nodes;
  return {
    irVersion: num(m.irVersion),
    opsets: m.opsetImport.map((o) => ({ domain: o.domain || 'ai.onnx', version: num(o.version) })),
    producer: `${m.producerName ?? ''} ${m.producerVersion ?? ''}`.trim(),
    inputs: g.input.filter((v) => !inits.has(v.name)).map((v) => ({ name: v.name ?? '', ...typeOf(v.type) })),
    outputs: g.output.map((v) => ({ name: v.name ?? '', ...typeOf(v.type) })),
    ops, nodes, subgraphs: graphs.length - 1, initializerBytes: bytes, fileBytes: lm.bytes,
    plan: { dynamic: await plan('dynamic'), 'weight-only': await plan('weight-only') },
  };
}

