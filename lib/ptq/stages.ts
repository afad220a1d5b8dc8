// Stages of a QuantizedModel: each runs one leaf layer (with a ReLU fused into it, if any) on a
// Value, the data flowing between stages. This file holds what every stage shares and the float
// stage; the quantized stages of a layer type live with its registry entry (linear.ts for Linear).
import { isTypedOf, typeError } from '../errors';
import { Module } from '../nn/module';
import { dequantizeLinear } from '../onnx';
import type { SafetensorsTensor } from '../io/safetensors';
import type { Granularity } from '../layout';
import type { QuantizedTensor } from '../tensor';
import type { LayerSpec, LayerType } from './registry';

/** 'float': nothing quantized, Linear weights packed for the fp32 GEMM (the float baseline). */
export type QuantMode = 'dynamic' | 'static' | 'weight-only' | 'float';
export type LayerMode = QuantMode | 'float';

/** How a Linear's weights were quantized (granularity along its output or input features). */
export type WeightGranularity = 'per-tensor' | 'per-channel' | { groupSize: number };

/** The layout granularity of a weight [out, in] quantized with this granularity. */
export function layoutGranularity(g: WeightGranularity): Granularity {
  return g === 'per-tensor' ? 'per-tensor' : g === 'per-channel' ? { axis: 0 } : { axis: 1, blockSize: g.groupSize };
}

/**
 * Activation qparams of a static layer (uint8 codes, asymmetric). `qmin` / `qmax` narrow the codes
 * (default 0..255; a QAT model with 4-bit activations has 0..15): a float input is quantized into
 * them and a requantizing GEMM clamps its output to them. `formula` is how a float input is
 * rounded: 'onnx' (default: round(x / scale)) or 'pytorch' (round(x * float32(1 / scale)), as
 * PyTorch's and quantkit's fake-quant).
 */
export interface ActQParams {
  scale: number;
  zeroPoint: number;
  qmin?: number;
  qmax?: number;
  formula?: 'onnx' | 'pytorch';
}

/** The code range of activation qparams (default 0..255). */
export function actRange(q: ActQParams): [number, number] {
  return [q.qmin ?? 0, q.qmax ?? 255];
}

/** A copy of activation qparams with only the fields that differ from the defaults (what files and summaries show). */
export function actCopy(q: ActQParams): ActQParams {
  const o: ActQParams = { scale: q.scale, zeroPoint: q.zeroPoint };
  if (q.qmin !== undefined && q.qmin !== 0) o.qmin = q.qmin;
  if (q.qmax !== undefined && q.qmax !== 255) o.qmax = q.qmax;
  if (q.formula === 'pytorch') o.formula = 'pytorch';
  return o;
}

