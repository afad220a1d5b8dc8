// Shared by the tests: a seeded uniform [0, 1) stream (mulberry32, the generator of nn.Rng).
import { Rng } from '../lib/nn/random';

export function rng(seed: number): () => number {
  const r = new Rng(seed >>> 0);
  return () => r.next();
}

// A seeded [0, 1) stream from a 32-bit linear congruential generator (the kernel tests' data).
export function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
