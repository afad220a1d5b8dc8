// The registry entries of the nn layers (registry.ts registers them first, in this order, which is
// the order error messages list the types in). Linear's entry, with its quantized stages, is in
// linear.ts; every other built-in layer runs float.
import { Dropout, flatFeatures, Flatten, GELU, Identity, LayerNorm, ReLU, Sigmoid, Softmax, Tanh } from '../nn/layers';
import { Module } from '../nn/module';
import { Sequential } from '../nn/sequential';
import { LINEAR } from './linear';
import type { LayerSpec, LayerType } from './registry';
import { specBool, specInt, specNumber, specOneOf } from './spec-fields';

/** A layer without arguments or parameters: its spec is its type. */
function plain<M extends Module>(type: string, module: new () => M, extra?: Partial<LayerType<M>>): LayerType<M> {
  return { type, module, describe: () => ({ type }), check: () => ({ type }), create: () => new module(), ...extra };
}

interface GELUSpec extends LayerSpec { type: 'GELU'; approximate: 'none' | 'tanh' }
interface LayerNormSpec extends LayerSpec { type: 'LayerNorm'; normalizedShape: number; eps: number; elementwiseAffine: boolean }
interface DropoutSpec extends LayerSpec { type: 'Dropout'; p: number }

const GELU_T: LayerType<GELU, GELUSpec> = {
  type: 'GELU',
  module: GELU,
  describe: (m) => ({ type: 'GELU', approximate: m.approximate }),
  check: (field, v) => ({ type: 'GELU', approximate: specOneOf(`${field}.approximate`, v.approximate, ['none', 'tanh'] as const) }),
  create: (s) => new GELU({ approximate: s.approximate }),
};

const LAYER_NORM: LayerType<LayerNorm, LayerNormSpec> = {
  type: 'LayerNorm',
  module: LayerNorm,
  describe: (m) => ({ type: 'LayerNorm', normalizedShape: m.normalizedShape, eps: m.eps, elementwiseAffine: m.weight !== null }),
  check: (field, v) => {
    const eps = specNumber(`${field}.eps`, v.eps, 'a positive number', (x) => x > 0 && Number.isFinite(x));
    const elementwiseAffine = specBool(`${field}.elementwiseAffine`, v.elementwiseAffine);
    return { type: 'LayerNorm', normalizedShape: specInt(`${field}.normalizedShape`, v.normalizedShape), eps, elementwiseAffine };
  },
  create: (s) => new LayerNorm(s.normalizedShape, { eps: s.eps, elementwiseAffine: s.elementwiseAffine }),
  params: (s) => (s.elementwiseAffine ? [['weight', [s.normalizedShape]], ['bias', [s.normalizedShape]]] : []),
  inFeatures: (s) => s.normalizedShape,
};

const DROPOUT: LayerType<Dropout, DropoutSpec> = {
  type: 'Dropout',
  module: Dropout,
  describe: (m) => ({ type: 'Dropout', p: m.p }),
  check: (field, v) => ({ type: 'Dropout', p: specNumber(`${field}.p`, v.p, 'a number between 0 and 1', (x) => x >= 0 && x <= 1) }),
  create: (s) => new Dropout(s.p),
  passThrough: true,
};

/** An empty Sequential is a leaf (a pass-through); one with layers is flattened by leafLayers. */
const EMPTY_SEQUENTIAL = plain('Sequential', Sequential, { describe: (m) => (m.length === 0 ? { type: 'Sequential' } : null), passThrough: true });

export const BUILTIN_LAYERS: readonly LayerType[] = [
  LINEAR,
  plain('ReLU', ReLU, { relu: true }),
  plain('Tanh', Tanh),
  plain('Sigmoid', Sigmoid),
  plain('Softmax', Softmax),
  plain('Flatten', Flatten, { passThrough: true, outShape: (sh) => [sh[0], flatFeatures(sh)] }),
  plain('Identity', Identity, { passThrough: true }),
  GELU_T,
  LAYER_NORM,
  DROPOUT,
  EMPTY_SEQUENTIAL,
] as unknown as readonly LayerType[];
