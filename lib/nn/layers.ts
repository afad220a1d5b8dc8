// Layers: Linear, ReLU, GELU, Tanh, Sigmoid, Softmax, LayerNorm, Flatten, Dropout, Identity.
// Batches are row-major Float32Array [batch, features]; each forward returns a new array and
// keeps what backward needs. Elementwise math runs in float64 and is stored as float32.
import { checkOneOf, checkOptions, checkTyped, rangeError, typeError } from '../errors';
import { kaimingUniform, uniform } from './init';
import { checkBatch, checkShaped, Module, Parameter, Shaped } from './module';
import { matmul } from './ops';
import { getDefaultRng, resolveRng, Rng } from './random';

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number') throw typeError(name, 'a positive integer', v);
  if (!Number.isInteger(v) || v < 1 || v > 2 ** 31) throw rangeError(name, 'a positive integer', String(v));
  return v;
}

function noForward(layer: string): Error {
  return new Error(`${layer}.backward called before forward`);
}

function checkDy(layer: string, dy: Float32Array, want: number): void {
  if (dy.length !== want) throw rangeError('dy', `length ${want} (the ${layer} output of the last forward)`, `Float32Array of length ${dy.length}`);
}

export interface LinearOptions {
  /** Add a bias (default true). */
  bias?: boolean;
  /** Generator for the initial values (default: the manualSeed generator). */
  rng?: Rng | number;
}

/**
 * y = x W^T + b, W [outFeatures, inFeatures] (PyTorch layout), b [outFeatures]. Parameters
 * 'weight' and 'bias', initialised as PyTorch's Linear: U(-1/sqrt(in), 1/sqrt(in)), weight first.
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private x: Float32Array | null = null;
  private batch = 0;
  private scratch: Float32Array | null = null;

  constructor(inFeatures: number, outFeatures: number, opts?: LinearOptions) {
    super();
    this.inFeatures = positiveInt('inFeatures', inFeatures);
    this.outFeatures = positiveInt('outFeatures', outFeatures);
    const o = checkOptions('opts', opts, ['bias', 'rng']) as LinearOptions;
    if (o.bias !== undefined && typeof o.bias !== 'boolean') throw typeError('opts.bias', 'a boolean', o.bias);
    const rng = resolveRng('opts.rng', o.rng);
    this.weight = new Parameter([outFeatures, inFeatures]);
    kaimingUniform(this.weight, inFeatures, { a: Math.sqrt(5), rng });
    this.ownParams.push(['weight', this.weight]);
    if (o.bias ?? true) {
      this.bias = new Parameter([outFeatures]);
      const b = 1 / Math.sqrt(inFeatures);
      uniform(this.bias, -b, b, rng);
      this.ownParams.push(['bias', this.bias]);
    } else this.bias = null;
  }

  forward(x: Float32Array, batch: number): Float32Array {
    checkBatch(x, batch, this.inFeatures);
    this.x = x;
    this.batch = batch;
    const N = this.outFeatures;
    return matmul(x, this.weight.data, batch, this.inFeatures, N, false, true, new Float32Array(batch * N), this.bias?.data);
  }

  backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null {
    const x = this.x;
    if (!x) throw noForward('Linear');
    const B = this.batch, I = this.inFeatures, O = this.outFeatures;
    checkDy('Linear', dy, B * O);
    // dW [O, I] += dy^T [O, B] x [B, I]
    this.scratch ??= new Float32Array(O * I);
    matmul(dy, x, O, B, I, true, false, this.scratch);
    const gw = this.weight.grad, s = this.scratch;
    for (let i = 0; i < gw.length; i++) gw[i] += s[i];
    if (this.bias) {
      const gb = this.bias.grad;
      for (let r = 0; r < B; r++) {
        const o = r * O;
        for (let j = 0; j < O; j++) gb[j] += dy[o + j];
      }
    }
    // dx [B, I] = dy [B, O] x W [O, I]
    return inputGrad ? matmul(dy, this.weight.data, B, O, I, false, false) : null;
  }

  toString(): string {
    return `Linear(in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias !== null})`;
  }
}

/** Base of elementwise activations: keeps the input (or output) for backward. */
abstract class Elementwise extends Module {
  protected saved: Float32Array | null = null;

