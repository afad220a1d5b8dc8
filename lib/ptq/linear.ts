// Linear's registry entry: its spec and parameters, its float kernel (the packed fp32 GEMM), how it
// is quantized (weights per tensor, channel or group; dynamic, static or weight-only), the stages
// that run it, and how those stages are saved and loaded.
import { checkOptions, describe, isTypedOf, rangeError, typeError } from '../errors';
import * as native from '../native';
import { gemmAsync, GemmOptions, linearDynamicAsync, LinearDynamicOptions, PackedWeights, packedHandle, packWeights } from '../gemm';
import { describeValue, WeightFileError } from '../io/errors';
import type { SafetensorsTensor } from '../io/safetensors';
import { granularityLayout, perTensorLayout } from '../layout';
import { matmulF32, matmulF32Async, packWeightsF32 } from '../matmul-f32';
import { nbitsHandle, PackedWeightsNBits } from '../nbits';
import { Linear } from '../nn/layers';
import { QuantSpec, resolveSpec } from '../spec';
import { roundHalfEven } from '../qparams';
import { quantize, quantizeWithQParams, QuantizedTensor } from '../tensor';
import { checkAct, checkWeightJSON, FileCtx, loadWeight, pfx, SavedLayer, weightTensors } from './file-parts';
import type { BuildContext, LayerSpec, LayerType, QuantizeContext, WeightQParams } from './registry';
import { specBool, specInt } from './spec-fields';
import {
  ActQParams, actCopy, actRange, f32Bytes, LayerSummary, layoutGranularity, QuantWeight, sameAct, Stage, StageDescription, toFloat, Value,
  WeightGranularity,
} from './stages';

export interface LinearSpec extends LayerSpec {
  type: 'Linear';
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
}

/**
 * Largest K the int8 GEMM accepts for these activations and weights: K * max|a - za| * max|w - zw|
 * must stay below 2^31 (int32 accumulation; native/core/gemm.h). Activations: uint8 (any zero
 * point, up to 255 away) or symmetric int8 (127); weights: signed codes (128) or unsigned (255).
 */
export function gemmMaxK(int8Activations: boolean, signedWeights: boolean): number {
  return Math.floor(2147483647 / ((int8Activations ? 127 : 255) * (signedWeights ? 128 : 255)));
}

/** Bytes of a quantized weight in a file: codes, scales, and zero points when asymmetric. */
export function weightBytes(w: QuantWeight): number {
  const t = w.tensor;
  return t.data.byteLength + t.scale.byteLength + (t.scheme === 'asymmetric' || !t.signed ? t.zeroPoint.length : 0);
}

/** Codes one per byte (Int8Array for signed), nibbles unpacked. */
export function unpackedCodes(t: QuantizedTensor): Int8Array | Uint8Array {
  if (t.dtype === 'int8' || t.dtype === 'uint8') return t.data;
  const n = t.numel;
  const src = t.data;
  const out = t.signed ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = src[i >> 1];
    let c = i & 1 ? b >> 4 : b & 15;
    if (t.signed && c >= 8) c -= 16;
    out[i] = c;
  }
  return out;
}

/** Packs a per-tensor or per-channel weight for the int8 GEMM (PyTorch layout [out, in]). */
export function packQuantWeight(w: QuantWeight): PackedWeights {
  const t = w.tensor;
  const [N, K] = t.shape;
  const perCol = w.granularity === 'per-channel';
  return packWeights(unpackedCodes(t), {
    K, N, transposed: true,
    zeroPoint: perCol ? t.zeroPoint : t.zeroPoint[0],
    scale: perCol ? t.scale : t.scale[0],
  });
}

/** round(bias / (inputScale * weightScale[j])) as int32, the ONNX tools' bias quantization (float32 arithmetic). */
export function quantizeBias(bias: Float32Array, inputScale: number, wScale: Float32Array): Int32Array {
  const out = new Int32Array(bias.length);
  const f = Math.fround;
  for (let j = 0; j < bias.length; j++) {
    const s = f(f(inputScale) * wScale[wScale.length === 1 ? 0 : j]);
    const v = f(bias[j] / s);
    out[j] = roundHalfEven(Math.max(-2147483648, Math.min(2147483647, v)));
  }
  return out;
}

