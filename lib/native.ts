// The native boundary: the only module of lib/ that calls the addon (quantkit.node, loaded by
// binding.ts, its positional surface typed by binding.d.ts). Each native function is mapped here,
// in exactly one place, from named arguments (an object, enums, a layout object) to the addon's
// positional ones.
//
// These functions do no TypeScript validation: they are the unchecked internal entry for callers
// that checked their arguments already (the public API after lib/args.ts, QuantizedModel's stages,
// the observers). The addon checks every argument again (native/napi/args.h), so a bad call
// throws, never crashes. Hot callers: build each function's argument objects with one field
// order (few object shapes keep the property loads monomorphic); do not spread objects per call.
import type { ByteCodes, NativeCpuInfo, NativeKernelEntry, OneShotB, ZeroPointArg } from '../binding';
import { native as addon } from './binding';
import { isNibble, type Formula as SpecFormula, type StorageDtype } from './spec';

// ---- enums ------------------------------------------------------------------------------------
// One source: native/napi/enums.def. The addon exports that table as `enums`; enumMismatches()
// compares it with these declarations when this module loads, and test/native.test.ts does too.

/** gemm's epilogue: the exact int32 accumulator, float32, or requantized int8 / uint8. */
export enum OutputKind { Int32 = 0, Float32 = 1, Int8 = 2, Uint8 = 3 }
/** How codes are stored: one per byte, or two per byte (low nibble first). */
export enum Storage { Byte = 0, Nibble = 1 }
/** How x is divided by the scale: ONNX divides; PyTorch multiplies by the float32 reciprocal. */
export enum Formula { Onnx = 0, Pytorch = 1 }
/** The groups of a layout: one, one per index of the axis, or blocks along the axis. */
export enum GranularityCode { PerTensor = 0, PerAxis = 1, Blocked = 2 }

export const ENUMS = { OutputKind, Storage, Formula, GranularityCode } as const;

/** Differences between the TypeScript enums and a native table ({ type: { member: value } }). */
export function enumMismatches(table: unknown): string[] {
  const bad: string[] = [];
  if (typeof table !== 'object' || table === null) return ['no enum table'];
  const t = table as Record<string, Record<string, unknown>>;
  const types = new Set([...Object.keys(ENUMS), ...Object.keys(t)]);
  for (const type of types) {
    const ts = (ENUMS as Record<string, Record<string, unknown>>)[type];
    const nat = t[type];
    if (ts === undefined || nat === undefined) {
      bad.push(`${type}: ${ts === undefined ? 'not in lib/native.ts' : 'not in enums.def'}`);
      continue;
    }
    const members = Object.keys(ts).filter((k) => Number.isNaN(Number(k))); // not the reverse mappings
    for (const m of new Set([...members, ...Object.keys(nat)])) {
      if (ts[m] !== nat[m]) bad.push(`${type}.${m}: ${String(ts[m])} here, ${String(nat[m])} natively`);
    }
  }
  return bad;
}

{
  // An addon built before the table existed has the same codes; one built from other sources fails here.
  const table = (addon as { enums?: unknown }).enums;
  const bad = table === undefined ? [] : enumMismatches(table);
  if (bad.length) {
    throw new Error(`quantkit: the native addon's enums differ from lib/native.ts (${bad.join('; ')}); rebuild it (npm run build:native)`);
  }
}

/** StorageDtype -> Storage. */
export function storageOf(dtype: StorageDtype): Storage {
  return isNibble(dtype) ? Storage.Nibble : Storage.Byte;
}

/** QuantSpec formula -> Formula. */
export function formulaOf(formula: SpecFormula): Formula {
  return formula === 'pytorch' ? Formula.Pytorch : Formula.Onnx;
}

// ---- quantize family --------------------------------------------------------------------------

/** A tensor seen as [outer, axisDim, inner] around the quantization axis (layout.ts builds them). */
export interface NativeLayout {
  gran: GranularityCode;
  outer: number;
  axisDim: number;
  inner: number;
  /** 0 unless blocked. */
  blockSize: number;
}

/** The qparams of a quantize-family call: one scale and zero point per group of the layout. */
export interface QParamsArgs {
  /** A number: per-tensor. */
  scale: number | Float32Array;
  zeroPoint: ZeroPointArg;
  layout: NativeLayout;
}

/** The codes a quantizing call produces, and how it divides by the scale. */
export interface CodeRangeArgs {
  qmin: number;
  qmax: number;
  formula: Formula;
}

export interface QuantizeArgs extends QParamsArgs, CodeRangeArgs {
  x: Float32Array;
  /** Int8Array for signed byte codes, else Uint8Array (nibbles: ceil(n / 2) bytes). */
  out: ByteCodes;
  storage: Storage;
}

