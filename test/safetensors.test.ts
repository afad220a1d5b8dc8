// safetensors: a fixture written byte by byte from the format description (independent of the
// writer), round trips, atomic writes, every corruption pinned, loading into a Sequential.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  loadSafetensors, loadSafetensorsInto, parseSafetensors, saveSafetensors, serializeSafetensors, SAFETENSORS_MAX_HEADER,
} from '../lib/io/safetensors';
import { WeightFileError } from '../lib/io/tfjs';
import { Linear, manualSeed, ReLU, Sequential } from '../lib/nn/index';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-st-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A file by hand: u64 LE length, the header text padded with spaces to 8, then data bytes. */
function handFile(header: string, data: number[], pad = true): Uint8Array {
  const h = [...Buffer.from(header, 'utf8')];
  while (pad && h.length % 8 !== 0) h.push(0x20);
  const n = h.length;
  const len = [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255, 0, 0, 0, 0];
  return Uint8Array.from([...len, ...h, ...data]);
}

const le32 = (v: number) => [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255];
const f32le = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setFloat32(0, v, true); return [...b]; };

// Tensors in the reference writer's order (4-byte items first, then by name), compact JSON with
// fields dtype, shape, data_offsets, __metadata__ first. The zero-size F32 tensor 'e' sorts
// with the 4-byte items, before the I8 and U8 ones.
const HEADER =
  '{"__metadata__":{"format":"pt"},' +
  '"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' +
  '"b":{"dtype":"I32","shape":[3],"data_offsets":[16,28]},' +
  '"e":{"dtype":"F32","shape":[0,4],"data_offsets":[28,28]},' +
  '"c":{"dtype":"I8","shape":[1,3],"data_offsets":[28,31]},' +
  '"d":{"dtype":"U8","shape":[2],"data_offsets":[31,33]}}';
const DATA = [...f32le(1), ...f32le(-2.5), ...f32le(0.1), ...f32le(1e30), ...le32(7), ...le32(-1), ...le32(2 ** 31 - 1), 0xff, 0x80, 0x7f, 0, 255];

describe('reading a hand-written file', () => {
  it('reads every dtype, shapes, zero-size tensors and metadata', () => {
    const f = parseSafetensors(handFile(HEADER, DATA), 'hand.safetensors');
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(Object.keys(f.tensors)).toEqual(['a', 'b', 'e', 'c', 'd']);
    expect(f.tensors.a.shape).toEqual([2, 2]);
    expect(f.tensors.a.data).toBeInstanceOf(Float32Array);
    expect(Array.from(f.tensors.a.data)).toEqual([1, -2.5, Math.fround(0.1), Math.fround(1e30)]);
    expect(Array.from(f.tensors.b.data)).toEqual([7, -1, 2 ** 31 - 1]);
    expect(f.tensors.b.data).toBeInstanceOf(Int32Array);
    expect(Array.from(f.tensors.c.data)).toEqual([-1, -128, 127]);
    expect(Array.from(f.tensors.d.data)).toEqual([0, 255]);
    expect(f.tensors.e.shape).toEqual([0, 4]);
    expect(f.tensors.e.data.length).toBe(0);
  });
  it('accepts keys in any order, no metadata, and an unpadded header', () => {
    const h = '{"x":{"data_offsets":[4,5],"shape":[],"dtype":"U8"},"w":{"shape":[1],"dtype":"F32","data_offsets":[0,4]}}';
    const f = parseSafetensors(handFile(h, [...f32le(3), 9], false));
    expect(f.metadata).toEqual({});
    expect(Array.from(f.tensors.w.data)).toEqual([3]);
    expect(f.tensors.x.shape).toEqual([]);
    expect(Array.from(f.tensors.x.data)).toEqual([9]);
    expect(parseSafetensors(handFile('{}', [])).tensors).toEqual({});
  });
});

