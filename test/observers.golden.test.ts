// Golden tests of the calibration observers against PyTorch 1.13's torch.ao.quantization
// observers and torch.histc (test/golden/observers.json, scripts/golden/gen_observers.py).
//   MinMax / MovingAverage / PerChannel variants: scale within 1e-6 relative (in fact bit-exact,
//   checked too), zero point exact, min / max exact.
//   HistogramObserver: scale within 0.5 % (in fact bit-exact on every case), histogram range exact,
//   histogram within 1e-5 (L1, relative; exact after one batch). Two sets: torch 1.13 itself on
//   data whose ranges stay integer-valued (where its int() truncation of the histc range is a
//   no-op), and torch 1.13's class with only that truncation removed on general data.
//   torch.histc: the native histogram's counts equal torch's exactly.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as O from '../lib/observers/index';
import { native as nativeObserve } from '../lib/binding'; // the raw addon: these tests pin its own checks
import { setIsa, cpuInfo } from '../lib/index';

 
type Json = any;
const doc: Json = JSON.parse(readFileSync(join(__dirname, 'golden', 'observers.json'), 'utf8'));

function decF(v: number | string): number {
  if (typeof v === 'number') return v;
  return v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v === '-0' ? -0 : Number.NaN;
}
/** Floats are written as the shortest decimal that reads back as the float32 (generator-checked). */
function f32(a: (number | string)[]): Float32Array {
  return Float32Array.from(a.map(decF));
}

function make(name: string, spec: Json, options: Json): O.Observer {
  const C = (O as Json)[name];
  if (typeof C !== 'function') throw new Error(`no observer ${name}`);
  return new C({ ...spec, ...options });
}

function feed(obs: O.Observer, seqName: string): void {
  for (const b of doc.sequences[seqName]) obs.observe(f32(b.x), b.shape);
}

const report: Record<string, number> = {};

describe('golden: min/max observers vs torch.ao.quantization', () => {
  it('has cases of every class', () => {
    for (const n of ['MinMaxObserver', 'MovingAverageMinMaxObserver', 'PerChannelMinMaxObserver', 'MovingAveragePerChannelMinMaxObserver']) {
      expect(doc.minmax.filter((c: Json) => c.observer === n).length).toBeGreaterThanOrEqual(15);
    }
  });
  let maxRel = 0;
  let exact = 0;
  for (const c of doc.minmax) {
    it(c.name, () => {
      const obs = make(c.observer, c.spec, c.options);
      feed(obs, c.batches);
      const q = obs.calculateQParams();
      const es = f32(c.expectedScale);
      expect(q.scale.length).toBe(es.length);
      for (let i = 0; i < es.length; i++) {
        const rel = Math.abs(q.scale[i] - es[i]) / es[i];
        maxRel = Math.max(maxRel, rel);
        expect(rel, `scale[${i}]: got ${q.scale[i]} torch ${es[i]}`).toBeLessThanOrEqual(1e-6);
        if (q.scale[i] === es[i]) exact++;
      }
      expect(Array.from(q.zeroPoint)).toEqual(c.expectedZeroPoint);
      expect(Array.from(q.min)).toEqual(Array.from(f32(c.expectedMin)));
      expect(Array.from(q.max)).toEqual(Array.from(f32(c.expectedMax)));
    });
  }
  it('scales are bit-exact (summary)', () => {
    report.minmaxMaxRelScaleError = maxRel;
    report.minmaxExactScales = exact;
    expect(maxRel).toBe(0);
  });
});

describe('golden: HistogramObserver vs torch 1.13 (scale within 0.5 %)', () => {
  it('has cases', () => {
    expect(doc.histogram.length).toBeGreaterThanOrEqual(20);
  });
  let maxRel = 0;
  for (const c of doc.histogram) {
    it(c.name, () => {
      const obs = make('HistogramObserver', c.spec, c.options);
      feed(obs, c.batches);
      const st = obs.toJSON().state as Json;
      // the histogram range is PyTorch's exactly (same float32 re-binning arithmetic)
      expect(decF(st.lo[0])).toBe(Math.fround(decF(c.expectedHistMin)));
      expect(decF(st.hi[0])).toBe(Math.fround(decF(c.expectedHistMax)));
      // the histogram: first-batch counts are exact (torch.histc's formula); re-binned ones differ
      // only by torch's float32 accumulation
      const h: number[] = st.hist;
      const e: number[] = c.expectedHistogram;
      let total = 0;
      let diff = 0;
      for (let i = 0; i < e.length; i++) {
        total += e[i];
        diff += Math.abs(h[i] - e[i]);
      }
      expect(diff / total).toBeLessThan(1e-5);
      if (doc.sequences[c.batches].length === 1) expect(h).toEqual(e);
      const q = obs.calculateQParams();
      const es = f32(c.expectedScale)[0];
      const rel = Math.abs(q.scale[0] - es) / es;
      maxRel = Math.max(maxRel, rel);
      expect(rel, `scale ${q.scale[0]} torch ${es}; range ${q.min[0]}..${q.max[0]} torch ${c.expectedSearchMin}..${c.expectedSearchMax}`).toBeLessThanOrEqual(0.005);
      if (rel === 0) expect(q.zeroPoint[0]).toBe(c.expectedZeroPoint[0]);
      else expect(Math.abs(q.zeroPoint[0] - c.expectedZeroPoint[0])).toBeLessThanOrEqual(2);
    });
  }
  it('summary', () => {
    report.histogramMaxRelScaleError = maxRel;
     
    console.log(`observers golden: ${JSON.stringify(report)}`);
  });
});

describe('golden: native histogram vs torch.histc (exact counts on every path)', () => {
  const paths = cpuInfo().supportedPaths;
  for (const c of doc.histc) {
    it(c.name, () => {
      const x = f32(c.x);
      try {
        for (const p of paths) {
          setIsa(p);
          const counts = new Float64Array(c.bins);
          nativeObserve.histogram(x, counts, Float32Array.of(decF(c.lo)), Float32Array.of(decF(c.hi)), c.bins, 0, 1, 1, x.length, 0);
          expect(Array.from(counts), `path ${p}`).toEqual(c.expected);
        }
      } finally {
        setIsa('auto');
      }
    });
  }
});