/** out = saturate(round_half_even(x / scale) + zeroPoint) per group. */
export function quantize(a: QuantizeArgs): void {
  const L = a.layout;
  addon.quantize(a.x, a.out, a.scale, a.zeroPoint, a.storage, L.outer, L.axisDim, L.inner, L.gran, L.blockSize,
    a.qmin, a.qmax, a.formula);
}

export interface DequantizeArgs extends QParamsArgs {
  q: ByteCodes;
  out: Float32Array;
  /** Codes are signed (int8 / int4). */
  signed: boolean;
  storage: Storage;
}

/** out = (q - zeroPoint) * scale per group. */
export function dequantize(a: DequantizeArgs): void {
  const L = a.layout;
  addon.dequantize(a.q, a.out, a.scale, a.zeroPoint, a.signed, a.storage, L.outer, L.axisDim, L.inner, L.gran, L.blockSize);
}

export interface FakeQuantizeArgs extends QParamsArgs, CodeRangeArgs {
  x: Float32Array;
  /** May be x itself. */
  out: Float32Array;
  /** The straight-through-estimator mask, or null. */
  mask: Uint8Array | null;
}

/** out = dequantize(quantize(x)) in one pass. */
export function fakeQuantize(a: FakeQuantizeArgs): void {
  const L = a.layout;
  addon.fakeQuantize(a.x, a.out, a.mask, a.scale, a.zeroPoint, L.outer, L.axisDim, L.inner, L.gran, L.blockSize,
    a.qmin, a.qmax, a.formula);
}

// ---- quantization-aware training (native/napi/qat.cc) ------------------------------------------

/**
 * The straight-through estimator: dx = dy * mask (accumulate: dx += dy * mask), float32; dx may be
 * dy itself. Returns the count of non-finite dy, which give +0 (callers refuse them).
 */
export function steBackward(dy: Float32Array, mask: Uint8Array, dx: Float32Array, accumulate: boolean): number {
  return addon.steBackward(dy, mask, dx, accumulate);
}

export interface LsqBackwardArgs {
  x: Float32Array;
  dy: Float32Array;
  /** Per group, each a normal positive float32. */
  scale: Float32Array;
  /** The backward zero point per group (lib/nn/lsq.ts lsqBackwardZeroPoint), in [qmin, qmax]. */
  zeroPoint: Int32Array;
  /** Per tensor or per axis (no blocks). */
  layout: NativeLayout;
  qmin: number;
  qmax: number;
  /** A positive finite float32: 1, or LSQ's 1 / sqrt(numel * qmax). */
  gradFactor: number;
  /** Written (accumulate: added to), or null for no input gradient. */
  dx: Float32Array | null;
  accumulate: boolean;
  /** Per group, added to: the sums of the scale terms (fixed order, docs/qat.md). */
  dScale: Float64Array;
  /** Per group, added to: the sums of the zero-point terms. */
  dZeroPoint: Float64Array;
}

/**
 * PyTorch 1.13's LSQ backward (lib/nn/lsq.ts lsqGradOne per element, bit for bit), the per-group
 * sums in float64 in a fixed order. Returns the count of bad elements (x NaN, dy not finite), which
 * give +0 (callers refuse them).
 */
export function lsqBackward(a: LsqBackwardArgs): number {
  const L = a.layout;
  return addon.lsqBackward(a.x, a.dy, a.scale, a.zeroPoint, L.outer, L.axisDim, L.inner, L.gran as 0 | 1, a.qmin, a.qmax,
    a.gradFactor, a.dx, a.accumulate, a.dScale, a.dZeroPoint);
}

export interface MinMaxResult {
  /** Per group (one entry for per-tensor): the smallest finite value, +Infinity if none. */
  min: Float32Array;
  /** Per group: the largest finite value, -Infinity if none. */
  max: Float32Array;
  /** NaN values skipped. */
  nanCount: number;
  /** +-Infinity values skipped. */
  infCount: number;
}

/** Min and max of the finite values of each group of the layout (-0 reported as 0). */
export function minMax(x: Float32Array, layout: NativeLayout & { groups: number }): MinMaxResult {
  const L = layout;
  const min = new Float32Array(L.groups);
  const max = new Float32Array(L.groups);
  const [nanCount, infCount] = addon.minMax(x, min, max, L.outer, L.axisDim, L.inner, L.gran, L.blockSize);
  return { min, max, nanCount, infCount };
}

/** ONNX DynamicQuantizeLinear into out; returns [scale, zeroPoint]. */
export function dynamicQuantize(x: Float32Array, out: Uint8Array): [scale: number, zeroPoint: number] {
  return addon.dynamicQuantize(x, out);
}

