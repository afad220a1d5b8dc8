// SVG charts for the report, written as strings: histograms with clipping ranges, grouped bars,
// a scatter with a line, and per-channel bars. Every text from outside (layer names, titles) is
// escaped; numbers are rounded to 2 decimals of a pixel. The charts need no script and no font
// beyond the page's own; their look (colours, strokes) is set by the page's CSS classes, so a
// chart is plain geometry plus class names.

/** Escapes text for XML / HTML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const r2 = (v: number): string => {
  const x = Math.round(v * 100) / 100;
  return Object.is(x, -0) ? '0' : String(x);
};

/** About `n` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  const step = (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** A short number for axis labels: 3 significant digits, k / M for large ones. */
export function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return v > 0 ? '∞' : v < 0 ? '-∞' : 'NaN';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a === 0) return '0';
  if (a < 1e-3) return v.toExponential(1);
  return String(+v.toPrecision(3));
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function plotArea(f: Frame): { x0: number; x1: number; y0: number; y1: number } {
  return { x0: f.left, x1: f.width - f.right, y0: f.height - f.bottom, y1: f.top };
}

function open(f: Frame, cls: string, id: string, label: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart ${cls}" data-chart="${esc(id)}" role="img" aria-label="${esc(label)}" ` +
    `width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}"><title>${esc(label)}</title>`;
}

function yAxis(a: ReturnType<typeof plotArea>, ticks: { v: number; y: number; text: string }[], cls = ''): string {
  let s = `<g class="axis y-axis${cls ? ' ' + cls : ''}">`;
  for (const t of ticks) {
    s += `<line class="grid" x1="${r2(a.x0)}" x2="${r2(a.x1)}" y1="${r2(t.y)}" y2="${r2(t.y)}"/>`;
    s += `<text x="${r2(a.x0 - 4)}" y="${r2(t.y + 3.5)}" text-anchor="end">${esc(t.text)}</text>`;
  }
  return s + '</g>';
}

function xAxis(a: ReturnType<typeof plotArea>, ticks: { x: number; text: string }[]): string {
  let s = `<g class="axis x-axis"><line class="domain" x1="${r2(a.x0)}" x2="${r2(a.x1)}" y1="${r2(a.y0)}" y2="${r2(a.y0)}"/>`;
  for (const t of ticks) {
    s += `<line class="tick" x1="${r2(t.x)}" x2="${r2(t.x)}" y1="${r2(a.y0)}" y2="${r2(a.y0 + 4)}"/>`;
    s += `<text x="${r2(t.x)}" y="${r2(a.y0 + 15)}" text-anchor="middle">${esc(t.text)}</text>`;
  }
  return s + '</g>';
}

function axisLabels(f: Frame, x: string, y: string): string {
  const a = plotArea(f);
  let s = '';
  if (x) s += `<text class="axis-label" x="${r2((a.x0 + a.x1) / 2)}" y="${r2(f.height - 4)}" text-anchor="middle">${esc(x)}</text>`;
  if (y) s += `<text class="axis-label" transform="translate(12 ${r2((a.y0 + a.y1) / 2)}) rotate(-90)" text-anchor="middle">${esc(y)}</text>`;
  return s;
}

/** One clipping range to draw on a histogram: two vertical lines, in the series' class. */
export interface ClipRange {
  /** CSS class of the series (e.g. 'obs-mse'). */
  cls: string;
  label: string;
  min: number;
  max: number;
  /** Extra class, e.g. 'bsel b8' so the page shows one bit width at a time. */
  group?: string;
}

export interface HistogramChartOptions {
  id: string;
  title: string;
  lo: number;
  hi: number;
  counts: readonly number[];
  ranges: ClipRange[];
  xLabel?: string;
  width?: number;
  height?: number;
}

/**
 * A histogram as bars (one path) on a linear count axis and again on a log axis (classes 'lin'
 * and 'log': the page shows one), with each range's min and max as vertical lines.
 */
