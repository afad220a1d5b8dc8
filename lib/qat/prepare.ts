// prepareQAT: a trainable copy of a Sequential in which every Linear fake-quantizes its weight and
// its input, at the places quantizeModel(..., { mode: 'static' }) quantizes: the input of every
// Linear (uint8 codes flow between the int8 GEMMs; a ReLU after a Linear is fused into the
// requantizing clamp, which fake-quantizing the ReLU's output at the next Linear's input models
// exactly) and each Linear's weight. See docs/qat.md.
import { checkOneOf, checkOptions, describe, rangeError, typeError } from '../errors';
import { granularityLayout } from '../layout';
import { FakeQuantize, FakeQuantizeOptions, LearnableFakeQuantize } from '../nn/fake-quantize';
import { Linear } from '../nn/layers';
import { checkBatch, Module, Parameter } from '../nn/module';
import { matmul } from '../nn/ops';
import { Sequential } from '../nn/sequential';
import { Observer } from '../observers/base';
import { layerSpec, moduleFromSpec } from '../ptq/graph';
import { QuantSpec, ResolvedSpec } from '../spec';
import { QuantizedTensor, quantizeWithQParams } from '../tensor';

/** An observer by name, or a factory giving a new observer per layer and role. */
export type QATObserverChoice = 'moving-average' | 'minmax' | ((layer: string, role: 'weight' | 'activation') => Observer);

/** How one tensor (a Linear's weight or its input) is fake-quantized. */
export interface QATTensorOptions {
  scheme?: QuantSpec['scheme'];
  /** 2..8. */
  bits?: number;
  signed?: boolean;
  range?: QuantSpec['range'];
  /** Default 'pytorch' (PyTorch's observer formulas and x * (1 / scale) rounding; learnable requires it). */
  formula?: QuantSpec['formula'];
  /** Weights: 'per-channel' (one scale per output feature, default) or 'per-tensor'. Activations: 'per-tensor' only. */
  granularity?: 'per-channel' | 'per-tensor';
  /** FakeQuantize (learnable false): the observer (default: options.observer, else 'moving-average'). */
  observer?: QATObserverChoice;
  /** FakeQuantize with observer 'moving-average': weight of each new batch (weights default 1: the current weight's range; activations 0.01). */
  averagingConstant?: number;
  /** LearnableFakeQuantize: the initial qparams' observer, 'minmax' (default) or 'mse'. */
  init?: 'minmax' | 'mse';
  /** LearnableFakeQuantize: LSQ's gradient scaling (default true). */
  gradScaling?: boolean;
}

/** Per-layer settings (keys of PrepareQATOptions.layers are Linear names such as '1' or '2.0'). */
export interface QATLayerOverride {
  /** 'static' (default): fake-quantized, converted to a requantizing int8 GEMM; 'float': left a plain float Linear. */
  mode?: 'static' | 'float';
  weight?: QATTensorOptions;
  activation?: QATTensorOptions;
  learnable?: boolean;
  observer?: QATObserverChoice;
}

export interface PrepareQATOptions {
  /** Default: symmetric int8 (codes -127..127), one scale per output feature, observer 'moving-average' with averagingConstant 1. */
  weight?: QATTensorOptions;
  /** Default: asymmetric uint8 (codes 0..255) per tensor, observer 'moving-average' (averagingConstant 0.01). */
  activation?: QATTensorOptions;
  /** LSQ (LearnableFakeQuantize) for weights and activations instead of observers and the STE (default false). */
  learnable?: boolean;
  /** Per-layer overrides by Linear name (fields given there replace the model-wide ones). */
  layers?: Record<string, QATLayerOverride>;
  /** Default observer of weights and activations (FakeQuantize): 'moving-average' (default), 'minmax' or a factory. */
  observer?: QATObserverChoice;
}

const OPTS = ['weight', 'activation', 'learnable', 'layers', 'observer'] as const;
const LAYER_OPTS = ['mode', 'weight', 'activation', 'learnable', 'observer'] as const;
const TENSOR_OPTS = ['scheme', 'bits', 'signed', 'range', 'formula', 'granularity', 'observer', 'averagingConstant', 'init', 'gradScaling'] as const;

