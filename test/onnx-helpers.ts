// Shared by the ONNX tests: the real models (fetched by scripts/fetch-onnx-models.mjs), ONNX's
// backend test data (Debian libonnx-testdata), onnxruntime-node, small input generators.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..');
export const BACKEND_DIR = '/usr/share/libonnx-testdata/data/node';

/** Paths of the real models, or the reason they are missing (only an unreachable registry skips). */
export function realModels(): { paths: Record<'detypify' | 'silero-vad' | 'openwakeword', string> | null; why: string } {
  try {
    const out = execFileSync(process.execPath, [path.join(ROOT, 'scripts/fetch-onnx-models.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const paths: Record<string, string> = {};
    for (const line of out.trim().split('\n')) {
      const i = line.indexOf(': ');
      paths[line.slice(0, i)] = line.slice(i + 2);
    }
    return { paths: paths as never, why: '' };
  } catch (e) {
    const err = e as { status?: number; stderr?: string };
    if (err.status === 3) return { paths: null, why: `skipped: ${err.stderr?.trim()}` };
    throw new Error(`fetching the ONNX test models failed: ${err.stderr ?? String(e)}`);
  }
}

export function backendAvailable(): boolean {
  return fs.existsSync(BACKEND_DIR);
}

/** Deterministic uniform [0, 1) numbers. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

export function normal(n: number, seed: number, std = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12), v = r();
    const m = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, x = 0, y = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; x += a[i] * a[i]; y += b[i] * b[i]; }
  return d / Math.sqrt(x * y);
}

export function argmax(a: ArrayLike<number>, off = 0, n = a.length): number {
  let best = off;
  for (let i = off; i < off + n; i++) if (a[i] > a[best]) best = i;
  return best - off;
}
