// Weight loaders: real model weights as float32 tensors, for calibration and benchmarks.
export { loadTfjsWeights, loadTfjsWeightsSync, WeightFileError } from './tfjs';
export type { TfjsWeight, TfjsDtype, TfjsQuantization } from './tfjs';
export {
  loadGnubgWeights, loadGnubgWeightsSync, parseGnubgWeights, GNUBG_NET_NAMES,
} from './gnubg';
export type { GnubgNet, GnubgMatrix } from './gnubg';
