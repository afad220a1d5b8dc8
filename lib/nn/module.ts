// Module base class, parameters and the state dict (PyTorch's naming: '0.weight', '1.bias', ...).
import { checkInt, checkOptions, checkTyped, describe, isTypedOf, rangeError, typeError } from '../errors';

/** A trainable tensor: values, accumulated gradient (same length) and shape. */
export class Parameter {
  readonly data: Float32Array;
  /** Accumulated by backward; cleared by zeroGrad. */
  readonly grad: Float32Array;
  readonly shape: readonly number[];
  /** Optimizers skip parameters with requiresGrad false (their grad is still computed). */
  requiresGrad = true;

  constructor(shape: readonly number[], data?: Float32Array) {
    this.shape = Object.freeze(shape.slice());
    const n = shape.reduce((a, b) => a * b, 1);
    if (data !== undefined && data.length !== n) throw rangeError('data', `length ${n}`, describe(data));
    this.data = data ?? new Float32Array(n);
    this.grad = new Float32Array(n);
  }

  get numel(): number {
    return this.data.length;
  }
}

/** A state dict entry, as stateDict() returns and saveSafetensors() takes. */
export interface StateTensor {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

/** What loadStateDict accepts per name: a Float32Array, or { data, shape?, dtype? }. */
export type StateEntry = Float32Array | { data: ArrayBufferView; shape?: readonly number[]; dtype?: string };

export interface LoadStateDictOptions {
  /** Missing or unexpected names are errors (default true); else they are returned. */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

const F32 = [Float32Array] as const;

/** Checks a batch input: a Float32Array of batch rows (of `features` values when given). */
export function checkBatch(x: unknown, batch: unknown, features?: number): number {
  const xx = checkTyped<Float32Array>('x', x, F32);
  const b = checkInt('batch', batch, 0, 2 ** 31);
  if (features !== undefined) {
    if (xx.length !== b * features) throw rangeError('x', `length batch * ${features} = ${b * features}`, describe(xx));
    return features;
  }
  if (b === 0) {
    if (xx.length !== 0) throw rangeError('x', 'length 0 for batch 0', describe(xx));
    return 0;
  }
  if (xx.length % b !== 0) throw rangeError('x', `a length divisible by batch ${b}`, describe(xx));
  return xx.length / b;
}

/**
 * A batch with its shape, row-major, shape[0] the batch: float32 values, or int32 ids for layers
 * that take them (an Embedding). What forwardShaped takes and returns.
 */
export interface Shaped {
  data: Float32Array | Int32Array;
  shape: readonly number[];
}

/** Checks a Shaped batch: a Float32Array or Int32Array, a shape of at least one dimension whose product is its length. */
export function checkShaped(name: string, x: unknown): { data: Float32Array | Int32Array; shape: number[]; batch: number } {
  if (typeof x !== 'object' || x === null || ArrayBuffer.isView(x)) throw typeError(name, 'a batch { data, shape }', x);
  const data = checkTyped<Float32Array | Int32Array>(`${name}.data`, (x as Shaped).data, [Float32Array, Int32Array]);
  const sh = (x as Shaped).shape;
  if (!Array.isArray(sh) || sh.length < 1 || sh.length > 64 || sh.some((d) => !Number.isInteger(d) || d < 0 || d > 2 ** 31)) {
    throw typeError(`${name}.shape`, 'an array of 1 to 64 dimensions (integers >= 0), the batch first', sh);
  }
  const n = sh.reduce((a: number, b: number) => a * b, 1);
  if (n !== data.length) throw rangeError(`${name}.data`, `length ${n} (shape [${sh.join(', ')}])`, describe(data));
  return { data, shape: sh.slice(), batch: sh[0] };
}

/** Base class of layers. Inputs and outputs are row-major Float32Array batches [batch, features]. */
export abstract class Module {
  /** Training mode (Dropout is active); set by train() / eval(). */
  training = true;
  protected readonly ownParams: [string, Parameter][] = [];
  protected readonly childModules: [string, Module][] = [];

  /**
   * Output for a batch of `batch` rows. The layer keeps what backward needs (a reference to x,
   * not a copy: do not modify x before backward). Returns a new array, except Flatten, Identity
   * and Dropout in eval mode, which return x itself.
   */
  abstract forward(x: Float32Array, batch: number): Float32Array;

  /**
   * forward for a batch with its shape. The default takes float32 data, runs forward(data,
   * shape[0]) and keeps the shape when the length is unchanged (elementwise layers), else returns
   * rows [batch, length / batch]. Layers that need more than rows (a Conv2d's [N, C, H, W]) or
   * take int32 ids (an Embedding) override it; forward(x, batch) stays the row API.
   */
  forwardShaped(x: Shaped): Shaped {
    const { data, shape, batch } = checkShaped('x', x);
    const xf = checkTyped<Float32Array>('x.data', data, F32);
    const y = this.forward(xf, batch);
    return { data: y, shape: y.length === xf.length ? shape : [batch, batch === 0 ? 0 : y.length / batch] };
  }