/** Whether two activation qparams describe the same codes. */
export function sameAct(a: ActQParams, b: ActQParams): boolean {
  const [al, ah] = actRange(a), [bl, bh] = actRange(b);
  return a.scale === b.scale && a.zeroPoint === b.zeroPoint && al === bl && ah === bh;
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

/**
 * What a stage computes, as plain data (for exporters such as ONNX): the layer, how it runs, and
 * the tensors and qparams it runs with (the stage's own arrays, not copies: read them only).
 * Fields a stage does not have are absent.
 */
export interface StageDescription {
  name: string;
  spec: LayerSpec;
  mode: LayerMode;
  /** Names of ReLUs folded into this stage; relu: whether its epilogue applies one. */
  fused: string[];
  relu: boolean;
  /** Whether it returns its input unchanged (codes pass through). */
  passThrough: boolean;
  /** Quantized weights [out, in] and their granularity. */
  weight?: QuantWeight;
  /** The float32 bias added in a float epilogue. */
  bias?: Float32Array | null;
  /** Static stages: the int32 bias (scale input.scale * weightScale[j]) of the requantizing epilogue. */
  biasQ?: Int32Array | null;
  /** Static stages: how the output is requantized ('int': int32 bias and the requantizing epilogue; 'float': float epilogue, then quantized). */
  requantize?: 'int' | 'float';
  /** Static stages: uint8 qparams of the input, and of the output when the next stage takes codes (else null: float out). */
  input?: ActQParams;
  output?: ActQParams | null;
  /** Dynamic stages: how the input is quantized for each call. */
  activation?: 'uint8' | 'int8';
  activationGranularity?: 'per-row' | 'per-tensor';
  /** Float stages: the layer's parameters by state dict suffix ('weight', 'bias'). */
  params?: Record<string, Float32Array>;
}

/**
 * The data between stages: float32 values, uint8 codes with their qparams (static stages hand
 * them on), or int32 ids (for a layer that takes them, such as an Embedding). `shape` is present
 * when a layer gave one (a Conv2d's [N, C, H, W], ids [N, L]); absent, the value is rows
 * [batch, length / batch].
 */
export type Value =
  | { f: Float32Array; shape?: readonly number[] }
  | { q: Uint8Array; s: ActQParams; shape?: readonly number[] }
  | { i: Int32Array; shape?: readonly number[] };

/** @internal A stage of the quantized graph. */
export abstract class Stage {
  constructor(readonly name: string, readonly spec: LayerSpec) {}
  abstract readonly mode: LayerMode;
  /** Names of ReLUs folded into this stage. */
  fused: string[] = [];
  /** Whether it returns its input unchanged (codes included); static stages link across it. */
  get passThrough(): boolean {
    return false;
  }
  /** 'int': the stage takes int32 ids; 'float' (default): float32 values or codes. */
  get inputKind(): 'float' | 'int' {
    return 'float';
  }
  /** The qparams of the uint8 codes this stage takes (a static GEMM's input), or null when it takes float. */
  get codesIn(): ActQParams | null {
    return null;
  }
  /** Whether it can requantize its output to the next stage's codes (see linkStatic). */
  get emitsCodes(): boolean {
    return false;
  }
  /** The qparams its output is requantized to, or null (float out). */
  get codesOut(): ActQParams | null {
    return null;
  }
  /** Sets codesOut (only for stages that emit codes). */
  linkOutput(q: ActQParams | null): void {
    if (q !== null) throw new Error(`internal: stage '${this.name}' cannot requantize its output`);
  }
  abstract run(v: Value, batch: number): Value;
  /** run with the GEMM off the event loop (the Async kernels); other work stays synchronous. */
  runAsync(v: Value, batch: number): Promise<Value> {
    return Promise.resolve(this.run(v, batch));
  }
  abstract bytes(): number;
  /** Adds its tensors to `tensors` (names prefixed by the layer name) and returns the graph fields it adds after name, layer, run and fused. */
  abstract toFile(tensors: Record<string, SafetensorsTensor>): Record<string, unknown>;
  /** Its row of QuantizedModel.summary() (without fused ReLUs). */
  summaryRow(): LayerSummary {
    return { name: this.name, type: this.spec.type, mode: this.mode, bytes: this.bytes() };
  }
  /** What it computes, as plain data (see StageDescription). */
  describe(): StageDescription {
    return { name: this.name, spec: this.spec, mode: this.mode, fused: this.fused.slice(), relu: false, passThrough: this.passThrough };
  }
}

/** The float32 values of a value (codes dequantized). */
export function toFloat(v: Value): Float32Array {
  if ('f' in v) return v.f;
  if ('i' in v) throw typeError('x', 'float32 values (this layer takes float, not int32 ids)', v.i);
  return dequantizeLinear(v.q, v.s.scale, Uint8Array.of(v.s.zeroPoint));
}

/**
 * Runs a float module on a value: plain rows through forward(x, batch), values with a shape or
 * int32 ids through forwardShaped (which keeps the shape).
 */
export function runModule(m: Module, v: Value, batch: number): Value {
  if (v.shape === undefined && !('i' in v)) return { f: m.forward(toFloat(v), batch) };
  const data = 'i' in v ? v.i : toFloat(v);
  const y = m.forwardShaped({ data, shape: v.shape ?? [batch, batch === 0 ? 0 : data.length / batch] });
  return isTypedOf(y.data, 'Int32Array') ? { i: y.data, shape: y.shape } : { f: y.data as Float32Array, shape: y.shape };
}

/** A layer's float kernel (a Linear's packed fp32 GEMM), used instead of its module's forward. */
export interface FloatKernel {
  run(x: Float32Array, batch: number, relu: boolean): Float32Array;
  runAsync(x: Float32Array, batch: number, relu: boolean): Promise<Float32Array>;
}

/**
 * A layer kept in float (its own copy of the parameters), or a pass-through layer. A layer whose
 * registry entry gives a float kernel (Linear: the fp32 GEMM, weights packed once, bias and a
 * following ReLU fused) runs on it.
 */
export class FloatStage extends Stage {
  readonly mode = 'float' as const;
  private readonly kernel: FloatKernel | null;
  private readonly pass: boolean;
  relu = false;
  constructor(name: string, spec: LayerSpec, readonly module: Module, private readonly layerType: LayerType) {
    super(name, spec);
    module.eval();
    this.pass = layerType.passThrough === true;
    this.kernel = layerType.floatKernel ? layerType.floatKernel(module) : null;
  }
  /** Identity, Flatten, Dropout (eval) and an empty Sequential pass codes through unchanged. */
  override get passThrough(): boolean {
    return this.pass;
  }
  override get inputKind(): 'float' | 'int' {
    return this.layerType.input ?? 'float';
  }
  run(v: Value, batch: number): Value {
    if (this.pass) return v.shape === undefined || !this.layerType.outShape ? v : { ...v, shape: this.layerType.outShape(v.shape) };
    if (this.kernel) return { f: this.kernel.run(toFloat(v), batch, this.relu) };
    return runModule(this.module, v, batch);
  }
  override async runAsync(v: Value, batch: number): Promise<Value> {
    if (!this.kernel || this.pass) return this.run(v, batch);
    return { f: await this.kernel.runAsync(toFloat(v), batch, this.relu) };
  }
  bytes(): number {
    return this.module.numParameters() * 4;
  }
  toFile(tensors: Record<string, SafetensorsTensor>): Record<string, unknown> {
    stateTensors(this.name, this.module, tensors);
    return {};
  }
  override describe(): StageDescription {
    const params: Record<string, Float32Array> = {};
    for (const [n, p] of this.module.namedParameters()) params[n] = p.data;
    return { ...super.describe(), relu: this.relu, params };
  }
}

/** A detached copy of a layer (same spec and parameters), in eval mode. */
export function cloneLayer<M extends Module>(m: M, t: LayerType<M>): M {
  const c = t.create(t.describe(m)!);
  c.loadStateDict(m.stateDict());
  return c.eval();
}

/** A tensor name: the layer's dotted name and the tensor's ('1' and 'weight' give '1.weight'). */
export function pfx(name: string, t: string): string {
  return name === '' ? t : `${name}.${t}`;
}

/** Adds a float layer's state dict tensors under its name (F32 '1.weight', '1.bias'). */
export function stateTensors(name: string, m: Module, out: Record<string, SafetensorsTensor>): void {
  for (const [n, s] of Object.entries(m.stateDict())) out[pfx(name, n)] = s;
}

/** Bytes of an optional array. */
export function f32Bytes(a: Float32Array | Int32Array | null): number {
  return a ? a.byteLength : 0;
}

/**
 * A stage that emits codes hands them to the next real consumer (past pass-through stages) when
 * that one takes codes: its output is requantized to the consumer's input qparams.
 */
export function linkStatic(stages: readonly Stage[]): void {
  for (let i = 0; i < stages.length; i++) {
    const s = stages[i];
    if (!s.emitsCodes) continue;
    let j = i + 1;
    while (j < stages.length && stages[j].passThrough) j++;
    s.linkOutput(j < stages.length ? stages[j].codesIn : null);
  }
}