export interface HistogramArgs {
  x: Float32Array;
  /** groups * bins counts, added to. */
  counts: Float64Array;
  /** Range of each group: finite, lo[g] < hi[g]. */
  lo: Float32Array;
  hi: Float32Array;
  bins: number;
  /** Count |x| instead of x. */
  abs: boolean;
  /** PerTensor or PerAxis (no blocks). */
  layout: NativeLayout;
}

/** Adds the counts of the finite values of x in [lo, hi] (torch.histc's bins) per group. */
export function histogram(a: HistogramArgs): void {
  const L = a.layout;
  addon.histogram(a.x, a.counts, a.lo, a.hi, a.bins, a.abs ? 1 : 0, L.outer, L.axisDim, L.inner, L.gran as 0 | 1);
}

// ---- int8 GEMM --------------------------------------------------------------------------------

declare const packedBrand: unique symbol;
/** A B matrix packed for the int8 GEMM (an opaque native handle, freed by the GC). */
export type PackedHandle = { readonly [packedBrand]: 'PackedB' };

/** A B matrix (K x N) packed for one gemm call and freed when it returns (binding.d.ts). */
export type { OneShotB };

export interface GemmPackArgs {
  b: ByteCodes;
  /** b is Int8Array (int8 weights), else Uint8Array. */
  signed: boolean;
  K: number;
  N: number;
  /** b is N x K instead of K x N. */
  transposed: boolean;
  /** One, or one per column. */
  zeroPoint: ZeroPointArg;
  scale: number | Float32Array;
}

export function gemmPack(a: GemmPackArgs): { handle: PackedHandle; byteLength: number } {
  const [handle, byteLength] = addon.gemmPack(a.b, a.signed, a.K, a.N, a.transposed, a.zeroPoint, a.scale);
  return { handle: handle as PackedHandle, byteLength };
}

export interface GemmArgs<Out extends ArrayBufferView | null = ArrayBufferView> {
  /** M x K codes. */
  a: ByteCodes;
  aSigned: boolean;
  M: number;
  packed: PackedHandle | OneShotB;
  /** One, or one per row. */
  aZeroPoint: ZeroPointArg;
  output: OutputKind;
  /** M x N of the output's type (async calls: null for a new one). */
  out: Out;
  /** One, or one per row; null for 1 (not with Int32 output). */
  aScale: number | Float32Array | null;
  /** Float32Array (Float32 output) or Int32Array (Int8 / Uint8 output) of N, or null. */
  bias: Float32Array | Int32Array | null;
  relu: boolean;
  /** Int8 / Uint8 output: its scale and zero point (else 1 and 0). */
  outScale: number;
  outZeroPoint: number;
}

/** A x packed B with the output's epilogue, into g.out. */
export function gemm(g: GemmArgs): void {
  addon.gemm(g.a, g.aSigned, g.M, g.packed, g.aZeroPoint, g.output, g.out, g.aScale, g.bias, g.relu, g.outScale, g.outZeroPoint);
}

/** gemm off the event loop (inputs copied natively); resolves to g.out or a new array. */
export function gemmAsync(g: GemmArgs<ArrayBufferView | null>): Promise<ArrayBufferView> {
  return addon.gemmAsync(g.a, g.aSigned, g.M, g.packed, g.aZeroPoint, g.output, g.out, g.aScale, g.bias, g.relu, g.outScale,
    g.outZeroPoint);
}

export interface LinearDynamicArgs<Out extends Float32Array | null = Float32Array> {
  /** M x K. */
  x: Float32Array;
  M: number;
  packed: PackedHandle;
  bias: Float32Array | null;
  relu: boolean;
  /** One activation scale per row (else per tensor). */
  perRow: boolean;
  /** Symmetric int8 activations (else asymmetric uint8). */
  actSigned: boolean;
  out: Out;
}

/** x quantized on the fly, int8 GEMM with packed B, float32 into l.out. */
export function linearDynamic(l: LinearDynamicArgs): void {
  addon.linearDynamic(l.x, l.M, l.packed, l.bias, l.relu, l.perRow, l.actSigned, l.out);
}

export function linearDynamicAsync(l: LinearDynamicArgs<Float32Array | null>): Promise<Float32Array> {
  return addon.linearDynamicAsync(l.x, l.M, l.packed, l.bias, l.relu, l.perRow, l.actSigned, l.out);
}

// ---- fp32 GEMM --------------------------------------------------------------------------------

declare const packedF32Brand: unique symbol;
/** A B matrix packed for the fp32 GEMM (an opaque native handle, freed by the GC). */
export type PackedF32Handle = { readonly [packedF32Brand]: 'PackedF32' };

/** Whether the addon has the fp32 GEMM (an older prebuilt binary may not). */
export const hasSgemm = typeof (addon as Partial<typeof addon>).sgemm === 'function';

export function sgemmPack(b: Float32Array, K: number, N: number, transposed: boolean): { handle: PackedF32Handle; byteLength: number } {
  const [handle, byteLength] = addon.sgemmPack(b, K, N, transposed);
  return { handle: handle as PackedF32Handle, byteLength };
}