  protected abstract readonly layerName: string;
  protected abstract fwd(x: Float32Array, y: Float32Array): void;
  /** dx from dy and the saved array. */
  protected abstract bwd(saved: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /** Save the output (true) or the input (false). */
  protected readonly saveOutput: boolean = false;

  forward(x: Float32Array, batch: number): Float32Array {
    checkBatch(x, batch);
    const y = new Float32Array(x.length);
    this.fwd(x, y);
    this.saved = this.saveOutput ? y : x;
    return y;
  }

  backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null {
    const s = this.saved;
    if (!s) throw noForward(this.layerName);
    checkDy(this.layerName, dy, s.length);
    if (!inputGrad) return null;
    const dx = new Float32Array(s.length);
    this.bwd(s, dy, dx);
    return dx;
  }

  toString(): string {
    return `${this.layerName}()`;
  }
}

/** max(x, 0); the gradient at 0 is 0 (as PyTorch). NaN stays NaN. */
export class ReLU extends Elementwise {
  protected readonly layerName = 'ReLU';
  protected fwd(x: Float32Array, y: Float32Array): void {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      y[i] = v > 0 ? v : v === v ? 0 : v;
    }
  }
  protected bwd(x: Float32Array, dy: Float32Array, dx: Float32Array): void {
    for (let i = 0; i < x.length; i++) dx[i] = x[i] > 0 ? dy[i] : 0;
  }
}

export class Tanh extends Elementwise {
  protected readonly layerName = 'Tanh';
  protected override readonly saveOutput = true;
  protected fwd(x: Float32Array, y: Float32Array): void {
    for (let i = 0; i < x.length; i++) y[i] = Math.tanh(x[i]);
  }
  protected bwd(y: Float32Array, dy: Float32Array, dx: Float32Array): void {
    for (let i = 0; i < y.length; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);
  }
}

/** 1 / (1 + exp(-x)). */
export class Sigmoid extends Elementwise {
  protected readonly layerName = 'Sigmoid';
  protected override readonly saveOutput = true;
  protected fwd(x: Float32Array, y: Float32Array): void {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (v >= 0) y[i] = 1 / (1 + Math.exp(-v));
      else {
        const e = Math.exp(v);
        y[i] = e / (1 + e);
      }
    }
  }
  protected bwd(y: Float32Array, dy: Float32Array, dx: Float32Array): void {
    for (let i = 0; i < y.length; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);
  }
}

const INV_SQRT_PI = 0.5641895835477563;
const TWO_OVER_SQRT_PI = 1.1283791670955126;

/** erf for |x| < 2.5: 2/sqrt(pi) exp(-x^2) sum 2^n x^(2n+1) / (2n+1)!! (positive terms). */
function erfSeries(x: number): number {
  const x2 = x * x;
  let t = x;
  let s = x;
  const a = Math.abs(x);
  for (let n = 1; n < 200; n++) {
    t *= (2 * x2) / (2 * n + 1);
    s += t;
    if (Math.abs(t) <= a * 1e-17 || Math.abs(t) <= Math.abs(s) * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * s;
}

/** erfc for x >= 2.5: continued fraction exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))). */
function erfcCf(x: number): number {
  let f = x;
  for (let n = 40; n >= 1; n--) f = x + n / 2 / f;
  return (Math.exp(-x * x) * INV_SQRT_PI) / f;
}

/** The error function (absolute error below 1e-15). */
export function erf(x: number): number {
  if (x !== x) return NaN;
  if (x >= 2.5) return 1 - erfcCf(x);
  if (x <= -2.5) return erfcCf(-x) - 1;
  return erfSeries(x);
}

/** The complementary error function 1 - erf(x), with relative accuracy in the right tail. */
export function erfc(x: number): number {
  if (x !== x) return NaN;
  if (x >= 2.5) return erfcCf(x);
  if (x <= -2.5) return 2 - erfcCf(-x);
  return 1 - erfSeries(x);
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 0.3989422804014327;
const K_TANH = Math.sqrt(2 / Math.PI);

/**
 * GELU: x * Phi(x) with the exact normal CDF (approximate 'none', PyTorch's default), or the tanh
 * approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) with approximate 'tanh'.
 */
export class GELU extends Elementwise {
  protected readonly layerName = 'GELU';
  readonly approximate: 'none' | 'tanh';

  constructor(opts?: { approximate?: 'none' | 'tanh' }) {
    super();
    const o = checkOptions('opts', opts, ['approximate']) as { approximate?: string };
    this.approximate = o.approximate === undefined ? 'none' : checkOneOf('opts.approximate', o.approximate, ['none', 'tanh'] as const);
  }

  protected fwd(x: Float32Array, y: Float32Array): void {
    if (this.approximate === 'tanh') {
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        y[i] = 0.5 * v * (1 + Math.tanh(K_TANH * (v + 0.044715 * v * v * v)));
      }
    } else {
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        y[i] = 0.5 * v * erfc(-v * SQRT1_2);
      }
    }
  }

  protected bwd(x: Float32Array, dy: Float32Array, dx: Float32Array): void {
    if (this.approximate === 'tanh') {
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        const t = Math.tanh(K_TANH * (v + 0.044715 * v * v * v));
        dx[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * K_TANH * (1 + 3 * 0.044715 * v * v));
      }
    } else {
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        dx[i] = dy[i] * (0.5 * erfc(-v * SQRT1_2) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
      }
    }
  }

  override toString(): string {
    return `GELU(approximate='${this.approximate}')`;
  }
}

