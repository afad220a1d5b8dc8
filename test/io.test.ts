// Weight loaders (lib/io): TensorFlow.js model.json + shards, and gnubg's binary nets.
// Fixtures are generated here in a temporary directory; the real packages are not needed.
// Error messages are part of the contract and are pinned ("<file>: <field>: expected X but received Y").
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GNUBG_NET_NAMES, loadGnubgWeights, loadGnubgWeightsSync, loadTfjsWeights, loadTfjsWeightsSync, parseGnubgWeights,
  WeightFileError,
} from '../lib/io/index';
import type { TfjsWeight } from '../lib/io/index';

let tmp: string;
let caseNo = 0;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantkit-io-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A fresh directory per case. */
function dir(): string {
  const d = path.join(tmp, `case${caseNo++}`);
  fs.mkdirSync(d);
  return d;
}

// ---- tfjs fixture ------------------------------------------------------------------------------

const f32 = (a: number[]) => Float32Array.from(a);
const le = (view: ArrayBufferView) => Buffer.from(view.buffer, view.byteOffset, view.byteLength); // host is little-endian (checked below)

function floatToHalf(v: number): number {
  // exact for the values used here (representable in float16)
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const s = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  const m = Math.round((a / 2 ** e - 1) * 1024);
  return s | ((e + 15) << 10) | m;
}

interface Fixture {
  manifest: { paths: string[]; weights: Record<string, unknown>[] }[];
  shards: Record<string, Buffer>;
  expected: { name: string; shape: number[]; dtype: string; data: number[]; group: number }[];
}

function tfjsFixture(): Fixture {
  const kernel = [0.5, -1.25, 3e-8, 1e20, -0, 7, 8.5, -9, 0.1, 0.2, 0.3, -0.4];
  const ids = [0, -1, 2147483647, -2147483648, 42];
  const mask = [1, 0, 1];
  const q8 = [0, 1, 255, 128];
  const q16 = [0, 65535];
  const half = [1, -2.5, 2 ** -14, 65504];
  const qi = [3, 200];
  const group0 = Buffer.concat([
    le(f32(kernel)), // 48 bytes
    le(Int32Array.from(ids)), // 20
    Buffer.from(mask), // 3: the next weights start unaligned
    le(f32([Math.PI])), // scalar, shape []
    Buffer.from(q8),
    le(Uint16Array.from(q16)),
    le(Uint16Array.from(half.map(floatToHalf))),
    Buffer.from(qi),
  ]);
  const group1 = le(f32([1, 2, 3, 4, 5, 6]));
  return {
    manifest: [
      {
        paths: ['group1-shard1of2', 'sub/group1-shard2of2'],
        weights: [
          { name: 'dense/kernel', shape: [3, 4], dtype: 'float32' },
          { name: 'ids', shape: [5], dtype: 'int32' },
          { name: 'mask', shape: [3], dtype: 'bool' },
          { name: 'scalar', shape: [], dtype: 'float32' },
          { name: 'q8', shape: [2, 2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
          { name: 'q16', shape: [2], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.25, min: 2 } },
          { name: 'half', shape: [4], dtype: 'float32', quantization: { dtype: 'float16' } },
          { name: 'qi', shape: [2], dtype: 'int32', quantization: { dtype: 'uint8', scale: 0.3, min: -10 } },
        ],
      },
      {
        paths: ['group2-shard1of1'],
        weights: [
          { name: 'empty', shape: [0, 5], dtype: 'float32' },
          { name: 'b', shape: [2, 3], dtype: 'float32' },
        ],
      },
    ],
    // the first group's stream is split at byte 50 (inside the int32 weight)
    shards: { 'group1-shard1of2': group0.subarray(0, 50), 'sub/group1-shard2of2': group0.subarray(50), 'group2-shard1of1': group1 },
    expected: [
      { name: 'dense/kernel', shape: [3, 4], dtype: 'float32', data: Array.from(f32(kernel)), group: 0 },
      { name: 'ids', shape: [5], dtype: 'int32', data: ids, group: 0 },
      { name: 'mask', shape: [3], dtype: 'bool', data: mask, group: 0 },
      { name: 'scalar', shape: [], dtype: 'float32', data: [Math.fround(Math.PI)], group: 0 },
      { name: 'q8', shape: [2, 2], dtype: 'float32', data: q8.map((q) => q * 0.5 - 1), group: 0 },
      { name: 'q16', shape: [2], dtype: 'float32', data: q16.map((q) => Math.fround(q * 0.25 + 2)), group: 0 },
      { name: 'half', shape: [4], dtype: 'float32', data: half.map(Math.fround), group: 0 },
      { name: 'qi', shape: [2], dtype: 'int32', data: [Math.round(3 * 0.3 - 10), Math.round(200 * 0.3 - 10)], group: 0 },
      { name: 'empty', shape: [0, 5], dtype: 'float32', data: [], group: 1 },
      { name: 'b', shape: [2, 3], dtype: 'float32', data: [1, 2, 3, 4, 5, 6], group: 1 },
    ],
  };
}

/** Write model.json (an object, or raw text) and the shards; returns the model.json path. */
function writeTfjs(f: { manifest?: unknown; shards?: Record<string, Uint8Array>; json?: unknown; text?: string }): string {
  const d = dir();
  const file = path.join(d, 'model.json');
  const text = f.text ?? JSON.stringify(f.json ?? { format: 'graph-model', modelTopology: {}, weightsManifest: f.manifest });
  fs.writeFileSync(file, text);
  for (const [p, b] of Object.entries(f.shards ?? {})) {
    fs.mkdirSync(path.dirname(path.join(d, p)), { recursive: true });
    fs.writeFileSync(path.join(d, p), b);
  }
  return file;
}

/** The fixture with `edit` applied to a deep copy of the manifest. */
function corrupt(edit: (m: Fixture['manifest'], shards: Record<string, Buffer>) => void): string {
  const fx = tfjsFixture();
  const m = JSON.parse(JSON.stringify(fx.manifest));
  const shards = { ...fx.shards };
  edit(m, shards);
  return writeTfjs({ manifest: m, shards });
}

/** The error of both loaders (they must agree), with the temp directory shown as <dir>. */
async function tfjsError(file: string): Promise<string> {
  let syncErr: unknown;
  try {
    loadTfjsWeightsSync(file);
  } catch (e) {
    syncErr = e;
  }
  let asyncErr: unknown;
  try {
    await loadTfjsWeights(file);
  } catch (e) {
    asyncErr = e;
  }
  expect(syncErr, 'sync loader should throw').toBeInstanceOf(Error);
  expect(asyncErr, 'async loader should throw').toBeInstanceOf(Error);
  expect((asyncErr as Error).message).toBe((syncErr as Error).message);
  return (syncErr as Error).message.split(path.dirname(file)).join('<dir>');
}

function plain(ws: TfjsWeight[]) {
  return ws.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype, data: Array.from(w.data), group: w.group }));
}