  /**
   * Given dL/dy for the last forward's output, adds dL/dparam to every parameter's grad and
   * returns dL/dx. With { inputGrad: false } dL/dx is not computed (saves work in the first
   * layer) and an empty array is returned.
   */
  backward(dy: Float32Array, opts?: { inputGrad?: boolean }): Float32Array {
    checkTyped<Float32Array>('dy', dy, F32);
    const inputGrad = checkOptions('opts', opts, ['inputGrad']).inputGrad ?? true;
    if (typeof inputGrad !== 'boolean') throw typeError('opts.inputGrad', 'a boolean', inputGrad);
    return this.backwardImpl(dy, inputGrad) ?? new Float32Array(0);
  }

  /**
   * What layers implement (backward checks dy's type first): add the parameter gradients, and
   * return dL/dx, or null when !inputGrad. Composite modules call their children's backwardImpl.
   */
  abstract backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null;

  /** Sets training mode on this module and its children. */
  train(mode = true): this {
    if (typeof mode !== 'boolean') throw typeError('mode', 'a boolean', mode);
    this.training = mode;
    for (const [, m] of this.childModules) m.train(mode);
    return this;
  }

  /** Evaluation mode (Dropout is the identity). */
  eval(): this {
    return this.train(false);
  }

  /** Direct children, named ('0', '1', ... in Sequential). */
  children(): [string, Module][] {
    return this.childModules.slice();
  }

  /** Every parameter with its dotted name, this module's own first, then its children's, in order. */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this.ownParams) out.push([prefix + n, p]);
    for (const [n, m] of this.childModules) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Number of trainable values. */
  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.numel, 0);
  }

  /** Clears every parameter's grad. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad.fill(0);
  }

  /** Copies of every parameter by name, ready for saveSafetensors. */
  stateDict(): Record<string, StateTensor> {
    const out: Record<string, StateTensor> = {};
    for (const [n, p] of this.namedParameters()) out[n] = { dtype: 'F32', shape: p.shape.slice(), data: p.data.slice() };
    return out;
  }

  /**
   * Copies values into the parameters by name (a Record or Map, e.g. loadSafetensors(path).tensors).
   * Every entry is checked (Float32 data, shape, length) before anything is copied.
   */
  loadStateDict(state: Record<string, StateEntry> | Map<string, StateEntry>, opts?: LoadStateDictOptions): LoadStateDictResult {
    if (typeof state !== 'object' || state === null || ArrayBuffer.isView(state) || Array.isArray(state)) {
      throw typeError('state', 'a Record or Map of tensors', state);
    }
    const strict = checkOptions('opts', opts, ['strict']).strict ?? true;
    if (typeof strict !== 'boolean') throw typeError('opts.strict', 'a boolean', strict);
    const entries = state instanceof Map ? [...state.entries()] : Object.entries(state);
    const given = new Map<string, StateEntry>(entries);
    const params = this.namedParameters();
    const names = new Set(params.map(([n]) => n));
    const missingKeys = params.map(([n]) => n).filter((n) => !given.has(n));
    const unexpectedKeys = [...given.keys()].filter((n) => !names.has(n));
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      const parts: string[] = [];
      if (missingKeys.length) parts.push(`missing ${missingKeys.map((k) => `'${k}'`).join(', ')}`);
      if (unexpectedKeys.length) parts.push(`unexpected ${unexpectedKeys.map((k) => `'${k}'`).join(', ')}`);
      throw new Error(`loadStateDict: the state does not match the module's parameters: ${parts.join('; ')}`);
    }
    const plan: [Parameter, Float32Array][] = [];
    for (const [n, p] of params) {
      const e = given.get(n);
      if (e === undefined) continue;
      const field = `state['${n}']`;
      let data: unknown;
      if (isTypedOf(e, 'Float32Array')) data = e;
      else if (typeof e === 'object' && e !== null && !ArrayBuffer.isView(e)) {
        if (e.dtype !== undefined && e.dtype !== 'F32') {
          throw rangeError(`${field}.dtype`, "'F32'", typeof e.dtype === 'string' ? `'${e.dtype}'` : describe(e.dtype));
        }
        if (e.shape !== undefined) {
          const same = Array.isArray(e.shape) && e.shape.length === p.shape.length && e.shape.every((d, i) => d === p.shape[i]);
          if (!same) throw rangeError(`${field}.shape`, `[${p.shape.join(', ')}]`, Array.isArray(e.shape) ? `[${e.shape.join(', ')}]` : describe(e.shape));
        }
        data = e.data;
      } else throw typeError(field, 'a Float32Array or { data, shape?, dtype? }', e);
      const d = checkTyped<Float32Array>(isTypedOf(e, 'Float32Array') ? field : `${field}.data`, data, F32);
      if (d.length !== p.numel) throw rangeError(isTypedOf(e, 'Float32Array') ? field : `${field}.data`, `length ${p.numel} (shape [${p.shape.join(', ')}])`, describe(d));
      plan.push([p, d]);
    }
    for (const [p, d] of plan) p.data.set(d);
    return { missingKeys, unexpectedKeys };
  }

  /** One-line description, e.g. "Linear(in_features=784, out_features=512, bias=true)". */
  abstract toString(): string;
}
