// Sensitivity: real quantized models (quantizeModel with per-layer overrides) compared with the
// float model on the same rows. For each bit width: every Linear quantized ('uniform'), only one
// quantized ('single'), and all but one ('all-but', that one kept float). Each run records the
// output's squared error against the float outputs (and so its SQNR), the top-1 agreement with the
// float model and, with labels, the accuracy.
import { nn, quantizeModel, QuantizedModel } from '../index';
import type { ObserverName, QuantizeModelOptions, WeightGranularity } from '../index';
import { Batches, Leaf } from './model';
import { sqnrDb } from './tensor-stats';

export type SensitivityMode = 'static' | 'dynamic' | 'weight-only';

export interface SensitivityRun {
  kind: 'uniform' | 'single' | 'all-but';
  /** 'single': the one quantized layer; 'all-but': the one float layer; 'uniform': null. */
  layer: string | null;
  bits: number;
  /** Model bytes (QuantizedModel.byteLength). */
  bytes: number;
  /** Sum over rows and outputs of (quantized - float)^2. */
  noise: number;
  /** Output SQNR in dB against the float model (Infinity when identical). */
  sqnrDb: number;
  /** Fraction of rows whose argmax equals the float model's. */
  agreement: number;
  /** With labels: accuracy (fraction) and its drop from the float model's in percentage points. */
  accuracy: number | null;
  accuracyDrop: number | null;
  /** ONNX runs: cosine similarity of all compared outputs (quantized vs float). */
  cosine?: number;
}

export interface SensitivityAnalysis {
  /** Rows compared: the eval data, or the calibration data when no eval data was given. */
  data: 'eval' | 'calibration';
  rows: number;
  labels: boolean;
  mode: SensitivityMode;
  bits: number[];
  /** ONNX analyses: runs of fewer than 8 bits are weight-only (MatMul / Gemm nodes only), 8-bit runs use `mode`. */
  weightOnlyBelow8?: boolean;
  /** The Linear layers (ONNX: nodes), in order. */
  layers: string[];
  /** Sum of the float outputs squared (the signal of every SQNR). */
  signal: number;
  float: { accuracy: number | null; bytes: number };
  /** Bytes of each Linear layer: float, and quantized at each bit width (as quantizeModel stores it). */
  layerBytes: Record<string, { float: number; bits: Record<string, number> }>;
  /** Bytes of the model outside its Linear layers (float parameters of other layers). */
  otherBytes: number;
  uniform: SensitivityRun[];
  single: SensitivityRun[];
  allBut: SensitivityRun[];
}

export interface SensitivityInput {
  calibrationData: Batches;
  evalData: { x: Float32Array; rows: number; labels: Int32Array | null } | null;
  bits: number[];
  mode: SensitivityMode;
  granularity: WeightGranularity | null;
  observer: ObserverName;
  batchSize: number;
  onProgress?: (done: number, total: number) => void;
}

type Seq = InstanceType<typeof nn.Sequential>;

/** Compares a model's outputs with reference outputs, batch by batch. */
export function compareOutputs(forward: (x: Float32Array, b: number) => Float32Array, rows: Iterable<{ x: Float32Array; batch: number }>,
  ref: Float32Array, labels: Int32Array | null): { noise: number; agreement: number; accuracy: number | null; count: number } {
  let noise = 0, agree = 0, correct = 0, r0 = 0;
  let C = 0;
  for (const { x, batch } of rows) {
    const y = forward(x, batch);
    C = y.length / batch;
    for (let i = 0; i < batch; i++) {
      let bq = 0, bf = 0;
      const off = i * C, roff = (r0 + i) * C;
      for (let k = 0; k < C; k++) {
        const d = y[off + k] - ref[roff + k];
        noise += d * d;
        if (y[off + k] > y[off + bq]) bq = k;
        if (ref[roff + k] > ref[roff + bf]) bf = k;
      }
      if (bq === bf) agree++;
      if (labels && bq === labels[r0 + i]) correct++;
    }
    r0 += batch;
  }
  return { noise, agreement: r0 > 0 ? agree / r0 : 0, accuracy: labels ? correct / r0 : null, count: r0 };
}

/** Top-1 accuracy of logits y [rows, C] (first maximum on ties, as compareOutputs). */
export function accuracyOf(y: Float32Array, rows: number, labels: Int32Array): number {
  const C = y.length / rows;
  let ok = 0;
  for (let i = 0; i < rows; i++) {
    let b = 0;
    for (let k = 1; k < C; k++) if (y[i * C + k] > y[i * C + b]) b = k;
    if (b === labels[i]) ok++;
  }
  return ok / rows;
}