/** Passes x through unchanged (returns x itself). */
export class Identity extends Module {
  private n = -1;
  forward(x: Float32Array, batch: number): Float32Array {
    checkBatch(x, batch);
    this.n = x.length;
    return x;
  }
  backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null {
    if (this.n < 0) throw noForward('Identity');
    checkDy('Identity', dy, this.n);
    return inputGrad ? dy : null;
  }
  toString(): string {
    return 'Identity()';
  }
}

/** Features of one row of a batch of this shape: the product of the dimensions after the first. */
export function flatFeatures(shape: readonly number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}

/**
 * Flatten: batches are already [batch, features] rows, so this passes data through unchanged
 * (returns x itself). It exists so that models keep PyTorch's layer positions (and with them the
 * state dict names) when converted, e.g. Sequential(Flatten(), Linear(784, 512), ...).
 */
export class Flatten extends Identity {
  /** The same values as [batch, product of the other dimensions]. */
  override forwardShaped(x: Shaped): Shaped {
    const { data, shape, batch } = checkShaped('x', x);
    const y = this.forward(checkTyped<Float32Array>('x.data', data, [Float32Array]), batch);
    return { data: y, shape: [batch, flatFeatures(shape)] };
  }
  override toString(): string {
    return 'Flatten(start_dim=1, end_dim=-1)';
  }
}

/** Softmax over the features of each row (PyTorch Softmax(dim=-1)). */
export class Softmax extends Module {
  private y: Float32Array | null = null;
  private features = 0;

  forward(x: Float32Array, batch: number): Float32Array {
    const F = checkBatch(x, batch);
    const y = new Float32Array(x.length);
    for (let r = 0; r < batch; r++) {
      const o = r * F;
      let m = -Infinity;
      for (let j = 0; j < F; j++) if (x[o + j] > m) m = x[o + j];
      let s = 0;
      for (let j = 0; j < F; j++) s += Math.exp(x[o + j] - m);
      const inv = 1 / s;
      for (let j = 0; j < F; j++) y[o + j] = Math.exp(x[o + j] - m) * inv;
    }
    this.y = y;
    this.features = F;
    return y;
  }

  backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null {
    const y = this.y;
    if (!y) throw noForward('Softmax');
    checkDy('Softmax', dy, y.length);
    if (!inputGrad) return null;
    const F = this.features;
    const dx = new Float32Array(y.length);
    for (let o = 0; o < y.length; o += F) {
      let dot = 0;
      for (let j = 0; j < F; j++) dot += dy[o + j] * y[o + j];
      for (let j = 0; j < F; j++) dx[o + j] = y[o + j] * (dy[o + j] - dot);
    }
    return dx;
  }

  toString(): string {
    return 'Softmax(dim=-1)';
  }
}

export interface LayerNormOptions {
  /** Default 1e-5. */
  eps?: number;
  /** Learnable 'weight' (ones) and 'bias' (zeros); default true. */
  elementwiseAffine?: boolean;
}

/** LayerNorm over the features of each row: (x - mean) / sqrt(var + eps) * weight + bias (biased var). */
export class LayerNorm extends Module {
  readonly normalizedShape: number;
  readonly eps: number;
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  private xhat: Float32Array | null = null;
  private rstd: Float64Array | null = null;

  constructor(normalizedShape: number, opts?: LayerNormOptions) {
    super();
    this.normalizedShape = positiveInt('normalizedShape', normalizedShape);
    const o = checkOptions('opts', opts, ['eps', 'elementwiseAffine']) as LayerNormOptions;
    const eps = o.eps ?? 1e-5;
    if (typeof eps !== 'number') throw typeError('opts.eps', 'a positive number', eps);
    if (!(eps > 0) || !Number.isFinite(eps)) throw rangeError('opts.eps', 'a positive number', String(eps));
    this.eps = eps;
    const affine = o.elementwiseAffine ?? true;
    if (typeof affine !== 'boolean') throw typeError('opts.elementwiseAffine', 'a boolean', affine);
    if (affine) {
      this.weight = new Parameter([normalizedShape]);
      this.weight.data.fill(1);
      this.bias = new Parameter([normalizedShape]);
      this.ownParams.push(['weight', this.weight], ['bias', this.bias]);
    } else {
      this.weight = null;
      this.bias = null;
    }
  }

