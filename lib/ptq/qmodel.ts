// QuantizedModel: a Sequential's layers after post-training quantization, each a stage that runs
// on the int8 kernels (dynamic, static), on dequantized weights (weight-only) or in float.
// Between stages a value is float32 rows, or uint8 codes with their scale and zero point (static
// mode: int8 activations flow from one requantizing GEMM to the next); a value may carry a shape
// and be int32 ids where a layer takes them (forwardShaped). The stages are in stages.ts and with
// their layer types' registry entries (linear.ts).
import { checkInt, checkTyped, describe, isTypedOf, ownCopy, rangeError, typeError } from '../errors';
import { checkBatch, checkShaped, Shaped } from '../nn/module';
import { inputFeatures } from './graph';
import { layerTypeNamed } from './registry';
import { Stage, toFloat, Value, WeightGranularity } from './stages';
import type { LayerSummary, QuantMode, StageDescription } from './stages';

export type { ActQParams, LayerMode, LayerSummary, QuantMode, QuantWeight, StageDescription, Value, WeightGranularity } from './stages';
export { FloatStage, Stage } from './stages';
export { DynamicStage, gemmMaxK, packQuantWeight, quantizeBias, StaticStage, unpackedCodes, weightBytes, WeightOnlyStage } from './linear';

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
  /** 'int' when its first layer (past pass-throughs) takes int32 ids (forwardShaped takes an Int32Array), else 'float'. */
  readonly inputKind: 'float' | 'int';

  /** @internal */
  constructor(mode: QuantMode, stages: Stage[]) {
    this.mode = mode;
    this.stages = Object.freeze(stages.slice());
    this.inFeatures = inputFeatures(stages.map((s) => s.spec));
    this.inputKind = stages.find((s) => !s.passThrough)?.inputKind ?? 'float';
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

  /**
   * forward for a batch with its shape (row-major, shape[0] the batch): float32 values, or int32
   * ids when the first layer takes them (inputKind 'int'). Layers that need the shape (a Conv2d's
   * [N, C, H, W]) get it; the output's shape is what the last layer gives ([batch, features] rows
   * when it gives none).
   */
  forwardShaped(x: Shaped): Shaped {
    const { data, shape, batch } = checkShaped('x', x);
    const isInt = isTypedOf(data, 'Int32Array');
    if (isInt !== (this.inputKind === 'int')) {
      throw typeError('x.data', this.inputKind === 'int' ? 'an Int32Array of ids (the first layer takes int32 ids)' : 'a Float32Array', data);
    }
    if (!isInt && this.inFeatures !== null && data.length !== batch * this.inFeatures) {
      throw rangeError('x', `a shape [batch, ...] of batch * ${this.inFeatures} values`, `shape [${shape.join(', ')}]`);
    }
    let v: Value = isInt ? { i: data as Int32Array, shape } : { f: data as Float32Array, shape };
    for (const s of this.stages) v = s.run(v, batch);
    const y = toFloat(v);
    return { data: y, shape: v.shape ?? [batch, batch === 0 ? 0 : y.length / batch] };
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
      rows.push(s.summaryRow());
      for (const f of s.fused) rows.push({ name: f, type: 'ReLU', mode: 'fused', bytes: 0 });
    }
    return rows;
  }

  /** What each stage computes, as plain data (for exporters such as ONNX); see StageDescription. */
  describe(): StageDescription[] {
    return this.stages.map((s) => s.describe());
  }

  toString(): string {
    const g = (w?: WeightGranularity) => (w === undefined ? '' : typeof w === 'string' ? w : `group ${w.groupSize}`);
    const lines = this.summary().map((r) => {
      if (r.mode === 'fused') return `  (${r.name}): ReLU (fused into the previous GEMM)`;
      let d = `  (${r.name}): ${r.type}`;
      if (layerTypeNamed(r.type)?.quantize) d += ` [${r.mode}${r.bits ? `, int${r.bits} ${g(r.granularity)}` : ', fp32'}]`;
      return d;
    });
    return `QuantizedModel(mode=${this.mode}, ${this.byteLength} bytes\n${lines.join('\n')}\n)`;
  }
}
