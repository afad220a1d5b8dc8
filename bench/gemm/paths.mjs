// The kernel paths, as the addon reports them (cpuInfo()): which paths are built and supported,
// in the addon's order of preference (lowest first, native/dispatch/isa.def), and which path each
// GEMM op selected. Nothing here lists paths by hand.

const isF32Op = (k) => /sgemm|sgemv|f32|fp32|float/i.test(k);
const isGemmOp = (k) => /gemm|matmul|gemv/i.test(k);

/** The addon's paths, lowest preference first (cpuInfo().builtPaths is in that order). */
export function pathOrder(info) {
  return info.builtPaths ?? [];
}

/**
 * The kernel paths selected for the int8 and the fp32 GEMM ops (cpuInfo().selected): per kind
 * the ops and their paths, and `path`, the most preferred of them.
 */
export function gemmPaths(info) {
  const order = pathOrder(info);
  const sel = info.selected ?? {};
  const pick = (keys) => {
    const ks = keys.filter((k) => sel[k] !== undefined);
    if (!ks.length) return null;
    const best = ks.map((k) => sel[k]).reduce((a, b) => (order.indexOf(b) > order.indexOf(a) ? b : a));
    return { path: best, ops: Object.fromEntries(ks.map((k) => [k, sel[k]])) };
  };
  const keys = Object.keys(sel);
  return {
    int8: pick(keys.filter((k) => isGemmOp(k) && !isF32Op(k))),
    fp32: pick(keys.filter((k) => isGemmOp(k) && isF32Op(k))),
  };
}

/** The paths the forced-path runs force in turn: every path this CPU supports, in the addon's order. */
export function forcedPaths(info) {
  const order = pathOrder(info);
  return (info.supportedPaths ?? []).slice().sort((a, b) => order.indexOf(a) - order.indexOf(b));
}
