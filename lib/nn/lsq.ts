// The arithmetic of PyTorch 1.13's learnable fake-quantize ops (LSQ / LSQ+:
// torch._fake_quantize_learnable_per_tensor_affine / _per_channel_affine and their backward), in
// one place. Everything is float32 as PyTorch's scalar CPU kernels compute it (no fused
// multiply-add; see docs/qat.md); the native kernels must match lsqGradOne bit for bit, and the
// per-group sums within the bound documented there.
import { roundHalfEven } from '../qparams';

const f = Math.fround;

/** The zero point both learnable ops' forward uses: round half to even (std::nearbyint / torch.round), then clamp. */
export function lsqForwardZeroPoint(z: number, qmin: number, qmax: number): number {
  const r = roundHalfEven(f(z));
  return r < qmin ? qmin : r > qmax ? qmax : r;
}

/**
 * The zero point the backward uses. Per channel: as the forward. Per tensor, PyTorch 1.13 computes
 * float32 z + 0.5, clamps it to [qmin, qmax] and truncates toward zero, so .5 ties round up
 * (2.5 -> 3 where the forward has 2) and -0.7 becomes 0 (the forward: -1).
 */
export function lsqBackwardZeroPoint(z: number, qmin: number, qmax: number, perChannel: boolean): number {
  if (perChannel) return lsqForwardZeroPoint(z, qmin, qmax);
  let v = f(f(z) + 0.5);
  v = v < qmin ? qmin : v > qmax ? qmax : v;
  return Math.trunc(v) + 0; // + 0: never -0
}

/**
 * _LearnableFakeQuantize(use_grad_scaling=True)'s factor 1 / sqrt(numel * qmax) (numel: the whole
 * input's element count), rounded to float32 as the kernels take it; 1 without grad scaling.
 */
export function lsqGradFactor(numel: number, qmax: number, gradScaling: boolean): number {
  if (!gradScaling) return 1;
  return f(1 / Math.sqrt(numel * qmax));
}

/**
 * One element of the backward, with s the scale, inv = float32(1 / s), zb the backward zero point
 * and gf the grad factor: [dx, dScale term, dZeroPoint term], float32 values.
 *   q = nearbyint(float32(zb + float32(x * inv)))     (zb added before rounding, unlike the forward)
 *   q < qmin:  dx = dy * 0, dScale = (dy * (qmin - zb)) * gf, dZero = ((-dy) * s) * gf
 *   q > qmax:  dx = dy * 0, dScale = (dy * (qmax - zb)) * gf, dZero = ((-dy) * s) * gf
 *   else:      dx = dy,     dScale = ((dy * (xfq - x)) * inv) * gf with xfq = (q - zb) * s, dZero = 0
 * (each product and difference rounded to float32; dy * 0 is -0 for a negative dy, as in PyTorch).
 */
export function lsqGradOne(x: number, dy: number, s: number, inv: number, zb: number, qmin: number, qmax: number, gf: number): [number, number, number] {
  const q = roundHalfEven(f(zb + f(x * inv)));
  if (q < qmin || q > qmax) {
    const d = q < qmin ? qmin - zb : qmax - zb;
    return [dy * 0, f(f(dy * d) * gf), f(f(-dy * s) * gf)];
  }
  const xfq = f((q - zb) * s);
  return [dy, f(f(f(dy * f(xfq - x)) * inv) * gf), 0];
}

/** A [outer, axisDim, inner] view: per tensor is { outer: 1, axisDim: 1, inner: n }. */
export interface LsqLayout {
  outer: number;
  axisDim: number;
  inner: number;
}

/**
 * The backward over a tensor: per element as lsqGradOne (scale[g], zb[g] for the element's group
 * g = its index along the axis; one group per tensor), dx written when given, and the dScale /
 * dZeroPoint terms added per group in float64 into dScale / dZero (the caller rounds the sums to
 * float32 once). The inputs must be finite (the modules check).
 */
export function lsqBackward(
  x: Float32Array, dy: Float32Array, scale: Float32Array, zb: ArrayLike<number>, L: LsqLayout, qmin: number, qmax: number, gf: number,
  dx: Float32Array | null, dScale: Float64Array, dZero: Float64Array,
): void {
  const { outer, axisDim, inner } = L;
  for (let o = 0; o < outer; o++) {
    for (let a = 0; a < axisDim; a++) {
      const s = scale[a];
      const inv = f(1 / s);
      const z = zb[a];
      const dsmall = qmin - z;
      const dbig = qmax - z;
      let ss = 0;
      let sz = 0;
      const base = (o * axisDim + a) * inner;
      for (let i = base; i < base + inner; i++) {
        const xi = x[i];
        const g = dy[i];
        const q = roundHalfEven(f(z + f(xi * inv)));
        if (q < qmin || q > qmax) {
          if (dx) dx[i] = g * 0;
          ss += f(f(g * (q < qmin ? dsmall : dbig)) * gf);
          sz += f(f(-g * s) * gf);
        } else {
          if (dx) dx[i] = g;
          ss += f(f(f(g * f(f((q - z) * s) - xi)) * inv) * gf);
        }
      }
      dScale[a] += ss;
      dZero[a] += sz;
    }
  }
}
