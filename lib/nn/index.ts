// quantkit/nn: layers with backward, Sequential, losses, optimizers and seeded initialisation,
// enough to train small models (MLPs) in Node.js for quantization experiments.
export { Module, Parameter } from './module';
export type { StateTensor, StateEntry, LoadStateDictOptions, LoadStateDictResult, Shaped } from './module';
export { Linear, ReLU, GELU, Tanh, Sigmoid, Softmax, LayerNorm, Flatten, Dropout, Identity, erf, erfc } from './layers';
export type { LinearOptions, LayerNormOptions } from './layers';
export { Sequential } from './sequential';
export { softmaxCrossEntropy, mseLoss, argmax, accuracy } from './loss';
export type { Labels, LossResult, SoftmaxCrossEntropyOptions } from './loss';
export { Optimizer, SGD, Adam, AdamW } from './optim';
export type { SGDOptions, AdamOptions } from './optim';
export { Rng, manualSeed, getDefaultRng } from './random';
export * as init from './init';
export type { Nonlinearity, KaimingOptions, XavierOptions } from './init';
export { setMatmulBackend, getMatmulBackend } from './ops';
export type { MatmulBackend } from './ops';
export { FakeQuantize, LearnableFakeQuantize, LSQ_SCALE_FLOOR } from './fake-quantize';
export type { FakeQuantizeOptions, FakeQuantizeSpec, FakeQuantizeGranularity, FakeQuantizeQParams, LearnableFakeQuantizeOptions } from './fake-quantize';
export { lsqGradOne, lsqForwardZeroPoint, lsqBackwardZeroPoint, lsqGradFactor } from './lsq';
