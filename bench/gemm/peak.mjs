// This machine's arithmetic peak: bench/peak.cc (in-register vpdpbusd / vpmaddubsw / FMA /
// tdpbusd loops), compiled on the fly and cached by source hash, run at the given thread counts.
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { root } from '../common.mjs';

/**
 * The peak.cc loop that bounds the inner product of each kernel path's GEMM: its instructions
 * are the ones that path's micro-kernel issues (int8: vpdpbusd for VNNI, vpmaddubsw + vpmaddwd +
 * vpaddd without, tdpbusd for AMX; fp32: vfmadd231ps). The paths themselves, and their order,
 * come from the addon (paths.mjs); a path missing here shows no %peak.
 */
export const PEAK_LOOP_OF = {
  int8: { avx2: 'maddubs_ymm', avx512: 'maddubs_zmm', avxvnni: 'vnni_ymm', avx512vnni: 'vnni_zmm', amx: 'amx' },
  fp32: { avx2: 'fma_ymm', avxvnni: 'fma_ymm', avx512: 'fma_zmm', avx512vnni: 'fma_zmm', amx: 'fma_zmm' },
};
/** int8 loops, fastest first: ORT's column is against the best one this CPU has. */
export const INT8_LOOPS_BEST_FIRST = ['amx', 'vnni_zmm', 'vnni_ymm', 'maddubs_zmm', 'maddubs_ymm'];

/**
 * The same loops measured on the Intel reference machine the targets were set on (GOPS or
 * GFLOPS at 1 core / 2 threads), printed beside this machine's.
 */
export const INTEL_REFERENCE = {
  vnni_zmm: [890, 1680], vnni_ymm: [500, 940], maddubs_ymm: [230, 440], amx: [6300, 12000], amx_l1: [5100, 10400], fma_zmm: [224, 446],
};

const errMsg = (e) => (e && e.message ? e.message.split('\n')[0] : String(e));

function buildPeak() {
  const src = path.join(root, 'bench/peak.cc');
  const cxx = process.env.CXX || 'c++';
  let version = '';
  try {
    version = execFileSync(cxx, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch (e) {
    return { error: `no C++ compiler (${cxx}): ${errMsg(e)}` };
  }
  const flags = ['-O2', '-std=c++17', '-pthread'];
  const hash = createHash('sha256').update(readFileSync(src)).update(version).update(flags.join(' ')).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), 'quantkit-bench-peak');
  const bin = path.join(dir, `peak-${hash}`);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    const r = spawnSync(cxx, [...flags, src, '-o', tmp], { encoding: 'utf8' });
    if (r.status !== 0) return { error: `${cxx} ${flags.join(' ')} bench/peak.cc failed:\n${(r.stderr || r.error?.message || '').slice(0, 2000)}` };
    renameSync(tmp, bin);
  }
  return { bin, compiler: version, cmd: `${cxx} ${flags.join(' ')} bench/peak.cc` };
}

/** Builds and runs peak.cc; { kernels: { [loop]: { gops: { [threads]: n }, ... } } } or { error }. */
export function runPeak(threads, { quick = false } = {}) {
  if (process.arch !== 'x64') return { error: `peak loops are x86-64 only (arch ${process.arch})` };
  const b = buildPeak();
  if (b.error) return b;
  const args = [...threads.map(String), quick ? '--ms=5' : '--ms=8', quick ? '--reps=10' : '--reps=21'];
  const r = spawnSync(b.bin, args, { encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) return { ...b, error: `peak run failed (status ${r.status}): ${(r.stderr || r.error?.message || '').slice(0, 500)}` };
  const rows = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const byKernel = {};
  for (const row of rows) {
    byKernel[row.kernel] ??= { kernel: row.kernel, instr: row.instr, opsPerInstr: row.opsPerInstr, supported: row.supported, why: row.why, gops: {}, opsPerCycle: {}, ghz: {} };
    if (row.kernel === 'clock') byKernel.clock.ghz[row.threads] = row.ghz;
    else {
      byKernel[row.kernel].gops[row.threads] = row.gops;
      byKernel[row.kernel].opsPerCycle[row.threads] = row.opsPerCycle;
    }
  }
  return { ...b, args, kernels: byKernel };
}