/** The summary row and description fields of a stage with a quantized weight. */
function weightRow(s: { weight: QuantWeight }): Pick<LayerSummary, 'bits' | 'granularity'> {
  return { bits: s.weight.tensor.bits, granularity: s.weight.granularity };
}

/** Dynamic: activations quantized per batch (linearDynamic), int8 GEMM, float32 out. */
export class DynamicStage extends Stage {
  readonly mode = 'dynamic' as const;
  readonly packed: PackedWeights;
  constructor(name: string, spec: LayerSpec, readonly weight: QuantWeight, readonly bias: Float32Array | null, public relu: boolean,
    readonly activation: 'uint8' | 'int8', readonly activationGranularity: 'per-row' | 'per-tensor') {
    super(name, spec);
    this.packed = packQuantWeight(weight);
    this.handle = packedHandle(this.packed);
  }
  run(v: Value, batch: number): Value {
    // Arguments checked once at construction (forward checks x): straight to the native call,
    // which checks them again.
    const x = toFloat(v);
    const out = new Float32Array(batch * this.packed.N);
    native.linearDynamic({ x, M: batch, packed: this.handle, bias: this.bias, relu: this.relu,
      perRow: this.activationGranularity === 'per-row', actSigned: this.activation === 'int8', out });
    return { f: out };
  }
  private readonly handle: native.PackedHandle;
  override async runAsync(v: Value, batch: number): Promise<Value> {
    return { f: await linearDynamicAsync(toFloat(v), this.packed, this.opts(batch)) };
  }
  private opts(batch: number): LinearDynamicOptions {
    return { M: batch, bias: this.bias ?? undefined, relu: this.relu, activation: this.activation, granularity: this.activationGranularity };
  }
  bytes(): number {
    return weightBytes(this.weight) + f32Bytes(this.bias);
  }
  toFile(tensors: Record<string, SafetensorsTensor>): Record<string, unknown> {
    const weight = weightTensors(this.name, this.weight, tensors);
    if (this.bias) tensors[pfx(this.name, 'bias')] = { dtype: 'F32', shape: [this.bias.length], data: this.bias };
    return { weight, activation: this.activation, activationGranularity: this.activationGranularity };
  }
  override summaryRow(): LayerSummary {
    return { ...super.summaryRow(), ...weightRow(this) };
  }
  override describe(): StageDescription {
    return { ...super.describe(), relu: this.relu, weight: this.weight, bias: this.bias, activation: this.activation, activationGranularity: this.activationGranularity };
  }
}

/**
 * The weight of a weight-only stage packed for the block-quantized GEMM (lib/nbits.ts), or null
 * when its quantization has no MatMulNBits form: groups along the input features of a power-of-two
 * size 16..256, 4 or 8 bits. Codes move to unsigned (signed + 2^(bits-1), zero points likewise);
 * the dequantized weight (q - zp) * scale is unchanged.
 */
export function packNBitsWeight(w: QuantWeight): PackedWeightsNBits | null {
  const t = w.tensor;
  const g = w.granularity;
  if (typeof g !== 'object' || (t.bits !== 4 && t.bits !== 8) || t.shape.length !== 2) return null;
  const bs = g.groupSize;
  if (bs < 16 || bs > 256 || (bs & (bs - 1)) !== 0 || t.axis !== 1 || t.blockSize !== bs) return null;
  const [N, K] = t.shape;
  const kb = Math.ceil(K / bs);
  if (t.scale.length !== N * kb || t.zeroPoint.length !== N * kb) return null;
  const off = t.signed ? 1 << (t.bits - 1) : 0;
  const c = unpackedCodes(t);
  const codes = new Uint8Array(N * K);
  for (let i = 0; i < codes.length; i++) codes[i] = c[i] + off;
  const mid = 1 << (t.bits - 1);
  const zps = new Uint8Array(N * kb);
  let symmetric = true;
  for (let i = 0; i < zps.length; i++) {
    zps[i] = t.zeroPoint[i] + off;
    if (zps[i] !== mid) symmetric = false;
  }
  return PackedWeightsNBits.create(codes, t.scale, symmetric ? null : zps, { K, N, bits: t.bits, blockSize: bs });
}

