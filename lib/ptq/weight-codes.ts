// One quantized Linear weight read back from a file's tensors and checked: the codes tensor (one
// code a byte, or two a byte, low nibble first, at 4 bits or fewer), its F32 scales and, for
// unsigned codes, its U8 zero points, as lib/ptq/file.ts's weightTensors writes them. Used by the
// weights-file reader (lib/ptq/weights-file.ts); model files (lib/ptq/file.ts) store their
// quantized Linears the same way and can read them with it too (one reader of the three tensors).
//
// Every tensor's dtype and shape is checked before anything is allocated for it, then every
// value: scales positive and finite, zero points and codes inside the scheme's code range, and the
// unused high nibble of an odd-length packed tensor zero.
import type { SafetensorsTensor } from '../io/safetensors';
import { granularityLayout } from '../layout';
import { resolveSpec, storageBytes } from '../spec';
import { QuantizedTensor } from '../tensor';
import type { QuantWeight, WeightGranularity } from './qmodel';

/** How a weight was quantized, as the file describes it. */
export interface WeightCodesDesc {
  bits: number;
  scheme: 'symmetric' | 'asymmetric';
  signed: boolean;
  range: 'restricted' | 'full';
  granularity: WeightGranularity;
}

/** Where the tensors come from and how a problem is reported. */
export interface WeightCodesSource {
  tensors: Record<string, SafetensorsTensor>;
  /** Throws the reader's file error: `field` names the place in the file. */
  fail(field: string, message: string): never;
  /** Called with the name of every tensor taken (to find the tensors nothing uses). */
  taken?(name: string): void;
  /** The message for a missing tensor (default 'missing'). */
  missing?: string;
}

/** The tensor names of a weight: `w`, `w_scale`, `w_zero_point` ('fc.weight' -> 'fc.weight_scale'). */
export function weightCodeNames(weight: string): { codes: string; scale: string; zeroPoint: string } {
  return { codes: weight, scale: `${weight}_scale`, zeroPoint: `${weight}_zero_point` };
}

/** Shape of a weight's scale (and zero point) tensor: [1], [out] or [out, ceil(in / groupSize)]. */
export function weightScaleShape(g: WeightGranularity, N: number, K: number): number[] {
  return g === 'per-tensor' ? [1] : g === 'per-channel' ? [N] : [N, Math.ceil(K / g.groupSize)];
}

const fieldOf = (name: string) => `tensors['${name}']`;

function take(src: WeightCodesSource, name: string, dtype: string, shape: readonly number[]): SafetensorsTensor {
  const t = Object.prototype.hasOwnProperty.call(src.tensors, name) ? src.tensors[name] : undefined;
  if (t === undefined) return src.fail(fieldOf(name), src.missing ?? 'missing');
  if (t.dtype !== dtype) src.fail(`${fieldOf(name)}.dtype`, `expected '${dtype}' but found '${t.dtype}'`);
  const same = t.shape.length === shape.length && shape.every((d, i) => t.shape[i] === d);
  if (!same) src.fail(`${fieldOf(name)}.shape`, `expected [${shape.join(', ')}] but found [${t.shape.join(', ')}]`);
  src.taken?.(name);
  return t;
}

/** Index of the first code outside lo..hi, or -1 (packed: the code index, not the byte's). */
function firstBadCode(data: Int8Array | Uint8Array, count: number, packed: boolean, signed: boolean, lo: number, hi: number): number {
  if (!packed) {
    for (let i = 0; i < count; i++) if (data[i] < lo || data[i] > hi) return i;
    return -1;
  }
  // A byte holds codes 2b and 2b + 1: one table lookup per byte says whether either is bad.
  const nib = (v: number) => (signed && v >= 8 ? v - 16 : v);
  const bad = new Uint8Array(256);
  for (let b = 0; b < 256; b++) {
    const low = nib(b & 15), high = nib(b >> 4);
    bad[b] = (low < lo || low > hi ? 1 : 0) | (high < lo || high > hi ? 2 : 0);
  }
  const full = count >> 1;
  for (let b = 0; b < full; b++) {
    const m = bad[data[b]];
    if (m !== 0) return 2 * b + (m & 1 ? 0 : 1);
  }
  if (count & 1 && bad[data[full] & 15] & 1) return count - 1;
  return -1;
}

/**
 * Reads the weight whose codes tensor is `names.codes` ([out N, in K]) and checks it against `d`.
 * Problems go to src.fail with the tensor's field (e.g. "tensors['fc.weight_scale'][3]: ...").
 */
export function readWeightCodes(src: WeightCodesSource, names: { codes: string; scale: string; zeroPoint: string }, d: WeightCodesDesc, N: number, K: number): QuantWeight {
  const spec = resolveSpec('weight', { scheme: d.scheme, bits: d.bits, signed: d.signed, range: d.range });
  const n = N * K;
  const packed = d.bits <= 4;
  const codesDtype = packed || !d.signed ? 'U8' : 'I8';
  const codes = take(src, names.codes, codesDtype, packed ? [storageBytes(spec.dtype, n)] : [N, K]).data as Int8Array | Uint8Array;
  const qshape = weightScaleShape(d.granularity, N, K);
  const scale = take(src, names.scale, 'F32', qshape).data as Float32Array;
  const withZero = d.scheme === 'asymmetric' || !d.signed;
  const zeros = withZero ? take(src, names.zeroPoint, 'U8', qshape).data as Uint8Array : null;

  scale.forEach((s, i) => {
    if (!(s > 0 && s < Infinity)) src.fail(`${fieldOf(names.scale)}[${i}]`, `expected a positive finite scale but found ${s}`);
  });
  const zeroPoint = new Int32Array(scale.length);
  if (zeros) {
    zeros.forEach((z, i) => {
      if (z < spec.qmin || z > spec.qmax) src.fail(`${fieldOf(names.zeroPoint)}[${i}]`, `expected ${spec.qmin}..${spec.qmax} but found ${z}`);
      zeroPoint[i] = z;
    });
  }
  const bad = firstBadCode(codes, n, packed, spec.signed, spec.qmin, spec.qmax);
  if (bad >= 0) {
    const raw = packed ? (bad & 1 ? codes[bad >> 1] >> 4 : codes[bad >> 1] & 15) : codes[bad];
    const v = packed && spec.signed && raw >= 8 ? raw - 16 : raw;
    src.fail(fieldOf(names.codes), `code ${v} at element ${bad} is outside ${spec.qmin}..${spec.qmax}`);
  }
  if (packed && n & 1 && codes[n >> 1] >> 4 !== 0) {
    src.fail(fieldOf(names.codes), `the unused high nibble of the last byte (${n} codes) is ${codes[n >> 1] >> 4}, expected 0`);
  }
  const g = d.granularity;
  const granularity = g === 'per-tensor' ? 'per-tensor' as const : g === 'per-channel' ? { axis: 0 } : { axis: 1, blockSize: g.groupSize };
  const full = resolveSpec('weight', { scheme: d.scheme, bits: d.bits, signed: d.signed, range: d.range, granularity });
  const layout = granularityLayout('weight', granularity, [N, K], n);
  return { tensor: new QuantizedTensor({ data: codes, shape: [N, K], spec: full, scale, zeroPoint, layout }), granularity: g };
}
