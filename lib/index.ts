// quantkit: deep-learning quantization for Node.js.
import cluster from 'node:cluster';
import { checkInt, typeError } from './errors';
import * as native from './native';

export { quantizeLinear, dequantizeLinear, dynamicQuantizeLinear } from './onnx';
export type { QDtype, ZeroPoint, QuantizeLinearOptions, DequantizeLinearOptions, DynamicQuantized } from './onnx';
export { computeQParams, roundHalfEven, FLOAT32_EPS, FLOAT32_TINY } from './qparams';
export type { QParams } from './qparams';
export { quantize, fakeQuantize, minMax, QuantizedTensor } from './tensor';
export type { FakeQuantizeOptions, MinMaxResult } from './tensor';
export { resolveSpec, codeRange } from './spec';
export type { QuantSpec, ResolvedSpec, Scheme, Range, Formula, StorageDtype } from './spec';
export type { Granularity } from './layout';
export { matmulF32, matmulF32Async, packWeightsF32, PackedWeightsF32 } from './matmul-f32';
export type { MatmulF32Options, PackWeightsF32Options } from './matmul-f32';
export { packWeightsNBits, PackedWeightsNBits, matmulNBits, matmulNBitsAsync } from './nbits';
export type { PackWeightsNBitsOptions, NBitsShapeOptions, NBitsCodes, MatmulNBitsOptions, NBitsCompute } from './nbits';
export { matmulInteger, packWeights, PackedWeights, gemm, gemmAsync, qlinearMatMul, linearDynamic, linearDynamicAsync } from './gemm';
export type {
  GemmDtype, GemmOutput, GemmZeroPoint, PackWeightsOptions, GemmOptions, MatMulIntegerOptions, QLinearMatMulOptions,
  LinearDynamicOptions,
} from './gemm';
export {
  Observer, MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
  HistogramObserver, PercentileObserver, MSEObserver, EntropyObserver, SoftmaxCrossEntropyObserver,
} from './observers';
export type {
  ObserverQParams, ObserverStats, ObserverState, ObserverSpecOptions, HistogramRangeOptions, MinMaxObserverOptions, MovingAverageOptions, PerChannelOptions,
  MovingAveragePerChannelOptions, HistogramObserverOptions, PercentileObserverOptions, MSEObserverOptions,
  EntropyObserverOptions, SoftmaxCrossEntropyObserverOptions,
} from './observers';
export {
  loadTfjsWeights, loadTfjsWeightsSync, loadGnubgWeights, loadGnubgWeightsSync, parseGnubgWeights,
  WeightFileError, GNUBG_NET_NAMES,
} from './io';
export type { TfjsWeight, TfjsDtype, TfjsQuantization, GnubgNet, GnubgMatrix } from './io';
export {
  saveSafetensors, loadSafetensors, parseSafetensors, serializeSafetensors, loadSafetensorsInto, SAFETENSORS_MAX_HEADER,
} from './io/safetensors';
export type { SafetensorsDtype, SafetensorsArray, SafetensorsTensor, SafetensorsFile } from './io/safetensors';
// Post-training quantization of nn models (in one call, or as plan -> calibrate -> build with
// given qparams), evaluation, model files, weights files, and the layer registry (new layer types).
export {
  quantizeModel, QuantizedModel, evaluate, modelBytes, saveModel, loadModel, planQuantization, calibrateQuantization, buildQuantizedModel,
  registerLayer, unregisterLayer, layerTypes,
  quantizeWeights, quantizeWeightsFile, loadQuantizedWeights, parseQuantizedWeights, dequantizeWeights, isQuantizedWeights,
} from './ptq';
export type {
  QuantizeModelOptions, LayerOverride, ObserverChoice, ObserverName, CalibrationData, QuantizeProgress, QuantMode, LayerMode,
  WeightGranularity, ActQParams, LayerSummary, EvaluateOptions, EvaluateResult, QuantizationPlan, PlannedLayer, GivenQParams, WeightQParams,
  LayerSettings, LayerType, LayerSpec, LayerQuantizer, StageDescription,
  QuantizeWeightsOptions, QuantizeWeightsSummary, QuantizedWeights, QuantizedWeightInfo, WeightsFileMode,
} from './ptq';
// ONNX models: quantize (dynamic, static QDQ, weight-only), export quantkit models, inspect; ORT's MatMulNBits layout.
export { quantizeOnnx, exportOnnx, exportOnnxBytes, inspectOnnx, OnnxFileError, readTensorProto } from './onnx-model';
export type {
  QuantizeOnnxOptions, QuantizeOnnxProgress, OnnxQuantMode, OnnxQuantizeSummary, OnnxNodeSummary, OnnxActQParams, ExportOnnxOptions, OnnxInfo,
  OnnxValueInfo, OnnxObserverChoice, OnnxObserverName, CalibrationFeeds, Feed, FeedValue, TensorValue,
} from './onnx-model';
export { packMatMulNBits, unpackMatMulNBits, dequantizeMatMulNBits, quantizeMatMulNBits, matMulNBitsSizes } from './formats/matmulnbits';
export type { MatMulNBitsShape, MatMulNBitsPacked, MatMulNBitsUnpacked, QuantizeNBitsOptions } from './formats/matmulnbits';
// Quantization-aware training.
export { conversionBound, convertQAT, prepareQAT, QATLinear, qatLayers } from './qat';
export type { ConvertQATOptions, PrepareQATOptions, QATLayerOverride, QATTensorOptions, QATObserverChoice, QATWeightQParams, QATActQParams } from './qat';
// Layers, losses and optimizers; data loaders (namespaces: generic names stay out of the top level).
export * as nn from './nn';
// What a new layer type's registry entry builds on (stages, spec checks, file parts), and the rest of lib/ptq.
export * as ptq from './ptq';
export * as data from './data';
// The demo's MNIST MLP: training and its checkpoint cache (quantkit demo, bench/models.mjs).
export * as demo from './demo';

