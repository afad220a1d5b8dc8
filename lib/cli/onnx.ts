// The ONNX commands of the CLI: `quantkit quantize MODEL.onnx -o OUT.onnx ...` and
// `quantkit info MODEL.onnx` (dispatched from lib/cli/main.ts for .onnx inputs).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadSafetensors, SafetensorsTensor } from '../io/safetensors';
import { OBSERVER_NAMES, OnnxObserverName, Feed } from '../onnx-model/calibrate';
import { inspectOnnx, OnnxValueInfo } from '../onnx-model/inspect';
import { writeFileAtomicSync } from '../io/atomic';
import { OnnxNodeSummary, quantizeOnnx, QuantizeOnnxOptions } from '../onnx-model/quantize';

interface Out {
  out: (s: string) => void;
  err: (s: string) => void;
  isTTY: boolean;
}

class Usage extends Error {}

export const ONNX_HELP = `ONNX models (MODEL.onnx):
  quantkit quantize MODEL.onnx -o OUT.onnx [options]
    --mode dynamic|static|weight-only   default dynamic
    --calibration FILE.safetensors  static: input tensors named by graph input, first
                                    dimension the batch (I32 becomes int64 where the
                                    input is int64; tensors of lower rank than their
                                    input are given whole to every batch)
    --batch N                       static: rows per calibration run (default: the
                                    input's fixed first dimension, else 32)
    --observer NAME                 static: minmax (default), moving-average, histogram,
                                    percentile, mse, entropy
    --activation-type uint8|int8    static activations (default uint8)
    --weight-type int8|uint8        dynamic / static weights (default int8, symmetric)
    --per-tensor                    one weight scale per tensor instead of per channel
    --bits 4|8                      weight-only bits (2..8, default 4)
    --block-size N                  weight-only block along K (default 32)
    --asymmetric                    weight-only: zero point per block
    --format matmulnbits|qdq        weight-only: com.microsoft MatMulNBits (default) or
                                    opset-21 blocked DequantizeLinear + MatMul
    --exclude NAME,...              node names to leave float
    --op-types TYPE,...             operators to quantize (default MatMul,Gemm,Conv; static
                                    adds Add; weight-only MatMul,Gemm)
    --summary FILE.json             write the per-node summary
  quantkit info MODEL.onnx          opsets, inputs, operators, sizes, what would be quantized
`;

function fmtBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function intOpt(name: string, v: string | undefined, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < lo || n > hi) throw new Usage(`--${name} expects an integer between ${lo} and ${hi}, got '${v}'`);
  return n;
}

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new Usage(`--${name} expects one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

/** Calibration feeds from a safetensors file: each graph input's tensor split into batches along dim 0. */
export function* feedsFromFile(file: string, inputs: OnnxValueInfo[], batchOpt: number | undefined): Generator<Feed> {
  const f = loadSafetensors(file);
  const names = Object.keys(f.tensors);
  for (const n of names) {
    if (!inputs.some((i) => i.name === n)) throw new Error(`${file}: tensor '${n}' is not a graph input (inputs: ${inputs.map((i) => i.name).join(', ')})`);
  }
  for (const i of inputs) if (!(i.name in f.tensors)) throw new Error(`${file}: no tensor for graph input '${i.name}'`);
  let rows: number | null = null;
  const split: { info: OnnxValueInfo; t: SafetensorsTensor; whole: boolean }[] = [];
  for (const info of inputs) {
    const t = f.tensors[info.name];
    const whole = info.shape !== null && t.shape.length < info.shape.length || t.shape.length === 0;
    if (!whole) {
      if (rows !== null && t.shape[0] !== rows) throw new Error(`${file}: tensor '${info.name}' has ${t.shape[0]} rows but another input has ${rows}`);
      rows = t.shape[0];
    }
    split.push({ info, t, whole });
  }
  if (rows === null || rows === 0) throw new Error(`${file}: no rows to calibrate on`);
  const first = inputs.map((i) => (i.shape && typeof i.shape[0] === 'number' ? i.shape[0] : null)).find((d) => d !== null) ?? null;
  const batch = batchOpt ?? first ?? 32;
  if (first !== null && batch !== first) throw new Error(`--batch ${batch}: the model's inputs take a fixed batch of ${first}`);
  for (let r = 0; r < rows; r += batch) {
    const n = Math.min(batch, rows - r);
    if (first !== null && n !== first) break; // a fixed-batch model: drop the partial tail
    const feed: Feed = {};
    for (const { info, t, whole } of split) {
      const per = whole ? 0 : t.shape.slice(1).reduce((a, b) => a * b, 1);
      const data = whole ? t.data : t.data.subarray(r * per, (r + n) * per);
      const dims = whole ? t.shape : [n, ...t.shape.slice(1)];
      if (info.type === 'int64') feed[info.name] = { data: BigInt64Array.from(data as ArrayLike<number>, (v) => BigInt(v)), dims };
      else if (info.type === 'float32' && t.dtype !== 'F32') throw new Error(`${file}: tensor '${info.name}' is ${t.dtype} but the input is float32`);
      else feed[info.name] = { data, dims };
    }
    yield feed;
  }
}

