// The HTML report of an analysis (self-contained: inline CSS and SVG, no script, no request).
export { renderReport, writeReport, reportJSON } from './html';
export type { ReportOptions } from './html';