export function histogramChart(o: HistogramChartOptions): string {
  const f: Frame = { width: o.width ?? 460, height: o.height ?? 230, left: 52, right: 10, top: 10, bottom: 36 };
  const a = plotArea(f);
  let lo = o.lo, hi = o.hi;
  for (const r of o.ranges) {
    if (Number.isFinite(r.min)) lo = Math.min(lo, r.min);
    if (Number.isFinite(r.max)) hi = Math.max(hi, r.max);
  }
  if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
  const pad = (hi - lo) * 0.02;
  lo -= pad; hi += pad;
  const X = (v: number): number => a.x0 + ((v - lo) / (hi - lo)) * (a.x1 - a.x0);
  const n = o.counts.length;
  const bw = (o.hi - o.lo) / n;
  let maxC = 0;
  for (const c of o.counts) if (c > maxC) maxC = c;
  const top = maxC > 0 ? maxC : 1;
  const logTop = Math.log10(top + 1);
  const bars = (Y: (c: number) => number): string => {
    let d = '';
    for (let i = 0; i < n; i++) {
      const c = o.counts[i];
      if (c <= 0) continue;
      const xa = X(o.lo + i * bw), xb = o.hi > o.lo ? X(o.lo + (i + 1) * bw) : xa + 2;
      const w = Math.max(0.6, xb - xa - 0.3);
      d += `M${r2(xa)} ${r2(a.y0)}h${r2(w)}V${r2(Y(c))}h${r2(-w)}Z`;
    }
    return d;
  };
  const Ylin = (c: number): number => a.y0 - (c / top) * (a.y0 - a.y1);
  const Ylog = (c: number): number => a.y0 - (Math.log10(c + 1) / (logTop || 1)) * (a.y0 - a.y1);
  let s = open(f, 'chart-hist', o.id, o.title);
  s += yAxis(a, niceTicks(0, top, 4).map((v) => ({ v, y: Ylin(v), text: fmtNum(v) })), 'lin');
  const logTicks: { v: number; y: number; text: string }[] = [];
  for (let p = 0; 10 ** p <= top * 1.0001; p++) logTicks.push({ v: 10 ** p, y: Ylog(10 ** p), text: fmtNum(10 ** p) });
  s += yAxis(a, [{ v: 0, y: a.y0, text: '0' }, ...logTicks], 'log');
  s += `<path class="bars lin" d="${bars(Ylin)}"/><path class="bars log" d="${bars(Ylog)}"/>`;
  s += xAxis(a, niceTicks(lo, hi, 5).map((v) => ({ x: X(v), text: fmtNum(v) })));
  for (const r of o.ranges) {
    s += `<g class="clip ${esc(r.cls)}${r.group ? ' ' + esc(r.group) : ''}"><title>${esc(`${r.label}: [${fmtNum(r.min)}, ${fmtNum(r.max)}]`)}</title>`;
    for (const v of [r.min, r.max]) if (Number.isFinite(v)) s += `<line x1="${r2(X(v))}" x2="${r2(X(v))}" y1="${r2(a.y0)}" y2="${r2(a.y1)}"/>`;
    s += '</g>';
  }
  s += axisLabels(f, o.xLabel ?? 'value', 'count');
  return s + '</svg>';
}

export interface BarSeries {
  cls: string;
  label: string;
  /** One value per category (null: no bar). */
  values: (number | null)[];
}

export interface BarChartOptions {
  id: string;
  title: string;
  categories: string[];
  series: BarSeries[];
  yLabel: string;
  xLabel?: string;
  /** Values are clamped to this range (e.g. an exact result's Infinity SQNR); default: the data's. */
  yMin?: number;
  yMax?: number;
  width?: number;
  height?: number;
}

