// quantkit/demo: the MNIST MLP of `quantkit demo` (training and its checkpoint cache), shared by
// the CLI, bench/models.mjs and scripts/train-mnist.mjs.
export { mlp, trainMlp, accuracyOf, cacheDir, checkpointFile, loadOrTrainMlp, MLP_FEATURES } from './mnist-mlp';
export type { TrainOptions, TrainProgress, TrainResult, CheckpointEvent, LoadOrTrainOptions, Images } from './mnist-mlp';
