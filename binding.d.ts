// The raw native surface of quantkit.node (native/napi/*.cc), positional for speed. In lib/, only
// lib/native.ts calls it (named arguments, enums); application code should use the checked API
// (package entry). These functions re-check their arguments in C++ (native/napi/args.h) but give
// positional, less friendly messages. The codes are those of native/napi/enums.def (lib/native.ts
// declares them as the enums OutputKind, Storage, Formula, GranularityCode).

export type ByteCodes = Int8Array | Uint8Array;
export type ZeroPointArg = number | Int32Array | Int8Array | Uint8Array;

/** GranularityCode: 0 = per-tensor, 1 = per-axis, 2 = blocked. */
export type GranularityCode = 0 | 1 | 2;
/** Storage: 0 = one code per byte, 1 = two codes per byte (low nibble first). */
export type StorageCode = 0 | 1;
/** Formula: 0 = divide by the scale (ONNX), 1 = multiply by its float32 reciprocal (PyTorch). */
export type FormulaCode = 0 | 1;
/** OutputKind: 0 = int32, 1 = float32, 2 = int8, 3 = uint8. */
export type OutputKindCode = 0 | 1 | 2 | 3;

export interface NativeCpuInfo {
  arch: 'x86_64' | 'arm64' | 'other';
  features: string[];
  builtPaths: string[];
  supportedPaths: string[];
  selected: Record<string, string>;
  forced: string;
  threads: number;
  defaultThreads: number;
}

/** One line of native/kernels/kernels*.def, in path order (native/dispatch/isa.def). */
export interface NativeKernelEntry {
  op: string;
  isa: string;
  symbol: string;
  supported: boolean;
  /** Tiled kernels: rows of the register tile (0 for element-wise kernels). */
  mr: number;
  /** Tiled kernels: columns of one strip (0 for element-wise kernels). */
  nr: number;
  /** Tiled kernels: how they want A and B ('packA', 'spreadRows', 'rowMajorB'). */
  traits: string[];
}

/** A B matrix (K x N) packed for one gemm call and freed when it returns. */
export interface OneShotB {
  b: ByteCodes;
  K: number;
  N: number;
  zeroPoint: ZeroPointArg;
  scale: number | Float32Array;
}

export interface Binding {
  quantize(x: Float32Array, out: ByteCodes, scale: number | Float32Array, zeroPoint: ZeroPointArg,
    storage: StorageCode, outer: number, axisDim: number, inner: number, granularity: GranularityCode,
    blockSize: number, qmin: number, qmax: number, formula: FormulaCode): void;
  dequantize(q: ByteCodes, out: Float32Array, scale: number | Float32Array, zeroPoint: ZeroPointArg,
    isSigned: boolean, storage: StorageCode, outer: number, axisDim: number, inner: number,
    granularity: GranularityCode, blockSize: number): void;
  fakeQuantize(x: Float32Array, out: Float32Array, mask: Uint8Array | null, scale: number | Float32Array,
    zeroPoint: ZeroPointArg, outer: number, axisDim: number, inner: number, granularity: GranularityCode,
    blockSize: number, qmin: number, qmax: number, formula: FormulaCode): void;
  /** Writes per-group min/max of the finite values; returns [nanCount, infCount]. */
  minMax(x: Float32Array, min: Float32Array, max: Float32Array, outer: number, axisDim: number,
    inner: number, granularity: GranularityCode, blockSize: number): [number, number];
  /** QAT straight-through estimator (native/napi/qat.cc): dx = dy * mask (or dx += it); returns the count of non-finite dy (given +0). */
  steBackward(dy: Float32Array, mask: Uint8Array, dx: Float32Array, accumulate: boolean): number;
  /**
   * LSQ backward (PyTorch 1.13's scalar kernel): dx written (or added to) when given, the scale and
   * zero-point terms summed per group and added to dScale / dZeroPoint; returns the count of bad
   * elements (x NaN, dy not finite; given +0).
   */
  lsqBackward(x: Float32Array, dy: Float32Array, scale: Float32Array, zeroPoint: Int32Array, outer: number, axisDim: number,
    inner: number, granularity: 0 | 1, qmin: number, qmax: number, gradFactor: number, dx: Float32Array | null,
    accumulate: boolean, dScale: Float64Array, dZeroPoint: Float64Array): number;
  /** ONNX DynamicQuantizeLinear into out; returns [scale, zeroPoint]. */
  dynamicQuantize(x: Float32Array, out: Uint8Array): [number, number];
  /** Adds counts of finite values in [lo, hi] (of |x| when abs) to counts, per tensor or per axis index. */
  histogram(x: Float32Array, counts: Float64Array, lo: Float32Array, hi: Float32Array, nbins: number, abs: 0 | 1,
    outer: number, axisDim: number, inner: number, granularity: 0 | 1): void;
  // int8 GEMM (native/napi/gemm.cc); `packed` is the opaque handle gemmPack returns, or (gemm, gemmAsync)
  // a one-shot B packed for that call and freed when it returns. Async calls copy their inputs
  // natively and create the output when `out` is null (native/napi/async.h).

