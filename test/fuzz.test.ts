// Property-based fuzzing (fast-check) of every file reader and of the public API's argument space
// (#14). The property is the same everywhere: a call returns, or throws one of quantkit's errors
// (TypeError, RangeError, WeightFileError); never another error, never a crash (a native crash
// kills this test's process and fails the run), never a hang (the test timeout). Seeds are fixed,
// so CI runs are reproducible; QK_FUZZ_RUNS scales the number of runs for longer local sessions
// (QK_FUZZ_RUNS=20000 npx vitest run test/fuzz.test.ts). The corpus of interesting inputs in
// test/fuzz/corpus/ is replayed first (files named ok-* must load, every other one must be refused); a failing input found by fast-check is printed (its seed
// and path reproduce it) and belongs in the corpus once fixed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import * as q from '../lib/index';
import { Observer } from '../lib/observers/base';

const RUNS = Number(process.env.QK_FUZZ_RUNS ?? 1000);
const USER_GETTER = 'an options getter of the caller threw';
const CORPUS = path.join(__dirname, 'fuzz', 'corpus');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-fuzz-'));
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); if (process.env.QK_FUZZ_LOG) fs.writeFileSync(process.env.QK_FUZZ_LOG, [...seen.values()].join('\n')); });

// Messages of errors V8 throws by itself: a TypeError or RangeError with one of these is a bug
// (an unchecked input reached JavaScript's own machinery), not a refusal.
const ENGINE = /Maximum call stack|Invalid array length|Invalid typed array length|Array buffer allocation failed|Cannot read propert|Cannot set propert|is not a function|is not iterable|incompatible receiver|Cannot convert|out of memory|offset is out of bounds|Start offset|Invalid DataView/;

/** Calls fn; an allowed error is a normal outcome, anything else is returned for the assertion. */
export const seen = new Map<string, string>();
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (process.env.QK_FUZZ_LOG) { const m = String((e as Error)?.message); seen.set(m.replace(/[0-9]+/g, 'N').slice(0, 60), m); }
    if (ENGINE.test(String((e as Error)?.message))) return `unexpected engine error ${(e as Error)?.name}: ${(e as Error)?.message}`;
    if (e instanceof TypeError || e instanceof RangeError || e instanceof q.WeightFileError || e instanceof q.OnnxFileError) return 'refused';
    if ((e as Error)?.message === USER_GETTER) return 'refused'; // the caller's own getter threw: reading options may run it
    return `unexpected ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
}

async function outcomeAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    if (ENGINE.test(String((e as Error)?.message))) return `unexpected engine error ${(e as Error)?.name}: ${(e as Error)?.message}`;
    if (e instanceof TypeError || e instanceof RangeError || e instanceof q.WeightFileError || e instanceof q.OnnxFileError) return 'refused';
    if ((e as Error)?.message === USER_GETTER) return 'refused';
    return `unexpected ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
}

function corpus(kind: string): [string, Uint8Array][] {
  const dir = path.join(CORPUS, kind);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).sort().map((f) => [f, new Uint8Array(fs.readFileSync(path.join(dir, f)))]);
}

