// The report: one self-contained HTML page (inline CSS and SVG, no script, no request: a
// Content-Security-Policy forbids any) from an analysis, and optionally a mixed-precision plan and
// its measurement. The log-scale switch and the bit-width selector are a checkbox and radio buttons
// that CSS reads (:checked), so they work with scripts off.
import { writeFileAtomicSync } from '../io/atomic';
import { checkOptions, typeError } from '../errors';
import type { LayerAnalysis, ModelAnalysis, RangeResult, TensorAnalysis } from '../analysis/analyze';
import { OUTLIER_RATIO } from '../analysis/analyze';
import type { MixedPrecisionPlan, PlanMeasurement } from '../analysis/plan';
import type { SensitivityAnalysis, SensitivityRun } from '../analysis/sensitivity';
import { barChart, channelChart, ClipRange, esc, fmtNum, histogramChart, scatterChart, ScatterPoint } from './svg';

export interface ReportOptions {
  /** The page title (default 'quantkit report'). */
  title?: string;
  /** What was analyzed (e.g. the model file), shown under the title. */
  source?: string;
  plan?: MixedPrecisionPlan;
  measured?: PlanMeasurement;
  /** Free-form lines shown in the summary (e.g. the data sets used). */
  notes?: string[];
}

const OBS_LABEL: Record<string, string> = { minmax: 'min/max', percentile: 'percentile', mse: 'MSE', entropy: 'entropy', histogram: 'histogram (L2)' };

function fmtBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
function fmtDb(v: number): string {
  if (v === Infinity) return 'exact';
  if (v === -Infinity) return '-∞';
  return `${v.toFixed(1)}`;
}
function fmtPct(v: number | null): string {
  return v === null ? '–' : `${(v * 100).toFixed(2)}%`;
}
function fmtPts(v: number | null): string {
  return v === null ? '–' : `${v >= 0 ? '' : '−'}${Math.abs(v).toFixed(2)} pts`;
}
function choiceText(c: number | 'float', onnx = false): string {
  return c === 'float' ? 'float' : onnx && c < 8 ? `int${c} (weight-only)` : `int${c}`;
}
/** How an ONNX run of `bits` quantizes: int8 in the analysis' mode, fewer bits weight-only. */
function onnxRunText(bits: number, mode: string): string {
  return bits === 8 ? `int8 ${mode}` : `int${bits} weight-only`;
}
const bitsCls = (b: number): string => `b${b}`;

