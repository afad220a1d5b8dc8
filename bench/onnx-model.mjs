// Minimal ONNX model writer for the benchmarks: just enough protobuf (ModelProto, GraphProto,
// NodeProto, AttributeProto, TensorProto, ValueInfoProto) to build one-node QuantizeLinear /
// DequantizeLinear / MatMulInteger / MatMul graphs in memory, so no binary model files live in the
// repository; graphModel builds multi-node graphs (bench/models.mjs: whole MLPs), and graphNodes
// reads back the operators of a model (e.g. the one onnxruntime optimized).
//
// Field numbers follow onnx/onnx.proto (IR version 10, opset 21).

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** ONNX TensorProto.DataType values used here. */
export const DataType = Object.freeze({ FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 });

class Writer {
  constructor() {
    this.chunks = [];
    this.length = 0;
  }
  bytes(u8) {
    this.chunks.push(u8);
    this.length += u8.length;
  }
  varint(v) {
    // v: non-negative integer (number up to 2^53) or BigInt; negatives as 64-bit two's complement.
    let b = typeof v === 'bigint' ? v : BigInt(v);
    if (b < 0n) b += 1n << 64n;
    const out = [];
    do {
      let byte = Number(b & 0x7fn);
      b >>= 7n;
      if (b !== 0n) byte |= 0x80;
      out.push(byte);
    } while (b !== 0n);
    this.bytes(Uint8Array.from(out));
  }
  tag(field, wire) {
    this.varint((field << 3) | wire);
  }
  int(field, v) {
    this.tag(field, WIRE_VARINT);
    this.varint(v);
  }
  lenDelim(field, u8) {
    this.tag(field, WIRE_LEN);
    this.varint(u8.length);
    this.bytes(u8);
  }
  string(field, s) {
    this.lenDelim(field, new TextEncoder().encode(s));
  }
  message(field, build) {
    const w = new Writer();
    build(w);
    this.lenDelim(field, w.finish());
  }
  packedInts(field, values) {
    const w = new Writer();
    for (const v of values) w.varint(v);
    this.lenDelim(field, w.finish());
  }
  finish() {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

// TensorProto: dims=1, data_type=2, name=8, raw_data=9 (little-endian, as ONNX requires).
function writeTensor(w, { name, dataType, dims, data }) {
  if (dims.length) w.packedInts(1, dims);
  w.int(2, dataType);
  w.string(8, name);
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  w.lenDelim(9, raw.slice());
}

// ValueInfoProto: name=1, type=2 -> TypeProto.tensor_type=1 -> elem_type=1, shape=2 -> dim=1 -> dim_value=1
function writeValueInfo(w, { name, elemType, shape }) {
  w.string(1, name);
  w.message(2, (t) =>
    t.message(1, (tt) => {
      tt.int(1, elemType);
      tt.message(2, (sh) => {
        for (const d of shape) sh.message(1, (dim) => dim.int(1, d));
      });
    }),
  );
}

// AttributeProto: name=1, i=3, type=20 (INT=2)
function writeIntAttr(w, name, value) {
  w.string(1, name);
  w.int(3, value);
  w.int(20, 2);
}

/**
 * Serialise a single-node model.
 * @param {{opType: string, inputs: {name:string, elemType:number, shape:number[]}[],
 *          output: {name:string, elemType:number, shape:number[]},
 *          initializers: {name:string, dataType:number, dims:number[], data:ArrayBufferView}[],
 *          nodeInputs: string[], attrs?: Record<string, number>, opset?: number}} spec
 * @returns {Uint8Array} ModelProto bytes
 */
export function singleNodeModel(spec) {
  const opset = spec.opset ?? 21;
  const w = new Writer();
  w.int(1, 10); // ir_version (IR 10 goes with opset 21)
  w.string(2, 'quantkit-bench'); // producer_name
  w.message(7, (g) => {
    // GraphProto
    g.message(1, (n) => {
      // NodeProto: input=1, output=2, name=3, op_type=4, attribute=5
      for (const i of spec.nodeInputs) n.string(1, i);
      n.string(2, spec.output.name);
      n.string(3, spec.opType + '_0');
      n.string(4, spec.opType);
      for (const [k, v] of Object.entries(spec.attrs ?? {})) n.message(5, (a) => writeIntAttr(a, k, v));
    });
    g.string(2, 'g');
    for (const t of spec.initializers) g.message(5, (tw) => writeTensor(tw, t));
    for (const i of spec.inputs) g.message(11, (vw) => writeValueInfo(vw, i));
    g.message(12, (vw) => writeValueInfo(vw, spec.output));
  });
  w.message(8, (o) => {
    // OperatorSetIdProto: domain=1 ('' = ai.onnx), version=2
    o.string(1, '');
    o.int(2, opset);
  });
  return w.finish();
}

function qparamInitializers(scale, zeroPoint, signed) {
  const perAxis = scale instanceof Float32Array;
  const dims = perAxis ? [scale.length] : [];
  const s = perAxis ? scale : Float32Array.of(scale);
  let z;
  if (perAxis) z = signed ? Int8Array.from(zeroPoint) : Uint8Array.from(zeroPoint);
  else z = signed ? Int8Array.of(zeroPoint) : Uint8Array.of(zeroPoint);
  return [
    { name: 'scale', dataType: DataType.FLOAT, dims, data: s },
    { name: 'zero_point', dataType: signed ? DataType.INT8 : DataType.UINT8, dims, data: z },
  ];
}

/**
 * QuantizeLinear-21 with constant scale / zero point (per-tensor when scale is a number,
 * per-axis along `axis` when it is a Float32Array).
 * @param {{shape:number[], scale:number|Float32Array, zeroPoint:number|ArrayLike<number>, axis?:number, signed?:boolean}} o
 */
export function quantizeLinearModel({ shape, scale, zeroPoint, axis = 1, signed = true }) {
  const qType = signed ? DataType.INT8 : DataType.UINT8;
  return singleNodeModel({
    opType: 'QuantizeLinear',
    inputs: [{ name: 'x', elemType: DataType.FLOAT, shape }],
    output: { name: 'y', elemType: qType, shape },
    initializers: qparamInitializers(scale, zeroPoint, signed),
    nodeInputs: ['x', 'scale', 'zero_point'],
    attrs: scale instanceof Float32Array ? { axis } : {},
  });
}

/**
 * DequantizeLinear-21 with constant scale / zero point.
 * @param {{shape:number[], scale:number|Float32Array, zeroPoint:number|ArrayLike<number>, axis?:number, signed?:boolean}} o
 */
export function dequantizeLinearModel({ shape, scale, zeroPoint, axis = 1, signed = true }) {
  const qType = signed ? DataType.INT8 : DataType.UINT8;
  return singleNodeModel({
    opType: 'DequantizeLinear',
    inputs: [{ name: 'x', elemType: qType, shape }],
    output: { name: 'y', elemType: DataType.FLOAT, shape },
    initializers: qparamInitializers(scale, zeroPoint, signed),
    nodeInputs: ['x', 'scale', 'zero_point'],
    attrs: scale instanceof Float32Array ? { axis } : {},
  });
}

/**
 * MatMulInteger-10 y[M,N] (int32) = (a - a_zero_point)[M,K] x (b - b_zero_point)[K,N], with B (and
 * the zero points) as constant initializers, so onnxruntime pre-packs B at session creation.
 * `b` is a row-major [K, N] Int8Array or Uint8Array. Zero points are per-tensor scalars; pass
 * `null` to leave a zero point out of the node (ONNX then uses 0).
 * @param {{M:number, K:number, N:number, b:Int8Array|Uint8Array, aSigned?:boolean,
 *          aZeroPoint?:number|null, bZeroPoint?:number|null}} o
 */
export function matMulIntegerModel({ M, K, N, b, aSigned = false, aZeroPoint = null, bZeroPoint = null }) {
  if (b.length !== K * N) throw new Error(`matMulIntegerModel: b has ${b.length} elements, expected K*N = ${K * N}`);
  const bSigned = b instanceof Int8Array;
  const aType = aSigned ? DataType.INT8 : DataType.UINT8;
  const bType = bSigned ? DataType.INT8 : DataType.UINT8;
  const initializers = [{ name: 'b', dataType: bType, dims: [K, N], data: b }];
  const nodeInputs = ['a', 'b'];
  if (aZeroPoint !== null || bZeroPoint !== null) {
    if (aZeroPoint !== null) {
      initializers.push({ name: 'a_zero_point', dataType: aType, dims: [], data: aSigned ? Int8Array.of(aZeroPoint) : Uint8Array.of(aZeroPoint) });
      nodeInputs.push('a_zero_point');
    } else {
      nodeInputs.push(''); // optional input left out
    }
  }
  if (bZeroPoint !== null) {
    initializers.push({ name: 'b_zero_point', dataType: bType, dims: [], data: bSigned ? Int8Array.of(bZeroPoint) : Uint8Array.of(bZeroPoint) });
    nodeInputs.push('b_zero_point');
  }
  return singleNodeModel({
    opType: 'MatMulInteger',
    inputs: [{ name: 'a', elemType: aType, shape: [M, K] }],
    output: { name: 'y', elemType: DataType.INT32, shape: [M, N] },
    initializers,
    nodeInputs,
  });
}

/**
 * MatMul (fp32) y[M,N] = a[M,K] x b[K,N], with B a constant initializer (onnxruntime pre-packs it).
 * `b` is a row-major [K, N] Float32Array.
 * @param {{M:number, K:number, N:number, b:Float32Array}} o
 */
export function matMulModel({ M, K, N, b }) {
  if (b.length !== K * N) throw new Error(`matMulModel: b has ${b.length} elements, expected K*N = ${K * N}`);
  return singleNodeModel({
    opType: 'MatMul',
    inputs: [{ name: 'a', elemType: DataType.FLOAT, shape: [M, K] }],
    output: { name: 'y', elemType: DataType.FLOAT, shape: [M, N] },
    initializers: [{ name: 'b', dataType: DataType.FLOAT, dims: [K, N], data: b }],
    nodeInputs: ['a', 'b'],
  });
}

// ---- multi-node graphs ------------------------------------------------------------------------------

/** More TensorProto.DataType values (DataType above keeps its original five). */
export const DataTypeExt = Object.freeze({ ...DataType, INT16: 5, UINT4: 21, INT4: 22 });

/**
 * Typed attribute values for graphModel nodes: a plain integer number is an INT attribute; use
 * these for the other kinds (e.g. Gemm's `alpha: attr.float(1)`, which must be FLOAT).
 */
export const attr = Object.freeze({
  int: (v) => ({ kind: 'int', v }),
  float: (v) => ({ kind: 'float', v }),
  ints: (v) => ({ kind: 'ints', v }),
  floats: (v) => ({ kind: 'floats', v }),
  string: (v) => ({ kind: 'string', v }),
});

// AttributeProto: name=1, f=2 (fixed32), i=3, s=4, floats=7 (packed fixed32), ints=8, type=20
// (FLOAT=1, INT=2, STRING=3, FLOATS=6, INTS=7).
function writeAttr(w, name, value) {
  const a = typeof value === 'number' ? { kind: Number.isInteger(value) ? 'int' : 'float', v: value } : value;
  w.string(1, name);
  switch (a.kind) {
    case 'int':
      w.int(3, a.v);
      w.int(20, 2);
      break;
    case 'float': {
      w.tag(2, 5);
      const b = new Uint8Array(4);
      new DataView(b.buffer).setFloat32(0, a.v, true);
      w.bytes(b);
      w.int(20, 1);
      break;
    }
    case 'ints':
      w.packedInts(8, a.v);
      w.int(20, 7);
      break;
    case 'floats': {
      const f = Float32Array.from(a.v);
      w.lenDelim(7, new Uint8Array(f.buffer));
      w.int(20, 6);
      break;
    }
    case 'string':
      w.string(4, a.v);
      w.int(20, 3);
      break;
    default:
      throw new Error(`attribute ${name}: unknown kind ${a.kind}`);
  }
}

// ValueInfoProto with symbolic dimensions: a string in `shape` is a dim_param (field 2).
function writeValueInfoSym(w, { name, elemType, shape }) {
  w.string(1, name);
  w.message(2, (t) =>
    t.message(1, (tt) => {
      tt.int(1, elemType);
      tt.message(2, (sh) => {
        for (const d of shape) sh.message(1, (dim) => (typeof d === 'string' ? dim.string(2, d) : dim.int(1, d)));
      });
    }),
  );
}

/**
 * Serialise a graph of any number of nodes.
 * @param {{nodes: {op: string, inputs: string[], outputs: string[], name?: string, domain?: string,
 *                  attrs?: Record<string, number|{kind: string, v: any}>}[],
 *          inputs: {name: string, elemType: number, shape: (number|string)[]}[],
 *          outputs: {name: string, elemType: number, shape: (number|string)[]}[],
 *          initializers?: {name: string, dataType: number, dims: number[], data: ArrayBufferView}[],
 *          opsets?: Record<string, number>, name?: string}} spec
 *   Shapes may hold strings (symbolic dimensions such as 'batch'); `''` in a node's inputs leaves an
 *   optional input out; `opsets` maps domains to versions (default { '': 21 }; add
 *   'com.microsoft': 1 for onnxruntime's contrib ops).
 * @returns {Uint8Array} ModelProto bytes (IR version 10)
 */
export function graphModel(spec) {
  const opsets = spec.opsets ?? { '': 21 };
  const w = new Writer();
  w.int(1, 10); // ir_version
  w.string(2, 'quantkit-bench');
  w.message(7, (g) => {
    spec.nodes.forEach((node, k) => {
      g.message(1, (n) => {
        // NodeProto: input=1, output=2, name=3, op_type=4, attribute=5, domain=7
        for (const i of node.inputs) n.string(1, i);
        for (const o of node.outputs) n.string(2, o);
        n.string(3, node.name ?? `${node.op}_${k}`);
        n.string(4, node.op);
        for (const [key, v] of Object.entries(node.attrs ?? {})) n.message(5, (a) => writeAttr(a, key, v));
        if (node.domain) n.string(7, node.domain);
      });
    });
    g.string(2, spec.name ?? 'g');
    for (const t of spec.initializers ?? []) g.message(5, (tw) => writeTensor(tw, t));
    for (const i of spec.inputs) g.message(11, (vw) => writeValueInfoSym(vw, i));
    for (const o of spec.outputs) g.message(12, (vw) => writeValueInfoSym(vw, o));
  });
  for (const [domain, version] of Object.entries(opsets)) {
    w.message(8, (o) => {
      o.string(1, domain);
      o.int(2, version);
    });
  }
  return w.finish();
}

// ---- reading: which operators a (for example onnxruntime-optimized) model holds ----------------------

function readVarint(buf, pos) {
  let v = 0;
  let mul = 1;
  for (;;) {
    const b = buf[pos++];
    v += (b & 0x7f) * mul;
    if (b < 0x80) return [v, pos];
    mul *= 128;
  }
}

/** Fields of one protobuf message: [{field, wire, value (number) | bytes (Uint8Array)}]. */
function readFields(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      let v;
      [v, pos] = readVarint(buf, pos);
      out.push({ field, wire, value: v });
    } else if (wire === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      out.push({ field, wire, bytes: buf.subarray(pos, pos + len) });
      pos += len;
    } else if (wire === 5) pos += 4;
    else if (wire === 1) pos += 8;
    else throw new Error(`protobuf: unsupported wire type ${wire} at byte ${pos}`);
  }
  return out;
}