async function quantizeCmd(argv: string[], io: Out): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      output: { type: 'string', short: 'o' }, mode: { type: 'string' }, calibration: { type: 'string' }, batch: { type: 'string' },
      observer: { type: 'string' }, 'activation-type': { type: 'string' }, 'weight-type': { type: 'string' }, 'per-tensor': { type: 'boolean' },
      bits: { type: 'string' }, 'block-size': { type: 'string' }, asymmetric: { type: 'boolean' }, format: { type: 'string' },
      exclude: { type: 'string' }, 'op-types': { type: 'string' }, summary: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new Usage('quantize takes one input model: quantkit quantize MODEL.onnx -o OUT.onnx');
  if (!v.output) throw new Usage('quantize needs an output file: -o OUT.onnx');
  const input = positionals[0];
  const mode = oneOf('mode', v.mode as string | undefined, ['dynamic', 'static', 'weight-only'] as const) ?? 'dynamic';
  if (mode === 'static' && !v.calibration) throw new Usage('--mode static needs --calibration FILE.safetensors (input tensors named by graph input)');
  if (mode !== 'static') for (const k of ['calibration', 'observer', 'activation-type', 'batch'] as const) if (v[k] !== undefined) throw new Usage(`--${k} is only for --mode static`);
  if (mode !== 'weight-only') for (const k of ['bits', 'block-size', 'asymmetric', 'format'] as const) if (v[k] !== undefined) throw new Usage(`--${k} is only for --mode weight-only`);
  const outDir = path.dirname(path.resolve(v.output as string));
  if (!fs.existsSync(outDir)) throw new Error(`${v.output}: cannot write it, the folder ${outDir} does not exist`);
  const opts: QuantizeOnnxOptions = { mode };
  const obs = oneOf('observer', v.observer as string | undefined, OBSERVER_NAMES);
  if (obs) opts.observer = obs as OnnxObserverName;
  const at = oneOf('activation-type', v['activation-type'] as string | undefined, ['uint8', 'int8'] as const);
  if (at) opts.activationType = at;
  const wt = oneOf('weight-type', v['weight-type'] as string | undefined, ['int8', 'uint8'] as const);
  if (wt) opts.weightType = wt;
  if (v['per-tensor']) opts.perChannel = false;
  const bits = intOpt('bits', v.bits as string | undefined, 2, 8);
  if (bits !== undefined) opts.bits = bits;
  const bs = intOpt('block-size', v['block-size'] as string | undefined, 16, 1 << 20);
  if (bs !== undefined) opts.blockSize = bs;
  if (v.asymmetric) opts.symmetric = false;
  const fmt = oneOf('format', v.format as string | undefined, ['matmulnbits', 'qdq'] as const);
  if (fmt) opts.weightOnlyFormat = fmt;
  const ex = list(v.exclude as string | undefined);
  if (ex) opts.exclude = ex;
  const ot = list(v['op-types'] as string | undefined);
  if (ot) opts.opTypes = ot;
  let total: number | null = null;
  if (mode === 'static') {
    const info = await inspectOnnx(input);
    const batch = intOpt('batch', v.batch as string | undefined, 1, 1 << 30);
    const file = v.calibration as string;
    if (!fs.existsSync(file)) throw new Error(`${file}: calibration file not found`);
    const feeds = [...feedsFromFile(file, info.inputs, batch)];
    total = feeds.length;
    opts.calibrationData = feeds;
    io.err(`calibrating on ${feeds.length} batch${feeds.length === 1 ? '' : 'es'} from ${file}\n`);
  }
  let last = -1;
  opts.onProgress = (p) => {
    if (p.phase !== 'calibrate') return;
    const pct = total ? Math.floor((100 * p.done) / total) : 0;
    if (io.isTTY) io.err(`\rcalibrating ${p.done}/${total ?? '?'} (${pct}%)\x1b[K`);
    else if (pct >= last + 10 || p.done === total) { io.err(`calibrating ${p.done}/${total ?? '?'} (${pct}%)\n`); last = pct; }
  };
  const r = await quantizeOnnx(input, opts);
  if (io.isTTY && mode === 'static') io.err('\r\x1b[K');
  writeFileAtomicSync(v.output as string, (put) => put(r.model));
  if (v.summary) writeFileAtomicSync(v.summary as string, (put) => put(new TextEncoder().encode(JSON.stringify(r.summary, null, 2) + '\n')));
  const s = r.summary;
  const quantizable = s.nodes.filter((n) => n.quantized || (n.reason && !/is not quantized|not in options.opTypes|left as is/.test(n.reason)));
  io.out(`${v.output}: ${mode}; ${s.quantizedNodes} node${s.quantizedNodes === 1 ? '' : 's'} quantized; ${fmtBytes(s.bytesBefore)} -> ${fmtBytes(s.bytesAfter)} (${(s.bytesAfter / s.bytesBefore).toFixed(3)}x); opset ${s.opset.before} -> ${s.opset.after}${s.addedDomains.length ? ` + ${s.addedDomains.join(', ')}` : ''}\n`);
  const left = quantizable.filter((n) => !n.quantized);
  for (const n of left.slice(0, 20)) io.out(`  left float: ${n.opType} '${n.name}' (${n.graph}): ${n.reason}\n`);
  if (left.length > 20) io.out(`  ... and ${left.length - 20} more (see --summary)\n`);
  for (const note of s.notes.slice(0, 10)) io.out(`  note: ${note}\n`);
  return 0;
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((s, c) => s.padEnd(w[c])).join('  ').trimEnd()).join('\n');
}