export interface CpuInfo {
  /** 'x86_64', 'arm64' or 'other'. */
  arch: string;
  /** CPU features usable here (CPU and OS support), e.g. 'avx2', 'avx512vnni', 'amx-int8', 'dotprod'. */
  features: string[];
  /** Paths compiled into this binary. */
  builtPaths: string[];
  /** Built paths this CPU and OS can run. */
  supportedPaths: string[];
  /** The path each op uses now. */
  selected: Record<string, string>;
  /** 'auto', or the path forced with QUANTKIT_ISA / setIsa(). */
  forced: string;
  /** Threads ops use (setNumThreads). */
  threads: number;
  /** The CPUs this process may run on (the thread count outside cluster workers). */
  defaultThreads: number;
  /** Where `threads` came from. */
  threadsFrom: native.ThreadsFrom;
}

/** What the CPU offers, which kernel path each op uses, and the thread count. */
export function cpuInfo(): CpuInfo {
  return { ...native.cpuInfo(), threadsFrom };
}

/**
 * Force a path, as QUANTKIT_ISA does at load: 'auto', 'scalar', 'avx2', 'avx512', 'avxvnni',
 * 'avx512vnni', 'amx', 'neon', 'neon-dotprod'. A path limits every op to it and the paths it
 * extends (e.g. 'avx512' allows avx2 and scalar kernels). Unsupported paths throw. Meant for
 * testing and diagnosis; do not call while other threads run quantkit ops.
 */
export function setIsa(path: string): void {
  if (typeof path !== 'string') throw typeError('path', 'a string', path);
  native.setIsa(path);
}

let threadsFrom: native.ThreadsFrom = native.initialThreads(process.env, cluster.isWorker === true);

/**
 * Threads used by ops (1..1024). Default: QUANTKIT_NUM_THREADS if set; 1 in a node:cluster worker
 * (one process per core already fills the machine); else the CPUs available to the process.
 */
export function setNumThreads(n: number): void {
  native.setNumThreads(checkInt('n', n, 1, 1024));
  threadsFrom = 'setNumThreads';
}

export function getNumThreads(): number {
  return native.getNumThreads();
}
// What quantization does, per layer: analysis, sensitivity, mixed-precision plans, the HTML report.
export { analyzeModel, analyzeOnnx, planMixedPrecision, measurePlan, measureOnnxPlan, ANALYSIS_OBSERVERS } from './analysis';
export type {
  AnalyzeOptions, AnalysisObserverName, AnalysisProgress, ModelAnalysis, LayerAnalysis, TensorAnalysis, RangeResult, ChannelAnalysis,
  SensitivityAnalysis, SensitivityRun, SensitivityMode, MixedPrecisionPlan, PlanOptions, PlanBudget, MixedPrecisionLayer, PlanPoint,
  PlanMeasurement, LayerChoice, AnalysisData, EvalData, Histogram, AnalyzeOnnxOptions, OnnxData, OnnxEvalData, OnnxModelInfo,
} from './analysis';
export { renderReport, writeReport, reportJSON } from './report';
export type { ReportOptions } from './report';