/** Mutations of a valid file: bit flips, byte overwrites, truncation, insertions, spliced numbers. */
function mutated(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  const flip = fc.record({ at: fc.nat(base.length - 1), bit: fc.nat(7) }).map(({ at, bit }) => {
    const b = base.slice();
    b[at] ^= 1 << bit;
    return b;
  });
  const overwrite = fc.record({ at: fc.nat(base.length - 1), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }).map(({ at, bytes }) => {
    const b = base.slice();
    b.set(bytes.subarray(0, Math.min(bytes.length, b.length - at)), at);
    return b;
  });
  const truncate = fc.nat(base.length).map((n) => base.slice(0, n));
  const insert = fc.record({ at: fc.nat(base.length), bytes: fc.uint8Array({ maxLength: 16 }) }).map(({ at, bytes }) => {
    const b = new Uint8Array(base.length + bytes.length);
    b.set(base.subarray(0, at));
    b.set(bytes, at);
    b.set(base.subarray(at), at + bytes.length);
    return b;
  });
  // Replace one number in the JSON header by an extreme one (sizes, offsets, shapes).
  const text = Buffer.from(base).toString('latin1');
  const numbers = [...text.matchAll(/\d+/g)].map((m) => [m.index!, m[0].length] as const);
  const extreme = fc.constantFrom('0', '1', '4294967295', '4294967296', '9007199254740993', '1e308', '-1', '2147483648', '99999999999999999999');
  const number = numbers.length === 0 ? truncate : fc.record({ i: fc.nat(numbers.length - 1), v: extreme }).map(({ i, v }) => {
    const [at, len] = numbers[i];
    return new Uint8Array(Buffer.from(text.slice(0, at) + v + text.slice(at + len), 'latin1'));
  });
  return fc.oneof(flip, overwrite, truncate, insert, number);
}

const seed = (n: number) => ({ seed: 0x5eed + n, numRuns: RUNS });

