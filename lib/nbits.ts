// Block-quantized GEMM (ONNX Runtime's MatMulNBits): y = x W (+ bias) (ReLU) with W [K, N]
// quantized per column and block of K (bits 4 or 8, blockSize a power of two 16..256) and packed
// once for the kernels. Two computes (docs/nbits.md):
//   'fp32': the weights dequantized in registers, fp32 products (ORT accuracy_level 0/1); within
//           |y - exact| <= (blockSize + kBlocks + 2) * 2^-23 * (sum_k |x_k| |w_kn| + |bias_n|).
//   'int8': each block of x quantized to int8 (scale maxabs / 127, round half to even), exact
//           integer block dot products, fp32 accumulation in block order (ORT accuracy_level 4,
//           ggml Q4_0 x Q8_0): bit-identical on every path and thread count.
// Codes, scales and zero points are those of quantizeMatMulNBits (lib/formats/matmulnbits.ts) bit
// for bit, and convert to and from ORT's MatMulNBits tensors (toMatMulNBits, fromMatMulNBits).
import { checkBias, checkBool, checkDim, outArray, overlaps } from './args';
import { checkInt, checkOneOf, checkOptions, checkTyped, describe, rangeError, typeError } from './errors';
import { packMatMulNBits, quantizeNBitsCodes, unpackMatMulNBits } from './formats/matmulnbits';
import type { MatMulNBitsPacked } from './formats/matmulnbits';
import * as native from './native';
import { transpose } from './nn/ops';

const handles = new WeakMap<PackedWeightsNBits, native.PackedNBitsHandle>();

export interface PackWeightsNBitsOptions {
  /** Rows of W (the reduction dimension). */
  K: number;
  /** Columns of W (output features). */
  N: number;
  /** 4 (default) or 8. */
  bits?: 4 | 8;
  /** Block of K sharing a scale: a power of two 16..256, default 32. */
  blockSize?: number;
  /** true (default): codes -(2^(b-1)-1)..2^(b-1)-1 (stored + 2^(b-1)), no zero points; false: a zero point per block. */
  symmetric?: boolean;
  /** w is N x K (PyTorch Linear's weight layout) instead of K x N. Default false. */
  transposed?: boolean;
}

export interface NBitsShapeOptions {
  K: number;
  N: number;
  bits: 4 | 8;
  blockSize: number;
}

/** Codes, scales and zero points of a PackedWeightsNBits, MatMulNBits' blocking, unpacked. */
export interface NBitsCodes {
  /** Unsigned codes [N, K], one per byte. */
  codes: Uint8Array;
  /** [N, kBlocks]. */
  scales: Float32Array;
  /** [N, kBlocks] (2^(bits-1) everywhere when symmetric). */
  zeroPoints: Uint8Array;
}

/**
 * Block-quantized weights packed for matmulNBits (16-column panels of interleaved code blocks,
 * scales and zero points, held natively; freed by the garbage collector). Immutable; one packed
 * weight serves every kernel path and any number of calls in flight.
 */
export class PackedWeightsNBits {
  readonly K: number;
  readonly N: number;
  readonly bits: 4 | 8;
  readonly blockSize: number;
  /** No zero points (2^(bits-1) for every block). */
  readonly symmetric: boolean;
  /** Bytes held natively. */
  readonly byteLength: number;

  private constructor(handle: native.PackedNBitsHandle, byteLength: number, s: NBitsShapeOptions, symmetric: boolean) {
    this.K = s.K;
    this.N = s.N;
    this.bits = s.bits;
    this.blockSize = s.blockSize;
    this.symmetric = symmetric;
    this.byteLength = byteLength;
    handles.set(this, handle);
    Object.freeze(this);
  }

  /** @internal: arguments checked by the caller. */
  static create(codes: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, s: NBitsShapeOptions): PackedWeightsNBits {
    const { handle, byteLength } = native.nbitsPack({ codes, scales, zeroPoints, K: s.K, N: s.N, bits: s.bits, blockSize: s.blockSize });
    return new PackedWeightsNBits(handle, byteLength, s, zeroPoints === null);
  }

  /** The codes, scales and zero points (copies). */
  codes(): NBitsCodes {
    const kb = Math.ceil(this.K / this.blockSize);
    const codes = new Uint8Array(this.N * this.K);
    const scales = new Float32Array(this.N * kb);
    const zeroPoints = new Uint8Array(this.N * kb);
    native.nbitsUnpack(handles.get(this)!, codes, scales, zeroPoints);
    return { codes, scales, zeroPoints };
  }