/**
 * Weight-only: float activations. Weights in groups of 16..256 along K (4 or 8 bits) run on the
 * block-quantized GEMM with fp32 compute (matmulNBits: dequantized in registers; within
 * docs/nbits.md's bound of the exact product, like the float GEMM on dequantized weights); other
 * granularities dequantize the weights for each call and use the float32 GEMM.
 */
export class WeightOnlyStage extends Stage {
  readonly mode = 'weight-only' as const;
  /** The weight packed for matmulNBits, when its granularity allows (see packNBitsWeight). */
  readonly nbits: PackedWeightsNBits | null;
  /**
   * matmulNBits' compute for this stage (when nbits is set): 'fp32' (default: float activations,
   * within float rounding of the dequantized weights' product) or 'int8' (activations quantized per
   * block: about 1.7x faster on the demo's MLP, same accuracy there; docs/nbits.md). Not saved.
   */
  compute: 'fp32' | 'int8' = 'fp32';
  private readonly nbitsH: native.PackedNBitsHandle | null;
  constructor(name: string, spec: LayerSpec, readonly weight: QuantWeight, readonly bias: Float32Array | null, public relu: boolean) {
    super(name, spec);
    this.nbits = packNBitsWeight(weight);
    this.nbitsH = this.nbits ? nbitsHandle(this.nbits) : null;
  }
  run(v: Value, batch: number): Value {
    const x = toFloat(v);
    const [N, K] = this.weight.tensor.shape;
    if (this.nbitsH) {
      const out = new Float32Array(batch * N);
      native.nbitsMatmul({ x, packed: this.nbitsH, out, M: batch, bias: this.bias, relu: this.relu, int8: this.compute === 'int8' });
      return { f: out };
    }
    const w = this.weight.tensor.dequantize();
    return { f: matmulF32(x, w, { M: batch, K, N, transB: true, bias: this.bias ?? undefined, relu: this.relu }) };
  }
  override async runAsync(v: Value, batch: number): Promise<Value> {
    const x = toFloat(v);
    const [N, K] = this.weight.tensor.shape;
    if (this.nbitsH) {
      // the same unchecked entry as run(): the stage checked its shapes when it was built
      return { f: await native.nbitsMatmulAsync({ x, packed: this.nbitsH, out: null, M: batch, bias: this.bias, relu: this.relu, int8: this.compute === 'int8' }) };
    }
    const w = this.weight.tensor.dequantize();
    return { f: await matmulF32Async(x, w, { M: batch, K, N, transB: true, bias: this.bias ?? undefined, relu: this.relu }) };
  }
  bytes(): number {
    return weightBytes(this.weight) + f32Bytes(this.bias);
  }
  toFile(tensors: Record<string, SafetensorsTensor>): Record<string, unknown> {
    const weight = weightTensors(this.name, this.weight, tensors);
    if (this.bias) tensors[pfx(this.name, 'bias')] = { dtype: 'F32', shape: [this.bias.length], data: this.bias };
    return { weight };
  }
  override summaryRow(): LayerSummary {
    return { ...super.summaryRow(), ...weightRow(this) };
  }
  override describe(): StageDescription {
    return { ...super.describe(), relu: this.relu, weight: this.weight, bias: this.bias };
  }
}

/**
 * Static: uint8 codes in (the float input is quantized with the calibrated qparams), int8 GEMM,
 * int32 bias, then requantized to the next GEMM's input qparams with ReLU fused, or float32 out
 * (scale and float bias) when the next layer is not a static GEMM.
 */