/**
 * The nodes of a serialized ModelProto's main graph, in order: op type, domain ('' for ai.onnx)
 * and name. Used to show what onnxruntime turned a graph into (session option
 * optimizedModelFilePath writes the optimized model).
 * @param {Uint8Array} bytes
 * @returns {{op: string, domain: string, name: string}[]}
 */
export function graphNodes(bytes) {
  const td = new TextDecoder();
  const graph = readFields(bytes).find((f) => f.field === 7 && f.wire === 2);
  if (!graph) throw new Error('not an ONNX ModelProto (no graph)');
  const nodes = [];
  for (const f of readFields(graph.bytes)) {
    if (f.field !== 1 || f.wire !== 2) continue;
    const n = { op: '', domain: '', name: '' };
    for (const g of readFields(f.bytes)) {
      if (g.wire !== 2) continue;
      if (g.field === 4) n.op = td.decode(g.bytes);
      else if (g.field === 7) n.domain = td.decode(g.bytes);
      else if (g.field === 3) n.name = td.decode(g.bytes);
    }
    nodes.push(n);
  }
  return nodes;
}

/** graphNodes summarised as 'Op xN' in first-seen order, e.g. 'QuantizeLinear, QGemm x3'. */
export function opSummary(nodes) {
  const counts = new Map();
  for (const n of nodes) {
    const k = n.domain && n.domain !== 'ai.onnx' ? `${n.op} (${n.domain})` : n.op;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([k, c]) => (c > 1 ? `${k} x${c}` : k)).join(', ');
}
