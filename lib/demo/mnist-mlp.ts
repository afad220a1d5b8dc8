// The demo's model: an MLP 784-512-256-10 (ReLU) trained on MNIST-style images with Adam and a
// cosine schedule, and its checkpoint cache. Shared by `quantkit demo`, bench/models.mjs and
// scripts/train-mnist.mjs, so that all three train and cache the same model.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkInt, checkOneOf, typeError } from '../errors';
import { BatchLoader } from '../data/batch';
import { Flatten, Linear, ReLU } from '../nn/layers';
import { scoreRows, softmaxCrossEntropy } from '../nn/loss';
import { Adam, SGD } from '../nn/optim';
import { manualSeed } from '../nn/random';
import { Sequential } from '../nn/sequential';
import { loadModel, saveModel } from '../ptq/file';

/** Input features of the MLP: 28 x 28 images. */
export const MLP_FEATURES = 784;

export function mlp(): Sequential {
  return new Sequential(new Flatten(), new Linear(MLP_FEATURES, 512), new ReLU(), new Linear(512, 256), new ReLU(), new Linear(256, 10));
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  /** Batches done in this epoch / batches per epoch. */
  step: number;
  steps: number;
  loss: number;
}

export interface TrainOptions {
  epochs: number;
  seed: number;
  /** Default 128. */
  batch?: number;
  /** Default 'adam' (lr 1e-3); 'sgd' has momentum 0.9 (lr 0.05). */
  optimizer?: 'adam' | 'sgd';
  lr?: number;
  /** Default 'cosine': lr * (1 + cos(pi * step / steps)) / 2; 'none' keeps lr. */
  schedule?: 'cosine' | 'none';
  /** After every batch. */
  onProgress?: (p: TrainProgress) => void;
  /** After every epoch, with the test accuracy and the epoch's mean loss. */
  onEpoch?: (epoch: number, acc: number, loss: number) => void;
}

export interface TrainResult {
  model: Sequential;
  accuracy: number;
  seconds: number;
}

/** Fraction of rows of x (`features` values each) whose argmax of model.forward is the label. */
export function accuracyOf(model: { forward(x: Float32Array, b: number): Float32Array }, x: Float32Array, labels: Uint8Array, features = MLP_FEATURES): number {
  let ok = 0;
  const B = 1000;
  for (let s = 0; s < labels.length; s += B) {
    const n = Math.min(B, labels.length - s);
    ok += scoreRows(model.forward(x.subarray(s * features, (s + n) * features), n), n, labels, s).correct;
  }
  return ok / labels.length;
}

/** Trains the MLP from a seeded initialisation; calls onProgress after every batch and onEpoch with the test accuracy. */
export function trainMlp(xTrain: Float32Array, yTrain: Uint8Array, xTest: Float32Array, yTest: Uint8Array, o: TrainOptions): TrainResult {
  const t0 = performance.now();
  const epochs = checkInt('o.epochs', o.epochs, 1, 100000);
  const optimizer = o.optimizer === undefined ? 'adam' : checkOneOf('o.optimizer', o.optimizer, ['adam', 'sgd'] as const);
  const schedule = o.schedule === undefined ? 'cosine' : checkOneOf('o.schedule', o.schedule, ['cosine', 'none'] as const);
  manualSeed(o.seed);
  const model = mlp();
  const opt = optimizer === 'adam' ? new Adam(model, { lr: o.lr ?? 1e-3 }) : new SGD(model, { lr: o.lr ?? 0.05, momentum: 0.9 });
  const loader = new BatchLoader(xTrain, yTrain, { batchSize: o.batch ?? 128, rng: o.seed });
  const lr0 = opt.lr;
  const total = epochs * loader.length;
  let step = 0;
  let acc = 0;
  for (let e = 1; e <= epochs; e++) {
    model.train();
    let lossSum = 0;
    let n = 0;
    let s = 0;
    for (const { x, y, batch } of loader.epoch()) {
      if (schedule === 'cosine') opt.lr = lr0 * 0.5 * (1 + Math.cos((Math.PI * step) / total));
      step++;
      opt.zeroGrad();
      const logits = model.forward(x, batch);
      const { loss, grad } = softmaxCrossEntropy(logits, y);
      model.backward(grad, { inputGrad: false });
      opt.step();
      lossSum += loss * batch;
      n += batch;
      o.onProgress?.({ epoch: e, epochs, step: ++s, steps: loader.length, loss: lossSum / n });
    }
    model.eval();
    acc = accuracyOf(model, xTest, yTest);
    o.onEpoch?.(e, acc, lossSum / n);
  }
  model.eval();
  return { model, accuracy: acc, seconds: (performance.now() - t0) / 1000 };
}