export interface SgemmArgs<Out extends Float32Array | null = Float32Array> {
  /** M x K. */
  a: Float32Array;
  /** K x N (N x K with transB), or packed. */
  b: Float32Array | PackedF32Handle;
  /** M x N (async calls: null for a new one). */
  out: Out;
  M: number;
  K: number;
  N: number;
  transB: boolean;
  bias: Float32Array | null;
  relu: boolean;
}

export function sgemm(s: SgemmArgs): void {
  addon.sgemm(s.a, s.b, s.out, s.M, s.K, s.N, s.transB, s.bias, s.relu);
}

export function sgemmAsync(s: SgemmArgs<Float32Array | null>): Promise<Float32Array> {
  return addon.sgemmAsync(s.a, s.b, s.out, s.M, s.K, s.N, s.transB, s.bias, s.relu);
}

// ---- block-quantized GEMM (MatMulNBits) -------------------------------------------------------

declare const packedNBitsBrand: unique symbol;
/** Block-quantized weights packed for the nbits kernels (an opaque native handle, freed by the GC). */
export type PackedNBitsHandle = { readonly [packedNBitsBrand]: 'PackedNBits' };

export interface NBitsPackArgs {
  /** Unsigned codes [N, K], one per byte. */
  codes: Uint8Array;
  /** [N, kBlocks]. */
  scales: Float32Array;
  /** [N, kBlocks], or null: symmetric (2^(bits-1)). */
  zeroPoints: Uint8Array | null;
  K: number;
  N: number;
  bits: number;
  blockSize: number;
}

export function nbitsPack(a: NBitsPackArgs): { handle: PackedNBitsHandle; byteLength: number } {
  const [handle, byteLength] = addon.nbitsPack(a.codes, a.scales, a.zeroPoints, a.K, a.N, a.bits, a.blockSize);
  return { handle: handle as PackedNBitsHandle, byteLength };
}

export function nbitsUnpack(packed: PackedNBitsHandle, codes: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array): void {
  addon.nbitsUnpack(packed, codes, scales, zeroPoints);
}

export interface NBitsMatmulArgs<Out extends Float32Array | null = Float32Array> {
  /** M x K. */
  x: Float32Array;
  packed: PackedNBitsHandle;
  /** M x N (async calls: null for a new one). */
  out: Out;
  M: number;
  bias: Float32Array | null;
  relu: boolean;
  /** int8 compute (activation blocks quantized) instead of fp32. */
  int8: boolean;
}

export function nbitsMatmul(a: NBitsMatmulArgs): void {
  addon.nbitsMatmul(a.x, a.packed, a.out, a.M, a.bias, a.relu, a.int8);
}

export function nbitsMatmulAsync(a: NBitsMatmulArgs<Float32Array | null>): Promise<Float32Array> {
  return addon.nbitsMatmulAsync(a.x, a.packed, a.out, a.M, a.bias, a.relu, a.int8);
}

export function streamSum(bytes: Uint8Array): number {
  return addon.streamSum(bytes);
}

// ---- CPU, kernel paths, threads ---------------------------------------------------------------

export function cpuInfo(): NativeCpuInfo {
  return addon.cpuInfo();
}

export function kernelList(): NativeKernelEntry[] {
  return addon.kernelList();
}

export function setIsa(path: string): void {
  addon.setIsa(path);
}

export function setNumThreads(n: number): void {
  addon.setNumThreads(n);
}

export function getNumThreads(): number {
  return addon.getNumThreads();
}

/**
 * The thread count a process starts with: QUANTKIT_NUM_THREADS when set (an integer 1..1024, else
 * an error at load, as QUANTKIT_ISA); otherwise 1 in a node:cluster worker (a server that runs one
 * process per core already uses every core: N workers of N threads each would put N^2 threads on
 * N cores, and every parallel call would wait for descheduled helpers); otherwise the CPUs this
 * process may run on. Returns where the count came from (cpuInfo().threadsFrom).
 */
export type ThreadsFrom = 'cpus' | 'QUANTKIT_NUM_THREADS' | 'cluster-worker' | 'setNumThreads';
export function initialThreads(env: Record<string, string | undefined>, clusterWorker: boolean): ThreadsFrom {
  const v = env.QUANTKIT_NUM_THREADS;
  if (v !== undefined && v !== '') {
    const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 1024) {
      throw new RangeError(`Expected QUANTKIT_NUM_THREADS to be an integer from 1 to 1024 but received '${v}'`);
    }
    addon.setNumThreads(n);
    return 'QUANTKIT_NUM_THREADS';
  }
  if (clusterWorker) {
    addon.setNumThreads(1);
    return 'cluster-worker';
  }
  return 'cpus';
}