const CSS = `
:root{--fg:#1d2329;--muted:#5b6670;--line:#d5dbe1;--bg:#fff;--panel:#f6f8fa}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1020px;margin:0 auto;padding:0 20px 40px}header.top{max-width:1020px;margin:0 auto;padding:18px 20px 4px}
h1{font-size:22px;margin:0 0 2px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:22px 0 6px}
.sub{color:var(--muted)}p{margin:6px 0}code{font:12px ui-monospace,"DejaVu Sans Mono",monospace}
pre{background:var(--panel);padding:8px 10px;border-radius:4px;overflow-x:auto;font:12px ui-monospace,"DejaVu Sans Mono",monospace}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}th,td{border-bottom:1px solid var(--line);padding:3px 9px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:var(--panel)}td.best{font-weight:700}
.controls{max-width:1020px;margin:0 auto;padding:6px 20px;display:block}
input.ctl{position:absolute;opacity:0;pointer-events:none}
.bar{position:sticky;top:0;z-index:2;background:rgba(255,255,255,.95);border-bottom:1px solid var(--line)}
.bar .in{max-width:1020px;margin:0 auto;padding:6px 20px;display:flex;gap:14px;flex-wrap:wrap;align-items:center}
.bar label{cursor:pointer;padding:2px 8px;border:1px solid var(--line);border-radius:12px;user-select:none}
#log:checked~.bar label[for=log]{background:#1d2329;color:#fff}
.row{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0}figcaption{font-size:12px;color:var(--muted)}
.legend-html span{display:inline-block;margin-right:12px;font-size:12px}.legend-html i{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:4px}
svg.chart{background:#fff;overflow:visible}svg text{font-size:11px;fill:#3a444d}svg .axis-label{fill:var(--muted)}
svg .grid{stroke:#eceff2}svg .domain,svg .tick{stroke:#9aa5af}svg .zero{stroke:#59636d}
svg .bars{fill:#8fa6bb}svg .bars.outlier{fill:#d0453a}
svg .clip line{stroke-width:1.6;stroke-dasharray:5 3}
svg .rule line{stroke-width:1.2;stroke-dasharray:4 3}svg .rule.median line{stroke:#2b6cb0}svg .rule.threshold line{stroke:#d0453a}
svg .line{fill:none;stroke:#8a96a3;stroke-width:1.5;stroke-dasharray:4 3}
.obs-minmax{--c:#1f77b4}.obs-percentile{--c:#ff7f0e}.obs-mse{--c:#2ca02c}.obs-entropy{--c:#d62728}.obs-histogram{--c:#9467bd}
svg .clip line{stroke:var(--c)}.legend-html i{background:var(--c)}
.s0{--c:#1b9e77}.s1{--c:#d95f02}.s2{--c:#7570b3}.s3{--c:#e7298a}.s4{--c:#66a61e}.s5{--c:#e6ab02}.s6{--c:#a6761d}
svg .series rect,svg .legend rect{fill:var(--c)}
.pt-float{--c:#1d2329}.pt-uniform{--c:#8fa6bb}.pt-pred{--c:#ff7f0e}.pt-meas{--c:#d0453a}.ln-frontier{--c:#8a96a3}
svg .point circle{fill:var(--c);stroke:#fff;stroke-width:1}svg .point text{fill:#3a444d}
.scroll{overflow-x:auto;max-width:100%}
.note{color:var(--muted);font-size:12px}.ok{color:#207a3a;font-weight:600}.bad{color:#b3261e;font-weight:600}
details{margin:6px 0}summary{cursor:pointer;color:var(--muted)}
`;

function controlsCss(bits: readonly number[]): string {
  let s = '#log:checked~main .lin{display:none}#log:not(:checked)~main .log{display:none}';
  for (const b of bits) {
    s += `#bits-${b}:checked~main .bsel:not(.${bitsCls(b)}){display:none}`;
    s += `#bits-${b}:checked~.bar label[for=bits-${b}]{background:#1d2329;color:#fff}`;
  }
  return s;
}

function observerLegend(names: readonly string[]): string {
  return `<div class="legend-html">${names.map((n) => `<span class="obs-${esc(n)}"><i></i>${esc(OBS_LABEL[n] ?? n)}</span>`).join('')}<span class="note">dashed lines: clipping range (per tensor) at the selected bit width</span></div>`;
}

function clipRanges(t: TensorAnalysis): ClipRange[] {
  return t.ranges.filter((r) => r.granularity === 'per-tensor').map((r) => ({
    cls: `obs-${r.observer}`, label: `${OBS_LABEL[r.observer] ?? r.observer}, ${r.bits} bits`, min: r.min, max: r.max, group: `bsel ${bitsCls(r.bits)}`,
  }));
}

function sqnrTable(t: TensorAnalysis, bits: readonly number[], caption: string): string {
  const rows = new Map<string, Map<number, RangeResult>>();
  for (const r of t.ranges) {
    const k = `${r.observer}|${r.granularity}`;
    if (!rows.has(k)) rows.set(k, new Map());
    rows.get(k)!.set(r.bits, r);
  }
  const best = new Map<string, number>();
  for (const g of ['per-tensor', 'per-channel']) {
    for (const b of bits) {
      let m = -Infinity;
      for (const r of t.ranges) if (r.granularity === g && r.bits === b && r.sqnrDb > m) m = r.sqnrDb;
      best.set(`${g}|${b}`, m);
    }
  }
  let s = `<table class="sqnr"><caption class="note">${esc(caption)}</caption><thead><tr><th>observer</th><th>granularity</th>${bits.map((b) => `<th>${b} bits</th>`).join('')}` +
    `${bits.map((b) => `<th class="bsel ${bitsCls(b)}">range at ${b} bits</th>`).join('')}</tr></thead><tbody>`;
  for (const [k, m] of rows) {
    const [obs, g] = k.split('|');
    s += `<tr><td>${esc(OBS_LABEL[obs] ?? obs)}</td><td>${g}</td>`;
    for (const b of bits) {
      const r = m.get(b);
      if (!r) { s += '<td>–</td>'; continue; }
      const isBest = r.sqnrDb === best.get(`${g}|${b}`);
      const tip = g === 'per-tensor' ? `range [${fmtNum(r.min)}, ${fmtNum(r.max)}], ${((r.clipped ?? 0) * 100).toFixed(3)}% clipped` : `channel ranges within [${fmtNum(r.min)}, ${fmtNum(r.max)}]`;
      s += `<td${isBest ? ' class="best"' : ''} title="${esc(tip)}">${fmtDb(r.sqnrDb)}</td>`;
    }
    for (const b of bits) {
      const r = m.get(b);
      const txt = !r ? '–' : g === 'per-tensor' ? `[${fmtNum(r.min)}, ${fmtNum(r.max)}]${r.clipped ? ` · ${(r.clipped * 100).toFixed(2)}% clipped` : ''}` : 'per channel';
      s += `<td class="bsel ${bitsCls(b)}">${esc(txt)}</td>`;
    }
    s += '</tr>';
  }
  return s + '</tbody></table>';
}