describe('file readers never crash on corrupt files', () => {
  const tensors = {
    w: { dtype: 'F32' as const, shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 7) },
    b: { dtype: 'I8' as const, shape: [5], data: Int8Array.of(-3, 0, 1, 2, 127) },
    e: { dtype: 'F32' as const, shape: [0], data: new Float32Array(0) },
  };
  const st = q.serializeSafetensors(tensors, { note: 'fuzz', n: '12' });

  it('parseSafetensors: corpus, then mutations of a valid file', () => {
    for (const [name, bytes] of corpus('safetensors')) {
      expect(outcome(() => q.parseSafetensors(bytes, name)), name).toBe(name.startsWith('ok-') ? 'ok' : 'refused');
    }
    fc.assert(fc.property(mutated(st), (bytes) => !outcome(() => q.parseSafetensors(bytes)).startsWith('unexpected')), seed(1));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => !outcome(() => q.parseSafetensors(bytes)).startsWith('unexpected')), seed(2));
  });

  it('loadModel: model files of every mode, mutated', () => {
    const model = new q.nn.Sequential(new q.nn.Linear(8, 6, { rng: 1 }), new q.nn.ReLU(), new q.nn.Linear(6, 3, { rng: 2 }));
    const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
    const files: Uint8Array[] = [];
    const models = [model, q.quantizeModel(model, { mode: 'dynamic' }), q.quantizeModel(model, { mode: 'weight-only', bits: 4, granularity: { groupSize: 4 } }),
      q.quantizeModel(model, { mode: 'static', calibrationData: x, observer: 'minmax' })];
    models.forEach((m, i) => {
      const f = path.join(tmp, `m${i}.safetensors`);
      q.saveModel(f, m);
      files.push(new Uint8Array(fs.readFileSync(f)));
    });
    const target = path.join(tmp, 'fuzzed.safetensors');
    const load = (bytes: Uint8Array) => {
      fs.writeFileSync(target, bytes);
      return outcome(() => {
        const m = q.loadModel(target);
        // a model that loads must also run (or refuse its input cleanly)
        (m as { forward(x: Float32Array, b: number): Float32Array }).forward(new Float32Array(8), 1);
      });
    };
    for (const [name, bytes] of corpus('model')) expect(load(bytes), name).toBe('refused');
    for (const [i, base] of files.entries()) {
      fc.assert(fc.property(mutated(base), (bytes) => !load(bytes).startsWith('unexpected')), { ...seed(10 + i), numRuns: Math.ceil(RUNS / 2) });
    }
  });

  it('loadTfjsWeightsSync: manifests and shards, mutated', () => {
    const dir = path.join(tmp, 'tfjs');
    fs.mkdirSync(dir, { recursive: true });
    const w = Float32Array.from({ length: 6 }, (_, i) => i - 2.5);
    fs.writeFileSync(path.join(dir, 'group1-shard1of1.bin'), Buffer.from(w.buffer));
    const manifest = {
      format: 'graph-model',
      weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [{ name: 'dense/kernel', shape: [2, 3], dtype: 'float32' }] }],
    };
    const base = new Uint8Array(Buffer.from(JSON.stringify(manifest)));
    const file = path.join(dir, 'model.json');
    const load = (bytes: Uint8Array) => {
      fs.writeFileSync(file, bytes);
      return outcome(() => q.loadTfjsWeightsSync(file));
    };
    expect(load(base)).toBe('ok');
    for (const [name, bytes] of corpus('tfjs')) expect(load(bytes), name).toBe('refused');
    fc.assert(fc.property(mutated(base), (bytes) => !load(bytes).startsWith('unexpected')), seed(20));
    // Structured: any JSON value in any field of the manifest.
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom('weightsManifest', 'paths', 'weights', 'name', 'shape', 'dtype', 'quantization'), (v, key) => {
      const m = JSON.parse(JSON.stringify(manifest));
      if (key === 'weightsManifest') m.weightsManifest = v;
      else if (key === 'paths') m.weightsManifest[0].paths = v;
      else if (key === 'weights') m.weightsManifest[0].weights = v;
      else m.weightsManifest[0].weights[0][key] = v;
      return !load(new Uint8Array(Buffer.from(JSON.stringify(m)))).startsWith('unexpected');
    }), seed(21));
  });

  it('ONNX: inspectOnnx and quantizeOnnx on mutated models (exported float, dynamic and static)', { timeout: 600_000 }, async () => {
    const model = new q.nn.Sequential(new q.nn.Linear(8, 6, { rng: 3 }), new q.nn.ReLU(), new q.nn.Linear(6, 3, { rng: 4 }));
    const x = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i));
    const bases = [q.exportOnnxBytes(model), q.exportOnnxBytes(q.quantizeModel(model, { mode: 'dynamic' })),
      q.exportOnnxBytes(q.quantizeModel(model, { mode: 'static', calibrationData: x, observer: 'minmax' }))];
    for (const base of bases) expect(await outcomeAsync(() => q.inspectOnnx(base))).toBe('ok');
    for (const [i, base] of bases.entries()) {
      await fc.assert(fc.asyncProperty(mutated(base), async (bytes) => !(await outcomeAsync(() => q.inspectOnnx(bytes))).startsWith('unexpected')),
        { ...seed(30 + i), numRuns: Math.ceil(RUNS / 4) });
    }
    // quantizeOnnx does more (graph rewriting, weight quantization): fewer, asynchronous runs
    await fc.assert(fc.asyncProperty(mutated(bases[0]), fc.constantFrom('dynamic', 'weight-only'), async (bytes, mode) =>
      !(await outcomeAsync(() => q.quantizeOnnx(bytes, { mode } as never))).startsWith('unexpected')), { ...seed(40), numRuns: Math.ceil(RUNS / 10) });
  });

  it('Observer.fromJSON: states of every observer, with any field replaced', () => {
    const x = Float32Array.from({ length: 96 }, (_, i) => Math.cos(i) * (i % 7));
    const observers: Observer[] = [
      new q.MinMaxObserver(), new q.MovingAverageMinMaxObserver(), new q.PerChannelMinMaxObserver({ granularity: { axis: 1 } }),
      new q.HistogramObserver(), new q.PercentileObserver(), new q.MSEObserver(), new q.EntropyObserver({ scheme: 'symmetric' }),
      new q.SoftmaxCrossEntropyObserver(),
    ];
    const states = observers.map((o) => {
      o.observe(x, [8, 12]);
      return JSON.parse(JSON.stringify(o.toJSON())) as Record<string, unknown>;
    });
    for (const [name, bytes] of corpus('observer')) {
      expect(outcome(() => Observer.fromJSON(JSON.parse(Buffer.from(bytes).toString('utf8')))), name).toBe('refused');
    }
    const paths = (v: unknown, p: (string | number)[] = []): (string | number)[][] => {
      if (typeof v !== 'object' || v === null) return [p];
      const keys = Array.isArray(v) ? v.map((_, i) => i).slice(0, 4) : Object.keys(v);
      return [p, ...keys.flatMap((k) => paths((v as Record<string | number, unknown>)[k], [...p, k]))];
    };
    const replacement = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(2 ** 31, 2 ** 53, -1, 1e308, [2 ** 31], [0], [], null, 'x', NaN));
    for (const [i, st] of states.entries()) {
      const all = paths(st).filter((p) => p.length > 0);
      fc.assert(fc.property(fc.nat(all.length - 1), replacement, (k, v) => {
        const s = JSON.parse(JSON.stringify(st));
        let o = s;
        const p = all[k];
        for (const key of p.slice(0, -1)) o = o[key];
        o[p[p.length - 1]] = v;
        return !outcome(() => {
          const ob = Observer.fromJSON(s);
          ob.calculateQParams();
        }).startsWith('unexpected');
      }), { ...seed(30 + i), numRuns: Math.ceil(RUNS / 2) });
    }
  });
});

