// Sequential: modules applied in order; children named '0', '1', ... as in PyTorch.
import { typeError } from '../errors';
import { checkBatch, checkShaped, Module, Shaped } from './module';

export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => this.add(m, `modules[${i}]`));
  }

  /** Appends a module (named by its position). */
  add(m: Module, name = 'module'): this {
    if (!(m instanceof Module)) throw typeError(name, 'a Module', m);
    this.childModules.push([String(this.childModules.length), m]);
    return this;
  }

  get length(): number {
    return this.childModules.length;
  }

  /** The module at position i. */
  at(i: number): Module | undefined {
    return this.childModules.at(i)?.[1];
  }

  /** The modules in order. */
  get modules(): Module[] {
    return this.childModules.map(([, m]) => m);
  }

  forward(x: Float32Array, batch: number): Float32Array {
    checkBatch(x, batch);
    let y = x;
    for (const [, m] of this.childModules) y = m.forward(y, batch);
    return y;
  }

  /** Each module's forwardShaped in turn (shapes and int32 ids flow between them). */
  override forwardShaped(x: Shaped): Shaped {
    const c = checkShaped('x', x);
    let y: Shaped = { data: c.data, shape: c.shape };
    for (const [, m] of this.childModules) y = m.forwardShaped(y);
    return y;
  }

  backwardImpl(dy: Float32Array, inputGrad: boolean): Float32Array | null {
    let g: Float32Array | null = dy;
    const ms = this.childModules;
    for (let i = ms.length - 1; i >= 0; i--) {
      g = ms[i][1].backwardImpl(g as Float32Array, inputGrad || i > 0);
    }
    return inputGrad ? g : null;
  }

  toString(): string {
    if (this.childModules.length === 0) return 'Sequential()';
    const lines = this.childModules.map(([n, m]) => `  (${n}): ${m.toString().split('\n').join('\n  ')}`);
    return `Sequential(\n${lines.join('\n')}\n)`;
  }
}
