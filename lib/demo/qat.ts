// QAT fine-tuning of the demo's MLP (or any Sequential classifier): prepareQAT, Adam with a cosine
// schedule over a few epochs (or a number of steps), eval. Shared by `quantkit demo --qat`,
// scripts/qat-results.ts and the conversion tests.
import { checkInt } from '../errors';
import { BatchLoader } from '../data/batch';
import { softmaxCrossEntropy } from '../nn/loss';
import { Adam } from '../nn/optim';
import { Sequential } from '../nn/sequential';
import { prepareQAT, PrepareQATOptions } from '../qat/prepare';

export interface FineTuneQATOptions {
  /** prepareQAT's options (weight / activation bits, learnable, ...). */
  qat?: PrepareQATOptions;
  /** Passes over the training rows (default 1). */
  epochs?: number;
  /** Stop after this many steps (default: epochs * batches per epoch). */
  steps?: number;
  /** Adam's learning rate at the start of the cosine schedule (default 1e-4). */
  lr?: number;
  /** Default 128. */
  batch?: number;
  seed?: number;
  /** Rows of features per input (default 784). */
  features?: number;
  /** After every step: the step (1-based), the steps in all and the batch's loss. */
  onStep?: (step: number, steps: number, loss: number) => void;
}

export interface FineTuneQATResult {
  /** The QAT model in eval mode (observers frozen): convertQAT takes it. */
  model: Sequential;
  /** The loss of every training step. */
  losses: number[];
  seconds: number;
}

/** Fine-tunes a float classifier with QAT (the float model is left as it was). */
export function fineTuneQAT(float: Sequential, xTrain: Float32Array, yTrain: Uint8Array, o: FineTuneQATOptions = {}): FineTuneQATResult {
  const t0 = performance.now();
  const F = o.features ?? 784;
  const epochs = checkInt('o.epochs', o.epochs ?? 1, 1, 10000);
  const qat = prepareQAT(float, o.qat);
  const opt = new Adam(qat, { lr: o.lr ?? 1e-4 });
  const loader = new BatchLoader(xTrain.subarray(0, yTrain.length * F), yTrain, { batchSize: o.batch ?? 128, rng: o.seed ?? 1 });
  const total = Math.min(o.steps ?? Infinity, epochs * loader.length);
  const lr0 = opt.lr;
  const losses: number[] = [];
  qat.train();
  outer: for (let e = 0; e < epochs; e++) {
    for (const { x, y, batch } of loader.epoch()) {
      if (losses.length >= total) break outer;
      opt.lr = lr0 * 0.5 * (1 + Math.cos((Math.PI * losses.length) / total));
      opt.zeroGrad();
      const { loss, grad } = softmaxCrossEntropy(qat.forward(x, batch), y);
      qat.backward(grad, { inputGrad: false });
      opt.step();
      losses.push(loss);
      o.onStep?.(losses.length, total, loss);
    }
  }
  qat.eval();
  return { model: qat, losses, seconds: (performance.now() - t0) / 1000 };
}