describe('loadTfjsWeights', () => {
  it('runs on a little-endian host (the fixtures are written in host order)', () => {
    expect(os.endianness()).toBe('LE');
  });

  it('loads every dtype exactly, across shard boundaries, dequantizing uint8/uint16/float16 storage', async () => {
    const fx = tfjsFixture();
    const file = writeTfjs({ manifest: fx.manifest, shards: fx.shards });
    const ws = await loadTfjsWeights(file);
    expect(plain(ws)).toEqual(fx.expected);
    expect(ws[0].data).toBeInstanceOf(Float32Array);
    expect(Object.is(ws[0].data[4], -0)).toBe(true);
    expect(ws[1].data).toBeInstanceOf(Int32Array);
    expect(ws[2].data).toBeInstanceOf(Uint8Array);
    expect(ws[7].data).toBeInstanceOf(Int32Array);
    expect(ws[4].quantization).toEqual({ dtype: 'uint8', scale: 0.5, min: -1 });
    expect(ws[0].quantization).toBeUndefined();
    // each weight owns its buffer
    expect(ws[0].data.buffer).not.toBe(ws[9].data.buffer);
    expect(plain(loadTfjsWeightsSync(file))).toEqual(fx.expected);
  });

  it('ignores fields it does not use (modelTopology, format, extra keys)', async () => {
    const fx = tfjsFixture();
    const m = fx.manifest.map((g) => ({ ...g, group: 'x', weights: g.weights.map((w) => ({ ...w, extra: 1 })) }));
    const file = writeTfjs({ json: { modelTopology: { node: [] }, format: 'layers-model', weightsManifest: m, extra: true }, shards: fx.shards });
    expect(plain(await loadTfjsWeights(file))).toEqual(fx.expected);
  });

  it('accepts an empty manifest and groups without bytes', async () => {
    expect(await loadTfjsWeights(writeTfjs({ manifest: [] }))).toEqual([]);
    const ws = await loadTfjsWeights(writeTfjs({ manifest: [{ paths: [], weights: [{ name: 'e', shape: [0], dtype: 'int32' }] }] }));
    expect(plain(ws)).toEqual([{ name: 'e', shape: [0], dtype: 'int32', data: [], group: 0 }]);
  });

  it('checks its argument', async () => {
    expect(() => loadTfjsWeightsSync(3 as unknown as string)).toThrow(new TypeError('Expected a non-empty string for modelJsonPath but received number 3'));
    await expect(loadTfjsWeights('')).rejects.toThrow(new TypeError("Expected a non-empty string for modelJsonPath but received string ''"));
  });

  it('reports a missing or unparsable model.json', async () => {
    const d = dir();
    expect(await tfjsError(path.join(d, 'model.json'))).toBe('<dir>/model.json: cannot read the model file: no such file');
    expect(await tfjsError(writeTfjs({ text: '{"weightsManifest": [' }))).toMatch(/^<dir>\/model\.json: invalid JSON: .+/);
    expect(await tfjsError(writeTfjs({ text: '[1, 2]' }))).toBe('<dir>/model.json: expected a JSON object but received [1,2]');
    expect(await tfjsError(writeTfjs({ json: { modelTopology: {} } })))
      .toBe('<dir>/model.json: weightsManifest: expected an array of weight groups { paths, weights } but received undefined');
    const e = await loadTfjsWeights(writeTfjs({ text: '{' })).catch((x) => x);
    expect(e).toBeInstanceOf(WeightFileError);
    expect(e.field).toBe('');
    expect(e.cause).toBeInstanceOf(SyntaxError);
  });

  const cases: [string, (m: Fixture['manifest'], s: Record<string, Buffer>) => void, string][] = [
    ['group not an object', (m) => { (m as unknown[])[1] = 'g'; },
      "weightsManifest[1]: expected an object { paths, weights } but received 'g'"],
    ['missing paths', (m) => { delete (m[0] as Partial<Fixture['manifest'][0]>).paths; },
      'weightsManifest[0].paths: expected an array of shard file names but received undefined'],
    ['path not a string', (m) => { (m[0].paths as unknown[])[1] = 7; },
      'weightsManifest[0].paths[1]: expected a non-empty string but received 7'],
    ['empty path', (m) => { m[1].paths[0] = ''; },
      "weightsManifest[1].paths[0]: expected a non-empty string but received ''"],
    ['absolute path', (m) => { m[0].paths[0] = '/etc/passwd'; },
      "weightsManifest[0].paths[0]: expected a path relative to the directory of the model file but received '/etc/passwd'"],
    ['URL path', (m) => { m[0].paths[0] = 'https://example.com/shard'; },
      "weightsManifest[0].paths[0]: expected a path relative to the directory of the model file but received 'https://example.com/shard'"],
    ['path escaping the directory', (m) => { m[0].paths[1] = 'sub/../../x'; },
      "weightsManifest[0].paths[1]: expected a path inside the directory of the model file but received 'sub/../../x'"],
    ['missing weights', (m) => { (m[1] as Record<string, unknown>).weights = {}; },
      'weightsManifest[1].weights: expected an array of weight entries { name, shape, dtype } but received {}'],
    ['weight not an object', (m) => { (m[0].weights as unknown[])[2] = null; },
      'weightsManifest[0].weights[2]: expected an object { name, shape, dtype } but received null'],
    ['missing name', (m) => { delete m[0].weights[1].name; },
      'weightsManifest[0].weights[1].name: expected a non-empty string but received undefined'],
    ['duplicate name', (m) => { m[1].weights[1].name = 'ids'; },
      "weightsManifest[1].weights[1].name: expected a unique name but received 'ids', already the name of weightsManifest[0].weights[1]"],
    ['negative shape', (m) => { m[0].weights[3].shape = [2, -1]; },
      'weightsManifest[0].weights[3].shape: expected an array of non-negative integers but received [2,-1]'],
    ['fractional shape', (m) => { m[0].weights[0].shape = [3, 4.5]; },
      'weightsManifest[0].weights[0].shape: expected an array of non-negative integers but received [3,4.5]'],
    ['string shape', (m) => { m[0].weights[0].shape = '3,4' as unknown as number[]; },
      "weightsManifest[0].weights[0].shape: expected an array of non-negative integers but received '3,4'"],
    ['shape with a string', (m) => { m[0].weights[0].shape = [3, '4']; },
      'weightsManifest[0].weights[0].shape: expected an array of non-negative integers but received [3,"4"]'],
    ['missing shape', (m) => { delete m[1].weights[0].shape; },
      'weightsManifest[1].weights[0].shape: expected an array of non-negative integers but received undefined'],
    ['huge shape', (m) => { m[0].weights[0].shape = [2 ** 30, 2 ** 30, 2 ** 30]; },
      'weightsManifest[0].weights[0].shape: expected a shape whose element count is a safe integer but received [1073741824,1073741824,1073741824]'],
    ['unknown dtype', (m) => { m[0].weights[0].dtype = 'float64'; },
      "weightsManifest[0].weights[0].dtype: expected one of 'float32', 'int32', 'bool', 'uint8' but received 'float64'"],
    ['string dtype', (m) => { m[0].weights[1].dtype = 'string'; },
      "weightsManifest[0].weights[1].dtype: expected one of 'float32', 'int32', 'bool', 'uint8' but received 'string' (string weights are not supported)"],
    ['missing dtype', (m) => { delete m[1].weights[1].dtype; },
      "weightsManifest[1].weights[1].dtype: expected one of 'float32', 'int32', 'bool', 'uint8' but received undefined"],
    ['bad quantization dtype', (m) => { m[0].weights[4].quantization = { dtype: 'int8', scale: 1, min: 0 }; },
      "weightsManifest[0].weights[4].quantization.dtype: expected one of 'uint8', 'uint16', 'float16' but received 'int8'"],
    ['quantization not an object', (m) => { m[0].weights[4].quantization = 'uint8'; },
      "weightsManifest[0].weights[4].quantization: expected an object { dtype, scale, min } but received 'uint8'"],
    ['missing scale', (m) => { m[0].weights[5].quantization = { dtype: 'uint16', min: 0 }; },
      'weightsManifest[0].weights[5].quantization.scale: expected a positive finite number but received undefined'],
    ['zero scale', (m) => { m[0].weights[5].quantization = { dtype: 'uint16', scale: 0, min: 0 }; },
      'weightsManifest[0].weights[5].quantization.scale: expected a positive finite number but received 0'],
    ['missing min', (m) => { m[0].weights[4].quantization = { dtype: 'uint8', scale: 1 }; },
      'weightsManifest[0].weights[4].quantization.min: expected a finite number but received undefined'],
    ['float16 storage of an int32 weight', (m) => { m[0].weights[7].quantization = { dtype: 'float16' }; },
      "weightsManifest[0].weights[7].quantization.dtype: expected 'uint8' or 'uint16' for a weight of dtype 'int32' (float16 storage is for float32 weights) but received 'float16'"],
    ['quantized bool', (m) => { m[0].weights[2].quantization = { dtype: 'uint8', scale: 1, min: 0 }; },
      'weightsManifest[0].weights[2].quantization: expected no quantization for a weight of dtype \'bool\' but received {"dtype":"uint8","scale":1,"min":0}'],
    ['missing shard', (m, s) => { delete s['sub/group1-shard2of2']; },
      "weightsManifest[0].paths[1]: cannot read shard '<dir>/sub/group1-shard2of2': no such file"],
    ['shard is a directory', (m) => { m[0].paths[1] = 'sub'; },
      "weightsManifest[0].paths[1]: expected a regular file but '<dir>/sub' is not one"],
    ['truncated shard', (m, s) => { s['sub/group1-shard2of2'] = s['sub/group1-shard2of2'].subarray(0, 30); },
      "weightsManifest[0].paths: expected shards holding the 93 bytes the weights need but received 2 shards of 80 bytes (13 bytes short; weightsManifest[0].weights[5] 'q16' needs bytes 79..83)"],
    ['shard one byte short', (m, s) => { s['group2-shard1of1'] = s['group2-shard1of1'].subarray(0, 23); },
      "weightsManifest[1].paths: expected shards holding the 24 bytes the weights need but received 1 shard of 23 bytes (1 bytes short; weightsManifest[1].weights[1] 'b' needs bytes 0..24)"],
    ['extra bytes', (m, s) => { s['group2-shard1of1'] = Buffer.concat([s['group2-shard1of1'], Buffer.alloc(4)]); },
      'weightsManifest[1].paths: expected shards holding exactly the 24 bytes the weights need but received 1 shard of 28 bytes (4 bytes too many)'],
    ['shard left out of paths', (m) => { m[0].paths.pop(); },
      "weightsManifest[0].paths: expected shards holding the 93 bytes the weights need but received 1 shard of 50 bytes (43 bytes short; weightsManifest[0].weights[1] 'ids' needs bytes 48..68)"],
    ['weight left out of the manifest', (m) => { m[1].weights.pop(); },
      'weightsManifest[1].paths: expected shards holding exactly the 0 bytes the weights need but received 1 shard of 24 bytes (24 bytes too many)'],
    ['bool byte other than 0/1', (m, s) => { const b = Buffer.from(s['sub/group1-shard2of2']); b[18] = 2; s['sub/group1-shard2of2'] = b; },
      "weightsManifest[0].weights[2]: expected bool values 0 or 1 but received 2 at element 0 of 'mask'"],
  ];

  for (const [what, edit, msg] of cases) {
    it(`rejects: ${what}`, async () => {
      expect(await tfjsError(corrupt(edit))).toBe(`<dir>/model.json: ${msg}`);
    });
  }

  it('throws WeightFileError with file and field', async () => {
    const file = corrupt((m) => { m[0].weights[3].shape = [-1]; });
    const e = await loadTfjsWeights(file).catch((x) => x);
    expect(e).toBeInstanceOf(WeightFileError);
    expect(e.name).toBe('WeightFileError');
    expect(e.file).toBe(file);
    expect(e.field).toBe('weightsManifest[0].weights[3].shape');
  });

  it('checks the manifest before reading any shard', async () => {
    // bad dtype in group 1 and a missing shard in group 0: the manifest error wins
    const file = corrupt((m, s) => { m[1].weights[1].dtype = 'f32'; delete s['group1-shard1of2']; });
    expect(await tfjsError(file)).toMatch(/weightsManifest\[1\]\.weights\[1\]\.dtype/);
  });
});

