// Post-training quantization of nn models: quantizeModel, QuantizedModel, evaluate, model files.
export { quantizeModel, quantizeWeight, makeObserver } from './quantize-model';
export type { QuantizeModelOptions, LayerOverride, ObserverChoice, ObserverName, CalibrationData, QuantizeProgress } from './quantize-model';
export { QuantizedModel } from './qmodel';
export type { QuantMode, LayerMode, WeightGranularity, ActQParams, QuantWeight, LayerSummary } from './qmodel';
export { evaluate, modelBytes } from './evaluate';
export type { EvaluateOptions, EvaluateResult } from './evaluate';
export { saveModel, loadModel, modelTensors, GRAPH_KEY } from './file';
export {
  quantizeWeights, quantizeWeightsFile, loadQuantizedWeights, parseQuantizedWeights, dequantizeWeights, isQuantizedWeights,
  WEIGHTS_KEY,
} from './weights-file';
export type { QuantizeWeightsOptions, QuantizeWeightsSummary, QuantizedWeights, QuantizedWeightInfo, WeightsFileMode } from './weights-file';
