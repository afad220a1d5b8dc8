// The demo's MLP (lib/demo): seeded training, and the checkpoint cache that `quantkit demo`,
// bench/models.mjs and scripts/train-mnist.mjs share (reuse, ignore a bad file, retrain, no cache).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demo, loadModel, nn, quantizeModel, saveModel } from '../lib/index';
import type { CheckpointEvent } from '../lib/demo';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-demo-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// 40 training and 20 test "images" of 784 values; labels from the first pixel, so it is learnable.
const F = demo.MLP_FEATURES;
function images(n: number, seed: number): { x: Float32Array; y: Uint8Array } {
  const r = new nn.Rng(seed);
  const x = Float32Array.from({ length: n * F }, () => r.uniform(0, 1));
  const y = Uint8Array.from({ length: n }, (_, i) => Math.floor(x[i * F] * 10));
  return { x, y };
}
const tr = images(40, 1), te = images(20, 2);
const data = { xTrain: tr.x, yTrain: tr.y, xTest: te.x, yTest: te.y };
const run = { dataset: 'tiny', epochs: 1, seed: 5 };

const sameWeights = (a: nn.Sequential, b: nn.Sequential) => {
  const sa = a.stateDict(), sb = b.stateDict();
  expect(Object.keys(sa)).toEqual(Object.keys(sb));
  for (const k of Object.keys(sa)) expect(Array.from(sb[k].data)).toEqual(Array.from(sa[k].data));
};

describe('demo.trainMlp', () => {
  it('is seeded: the same seed gives the same weights, with Adam and with SGD', () => {
    for (const optimizer of ['adam', 'sgd'] as const) {
      const a = demo.trainMlp(data.xTrain, data.yTrain, data.xTest, data.yTest, { epochs: 1, seed: 3, optimizer, batch: 16 });
      const b = demo.trainMlp(data.xTrain, data.yTrain, data.xTest, data.yTest, { epochs: 1, seed: 3, optimizer, batch: 16 });
      sameWeights(a.model, b.model);
      expect(a.accuracy).toBe(b.accuracy);
      expect(a.accuracy).toBe(demo.accuracyOf(a.model, data.xTest, data.yTest));
    }
  });

  it('reports progress per batch and each epoch', () => {
    const steps: string[] = [];
    const epochs: number[] = [];
    demo.trainMlp(data.xTrain, data.yTrain, data.xTest, data.yTest, {
      epochs: 2, seed: 1, batch: 16, schedule: 'none',
      onProgress: (p) => steps.push(`${p.epoch}:${p.step}/${p.steps}`),
      onEpoch: (e) => epochs.push(e),
    });
    expect(steps).toEqual(['1:1/3', '1:2/3', '1:3/3', '2:1/3', '2:2/3', '2:3/3']);
    expect(epochs).toEqual([1, 2]);
  });

  it('refuses bad options', () => {
    expect(() => demo.trainMlp(data.xTrain, data.yTrain, data.xTest, data.yTest, { epochs: 0, seed: 1 })).toThrow(RangeError);
    expect(() => demo.trainMlp(data.xTrain, data.yTrain, data.xTest, data.yTest, { epochs: 1, seed: 1, optimizer: 'lbfgs' as 'adam' })).toThrow(RangeError);
  });
});

describe('demo.loadOrTrainMlp: the checkpoint cache', () => {
  it('trains and saves, then reuses the same model; retrain trains again', () => {
    const dir = path.join(tmp, 'cache', 'nested');
    const ev: CheckpointEvent['kind'][] = [];
    const first = demo.loadOrTrainMlp(data, { ...run, dir, onEvent: (e) => ev.push(e.kind) });
    const file = demo.checkpointFile(dir, run);
    expect(file).toBe(path.join(dir, 'mlp-784-512-256-10-tiny-seed5-e1.safetensors'));
    expect(ev).toEqual(['training', 'trained', 'saved']);
    expect(first.checkpoint).toBe(file);
    expect(first.trained).not.toBeNull();
    expect(loadModel(file)).toBeInstanceOf(nn.Sequential);

    ev.length = 0;
    const again = demo.loadOrTrainMlp(data, { ...run, dir, onEvent: (e) => ev.push(e.kind) });
    expect(ev).toEqual(['reused']);
    expect(again.trained).toBeNull();
    sameWeights(first.model, again.model);

    ev.length = 0;
    demo.loadOrTrainMlp(data, { ...run, dir, retrain: true, onEvent: (e) => ev.push(e.kind) });
    expect(ev).toEqual(['training', 'trained', 'saved']);
  });

  it('ignores (and replaces) a checkpoint that is corrupt or quantized', () => {
    const dir = path.join(tmp, 'bad');
    fs.mkdirSync(dir);
    const file = demo.checkpointFile(dir, run);
    fs.writeFileSync(file, 'not safetensors');
    const ev: CheckpointEvent[] = [];
    demo.loadOrTrainMlp(data, { ...run, dir, onEvent: (e) => ev.push(e) });
    expect(ev.map((e) => e.kind)).toEqual(['ignored', 'training', 'trained', 'saved']);
    expect((ev[0] as { error: Error }).error.message).toContain(file);
    saveModel(file, quantizeModel(demo.mlp(), { mode: 'dynamic' }));
    ev.length = 0;
    demo.loadOrTrainMlp(data, { ...run, dir, onEvent: (e) => ev.push(e) });
    expect(ev.map((e) => e.kind)).toEqual(['ignored', 'training', 'trained', 'saved']);
    expect((ev[0] as { error: Error }).error.message).toBe('a quantized model (mode dynamic), not the float MLP');
  });

  it('dir null: no checkpoint read or written; a folder that cannot be made is reported, not thrown', () => {
    const ev: CheckpointEvent['kind'][] = [];
    const r = demo.loadOrTrainMlp(data, { ...run, dir: null, onEvent: (e) => ev.push(e.kind) });
    expect(ev).toEqual(['training', 'trained']);
    expect(r.checkpoint).toBeNull();
    const blocker = path.join(tmp, 'a-file');
    fs.writeFileSync(blocker, 'x');
    ev.length = 0;
    demo.loadOrTrainMlp(data, { ...run, dir: path.join(blocker, 'sub'), onEvent: (e) => ev.push(e.kind) });
    expect(ev).toEqual(['training', 'trained', 'not-saved']);
  });

  it('demo.cacheDir: $QUANTKIT_CACHE_DIR, else $XDG_CACHE_HOME/quantkit, else ~/.cache/quantkit', () => {
    expect(demo.cacheDir({ QUANTKIT_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c');
    expect(demo.cacheDir({ XDG_CACHE_HOME: '/x' })).toBe(path.join('/x', 'quantkit'));
    expect(demo.cacheDir({})).toBe(path.join(os.homedir(), '.cache', 'quantkit'));
  });
});