// ---- the public API's argument space ----------------------------------------------------------

const typedCtors = [Float32Array, Float64Array, Int8Array, Uint8Array, Int16Array, Uint16Array, Int32Array, Uint32Array] as const;

/** Values a hostile or careless caller passes: wrong types, odd arrays, views, detached buffers, proxies. */
function anyArg(): fc.Arbitrary<unknown> {
  const typed = fc.record({ c: fc.nat(typedCtors.length - 1), n: fc.nat(40), off: fc.nat(3), fill: fc.double({ noNaN: false }) })
    .map(({ c, n, off, fill }) => {
      const C = typedCtors[c];
      const buf = new ArrayBuffer((n + off) * C.BYTES_PER_ELEMENT);
      return new C(buf, off * C.BYTES_PER_ELEMENT, n).fill(fill as never);
    });
  const odd = fc.constantFrom<() => unknown>(
    () => { const a = new Float32Array(16); structuredClone(a.buffer, { transfer: [a.buffer] }); return a; },
    () => new Proxy(new Float32Array(8), {}),
    () => { const a = new Float32Array(8); Object.defineProperty(a, 'length', { value: 1e9 }); return a; },
    () => { const a = new Int8Array(8); (a as unknown as { slice: () => unknown }).slice = () => { throw new Error('slice called'); }; return a; },
    () => new Float32Array(new SharedArrayBuffer(32)),
    () => new Float32Array(new ArrayBuffer(32, { maxByteLength: 64 } as never)), // resizable, length-tracking view
    () => { const b = new ArrayBuffer(64, { maxByteLength: 64 } as never); const a = new Float32Array(b, 16, 8); (b as unknown as { resize(n: number): void }).resize(16); return a; }, // out of bounds after a shrink
    () => Buffer.alloc(12, 1),
    () => new DataView(new ArrayBuffer(8)),
    () => ({ length: 4, 0: 1, 1: 2 }),
    () => [1, 2, 3],
    () => ({ get K() { throw new Error(USER_GETTER); } }),
  ).map((f) => f());
  return fc.oneof(typed, odd, fc.constantFrom(undefined, null, 0, -1, 1.5, NaN, Infinity, 2 ** 53, 'x', true, {}, 1e9));
}

/** Options objects with known keys set to anything. */
function anyOpts(keys: string[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.dictionary(fc.constantFrom(...keys), fc.oneof(anyArg(), fc.nat(64), fc.constantFrom('int8', 'uint8', 'int32', 'float32', 'per-tensor', 'symmetric', 'asymmetric'))),
    anyArg(),
  );
}