export class StaticStage extends Stage {
  readonly mode = 'static' as const;
  readonly packed: PackedWeights;
  private readonly handle: native.PackedHandle;
  /** Set when the next stage takes codes (then the output is requantized to these qparams). */
  output: ActQParams | null = null;
  /**
   * How the output is requantized to codes: 'int' (default: the GEMM's requantizing epilogue, int32
   * bias, ONNX QLinearMatMul's arithmetic) or 'float' (the float32 epilogue, float bias and ReLU,
   * then quantized as the next layer's float input would be: what a fake-quant forward computes;
   * convertQAT's { requantize: 'float' }).
   */
  requantize: 'int' | 'float' = 'int';
  /** The bias: float32 as given, and int32 (scale input.scale * weightScale[j]) for the requantizing epilogue. */
  readonly biasF: Float32Array | null;
  readonly biasQ: Int32Array | null;
  constructor(name: string, spec: LayerSpec, readonly weight: QuantWeight, readonly input: ActQParams, bias: Float32Array | Int32Array | null, public relu: boolean) {
    super(name, spec);
    this.packed = packQuantWeight(weight);
    this.handle = packedHandle(this.packed);
    const s = weight.tensor.scale;
    const f = Math.fround;
    if (isTypedOf(bias, 'Int32Array')) {
      this.biasQ = bias;
      this.biasF = Float32Array.from(bias, (v, j) => f(v * f(f(input.scale) * s[s.length === 1 ? 0 : j])));
    } else {
      this.biasF = bias;
      this.biasQ = bias ? quantizeBias(bias, input.scale, s) : null;
    }
  }
  override get codesIn(): ActQParams {
    return this.input;
  }
  override get emitsCodes(): boolean {
    return true;
  }
  override get codesOut(): ActQParams | null {
    return this.output;
  }
  override linkOutput(q: ActQParams | null): void {
    this.output = q;
  }
  /** The uint8 codes of the input: a float input quantized with the calibrated qparams. */
  private inputCodes(v: Value): Uint8Array {
    if ('q' in v) {
      if (!sameAct(v.s, this.input)) throw new Error(`internal: qparams mismatch at layer '${this.name}'`);
      return v.q;
    }
    const x = toFloat(v);
    const q = new Uint8Array(x.length);
    const [qmin, qmax] = actRange(this.input);
    native.quantize({ x, out: q, scale: this.input.scale, zeroPoint: this.input.zeroPoint, storage: native.Storage.Byte,
      layout: perTensorLayout(x.length), qmin, qmax, formula: this.input.formula === 'pytorch' ? native.Formula.Pytorch : native.Formula.Onnx });
    return q;
  }
  /**
   * Requantized codes clamped to the output's range when it is narrower than uint8's (the GEMM
   * epilogue saturates to 0..255; the next layer's activations may be 0..15).
   */
  private clampOut(y: Uint8Array): void {
    const [lo, hi] = actRange(this.output!);
    if (lo === 0 && hi === 255) return;
    for (let i = 0; i < y.length; i++) {
      const c = y[i];
      if (c < lo) y[i] = lo;
      else if (c > hi) y[i] = hi;
    }
  }
  /** The output codes of the float32 GEMM result (requantize 'float'): quantized as a float input of the next layer is. */
  private quantizeOut(y: Float32Array): Uint8Array {
    const o = this.output!;
    const q = new Uint8Array(y.length);
    const [qmin, qmax] = actRange(o);
    native.quantize({ x: y, out: q, scale: o.scale, zeroPoint: o.zeroPoint, storage: native.Storage.Byte,
      layout: perTensorLayout(y.length), qmin, qmax, formula: o.formula === 'pytorch' ? native.Formula.Pytorch : native.Formula.Onnx });
    return q;
  }
  private opts(batch: number): GemmOptions {
    const common = { M: batch, aZeroPoint: this.input.zeroPoint, aScale: this.input.scale, relu: this.relu };
    if (this.output && this.requantize === 'int') return { ...common, output: 'uint8', outScale: this.output.scale, outZeroPoint: this.output.zeroPoint, bias: this.biasQ ?? undefined };
    return { ...common, output: 'float32', bias: this.biasF ?? undefined };
  }
  private wrap(y: Float32Array | Int32Array | Int8Array | Uint8Array): Value {
    if (!this.output) return { f: y as Float32Array };
    if (this.requantize === 'float') return { q: this.quantizeOut(y as Float32Array), s: this.output };
    this.clampOut(y as Uint8Array);
    return { q: y as Uint8Array, s: this.output };
  }
  run(v: Value, batch: number): Value {
    // Arguments checked once at construction: straight to the native call (which checks again).
    const q = this.inputCodes(v);
    const o = this.requantize === 'int' ? this.output : null;
    const out = o ? new Uint8Array(batch * this.packed.N) : new Float32Array(batch * this.packed.N);
    native.gemm({ a: q, aSigned: false, M: batch, packed: this.handle, aZeroPoint: this.input.zeroPoint,
      output: o ? native.OutputKind.Uint8 : native.OutputKind.Float32, out, aScale: this.input.scale,
      bias: o ? this.biasQ : this.biasF, relu: this.relu, outScale: o ? o.scale : 1, outZeroPoint: o ? o.zeroPoint : 0 });
    return this.wrap(out);
  }
  override async runAsync(v: Value, batch: number): Promise<Value> {
    return this.wrap(await gemmAsync(this.inputCodes(v), this.packed, this.opts(batch)));
  }
  bytes(): number {
    return weightBytes(this.weight) + f32Bytes(this.biasF);
  }
  toFile(tensors: Record<string, SafetensorsTensor>): Record<string, unknown> {
    const weight = weightTensors(this.name, this.weight, tensors);
    const intBias = this.output !== null && this.requantize === 'int';
    if (this.biasF) {
      tensors[pfx(this.name, 'bias')] = intBias
        ? { dtype: 'I32', shape: [this.biasQ!.length], data: this.biasQ! }
        : { dtype: 'F32', shape: [this.biasF.length], data: this.biasF };
    }
    return { weight, input: actCopy(this.input), output: this.output ? actCopy(this.output) : null, ...(this.requantize === 'float' ? { requantize: 'float' } : {}) };
  }
  override summaryRow(): LayerSummary {
    return { ...super.summaryRow(), ...weightRow(this), input: actCopy(this.input), output: this.output ? actCopy(this.output) : null };
  }
  override describe(): StageDescription {
    return {
      ...super.describe(), relu: this.relu, weight: this.weight, bias: this.biasF, biasQ: this.biasQ, requantize: this.requantize,
      input: actCopy(this.input), output: this.output ? actCopy(this.output) : null,
    };
  }
}

