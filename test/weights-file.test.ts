// Quantized weights files (lib/ptq/weights-file.ts): a state dict without a layer graph whose
// Linear weights were quantized, described in __metadata__['quantkit.weights']. Written and read
// back for every bit width, scheme and granularity; the float state dict they dequantize to; and
// the reader refusing every wrong field, each error naming the file and the field.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  dequantizeWeights, isQuantizedWeights, loadQuantizedWeights, loadSafetensors, nn, parseQuantizedWeights, parseSafetensors,
  quantize, quantizeWeights, quantizeWeightsFile, saveModel, saveSafetensors, serializeSafetensors, WeightFileError,
} from '../lib/index';
import type { QuantizeWeightsOptions, SafetensorsFile, SafetensorsTensor } from '../lib/index';
import { WEIGHTS_KEY } from '../lib/ptq/weights-file';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-weights-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// 5 x 7: an odd number of codes, so packed files have a padding nibble; K = 7 is not a multiple of
// the group sizes used.
const N = 5, K = 7;
const W = Float32Array.from({ length: N * K }, (_, i) => Math.sin(1.3 * i) * (1 + (i % 4)));
function stateDict(): SafetensorsFile {
  return {
    tensors: {
      'fc.weight': { dtype: 'F32', shape: [N, K], data: W.slice() },
      'fc.bias': { dtype: 'F32', shape: [N], data: Float32Array.from({ length: N }, (_, i) => i - 2) },
      'emb.weight': { dtype: 'F32', shape: [3, 2, 2], data: new Float32Array(12).fill(0.25) },
      steps: { dtype: 'I32', shape: [1], data: Int32Array.of(1000) },
    },
    metadata: { source: 'test' },
  };
}

/** Quantized in memory, serialized and parsed again: what a reader of the file sees. */
function roundTrip(opts?: QuantizeWeightsOptions): SafetensorsFile {
  const r = quantizeWeights(stateDict(), opts, 'in.safetensors');
  return parseSafetensors(serializeSafetensors(r.tensors, r.metadata), 'w.safetensors');
}

const VARIANTS: [string, QuantizeWeightsOptions, string, number[]][] = [
  ['dynamic int8 per-channel (default)', {}, 'I8', [N, K]],
  ['dynamic int8 per-tensor', { granularity: 'per-tensor' }, 'I8', [N, K]],
  ['dynamic uint8 asymmetric', { scheme: 'asymmetric' }, 'U8', [N, K]],
  ['weight-only int4 group 32 (default)', { mode: 'weight-only', bits: 4 }, 'U8', [18]],
  ['weight-only int4 group 3, asymmetric', { mode: 'weight-only', bits: 4, granularity: { groupSize: 3 }, scheme: 'asymmetric' }, 'U8', [18]],
  ['weight-only 3 bits per-channel', { mode: 'weight-only', bits: 3, granularity: 'per-channel' }, 'U8', [18]],
  ['weight-only 6 bits group 4', { mode: 'weight-only', bits: 6, granularity: { groupSize: 4 } }, 'I8', [N, K]],
];

