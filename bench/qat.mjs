#!/usr/bin/env node
// npm run bench:qat [-- --json] [-- --quick] [-- --no-ts]
//
// The cost of quantization-aware training: one training step (zeroGrad, forward, softmax
// cross-entropy, backward, SGD step with momentum) of the demo's MLP (784-512-256-10, ReLU;
// lib/demo/mnist-mlp.ts) in float, with prepareQAT's default fake-quant (STE: per-channel int8
// weights, uint8 inputs) and with LSQ (learnable: true), at batch 64 and 256. Median of repeated
// steps after warm-up and the fastest step, on the default thread count. Target: a QAT step
// <= 1.3x the float step, judged on the fastest steps (the medians of a shared machine move by
// tens of percent between runs; the fastest steps do not).
//
// Every variant is timed in one process, the variants interleaved step by step (float, STE and
// LSQ with the native kernels and, unless --no-ts, STE and LSQ with the TypeScript backward loops
// the modules used before: the "before" columns), so that a noisy shared machine slows all of
// them alike. Needs dist/ (npm run build:ts) and the addon (npm run build:native).
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { cpuModel, root } from './common.mjs';
const argv = process.argv.slice(2);
const JSON_OUT = argv.includes('--json');
const QUICK = argv.includes('--quick');
const NO_TS = argv.includes('--no-ts');
if (argv.includes('--help') || argv.includes('-h')) {
  console.log('usage: node bench/qat.mjs [--json] [--quick] [--no-ts]\n  --json   machine-readable results on stdout (the table goes to stderr)\n  --quick  fewer steps (noisier)\n  --no-ts  skip the TypeScript-backward (before) columns');
  process.exit(0);
}
const say = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);
const BATCHES = [64, 256];
const TARGET = 1.3;

const require = createRequire(path.join(root, 'package.json'));
const qk = require(path.join(root, 'dist/cjs/index.js'));
// The modules' internal switch (not public): the 'native' kernels or the 'ts' loops.
const { setQatBackward } = require(path.join(root, 'dist/cjs/nn/fake-quantize.js'));
const { nn, prepareQAT } = qk;
const WARM = QUICK ? 2 : 4;
const STEPS = QUICK ? 9 : 61;

const VARIANTS = [
  { setup: 'float', backend: 'native' },
  { setup: 'ste', backend: 'native' },
  { setup: 'lsq', backend: 'native' },
  ...(NO_TS ? [] : [{ setup: 'ste', backend: 'ts' }, { setup: 'lsq', backend: 'ts' }]),
];

function stepper(setup, batch, x, y) {
  nn.manualSeed(7);
  const float = new nn.Sequential(new nn.Flatten(), new nn.Linear(784, 512), new nn.ReLU(), new nn.Linear(512, 256), new nn.ReLU(), new nn.Linear(256, 10));
  const model = setup === 'float' ? float : prepareQAT(float, setup === 'lsq' ? { learnable: true } : undefined);
  model.train(true);
  const opt = new nn.SGD(model, { lr: 0.01, momentum: 0.9 });
  return () => {
    opt.zeroGrad();
    const { grad } = nn.softmaxCrossEntropy(model.forward(x, batch), y);
    model.backward(grad, { inputGrad: false });
    opt.step();
  };
}

const ms = {};
for (const batch of BATCHES) {
  const rnd = new nn.Rng(1234);
  const x = new Float32Array(batch * 784);
  for (let i = 0; i < x.length; i++) x[i] = rnd.uniform(0, 1);
  const y = new Int32Array(batch);
  for (let i = 0; i < batch; i++) y[i] = i % 10;
  const runs = VARIANTS.map((v) => ({ ...v, step: stepper(v.setup, batch, x, y), t: [] }));
  for (let i = 0; i < WARM + STEPS; i++) {
    for (let j = 0; j < runs.length; j++) {
      const r = runs[(i + j) % runs.length]; // the order rotates: no variant always follows the same one
      setQatBackward(r.backend);
      const t0 = process.hrtime.bigint();
      r.step();
      if (i >= WARM) r.t.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  setQatBackward('native');
  for (const r of runs) {
    r.t.sort((a, b) => a - b);
    ms[`${r.setup}/${r.backend}/${batch}`] = r.t[r.t.length >> 1];
    ms[`${r.setup}/${r.backend}/${batch}/min`] = r.t[0];
  }
}

const rows = [];
for (const batch of BATCHES) {
  const base = ms[`float/native/${batch}`];
  for (const setup of ['float', 'ste', 'lsq']) {
    const r = { setup, batch, msNative: ms[`${setup}/native/${batch}`] };
    r.ratioNative = r.msNative / base;
    r.minNative = ms[`${setup}/native/${batch}/min`];
    r.minRatioNative = r.minNative / ms[`float/native/${batch}/min`];
    if (!NO_TS) {
      r.msTs = setup === 'float' ? base : ms[`${setup}/ts/${batch}`];
      r.ratioTs = r.msTs / base;
    }
    rows.push(r);
  }
}

const cpu = cpuModel();
const threads = qk.getNumThreads();
const fmt = (v) => v.toFixed(2);
say(`quantkit bench:qat: one SGD training step of the MLP 784-512-256-10, ms, median of ${STEPS} steps (${cpu}, ${os.availableParallelism?.() ?? os.cpus().length} CPUs, ${threads} threads)`);
say(`target: QAT step <= ${TARGET}x float, judged on the fastest steps (min: steady on a shared machine, where medians move by tens of %)`);
if (!NO_TS) say('before = the TypeScript STE / LSQ backward loops (QUANTKIT_QAT_BACKWARD=ts), median');
const head = NO_TS
  ? ['setup', 'batch', 'ms', 'x float', 'min ms', 'min x', 'target']
  : ['setup', 'batch', 'before ms', 'before x', 'native ms', 'native x', 'min ms', 'min x', 'target'];
const lines = [head];
for (const r of rows) {
  const ok = r.setup === 'float' ? '' : r.minRatioNative <= TARGET ? 'ok' : 'MISSED';
  lines.push(NO_TS
    ? [r.setup, String(r.batch), fmt(r.msNative), `${fmt(r.ratioNative)}x`, fmt(r.minNative), `${fmt(r.minRatioNative)}x`, ok]
    : [r.setup, String(r.batch), fmt(r.msTs), `${fmt(r.ratioTs)}x`, fmt(r.msNative), `${fmt(r.ratioNative)}x`, fmt(r.minNative), `${fmt(r.minRatioNative)}x`, ok]);
}
const w = head.map((_, c) => Math.max(...lines.map((l) => l[c].length)));
for (const l of lines) say(l.map((v, c) => (c < 2 ? v.padEnd(w[c]) : v.padStart(w[c]))).join('  '));
if (JSON_OUT) console.log(JSON.stringify({ cpu, threads, target: TARGET, rows }, null, 2));