/** The quantization spec of a Linear weight [out, in] with these settings (what quantizeWeight and fake-quantizing QAT use). */
export function weightQuantSpec(p: { bits: number; granularity: WeightGranularity; scheme: 'symmetric' | 'asymmetric' }, formula: 'onnx' | 'pytorch' = 'onnx'): Partial<QuantSpec> {
  return { scheme: p.scheme, bits: p.bits, granularity: layoutGranularity(p.granularity), formula };
}

/** Quantizes a Linear's weight [out, in] with these settings. */
export function quantizeWeight(w: Float32Array, outF: number, inF: number, p: { bits: number; granularity: WeightGranularity; scheme: 'symmetric' | 'asymmetric'; formula?: 'onnx' | 'pytorch' }): QuantWeight {
  return { tensor: quantize(w, [outF, inF], weightQuantSpec(p, p.formula ?? 'onnx')), granularity: p.granularity };
}

/**
 * Static layers add an int32 bias quantized with scale inScale * wScale[j]. When a channel's
 * weights are tiny next to its bias (a nearly dead unit), bias / (inScale * wScale[j]) would not
 * fit in int32: that channel's weight scale is widened until it fits (as onnxruntime's quantizer
 * does) and its codes recomputed. Returns the weight unchanged when every bias fits. Given weight
 * qparams (`given`) are never widened: a bias that does not fit them is an error.
 */