/** Grouped bars: one group per category, one bar per series, a legend on top; the zero line is drawn. */
export function barChart(o: BarChartOptions): string {
  const f: Frame = { width: o.width ?? Math.max(360, 90 + o.categories.length * (o.series.length * 16 + 30)), height: o.height ?? 250, left: 56, right: 10, top: 26, bottom: 40 };
  const a = plotArea(f);
  let lo = 0, hi = 0;
  for (const se of o.series) for (const v of se.values) if (v !== null && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (o.yMin !== undefined) lo = Math.min(lo, o.yMin);
  if (o.yMax !== undefined) hi = o.yMax;
  if (!(hi > lo)) hi = lo + 1;
  const ticks = niceTicks(lo, hi, 5);
  lo = Math.min(lo, ticks[0]); hi = Math.max(hi, ticks[ticks.length - 1]);
  const Y = (v: number): number => a.y0 - ((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * (a.y0 - a.y1);
  let s = open(f, 'chart-bars', o.id, o.title);
  s += yAxis(a, ticks.map((v) => ({ v, y: Y(v), text: fmtNum(v) })));
  const gw = (a.x1 - a.x0) / Math.max(1, o.categories.length);
  const bw = Math.min(22, (gw * 0.8) / Math.max(1, o.series.length));
  o.series.forEach((se, k) => {
    s += `<g class="series ${esc(se.cls)}">`;
    se.values.forEach((v, c) => {
      if (v === null || Number.isNaN(v)) return;
      const x = a.x0 + gw * c + (gw - bw * o.series.length) / 2 + k * bw;
      const y0 = Y(0), y1 = Y(v);
      s += `<rect x="${r2(x)}" y="${r2(Math.min(y0, y1))}" width="${r2(bw - 1)}" height="${r2(Math.max(0.5, Math.abs(y1 - y0)))}"><title>${esc(`${o.categories[c]}, ${se.label}: ${fmtNum(v)}`)}</title></rect>`;
    });
    s += '</g>';
  });
  s += `<line class="zero" x1="${r2(a.x0)}" x2="${r2(a.x1)}" y1="${r2(Y(0))}" y2="${r2(Y(0))}"/>`;
  s += xAxis(a, o.categories.map((c, i) => ({ x: a.x0 + gw * (i + 0.5), text: c })));
  s += legend(f, o.series.map((se) => ({ cls: se.cls, label: se.label })));
  s += axisLabels(f, o.xLabel ?? '', o.yLabel);
  return s + '</svg>';
}

function legend(f: Frame, items: { cls: string; label: string }[]): string {
  let s = '<g class="legend">';
  let x = f.left;
  for (const it of items) {
    s += `<g class="${esc(it.cls)}"><rect x="${r2(x)}" y="8" width="10" height="10"/></g><text x="${r2(x + 14)}" y="17">${esc(it.label)}</text>`;
    x += 24 + it.label.length * 6.2;
  }
  return s + '</g>';
}

export interface ScatterPoint {
  x: number;
  y: number;
  cls: string;
  label: string;
  /** Text written next to the point (above it, or below with tagBelow). */
  tag?: string;
  tagBelow?: boolean;
  /** Write the tag left of the point. */
  tagLeft?: boolean;
}

export interface ScatterChartOptions {
  id: string;
  title: string;
  points: ScatterPoint[];
  /** A polyline (e.g. the predicted frontier), drawn under the points. */
  line?: { cls: string; label: string; points: { x: number; y: number }[] };
  xLabel: string;
  yLabel: string;
  /** Lowest y drawn: points below sit on the bottom edge, their value in the tag (e.g. a 2-bit model at 10% accuracy). */
  yMin?: number;
  width?: number;
  height?: number;
}

/** Points (and an optional line) on linear axes, with a legend of the point classes. */
export function scatterChart(o: ScatterChartOptions): string {
  const f: Frame = { width: o.width ?? 520, height: o.height ?? 280, left: 56, right: 16, top: 26, bottom: 40 };
  const a = plotArea(f);
  const cut = o.yMin ?? -Infinity;
  const all = [...o.points, ...(o.line?.points ?? [])].filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).map((p) => ({ x: p.x, y: Math.max(cut, p.y) }));
  let xl = Math.min(...all.map((p) => p.x), 0), xh = Math.max(...all.map((p) => p.x), 1);
  let yl = Math.min(...all.map((p) => p.y)), yh = Math.max(...all.map((p) => p.y));
  if (!Number.isFinite(yl)) { yl = 0; yh = 1; }
  if (!(yh > yl)) { yl -= 1; yh += 1; }
  const yp = (yh - yl) * 0.08;
  yl -= yp; yh += yp;
  xh += (xh - xl) * 0.04;
  const xt = niceTicks(xl, xh, 5), yt = niceTicks(yl, yh, 5);
  xl = Math.min(xl, xt[0]); xh = Math.max(xh, xt[xt.length - 1]);
  yl = Math.min(yl, yt[0]); yh = Math.max(yh, yt[yt.length - 1]);
  const X = (v: number): number => a.x0 + ((v - xl) / (xh - xl)) * (a.x1 - a.x0);
  const Y = (v: number): number => a.y0 - ((Math.max(cut, v) - yl) / (yh - yl)) * (a.y0 - a.y1);
  let s = open(f, 'chart-scatter', o.id, o.title);
  s += yAxis(a, yt.map((v) => ({ v, y: Y(v), text: fmtNum(v) })));
  s += xAxis(a, xt.map((v) => ({ x: X(v), text: fmtNum(v) })));
  if (o.line && o.line.points.length > 0) {
    const pts = o.line.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    s += `<polyline class="line ${esc(o.line.cls)}" points="${pts.map((p) => `${r2(X(p.x))},${r2(Y(p.y))}`).join(' ')}"><title>${esc(o.line.label)}</title></polyline>`;
  }
  for (const p of o.points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue;
    const below = p.y < cut;
    s += `<g class="point ${esc(p.cls)}${below ? ' clamped' : ''}"><circle cx="${r2(X(p.x))}" cy="${r2(Y(p.y))}" r="5"><title>${esc(`${p.label}${below ? ` (${fmtNum(p.y)}, below the axis)` : ''}`)}</title></circle>`;
    const tag = below ? `${p.tag ?? ''} ↓${fmtNum(p.y)}` : p.tag;
    if (tag) s += `<text x="${r2(X(p.x) + (p.tagLeft ? -8 : 7))}" y="${r2(Y(p.y) + (p.tagBelow ? 15 : -6))}"${p.tagLeft ? ' text-anchor="end"' : ''}>${esc(tag)}</text>`;
    s += '</g>';
  }
  const seen = new Map<string, string>();
  for (const p of o.points) if (!seen.has(p.cls)) seen.set(p.cls, p.label.replace(/:.*$/, ''));
  const items = [...seen].map(([cls, label]) => ({ cls, label }));
  if (o.line) items.push({ cls: o.line.cls, label: o.line.label });
  s += legend(f, items);
  s += axisLabels(f, o.xLabel, o.yLabel);
  return s + '</svg>';
}

export interface ChannelChartOptions {
  id: string;
  title: string;
  /** Per channel: the bar height (max |x|). */
  values: readonly number[];
  /** Horizontal reference lines (e.g. the median and the outlier threshold). */
  rules: { cls: string; label: string; y: number }[];
  /** Channels drawn as outliers. */
  outliers: readonly number[];
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
}

/** One thin bar per channel (two paths: ordinary and outlier channels) with reference lines. */
export function channelChart(o: ChannelChartOptions): string {
  const f: Frame = { width: o.width ?? 460, height: o.height ?? 200, left: 52, right: 10, top: 10, bottom: 36 };
  const a = plotArea(f);
  const n = o.values.length;
  let top = 0;
  for (const v of o.values) if (Number.isFinite(v) && v > top) top = v;
  for (const r of o.rules) if (Number.isFinite(r.y) && r.y > top) top = r.y;
  if (!(top > 0)) top = 1;
  const ticks = niceTicks(0, top, 4);
  top = Math.max(top, ticks[ticks.length - 1]);
  const Y = (v: number): number => a.y0 - (Math.min(v, top) / top) * (a.y0 - a.y1);
  const w = (a.x1 - a.x0) / Math.max(1, n);
  const out = new Set(o.outliers);
  let dn = '', dout = '';
  for (let i = 0; i < n; i++) {
    const v = o.values[i];
    if (!(v > 0)) continue;
    const seg = `M${r2(a.x0 + i * w)} ${r2(a.y0)}h${r2(Math.max(0.5, w * 0.85))}V${r2(Y(v))}h${r2(-Math.max(0.5, w * 0.85))}Z`;
    if (out.has(i)) dout += seg; else dn += seg;
  }
  let s = open(f, 'chart-channels', o.id, o.title);
  s += yAxis(a, ticks.map((v) => ({ v, y: Y(v), text: fmtNum(v) })));
  s += `<path class="bars" d="${dn}"/><path class="bars outlier" d="${dout}"/>`;
  for (const r of o.rules) {
    if (!Number.isFinite(r.y)) continue;
    s += `<g class="rule ${esc(r.cls)}"><title>${esc(`${r.label}: ${fmtNum(r.y)}`)}</title><line x1="${r2(a.x0)}" x2="${r2(a.x1)}" y1="${r2(Y(r.y))}" y2="${r2(Y(r.y))}"/></g>`;
  }
  s += xAxis(a, niceTicks(0, Math.max(1, n - 1), 5).filter((v) => Number.isInteger(v)).map((v) => ({ x: a.x0 + (v + 0.5) * w, text: String(v) })));
  s += axisLabels(f, o.xLabel, o.yLabel);
  return s + '</svg>';
}
