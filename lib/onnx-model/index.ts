// ONNX models: quantizeOnnx (dynamic, static QDQ, weight-only), exportOnnx, inspectOnnx, and the
// file-level pieces (OnnxFileError, tensors of TensorProto files for tests and tools).
export { quantizeOnnx } from './quantize';
export type { QuantizeOnnxOptions, QuantizeOnnxProgress, OnnxQuantMode, OnnxQuantizeSummary, OnnxNodeSummary, OnnxActQParams } from './quantize';
export { exportOnnx, exportOnnxBytes } from './export';
export type { ExportOnnxOptions } from './export';
export { inspectOnnx } from './inspect';
export type { OnnxInfo, OnnxValueInfo } from './inspect';
export { OnnxFileError, readTensorProto } from './proto';
export type { TensorValue } from './proto';
export type { OnnxObserverChoice, OnnxObserverName, CalibrationFeeds, Feed, FeedValue } from './calibrate';