export function fitWeightForBias(wf: Float32Array, outF: number, inF: number, qw: QuantWeight, bias: Float32Array, inScale: number, layer: string, given = false): QuantWeight {
  const t = qw.tensor;
  const fr = Math.fround;
  const LIM = 2 ** 30; // half of int32's range: margin for the float32 rounding of the scale
  const sc = t.scale.slice();
  let changed = false;
  for (let j = 0; j < bias.length; j++) {
    const g = sc.length === 1 ? 0 : j;
    if (Math.abs(bias[j]) <= fr(inScale * sc[g]) * LIM) continue;
    if (given || t.scheme !== 'symmetric' || typeof qw.granularity === 'object') {
      const fix = given ? 'the given weight qparams are used as they are, not widened' : "use scheme 'symmetric' or keep the layer float";
      throw rangeError(`model layer '${layer}' bias[${j}]`, `a bias that fits int32 at scale inputScale * weightScale (${inScale} * ${sc[g]}); ${fix}`, String(bias[j]));
    }
    sc[g] = fr((Math.abs(bias[j]) / (inScale * LIM)) * (1 + 2 ** -20));
    changed = true;
  }
  if (!changed) return qw;
  const granularity = layoutGranularity(qw.granularity);
  const spec = resolveSpec('weight', { scheme: t.scheme, bits: t.bits, signed: t.signed, granularity, formula: t.formula });
  const L = granularityLayout('weight', granularity, [outF, inF], wf.length);
  return { tensor: quantizeWithQParams(wf, [outF, inF], spec, L, sc, t.zeroPoint.slice()), granularity: qw.granularity };
}

/** A Linear's weight quantized with given qparams (checked against its settings). */
function givenWeight(ctx: BuildContext<Linear, LinearSpec>, g: WeightQParams): QuantWeight {
  const { module: m, settings: p, weightField: f } = ctx;
  const o = checkOptions(f, g, ['scale', 'zeroPoint', 'bits']);
  if (o.bits !== undefined && o.bits !== p.bits) throw rangeError(`${f}.bits`, `${p.bits}, the layer's bits (${ctx.field('bits')})`, describe(o.bits));
  const N = m.outFeatures, K = m.inFeatures;
  const spec = resolveSpec('weight', weightQuantSpec(p, ctx.formula));
  const L = granularityLayout('weight', spec.granularity, [N, K], N * K);
  const n = L.groups;
  const sv = o.scale;
  if (!isTypedOf(sv, 'Float32Array') && !Array.isArray(sv)) throw typeError(`${f}.scale`, `a Float32Array or array of ${n} scales`, sv);
  const scale = Float32Array.from(sv as ArrayLike<number>);
  const zv = o.zeroPoint ?? new Int32Array(n);
  if (typeof zv !== 'object' || zv === null || typeof (zv as ArrayLike<number>).length !== 'number') throw typeError(`${f}.zeroPoint`, `an array of ${n} zero points`, zv);
  const zp = Int32Array.from(zv as ArrayLike<number>);
  for (const [k, a] of [['scale', scale], ['zeroPoint', zp]] as const) {
    if (a.length !== n) throw rangeError(`${f}.${k}`, `${n} values (${JSON.stringify(p.granularity)} for a weight [${N}, ${K}])`, `${a.length}`);
  }
  const [zlo, zhi] = spec.scheme === 'symmetric' && spec.signed ? [0, 0] : [spec.qmin, spec.qmax]; // symmetric signed codes: zero point 0
  for (let i = 0; i < n; i++) {
    if (!(scale[i] > 0) || scale[i] === Infinity) throw rangeError(`${f}.scale[${i}]`, 'a positive finite float32', String(scale[i]));
    const z = (zv as ArrayLike<number>)[i];
    if (z !== zp[i] || z < zlo || z > zhi) throw rangeError(`${f}.zeroPoint[${i}]`, `an integer ${zlo}..${zhi} (${spec.scheme}, ${spec.bits} bits)`, String(z));
  }
  return { tensor: quantizeWithQParams(m.weight.data, [N, K], spec, L, scale, zp), granularity: p.granularity };
}

