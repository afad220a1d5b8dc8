// ONNX Runtime's MatMulNBits (com.microsoft) weight layout, bit for bit, standalone:
//   B            uint8 [N, kBlocks, blockSize * bits / 8]: for each output column n and block of K,
//                the block's codes packed LSB first (bits 4: two per byte, the first in the low nibble);
//   scales       [N, kBlocks] (float32 here; A's type in the graph);
//   zero_points  optional, uint8 [N, ceil(kBlocks * bits / 8)]: each row's block zero points packed
//                the same way; absent means 2^(bits - 1) for every block.
// y = x @ ((q - zp) * scale)^T, kBlocks = ceil(K / blockSize); codes of the padding past K are the
// block's zero point (what quantizing zero-padded weights gives). See shared formulas.md.
import { checkInt, checkOptions, checkTyped, rangeError, typeError } from '../errors';
import { quantize } from '../tensor';
import { transpose } from '../nn/ops';

export interface MatMulNBitsShape {
  /** Inner dimension (rows of the float weight B [K, N]). */
  K: number;
  /** Output columns. */
  N: number;
  /** 2..8. */
  bits: number;
  /** Power of two, >= 16. */
  blockSize: number;
}

export interface MatMulNBitsPacked extends MatMulNBitsShape {
  /** uint8 [N, kBlocks, blobBytes]. */
  B: Uint8Array;
  /** [N, kBlocks]. */
  scales: Float32Array;
  /** Packed uint8 [N, ceil(kBlocks * bits / 8)], or null for the implied 2^(bits-1). */
  zeroPoints: Uint8Array | null;
}

export interface MatMulNBitsUnpacked extends MatMulNBitsShape {
  /** Unsigned codes 0..2^bits-1, one per byte, [N, K] (N-major, the padding dropped). */
  codes: Uint8Array;
  scales: Float32Array;
  /** One per block [N, kBlocks] (2^(bits-1) when the packed form had none). */
  zeroPoints: Uint8Array;
}

/** Derived sizes of the layout. */
export function matMulNBitsSizes(s: MatMulNBitsShape): { kBlocks: number; blobBytes: number; zpRowBytes: number; bBytes: number } {
  const kBlocks = Math.ceil(s.K / s.blockSize);
  const blobBytes = (s.blockSize * s.bits) / 8;
  const zpRowBytes = Math.ceil((kBlocks * s.bits) / 8);
  return { kBlocks, blobBytes, zpRowBytes, bBytes: s.N * kBlocks * blobBytes };
}

function checkShape(name: string, s: unknown): MatMulNBitsShape {
  if (typeof s !== 'object' || s === null) throw typeError(name, 'an object { K, N, bits, blockSize }', s);
  const o = s as Record<string, unknown>;
  const K = checkInt(`${name}.K`, o.K, 1, 2 ** 31 - 1);
  const N = checkInt(`${name}.N`, o.N, 1, 2 ** 31 - 1);
  const bits = checkInt(`${name}.bits`, o.bits, 2, 8);
  const blockSize = checkInt(`${name}.blockSize`, o.blockSize, 16, 2 ** 20);
  if ((blockSize & (blockSize - 1)) !== 0) throw rangeError(`${name}.blockSize`, 'a power of two >= 16', String(blockSize));
  return { K, N, bits, blockSize };
}

/** Writes `bits`-bit value v at bit position pos of out, LSB first. */
function putBits(out: Uint8Array, base: number, pos: number, bits: number, v: number): void {
  for (let b = 0; b < bits;) {
    const byte = base + ((pos + b) >> 3);
    const off = (pos + b) & 7;
    const take = Math.min(8 - off, bits - b);
    out[byte] |= ((v >> b) & ((1 << take) - 1)) << off;
    b += take;
  }
}

function getBits(src: Uint8Array, base: number, pos: number, bits: number): number {
  let v = 0;
  for (let b = 0; b < bits;) {
    const byte = base + ((pos + b) >> 3);
    const off = (pos + b) & 7;
    const take = Math.min(8 - off, bits - b);
    v |= ((src[byte] >> off) & ((1 << take) - 1)) << b;
    b += take;
  }
  return v;
}

/**
 * Packs unsigned codes [N, K] (one per byte), scales [N, kBlocks] and zero points [N, kBlocks]
 * (null: the implied 2^(bits-1), which every block must then use) into MatMulNBits' tensors.
 */