// ---- gnubg fixture -------------------------------------------------------------------------------

interface NetSpec {
  cIn: number; cHid: number; cOut: number; nTrained?: number; betaH?: number; betaO?: number;
}

const NETS: NetSpec[] = [
  { cIn: 5, cHid: 4, cOut: 2 }, { cIn: 3, cHid: 4, cOut: 2, nTrained: 7 }, { cIn: 5, cHid: 3, cOut: 1 },
  { cIn: 2, cHid: 2, cOut: 5 }, { cIn: 2, cHid: 1, cOut: 5 }, { cIn: 1, cHid: 1, cOut: 1, betaH: 0.5, betaO: 2 },
];

/** Deterministic weights of net k: distinct, exactly representable values. */
function netValues(k: number, n: number, base: number): number[] {
  return Array.from({ length: n }, (_, i) => (k + 1) * 1000 + base + i * 0.25 - (i % 3) * 17);
}

function gnubgFile(opts: { nets?: NetSpec[]; magic?: number; version?: number; bigEndian?: boolean } = {}): Buffer {
  const nets = opts.nets ?? NETS;
  const LE = !opts.bigEndian;
  const parts: Buffer[] = [];
  const f = (vals: number[]) => {
    const b = Buffer.alloc(4 * vals.length);
    vals.forEach((v, i) => (LE ? b.writeFloatLE(v, 4 * i) : b.writeFloatBE(v, 4 * i)));
    parts.push(b);
  };
  const i32 = (vals: number[]) => {
    const b = Buffer.alloc(4 * vals.length);
    vals.forEach((v, i) => (LE ? b.writeInt32LE(v, 4 * i) : b.writeInt32BE(v, 4 * i)));
    parts.push(b);
  };
  f([opts.magic ?? 472.3782, opts.version ?? 1]);
  nets.forEach((n, k) => {
    i32([n.cIn, n.cHid, n.cOut, n.nTrained ?? 1]);
    f([n.betaH ?? 0.1, n.betaO ?? 1]);
    const cnt = (v: number) => Math.max(0, Math.min(v, 100));
    f(netValues(k, cnt(n.cIn) * cnt(n.cHid), 0));
    f(netValues(k, cnt(n.cOut) * cnt(n.cHid), 300));
    f(netValues(k, cnt(n.cHid), 500));
    f(netValues(k, cnt(n.cOut), 700));
  });
  return Buffer.concat(parts);
}

