// Async native calls run on libuv's threads while JavaScript goes on. A caller could detach,
// transfer or resize an array during that time, which would free or unmap memory under the
// worker. So the async entry points hand the native call private copies (nobody else holds
// them) and copy the result into the caller's output when it is done.

type View = ArrayBufferView & { length: number; slice(): View; set(v: ArrayLike<number>): void };

function isTyped(v: unknown): v is View {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/**
 * Calls `call(...args)` with every TypedArray argument replaced by a private copy (the output at
 * `outIndex` by a new array of its type and length), then copies the result into the caller's
 * output. If that output was detached or resized meanwhile, the promise rejects.
 */
export function runOwned<R>(args: readonly unknown[], outIndex: number, what: string,
  call: (...a: never[]) => Promise<unknown>): Promise<R> {
  const user = args[outIndex] as View;
  const owned = args.map((v, i) => {
    if (!isTyped(v)) return v;
    if (i === outIndex) return new (v.constructor as new (n: number) => View)(v.length);
    return v.slice();
  });
  return call(...(owned as never[])).then(() => {
    const fresh = owned[outIndex] as View;
    if (user.length !== fresh.length) {
      throw new TypeError(`Expected ${what} to keep its length ${fresh.length} until the promise settled but received ` +
        `a ${user.constructor.name} of length ${user.length} (detached or resized meanwhile)`);
    }
    user.set(fresh as unknown as ArrayLike<number>);
    return user as unknown as R;
  });
}