function tensorStats(t: TensorAnalysis): string {
  const c = t.channels;
  const top = c.spread.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([v, i]) => `${i} (${v.toFixed(1)})`).join(', ');
  return `<p class="note">min ${fmtNum(t.min)}, max ${fmtNum(t.max)}, mean ${fmtNum(t.mean)}, std ${fmtNum(t.std)}, max |x| / std ${t.std > 0 ? (t.absMax / t.std).toFixed(1) : '–'}` +
    `${t.nonFinite ? `, ${t.nonFinite} non-finite values skipped` : ''}. Channels (${c.absMax.length}, axis ${c.axis}): median max |x| ${fmtNum(c.medianAbsMax)}, ` +
    `largest / median ${fmtNum(c.rangeRatio)}, ${c.outliers.length} outlier channel${c.outliers.length === 1 ? '' : 's'} (max |x| ≥ ${OUTLIER_RATIO}× median)` +
    `${c.outliers.length ? `: ${c.outliers.slice(0, 12).join(', ')}${c.outliers.length > 12 ? ', …' : ''}` : ''}; largest max/std: ${esc(top)}.</p>`;
}

function layerSection(l: LayerAnalysis, a: ModelAnalysis, idx: number): string {
  const id = `layer-${idx}`;
  const nm = esc(l.name);
  const bits = a.options.bits;
  const wh = histogramChart({ id: `${id}-weight-hist`, title: `Layer ${l.name}: weight histogram`, lo: l.weight.histogram.lo, hi: l.weight.histogram.hi, counts: l.weight.histogram.counts, ranges: clipRanges(l.weight), xLabel: 'weight value' });
  const ah = histogramChart({ id: `${id}-input-hist`, title: `Layer ${l.name}: input activation histogram`, lo: l.input.histogram.lo, hi: l.input.histogram.hi, counts: l.input.histogram.counts, ranges: clipRanges(l.input), xLabel: 'activation value' });
  const chan = (t: TensorAnalysis, what: string, kind: string): string => channelChart({
    id: `${id}-${kind}-channels`, title: `Layer ${l.name}: ${what} max |x| per channel`, values: t.channels.absMax, outliers: t.channels.outliers,
    rules: [{ cls: 'median', label: 'median channel', y: t.channels.medianAbsMax }, { cls: 'threshold', label: `${OUTLIER_RATIO}× median (outlier threshold)`, y: OUTLIER_RATIO * t.channels.medianAbsMax }],
    xLabel: kind === 'weight' ? 'output channel' : l.opType === 'Conv' ? 'input channel' : 'input feature', yLabel: 'max |x|',
  });
  const onnx = a.onnx !== undefined;
  const head = onnx ? `Node ${nm}: ${esc(l.opType ?? '')}, weight ${esc(l.weightName ?? '')} [${(l.weightShape ?? []).join(', ')}]` : `Layer ${nm}: Linear ${l.inFeatures} → ${l.outFeatures}`;
  const wcap = onnx ? `Weight as [output channels, inputs] = [${l.outFeatures}, ${l.inFeatures}], symmetric signed codes.`
    : `Weight [${l.outFeatures}, ${l.inFeatures}], symmetric signed codes.`;
  const acap = onnx ? `Input activations over ${a.onnx!.feeds} calibration feeds as ${l.input.shape[0]} rows of ${l.input.shape[1]} ${l.opType === 'Conv' ? 'channels (batch × positions)' : 'features'}, asymmetric unsigned codes.`
    : `Input activations over ${l.input.shape[0]} calibration rows, asymmetric unsigned codes.`;
  return `<section class="layer" id="${id}" data-layer="${nm}"><h3>${head}</h3>
${observerLegend(a.options.observers)}
<div class="row"><figure>${wh}<figcaption>${wcap}</figcaption></figure>
<figure>${ah}<figcaption>${acap}</figcaption></figure></div>
<div class="row"><div>${sqnrTable(l.weight, bits, 'Weight SQNR (dB) per observer and bit width')}${tensorStats(l.weight)}</div>
<div>${sqnrTable(l.input, bits, 'Input activation SQNR (dB) per observer and bit width')}${tensorStats(l.input)}</div></div>
<div class="row"><figure>${chan(l.weight, 'weight', 'weight')}<figcaption>Weight channels (red: outliers).</figcaption></figure>
<figure>${chan(l.input, 'input', 'input')}<figcaption>Input features (red: outliers).</figcaption></figure></div></section>`;
}