export function packMatMulNBits(codes: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, shape: MatMulNBitsShape): MatMulNBitsPacked {
  const s = checkShape('shape', shape);
  const { kBlocks, blobBytes, zpRowBytes, bBytes } = matMulNBitsSizes(s);
  checkTyped<Uint8Array>('codes', codes, [Uint8Array]);
  checkTyped<Float32Array>('scales', scales, [Float32Array]);
  if (codes.length !== s.N * s.K) throw rangeError('codes', `length N * K = ${s.N * s.K}`, `length ${codes.length}`);
  if (scales.length !== s.N * kBlocks) throw rangeError('scales', `length N * kBlocks = ${s.N * kBlocks}`, `length ${scales.length}`);
  const qmax = (1 << s.bits) - 1;
  const mid = 1 << (s.bits - 1);
  if (zeroPoints !== null) {
    checkTyped<Uint8Array>('zeroPoints', zeroPoints, [Uint8Array]);
    if (zeroPoints.length !== s.N * kBlocks) throw rangeError('zeroPoints', `length N * kBlocks = ${s.N * kBlocks}`, `length ${zeroPoints.length}`);
    for (let i = 0; i < zeroPoints.length; i++) if (zeroPoints[i] > qmax) throw rangeError(`zeroPoints[${i}]`, `a code between 0 and ${qmax}`, String(zeroPoints[i]));
  }
  const B = new Uint8Array(bBytes);
  for (let n = 0; n < s.N; n++) {
    for (let kb = 0; kb < kBlocks; kb++) {
      const base = (n * kBlocks + kb) * blobBytes;
      const pad = zeroPoints === null ? mid : zeroPoints[n * kBlocks + kb];
      for (let i = 0; i < s.blockSize; i++) {
        const k = kb * s.blockSize + i;
        let v = pad;
        if (k < s.K) {
          v = codes[n * s.K + k];
          if (v > qmax) throw rangeError(`codes[${n * s.K + k}]`, `a code between 0 and ${qmax}`, String(v));
        }
        putBits(B, base, i * s.bits, s.bits, v);
      }
    }
  }
  let zp: Uint8Array | null = null;
  if (zeroPoints !== null) {
    zp = new Uint8Array(s.N * zpRowBytes);
    for (let n = 0; n < s.N; n++) {
      for (let kb = 0; kb < kBlocks; kb++) putBits(zp, n * zpRowBytes, kb * s.bits, s.bits, zeroPoints[n * kBlocks + kb]);
    }
  }
  return { ...s, B, scales: scales.slice(), zeroPoints: zp };
}

/** The inverse of packMatMulNBits: codes [N, K], scales, zero points per block. */
export function unpackMatMulNBits(p: { B: Uint8Array; scales: Float32Array; zeroPoints?: Uint8Array | null } & MatMulNBitsShape): MatMulNBitsUnpacked {
  const s = checkShape('packed', p);
  const { kBlocks, blobBytes, zpRowBytes, bBytes } = matMulNBitsSizes(s);
  checkTyped<Uint8Array>('packed.B', p.B, [Uint8Array]);
  checkTyped<Float32Array>('packed.scales', p.scales, [Float32Array]);
  if (p.B.length !== bBytes) throw rangeError('packed.B', `length N * kBlocks * blockSize * bits / 8 = ${bBytes}`, `length ${p.B.length}`);
  if (p.scales.length !== s.N * kBlocks) throw rangeError('packed.scales', `length N * kBlocks = ${s.N * kBlocks}`, `length ${p.scales.length}`);
  const zpIn = p.zeroPoints ?? null;
  if (zpIn !== null) {
    checkTyped<Uint8Array>('packed.zeroPoints', zpIn, [Uint8Array]);
    if (zpIn.length !== s.N * zpRowBytes) throw rangeError('packed.zeroPoints', `length N * ceil(kBlocks * bits / 8) = ${s.N * zpRowBytes}`, `length ${zpIn.length}`);
  }
  const codes = new Uint8Array(s.N * s.K);
  const zeroPoints = new Uint8Array(s.N * kBlocks);
  for (let n = 0; n < s.N; n++) {
    for (let kb = 0; kb < kBlocks; kb++) {
      zeroPoints[n * kBlocks + kb] = zpIn === null ? 1 << (s.bits - 1) : getBits(zpIn, n * zpRowBytes, kb * s.bits, s.bits);
      const base = (n * kBlocks + kb) * blobBytes;
      const end = Math.min(s.blockSize, s.K - kb * s.blockSize);
      for (let i = 0; i < end; i++) codes[n * s.K + kb * s.blockSize + i] = getBits(p.B, base, i * s.bits, s.bits);
    }
  }
  return { ...s, codes, scales: p.scales.slice(), zeroPoints };
}