type FQ = FakeQuantize | LearnableFakeQuantize;

/** Weight qparams of a QATLinear (what the int8 layer stores). */
export interface QATWeightQParams {
  /** One per output feature ('per-channel') or one. */
  scale: Float32Array;
  zeroPoint: Int32Array;
  granularity: 'per-channel' | 'per-tensor';
  scheme: QuantSpec['scheme'];
  bits: number;
  signed: boolean;
  range: QuantSpec['range'];
  qmin: number;
  qmax: number;
  formula: QuantSpec['formula'];
}

/** Input (activation) qparams of a QATLinear: unsigned codes qmin..qmax, per tensor. */
export interface QATActQParams {
  scale: number;
  zeroPoint: number;
  scheme: QuantSpec['scheme'];
  bits: number;
  qmin: number;
  qmax: number;
  formula: QuantSpec['formula'];
}

function checkObserverChoice(name: string, v: unknown): QATObserverChoice {
  if (typeof v === 'function') return v as QATObserverChoice;
  return checkOneOf(name, v, ['moving-average', 'minmax'] as const);
}

function checkTensorOptions(name: string, v: unknown): QATTensorOptions {
  const o = checkOptions(name, v, TENSOR_OPTS) as QATTensorOptions;
  if (o.granularity !== undefined) checkOneOf(`${name}.granularity`, o.granularity, ['per-channel', 'per-tensor'] as const);
  if (o.observer !== undefined) checkObserverChoice(`${name}.observer`, o.observer);
  if (o.init !== undefined) checkOneOf(`${name}.init`, o.init, ['minmax', 'mse'] as const);
  if (o.gradScaling !== undefined && typeof o.gradScaling !== 'boolean') throw typeError(`${name}.gradScaling`, 'a boolean', o.gradScaling);
  return { ...o };
}

interface TensorPlan {
  opts: QATTensorOptions;
  learnable: boolean;
  observer: QATObserverChoice;
  /** Where the options came from (for messages). */
  where: string;
}

interface LayerPlan {
  mode: 'static' | 'float';
  weight: TensorPlan;
  activation: TensorPlan;
}

/** Options of one fake-quantize module from a plan; role decides defaults and checks. */
function makeFakeQuant(plan: TensorPlan, layer: string, role: 'weight' | 'activation', channels: number): FQ {
  const o = plan.opts;
  const where = plan.where;
  const perChannel = role === 'weight' && (o.granularity ?? 'per-channel') === 'per-channel';
  if (role === 'activation' && o.granularity === 'per-channel') {
    throw rangeError(`${where}.granularity`, "'per-tensor' (the int8 GEMM takes one input scale and zero point)", "'per-channel'");
  }
  const spec: Partial<QuantSpec> = {
    scheme: o.scheme ?? (role === 'weight' ? 'symmetric' : 'asymmetric'),
    bits: o.bits ?? 8,
    formula: o.formula ?? 'pytorch',
    granularity: perChannel ? { axis: 0 } : 'per-tensor',
  };
  if (o.signed !== undefined) spec.signed = o.signed;
  else if (role === 'activation') spec.signed = false;
  if (o.range !== undefined) spec.range = o.range;
  if (role === 'activation' && (o.signed ?? false)) {
    throw rangeError(`${where}.signed`, 'false (activations flow between the int8 GEMMs as unsigned codes)', 'true');
  }
  if (plan.learnable) {
    for (const k of ['observer', 'averagingConstant'] as const) {
      if (o[k] !== undefined) throw typeError(`${where}.${k}`, `undefined (learnable fake-quant has no observer; it takes 'init')`, o[k]);
    }
    try {
      return new LearnableFakeQuantize({ ...spec, init: o.init, gradScaling: o.gradScaling, ...(perChannel ? { channels } : {}) });
    } catch (e) {
      throw renamed(e, where);
    }
  }
  for (const k of ['init', 'gradScaling'] as const) {
    if (o[k] !== undefined) throw typeError(`${where}.${k}`, `undefined (it configures learnable fake-quant: learnable is false)`, o[k]);
  }
  const choice = o.observer ?? plan.observer;
  const fo: FakeQuantizeOptions = { ...spec };
  if (typeof choice === 'function') {
    const ob = choice(layer, role);
    if (!(ob instanceof Observer)) throw typeError(`observer('${layer}', '${role}')`, 'an Observer', ob);
    if (ob.stats().count > 0) throw new TypeError(`Expected a new Observer for observer('${layer}', '${role}') but received one that has seen ${ob.stats().count} values (reset() it first)`);
    if (o.averagingConstant !== undefined) throw typeError(`${where}.averagingConstant`, "undefined (the observer is a factory's)", o.averagingConstant);
    fo.observer = ob;
  } else {
    fo.observer = choice;
    const c = o.averagingConstant ?? (role === 'weight' && choice === 'moving-average' ? 1 : undefined);
    if (c !== undefined) fo.averagingConstant = c;
  }
  try {
    return new FakeQuantize(fo);
  } catch (e) {
    throw renamed(e, where);
  }
}