/** Names for a crowded axis: without the prefix they all share, at most 9 characters. */
function shortNames(names: readonly string[], shorten: boolean): Map<string, string> {
  if (!shorten) return new Map(names.map((n) => [n, n]));
  let p = names[0] ?? '';
  for (const n of names) while (!n.startsWith(p)) p = p.slice(0, -1);
  return new Map(names.map((n) => {
    const t = n.slice(p.length) || n;
    return [n, t.length > 9 ? `${t.slice(0, 8)}…` : t];
  }));
}

const clampDb = (v: number, top: number): number => (v === Infinity ? top : v === -Infinity ? 0 : v);

function sensitivitySection(s: SensitivityAnalysis, a: ModelAnalysis): string {
  const ox = a.onnx;
  const unit = ox ? 'node' : 'layer';
  // ONNX node names are long ('/encoder/layer.3/attn/MatMul'): with many nodes the axis shows them
  // without their common prefix, cut to 9 characters (each bar's tooltip and the table have them whole).
  const short = shortNames(s.layers, ox !== undefined && s.layers.length > 6);
  const cat = (l: string): string => (ox ? short.get(l)! : `layer ${l}`);
  const series = (runs: SensitivityRun[], val: (r: SensitivityRun) => number | null) => s.bits.map((b, k) => ({
    cls: `s${k % 7}`, label: ox ? onnxRunText(b, s.mode) : `${b} bits`, values: s.layers.map((l) => { const r = runs.find((x) => x.layer === l && x.bits === b); return r ? val(r) : null; }),
  }));
  let finiteTop = 0;
  for (const r of [...s.single, ...s.allBut, ...s.uniform]) if (Number.isFinite(r.sqnrDb) && r.sqnrDb > finiteTop) finiteTop = r.sqnrDb;
  const top = finiteTop + 10;
  const where = s.data === 'eval' ? `${s.rows} evaluation rows` : `${s.rows} calibration rows (no evaluation data given)`;
  const engine = ox
    ? `<code>quantizeOnnx</code> (8 bits: mode <code>${esc(s.mode)}</code>${s.mode === 'static' ? `, observer <code>${esc(a.options.observer)}</code>, calibrated on the float model` : ''}; fewer bits: weight-only MatMulNBits, block ${ox.blockSize}, MatMul / Gemm only) run in onnxruntime-node, output <code>${esc(ox.output)}</code>`
    : `<code>quantizeModel</code> (mode <code>${esc(s.mode)}</code>)`;
  let h = `<h2 id="sensitivity">Sensitivity</h2><p>Each bar is a real model from ${engine} compared with the float model on ${where}. ` +
    `Output SQNR: 10·log10(Σ float output² / Σ (quantized − float)²); higher is better. An exact result is drawn at the top of the axis.</p><div class="row">`;
  h += `<figure class="scroll">${barChart({ id: 'sensitivity-single-sqnr', title: `Output SQNR when only this ${unit} is quantized`, categories: s.layers.map(cat), series: series(s.single, (r) => clampDb(r.sqnrDb, top)), yLabel: 'output SQNR (dB)' })}<figcaption>Only this ${unit} quantized (the others float): low bars are fragile ${unit}s.</figcaption></figure>`;
  if (s.labels) {
    h += `<figure class="scroll">${barChart({ id: 'sensitivity-single-accuracy', title: `Accuracy drop when only this ${unit} is quantized`, categories: s.layers.map(cat), series: series(s.single, (r) => r.accuracyDrop), yLabel: 'accuracy drop (points)' })}<figcaption>Float accuracy ${fmtPct(s.float.accuracy)} minus the quantized model's.</figcaption></figure>`;
  }
  if (s.allBut.length) {
    h += `<figure class="scroll">${barChart({ id: 'sensitivity-all-but-sqnr', title: `Output SQNR when all ${unit}s but this one are quantized`, categories: s.layers.map((l) => (ox ? cat(l) : `${cat(l)} float`)), series: series(s.allBut, (r) => clampDb(r.sqnrDb, top)), yLabel: 'output SQNR (dB)' })}<figcaption>All quantized but this ${unit}: the ${unit} whose float copy helps most stands highest.</figcaption></figure>`;
  }
  h += `</div><details${ox && s.uniform.length + s.single.length + s.allBut.length <= 20 ? ' open' : ''}><summary>All runs</summary><table><thead><tr><th>run</th><th>${ox ? 'quantized as' : 'bits'}</th><th>size</th><th>output SQNR (dB)</th>${ox ? '<th>cosine</th>' : ''}<th>${ox ? 'agreement' : 'top-1 agreement'}</th><th>accuracy</th><th>drop</th></tr></thead><tbody>`;
  for (const r of [...s.uniform, ...s.single, ...s.allBut]) {
    const name = r.kind === 'uniform' ? (ox && r.bits < 8 ? 'every MatMul / Gemm node' : `every ${unit}`) : r.kind === 'single' ? `only ${unit} ${r.layer}` : `all but ${unit} ${r.layer}`;
    h += `<tr><td>${esc(name)}</td><td>${ox ? onnxRunText(r.bits, s.mode) : r.bits}</td><td>${fmtBytes(r.bytes)}</td><td>${fmtDb(r.sqnrDb)}</td>${ox ? `<td>${r.cosine === undefined ? '–' : r.cosine.toFixed(5)}</td>` : ''}<td>${(r.agreement * 100).toFixed(2)}%</td><td>${fmtPct(r.accuracy)}</td><td>${fmtPts(r.accuracyDrop)}</td></tr>`;
  }
  return h + '</tbody></table></details>';
}