describe('the public API never crashes on any arguments', () => {
  const packed = q.packWeights(new Int8Array(32).fill(1), { K: 4, N: 8 });
  const packedF = q.packWeightsF32(new Float32Array(32).fill(1), { K: 4, N: 8 });
  const calls: [string, (a: unknown, b: unknown, c: unknown) => unknown][] = [
    ['quantize', (a, b, c) => q.quantize(a as never, b as never, c as never)],
    ['fakeQuantize', (a, b, c) => q.fakeQuantize(a as never, [4] as never, b as never, c as never)],
    ['quantizeLinear', (a, b, c) => q.quantizeLinear(a as never, b as never, 0 as never, c as never)],
    ['dequantizeLinear', (a, b, c) => q.dequantizeLinear(a as never, b as never, c as never)],
    ['dynamicQuantizeLinear', (a, b) => q.dynamicQuantizeLinear(a as never, b as never)],
    ['minMax', (a, b, c) => q.minMax(a as never, b as never, c as never)],
    ['computeQParams', (a, b, c) => q.computeQParams(a as never, b as never, c as never)],
    ['matmulInteger', (a, b, c) => q.matmulInteger(a as never, b as never, c as never)],
    ['qlinearMatMul', (a, b, c) => q.qlinearMatMul(a as never, 0.1, 0, b as never, 0.1, 0, 0.5, 0, c as never)],
    ['packWeights', (a, b) => q.packWeights(a as never, b as never)],
    ['gemm', (a, b, c) => q.gemm(a as never, (b === undefined ? packed : b) as never, c as never)],
    ['gemm(packed)', (a, _b, c) => q.gemm(a as never, packed, c as never)],
    ['linearDynamic', (a, _b, c) => q.linearDynamic(a as never, packed, c as never)],
    ['packWeightsF32', (a, b) => q.packWeightsF32(a as never, b as never)],
    ['matmulF32', (a, b, c) => q.matmulF32(a as never, b as never, c as never)],
    ['matmulF32(packed)', (a, _b, c) => q.matmulF32(a as never, packedF, c as never)],
    ['nn.Linear.forward', (a, b) => new q.nn.Linear(4, 2, { rng: 1 }).forward(a as never, b as never)],
    ['nn.softmaxCrossEntropy', (a, b, c) => q.nn.softmaxCrossEntropy(a as never, b as never, c as never)],
    ['new HistogramObserver', (a) => new q.HistogramObserver(a as never)],
    ['PercentileObserver.observe', (a, b) => new q.PercentileObserver().observe(a as never, b as never)],
    ['new PerChannelMinMaxObserver', (a) => new q.PerChannelMinMaxObserver(a as never)],
  ];
  const optKeys = ['M', 'K', 'N', 'shape', 'axis', 'blockSize', 'dtype', 'out', 'bias', 'relu', 'output', 'aScale', 'aZeroPoint', 'outScale',
    'outZeroPoint', 'transposed', 'transB', 'zeroPoint', 'scale', 'bits', 'scheme', 'granularity', 'mask', 'bins', 'memoryLimit'];

  for (const [i, [name, call]] of calls.entries()) {
    it(name, () => {
      fc.assert(fc.property(anyArg(), fc.oneof(anyArg(), anyOpts(optKeys)), anyOpts(optKeys), (a, b, c) => {
        const r = outcome(() => call(a, b, c));
        if (r.startsWith('unexpected')) throw new Error(`${name}: ${r}`);
        return true;
      }), { ...seed(100 + i), numRuns: RUNS });
    });
  }

  it('async calls: gemmAsync, linearDynamicAsync, matmulF32Async', async () => {
    await fc.assert(fc.asyncProperty(anyArg(), anyOpts(optKeys), async (a, c) => {
      for (const call of [() => q.gemmAsync(a as never, packed, c as never), () => q.linearDynamicAsync(a as never, packed, c as never),
        () => q.matmulF32Async(a as never, packedF, c as never)]) {
        const r = await outcomeAsync(call);
        if (r.startsWith('unexpected')) throw new Error(r);
      }
      return true;
    }), { ...seed(200), numRuns: Math.ceil(RUNS / 2) });
  });
});
