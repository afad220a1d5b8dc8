// QuantizedModel: a Sequential's layers after post-training quantization, each a stage that runs
// on the int8 kernels (dynamic, static), on dequantized weights (weight-only) or in float.
// Between stages a value is float32 rows, or uint8 codes with their scale and zero point (static
// mode: int8 activations flow from one requantizing GEMM to the next).
import { checkInt, checkTyped, describe, isTypedOf, ownCopy, rangeError } from '../errors';
import { native } from '../binding';
import { gemmAsync, GemmOptions, linearDynamicAsync, LinearDynamicOptions, PackedWeights, packedHandle, packWeights } from '../gemm';
import { perTensorLayout } from '../layout';
import { matmulF32, matmulF32Async, PackedWeightsF32, packWeightsF32 } from '../matmul-f32';
import { Linear } from '../nn/layers';
import { Module, checkBatch } from '../nn/module';
import { dequantizeLinear } from '../onnx';
import { QuantizedTensor } from '../tensor';
import { inputFeatures, LayerSpec } from './graph';

/** 'float': nothing quantized, Linear weights packed for the fp32 GEMM (the float baseline). */
export type QuantMode = 'dynamic' | 'static' | 'weight-only' | 'float';
export type LayerMode = QuantMode | 'float';

/** How a Linear's weights were quantized (granularity along its output or input features). */
export type WeightGranularity = 'per-tensor' | 'per-channel' | { groupSize: number };

/** Activation qparams of a static layer (uint8, asymmetric). */
export interface ActQParams {
  scale: number;
  zeroPoint: number;
}

/** A quantized Linear's weights: codes [outFeatures, inFeatures] (packed two per byte when bits <= 4). */
export interface QuantWeight {
  tensor: QuantizedTensor;
  granularity: WeightGranularity;
}

/** One row of QuantizedModel.summary(). */
export interface LayerSummary {
  /** Dotted name (the state dict prefix). */
  name: string;
  /** 'Linear', 'ReLU', ... */
  type: string;
  /** How the layer runs: a quantized mode, 'float', or 'fused' (a ReLU folded into the previous GEMM). */
  mode: LayerMode | 'fused';
  /** Weight bits and granularity for quantized Linears. */
  bits?: number;
  granularity?: WeightGranularity;
  /** Static layers: the input's (and, when the next GEMM takes codes, the output's) qparams. */
  input?: ActQParams;
  output?: ActQParams | null;
  /** Bytes this layer adds to the model file's data. */
  bytes: number;
}

type Value = { f: Float32Array } | { q: Uint8Array; s: ActQParams };

/** @internal A stage of the quantized graph. */
export abstract class Stage {
  constructor(readonly name: string, readonly spec: LayerSpec) {}
  abstract readonly mode: LayerMode;
  /** Names of ReLUs folded into this stage. */
  fused: string[] = [];
  abstract run(v: Value, batch: number): Value;
  /** run with the GEMM off the event loop (the Async kernels); other work stays synchronous. */
  runAsync(v: Value, batch: number): Promise<Value> {
    return Promise.resolve(this.run(v, batch));
  }
  abstract bytes(): number;
}

function toFloat(v: Value): Float32Array {
  if ('f' in v) return v.f;
  return dequantizeLinear(v.q, v.s.scale, Uint8Array.of(v.s.zeroPoint));
}

/**
 * A layer kept in float (its own copy of the parameters), or a pass-through layer. A float Linear
 * runs on the fp32 GEMM with its weights packed once and bias and a following ReLU fused.
 */
export class FloatStage extends Stage {
  readonly mode = 'float' as const;
  private readonly packed: PackedWeightsF32 | null;
  relu = false;
  constructor(name: string, spec: LayerSpec, readonly module: Module) {
    super(name, spec);
    module.eval();
    this.packed = module instanceof Linear ? packWeightsF32(module.weight.data, { K: module.inFeatures, N: module.outFeatures, transposed: true }) : null;
  }
  /** Identity, Flatten, Dropout (eval) and an empty Sequential pass codes through unchanged. */
  get passThrough(): boolean {
    return this.spec.type === 'Identity' || this.spec.type === 'Flatten' || this.spec.type === 'Dropout' || this.spec.type === 'Sequential';
  }
  run(v: Value, batch: number): Value {
    if (this.passThrough) return v;
    const x = toFloat(v);
    if (this.packed) {
      const b = (this.module as Linear).bias;
      return { f: matmulF32(x, this.packed, { M: batch, bias: b ? b.data : undefined, relu: this.relu }) };
    }
    return { f: this.module.forward(x, batch) };
  }
  override async runAsync(v: Value, batch: number): Promise<Value> {
    if (!this.packed) return this.run(v, batch);
    const b = (this.module as Linear).bias;
    return { f: await matmulF32Async(toFloat(v), this.packed, { M: batch, bias: b ? b.data : undefined, relu: this.relu }) };
  }
  bytes(): number {
    return this.module.numParameters() * 4;
  }
}