/** Re-labels the option names of a module's error ("opts.bits") with where they were given. */
function renamed(e: unknown, where: string): Error {
  if (!(e instanceof Error)) return e as Error;
  const m = e.message.replace(/\bopts\.(?!observer\.spec)/g, `${where}.`);
  return e instanceof RangeError ? new RangeError(m) : e instanceof TypeError ? new TypeError(m) : new Error(m);
}

/**
 * A Linear that fake-quantizes its input (inputFakeQuant, child 'input_fake_quant') and its
 * weight (weightFakeQuant, child 'weight_fake_quant') in the forward: y = fq(x) fq(W)^T + b.
 * Parameters: 'weight', 'bias', and the learnable modules' 'scale' / 'zero_point'.
 */
export class QATLinear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly inputFakeQuant: FQ;
  readonly weightFakeQuant: FQ;
  private saved: { xq: Float32Array; wq: Float32Array; batch: number } | null = null;

  /**
   * From a float Linear (its weight and bias are copied) and the two fake-quantize modules: the
   * weight's is per tensor or per row ({ axis: 0 }: one scale per output feature), the input's
   * per tensor with unsigned codes. The weight module observes (or initialises from) the weight
   * once here, so the layer evaluates before any training step.
   */
  constructor(linear: Linear, fakeQuant: { weight: FQ; input: FQ }) {
    super();
    if (!(linear instanceof Linear)) throw typeError('linear', 'a Linear', linear);
    const fq = checkOptions('fakeQuant', fakeQuant, ['weight', 'input']);
    const w = fq.weight, a = fq.input;
    for (const [n, m] of [['fakeQuant.weight', w], ['fakeQuant.input', a]] as const) {
      if (!(m instanceof FakeQuantize) && !(m instanceof LearnableFakeQuantize)) throw typeError(n, 'a FakeQuantize or LearnableFakeQuantize', m);
    }
    const W = w as FQ, A = a as FQ;
    if (W === A) throw new TypeError('Expected two different modules for fakeQuant.weight and fakeQuant.input but received the same one');
    const wg = W.spec.granularity;
    if (wg !== 'per-tensor' && (wg as { axis: number }).axis !== 0) {
      throw rangeError('fakeQuant.weight.granularity', "'per-tensor' or { axis: 0 } (one scale per output feature)", JSON.stringify(wg));
    }
    if (A.spec.granularity !== 'per-tensor' || A.spec.signed) {
      throw rangeError('fakeQuant.input', 'per-tensor fake-quant of unsigned codes (the int8 GEMM takes one input scale and zero point, and uint8 codes)', `${JSON.stringify(A.spec.granularity)}, signed ${A.spec.signed}`);
    }
    if (W instanceof LearnableFakeQuantize && W.scale.numel !== (wg === 'per-tensor' ? 1 : linear.outFeatures)) {
      throw rangeError('fakeQuant.weight', `a LearnableFakeQuantize with ${wg === 'per-tensor' ? 1 : linear.outFeatures} channels`, `${W.scale.numel} channels`);
    }
    this.inFeatures = linear.inFeatures;
    this.outFeatures = linear.outFeatures;
    this.weight = new Parameter([linear.outFeatures, linear.inFeatures], linear.weight.data.slice());
    this.bias = linear.bias ? new Parameter([linear.outFeatures], linear.bias.data.slice()) : null;
    this.ownParams.push(['weight', this.weight]);
    if (this.bias) this.ownParams.push(['bias', this.bias]);
    this.inputFakeQuant = A;
    this.weightFakeQuant = W;
    this.childModules.push(['input_fake_quant', A], ['weight_fake_quant', W]);
    // The weight's qparams from the weight itself (identical to what the first training forward
    // computes: observing the same values again leaves a min/max or moving-average observer as it is).
    const mode = W.training;
    W.train(true);
    if (!(W instanceof FakeQuantize && !W.observerEnabled)) W.forward(this.weight.data, this.outFeatures);
    W.train(mode);
    this.train(linear.training);
  }

  forward(x: Float32Array, batch: number): Float32Array {
    checkBatch(x, batch, this.inFeatures);
    const xq = this.inputFakeQuant.forward(x, batch);
    const wq = this.weightFakeQuant.forward(this.weight.data, this.outFeatures);
    const O = this.outFeatures;
    this.saved = { xq, wq, batch };
    return matmul(xq, wq, batch, this.inFeatures, O, false, true, new Float32Array(batch * O), this.bias?.data);
  }

  backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null {
    const sv = this.saved;
    if (!sv) throw new Error('QATLinear.backward called before forward');
    const B = sv.batch, I = this.inFeatures, O = this.outFeatures;
    if (dy.length !== B * O) throw rangeError('dy', `length ${B * O} (the QATLinear output of the last forward)`, describe(dy));
    // dL/dWq [O, I] = dy^T x_q; through the weight's fake-quant to dL/dW (and its scale / zero point)
    const gwq = matmul(dy, sv.xq, O, B, I, true, false);
    this.weightFakeQuant.backwardAccumulate(gwq, this.weight.grad); // weight.grad += its dx
    if (this.bias) {
      const gb = this.bias.grad;
      for (let r = 0; r < B; r++) {
        const o = r * O;
        for (let j = 0; j < O; j++) gb[j] += dy[o + j];
      }
    }
    // dL/dx_q = dy W_q, then the input's fake-quant (a learnable one needs it for its own gradients)
    if (!inputGrad && !(this.inputFakeQuant instanceof LearnableFakeQuantize)) return null;
    const gxq = matmul(dy, sv.wq, B, O, I, false, false);
    return this.inputFakeQuant.backwardImpl(gxq, inputGrad);
  }

  /** The weight's spec as the fake-quant module resolved it. */
  private get wspec(): ResolvedSpec {
    return this.weightFakeQuant.spec;
  }

  /**
   * The qparams the forward uses now (in eval mode: frozen): the weight's (per output feature or
   * per tensor) and the input's. Throws before the input's fake-quant has any (no training forward yet).
   */
  qparams(): { weight: QATWeightQParams; input: QATActQParams } {
    const wq = qparamsOf(this.weightFakeQuant, 'weight');
    const aq = qparamsOf(this.inputFakeQuant, 'input');
    const ws = this.wspec, as = this.inputFakeQuant.spec;
    return {
      weight: {
        scale: wq.scale, zeroPoint: wq.zeroPoint, granularity: ws.granularity === 'per-tensor' ? 'per-tensor' : 'per-channel',
        scheme: ws.scheme, bits: ws.bits, signed: ws.signed, range: ws.range, qmin: ws.qmin, qmax: ws.qmax, formula: ws.formula,
      },
      input: { scale: aq.scale[0], zeroPoint: aq.zeroPoint[0], scheme: as.scheme, bits: as.bits, qmin: as.qmin, qmax: as.qmax, formula: as.formula },
    };
  }

  /**
   * The weight's codes with its current qparams, as a QuantizedTensor [outFeatures, inFeatures]
   * (packed two per byte at 4 bits or fewer). Its dequantize() is the fake-quantized weight the
   * forward uses, bit for bit.
   */
  quantizedWeight(): QuantizedTensor {
    const q = qparamsOf(this.weightFakeQuant, 'weight');
    const shape = [this.outFeatures, this.inFeatures];
    const L = granularityLayout('weight', this.wspec.granularity, shape, this.weight.numel);
    return quantizeWithQParams(this.weight.data, shape, this.wspec, L, q.scale, q.zeroPoint);
  }

  toString(): string {
    const ws = this.wspec, as = this.inputFakeQuant.spec;
    const kind = this.weightFakeQuant instanceof LearnableFakeQuantize ? 'lsq' : 'ste';
    return `QATLinear(in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias !== null}, ` +
      `weight=${ws.scheme} ${ws.bits}-bit ${ws.granularity === 'per-tensor' ? 'per-tensor' : 'per-channel'}, input=${as.scheme} ${as.bits}-bit, ${kind})`;
  }
}

