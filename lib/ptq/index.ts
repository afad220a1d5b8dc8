// Post-training quantization of nn models: quantizeModel (planQuantization, calibrateQuantization,
// buildQuantizedModel), QuantizedModel, evaluate, model files, and the layer registry.
export {
  quantizeModel, quantizeWeight, makeObserver, planQuantization, calibrateQuantization, buildQuantizedModel, weightQuantSpec,
} from './quantize-model';
export type {
  QuantizeModelOptions, LayerOverride, ObserverChoice, ObserverName, CalibrationData, QuantizeProgress, QuantizationPlan, PlannedLayer,
  GivenQParams,
} from './quantize-model';
export { QuantizedModel } from './qmodel';
export type {
  QuantMode, LayerMode, WeightGranularity, ActQParams, QuantWeight, LayerSummary, StageDescription, Value,
} from './qmodel';
export { evaluate, modelBytes } from './evaluate';
export type { EvaluateOptions, EvaluateResult } from './evaluate';
export { saveModel, loadModel, modelTensors, GRAPH_KEY } from './file';
export {
  quantizeWeights, quantizeWeightsFile, loadQuantizedWeights, parseQuantizedWeights, dequantizeWeights, isQuantizedWeights,
  WEIGHTS_KEY,
} from './weights-file';
export type { QuantizeWeightsOptions, QuantizeWeightsSummary, QuantizedWeights, QuantizedWeightInfo, WeightsFileMode } from './weights-file';
// The layer registry, and what a layer type's entry builds on (its stages, file parts).
export { registerLayer, unregisterLayer, layerTypes, specBool, specInt, specNumber, specOneOf } from './registry';
export type {
  LayerType, LayerSpec, LayerQuantizer, LayerSettings, QuantizeContext, BuildContext, WeightQParams,
} from './registry';
export { Stage, FloatStage, toFloat, runModule, pfx } from './stages';
export type { FloatKernel } from './stages';
export { FileCtx, checkAct, checkWeightJSON, loadWeight, weightTensors } from './file-parts';
export type { SavedLayer, WeightJSON } from './file-parts';
