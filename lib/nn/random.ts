// Small deterministic PRNG (mulberry32) for reproducible initialisation, dropout and shuffling.
// Not for cryptography. The same seed gives the same stream on every platform.
import { checkInt, typeError } from '../errors';

/** mulberry32: 32-bit state, period 2^32, good enough statistics for initialisation and shuffling. */
export class Rng {
  private state: number;

  /** seed: an integer in [0, 2^32); the same seed gives the same stream. */
  constructor(seed = 0) {
    this.state = checkInt('seed', seed, 0, 0xffffffff) >>> 0;
  }

  /** The next 32-bit unsigned integer. */
  nextUint32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n) for an integer n in [1, 2^32], without modulo bias. */
  int(n: number): number {
    checkInt('n', n, 1, 4294967296);
    if (n === 1) return 0;
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const r = this.nextUint32();
      if (r < limit) return r % n;
    }
  }

  /** Standard normal (Box-Muller; one value per call). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Shuffles a in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A new generator seeded from this one (for independent sub-streams). */
  fork(): Rng {
    return new Rng(this.nextUint32());
  }
}

let defaultRng = new Rng(0);

/**
 * Reseeds the default generator, used by layers and initialisers given no rng (as
 * torch.manual_seed). The default generator starts seeded with 0, so runs are reproducible.
 */
export function manualSeed(seed: number): void {
  defaultRng = new Rng(seed);
}

/** The default generator (see manualSeed). */
export function getDefaultRng(): Rng {
  return defaultRng;
}

/** rng option: an Rng, a seed, or undefined for the default generator. */
export function resolveRng(name: string, rng: unknown): Rng {
  if (rng === undefined || rng === null) return defaultRng;
  if (rng instanceof Rng) return rng;
  if (typeof rng === 'number') return new Rng(rng);
  throw typeError(name, 'an Rng or an integer seed', rng);
}
