// Quantization-aware training: prepareQAT (fake-quantize every Linear's weight and input where the
// static int8 model quantizes), QATLinear. See docs/qat.md.
export { prepareQAT, QATLinear, qatLayers } from './prepare';
export type { PrepareQATOptions, QATLayerOverride, QATTensorOptions, QATObserverChoice, QATWeightQParams, QATActQParams } from './prepare';
export { conversionBound, convertQAT } from './convert';
export type { ConvertQATOptions } from './convert';
