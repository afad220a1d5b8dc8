// convertQAT: the static int8 QuantizedModel of a trained QAT model (prepareQAT), built by the PTQ
// registry's buildQuantizedModel from the trained weights and the learned / observed qparams; and
// conversionBound, the worst-case difference between its logits and the QAT model's eval forward.
// See docs/qat.md, "Conversion".
import { checkOneOf, checkOptions, rangeError, typeError } from '../errors';
import { FakeQuantize, LearnableFakeQuantize } from '../nn/fake-quantize';
import { Dropout, Identity, Linear, ReLU } from '../nn/layers';
import { Module } from '../nn/module';
import { Sequential } from '../nn/sequential';
import { layerSpec, moduleFromSpec } from '../ptq/graph';
import { StaticStage, weightQuantSpec } from '../ptq/linear';
import { QuantizedModel } from '../ptq/qmodel';
import { buildQuantizedModel, LayerOverride, planQuantization, QuantizeProgress } from '../ptq/quantize-model';
import type { WeightQParams } from '../ptq/registry';
import { ActQParams } from '../ptq/stages';
import { resolveSpec } from '../spec';
import { QATActQParams, QATLinear, qatLayers, QATWeightQParams } from './prepare';

export interface ConvertQATOptions {
  /**
   * How each GEMM's output is requantized to the next layer's codes: 'int' (the int8 GEMM's
   * requantizing epilogue with an int32 bias, as quantizeModel's static layers and ONNX
   * QLinearMatMul) or 'float' (the float32 epilogue with the float bias, then the fake-quant's
   * rounding: the QAT forward's arithmetic on the exact int32 accumulator; not exportable to ONNX).
   * Default 'float': the converted model is the QAT model's arithmetic. With 'int', the int32
   * bias's rounding (up to half an accumulator step) flips a code now and then, which at 2-bit
   * weights or 4-bit activations changes the class of ~0.1-0.2 % of the images (docs/qat.md).
   */
  requantize?: 'int' | 'float';
  onProgress?: (p: QuantizeProgress) => void;
}

interface LayerQ {
  name: string;
  layer: QATLinear;
  weight: QATWeightQParams;
  input: QATActQParams;
}

/** The trained QAT layers with their qparams; the errors a model that cannot be converted gives. */
function qatParams(model: unknown): LayerQ[] {
  if (!(model instanceof Sequential)) {
    if (model instanceof Module) throw new TypeError(`Expected a QAT model (a Sequential from prepareQAT) for model but received ${(model as object).constructor.name}`);
    throw typeError('model', 'a QAT model (a Sequential from prepareQAT)', model);
  }
  const layers = qatLayers(model);
  if (layers.length === 0) {
    throw new TypeError('Expected a QAT model (prepareQAT(model) gives one) for model but received a Sequential without QATLinear layers (quantizeModel quantizes a float model)');
  }
  const out: LayerQ[] = [];
  for (const { name, layer } of layers) {
    let q: ReturnType<QATLinear['qparams']>;
    try {
      q = layer.qparams();
    } catch (e) {
      throw new Error(`convertQAT: layer '${name}' cannot be converted: ${(e as Error).message.replace(/^QATLinear: /, '')}. Train the QAT model (a training-mode forward sets the observers' qparams) before converting`);
    }
    for (const [pn, p] of layer.namedParameters()) {
      const bad = p.data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw rangeError(`model layer '${name}' ${pn}`, 'finite values (did training diverge?)', `${p.data[bad]} at element ${bad}`);
    }
    out.push({ name, layer, weight: q.weight, input: q.input });
  }
  return out;
}

/** A float copy of the QAT model: each QATLinear a Linear with its trained weight and bias. */
function floatCopy(m: Module, prefix: string): Module {
  if (m instanceof Sequential) {
    const s = new Sequential();
    for (const [n, c] of m.children()) s.add(floatCopy(c, prefix === '' ? n : `${prefix}.${n}`));
    return s.eval();
  }
  if (m instanceof QATLinear) {
    const l = new Linear(m.inFeatures, m.outFeatures, { bias: m.bias !== null, rng: 0 });
    l.weight.data.set(m.weight.data);
    if (m.bias) l.bias!.data.set(m.bias.data);
    return l.eval();
  }
  if (m instanceof FakeQuantize || m instanceof LearnableFakeQuantize) {
    throw typeError(`model layer '${prefix}'`, 'a QATLinear or a float layer (a fake-quant module on its own has no int8 counterpart)', m);
  }
  const c = moduleFromSpec(layerSpec(m, `model layer '${prefix}'`));
  c.loadStateDict(m.stateDict());
  return c.eval();
}

/**
 * The static int8 model of a trained QAT model (from prepareQAT): every QATLinear becomes a
 * requantizing int8 GEMM with the trained weight quantized with the learned or observed weight
 * qparams (codes below 8 bits stored as such, two per byte at 4 bits or fewer) and the input
 * qparams the QAT forward used. A float input is quantized as the fake-quant did (PyTorch's
 * x * float32(1 / scale) rounding into qmin..qmax); each requantized output is clamped to the next
 * layer's activation codes. Layers left float in prepareQAT stay float. The QAT model is not changed.
 * Its predictions match the QAT model's eval forward up to rounding (conversionBound).
 */