function f32Bytes(a: Float32Array | Int32Array | null): number {
  return a ? a.byteLength : 0;
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
    native.linearDynamic(x, batch, this.handle, this.bias, this.relu, this.activationGranularity === 'per-row', this.activation === 'int8', out);
    return { f: out };
  }
  private readonly handle: unknown;
  override async runAsync(v: Value, batch: number): Promise<Value> {
    return { f: await linearDynamicAsync(toFloat(v), this.packed, this.opts(batch)) };
  }
  private opts(batch: number): LinearDynamicOptions {
    return { M: batch, bias: this.bias ?? undefined, relu: this.relu, activation: this.activation, granularity: this.activationGranularity };
  }
  bytes(): number {
    return weightBytes(this.weight) + f32Bytes(this.bias);
  }
}

/** Weight-only: weights dequantized for each call, float32 GEMM. */
export class WeightOnlyStage extends Stage {
  readonly mode = 'weight-only' as const;
  constructor(name: string, spec: LayerSpec, readonly weight: QuantWeight, readonly bias: Float32Array | null, public relu: boolean) {
    super(name, spec);
  }
  run(v: Value, batch: number): Value {
    const x = toFloat(v);
    const [N, K] = this.weight.tensor.shape;
    const w = this.weight.tensor.dequantize();
    return { f: matmulF32(x, w, { M: batch, K, N, transB: true, bias: this.bias ?? undefined, relu: this.relu }) };
  }
  override async runAsync(v: Value, batch: number): Promise<Value> {
    const x = toFloat(v);
    const [N, K] = this.weight.tensor.shape;
    const w = this.weight.tensor.dequantize();
    return { f: await matmulF32Async(x, w, { M: batch, K, N, transB: true, bias: this.bias ?? undefined, relu: this.relu }) };
  }
  bytes(): number {
    return weightBytes(this.weight) + f32Bytes(this.bias);
  }
}

/** round(bias / (inputScale * weightScale[j])) as int32, the ONNX tools' bias quantization (float32 arithmetic). */
export function quantizeBias(bias: Float32Array, inputScale: number, wScale: Float32Array): Int32Array {
  const out = new Int32Array(bias.length);
  const f = Math.fround;
  for (let j = 0; j < bias.length; j++) {
    const s = f(f(inputScale) * wScale[wScale.length === 1 ? 0 : j]);
    const v = f(bias[j] / s);
    let r = Math.round(v);
    if (r - v === 0.5 && r % 2 !== 0) r -= 1; // half to even
    out[j] = Math.max(-2147483648, Math.min(2147483647, r));
  }
  return out;
}

/**
 * Static: uint8 codes in (the float input is quantized with the calibrated qparams), int8 GEMM,
 * int32 bias, then requantized to the next GEMM's input qparams with ReLU fused, or float32 out
 * (scale and float bias) when the next layer is not a static GEMM.
 */
export class StaticStage extends Stage {
  readonly mode = 'static' as const;
  readonly packed: PackedWeights;
  private readonly handle: unknown;
  /** Set when the next stage takes codes (then the output is requantized to these qparams). */
  output: ActQParams | null = null;
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
  /** The uint8 codes of the input: a float input quantized with the calibrated qparams. */
  private codesIn(v: Value): Uint8Array {
    if (!('f' in v)) {
      if (v.s.scale !== this.input.scale || v.s.zeroPoint !== this.input.zeroPoint) throw new Error(`internal: qparams mismatch at layer '${this.name}'`);
      return v.q;
    }
    const x = v.f;
    const q = new Uint8Array(x.length);
    const L = perTensorLayout(x.length);
    native.quantize(x, q, this.input.scale, this.input.zeroPoint, 0, L.outer, L.axisDim, L.inner, L.gran, L.blockSize, 0, 255, 0);
    return q;
  }
  private opts(batch: number): GemmOptions {
    const common = { M: batch, aZeroPoint: this.input.zeroPoint, aScale: this.input.scale, relu: this.relu };
    if (this.output) return { ...common, output: 'uint8', outScale: this.output.scale, outZeroPoint: this.output.zeroPoint, bias: this.biasQ ?? undefined };
    return { ...common, output: 'float32', bias: this.biasF ?? undefined };
  }
  private wrap(y: Float32Array | Int32Array | Int8Array | Uint8Array): Value {
    return this.output ? { q: y as Uint8Array, s: this.output } : { f: y as Float32Array };
  }
  run(v: Value, batch: number): Value {
    // Arguments checked once at construction: straight to the native call (which checks again).
    const q = this.codesIn(v);
    const o = this.output;
    const out = o ? new Uint8Array(batch * this.packed.N) : new Float32Array(batch * this.packed.N);
    native.gemm(q, false, batch, this.handle, this.input.zeroPoint, o ? 3 : 1, out, this.input.scale, o ? this.biasQ : this.biasF, this.relu,
      o ? o.scale : 1, o ? o.zeroPoint : 0);
    return this.wrap(out);
  }
  override async runAsync(v: Value, batch: number): Promise<Value> {
    return this.wrap(await gemmAsync(this.codesIn(v), this.packed, this.opts(batch)));
  }
  bytes(): number {
    return weightBytes(this.weight) + f32Bytes(this.biasF);
  }
}

