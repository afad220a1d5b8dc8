// The README's ONNX table: each real model (scripts/fetch-onnx-models.mjs) and the demo's MLP
// exported by exportOnnx, float vs quantized with quantizeOnnx in every mode: size, agreement
// with the float model and onnxruntime-node latency (median of many runs, one intra-op thread;
// the machine is shared, so compare ratios within one run).
//   npx vite-node scripts/onnx-table.ts [--runs N] [--json FILE]
import * as fs from 'node:fs';
import * as os from 'node:os';
import { quantizeOnnx, QuantizeOnnxOptions } from '../lib/onnx-model/quantize';
import { realModels } from '../test/onnx-helpers';
import { agreement, inputFor, latency, ModelId, vadCalibrationFeeds } from '../test/onnx-real';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] || 200) || 200;
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : null;
const { paths, why } = realModels();
if (!paths) { console.error(why); process.exit(1); }

const EVAL: Record<ModelId, number> = { detypify: 200, 'silero-vad': 6, openwakeword: 300 };
const CAL: Record<ModelId, number> = { detypify: 32, 'silero-vad': 4, openwakeword: 64 };
const rows: Record<string, unknown>[] = [];
const modes: [string, QuantizeOnnxOptions['mode'], Partial<QuantizeOnnxOptions>][] = [
  ['dynamic int8', 'dynamic', {}],
  ['dynamic int8, Conv as ConvInteger', 'dynamic', { dynamicConv: 'integer' }],
  ['static int8 QDQ (minmax)', 'static', {}],
  ['weight-only int4 g32 (MatMulNBits)', 'weight-only', {}],
  ['weight-only int4 g32 (MatMulNBits, accuracy_level 4)', 'weight-only', { accuracyLevel: 4 }],
];
for (const id of ['openwakeword', 'detypify', 'silero-vad'] as ModelId[]) {
  const modesHere = modes.filter(([label]) => id !== 'openwakeword' || !label.includes('ConvInteger'));
  const float = fs.readFileSync(paths[id]);
  const fl = await latency(id, float, runs);
  rows.push({ model: id, mode: 'float32', bytes: float.length, ratio: 1, latencyMs: fl, speedup: 1 });
  console.error(`${id} float: ${float.length} B, ${fl.toFixed(3)} ms`);
  for (const [label, mode, extra] of modesHere) {
    const opts: QuantizeOnnxOptions = { mode, ...extra };
    if (mode === 'static') {
      opts.calibrationData = id === 'silero-vad' ? await vadCalibrationFeeds(float, CAL[id]) : Array.from({ length: CAL[id] }, (_, i) => inputFor(id, 'calibration', i));
    }
    const r = await quantizeOnnx(float, opts);
    if (r.summary.quantizedNodes === 0) {
      rows.push({ model: id, mode: label, bytes: r.model.length, ratio: r.model.length / float.length, quantized: 0, note: r.summary.nodes.find((n) => ['Conv', 'MatMul', 'Gemm'].includes(n.opType))?.reason ?? 'no MatMul / Gemm' });
      continue;
    }
    const ag = await agreement(id, float, r.model, EVAL[id]);
    const ql = await latency(id, r.model, runs);
    rows.push({ model: id, mode: label, bytes: r.model.length, ratio: r.model.length / float.length, quantized: r.summary.quantizedNodes, ...ag, latencyMs: ql, speedup: fl / ql });
    console.error(`${id} ${label}: ${r.model.length} B, agreement ${ag.agreement.toFixed(4)}, cos ${ag.cosine.toFixed(5)}, ${ql.toFixed(3)} ms`);
  }
}
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`onnxruntime-node, 1 intra-op thread, median of ${runs} runs, ${cpu}, ${os.cpus().length} vCPUs, ${new Date().toISOString().slice(0, 10)}\n`);
console.log('| model | mode | size | vs float | agreement | cosine (mean / min) | mean abs diff | ORT latency | speed-up |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows as Record<string, number & string>[]) {
  const kb = `${(r.bytes / 1024).toFixed(0)} KiB`;
  if (r.mode === 'float32') { console.log(`| ${r.model} | float32 | ${kb} | 1.00x | | | | ${r.latencyMs.toFixed(3)} ms | 1.00x |`); continue; }
  if (!r.quantized) { console.log(`| ${r.model} | ${r.mode} | ${kb} | ${r.ratio.toFixed(2)}x | nothing quantized: ${r.note} | | | | |`); continue; }
  const conf = r.confidentN !== undefined ? ` (${(r.confidentAgreement * 100).toFixed(1)}% of ${r.confidentN} confident)` : '';
  console.log(`| ${r.model} | ${r.mode} | ${kb} | ${r.ratio.toFixed(2)}x | ${(r.agreement * 100).toFixed(2)}% of ${r.n}${conf} | ${r.cosine.toFixed(4)} / ${r.minCosine.toFixed(4)} | ${r.meanAbsDiff.toPrecision(3)} | ${r.latencyMs.toFixed(3)} ms | ${r.speedup.toFixed(2)}x |`);
}
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(rows, null, 2));
