// The demo's model: an MLP 784-512-256-10 (ReLU) trained with Adam and a cosine schedule.
import { BatchLoader } from '../data/batch';
import { Flatten, Linear, ReLU } from '../nn/layers';
import { softmaxCrossEntropy, argmax } from '../nn/loss';
import { Adam } from '../nn/optim';
import { manualSeed } from '../nn/random';
import { Sequential } from '../nn/sequential';

export function mlp(): Sequential {
  return new Sequential(new Flatten(), new Linear(784, 512), new ReLU(), new Linear(512, 256), new ReLU(), new Linear(256, 10));
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  /** Batches done in this epoch / batches per epoch. */
  step: number;
  steps: number;
  loss: number;
}

export interface TrainResult {
  model: Sequential;
  accuracy: number;
  seconds: number;
}

export function accuracyOf(model: { forward(x: Float32Array, b: number): Float32Array }, x: Float32Array, labels: Uint8Array, features = 784): number {
  let ok = 0;
  const B = 1000;
  for (let s = 0; s < labels.length; s += B) {
    const n = Math.min(B, labels.length - s);
    const pred = argmax(model.forward(x.subarray(s * features, (s + n) * features), n), n);
    for (let i = 0; i < n; i++) if (pred[i] === labels[s + i]) ok++;
  }
  return ok / labels.length;
}

/** Trains the MLP; calls onProgress after every batch and onEpoch with the test accuracy. */
export function trainMlp(
  xTrain: Float32Array, yTrain: Uint8Array, xTest: Float32Array, yTest: Uint8Array,
  o: { epochs: number; seed: number; batch?: number; lr?: number; onProgress?: (p: TrainProgress) => void; onEpoch?: (epoch: number, acc: number, loss: number) => void },
): TrainResult {
  const t0 = performance.now();
  manualSeed(o.seed);
  const model = mlp();
  const opt = new Adam(model, { lr: o.lr ?? 1e-3 });
  const loader = new BatchLoader(xTrain, yTrain, { batchSize: o.batch ?? 128, rng: o.seed });
  const lr0 = opt.lr;
  const total = o.epochs * loader.length;
  let step = 0;
  let acc = 0;
  for (let e = 1; e <= o.epochs; e++) {
    model.train();
    let lossSum = 0;
    let n = 0;
    let s = 0;
    for (const { x, y, batch } of loader.epoch()) {
      opt.lr = lr0 * 0.5 * (1 + Math.cos((Math.PI * step) / total));
      step++;
      opt.zeroGrad();
      const logits = model.forward(x, batch);
      const { loss, grad } = softmaxCrossEntropy(logits, y);
      model.backward(grad, { inputGrad: false });
      opt.step();
      lossSum += loss * batch;
      n += batch;
      o.onProgress?.({ epoch: e, epochs: o.epochs, step: ++s, steps: loader.length, loss: lossSum / n });
    }
    model.eval();
    acc = accuracyOf(model, xTest, yTest);
    o.onEpoch?.(e, acc, lossSum / n);
  }
  model.eval();
  return { model, accuracy: acc, seconds: (performance.now() - t0) / 1000 };
}