describe('quantizeWeights / parseQuantizedWeights round trip', () => {
  for (const [label, opts, dtype, shape] of VARIANTS) {
    it(label, () => {
      const f = roundTrip(opts);
      expect(isQuantizedWeights(f.metadata)).toBe(true);
      expect([f.tensors['fc.weight'].dtype, f.tensors['fc.weight'].shape]).toEqual([dtype, shape]);
      const q = parseQuantizedWeights(f, 'w.safetensors');
      const bits = opts.bits ?? 8;
      const scheme = opts.scheme ?? 'symmetric';
      const g = opts.granularity ?? (opts.mode === 'weight-only' ? { groupSize: 32 } : 'per-channel');
      expect(q.mode).toBe(opts.mode ?? 'dynamic');
      expect(Object.keys(q.weights)).toEqual(['fc.weight']);
      const w = q.weights['fc.weight'];
      expect({ ...w, tensor: undefined }).toEqual({
        name: 'fc.weight', shape: [N, K], bits, scheme, signed: scheme === 'symmetric', granularity: g, packed: bits <= 4,
        bytes: Object.entries(f.tensors).filter(([n]) => n.startsWith('fc.weight')).reduce((s, [, t]) => s + t.data.byteLength, 0),
        tensor: undefined,
      });
      // The codes and qparams are those quantize() gives for the same spec.
      const gran = g === 'per-tensor' ? 'per-tensor' : g === 'per-channel' ? { axis: 0 } : { axis: 1, blockSize: g.groupSize };
      const ref = quantize(W, [N, K], { scheme, bits, granularity: gran });
      expect(Array.from(w.tensor.data)).toEqual(Array.from(ref.data));
      expect(Array.from(w.tensor.scale)).toEqual(Array.from(ref.scale));
      expect(Array.from(w.tensor.zeroPoint)).toEqual(Array.from(ref.zeroPoint));
      expect([w.tensor.qmin, w.tensor.qmax]).toEqual([ref.qmin, ref.qmax]);
      // The other tensors pass through; the metadata keeps the input's entries.
      expect(Object.keys(q.tensors).sort()).toEqual(['emb.weight', 'fc.bias', 'steps']);
      expect(Array.from(q.tensors.steps.data)).toEqual([1000]);
      expect(q.metadata).toEqual({ source: 'test' });
      // dequantizeWeights: a float state dict, the weight within half a step of the original.
      const sd = dequantizeWeights(q);
      expect(Object.keys(sd).sort()).toEqual(['emb.weight', 'fc.bias', 'fc.weight', 'steps']);
      expect([sd['fc.weight'].dtype, sd['fc.weight'].shape]).toEqual(['F32', [N, K]]);
      const deq = sd['fc.weight'].data as Float32Array;
      expect(Array.from(deq)).toEqual(Array.from(ref.dequantize()));
      const groupOf = (i: number, k: number) => (typeof g === 'string' ? (g === 'per-tensor' ? 0 : i) : i * Math.ceil(K / g.groupSize) + Math.floor(k / g.groupSize));
      for (let i = 0; i < N; i++) {
        for (let k = 0; k < K; k++) expect(Math.abs(deq[i * K + k] - W[i * K + k])).toBeLessThanOrEqual(ref.scale[groupOf(i, k)] / 2 + 1e-6);
      }
    });
  }

  it('the summary counts what changed; the metadata JSON is the documented one', () => {
    const r = quantizeWeights(stateDict(), { mode: 'weight-only', bits: 4 }, 'in.safetensors');
    expect(r.summary).toEqual({
      mode: 'weight-only', bits: 4, scheme: 'symmetric', granularity: { groupSize: 32 }, quantized: ['fc.weight'],
      bytesBefore: 4 * (N * K + N + 12 + 1), bytesAfter: 18 + 4 * N + 4 * (N + 12 + 1),
    });
    expect(JSON.parse(r.metadata[WEIGHTS_KEY])).toEqual({
      version: 1, mode: 'weight-only',
      tensors: { 'fc.weight': { shape: [N, K], bits: 4, scheme: 'symmetric', signed: true, granularity: { groupSize: 32 }, packed: true } },
    });
  });

  it('a model loads the dequantized state dict (loadStateDict)', () => {
    nn.manualSeed(3);
    const m = new nn.Sequential(new nn.Linear(6, 4), new nn.ReLU(), new nn.Linear(4, 2));
    const file = path.join(tmp, 'sd.safetensors');
    saveSafetensors(file, m.stateDict());
    const out = path.join(tmp, 'sd-q.safetensors');
    const s = quantizeWeightsFile(file, out);
    expect(s.quantized).toEqual(['0.weight', '2.weight']);
    const q = loadQuantizedWeights(out);
    const m2 = new nn.Sequential(new nn.Linear(6, 4), new nn.ReLU(), new nn.Linear(4, 2));
    m2.loadStateDict(dequantizeWeights(q));
    const sd = m2.stateDict();
    expect(Array.from(sd['0.weight'].data)).toEqual(Array.from(q.weights['0.weight'].tensor.dequantize()));
    expect(Array.from(sd['2.bias'].data)).toEqual(Array.from(m.stateDict()['2.bias'].data));
  });

  it('a weight named just "weight" gets weight_scale', () => {
    const r = quantizeWeights({ tensors: { weight: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, -1, 0.5, 2) } }, metadata: {} });
    expect(Object.keys(r.tensors).sort()).toEqual(['weight', 'weight_scale']);
    const q = parseQuantizedWeights(parseSafetensors(serializeSafetensors(r.tensors, r.metadata)));
    expect(Array.from(q.weights.weight.tensor.dequantize())).toEqual([1, -1, expect.closeTo(0.5, 2), 2]);
  });
});