/** Runs the sensitivity analysis (the model must be in eval mode). */
export function runSensitivity(model: Seq, ls: readonly Leaf[], s: SensitivityInput): SensitivityAnalysis {
  const linear = ls.filter((l) => l.module instanceof nn.Linear).map((l) => l.name);
  // The rows compared: eval rows, or the calibration batches (their float outputs kept: rows x outputs).
  const rowsOf = (): Iterable<{ x: Float32Array; batch: number }> => {
    if (!s.evalData) return s.calibrationData.read();
    const { x, rows } = s.evalData;
    const F = x.length / rows;
    const B = s.batchSize;
    return (function* () {
      for (let r = 0; r < rows; r += B) {
        const n = Math.min(B, rows - r);
        yield { x: x.subarray(r * F, (r + n) * F), batch: n };
      }
    })();
  };
  const parts: Float32Array[] = [];
  let rows = 0;
  for (const { x, batch } of rowsOf()) {
    parts.push(model.forward(x, batch).slice());
    rows += batch;
  }
  const ref = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) { ref.set(p, off); off += p.length; }
  let signal = 0;
  for (let i = 0; i < ref.length; i++) signal += ref[i] * ref[i];
  const labels = s.evalData?.labels ?? null;
  const floatAcc = labels ? accuracyOf(ref, rows, labels) : null;

  const base: QuantizeModelOptions = { mode: s.mode };
  if (s.granularity !== null) base.granularity = s.granularity;
  if (s.mode === 'static') base.observer = s.observer;
  const quantize = (bits: number, layers: Record<string, { mode: 'float' }>): QuantizedModel => {
    const opts: QuantizeModelOptions = { ...base, bits, layers };
    if (s.mode === 'static') opts.calibrationData = s.calibrationData.read();
    return quantizeModel(model, opts);
  };
  const floatQ = quantizeModel(model, { mode: 'float' });
  const layerBytes: SensitivityAnalysis['layerBytes'] = {};
  let otherBytes = 0;
  for (const r of floatQ.summary()) {
    if (r.type === 'Linear') layerBytes[r.name] = { float: r.bytes, bits: {} };
    else otherBytes += r.bytes;
  }

  const total = s.bits.length * (1 + linear.length + (linear.length > 1 ? linear.length : 0));
  let done = 0;
  const measure = (kind: SensitivityRun['kind'], layer: string | null, bits: number, q: QuantizedModel): SensitivityRun => {
    const c = compareOutputs((x, b) => q.forward(x, b), rowsOf(), ref, labels);
    s.onProgress?.(++done, total);
    return {
      kind, layer, bits, bytes: q.byteLength, noise: c.noise, sqnrDb: sqnrDb(signal, c.noise), agreement: c.agreement,
      accuracy: c.accuracy, accuracyDrop: c.accuracy === null || floatAcc === null ? null : (floatAcc - c.accuracy) * 100,
    };
  };
  const allFloatBut = (keep: string | null): Record<string, { mode: 'float' }> => {
    const o: Record<string, { mode: 'float' }> = {};
    for (const n of linear) if (keep !== null && n !== keep) o[n] = { mode: 'float' };
    return o;
  };
  const uniform: SensitivityRun[] = [], single: SensitivityRun[] = [], allBut: SensitivityRun[] = [];
  for (const b of s.bits) {
    const q = quantize(b, {});
    for (const r of q.summary()) if (r.type === 'Linear') layerBytes[r.name].bits[String(b)] = r.bytes;
    uniform.push(measure('uniform', null, b, q));
  }
  for (const l of linear) for (const b of s.bits) single.push(measure('single', l, b, quantize(b, allFloatBut(l))));
  if (linear.length > 1) {
    for (const l of linear) for (const b of s.bits) allBut.push(measure('all-but', l, b, quantize(b, { [l]: { mode: 'float' } })));
  }
  return {
    data: s.evalData ? 'eval' : 'calibration', rows, labels: labels !== null, mode: s.mode, bits: s.bits.slice(), layers: linear, signal,
    float: { accuracy: floatAcc, bytes: model.numParameters() * 4 }, layerBytes, otherBytes, uniform, single, allBut,
  };
}
