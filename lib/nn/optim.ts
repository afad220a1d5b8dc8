// Optimizers with PyTorch's update rules: SGD (momentum, dampening, Nesterov, weight decay),
// Adam and AdamW. State is float32 per parameter; the arithmetic runs in float64.
import { checkOptions, rangeError, typeError } from '../errors';
import { Module, Parameter } from './module';

function num(name: string, v: unknown, dflt: number, lo: number, hi = Infinity, loOpen = false): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw typeError(name, `a number ${loOpen ? '>' : '>='} ${lo}`, v);
  if (!(loOpen ? v > lo : v >= lo) || !(v <= hi) || !Number.isFinite(v)) {
    throw rangeError(name, hi === Infinity ? `a finite number ${loOpen ? '>' : '>='} ${lo}` : `a number in ${loOpen ? '(' : '['}${lo}, ${hi})`, String(v));
  }
  return v;
}

function paramList(params: unknown): Parameter[] {
  if (params instanceof Module) return params.parameters();
  if (Array.isArray(params) && params.every((p) => p instanceof Parameter)) return params.slice();
  throw typeError('params', 'a Module or an Array of Parameter', params);
}

export abstract class Optimizer {
  readonly params: readonly Parameter[];
  /** Learning rate; may be changed between steps (schedules). */
  lr: number;
  /** Steps taken. */
  stepCount = 0;

  constructor(params: Module | Parameter[], lr: number) {
    this.params = paramList(params);
    this.lr = lr;
  }

  /** Updates every parameter (with requiresGrad) from its grad. */
  step(): void {
    if (typeof this.lr !== 'number' || !(this.lr >= 0) || !Number.isFinite(this.lr)) {
      throw rangeError('optimizer.lr', 'a finite number >= 0', String(this.lr));
    }
    this.stepCount++;
    this.params.forEach((p, i) => {
      if (p.requiresGrad) this.update(p, i);
    });
  }

  /** Clears the grads of the optimizer's parameters. */
  zeroGrad(): void {
    for (const p of this.params) p.grad.fill(0);
  }

  protected abstract update(p: Parameter, index: number): void;
}

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/**
 * torch.optim.SGD: g = grad + weightDecay * p; with momentum, buf = g on the first step, then
 * buf = momentum * buf + (1 - dampening) * g, and g = buf (or g + momentum * buf with Nesterov);
 * p -= lr * g.
 */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private readonly bufs: (Float32Array | null)[];

  constructor(params: Module | Parameter[], opts?: SGDOptions) {
    const o = checkOptions('opts', opts, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov']) as SGDOptions;
    super(params, num('opts.lr', o.lr, 0.01, 0));
    this.momentum = num('opts.momentum', o.momentum, 0, 0);
    this.dampening = num('opts.dampening', o.dampening, 0, 0);
    this.weightDecay = num('opts.weightDecay', o.weightDecay, 0, 0);
    if (o.nesterov !== undefined && typeof o.nesterov !== 'boolean') throw typeError('opts.nesterov', 'a boolean', o.nesterov);
    this.nesterov = o.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw rangeError('opts.nesterov', 'false unless momentum > 0 and dampening is 0', 'true');
    }
    this.bufs = this.params.map(() => null);
  }

  protected update(p: Parameter, index: number): void {
    const W = p.data, G = p.grad, lr = this.lr, wd = this.weightDecay, mu = this.momentum, n = W.length;
    if (mu === 0) {
      for (let i = 0; i < n; i++) W[i] -= lr * (G[i] + wd * W[i]);
      return;
    }
    let buf = this.bufs[index];
    const first = buf === null;
    if (!buf) buf = this.bufs[index] = new Float32Array(n);
    const B = buf, damp = 1 - this.dampening, nesterov = this.nesterov;
    for (let i = 0; i < n; i++) {
      const gi = G[i] + wd * W[i];
      const b = Math.fround(first ? gi : mu * B[i] + damp * gi);
      B[i] = b;
      W[i] -= lr * (nesterov ? gi + mu * b : b);
    }
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/**
 * torch.optim.Adam: g = grad + weightDecay * p (L2); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 */
export class Adam extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  protected readonly decoupled: boolean = false;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  constructor(params: Module | Parameter[], opts?: AdamOptions) {
    const o = checkOptions('opts', opts, ['lr', 'betas', 'eps', 'weightDecay']) as AdamOptions;
    super(params, num('opts.lr', o.lr, 1e-3, 0));
    const betas = o.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) throw typeError('opts.betas', 'an Array of two numbers in [0, 1)', betas);
    this.beta1 = num('opts.betas[0]', betas[0], 0.9, 0, 1 - Number.EPSILON / 2);
    this.beta2 = num('opts.betas[1]', betas[1], 0.999, 0, 1 - Number.EPSILON / 2);
    this.eps = num('opts.eps', o.eps, 1e-8, 0);
    this.weightDecay = num('opts.weightDecay', o.weightDecay, this.defaultWeightDecay(), 0);
    this.m = this.params.map((p) => new Float32Array(p.numel));
    this.v = this.params.map((p) => new Float32Array(p.numel));
  }

  protected defaultWeightDecay(): number {
    return 0;
  }

  protected update(p: Parameter, index: number): void {
    const W = p.data, G = p.grad, M = this.m[index], V = this.v[index], n = W.length;
    const b1 = this.beta1, b2 = this.beta2, c1 = 1 - b1, c2 = 1 - b2, eps = this.eps, t = this.stepCount;
    const stepSize = this.lr / (1 - b1 ** t);
    const bc2 = Math.sqrt(1 - b2 ** t);
    const wd = this.weightDecay;
    if (this.decoupled && wd !== 0) {
      const shrink = 1 - this.lr * wd;
      for (let i = 0; i < n; i++) W[i] *= shrink;
    }
    const l2 = this.decoupled ? 0 : wd;
    // Local aliases and Math.fround (the float32 value just stored) keep this loop fast in V8.
    for (let i = 0; i < n; i++) {
      const gi = l2 === 0 ? G[i] : G[i] + l2 * W[i];
      const mi = Math.fround(b1 * M[i] + c1 * gi);
      const vi = Math.fround(b2 * V[i] + c2 * gi * gi);
      M[i] = mi;
      V[i] = vi;
      W[i] -= (stepSize * mi) / (Math.sqrt(vi) / bc2 + eps);
    }
  }
}

/** torch.optim.AdamW: Adam with decoupled weight decay p *= 1 - lr * weightDecay (default 0.01). */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;

  protected override defaultWeightDecay(): number {
    return 0.01;
  }
}