describe('quantizeWeights refuses', () => {
  const throwsMsg = (f: () => unknown, cls: ErrorConstructor | typeof WeightFileError, msg: string) => {
    let err: unknown;
    try { f(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(cls);
    expect((err as Error).message).toBe(msg);
  };
  it('bad options', () => {
    throwsMsg(() => quantizeWeights(stateDict(), { bits: 9 }), RangeError, 'Expected an integer between 2 and 8 for opts.bits but received 9');
    throwsMsg(() => quantizeWeights(stateDict(), { mode: 'static' as 'dynamic' }), RangeError, "Expected one of 'dynamic', 'weight-only' for opts.mode but received 'static'");
    throwsMsg(() => quantizeWeights(stateDict(), { granularity: { groupSize: 8 } }), RangeError,
      "Expected 'per-channel' or 'per-tensor' for mode 'dynamic' (groups need mode 'weight-only': the int8 GEMM takes one scale per output column) for opts.granularity but received {\"groupSize\":8}");
    throwsMsg(() => quantizeWeights(stateDict(), { bitz: 8 } as QuantizeWeightsOptions), TypeError, "Unknown option 'bitz' in opts; expected only 'mode', 'bits', 'granularity', 'scheme'");
    throwsMsg(() => quantizeWeights(null as unknown as SafetensorsFile), TypeError, 'Expected a SafetensorsFile { tensors, metadata } for file but received null');
  });
  it('a file already quantized, a model file, a file without weights, a collision, a non-finite weight', () => {
    const q = quantizeWeights(stateDict());
    throwsMsg(() => quantizeWeights({ tensors: q.tensors, metadata: q.metadata }, {}, 'q.safetensors'), WeightFileError,
      "q.safetensors: already quantized (its __metadata__ has 'quantkit.weights'); quantize the float file");
    throwsMsg(() => quantizeWeights({ tensors: {}, metadata: { 'quantkit.graph': '{}' } }, {}, 'm.safetensors'), WeightFileError,
      "m.safetensors: a quantkit model file (its __metadata__ has 'quantkit.graph'): quantize the model with quantizeModel");
    throwsMsg(() => quantizeWeights({ tensors: { 'fc.bias': stateDict().tensors['fc.bias'] }, metadata: {} }, {}, 'b.safetensors'), WeightFileError,
      "b.safetensors: no Linear weights to quantize (non-empty 2-D F32 tensors named '*.weight')");
    const sd = stateDict();
    sd.tensors['fc.weight_scale'] = { dtype: 'F32', shape: [1], data: Float32Array.of(1) };
    throwsMsg(() => quantizeWeights(sd, {}, 'c.safetensors'), WeightFileError, "c.safetensors: tensor 'fc.weight_scale' already exists: quantizing 'fc.weight' would overwrite it");
    const nan = stateDict();
    (nan.tensors['fc.weight'].data as Float32Array)[9] = NaN;
    throwsMsg(() => quantizeWeights(nan, {}, 'n.safetensors'), WeightFileError, "n.safetensors: tensors['fc.weight']: element 9 is NaN: only finite weights can be quantized");
  });
});

describe('parseQuantizedWeights checks every field', () => {
  const META = `__metadata__['quantkit.weights']`;
  const ENTRY = `${META}.tensors['fc.weight']`;
  type Mutation = (meta: Record<string, any>, t: Record<string, SafetensorsTensor>, md: Record<string, string>) => void;
  const cases: [string, QuantizeWeightsOptions, Mutation, string][] = [
    ['no metadata key', {}, (_m, _t, md) => { delete md[WEIGHTS_KEY]; }, `${META}: missing: not a quantized weights file (a plain state dict: use loadSafetensors)`],
    ['a graph too', {}, (_m, _t, md) => { md['quantkit.graph'] = '{}'; }, `__metadata__['quantkit.graph']: unexpected in a quantized weights file (it has 'quantkit.weights')`],
    ['not an object', {}, (_m, _t, md) => { md[WEIGHTS_KEY] = '[1]'; }, `${META}: expected an object but found [1]`],
    ['not JSON', {}, (_m, _t, md) => { md[WEIGHTS_KEY] = '{"version": 1,'; }, `${META}: not valid JSON`],
    ['too deep', {}, (_m, _t, md) => { md[WEIGHTS_KEY] = '['.repeat(200) + ']'.repeat(200); }, `${META}[0][0][0][0][0][0][0][0]...: nested more than 128 levels deep`],
    ['unknown top field', {}, (m) => { m.extra = 1; }, `${META}.extra: unknown field (expected only 'version', 'mode' and 'tensors')`],
    ['version', {}, (m) => { m.version = 2; }, `${META}.version: expected 1 but found 2`],
    ['mode', {}, (m) => { m.mode = 'static'; }, `${META}.mode: expected 'dynamic' or 'weight-only' but found 'static'`],
    ['tensors not an object', {}, (m) => { m.tensors = []; }, `${META}.tensors: expected an object but found []`],
    ['no tensors', {}, (m) => { m.tensors = {}; }, `${META}.tensors: empty: a quantized weights file has at least one quantized weight`],
    ['entry name', {}, (m) => { m.tensors['fc.bias'] = m.tensors['fc.weight']; }, `${META}.tensors['fc.bias']: expected a weight named '*.weight' (only those are quantized)`],
    ['entry not an object', {}, (m) => { m.tensors['fc.weight'] = 8; }, `${ENTRY}: expected an object but found 8`],
    ['unknown entry field', {}, (m) => { m.tensors['fc.weight'].range = 'full'; }, `${ENTRY}.range: unknown field (expected only 'shape', 'bits', 'scheme', 'signed', 'granularity', 'packed')`],
    ['missing entry field', {}, (m) => { delete m.tensors['fc.weight'].packed; }, `${ENTRY}.packed: missing`],
    ['shape rank', {}, (m) => { m.tensors['fc.weight'].shape = [35]; }, `${ENTRY}.shape: expected [out, in] but found [35]`],
    ['shape value', {}, (m) => { m.tensors['fc.weight'].shape = [5, 0]; }, `${ENTRY}.shape[1]: expected a positive integer but found 0`],
    ['shape too large', {}, (m) => { m.tensors['fc.weight'].shape = [2 ** 30, 2 ** 30]; }, `${ENTRY}.shape: [1073741824, 1073741824] is too large`],
    ['shape vs tensor', {}, (m) => { m.tensors['fc.weight'].shape = [7, 5]; }, "tensors['fc.weight'].shape: expected [7, 5] but found [5, 7]"],
    ['bits', {}, (m) => { m.tensors['fc.weight'].bits = 16; }, `${ENTRY}.bits: expected an integer 2..8 but found 16`],
    ['bits vs dtype', {}, (m) => { m.tensors['fc.weight'].bits = 4; m.tensors['fc.weight'].packed = true; }, "tensors['fc.weight'].dtype: expected 'U8' but found 'I8'"],
    ['scheme', {}, (m) => { m.tensors['fc.weight'].scheme = 'affine'; }, `${ENTRY}.scheme: expected 'symmetric' or 'asymmetric' but found 'affine'`],
    ['signed', {}, (m) => { m.tensors['fc.weight'].signed = false; }, `${ENTRY}.signed: expected true (symmetric codes) but found false`],
    ['granularity', {}, (m) => { m.tensors['fc.weight'].granularity = 'per-row'; }, `${ENTRY}.granularity: expected 'per-tensor', 'per-channel' or { groupSize: 1..2^31 } but found 'per-row'`],
    ['group size', { mode: 'weight-only' }, (m) => { m.tensors['fc.weight'].granularity = { groupSize: 0 }; }, `${ENTRY}.granularity: expected 'per-tensor', 'per-channel' or { groupSize: 1..2^31 } but found {"groupSize":0}`],
    ['groups in a dynamic file', { mode: 'weight-only' }, (m) => { m.mode = 'dynamic'; }, `${ENTRY}.granularity: groups are only written for mode 'weight-only', found {"groupSize":32} in a 'dynamic' file`],
    ['granularity vs scale shape', {}, (m) => { m.tensors['fc.weight'].granularity = 'per-tensor'; }, "tensors['fc.weight_scale'].shape: expected [1] but found [5]"],
    ['packed', {}, (m) => { m.tensors['fc.weight'].packed = true; }, `${ENTRY}.packed: expected false (8 bits) but found true`],
    ['missing codes', {}, (_m, t) => { delete t['fc.weight']; }, "tensors['fc.weight']: missing"],
    ['missing scale', {}, (_m, t) => { delete t['fc.weight_scale']; }, "tensors['fc.weight_scale']: missing"],
    ['missing zero point', { scheme: 'asymmetric' }, (_m, t) => { delete t['fc.weight_zero_point']; }, "tensors['fc.weight_zero_point']: missing"],
    ['scale dtype', {}, (_m, t) => { t['fc.weight_scale'] = { dtype: 'I32', shape: [5], data: new Int32Array(5) }; }, "tensors['fc.weight_scale'].dtype: expected 'F32' but found 'I32'"],
    ['zero scale', {}, (_m, t) => { (t['fc.weight_scale'].data as Float32Array)[2] = 0; }, "tensors['fc.weight_scale'][2]: expected a positive finite scale but found 0"],
    ['infinite scale', {}, (_m, t) => { (t['fc.weight_scale'].data as Float32Array)[0] = Infinity; }, "tensors['fc.weight_scale'][0]: expected a positive finite scale but found Infinity"],
    ['zero point out of range', { mode: 'weight-only', bits: 4, scheme: 'asymmetric' }, (_m, t) => { (t['fc.weight_zero_point'].data as Uint8Array)[1] = 16; }, "tensors['fc.weight_zero_point'][1]: expected 0..15 but found 16"],
    ['int8 code -128 (restricted range)', {}, (_m, t) => { (t['fc.weight'].data as Int8Array)[11] = -128; }, "tensors['fc.weight']: code -128 at element 11 is outside -127..127"],
    ['int4 code -8, low nibble', { mode: 'weight-only', bits: 4 }, (_m, t) => { const d = t['fc.weight'].data as Uint8Array; d[3] = (d[3] & 0xf0) | 8; }, "tensors['fc.weight']: code -8 at element 6 is outside -7..7"],
    ['int4 code -8, high nibble', { mode: 'weight-only', bits: 4 }, (_m, t) => { const d = t['fc.weight'].data as Uint8Array; d[3] = (d[3] & 0x0f) | 0x80; }, "tensors['fc.weight']: code -8 at element 7 is outside -7..7"],
    ['3-bit code 4', { mode: 'weight-only', bits: 3 }, (_m, t) => { const d = t['fc.weight'].data as Uint8Array; d[17] = 4; }, "tensors['fc.weight']: code 4 at element 34 is outside -3..3"],
    ['padding nibble', { mode: 'weight-only', bits: 4 }, (_m, t) => { const d = t['fc.weight'].data as Uint8Array; d[17] |= 0x10; }, "tensors['fc.weight']: the unused high nibble of the last byte (35 codes) is 1, expected 0"],
  ];
  for (const [label, opts, mutate, msg] of cases) {
    it(label, () => {
      const f = roundTrip(opts);
      const meta = JSON.parse(f.metadata[WEIGHTS_KEY]);
      const md = { ...f.metadata };
      mutate(meta, f.tensors, md);
      if (md[WEIGHTS_KEY] === f.metadata[WEIGHTS_KEY]) md[WEIGHTS_KEY] = JSON.stringify(meta);
      let err: unknown;
      try {
        parseQuantizedWeights({ tensors: f.tensors, metadata: md }, 'w.safetensors');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WeightFileError);
      expect((err as WeightFileError).file).toBe('w.safetensors');
      // 'not valid JSON' and 'nested ...' end with the parser's details.
      const m = (err as Error).message;
      expect(m.startsWith(`w.safetensors: ${msg}`) ? `w.safetensors: ${msg}` : m).toBe(`w.safetensors: ${msg}`);
    });
  }

  it('a model file is named as one; loadQuantizedWeights names a missing file', () => {
    const file = path.join(tmp, 'model.safetensors');
    saveModel(file, new nn.Sequential(new nn.Linear(2, 2)));
    expect(() => loadQuantizedWeights(file)).toThrow(`${file}: ${META}: missing: not a quantized weights file (a quantkit model file: use loadModel)`);
    expect(() => loadQuantizedWeights(path.join(tmp, 'none.safetensors'))).toThrow(WeightFileError);
    expect(loadSafetensors(file).metadata['quantkit.graph']).toBeDefined();
  });
});