// ---- checkpoints ------------------------------------------------------------------------------

/** The checkpoint folder: $QUANTKIT_CACHE_DIR, else $XDG_CACHE_HOME/quantkit, else ~/.cache/quantkit. */
export function cacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.QUANTKIT_CACHE_DIR) return env.QUANTKIT_CACHE_DIR;
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'quantkit');
}

/** The checkpoint file of a training run in `dir`. */
export function checkpointFile(dir: string, run: { dataset: string; seed: number; epochs: number }): string {
  return path.join(dir, `mlp-784-512-256-10-${run.dataset}-seed${run.seed}-e${run.epochs}.safetensors`);
}

/** What loadOrTrainMlp did, as it happens. */
export type CheckpointEvent =
  | { kind: 'reused'; file: string }
  | { kind: 'ignored'; file: string; error: Error }
  | { kind: 'training' }
  | { kind: 'trained'; seconds: number; accuracy: number }
  | { kind: 'saved'; file: string }
  | { kind: 'not-saved'; dir: string; error: Error };

export interface LoadOrTrainOptions extends Omit<TrainOptions, 'optimizer' | 'lr' | 'schedule' | 'batch'> {
  /** Names the checkpoint ('mnist', 'fashion') and goes into its metadata. */
  dataset: string;
  /** Checkpoint folder (see cacheDir()); null: neither read nor write a checkpoint. */
  dir: string | null;
  /** Train even when a checkpoint exists (and replace it). */
  retrain?: boolean;
  onEvent?: (e: CheckpointEvent) => void;
}

export interface Images {
  xTrain: Float32Array;
  yTrain: Uint8Array;
  xTest: Float32Array;
  yTest: Uint8Array;
}

/**
 * The demo's float MLP: the checkpoint in `o.dir` when there is a readable one (a float model file
 * written by saveModel), else trained with trainMlp and saved there. A checkpoint that cannot be
 * read is ignored (reported through onEvent) and replaced; a failed save is reported, not thrown.
 */
export function loadOrTrainMlp(data: Images, o: LoadOrTrainOptions): { model: Sequential; checkpoint: string | null; trained: TrainResult | null } {
  if (typeof data !== 'object' || data === null) throw typeError('data', 'an object { xTrain, yTrain, xTest, yTest }', data);
  if (typeof o.dataset !== 'string' || !/^[\w.-]+$/.test(o.dataset)) throw typeError('o.dataset', 'a name of letters, digits, . _ or -', o.dataset);
  if (o.dir !== null && typeof o.dir !== 'string') throw typeError('o.dir', 'a folder path or null', o.dir);
  const emit = o.onEvent ?? (() => undefined);
  const file = o.dir === null ? null : checkpointFile(o.dir, o);
  if (file !== null && !o.retrain && fs.existsSync(file)) {
    try {
      const m = loadModel(file);
      if (!(m instanceof Sequential)) throw new Error(`a quantized model (mode ${m.mode}), not the float MLP`);
      emit({ kind: 'reused', file });
      return { model: m.eval(), checkpoint: file, trained: null };
    } catch (e) {
      emit({ kind: 'ignored', file, error: e as Error });
    }
  }
  emit({ kind: 'training' });
  const r = trainMlp(data.xTrain, data.yTrain, data.xTest, data.yTest, { epochs: o.epochs, seed: o.seed, onProgress: o.onProgress, onEpoch: o.onEpoch });
  emit({ kind: 'trained', seconds: r.seconds, accuracy: r.accuracy });
  if (file !== null && o.dir !== null) {
    try {
      fs.mkdirSync(o.dir, { recursive: true });
      saveModel(file, r.model, { metadata: { dataset: o.dataset, epochs: String(o.epochs), seed: String(o.seed), accuracy: String(r.accuracy) } });
      emit({ kind: 'saved', file });
    } catch (e) {
      emit({ kind: 'not-saved', dir: o.dir, error: e as Error });
    }
  }
  return { model: r.model, checkpoint: file, trained: r };
}