describe('writing', () => {
  const tensors = () => ({
    d: { dtype: 'U8' as const, shape: [2], data: Uint8Array.of(0, 255) },
    c: { dtype: 'I8' as const, shape: [1, 3], data: Int8Array.of(-1, -128, 127) },
    e: { dtype: 'F32' as const, shape: [0, 4], data: new Float32Array(0) },
    b: { dtype: 'I32' as const, shape: [3], data: Int32Array.of(7, -1, 2 ** 31 - 1) },
    a: { dtype: 'F32' as const, shape: [2, 2], data: Float32Array.of(1, -2.5, 0.1, 1e30) },
  });
  it('writes exactly the bytes of the hand-written file (reference layout and padding)', () => {
    const bytes = serializeSafetensors(tensors(), { format: 'pt' });
    expect(Buffer.from(bytes).equals(Buffer.from(handFile(HEADER, DATA)))).toBe(true);
    expect(new DataView(bytes.buffer).getUint32(0, true) % 8).toBe(0);
    const p = path.join(tmp, 'w.safetensors');
    saveSafetensors(p, tensors(), { format: 'pt' });
    expect(fs.readFileSync(p).equals(Buffer.from(bytes))).toBe(true);
  });
  it('round-trips, including subarray views, a Map and no metadata', () => {
    const p = path.join(tmp, 'rt.safetensors');
    const big = new Float32Array(10).map((_, i) => i);
    saveSafetensors(p, new Map([['v', { dtype: 'F32' as const, shape: [3], data: big.subarray(2, 5) }]]));
    const f = loadSafetensors(p);
    expect(Array.from(f.tensors.v.data)).toEqual([2, 3, 4]);
    expect(f.metadata).toEqual({});
    const all = tensors();
    saveSafetensors(p, all, { a: 'b', 'ü': '✓' });
    const g = loadSafetensors(p);
    expect(g.metadata).toEqual({ a: 'b', 'ü': '✓' });
    for (const [k, t] of Object.entries(all)) {
      expect(g.tensors[k].dtype).toBe(t.dtype);
      expect(g.tensors[k].shape).toEqual(t.shape);
      expect(Array.from(g.tensors[k].data)).toEqual(Array.from(t.data));
    }
  });
  it('replaces the target atomically and leaves no temporary files', () => {
    const d = fs.mkdtempSync(path.join(tmp, 'atomic-'));
    const p = path.join(d, 'm.safetensors');
    fs.writeFileSync(p, 'old');
    saveSafetensors(p, { x: { dtype: 'U8', shape: [1], data: Uint8Array.of(1) } });
    expect(fs.readdirSync(d)).toEqual(['m.safetensors']);
    expect(Array.from(loadSafetensors(p).tensors.x.data)).toEqual([1]);
    // A failing write (bad input) leaves the old file untouched.
    expect(() => saveSafetensors(p, { x: { dtype: 'U8', shape: [2], data: Uint8Array.of(1) } })).toThrow(RangeError);
    expect(Array.from(loadSafetensors(p).tensors.x.data)).toEqual([1]);
    const nodir = path.join(d, 'no/such/dir/m.safetensors');
    expect(() => saveSafetensors(nodir, {})).toThrow(`${nodir}: cannot write it: the folder ${path.join(d, 'no/such/dir')} does not exist`);
    expect(fs.readdirSync(d)).toEqual(['m.safetensors']);
  });
  it('never replaces a directory, FIFO or device; writes through a symlink to its target', () => {
    const d = fs.mkdtempSync(path.join(tmp, 'targets-'));
    const t = { x: { dtype: 'U8' as const, shape: [1], data: Uint8Array.of(7) } };
    expect(() => saveSafetensors(d, t)).toThrow(`${d}: cannot write it: it is a directory`);
    expect(() => saveSafetensors('/dev/null', t)).toThrow('/dev/null: cannot write it: it exists and is not a regular file (a device, FIFO or socket is never replaced)');
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
    const real = path.join(d, 'real.safetensors');
    fs.writeFileSync(real, 'old');
    const link = path.join(d, 'link.safetensors');
    fs.symlinkSync(real, link);
    saveSafetensors(link, t);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(Array.from(loadSafetensors(real).tensors.x.data)).toEqual([7]);
    expect(fs.readdirSync(d).sort()).toEqual(['link.safetensors', 'real.safetensors']);
  });
  it('a folder where no file can be created: the error names the path and the errno', () => {
    const t = { x: { dtype: 'U8' as const, shape: [1], data: Uint8Array.of(7) } };
    expect(() => saveSafetensors('/proc/x.safetensors', t)).toThrow(/^\/proc\/x\.safetensors: cannot write it: cannot create a file in \/proc \((ENOENT|EACCES|EROFS|EPERM)\)$/);
  });
  it('rejects bad tensors and metadata', () => {
    const p = path.join(tmp, 'bad.safetensors');
    const cases: [unknown, unknown, string][] = [
      [null, undefined, 'Expected a Record or Map of { dtype, shape, data } for tensors but received null'],
      [{ w: { dtype: 'F16', shape: [1], data: new Float32Array(1) } }, undefined, "Expected one of 'F32', 'I8', 'U8', 'I32' for tensors['w'].dtype but received 'F16'"],
      [{ w: { dtype: 'F32', shape: [1], data: new Int8Array(1) } }, undefined, "Expected Float32Array (dtype F32) for tensors['w'].data but received Int8Array of length 1"],
      [{ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }, undefined, "Expected length 4 (shape [2, 2]) for tensors['w'].data but received Float32Array of length 3"],
      [{ w: { dtype: 'F32', shape: [-1], data: new Float32Array(1) } }, undefined, "Expected a non-negative integer for tensors['w'].shape[0] but received -1"],
      [{ w: { dtype: 'F32', shape: 4, data: new Float32Array(4) } }, undefined, "Expected an Array of non-negative integers for tensors['w'].shape but received number 4"],
      [{ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }, undefined, "Expected a tensor name other than '__metadata__' for tensors key but received '__metadata__'"],
      [{}, { n: 1 }, "Expected a string for metadata['n'] but received number 1"],
      [{}, 'x', "Expected a Record of strings for metadata but received string 'x'"],
    ];
    for (const [t, m, msg] of cases) {
      expect(() => saveSafetensors(p, t as never, m as never)).toThrow(msg);
    }
    expect(fs.existsSync(p)).toBe(false);
  });
});

