// exportOnnx: a float Sequential or a QuantizedModel as an ONNX model (ai.onnx opset 21, IR 10;
// com.microsoft 1 for MatMulNBits) that onnxruntime-node runs:
//   float Linear        Gemm(transB = 1) with the float weight [out, in] and bias
//   dynamic Linear      DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales) -> Add(bias)
//                       (ORT fuses it into DynamicQuantizeMatMul; per-tensor activation scale)
//   static Linear       QDQ: QuantizeLinear/DequantizeLinear of the input with the calibrated
//                       qparams, DequantizeLinear of the int8 weight (per channel) and of the
//                       int32 bias, Gemm, Relu when fused, QuantizeLinear/DequantizeLinear of the
//                       output when the next layer takes codes (ORT fuses into QGemm)
//   weight-only Linear  MatMulNBits for groups of a power of two >= 16, else DequantizeLinear
//                       (per channel, per tensor or blocked) + Gemm
//   ReLU, Tanh, Sigmoid, Softmax, GELU, LayerNorm as their ONNX operators; Flatten, Dropout,
//   Identity pass the rows through.
// Input 'input' [batch, inFeatures] and output 'output' [batch, outFeatures] (batch symbolic).
import { checkOptions, typeError } from '../errors';
import { SafetensorsTensor } from '../io/safetensors';
import { Sequential } from '../nn/sequential';
import { modelTensors } from '../ptq/file';
import { QuantizedModel } from '../ptq/qmodel';
import { packMatMulNBits } from '../formats/matmulnbits';
import { floatAttr, intAttr, makeNode, stringAttr } from './graph';
import { DT, encodeModel, makeTensor, ModelP, NodeP, TensorP, ValueInfoP } from './proto';
import { writeFileAtomicSync } from '../io/atomic';

export interface ExportOnnxOptions {
  /** Name of the graph input (default 'input'). */
  inputName?: string;
  /** Name of the graph output (default 'output'). */
  outputName?: string;
  /** producer_name written into the model (default 'quantkit'). */
  producer?: string;
}

interface LayerJSON {
  name: string;
  layer: { type: string; inFeatures?: number; outFeatures?: number; bias?: boolean; approximate?: string; normalizedShape?: number; eps?: number; elementwiseAffine?: boolean };
  run: 'float' | 'dynamic' | 'static' | 'weight-only';
  fused?: string[];
  weight?: { bits: number; scheme: string; signed: boolean; range: string; granularity: 'per-tensor' | 'per-channel' | { groupSize: number } };
  input?: { scale: number; zeroPoint: number; qmin?: number; qmax?: number };
  output?: { scale: number; zeroPoint: number; qmin?: number; qmax?: number } | null;
  activation?: 'uint8' | 'int8';
  requantize?: string;
}

function vinfo(name: string, features: number | null): ValueInfoP {
  const dim = [{ dimParam: 'batch' }, features === null ? { dimParam: 'features' } : { dimValue: features }];
  return { name, type: { tensorType: { elemType: DT.FLOAT, shape: { dim } } } };
}

/** Codes one per element from a quantkit weight tensor (nibbles unpacked), as Int8Array for signed. */
function codesOf(t: SafetensorsTensor, n: number, signed: boolean): Int8Array | Uint8Array {
  const d = t.data as Int8Array | Uint8Array;
  if (d.length === n) return signed ? new Int8Array(d.buffer, d.byteOffset, n) : new Uint8Array(d.buffer, d.byteOffset, n);
  const out = signed ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = d[i >> 1] & 0xff;
    let c = i & 1 ? b >> 4 : b & 15;
    if (signed && c >= 8) c -= 16;
    out[i] = c;
  }
  return out;
}

