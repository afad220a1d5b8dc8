// The GEMM bench's printed tables. Each takes `say` (console.log, or console.error with --json)
// and the run's results; the columns are those bench/README.md describes.
import { fmt, table } from '../common.mjs';
import { INTEL_REFERENCE } from './peak.mjs';

const pct = (v) => (v === null || v === undefined ? '-' : `${(v * 100).toFixed(0)}%`);
const g0 = (v) => (v === null || v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const x2 = (v) => (v === null || v === undefined ? '-' : `${v.toFixed(2)}x`);
const checkCell = (c) => {
  if (!c) return '-';
  if (c.error) return 'threw';
  if (c.bad !== undefined) return c.bad ? `${c.bad} off` : `ok (${c.maxRel.toExponential(0)})`;
  return c.mismatches ? `${c.mismatches} differ` : c.vsSample ? '=exact*' : '=ORT';
};

/** The peak loops measured here beside the Intel reference machine's. */
export function printPeak(say, peak, threads) {
  const ks = peak.kernels;
  const thr = [...new Set([1, ...threads])];
  say(`== machine peak (bench/peak.cc, built with \`${peak.cmd}\`; best of short in-register loops, all threads together) ==`);
  say(`clock estimate (dependent add chain): ${thr.map((t) => `${t} thread${t > 1 ? 's' : ''} ${fmt(ks.clock?.ghz?.[t])} GHz`).join(', ')}`);
  const rows = [];
  for (const k of Object.values(ks)) {
    if (k.kernel === 'clock') continue;
    const unit = k.kernel.startsWith('fma') ? 'GFLOPS' : 'GOPS';
    rows.push([
      `${k.instr} (${k.kernel})`, unit,
      ...thr.map((t) => (k.supported ? fmt(k.gops[t], 0) : 'n/a')),
      k.supported ? fmt(k.opsPerCycle[1], 1) : '',
      INTEL_REFERENCE[k.kernel] ? `${INTEL_REFERENCE[k.kernel][0]} / ${INTEL_REFERENCE[k.kernel][1]}` : '-',
      k.supported ? '' : k.why,
    ]);
  }
  say(table(['loop', 'unit', ...thr.map((t) => `${t} thr`), 'ops/cycle/core', 'Intel ref (1 / 2 thr)', 'note'], rows,
    ['l', 'l', ...thr.map(() => 'r'), 'r', 'r', 'l']));
  say('');
}

/** Per thread count: the int8 table and the fp32 table; then the thread scaling. */
export function printShapes(say, results, threads) {
  for (const t of threads) {
    const r0 = results[0]?.threads[t];
    say(`== int8 GEMM, ${t} thread${t > 1 ? 's' : ''}: GOPS; quantkit = packWeights once + gemm(output 'int32', out); ` +
      `%peak: quantkit vs the ${r0?.peak.int8Kernel ?? '?'} loop (path ${r0?.int8Path ?? '?'}), ORT vs the ${r0?.peak.bestInt8Kernel ?? '?'} loop ==`);
    const rows = results.map((r) => {
      const x = r.threads[t];
      return [
        r.name, g0(x.gops.qk), pct(x.pctPeak.qk), g0(x.gops.ortU8), pct(x.pctPeak.ortU8), x2(x.ratio.qkVsOrtU8),
        g0(x.gops.qkS8), g0(x.gops.ortS8), x2(x.ratio.qkS8VsOrtS8), g0(x.gops.qkUnpacked),
        t === threads[0] && r.info.packMs !== undefined ? `${fmt(r.info.packMs, 1)}` : '',
        [checkCell(x.check.gemm), checkCell(x.check.gemmS8), checkCell(x.check.matmulInteger)].join(' '),
      ];
    });
    say(table(['M x N x K', 'quantkit', '%peak', 'ORT u8s8', '%peak', 'qk/ORT', 'qk s8s8', 'ORT s8s8', 'qk/ORT s8', 'matmulInteger', 'pack ms', 'check u8s8 s8s8 unpacked'],
      rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l']));
    say('');
    say(`== fp32 GEMM, ${t} thread${t > 1 ? 's' : ''}: GFLOPS; quantkit = packWeightsF32 once + matmulF32(out); ` +
      `%peak vs the ${r0?.peak.fp32Kernel ?? 'fma_zmm'} loop (path ${r0?.fp32Path ?? '?'}) ==`);
    const frows = results.map((r) => {
      const x = r.threads[t];
      return [r.name, g0(x.gops.qkF32), pct(x.pctPeak.qkF32), g0(x.gops.ortF32), pct(x.pctPeak.ortF32), x2(x.ratio.f32VsOrt),
        g0(x.gops.qkF32Unpacked), `${checkCell(x.check.matmulF32)} ${checkCell(x.check.matmulF32Unpacked)}`];
    });
    say(table(['M x N x K', 'quantkit', '%peak', 'ORT MatMul', '%peak', 'qk/ORT', 'unpacked B', 'check packed unpacked'],
      frows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l']));
    say('');
  }
  if (threads.length > 1) {
    const [t1, t2] = [threads[0], threads[threads.length - 1]];
    say(`== thread scaling: GOPS at ${t2} threads / GOPS at ${t1} thread${t1 > 1 ? 's' : ''} ==`);
    const sc = (r, k) => {
      const a = r.threads[t1]?.gops[k];
      const b = r.threads[t2]?.gops[k];
      return a && b ? x2(b / a) : '-';
    };
    say(table(['M x N x K', 'quantkit int8', 'ORT u8s8', 'quantkit fp32', 'ORT fp32'],
      results.map((r) => [r.name, sc(r, 'qk'), sc(r, 'ortU8'), sc(r, 'qkF32'), sc(r, 'ortF32')]), ['l', 'r', 'r', 'r', 'r']));
    say('');
  }
}

/** The forced-path rows. */
export function printForced(say, isaRuns) {
  say('== int8 gemm with each path forced (setIsa; 1 thread), GOPS, % of that path\'s peak loop, and ORT MatMulInteger u8s8 (1 thread, same data) ==');
  say(table(['forced', 'selected', 'M x N x K', 'GOPS', 'peak loop', 'peak', '%peak', 'ORT u8s8', 'qk/ORT', 'check'], isaRuns.map((r) => [
    r.path, r.selected ?? '?', r.name, r.skipped ? 'skipped' : r.error ? 'threw' : g0(r.gops), r.peakKernel ?? '-', g0(r.peakGops), pct(r.pctPeak),
    g0(r.ortGops), x2(r.vsOrt), r.check ? checkCell(r.check) : r.skipped ?? '-',
  ])));
  say('');
}

/** The targets, PASS / MISS / n/a, with the load average at the end. */
export function printTargets(say, targets, loadavgEnd, logicalCpus) {
  const verdict = (p) => (p === null ? 'n/a' : p ? 'PASS' : 'MISS');
  say(`== targets (bench/gemm/targets.mjs) ==  (load average at the end ${loadavgEnd.map((v) => v.toFixed(1)).join(' ')} on ${logicalCpus} CPUs)`);
  say(table(['target', 'measured', 'verdict', 'note'], targets.map((t) => [
    t.name, t.value === null ? '-' : t.unit === '%' ? pct(t.value) : x2(t.value), verdict(t.pass), t.note ?? '',
  ]), ['l', 'r', 'l', 'l']));
  const npass = targets.filter((t) => t.pass === true).length;
  const nmiss = targets.filter((t) => t.pass === false).length;
  const nna = targets.filter((t) => t.pass === null).length;
  say(`${npass} PASS, ${nmiss} MISS${nna ? `, ${nna} n/a` : ''}`);
}
