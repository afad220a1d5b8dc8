// Shared by the tests: a seeded uniform [0, 1) stream (mulberry32, the generator of nn.Rng).
import { Rng } from '../lib/nn/random';

export function rng(seed: number): () => number {
  const r = new Rng(seed >>> 0);
  return () => r.next();
}