function rb(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** The ONNX bytes of a model (see exportOnnx). */
export function exportOnnxBytes(model: Sequential | QuantizedModel, opts: ExportOnnxOptions = {}): Uint8Array {
  if (!(model instanceof Sequential) && !(model instanceof QuantizedModel)) throw typeError('model', 'a Sequential or a QuantizedModel', model);
  const o = checkOptions('opts', opts, ['inputName', 'outputName', 'producer']) as ExportOnnxOptions;
  const inName = o.inputName ?? 'input';
  const outName = o.outputName ?? 'output';
  const { tensors, graph } = modelTensors(model) as unknown as { tensors: Record<string, SafetensorsTensor>; graph: { layers: LayerJSON[] } };
  const nodes: NodeP[] = [];
  const inits: TensorP[] = [];
  let usesMs = false;
  let cur = inName;
  let k = 0;
  const fresh = (s: string): string => `${s}_${k++}`;
  const tensor = (name: string): SafetensorsTensor => {
    const t = tensors[name];
    if (!t) throw new Error(`internal: tensor '${name}' missing from the model`);
    return t;
  };
  const init = (name: string, dt: number, dims: number[], data: Parameters<typeof makeTensor>[3]): string => {
    inits.push(makeTensor(name, dt, dims, data));
    return name;
  };
  const pfx = (n: string, t: string): string => (n === '' ? t : `${n}.${t}`);
  let features: number | null = null;
  let outFeatures: number | null = null;
  const layers = graph.layers;
  /** qparams of `cur` when it is the DequantizeLinear of codes (a static layer's requantized output). */
  let codes_: { scale: number; zeroPoint: number } | null = null;
  layers.forEach((L, li) => {
    const last = li === layers.length - 1;
    const next = (s: string): string => (last ? outName : fresh(s));
    const sp = L.layer;
    if (sp.type === 'Linear') {
      const K = sp.inFeatures!, N = sp.outFeatures!;
      if (features === null) features = K;
      outFeatures = N;
      const relu = (L.fused?.length ?? 0) > 0;
      const y = relu ? fresh(`${L.name}_linear`) : next(`${L.name}_out`);
      const bias = sp.bias ? tensor(pfx(L.name, 'bias')) : null;
      if (L.run === 'float') {
        const w = init(pfx(L.name, 'weight'), DT.FLOAT, [N, K], tensor(pfx(L.name, 'weight')).data as Float32Array);
        const ins = [cur, w];
        if (bias) ins.push(init(pfx(L.name, 'bias'), DT.FLOAT, [N], bias.data as Float32Array));
        nodes.push(makeNode('Gemm', ins, [y], `${L.name}_Gemm`, [intAttr('transB', 1)]));
      } else {
        const wj = L.weight!;
        const codes = codesOf(tensor(pfx(L.name, 'weight')), N * K, wj.signed);
        const scale = tensor(pfx(L.name, 'weight_scale')).data as Float32Array;
        const zpT = tensors[pfx(L.name, 'weight_zero_point')];
        const zps = zpT ? (zpT.data as Uint8Array) : null;
        const g = wj.granularity;
        const perCh = g === 'per-channel';
        if (L.run === 'dynamic') {
          if (L.activation === 'int8') throw new Error(`layer '${L.name}': dynamic int8 activations have no ONNX form (DynamicQuantizeLinear is uint8); quantize with activation 'uint8'`);
          if (typeof g === 'object') throw new Error(`layer '${L.name}': dynamic layers with groups cannot be exported`);
          // B [K, N] from codes [N, K].
          const wt = wj.signed ? new Int8Array(K * N) : new Uint8Array(K * N);
          for (let n = 0; n < N; n++) for (let kk = 0; kk < K; kk++) wt[kk * N + n] = codes[n * K + kk];
          const wq = init(pfx(L.name, 'weight_quantized'), wj.signed ? DT.INT8 : DT.UINT8, [K, N], wt);
          const ws = init(pfx(L.name, 'weight_scale'), DT.FLOAT, perCh ? [N] : [], perCh ? scale : scale.subarray(0, 1));
          const wz = wj.signed ? init(pfx(L.name, 'weight_zero_point'), DT.INT8, [], Int8Array.of(0))
            : init(pfx(L.name, 'weight_zero_point'), DT.UINT8, perCh ? [N] : [], perCh ? zps! : zps!.subarray(0, 1));
          const [aq, as, az] = [fresh('a_quantized'), fresh('a_scale'), fresh('a_zero_point')];
          nodes.push(makeNode('DynamicQuantizeLinear', [cur], [aq, as, az], fresh(`${L.name}_DynamicQuantizeLinear`)));
          const yi = fresh(`${L.name}_int32`), yf = fresh(`${L.name}_float`), sc = fresh(`${L.name}_scales`);
          nodes.push(makeNode('MatMulInteger', [aq, wq, az, wz], [yi], fresh(`${L.name}_MatMulInteger`)));
          nodes.push(makeNode('Mul', [as, ws], [sc], fresh(`${L.name}_scales_mul`)));
          nodes.push(makeNode('Cast', [yi], [yf], fresh(`${L.name}_cast`), [intAttr('to', DT.FLOAT)]));
          const ym = bias ? fresh(`${L.name}_mm`) : y;
          nodes.push(makeNode('Mul', [yf, sc], [ym], fresh(`${L.name}_scale_mul`)));
          if (bias) nodes.push(makeNode('Add', [ym, init(pfx(L.name, 'bias'), DT.FLOAT, [N], bias.data as Float32Array)], [y], fresh(`${L.name}_bias_add`)));
        } else if (L.run === 'static') {
          if (typeof g === 'object') throw new Error(`layer '${L.name}': static layers with groups cannot be exported`);
          const inq = L.input!;
          if (L.requantize === 'float' && L.output) throw new Error(`layer '${L.name}': static layers with requantize 'float' (convertQAT's exact epilogue) cannot be exported: ONNX QLinearMatMul requantizes with an int32 bias`);
          for (const q of [inq, L.output]) {
            if (q && ((q.qmin ?? 0) !== 0 || (q.qmax ?? 255) !== 255)) {
              throw new Error(`layer '${L.name}': static layers whose activation codes are narrower than 0..255 (qmin ${q.qmin ?? 0}, qmax ${q.qmax ?? 255}, from QAT with activations below 8 bits) cannot be exported: ONNX QuantizeLinear saturates to 0..255`);
            }
          }
          // Input Q/DQ unless the previous layer already produced codes with these qparams.
          let d0 = cur;
          if (!(codes_ && codes_.scale === inq.scale && codes_.zeroPoint === inq.zeroPoint)) {
            const s0 = init(fresh(`${L.name}_input_scale`), DT.FLOAT, [], Float32Array.of(inq.scale));
            const z0 = init(fresh(`${L.name}_input_zero_point`), DT.UINT8, [], Uint8Array.of(inq.zeroPoint));
            const q0 = fresh(`${L.name}_input_quantized`);
            d0 = fresh(`${L.name}_input_dequantized`);
            nodes.push(makeNode('QuantizeLinear', [cur, s0, z0], [q0], fresh(`${L.name}_QuantizeLinear`)));
            nodes.push(makeNode('DequantizeLinear', [q0, s0, z0], [d0], fresh(`${L.name}_DequantizeLinear`)));
          }
          const wq = init(pfx(L.name, 'weight_quantized'), wj.signed ? DT.INT8 : DT.UINT8, [N, K], codes);
          const ws = init(pfx(L.name, 'weight_scale'), DT.FLOAT, perCh ? [N] : [], perCh ? scale : scale.subarray(0, 1));
          const wzData = wj.signed ? new Int8Array(perCh ? N : 1) : (perCh ? zps! : zps!.subarray(0, 1));
          const wz = init(pfx(L.name, 'weight_zero_point'), wj.signed ? DT.INT8 : DT.UINT8, perCh ? [N] : [], wzData);
          const wd = fresh(`${L.name}_weight_dequantized`);
          nodes.push(makeNode('DequantizeLinear', [wq, ws, wz], [wd], fresh(`${L.name}_weight_DequantizeLinear`), perCh ? [intAttr('axis', 0)] : []));
          const ins = [d0, wd];
          if (bias) {
            const f = Math.fround;
            const bscale = Float32Array.from({ length: N }, (_, j) => f(f(inq.scale) * scale[perCh ? j : 0]));
            const bq = bias.dtype === 'I32' ? (bias.data as Int32Array)
              : Int32Array.from(bias.data as Float32Array, (v, j) => Math.max(-2147483648, Math.min(2147483647, rb(f(v / bscale[j])))));
            const bqn = init(pfx(L.name, 'bias_quantized'), DT.INT32, [N], bq);
            const bsn = init(pfx(L.name, 'bias_scale'), DT.FLOAT, [N], bscale);
            const bzn = init(pfx(L.name, 'bias_zero_point'), DT.INT32, [N], new Int32Array(N));
            const bd = fresh(`${L.name}_bias_dequantized`);
            nodes.push(makeNode('DequantizeLinear', [bqn, bsn, bzn], [bd], fresh(`${L.name}_bias_DequantizeLinear`), [intAttr('axis', 0)]));
            ins.push(bd);
          }
          nodes.push(makeNode('Gemm', ins, [y], `${L.name}_Gemm`, [intAttr('transB', 1)]));
        } else {
          // weight-only
          const bits = wj.bits;
          if (typeof g === 'object' && g.groupSize >= 16 && (g.groupSize & (g.groupSize - 1)) === 0) {
            const mid = 1 << (bits - 1);
            const u = new Uint8Array(N * K);
            for (let i = 0; i < N * K; i++) u[i] = wj.signed ? codes[i] + mid : codes[i];
            const kb = Math.ceil(K / g.groupSize);
            if (wj.signed && wj.scheme !== 'symmetric') throw new Error(`layer '${L.name}': signed asymmetric weights have no MatMulNBits form`);
            const p = packMatMulNBits(u, scale, wj.signed ? null : zps, { K, N, bits, blockSize: g.groupSize });
            const ins = [cur, init(pfx(L.name, 'weight_quantized'), DT.UINT8, [N, kb, (g.groupSize * bits) / 8], p.B),
              init(pfx(L.name, 'weight_scale'), DT.FLOAT, [N * kb], p.scales)];
            if (p.zeroPoints) ins.push(init(pfx(L.name, 'weight_zero_point'), DT.UINT8, [p.zeroPoints.length], p.zeroPoints));
            const ym = bias ? fresh(`${L.name}_mm`) : y;
            nodes.push(makeNode('MatMulNBits', ins, [ym], `${L.name}_MatMulNBits`,
              [intAttr('K', K), intAttr('N', N), intAttr('bits', bits), intAttr('block_size', g.groupSize)], 'com.microsoft'));
            usesMs = true;
            if (bias) nodes.push(makeNode('Add', [ym, init(pfx(L.name, 'bias'), DT.FLOAT, [N], bias.data as Float32Array)], [y], fresh(`${L.name}_bias_add`)));
          } else {
            const nb = bits <= 4;
            const dt = nb ? (wj.signed ? DT.INT4 : DT.UINT4) : (wj.signed ? DT.INT8 : DT.UINT8);
            const wq = init(pfx(L.name, 'weight_quantized'), dt, [N, K], codes);
            const sdims = g === 'per-tensor' ? [] : g === 'per-channel' ? [N] : [N, Math.ceil(K / g.groupSize)];
            const ws = init(pfx(L.name, 'weight_scale'), DT.FLOAT, sdims, g === 'per-tensor' ? scale.subarray(0, 1) : scale);
            const ins = [wq, ws];
            if (zps) ins.push(init(pfx(L.name, 'weight_zero_point'), nb ? DT.UINT4 : DT.UINT8, sdims, g === 'per-tensor' ? zps.subarray(0, 1) : zps));
            const attrs = g === 'per-tensor' ? [] : g === 'per-channel' ? [intAttr('axis', 0)] : [intAttr('axis', 1), intAttr('block_size', g.groupSize)];
            const wd = fresh(`${L.name}_weight_dequantized`);
            nodes.push(makeNode('DequantizeLinear', ins, [wd], fresh(`${L.name}_weight_DequantizeLinear`), attrs));
            const gi = [cur, wd];
            if (bias) gi.push(init(pfx(L.name, 'bias'), DT.FLOAT, [N], bias.data as Float32Array));
            nodes.push(makeNode('Gemm', gi, [y], `${L.name}_Gemm`, [intAttr('transB', 1)]));
          }
        }
      }
      cur = y;
      codes_ = null;
      if (relu) {
        const r = next(`${L.name}_relu`);
        nodes.push(makeNode('Relu', [cur], [r], `${L.fused![0]}_Relu`));
        cur = r;
      }
      if (L.run === 'static' && L.output && !last) {
        const s1 = init(fresh(`${L.name}_output_scale`), DT.FLOAT, [], Float32Array.of(L.output.scale));
        const z1 = init(fresh(`${L.name}_output_zero_point`), DT.UINT8, [], Uint8Array.of(L.output.zeroPoint));
        const q1 = fresh(`${L.name}_output_quantized`), d1 = fresh(`${L.name}_output_dequantized`);
        nodes.push(makeNode('QuantizeLinear', [cur, s1, z1], [q1], fresh(`${L.name}_output_QuantizeLinear`)));
        nodes.push(makeNode('DequantizeLinear', [q1, s1, z1], [d1], fresh(`${L.name}_output_DequantizeLinear`)));
        cur = d1;
        codes_ = L.output;
      }
      return;
    }
    const y = next(`${L.name || 'layer'}_${sp.type}`);
    const nm = `${L.name}_${sp.type}`;
    switch (sp.type) {
      case 'ReLU': nodes.push(makeNode('Relu', [cur], [y], nm)); break;
      case 'Tanh': nodes.push(makeNode('Tanh', [cur], [y], nm)); break;
      case 'Sigmoid': nodes.push(makeNode('Sigmoid', [cur], [y], nm)); break;
      case 'Softmax': nodes.push(makeNode('Softmax', [cur], [y], nm, [intAttr('axis', -1)])); break;
      case 'GELU': nodes.push(makeNode('Gelu', [cur], [y], nm, [stringAttr('approximate', sp.approximate === 'tanh' ? 'tanh' : 'none')])); break;
      case 'LayerNorm': {
        const D = sp.normalizedShape!;
        const w = sp.elementwiseAffine ? tensor(pfx(L.name, 'weight')).data as Float32Array : new Float32Array(D).fill(1);
        const ins = [cur, init(pfx(L.name, 'weight'), DT.FLOAT, [D], w)];
        if (sp.elementwiseAffine && tensors[pfx(L.name, 'bias')]) ins.push(init(pfx(L.name, 'bias'), DT.FLOAT, [D], tensor(pfx(L.name, 'bias')).data as Float32Array));
        nodes.push(makeNode('LayerNormalization', ins, [y], nm, [intAttr('axis', -1), floatAttr('epsilon', sp.eps!)]));
        if (features === null) features = D;
        outFeatures = D;
        break;
      }
      default: // Flatten, Identity, Dropout, empty Sequential: rows pass through (codes too)
        nodes.push(makeNode('Identity', [cur], [y], nm));
        cur = y;
        return;
    }
    cur = y;
    codes_ = null;
  });
  if (cur === inName) nodes.push(makeNode('Identity', [cur], [outName], 'identity'));
  const m: ModelP = {
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }, ...(usesMs ? [{ domain: 'com.microsoft', version: 1 }] : [])],
    producerName: o.producer ?? 'quantkit',
    producerVersion: '0.1.0',
    graph: {
      node: nodes, name: 'quantkit', initializer: inits, sparseInitializer: [], input: [vinfo(inName, features)], output: [vinfo(outName, outFeatures)],
      valueInfo: [], quantizationAnnotation: [],
    },
    metadataProps: [{ key: 'quantkit.mode', value: model instanceof QuantizedModel ? model.mode : 'float' }],
    trainingInfo: [],
    functions: [],
  };
  return encodeModel(m);
}

/** Writes a model as ONNX (atomically). See exportOnnxBytes for the graph. */
export function exportOnnx(model: Sequential | QuantizedModel, file: string, opts?: ExportOnnxOptions): void {
  if (typeof file !== 'string' || file === '') throw typeError('file', 'a path string', file);
  writeFileAtomicSync(file, (put) => put(exportOnnxBytes(model, opts)));
}