const NET_BYTES = NETS.map((n) => 24 + 4 * (n.cIn * n.cHid + n.cOut * n.cHid + n.cHid + n.cOut));
const netStart = (k: number) => 8 + NET_BYTES.slice(0, k).reduce((a, b) => a + b, 0);

function gnubgError(bytes: Uint8Array): string {
  let e: unknown;
  try {
    parseGnubgWeights(bytes, 'gnubg.wd');
  } catch (x) {
    e = x;
  }
  expect(e, 'should throw').toBeInstanceOf(WeightFileError);
  return (e as Error).message;
}

describe('loadGnubgWeights', () => {
  it('loads the six nets exactly, with shapes [cIn, cHid] and [cOut, cHid]', async () => {
    const d = dir();
    const file = path.join(d, 'gnubg.wd');
    fs.writeFileSync(file, gnubgFile());
    const nets = await loadGnubgWeights(file);
    expect(nets.map((n) => n.name)).toEqual([...GNUBG_NET_NAMES]);
    nets.forEach((n, k) => {
      const s = NETS[k];
      expect([n.cIn, n.cHid, n.cOut, n.nTrained]).toEqual([s.cIn, s.cHid, s.cOut, s.nTrained ?? 1]);
      expect(n.betaH).toBe(Math.fround(s.betaH ?? 0.1));
      expect(n.betaO).toBe(s.betaO ?? 1);
      expect(n.hidden.shape).toEqual([s.cIn, s.cHid]);
      expect(n.output.shape).toEqual([s.cOut, s.cHid]);
      expect(n.hidden.data).toBeInstanceOf(Float32Array);
      expect(Array.from(n.hidden.data)).toEqual(netValues(k, s.cIn * s.cHid, 0));
      expect(Array.from(n.output.data)).toEqual(netValues(k, s.cOut * s.cHid, 300));
      expect(Array.from(n.hiddenBias)).toEqual(netValues(k, s.cHid, 500));
      expect(Array.from(n.outputBias)).toEqual(netValues(k, s.cOut, 700));
      expect(n.littleEndian).toBe(true);
    });
    const sync = loadGnubgWeightsSync(file);
    expect(sync.map((n) => Array.from(n.hidden.data))).toEqual(nets.map((n) => Array.from(n.hidden.data)));
  });

  it('reads big-endian files (gnubg writes in the byte order of the machine that built it)', () => {
    const a = parseGnubgWeights(gnubgFile());
    const b = parseGnubgWeights(gnubgFile({ bigEndian: true }));
    expect(b.every((n) => !n.littleEndian)).toBe(true);
    expect(b.map((n) => ({ ...n, littleEndian: true }))).toEqual(a);
  });

  it('accepts a Buffer that is a view into a larger ArrayBuffer', () => {
    const bytes = gnubgFile();
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    expect(parseGnubgWeights(big.subarray(3))).toEqual(parseGnubgWeights(bytes));
  });

  it('checks its arguments', async () => {
    expect(() => parseGnubgWeights([1, 2] as unknown as Uint8Array)).toThrow(new TypeError('Expected a Uint8Array or Buffer for bytes but received Array of length 2'));
    expect(() => loadGnubgWeightsSync(5 as unknown as string)).toThrow(new TypeError('Expected a non-empty string for path but received number 5'));
    const missing = path.join(dir(), 'nope.wd');
    await expect(loadGnubgWeights(missing)).rejects.toThrow(`${missing}: cannot read the weights file: no such file`);
    expect(() => loadGnubgWeightsSync(missing)).toThrow(`${missing}: cannot read the weights file: no such file`);
  });

  const good = gnubgFile();
  const patchI32 = (off: number, v: number) => { const b = Buffer.from(good); b.writeInt32LE(v, off); return b; };
  const patchF32 = (off: number, v: number) => { const b = Buffer.from(good); b.writeFloatLE(v, off); return b; };
  const cases: [string, () => Uint8Array, string][] = [
    ['empty file', () => Buffer.alloc(0),
      'gnubg.wd: header: expected 8 bytes (magic and version, 2 float32) but received a file of 0 bytes'],
    ['header cut short', () => good.subarray(0, 7),
      'gnubg.wd: header: expected 8 bytes (magic and version, 2 float32) but received a file of 7 bytes'],
    ['wrong magic', () => gnubgFile({ magic: 472.5 }),
      'gnubg.wd: header.magic: expected the float32 472.3782 (in either byte order) but received 472.5 (bytes 00 40 ec 43)'],
    ['text weights file', () => Buffer.from('GNU Backgammon 1.00 250 128 5\n'),
      'gnubg.wd: header.magic: expected the float32 472.3782 (in either byte order) but received 1.8067701576977457e-19 (bytes 47 4e 55 20)'],
    ['wrong version', () => gnubgFile({ version: 2 }),
      'gnubg.wd: header.version: expected 1 but received 2'],
    ['cIn 0', () => patchI32(8, 0),
      'gnubg.wd: nets[0] (contact).cIn: expected an integer between 1 and 65536 but received 0'],
    ['negative cHid', () => patchI32(netStart(2) + 4, -128),
      'gnubg.wd: nets[2] (crashed).cHid: expected an integer between 1 and 65536 but received -128'],
    ['huge cOut', () => patchI32(netStart(5) + 8, 1 << 20),
      'gnubg.wd: nets[5] (pruning-race).cOut: expected an integer between 1 and 65536 but received 1048576'],
    ['zero betaH', () => patchF32(netStart(1) + 16, 0),
      'gnubg.wd: nets[1] (race).betaH: expected a positive finite float32 but received 0'],
    ['NaN betaO', () => patchF32(netStart(3) + 20, NaN),
      'gnubg.wd: nets[3] (pruning-contact).betaO: expected a positive finite float32 but received NaN'],
    ['NaN weight', () => patchF32(netStart(1) + 24 + 4 * 5, NaN),
      'gnubg.wd: nets[1] (race).hidden[5]: expected a finite float32 but received NaN'],
    ['infinite output bias', () => patchF32(netStart(1) + NET_BYTES[1] - 4, -Infinity),
      'gnubg.wd: nets[1] (race).outputBias[1]: expected a finite float32 but received -Infinity'],
    ['truncated net', () => good.subarray(0, netStart(2) + 100),
      `gnubg.wd: nets[2] (crashed): expected ${4 * (15 + 3 + 3 + 1)} bytes of weights at byte ${netStart(2) + 24} (cIn 5, cHid 3, cOut 1) but received 76 bytes`],
    ['cHid larger than the file holds', () => patchI32(8 + 4, 1000),
      `gnubg.wd: nets[0] (contact): expected ${4 * (5 * 1000 + 2 * 1000 + 1000 + 2)} bytes of weights at byte 32 (cIn 5, cHid 1000, cOut 2) but received ${good.length - 32} bytes`],
    ['file ends after two nets', () => good.subarray(0, netStart(2)),
      `gnubg.wd: nets[2] (crashed): expected a 24-byte net header at byte ${netStart(2)} but received 0 bytes (the file ends after 2 of 6 nets)`],
    ['net header cut', () => good.subarray(0, netStart(5) + 10),
      `gnubg.wd: nets[5] (pruning-race): expected a 24-byte net header at byte ${netStart(5)} but received 10 bytes (the file ends after 5 of 6 nets)`],
    ['extra bytes', () => Buffer.concat([good, Buffer.alloc(4)]),
      `gnubg.wd: expected exactly ${good.length} bytes (the header and 6 nets) but received a file of ${good.length + 4} bytes (4 bytes after the last net)`],
    ['a seventh net', () => gnubgFile({ nets: [...NETS, { cIn: 1, cHid: 1, cOut: 1 }] }),
      `gnubg.wd: expected exactly ${good.length} bytes (the header and 6 nets) but received a file of ${good.length + 24 + 16} bytes (40 bytes after the last net)`],
  ];
  for (const [what, make, msg] of cases) {
    it(`rejects: ${what}`, () => {
      expect(gnubgError(make())).toBe(msg);
    });
  }

  it('names the file and field on the error', () => {
    let e: WeightFileError | undefined;
    try {
      parseGnubgWeights(gnubgFile({ version: 3 }), '/x/gnubg.wd');
    } catch (x) {
      e = x as WeightFileError;
    }
    expect(e?.file).toBe('/x/gnubg.wd');
    expect(e?.field).toBe('header.version');
  });
});
