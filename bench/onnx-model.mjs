// Minimal ONNX model writer for the benchmarks: just enough protobuf (ModelProto, GraphProto,
// NodeProto, AttributeProto, TensorProto, ValueInfoProto) to build one-node QuantizeLinear /
// DequantizeLinear / MatMulInteger / MatMul graphs in memory, so no binary model files live in the
// repository.
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