async function infoCmd(argv: string[], io: Out): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: {} });
  if (positionals.length !== 1) throw new Usage('info needs one file: quantkit info MODEL.onnx');
  const i = await inspectOnnx(positionals[0]);
  const shape = (x: OnnxValueInfo) => `${x.type}${x.shape ? ` [${x.shape.map((d) => d ?? '?').join(', ')}]` : ''}`;
  io.out(`${positionals[0]}: ${fmtBytes(i.fileBytes)}, IR ${i.irVersion}, opsets ${i.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}${i.producer ? `, from ${i.producer}` : ''}\n`);
  io.out(`inputs:  ${i.inputs.map((x) => `${x.name} ${shape(x)}`).join('; ')}\noutputs: ${i.outputs.map((x) => `${x.name} ${shape(x)}`).join('; ')}\n`);
  io.out(`${i.nodes} nodes${i.subgraphs ? ` (${i.subgraphs} subgraphs)` : ''}: ${Object.entries(i.ops).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}\n`);
  io.out(`initializers: ${Object.entries(i.initializerBytes).map(([k, n]) => `${k} ${fmtBytes(n)}`).join(', ')}\n\n`);
  const rows = [['mode', 'quantized', 'weights before', 'after', 'left float (quantizable ops)']];
  for (const mode of ['dynamic', 'weight-only'] as const) {
    const ns: OnnxNodeSummary[] = i.plan[mode];
    const q = ns.filter((n) => n.quantized);
    const left = ns.filter((n) => !n.quantized && n.reason && !/is not quantized|not in options.opTypes|left as is/.test(n.reason));
    rows.push([mode, String(q.length), fmtBytes(q.reduce((a, n) => a + n.bytesBefore, 0)), fmtBytes(q.reduce((a, n) => a + n.bytesAfter, 0)),
      left.length ? left.slice(0, 3).map((n) => `${n.opType} '${n.name}': ${n.reason}`).join('; ') + (left.length > 3 ? ` (+${left.length - 3})` : '') : '-']);
  }
  io.out(table(rows) + '\n');
  const lstm = Object.entries(i.ops).filter(([k]) => ['LSTM', 'GRU', 'RNN'].includes(k));
  if (lstm.length) io.out(`not quantized: ${lstm.map(([k, n]) => `${k} ${n}`).join(', ')} (recurrent ops stay float)\n`);
  io.out(`static mode quantizes the dynamic set in the main graph, plus Adds of two activations (needs --calibration)\n`);
  return 0;
}

/** True when a quantize / info command line names an .onnx model. */
export function isOnnxCommand(argv: string[]): boolean {
  return argv.some((a) => !a.startsWith('-') && /\.onnx$/i.test(a)) && !argv.includes('--help');
}

/** Runs `quantize` or `info` on an ONNX model; resolves to the exit code. */
export async function onnxCommand(cmd: 'quantize' | 'info', argv: string[], io: Out): Promise<number> {
  try {
    return cmd === 'quantize' ? await quantizeCmd(argv, io) : await infoCmd(argv, io);
  } catch (e) {
    if (e instanceof Usage || (e as NodeJS.ErrnoException).code?.startsWith?.('ERR_PARSE_ARGS')) {
      io.err(`quantkit: ${(e as Error).message}\n\n${ONNX_HELP}`);
      return 2;
    }
    throw e;
  }
}