export function convertQAT(model: Sequential, options?: ConvertQATOptions): QuantizedModel {
  const layers = qatParams(model);
  const o = checkOptions('options', options, ['requantize', 'onProgress']) as ConvertQATOptions;
  const requantize = requantizeOf(o.requantize);
  const formula = layers[0].weight.formula;
  const overrides: Record<string, LayerOverride> = {};
  const inputQParams: Record<string, ActQParams> = {};
  const weightQParams: Record<string, WeightQParams> = {};
  for (const { name, weight: w, input: a } of layers) {
    if (w.formula !== formula) {
      throw rangeError(`model layer '${name}' weight formula`, `'${formula}' (as layer '${layers[0].name}': a quantized model rounds every weight with one formula)`, `'${w.formula}'`);
    }
    const settings = { bits: w.bits, granularity: w.granularity, scheme: w.scheme } as const;
    const rs = resolveSpec('weight', weightQuantSpec(settings, formula));
    if (rs.signed !== w.signed || rs.qmin !== w.qmin || rs.qmax !== w.qmax) {
      throw rangeError(`model layer '${name}' weight`, `codes ${rs.qmin}..${rs.qmax} (${w.scheme} ${w.bits}-bit weights of a quantized model: signed ${rs.signed}, range ${rs.range})`, `codes ${w.qmin}..${w.qmax} (signed ${w.signed}, range ${w.range})`);
    }
    if (a.qmin < 0 || a.qmax > 255) throw rangeError(`model layer '${name}' input`, 'unsigned codes within 0..255', `${a.qmin}..${a.qmax}`);
    overrides[name] = { mode: 'static', ...settings };
    inputQParams[name] = { scale: a.scale, zeroPoint: a.zeroPoint, qmin: a.qmin, qmax: a.qmax, formula: a.formula };
    weightQParams[name] = { scale: w.scale, zeroPoint: w.zeroPoint, bits: w.bits };
  }
  const float = floatCopy(model, '') as Sequential;
  // Linears left float in prepareQAT stay float.
  const collect = (m: Module, prefix: string): void => {
    if (m instanceof Sequential) {
      for (const [n, c] of m.children()) collect(c, prefix === '' ? n : `${prefix}.${n}`);
    } else if (m instanceof Linear && overrides[prefix] === undefined) overrides[prefix] = { mode: 'float' };
  };
  collect(float, '');
  const plan = planQuantization(float, { mode: 'static', formula, layers: overrides, onProgress: o.onProgress });
  const qm = buildQuantizedModel(plan, { inputQParams, weightQParams });
  // The stored codes are the QAT forward's (quantizeWithQParams with the same spec and qparams).
  for (const { name, layer } of layers) {
    const st = qm.stages.find((s) => s.name === name);
    if (!(st instanceof StaticStage)) throw new Error(`internal: layer '${name}' did not become a static stage`);
    const a = st.weight.tensor.data, b = layer.quantizedWeight().data;
    if (a.length !== b.length || a.some((v, i) => v !== b[i])) throw new Error(`internal: the converted codes of layer '${name}' are not the QAT forward's`);
    st.requantize = requantize;
  }
  return qm;
}

/** options.requantize, or its default 'float'. */
function requantizeOf(v: unknown): 'int' | 'float' {
  return v === undefined ? 'float' : checkOneOf('options.requantize', v, ['int', 'float'] as const);
}

const U = 2 ** -24;

/**
 * Worst-case |converted logit - QAT eval logit| per output, for any input, of convertQAT(model)
 * against model's eval forward (docs/qat.md, "Conversion": the derivation). For chains of
 * QATLinear layers with ReLU (and pass-through layers) between them, ending in a QATLinear.
 */
export function conversionBound(model: Sequential, options?: { requantize?: 'int' | 'float' }): Float64Array {
  const layers = qatParams(model);
  const o = checkOptions('options', options, ['requantize']);
  const intBias = requantizeOf(o.requantize) === 'int';
  const seq: Module[] = [];
  const flat = (m: Module): void => {
    if (m instanceof Sequential) for (const [, c] of m.children()) flat(c);
    else seq.push(m);
  };
  flat(model);
  const kinds = seq.filter((m) => !isPass(m));
  for (const m of kinds) {
    if (!(m instanceof QATLinear) && !(m instanceof ReLU)) {
      throw typeError('model', 'a chain of QATLinear layers with ReLU between them (conversionBound covers these)', m);
    }
  }
  if (!(kinds[kinds.length - 1] instanceof QATLinear)) throw typeError('model', 'a model ending in a QATLinear (its float output is what the bound covers)', kinds[kinds.length - 1]);
  let D = 0; // max difference of the current layer's input values between the two models
  let out = new Float64Array(0);
  layers.forEach(({ layer, weight: w, input: a }, li) => {
    const K = layer.inFeatures, N = layer.outFeatures;
    const wq = layer.quantizedWeight().dequantize();
    const b = layer.bias?.data;
    const X = a.scale * Math.max(a.zeroPoint - a.qmin, a.qmax - a.zeroPoint);
    const gamma = ((K + 3) * U) / (1 - (K + 3) * U) + 5 * U;
    const next = layers[li + 1];
    out = new Float64Array(N);
    let Dn = 0;
    for (let j = 0; j < N; j++) {
      let l1 = 0;
      for (let k = 0; k < K; k++) l1 += Math.abs(wq[j * K + k]);
      const A = X * l1 + (b ? Math.abs(b[j]) : 0);
      const E = l1 * D + gamma * A;
      if (next) {
        const sw = w.scale[w.scale.length === 1 ? 0 : j];
        // Bias rounding to int32 (half an accumulator step; requantize 'int' only), then each
        // model's rounding to the next codes (half a step each): one output step in all.
        const e = E + (intBias ? 0.5 * a.scale * sw : 0) + next.input.scale;
        if (e > Dn) Dn = e;
      } else out[j] = E;
    }
    D = Dn;
  });
  return out;
}

function isPass(m: Module): boolean {
  return m instanceof Identity || m instanceof Dropout; // Flatten is an Identity
}
