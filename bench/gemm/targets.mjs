// The GEMM bench's targets, as data: what is compared, and the ratio it must reach. bench/README.md
// states the same table. evaluateTargets() turns a run's results into PASS / MISS / n/a rows.
/** The targets: their thresholds (x ORT, x 1 thread, or a fraction of a peak loop) and what they cover. */
export const TARGETS = {
  ortLarge: { threshold: 1.5, unit: 'x', what: 'int8 gemm vs ORT MatMulInteger u8s8, on the three largest shapes (by ops), at each thread count' },
  ortAny: { threshold: 1.0, unit: 'x', what: 'int8 gemm vs ORT u8s8, every shape, at each thread count (the lowest ratio is shown)' },
  scale2: { threshold: 1.8, unit: 'x', what: 'int8 gemm at 2 threads vs 1 thread, on the three largest shapes' },
  vnniPeak: { threshold: 0.7, unit: '%', what: 'int8 gemm with the avx512vnni path forced, 1024x1024x1024, 1 thread, vs the measured vpdpbusd zmm peak' },
  f32Ort: { threshold: 1.0, unit: 'x', what: 'fp32 matmulF32 (packed) vs ORT MatMul, every shape, at each thread count (the lowest ratio is shown)' },
};
/** How many of the largest shapes ortLarge and scale2 cover. */
export const LARGEST = 3;
/** The shape and path of vnniPeak. */
export const VNNI_PEAK_AT = { path: 'avx512vnni', shape: '1024x1024x1024' };

/** { ortLarge: 1.5, ... }: the thresholds alone (the JSON's targetsSpec). */
export const thresholds = () => Object.fromEntries(Object.entries(TARGETS).map(([k, t]) => [k, t.threshold]));

/** The lowest of the per-shape ratios; pass is null when some shape has none and none fails. */
function lowest(all, threshold) {
  const known = all.filter(([, v]) => v !== null);
  const worst = known.reduce((a, b) => (b[1] < a[1] ? b : a), known[0] ?? [null, null]);
  const pass = known.length < all.length ? (known.some(([, v]) => v < threshold) ? false : null) : worst[1] >= threshold;
  return { value: worst[1], pass, note: worst[0] ? `at ${worst[0]}` : undefined };
}

/**
 * The targets of one run. `results`: per shape { name, threads: { [t]: { gops, ratio, peak } } };
 * `isaRuns`: the forced-path rows; `why`: what explains a missing vnniPeak measurement.
 */
export function evaluateTargets({ results, isaRuns, threads, large, loadavgStart, logicalCpus, why }) {
  const T = thresholds();
  const targets = [];
  const add = (name, value, threshold, pass, unit = 'x', note) => targets.push({ name, value, threshold, pass, unit, note });
  const at = (name, t) => results.find((r) => r.name === name)?.threads[t];
  for (const t of threads) {
    for (const n of large) {
      const x = at(n, t);
      const v = x?.ratio.qkVsOrtU8 ?? null;
      // Is the target reachable on this CPU? 1.5x ORT needs 1.5 * ORT's GOPS; above the best int8
      // peak loop measured here (at this thread count) no kernel can get there.
      const need = x?.gops.ortU8 ? T.ortLarge * x.gops.ortU8 : null;
      const best = x?.peak.bestInt8Gops ?? null;
      const note = need && best && need > best
        ? `needs ${need.toFixed(0)} GOPS > this CPU's ${x.peak.bestInt8Kernel} peak ${best.toFixed(0)}: unreachable here` : undefined;
      add(`int8 ${n}, ${t}T: quantkit >= ${T.ortLarge}x ORT MatMulInteger u8s8`, v, T.ortLarge, v === null ? null : v >= T.ortLarge, 'x', note);
    }
    const w = lowest(results.map((r) => [r.name, r.threads[t]?.ratio.qkVsOrtU8 ?? null]), T.ortAny);
    add(`int8 every shape, ${t}T: quantkit >= ${T.ortAny}x ORT u8s8 (lowest shown)`, w.value, T.ortAny, w.pass, 'x', w.note);
  }
  if (threads.includes(1) && threads.includes(2)) {
    for (const n of large) {
      const a = at(n, 1)?.gops.qk;
      const b = at(n, 2)?.gops.qk;
      const v = a && b ? b / a : null;
      // Before this process started, other processes' load of >= 1 CPU leaves 2 threads no second CPU.
      const busy = loadavgStart[0] >= Math.max(1, logicalCpus / 2)
        ? `load average ${loadavgStart[0].toFixed(1)} on ${logicalCpus} CPUs before the run: other processes held CPUs` : undefined;
      add(`int8 ${n}: quantkit 2 threads >= ${T.scale2}x 1 thread`, v, T.scale2, v === null ? null : v >= T.scale2, 'x', busy);
    }
  }
  {
    const row = isaRuns.find((r) => r.path === VNNI_PEAK_AT.path && r.name === VNNI_PEAK_AT.shape);
    let pass = null;
    let note;
    if (row?.pctPeak !== undefined && row?.pctPeak !== null) pass = row.pctPeak >= T.vnniPeak;
    else if (why.notMeasured) note = why.notMeasured;
    else if (!why.cpuHasVnni) note = 'CPU has no AVX512-VNNI';
    else if (!why.pathSupported) {
      pass = false;
      note = 'quantkit offers no avx512vnni path, though the CPU has AVX512-VNNI';
    } else if (row?.error) {
      pass = false;
      note = `gemm threw: ${row.error}`;
    } else if (row?.check?.mismatches) {
      pass = false;
      note = 'wrong results (see problems)';
    } else note = `not measured (${VNNI_PEAK_AT.shape} not among --isa-shapes?)`;
    add(`int8 ${VNNI_PEAK_AT.shape}, ${VNNI_PEAK_AT.path} path forced, 1T: >= ${T.vnniPeak * 100}% of measured vpdpbusd zmm peak`, row?.pctPeak ?? null, T.vnniPeak, pass, '%', note);
  }
  for (const t of threads) {
    const w = lowest(results.map((r) => [r.name, r.threads[t]?.ratio.f32VsOrt ?? null]), T.f32Ort);
    add(`fp32 every shape, ${t}T: quantkit >= ${T.f32Ort}x ORT MatMul (lowest shown)`, w.value, T.f32Ort, w.pass, 'x', w.note);
  }
  return targets;
}