function planSection(a: ModelAnalysis, p: MixedPrecisionPlan, m: PlanMeasurement | undefined): string {
  const s = a.sensitivity!;
  const budget = 'accuracyDrop' in p.budget ? `an accuracy loss of at most ${p.budget.accuracyDrop} points` : `an output SQNR of at least ${p.budget.sqnrDb} dB`;
  let h = `<h2 id="plan">Mixed-precision plan</h2><p>The smallest model whose <em>predicted</em> loss stays within ${esc(budget)} ` +
    `(${p.search} search over ${p.configurations} configurations${p.feasible ? '' : '; <span class="bad">no configuration meets the budget: every layer stays float</span>'}). ` +
    `Predicted output noise is the sum of each layer's noise when quantized alone; predicted accuracy loss is the larger of the summed single-layer drops and the drop the measured runs show at the predicted SQNR` +
    `${'accuracyDrop' in p.budget ? `; the budget is checked against its upper bound, the prediction plus ${p.confidence} standard errors of an accuracy difference on ${p.rows} rows` : ''}.</p>`;
  h += `<table class="plan"><thead><tr><th>${a.onnx ? 'node' : 'layer'}</th><th>shape</th><th>weights</th><th>bytes</th><th>alone: output SQNR</th><th>alone: accuracy drop</th></tr></thead><tbody>`;
  for (const l of p.layers) {
    const la = a.layers.find((x) => x.name === l.name);
    const single = l.choice === 'float' ? null : s.single.find((r) => r.layer === l.name && r.bits === l.choice);
    h += `<tr><td>${esc(l.name)}</td><td>${la ? (la.weightShape ? `${esc(la.opType ?? '')} [${la.weightShape.join(', ')}]` : `${la.outFeatures} × ${la.inFeatures}`) : ''}</td><td>${choiceText(l.choice, a.onnx !== undefined)}</td><td>${fmtBytes(l.bytes)}</td>` +
      `<td>${single ? fmtDb(single.sqnrDb) : '–'}</td><td>${single ? fmtPts(single.accuracyDrop) : '–'}</td></tr>`;
  }
  h += '</tbody></table>';
  const fb = p.float.bytes;
  h += `<table class="pred-vs-meas"><thead><tr><th></th><th>float</th><th>predicted</th><th>measured</th></tr></thead><tbody>`;
  h += `<tr><td>size</td><td>${fmtBytes(fb)}</td><td>${fmtBytes(p.predicted.bytes)} (${(p.predicted.bytes / fb).toFixed(3)}×)</td><td>${m ? `${fmtBytes(m.bytes)} (${(m.bytes / fb).toFixed(3)}×)` : '–'}</td></tr>`;
  h += `<tr><td>output SQNR (dB)</td><td>exact</td><td>${fmtDb(p.predicted.sqnrDb)}</td><td>${m ? fmtDb(m.sqnrDb) : '–'}</td></tr>`;
  if (s.labels) {
    const fAcc = m ? m.floatAccuracy : p.float.accuracy;
    const pAcc = fAcc === null || p.predicted.accuracyDrop === null ? null : fAcc - p.predicted.accuracyDrop / 100;
    h += `<tr><td>accuracy${m ? ` (${m.rows} rows)` : ''}</td><td>${fmtPct(fAcc)}</td><td>${fmtPct(pAcc)}</td><td>${m ? fmtPct(m.accuracy) : '–'}</td></tr>`;
    h += `<tr><td>accuracy drop</td><td></td><td>${fmtPts(p.predicted.accuracyDrop)}</td><td>${m ? fmtPts(m.accuracyDrop) : '–'}</td></tr>`;
    h += `<tr><td>accuracy drop, upper bound</td><td></td><td>${fmtPts(p.predicted.accuracyDropBound)}</td><td></td></tr>`;
  }
  if (m) h += `<tr><td>${a.onnx ? 'agreement with float (top-1; one value: &gt; 0.5)' : 'top-1 agreement with float'}</td><td></td><td></td><td>${(m.agreement * 100).toFixed(2)}%</td></tr>`;
  if (m && m.cosine !== undefined) h += `<tr><td>cosine with float outputs</td><td></td><td></td><td>${m.cosine.toFixed(5)}</td></tr>`;
  h += '</tbody></table>';
  if (m) {
    h += `<p>Measured on ${m.rows} rows: <span class="${m.withinBudget ? 'ok' : 'bad'}">${m.withinBudget ? 'within' : 'outside'} the budget</span>` +
      `${s.data === 'eval' && m.rows !== s.rows ? ` (the prediction used ${s.rows} rows)` : ''}.</p>`;
  }
  h += p.onnx
    ? `<details><summary>quantizeOnnx passes (measureOnnxPlan)</summary><pre>${esc(JSON.stringify(p.onnx, null, 2))}</pre></details>`
    : `<details><summary>quantizeModel options</summary><pre>${esc(JSON.stringify(p.quantizeOptions, null, 2))}</pre></details>`;
  // Trade-off chart: accuracy change against float (each run against the float model on its own rows), or output SQNR.
  const acc = s.labels;
  const finite = (v: number): number => (Number.isFinite(v) ? v : NaN);
  const yOf = (drop: number | null, sq: number): number => (acc ? -(drop ?? 0) : finite(sq));
  const measuredY = m ? yOf(m.accuracyDrop, m.sqnrDb) : NaN;
  const floor = 'accuracyDrop' in p.budget ? -Math.max(5, 4 * p.budget.accuracyDrop) : -5;
  const yMin = acc ? Math.min(floor, Number.isFinite(measuredY) ? measuredY - 1 : Infinity) : undefined;
  const pts: ScatterPoint[] = [
    ...(acc ? [{ x: fb / 1024, y: 0, cls: 'pt-float', label: `float: ${fmtBytes(fb)}`, tag: 'float' }] : []),
    ...s.uniform.map((r) => ({ x: r.bytes / 1024, y: yOf(r.accuracyDrop, r.sqnrDb), cls: 'pt-uniform', label: `every ${a.onnx ? 'node' : 'layer'} quantized: ${a.onnx ? onnxRunText(r.bits, s.mode) : `int${r.bits}`}, ${fmtBytes(r.bytes)}`, tag: `int${r.bits}` })),
    { x: p.predicted.bytes / 1024, y: yOf(p.predicted.accuracyDrop, p.predicted.sqnrDb), cls: 'pt-pred', label: `plan, predicted: ${fmtBytes(p.predicted.bytes)}`, tag: 'predicted', tagLeft: true, tagBelow: true },
  ];
  if (m) pts.push({ x: m.bytes / 1024, y: measuredY, cls: 'pt-meas', label: `plan, measured: ${fmtBytes(m.bytes)}`, tag: 'measured', tagLeft: true });
  const line = { cls: 'ln-frontier', label: 'predicted frontier', points: p.frontier.map((q) => ({ x: q.bytes / 1024, y: yOf(q.accuracyDrop, q.sqnrDb) })) };
  h += `<figure>${scatterChart({ id: 'tradeoff', title: acc ? 'Accuracy change against size' : 'Output SQNR against size', points: pts, line, yMin, xLabel: 'model size (KiB)', yLabel: acc ? 'accuracy vs float (points)' : 'output SQNR (dB)' })}` +
    `<figcaption>Every layer at one width (measured on the sensitivity rows), the plan (predicted, and measured on ${m ? m.rows : '–'} rows), and the predictor's best loss at each size${acc ? ' (point estimate)' : ''}.</figcaption></figure>`;
  return h;
}