function qparamsOf(m: FQ, what: string): { scale: Float32Array; zeroPoint: Int32Array } {
  if (m instanceof LearnableFakeQuantize) {
    if (!m.initialized) throw new Error(`QATLinear: the ${what} fake-quant has no qparams yet (run a training forward first)`);
    return m.calculateQParams();
  }
  const q = m.qparams;
  if (q === null) throw new Error(`QATLinear: the ${what} fake-quant has no qparams yet (its observer has seen nothing: run a training forward first)`);
  return q;
}

/** Dotted names of a Sequential's leaves, in order, with their modules. */
function leaves(m: Module, prefix: string, out: { name: string; module: Module }[]): void {
  if (m instanceof Sequential) {
    for (const [n, c] of m.children()) leaves(c, prefix === '' ? n : `${prefix}.${n}`, out);
    return;
  }
  out.push({ name: prefix, module: m });
}

/** A detached copy of a layer (same parameters, same training mode). */
function cloneLayer(m: Module, name: string): Module {
  if (m instanceof QATLinear || m instanceof FakeQuantize || m instanceof LearnableFakeQuantize) {
    throw typeError(`model layer '${name}'`, 'a float nn layer (this model was already prepared for QAT)', m);
  }
  const c = moduleFromSpec(layerSpec(m, `model layer '${name}'`));
  c.loadStateDict(m.stateDict());
  return c.train(m.training);
}