function checkLinearSettings(ctx: QuantizeContext<Linear, LinearSpec>): void {
  const p = ctx.settings;
  if (p.mode !== 'weight-only' && p.mode !== 'float' && typeof p.granularity === 'object') {
    throw rangeError(ctx.field('granularity'), `'per-channel' or 'per-tensor' for mode '${p.mode}' (groups need mode 'weight-only': the int8 GEMM takes one scale per output column)`, JSON.stringify(p.granularity));
  }
}

function checkLinearValues(ctx: QuantizeContext<Linear, LinearSpec>): void {
  const { name, module: m, settings: p } = ctx;
  for (const [pn, prm] of m.namedParameters()) {
    const bad = prm.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw rangeError(`model layer '${name}' ${pn}`, 'finite values (quantize a trained model)', `${prm.data[bad]} at element ${bad}`);
  }
  if (p.mode === 'dynamic' || p.mode === 'static') {
    // The int32 accumulator bound of the GEMM: K * max|a - za| * max|w - zw| < 2^31.
    const int8Act = p.mode === 'dynamic' && ctx.activation === 'int8';
    const kmax = gemmMaxK(int8Act, p.scheme === 'symmetric');
    if (m.inFeatures > kmax) {
      throw rangeError(`model layer '${name}' inFeatures`, `at most ${kmax} for mode '${p.mode}' (int32 accumulation: K * ${int8Act ? 127 : 255} * ${p.scheme === 'symmetric' ? 128 : 255} < 2^31); keep it float or weight-only with layers: { '${name}': { mode: 'weight-only' } }`, String(m.inFeatures));
    }
  }
}

function buildLinear(ctx: BuildContext<Linear, LinearSpec>): Stage {
  const { name, spec, module: m, settings: p, relu } = ctx;
  const w = ctx.weight ? givenWeight(ctx, ctx.weight) : quantizeWeight(m.weight.data, m.outFeatures, m.inFeatures, { ...p, formula: ctx.formula });
  const bias = m.bias ? m.bias.data.slice() : null;
  if (p.mode === 'dynamic') return new DynamicStage(name, spec, w, bias, relu, ctx.activation, ctx.activationGranularity);
  if (p.mode === 'weight-only') return new WeightOnlyStage(name, spec, w, bias, relu);
  const inq = ctx.input!;
  return new StaticStage(name, spec, bias ? fitWeightForBias(m.weight.data, m.outFeatures, m.inFeatures, w, bias, inq.scale, name, ctx.weight !== null) : w, inq, bias, relu);
}