/** The report as one HTML page. */
export function renderReport(analysis: ModelAnalysis, options?: ReportOptions): string {
  if (typeof analysis !== 'object' || analysis === null || analysis.version !== 1 || !Array.isArray(analysis.layers)) throw typeError('analysis', 'the result of analyzeModel', analysis);
  const o = checkOptions('options', options, ['title', 'source', 'plan', 'measured', 'notes']) as ReportOptions;
  const title = o.title ?? 'quantkit report';
  const a = analysis;
  const bits = a.options.bits;
  const s = a.sensitivity;
  const ox = a.onnx;
  const linear = ox ? a.layers.map((l) => `${esc(l.name)}: ${esc(l.opType ?? '')} [${(l.weightShape ?? []).join(', ')}]`).join(' · ')
    : a.model.layers.map((l) => (l.type === 'Linear' ? `${esc(l.name)}: Linear ${l.inFeatures}→${l.outFeatures}` : `${esc(l.name)}: ${esc(l.type)}`)).join(' · ');
  let body = `<header class="top"><h1>${esc(title)}</h1>${o.source ? `<div class="sub">${esc(o.source)}</div>` : ''}</header>`;
  body += '<input class="ctl" type="checkbox" id="log">';
  bits.forEach((b, i) => { body += `<input class="ctl" type="radio" name="bits" id="bits-${b}"${i === 0 ? ' checked' : ''}>`; });
  body += `<nav class="bar"><div class="in"><label for="log">log scale</label><span class="note">clipping ranges at</span>${bits.map((b) => `<label for="bits-${b}">${b} bits</label>`).join('')}` +
    `<span class="note"><a href="#plan">plan</a> · <a href="#sensitivity">sensitivity</a> · <a href="#layers">layers</a></span></div></nav>`;
  body += '<main>';
  body += `<h2 id="summary">Summary</h2><table class="summary"><tbody>` +
    `<tr><td>${ox ? 'nodes' : 'layers'}</td><td style="text-align:left;white-space:normal">${linear}</td></tr>` +
    (ox ? `<tr><td>ONNX model</td><td style="text-align:left;white-space:normal">inputs ${ox.inputs.map((i) => `${esc(i.name)} ${esc(i.type)}${i.shape ? ` [${i.shape.map((d) => esc(String(d ?? '?'))).join(', ')}]` : ''}`).join('; ')}; output compared: ${esc(ox.output)}` +
      `${ox.skipped.length ? `; not analyzed: ${ox.skipped.map((k) => `${esc(k.opType)} ${esc(k.name)} (${esc(k.reason)})`).join('; ')}` : ''}` +
      `${ox.renamed.length ? `; ${ox.renamed.length} unnamed node${ox.renamed.length === 1 ? '' : 's'} named by the analysis ('#index op')` : ''}</td></tr>` : '') +
    `<tr><td>parameters</td><td style="text-align:left">${a.model.parameters.toLocaleString('en-US')} (${ox ? `float32 initializer values; model ${fmtBytes(a.model.floatBytes)}` : `${fmtBytes(a.model.floatBytes)} as float32`})</td></tr>` +
    `<tr><td>calibration</td><td style="text-align:left">${ox ? `${ox.feeds} feeds run in onnxruntime-node` : `${a.calibration.rows} rows`}</td></tr>` +
    (s ? `<tr><td>sensitivity data</td><td style="text-align:left">${s.rows} ${s.data} rows${s.labels ? `, float accuracy ${fmtPct(s.float.accuracy)}` : ', no labels'}</td></tr>` : '') +
    (ox ? `<tr><td>quantization</td><td style="text-align:left;white-space:normal">quantizeOnnx: int8 in mode ${esc(a.options.mode)}${a.options.mode === 'static' ? ` (QDQ, activation observer ${esc(a.options.observer)}, uint8)` : ''}, weights int8 per channel; 4 and 2 bits weight-only (MatMulNBits, block ${ox.blockSize}) on MatMul / Gemm; ranges at ${bits.join(', ')} bits</td></tr>` +
      ox.notes.map((n) => `<tr><td>note</td><td style="text-align:left;white-space:normal">${esc(n)}</td></tr>`).join('') : '') +
    (ox ? '' : `<tr><td>quantization</td><td style="text-align:left">mode ${esc(a.options.mode)}, weights ${a.options.granularity === null ? 'default granularity' : esc(typeof a.options.granularity === 'string' ? a.options.granularity : `group ${a.options.granularity.groupSize}`)}${a.options.mode === 'static' ? `, activation observer ${esc(a.options.observer)} (uint8)` : ''}; bit widths ${bits.join(', ')}</td></tr>`) +
    (o.notes ?? []).map((n) => `<tr><td>note</td><td style="text-align:left;white-space:normal">${esc(n)}</td></tr>`).join('') +
    '</tbody></table>';
  if (o.plan && s) body += planSection(a, o.plan, o.measured);
  if (s) body += sensitivitySection(s, a);
  body += `<h2 id="layers">${ox ? 'Nodes' : 'Layers'}</h2><p>${ox ? 'Per MatMul / Gemm / Conv node' : 'Per Linear layer'}: histograms of the weight and of the ${ox ? 'node' : 'layer'}'s input with the clipping range each observer picks (per tensor), the SQNR each range gives ` +
    `(10·log10(Σx² / Σ(x − fakeQuantize(x))²), dB; per channel where the observer has a per-channel form; the best per column in bold), and each channel's max |x|.</p>`;
  a.layers.forEach((l, i) => { body += layerSection(l, a, i); });
  body += `<p class="note">Generated by quantkit. This page loads nothing and runs no script.</p></main>`;
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>${CSS}${controlsCss(bits)}</style></head><body>${body}</body></html>\n`;
}

/** The analysis, plan and measurement as JSON text (Infinity and NaN written as strings). */
export function reportJSON(data: { analysis: ModelAnalysis; plan?: MixedPrecisionPlan; measured?: PlanMeasurement }): string {
  return JSON.stringify(data, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n';
}

/** Writes the report to `file` atomically (a reader sees the old file or the whole new one). */
export function writeReport(file: string, analysis: ModelAnalysis, options?: ReportOptions): void {
  if (typeof file !== 'string' || file === '') throw typeError('file', 'a file path', file);
  const html = renderReport(analysis, options);
  writeFileAtomicSync(file, (put) => put(Buffer.from(html, 'utf8')));
}