  /** ONNX Runtime's MatMulNBits tensors (B, scales, zero_points or null), bit for bit. */
  toMatMulNBits(): MatMulNBitsPacked {
    const c = this.codes();
    return packMatMulNBits(c.codes, c.scales, this.symmetric ? null : c.zeroPoints, { K: this.K, N: this.N, bits: this.bits, blockSize: this.blockSize });
  }
}

/** @internal */
export function nbitsHandle(p: PackedWeightsNBits): native.PackedNBitsHandle {
  return handles.get(p)!;
}

function checkBits(name: string, v: unknown): 4 | 8 {
  const b = checkInt(name, v, 0, 64);
  if (b !== 4 && b !== 8) throw rangeError(name, '4 or 8', String(b));
  return b;
}

function checkBlockSize(name: string, v: unknown): number {
  const bs = checkInt(name, v, 16, 256);
  if ((bs & (bs - 1)) !== 0) throw rangeError(name, 'a power of two from 16 to 256', String(bs));
  return bs;
}

const PACK_OPTS = ['K', 'N', 'bits', 'blockSize', 'symmetric', 'transposed'] as const;

/**
 * Quantizes float weights W (K x N row-major, or N x K with transposed) per column and block of
 * blockSize along K with quantizeMatMulNBits' arithmetic (symmetric: scale absmax / (2^(b-1) - 1);
 * asymmetric: (max - min) / (2^b - 1) with a zero point) and packs them for matmulNBits.
 */
export function packWeightsNBits(w: Float32Array, opts: PackWeightsNBitsOptions): PackedWeightsNBits {
  const ww = checkTyped<Float32Array>('w', w, [Float32Array]);
  if (opts === undefined || opts === null) throw typeError('opts', 'an options object with K and N', opts);
  const o = checkOptions('opts', opts, PACK_OPTS);
  const K = checkDim('opts.K', o.K);
  const N = checkDim('opts.N', o.N);
  const bits = o.bits === undefined ? 4 : checkBits('opts.bits', o.bits);
  const blockSize = o.blockSize === undefined ? 32 : checkBlockSize('opts.blockSize', o.blockSize);
  const symmetric = checkBool('opts.symmetric', o.symmetric, true);
  const transposed = checkBool('opts.transposed', o.transposed);
  if (ww.length !== K * N) throw rangeError('w', `length K * N = ${K * N}${transposed ? ' (N x K)' : ' (K x N)'}`, describe(ww));
  const wt = transposed ? ww : transpose(ww, K, N);
  const shape = { K, N, bits, blockSize };
  const q = quantizeNBitsCodes(wt, shape, symmetric);
  return PackedWeightsNBits.create(q.codes, q.scales, q.zeroPoints, shape);
}

/**
 * Packs given codes: unsigned [N, K] (< 2^bits), scales [N, kBlocks] (finite), zero
 * points [N, kBlocks] or null (symmetric: 2^(bits-1)).
 */
packWeightsNBits.fromCodes = function fromCodes(codes: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, opts: NBitsShapeOptions): PackedWeightsNBits {
  const c = checkTyped<Uint8Array>('codes', codes, [Uint8Array]);
  const sc = checkTyped<Float32Array>('scales', scales, [Float32Array]);
  if (opts === undefined || opts === null) throw typeError('opts', 'an options object with K, N, bits and blockSize', opts);
  const o = checkOptions('opts', opts, ['K', 'N', 'bits', 'blockSize']);
  const K = checkDim('opts.K', o.K);
  const N = checkDim('opts.N', o.N);
  const bits = checkBits('opts.bits', o.bits);
  const blockSize = checkBlockSize('opts.blockSize', o.blockSize);
  const kb = Math.ceil(K / blockSize);
  if (c.length !== N * K) throw rangeError('codes', `length N * K = ${N * K}`, describe(c));
  if (sc.length !== N * kb) throw rangeError('scales', `length N * kBlocks = ${N * kb}`, describe(sc));
  const qmax = (1 << bits) - 1;
  for (let i = 0; i < c.length; i++) if (c[i] > qmax) throw rangeError(`codes[${i}]`, `a code between 0 and ${qmax}`, String(c[i]));
  for (let i = 0; i < sc.length; i++) {
    if (!Number.isFinite(sc[i])) throw rangeError(`scales[${i}]`, 'a finite scale', String(sc[i]));
  }
  let z: Uint8Array | null = null;
  if (zeroPoints !== null && zeroPoints !== undefined) {
    z = checkTyped<Uint8Array>('zeroPoints', zeroPoints, [Uint8Array]);
    if (z.length !== N * kb) throw rangeError('zeroPoints', `length N * kBlocks = ${N * kb}`, describe(z));
    for (let i = 0; i < z.length; i++) if (z[i] > qmax) throw rangeError(`zeroPoints[${i}]`, `a code between 0 and ${qmax}`, String(z[i]));
  }
  return PackedWeightsNBits.create(c, sc, z, { K, N, bits, blockSize });
};

