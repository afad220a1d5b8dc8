// quantkit/data: IDX (MNIST / Fashion-MNIST) loaders and seeded mini-batching.
export {
  parseIdx, loadIdx, loadIdxSync, loadImageSet, loadImageSetSync, imageSetFromIdx, loadMnistSync, mnistDataDir,
  imagesToFloat32, IdxFileError, IDX_MAX_ELEMENTS,
} from './idx';
export type { IdxDtype, IdxArray, IdxTensor, ImageSet } from './idx';
export { BatchLoader } from './batch';
export type { Batch, BatchLoaderOptions } from './batch';
