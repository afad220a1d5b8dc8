// Analysis of what quantization does to a float model: per-layer statistics and observer ranges
// (analyzeModel), sensitivity runs, and a mixed-precision plan (planMixedPrecision, measurePlan).
export { analyzeModel, makeAnalysisObserver, ANALYSIS_OBSERVERS, PER_CHANNEL_OBSERVERS, PER_CHANNEL_ACTIVATION_OBSERVERS, OUTLIER_RATIO } from './analyze';
export type {
  AnalyzeOptions, AnalysisObserverName, AnalysisProgress, ModelAnalysis, OnnxModelInfo, LayerAnalysis, TensorAnalysis, RangeResult, ChannelAnalysis,
} from './analyze';
export type { SensitivityAnalysis, SensitivityRun, SensitivityMode } from './sensitivity';
export { planMixedPrecision, measurePlan } from './plan';
export type { MixedPrecisionPlan, PlanOptions, PlanBudget, MixedPrecisionLayer, PlanPoint, PlanMeasurement, LayerChoice } from './plan';
export type { AnalysisData, EvalData } from './model';
export { analyzeOnnx, measureOnnxPlan } from './onnx';
export type { AnalyzeOnnxOptions, OnnxData, OnnxEvalData } from './onnx';
export { sqnrDb } from './tensor-stats';
export type { Histogram } from './tensor-stats';