function loadLinear(c: FileCtx, l: SavedLayer<LinearSpec>, run: 'dynamic' | 'static' | 'weight-only', relu: boolean): Stage {
  const { json: j, field, spec: ls, name } = l;
  const N = ls.outFeatures, K = ls.inFeatures;
  const wj = checkWeightJSON(c, `${field}.weight`, j.weight, run);
  let w: QuantWeight;
  try {
    w = loadWeight(c, name, `${field}.weight`, wj, N, K);
  } catch (e) {
    if (e instanceof WeightFileError) throw e;
    c.fail(`${field}.weight`, (e as Error).message);
  }
  if (run === 'dynamic' || run === 'static') {
    const kmax = gemmMaxK(j.activation === 'int8', w.tensor.signed);
    if (K > kmax) c.fail(`${field}.layer.inFeatures`, `${K} is too large for an int8 GEMM layer (at most ${kmax}: the int32 accumulator)`);
  }
  const bname = pfx(name, 'bias');
  if (!ls.bias && c.has(bname)) c.fail(`tensors['${bname}']`, 'unexpected: the layer has no bias');
  if (run === 'static') {
    const input = checkAct(c, `${field}.input`, j.input);
    const out = j.output === null || j.output === undefined ? null : checkAct(c, `${field}.output`, j.output);
    const rq = j.requantize === undefined ? 'int' : j.requantize;
    if (rq !== 'int' && rq !== 'float') c.fail(`${field}.requantize`, `expected 'int' or 'float' but found ${describeValue(rq)}`);
    const bias = ls.bias ? c.tensor(bname, [out && rq === 'int' ? 'I32' : 'F32'], [N]).data as Float32Array | Int32Array : null;
    if (isTypedOf(bias, 'Float32Array') && bias.some((v) => !Number.isFinite(v))) c.fail(`tensors['${bname}']`, 'a value is not finite');
    if (out) {
      const ws = w.tensor.scale;
      for (let k = 0; k < ws.length; k++) {
        const mult = Math.fround(Math.fround(input.scale * ws[k]) / out.scale);
        if (!(mult > 0) || !Number.isFinite(mult)) c.fail(`tensors['${pfx(name, 'weight_scale')}'][${k}]`, `input scale * weight scale / output scale must be a positive finite float32, found ${input.scale} * ${ws[k]} / ${out.scale}`);
      }
    }
    const s = new StaticStage(name, ls, w, input, bias, relu);
    s.output = out;
    s.requantize = rq;
    return s;
  }
  const bias = ls.bias ? c.tensor(bname, ['F32'], [N]).data as Float32Array : null;
  if (bias && bias.some((v) => !Number.isFinite(v))) c.fail(`tensors['${bname}']`, 'a value is not finite');
  if (run === 'weight-only') return new WeightOnlyStage(name, ls, w, bias, relu);
  const act = j.activation, ag = j.activationGranularity;
  if (act !== 'uint8' && act !== 'int8') c.fail(`${field}.activation`, `expected 'uint8' or 'int8' but found ${describeValue(act)}`);
  if (ag !== 'per-row' && ag !== 'per-tensor') c.fail(`${field}.activationGranularity`, `expected 'per-row' or 'per-tensor' but found ${describeValue(ag)}`);
  return new DynamicStage(name, ls, w, bias, relu, act, ag);
}

export const LINEAR: LayerType<Linear, LinearSpec> = {
  type: 'Linear',
  module: Linear,
  describe: (m) => ({ type: 'Linear', inFeatures: m.inFeatures, outFeatures: m.outFeatures, bias: m.bias !== null }),
  check: (field, v) => {
    const bias = specBool(`${field}.bias`, v.bias);
    return { type: 'Linear', inFeatures: specInt(`${field}.inFeatures`, v.inFeatures), outFeatures: specInt(`${field}.outFeatures`, v.outFeatures), bias };
  },
  create: (s) => {
    const l = new Linear(s.inFeatures, s.outFeatures, { bias: s.bias, rng: 0 });
    l.weight.data.fill(0);
    l.bias?.data.fill(0);
    return l;
  },
  params: (s) => (s.bias ? [['weight', [s.outFeatures, s.inFeatures]], ['bias', [s.outFeatures]]] : [['weight', [s.outFeatures, s.inFeatures]]]),
  inFeatures: (s) => s.inFeatures,
  fusesRelu: true,
  floatKernel: (m) => {
    const packed = packWeightsF32(m.weight.data, { K: m.inFeatures, N: m.outFeatures, transposed: true });
    const bias = m.bias ? m.bias.data : undefined;
    return {
      run: (x, batch, relu) => matmulF32(x, packed, { M: batch, bias, relu }),
      runAsync: (x, batch, relu) => matmulF32Async(x, packed, { M: batch, bias, relu }),
    };
  },
  quantize: {
    modes: ['dynamic', 'static', 'weight-only'],
    checkSettings: checkLinearSettings,
    checkValues: checkLinearValues,
    takesCodes: (p) => p.mode === 'static',
    build: buildLinear,
    load: loadLinear,
  },
};