describe('every corruption is an error naming the file and the field', () => {
  const T = (body: string) => `{"w":${body}}`;
  const ok = '{"dtype":"F32","shape":[2],"data_offsets":[0,8]}';
  const eight = [...f32le(1), ...f32le(2)];
  const cases: [string, Uint8Array, string][] = [
    ['short file', Uint8Array.of(1, 0, 0), 'm.st: header length: the file has 3 bytes, too short for the 8-byte header length'],
    ['huge header length', Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1, 0x7b), `m.st: header length: 72057594037927936 bytes is more than the ${SAFETENSORS_MAX_HEADER} allowed; not a safetensors file or corrupt`],
    ['header past the end', handFile(T(ok), eight).subarray(0, 30), 'm.st: header length: 56 bytes of header but the file has only 22 bytes after the length; truncated or corrupt'],
    ['tiny header', Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 0x7b), 'm.st: header: 1 bytes is too short for a JSON object'],
    ['invalid UTF-8', Uint8Array.of(8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x20), 'm.st: header: not valid UTF-8'],
    ['not an object', handFile('[1,2]', []), "m.st: header: expected a JSON object starting with '{' but found '[1,2]   '"],
    ['bad JSON', handFile('{"w":', []), 'm.st: header: not valid JSON'],
    ['entry not an object', handFile(T('[0]'), []), "m.st: header.tensors['w']: expected an object { dtype, shape, data_offsets } but found [0]"],
    ['unknown field', handFile(T('{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}'), eight), "m.st: header.tensors['w'].x: unknown field (expected only 'dtype', 'shape' and 'data_offsets')"],
    ['dtype missing', handFile(T('{"shape":[2],"data_offsets":[0,8]}'), eight), "m.st: header.tensors['w'].dtype: expected a string but found undefined"],
    ['dtype unsupported', handFile(T('{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}'), eight), "m.st: header.tensors['w'].dtype: 'BF16' is not supported (supported: F32, I8, U8, I32)"],
    ['dtype unknown', handFile(T('{"dtype":"f32","shape":[2],"data_offsets":[0,8]}'), eight), "m.st: header.tensors['w'].dtype: 'f32' is not a safetensors dtype (supported: F32, I8, U8, I32)"],
    ['shape not an array', handFile(T('{"dtype":"F32","shape":2,"data_offsets":[0,8]}'), eight), "m.st: header.tensors['w'].shape: expected an array of non-negative integers but found 2"],
    ['shape negative', handFile(T('{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}'), eight), "m.st: header.tensors['w'].shape[0]: expected a non-negative integer but found -2"],
    ['shape fractional', handFile(T('{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}'), eight), "m.st: header.tensors['w'].shape[0]: expected a non-negative integer but found 1.5"],
    ['shape string', handFile(T('{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}'), eight), "m.st: header.tensors['w'].shape[0]: expected a non-negative integer but found '2'"],
    ['shape unsafe', handFile(T('{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,8]}'), eight), "m.st: header.tensors['w'].shape[0]: expected a non-negative integer but found 9007199254740992"],
    ['shape too large', handFile(T('{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}'), eight), "m.st: header.tensors['w'].shape: [4294967296, 4294967296] is too large"],
    ['offsets not a pair', handFile(T('{"dtype":"F32","shape":[2],"data_offsets":[0]}'), eight), "m.st: header.tensors['w'].data_offsets: expected [begin, end] but found [0]"],
    ['offset negative', handFile(T('{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}'), eight), "m.st: header.tensors['w'].data_offsets[0]: expected a non-negative integer but found -8"],
    ['offsets reversed', handFile(T('{"dtype":"F32","shape":[2],"data_offsets":[8,0]}'), eight), "m.st: header.tensors['w'].data_offsets: begin 8 is after end 0"],
    ['offsets past the data', handFile(T('{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'), eight.slice(0, 6)), "m.st: header.tensors['w'].data_offsets: end 8 is past the end of the data section (6 bytes); truncated or corrupt"],
    ['size mismatch', handFile(T('{"dtype":"F32","shape":[3],"data_offsets":[0,8]}'), eight), "m.st: header.tensors['w'].data_offsets: [0, 8] holds 8 bytes but shape [3] of F32 needs 12"],
    ['overlap', handFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', eight),
      "m.st: header.tensors['b'].data_offsets: [4, 8] overlaps tensor 'a' at [0, 8]"],
    ['hole', handFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}}', eight),
      "m.st: header.tensors['b'].data_offsets: begins at 6, leaving bytes [4, 6) of the data section unused (holes are not allowed)"],
    ['hole at the start', handFile(T('{"dtype":"F32","shape":[1],"data_offsets":[4,8]}'), eight), "m.st: header.tensors['w'].data_offsets: begins at 4, leaving bytes [0, 4) of the data section unused (holes are not allowed)"],
    ['trailing bytes', handFile(T(ok), [...eight, 1, 2]), 'm.st: data: 2 bytes at [8, 10) of the data section belong to no tensor (holes are not allowed)'],
    ['metadata not an object', handFile('{"__metadata__":[1]}', []), 'm.st: header.__metadata__: expected an object of strings but found [1]'],
    ['metadata value not a string', handFile('{"__metadata__":{"k":1}}', []), "m.st: header.__metadata__['k']: expected a string but found 1"],
  ];
  for (const [what, bytes, msg] of cases) {
    it(what, () => {
      let e: unknown;
      try {
        parseSafetensors(bytes, 'm.st');
      } catch (x) {
        e = x;
      }
      expect(e, 'should throw').toBeInstanceOf(WeightFileError);
      expect((e as Error).message.startsWith(msg), (e as Error).message).toBe(true);
    });
  }
  it('names the path given for files and reports read errors', () => {
    const p = path.join(tmp, 'corrupt.safetensors');
    fs.writeFileSync(p, handFile(T(ok), eight.slice(0, 4)));
    expect(() => loadSafetensors(p)).toThrow(`${p}: header.tensors['w'].data_offsets: end 8 is past the end`);
    expect(() => loadSafetensors(path.join(tmp, 'missing'))).toThrow(`${path.join(tmp, 'missing')}: cannot read the file (ENOENT)`);
  });
  it('treats a null __metadata__ as none', () => {
    expect(parseSafetensors(handFile('{"__metadata__":null}', [])).metadata).toEqual({});
  });
});

