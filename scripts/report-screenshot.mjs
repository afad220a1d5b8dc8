#!/usr/bin/env node
// Regenerates docs/report-mnist.png, the README's picture of `quantkit report` on the demo's
// MNIST MLP: the checkpoint of `quantkit demo` (trained and cached when missing), the report
// written by the CLI as a user runs it, and a screenshot of its top by headless Chromium (Debian's
// `chromium`, its own --screenshot flag). Usage: npm run build:ts && node scripts/report-screenshot.mjs [OUT.png]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(process.argv[2] ?? path.join(root, 'docs', 'report-mnist.png'));
const { data, demo } = await import(path.join(root, 'dist', 'esm', 'index.mjs'));
const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
if (!chromium) throw new Error('no chromium at /usr/bin/chromium: apt-get install chromium');

// The demo's checkpoint (8 epochs, seed 1), as `quantkit demo` makes it.
const dir = data.mnistDataDir();
const tr = data.loadMnistSync(dir, 'train'), te = data.loadMnistSync(dir, 't10k');
const { checkpoint } = demo.loadOrTrainMlp(
  { xTrain: data.imagesToFloat32(tr), yTrain: tr.labels, xTest: data.imagesToFloat32(te), yTest: te.labels },
  { dataset: 'mnist', epochs: 8, seed: 1, dir: demo.cacheDir(), onEvent: (e) => console.error(`checkpoint: ${e.kind}${e.file ? ` ${e.file}` : ''}`) },
);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-shot-'));
try {
  const html = path.join(tmp, 'report.html');
  fs.copyFileSync(checkpoint, path.join(tmp, 'mnist-mlp.safetensors'));
  execFileSync(process.execPath, [path.join(root, 'bin', 'quantkit.js'), 'report', 'mnist-mlp.safetensors', '--calibration', 'mnist', '--budget', '0.5',
    '--title', 'quantkit report: MNIST MLP 784-512-256-10', '-o', 'report.html'], { stdio: 'inherit', cwd: tmp });
  execFileSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', `--user-data-dir=${path.join(tmp, 'profile')}`, '--hide-scrollbars', '--force-device-scale-factor=1', '--window-size=1060,1480',
    `--screenshot=${out}`, `file://${html}`], { stdio: ['ignore', 'ignore', 'ignore'] });
  console.error(`wrote ${out} (${(fs.statSync(out).size / 1024).toFixed(0)} KiB)`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