/**
 * Quantization-aware training: returns a new trainable model (the float model is left as it was)
 * in which every Linear is a QATLinear that fake-quantizes its weight (default: symmetric int8,
 * one scale per output feature) and its input (default: asymmetric uint8 per tensor), exactly where
 * quantizeModel(..., { mode: 'static' }) quantizes. Train it with the existing optimizers and
 * losses; eval() freezes the observers.
 */
export function prepareQAT(model: Sequential, options?: PrepareQATOptions): Sequential {
  if (!(model instanceof Sequential)) {
    if ((model as unknown) instanceof Module) throw new TypeError(`Expected a Sequential for model but received ${(model as object).constructor.name} (wrap it: new Sequential(layer))`);
    throw typeError('model', 'a Sequential', model);
  }
  const o = checkOptions('options', options, OPTS) as PrepareQATOptions;
  const weight = o.weight === undefined ? {} : checkTensorOptions('options.weight', o.weight);
  const activation = o.activation === undefined ? {} : checkTensorOptions('options.activation', o.activation);
  if (o.learnable !== undefined && typeof o.learnable !== 'boolean') throw typeError('options.learnable', 'a boolean', o.learnable);
  const learnable = o.learnable ?? false;
  const observer = o.observer === undefined ? 'moving-average' : checkObserverChoice('options.observer', o.observer);

  const all: { name: string; module: Module }[] = [];
  leaves(model, '', all);
  const linearNames = all.filter((l) => l.module instanceof Linear).map((l) => l.name);
  const plans = new Map<string, LayerPlan>();
  const base = (name: string, ov?: QATLayerOverride): LayerPlan => {
    const f = ov ? `options.layers['${name}']` : 'options';
    const l = ov?.learnable ?? learnable;
    const obs = ov?.observer ?? observer;
    return {
      mode: ov?.mode ?? 'static',
      weight: { opts: { ...weight, ...(ov?.weight ?? {}) }, learnable: l, observer: obs, where: ov?.weight ? `${f}.weight` : 'options.weight' },
      activation: { opts: { ...activation, ...(ov?.activation ?? {}) }, learnable: l, observer: obs, where: ov?.activation ? `${f}.activation` : 'options.activation' },
    };
  };
  if (o.layers !== undefined) {
    if (typeof o.layers !== 'object' || o.layers === null || Array.isArray(o.layers)) throw typeError('options.layers', 'an object of per-layer overrides keyed by layer name', o.layers);
    for (const [name, v] of Object.entries(o.layers as Record<string, unknown>)) {
      const field = `options.layers['${name}']`;
      if (!linearNames.includes(name)) throw rangeError('options.layers', `names of Linear layers (${linearNames.map((n) => `'${n}'`).join(', ')})`, `'${name}'`);
      const lo = checkOptions(field, v, LAYER_OPTS);
      const ov: QATLayerOverride = {};
      if (lo.mode !== undefined) ov.mode = checkOneOf(`${field}.mode`, lo.mode, ['static', 'float'] as const);
      if (lo.weight !== undefined) ov.weight = checkTensorOptions(`${field}.weight`, lo.weight);
      if (lo.activation !== undefined) ov.activation = checkTensorOptions(`${field}.activation`, lo.activation);
      if (lo.learnable !== undefined) {
        if (typeof lo.learnable !== 'boolean') throw typeError(`${field}.learnable`, 'a boolean', lo.learnable);
        ov.learnable = lo.learnable;
      }
      if (lo.observer !== undefined) ov.observer = checkObserverChoice(`${field}.observer`, lo.observer);
      plans.set(name, base(name, ov));
    }
  }
  const planOf = (name: string): LayerPlan => plans.get(name) ?? base(name);

  const seen = new Set<Observer>();
  const build = (m: Module, prefix: string): Module => {
    if (m instanceof Sequential) {
      const s = new Sequential();
      for (const [n, c] of m.children()) s.add(build(c, prefix === '' ? n : `${prefix}.${n}`));
      return s.train(m.training);
    }
    if (!(m instanceof Linear)) return cloneLayer(m, prefix);
    const p = planOf(prefix);
    if (p.mode === 'float') return cloneLayer(m, prefix);
    for (const [pn, prm] of m.namedParameters()) {
      const bad = prm.data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw rangeError(`model layer '${prefix}' ${pn}`, 'finite values', `${prm.data[bad]} at element ${bad}`);
    }
    const wf = makeFakeQuant(p.weight, prefix, 'weight', m.outFeatures);
    const af = makeFakeQuant(p.activation, prefix, 'activation', 1);
    for (const f of [wf, af]) {
      if (f instanceof FakeQuantize) {
        if (seen.has(f.observer)) throw new TypeError(`Expected a new Observer for layer '${prefix}' but received the one of another fake-quant (each needs its own)`);
        seen.add(f.observer);
      }
    }
    return new QATLinear(m, { weight: wf, input: af });
  };
  const out = build(model, '') as Sequential;
  return out.train(true);
}

/** The QATLinears of a prepared model with their dotted names, in order. */
export function qatLayers(model: Module): { name: string; layer: QATLinear }[] {
  const all: { name: string; module: Module }[] = [];
  leaves(model, '', all);
  const out: { name: string; layer: QATLinear }[] = [];
  for (const l of all) if (l.module instanceof QATLinear) out.push({ name: l.name, layer: l.module });
  return out;
}