/** The float weight the packed tensors stand for, as B [K, N] (MatMul's layout): (q - zp) * scale in float32. */
export function dequantizeMatMulNBits(p: { B: Uint8Array; scales: Float32Array; zeroPoints?: Uint8Array | null } & MatMulNBitsShape): Float32Array {
  const u = unpackMatMulNBits(p);
  const { kBlocks } = matMulNBitsSizes(u);
  const out = new Float32Array(u.K * u.N);
  for (let n = 0; n < u.N; n++) {
    for (let k = 0; k < u.K; k++) {
      const b = n * kBlocks + Math.floor(k / u.blockSize);
      out[k * u.N + n] = Math.fround((u.codes[n * u.K + k] - u.zeroPoints[b]) * u.scales[b]);
    }
  }
  return out;
}

export interface QuantizeNBitsOptions {
  bits?: number;
  blockSize?: number;
  /** true (default): signed codes -(2^(b-1)-1)..2^(b-1)-1 stored as code + 2^(b-1), no zero-point tensor; false: unsigned codes with a zero point per block. */
  symmetric?: boolean;
}

/**
 * Quantizes a MatMul weight B [K, N] (float32, row-major) per block of `blockSize` along K with
 * quantkit's `quantize` (ONNX tools' arithmetic: symmetric scale absmax / (2^(b-1) - 1); asymmetric
 * (max - min) / (2^b - 1) with a zero point) and packs it as MatMulNBits.
 */
export function quantizeMatMulNBits(w: Float32Array, K: number, N: number, opts: QuantizeNBitsOptions = {}): MatMulNBitsPacked {
  checkTyped<Float32Array>('w', w, [Float32Array]);
  const o = checkOptions('opts', opts, ['bits', 'blockSize', 'symmetric']) as QuantizeNBitsOptions;
  const shape = checkShape('shape', { K, N, bits: o.bits ?? 4, blockSize: o.blockSize ?? 32 });
  if (w.length !== K * N) throw rangeError('w', `length K * N = ${K * N}`, `length ${w.length}`);
  const symmetric = o.symmetric ?? true;
  if (typeof symmetric !== 'boolean') throw typeError('opts.symmetric', 'a boolean', symmetric);
  // [N, K] rows, blocked along K.
  const wt = transpose(w, K, N);
  const q = quantizeNBitsCodes(wt, shape, symmetric);
  return packMatMulNBits(q.codes, q.scales, q.zeroPoints, shape);
}

/**
 * The quantizer of quantizeMatMulNBits on weights already laid out [N, K] (checked by the caller):
 * unsigned codes [N, K], scales [N, kBlocks] and zero points [N, kBlocks] (null when symmetric:
 * the implied 2^(bits-1)). lib/nbits.ts packs the same codes for its kernels.
 */
export function quantizeNBitsCodes(wt: Float32Array, shape: MatMulNBitsShape, symmetric: boolean): { codes: Uint8Array; scales: Float32Array; zeroPoints: Uint8Array | null } {
  const { N, K } = shape;
  const q = quantize(wt, [N, K], {
    scheme: symmetric ? 'symmetric' : 'asymmetric', bits: shape.bits, signed: symmetric,
    granularity: { axis: 1, blockSize: shape.blockSize },
  });
  const mid = 1 << (shape.bits - 1);
  const codes = new Uint8Array(N * K);
  const packedNibbles = shape.bits <= 4;
  for (let i = 0; i < N * K; i++) {
    let c: number;
    if (packedNibbles) {
      const b = q.data[i >> 1] & 0xff;
      c = i & 1 ? b >> 4 : b & 15;
      if (symmetric && c >= 8) c -= 16;
    } else c = q.data[i];
    codes[i] = symmetric ? c + mid : c;
  }
  return { codes, scales: q.scale, zeroPoints: symmetric ? null : Uint8Array.from(q.zeroPoint) };
}