/** Packs ONNX Runtime MatMulNBits tensors ({ B, scales, zeroPoints, K, N, bits, blockSize }; bits 4 or 8, blockSize <= 256). */
packWeightsNBits.fromMatMulNBits = function fromMatMulNBits(p: MatMulNBitsPacked): PackedWeightsNBits {
  if (typeof p !== 'object' || p === null) throw typeError('packed', 'a MatMulNBits object { B, scales, zeroPoints, K, N, bits, blockSize }', p);
  const bits = checkBits('packed.bits', p.bits);
  checkBlockSize('packed.blockSize', p.blockSize);
  const u = unpackMatMulNBits(p);
  return packWeightsNBits.fromCodes(u.codes, u.scales, p.zeroPoints ? u.zeroPoints : null, { K: u.K, N: u.N, bits, blockSize: u.blockSize });
};

export type NBitsCompute = 'fp32' | 'int8';

export interface MatmulNBitsOptions {
  /** Rows of x and of the output. */
  M: number;
  /** Added to every row (length N). */
  bias?: Float32Array;
  /** max(y, 0) after the bias (NaN -> 0). */
  relu?: boolean;
  /** 'fp32' (default, ORT accuracy_level 0/1) or 'int8' (accuracy_level 4: x quantized per block). */
  compute?: NBitsCompute;
  /** Output (M x N) to fill instead of allocating; must not overlap x or bias. */
  out?: Float32Array;
}

const MM_OPTS = ['M', 'bias', 'relu', 'compute', 'out'] as const;
const COMPUTES = ['fp32', 'int8'] as const;

function prepare(x: unknown, packed: unknown, opts: unknown, async = false): native.NBitsMatmulArgs<Float32Array | null> {
  const xx = checkTyped<Float32Array>('x', x, [Float32Array]);
  if (!(packed instanceof PackedWeightsNBits)) throw typeError('packed', 'PackedWeightsNBits (from packWeightsNBits)', packed);
  if (opts === undefined || opts === null) throw typeError('opts', 'an options object with M', opts);
  const o = checkOptions('opts', opts, MM_OPTS);
  const M = checkDim('opts.M', o.M, 0);
  const { K, N } = packed;
  if (xx.length !== M * K) throw rangeError('x', `length M * K = ${M * K}`, describe(xx));
  const bias = o.bias === undefined || o.bias === null ? null : checkBias('opts.bias', o.bias, 'Float32Array', N);
  const relu = checkBool('opts.relu', o.relu);
  const compute = o.compute === undefined ? 'fp32' : checkOneOf('opts.compute', o.compute, COMPUTES);
  const out = outArray('opts.out', o.out, [Float32Array], M * N, async, 'M * N = ');
  if (o.out !== undefined) {
    for (const [name, v] of [['x', xx], ['opts.bias', bias]] as [string, ArrayBufferView | null][]) {
      if (v && overlaps(out!, v)) throw rangeError('opts.out', `an array that does not overlap ${name}`, `views sharing bytes with ${name}`);
    }
  }
  return { x: xx, packed: handles.get(packed)!, out, M, bias, relu, int8: compute === 'int8' };
}

/** y = x W (+ bias) (ReLU): x is M x K row-major, W packed; returns opts.out or a new M x N array. */
export function matmulNBits(x: Float32Array, packed: PackedWeightsNBits, opts: MatmulNBitsOptions): Float32Array {
  const a = prepare(x, packed, opts) as native.NBitsMatmulArgs;
  native.nbitsMatmul(a);
  return a.out;
}

/** matmulNBits on a worker thread (inputs copied when called; opts.out filled when done). */
export function matmulNBitsAsync(x: Float32Array, packed: PackedWeightsNBits, opts: MatmulNBitsOptions): Promise<Float32Array> {
  try {
    return native.nbitsMatmulAsync(prepare(x, packed, opts, true));
  } catch (e) {
    return Promise.reject(e);
  }
}