  gemmPack(b: ByteCodes, isSigned: boolean, K: number, N: number, transposed: boolean,
    zeroPoint: ZeroPointArg, scale: number | Float32Array): [unknown, number];
  gemm(a: ByteCodes, aSigned: boolean, M: number, packed: unknown | OneShotB, aZeroPoint: ZeroPointArg, outKind: OutputKindCode,
    out: ArrayBufferView, aScale: number | Float32Array | null, bias: Float32Array | Int32Array | null, relu: boolean,
    outScale: number, outZeroPoint: number): void;
  gemmAsync(a: ByteCodes, aSigned: boolean, M: number, packed: unknown | OneShotB, aZeroPoint: ZeroPointArg, outKind: OutputKindCode,
    out: ArrayBufferView | null, aScale: number | Float32Array | null, bias: Float32Array | Int32Array | null, relu: boolean,
    outScale: number, outZeroPoint: number): Promise<ArrayBufferView>;
  linearDynamic(x: Float32Array, M: number, packed: unknown, bias: Float32Array | null, relu: boolean,
    perRow: boolean, actSigned: boolean, out: Float32Array): void;
  linearDynamicAsync(x: Float32Array, M: number, packed: unknown, bias: Float32Array | null, relu: boolean,
    perRow: boolean, actSigned: boolean, out: Float32Array | null): Promise<Float32Array>;
  // fp32 GEMM (native/napi/sgemm.cc); a packed B is the opaque handle sgemmPack returns.

  sgemmPack(b: Float32Array, K: number, N: number, transposed: boolean): [unknown, number];
  sgemm(a: Float32Array, b: Float32Array | unknown, out: Float32Array, M: number, K: number, N: number,
    transB: boolean, bias: Float32Array | null, relu: boolean): void;
  sgemmAsync(a: Float32Array, b: Float32Array | unknown, out: Float32Array | null, M: number, K: number, N: number,
    transB: boolean, bias: Float32Array | null, relu: boolean): Promise<Float32Array>;
  // Block-quantized GEMM (native/napi/nbits.cc); a packed weight is the opaque handle nbitsPack returns.
  nbitsPack(codes: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, K: number, N: number, bits: number,
    blockSize: number): [unknown, number];
  nbitsUnpack(packed: unknown, codes: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array): void;
  nbitsMatmul(x: Float32Array, packed: unknown, out: Float32Array, M: number, bias: Float32Array | null, relu: boolean,
    int8: boolean): void;
  nbitsMatmulAsync(x: Float32Array, packed: unknown, out: Float32Array | null, M: number, bias: Float32Array | null,
    relu: boolean, int8: boolean): Promise<Float32Array>;
  /** Reads every byte once on the thread pool; returns a checksum (the benchmarks' bandwidth probe). */
  streamSum(bytes: Uint8Array): number;
  cpuInfo(): NativeCpuInfo;
  kernelList(): NativeKernelEntry[];
  setIsa(name: string): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** native/napi/enums.def as { type: { member: value } }. */
  enums: Record<string, Record<string, number>>;
}

declare const binding: Binding;
export default binding;