  forward(x: Float32Array, batch: number): Float32Array {
    const F = checkBatch(x, batch, this.normalizedShape);
    const y = new Float32Array(x.length);
    const xhat = new Float32Array(x.length);
    const rstd = new Float64Array(batch);
    const w = this.weight?.data, b = this.bias?.data;
    for (let r = 0; r < batch; r++) {
      const o = r * F;
      let s = 0;
      for (let j = 0; j < F; j++) s += x[o + j];
      const mean = s / F;
      let v = 0;
      for (let j = 0; j < F; j++) {
        const d = x[o + j] - mean;
        v += d * d;
      }
      const rs = 1 / Math.sqrt(v / F + this.eps);
      rstd[r] = rs;
      for (let j = 0; j < F; j++) {
        const h = (x[o + j] - mean) * rs;
        xhat[o + j] = h;
        y[o + j] = w && b ? h * w[j] + b[j] : h;
      }
    }
    this.xhat = xhat;
    this.rstd = rstd;
    return y;
  }

  backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null {
    const xhat = this.xhat, rstd = this.rstd;
    if (!xhat || !rstd) throw noForward('LayerNorm');
    checkDy('LayerNorm', dy, xhat.length);
    const F = this.normalizedShape, B = rstd.length;
    const w = this.weight?.data;
    if (this.weight && this.bias) {
      const gw = this.weight.grad, gb = this.bias.grad;
      for (let r = 0; r < B; r++) {
        const o = r * F;
        for (let j = 0; j < F; j++) {
          gw[j] += dy[o + j] * xhat[o + j];
          gb[j] += dy[o + j];
        }
      }
    }
    if (!inputGrad) return null;
    const dx = new Float32Array(xhat.length);
    for (let r = 0; r < B; r++) {
      const o = r * F;
      let s1 = 0, s2 = 0;
      for (let j = 0; j < F; j++) {
        const g = w ? dy[o + j] * w[j] : dy[o + j];
        s1 += g;
        s2 += g * xhat[o + j];
      }
      const m1 = s1 / F, m2 = s2 / F, rs = rstd[r];
      for (let j = 0; j < F; j++) {
        const g = w ? dy[o + j] * w[j] : dy[o + j];
        dx[o + j] = rs * (g - m1 - xhat[o + j] * m2);
      }
    }
    return dx;
  }

  toString(): string {
    return `LayerNorm((${this.normalizedShape},), eps=${this.eps}, elementwise_affine=${this.weight !== null})`;
  }
}

/**
 * Dropout: in training mode zeroes each value with probability p and scales the rest by
 * 1 / (1 - p); in eval mode (and with p = 0) the identity, returning x itself. The mask comes from opts.rng (default: the manualSeed
 * generator at the time of each forward).
 */
export class Dropout extends Module {
  readonly p: number;
  private readonly rng: Rng | null;
  private mask: Uint8Array | null = null;
  private n = -1;

  constructor(p = 0.5, opts?: { rng?: Rng | number }) {
    super();
    if (typeof p !== 'number') throw typeError('p', 'a number between 0 and 1', p);
    if (!(p >= 0 && p <= 1)) throw rangeError('p', 'a number between 0 and 1', String(p));
    this.p = p;
    const o = checkOptions('opts', opts, ['rng']) as { rng?: Rng | number };
    this.rng = o.rng === undefined ? null : resolveRng('opts.rng', o.rng);
  }

  forward(x: Float32Array, batch: number): Float32Array {
    checkBatch(x, batch);
    this.n = x.length;
    if (!this.training || this.p === 0) {
      this.mask = null;
      return x;
    }
    const rng = this.rng ?? getDefaultRng();
    const mask = new Uint8Array(x.length);
    const y = new Float32Array(x.length);
    const scale = this.p === 1 ? 0 : 1 / (1 - this.p);
    for (let i = 0; i < x.length; i++) {
      if (rng.next() >= this.p) {
        mask[i] = 1;
        y[i] = x[i] * scale;
      }
    }
    this.mask = mask;
    return y;
  }

  backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null {
    if (this.n < 0) throw noForward('Dropout');
    checkDy('Dropout', dy, this.n);
    if (!inputGrad) return null;
    const mask = this.mask;
    if (!mask) return dy;
    const scale = this.p === 1 ? 0 : 1 / (1 - this.p);
    const dx = new Float32Array(dy.length);
    for (let i = 0; i < dy.length; i++) if (mask[i]) dx[i] = dy[i] * scale;
    return dx;
  }

  toString(): string {
    return `Dropout(p=${this.p})`;
  }
}