/**
 * A model after quantizeModel (or loadModel of a quantized file): forward(x, batch) takes and
 * returns float32 rows like the float model; inside, each Linear runs as its mode says.
 */
export class QuantizedModel {
  /** The default mode it was quantized with (layers may differ: see summary()). */
  readonly mode: QuantMode;
  /** @internal */
  readonly stages: readonly Stage[];
  readonly inFeatures: number | null;

  /** @internal */
  constructor(mode: QuantMode, stages: Stage[]) {
    this.mode = mode;
    this.stages = Object.freeze(stages.slice());
    this.inFeatures = inputFeatures(stages.map((s) => s.spec));
  }

  /** Output rows for `batch` input rows (float32 in, float32 out). */
  forward(x: Float32Array, batch: number): Float32Array {
    const b = this.checkInput(x, batch);
    let v: Value = { f: x };
    for (const s of this.stages) v = s.run(v, b);
    return toFloat(v);
  }

  /**
   * forward with every GEMM off the event loop (gemmAsync, linearDynamicAsync, matmulF32Async);
   * the small elementwise steps between them run on the calling thread. Same results as forward.
   */
  async forwardAsync(x: Float32Array, batch: number): Promise<Float32Array> {
    const b = this.checkInput(x, batch);
    let v: Value = { f: ownCopy(x) }; // never the caller's slice()
    for (const s of this.stages) v = await s.runAsync(v, b);
    return toFloat(v);
  }

  private checkInput(x: Float32Array, batch: number): number {
    checkTyped<Float32Array>('x', x, [Float32Array]);
    const b = checkInt('batch', batch, 0, 2 ** 31);
    if (this.inFeatures !== null && x.length !== b * this.inFeatures) {
      throw rangeError('x', `length batch * ${this.inFeatures} = ${b * this.inFeatures}`, describe(x));
    }
    checkBatch(x, b);
    return b;
  }

  /** Bytes of the model's tensors as saved (weights, scales, zero points, biases, float layers). */
  get byteLength(): number {
    return this.stages.reduce((a, s) => a + s.bytes(), 0);
  }

  /** One row per layer: how it runs, its qparams and bytes. */
  summary(): LayerSummary[] {
    const rows: LayerSummary[] = [];
    for (const s of this.stages) {
      const r: LayerSummary = { name: s.name, type: s.spec.type, mode: s.mode, bytes: s.bytes() };
      if (s instanceof DynamicStage || s instanceof WeightOnlyStage || s instanceof StaticStage) {
        r.bits = s.weight.tensor.bits;
        r.granularity = s.weight.granularity;
      }
      if (s instanceof StaticStage) {
        r.input = { ...s.input };
        r.output = s.output ? { ...s.output } : null;
      }
      rows.push(r);
      for (const f of s.fused) rows.push({ name: f, type: 'ReLU', mode: 'fused', bytes: 0 });
    }
    return rows;
  }

  toString(): string {
    const g = (w?: WeightGranularity) => (w === undefined ? '' : typeof w === 'string' ? w : `group ${w.groupSize}`);
    const lines = this.summary().map((r) => {
      if (r.mode === 'fused') return `  (${r.name}): ReLU (fused into the previous GEMM)`;
      let d = `  (${r.name}): ${r.type}`;
      if (r.type === 'Linear') d += ` [${r.mode}${r.bits ? `, int${r.bits} ${g(r.granularity)}` : ', fp32'}]`;
      return d;
    });
    return `QuantizedModel(mode=${this.mode}, ${this.byteLength} bytes\n${lines.join('\n')}\n)`;
  }
}