describe('models', () => {
  it('saves a Sequential state dict and loads it by name into another', () => {
    manualSeed(1);
    const a = new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2));
    const b = new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2));
    const p = path.join(tmp, 'model.safetensors');
    saveSafetensors(p, a.stateDict(), { arch: 'mlp' });
    const f = loadSafetensors(p);
    expect(Object.keys(f.tensors)).toEqual(['0.bias', '0.weight', '2.bias', '2.weight']);
    expect(f.tensors['0.weight'].shape).toEqual([3, 4]);
    const r = loadSafetensorsInto(b, p);
    expect(r).toEqual({ missingKeys: [], unexpectedKeys: [], metadata: { arch: 'mlp' } });
    const x = Float32Array.of(1, -2, 3, 0.5);
    expect(Array.from(b.forward(x, 1))).toEqual(Array.from(a.forward(x, 1)));
  });
  it('reports shape mismatches with the file name', () => {
    const p = path.join(tmp, 'model2.safetensors');
    saveSafetensors(p, new Sequential(new Linear(4, 3)).stateDict());
    expect(() => loadSafetensorsInto(new Sequential(new Linear(3, 4)), p)).toThrow(`${p}: Expected [4, 3] for state['0.weight'].shape but received [3, 4]`);
    expect(() => loadSafetensorsInto(new Sequential(new Linear(4, 3), new Linear(3, 1)), p)).toThrow(`${p}: loadStateDict: the state does not match the module's parameters: missing '1.weight', '1.bias'`);
    expect(loadSafetensorsInto(new Sequential(new Linear(4, 3), new Linear(3, 1)), p, { strict: false }).missingKeys).toEqual(['1.weight', '1.bias']);
  });
});
