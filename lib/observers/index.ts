// Calibration observers: one interface (observe, calculateQParams, reset, toJSON / fromJSON,
// merge, stats), PyTorch's min/max and histogram observers and the percentile, MSE, entropy and
// softmax cross-entropy searches.
export { Observer } from './base';
export type { ObserverQParams, ObserverStats, ObserverState } from './base';
export {
  MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
} from './minmax';
export type { MinMaxObserverOptions, MovingAverageOptions, PerChannelOptions, MovingAveragePerChannelOptions } from './minmax';
export { HistogramObserver } from './histogram';
export type { HistogramObserverOptions, HistogramRangeOptions, ObserverSpecOptions } from './histogram';
export { PercentileObserver } from './percentile';
export type { PercentileObserverOptions } from './percentile';
export { MSEObserver } from './mse';
export type { MSEObserverOptions } from './mse';
export { EntropyObserver } from './entropy';
export type { EntropyObserverOptions } from './entropy';
export { SoftmaxCrossEntropyObserver } from './softmax';
export type { SoftmaxCrossEntropyObserverOptions } from './softmax';
