// Reading model and data files: whole regular files of a sane size (a device such as /dev/zero, a
// FIFO or a directory would otherwise hang the reader or exhaust memory), and the file steps each
// loader is written with once, run synchronously (runSync) or asynchronously (runAsync), so that
// loadX and loadXSync share every check.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { typeError } from '../errors';

/** Largest file the loaders read whole (Node's Buffer limit is about 4 GiB anyway). */
export const MAX_FILE_BYTES = 2 ** 32 - 1;

function refuse(st: fs.Stats, maxBytes: number): Error | null {
  let why: string | null = null;
  if (!st.isFile()) why = 'not a regular file';
  else if (st.size > maxBytes) why = `larger than ${maxBytes} bytes`;
  if (why === null) return null;
  const e = new Error(why) as NodeJS.ErrnoException;
  e.code = why;
  return e;
}

/** Reads a regular file of at most `maxBytes` (default MAX_FILE_BYTES) bytes. */
export function readRegularFileSync(file: string, encoding?: undefined, maxBytes?: number): Buffer;
export function readRegularFileSync(file: string, encoding: 'utf8', maxBytes?: number): string;
export function readRegularFileSync(file: string, encoding?: 'utf8', maxBytes = MAX_FILE_BYTES): Buffer | string {
  const err = refuse(fs.statSync(file), maxBytes);
  if (err) throw err;
  return encoding ? fs.readFileSync(file, encoding) : fs.readFileSync(file);
}

export async function readRegularFile(file: string, encoding?: undefined, maxBytes?: number): Promise<Buffer>;
export async function readRegularFile(file: string, encoding: 'utf8', maxBytes?: number): Promise<string>;
export async function readRegularFile(file: string, encoding?: 'utf8', maxBytes = MAX_FILE_BYTES): Promise<Buffer | string> {
  const err = refuse(await fsp.stat(file), maxBytes);
  if (err) throw err;
  return encoding ? fsp.readFile(file, encoding) : fsp.readFile(file);
}

// ---- file steps ---------------------------------------------------------------------------------

/** One file operation a loader asks for; its result is what the step yields back. */
export type FileRequest =
  | { op: 'read'; file: string; encoding?: 'utf8'; maxBytes?: number }
  | { op: 'realpath'; file: string }
  | { op: 'stat'; file: string };

/** A loader written once: a generator of file requests that returns the loaded value. */
export type FileSteps<T> = Generator<FileRequest, T, unknown>;

/** The bytes of a regular file (readRegularFile). */
export function* readStep(file: string, maxBytes?: number): FileSteps<Buffer> {
  return (yield { op: 'read', file, maxBytes }) as Buffer;
}

/** The text (UTF-8) of a regular file (readRegularFile). */
export function* readTextStep(file: string, maxBytes?: number): FileSteps<string> {
  return (yield { op: 'read', file, encoding: 'utf8', maxBytes }) as string;
}

export function* realpathStep(file: string): FileSteps<string> {
  return (yield { op: 'realpath', file }) as string;
}

export function* statStep(file: string): FileSteps<fs.Stats> {
  return (yield { op: 'stat', file }) as fs.Stats;
}

function doSync(r: FileRequest): unknown {
  switch (r.op) {
    case 'read': return r.encoding ? readRegularFileSync(r.file, r.encoding, r.maxBytes) : readRegularFileSync(r.file, undefined, r.maxBytes);
    case 'realpath': return fs.realpathSync(r.file);
    case 'stat': return fs.statSync(r.file);
  }
}

function doAsync(r: FileRequest): Promise<unknown> {
  switch (r.op) {
    case 'read': return r.encoding ? readRegularFile(r.file, r.encoding, r.maxBytes) : readRegularFile(r.file, undefined, r.maxBytes);
    case 'realpath': return fsp.realpath(r.file);
    case 'stat': return fsp.stat(r.file);
  }
}

/** Runs a loader's steps with synchronous file operations; a failed operation is thrown into the steps. */
export function runSync<T>(steps: FileSteps<T>): T {
  let r = steps.next();
  while (!r.done) {
    let value: unknown;
    try {
      value = doSync(r.value);
    } catch (e) {
      r = steps.throw(e);
      continue;
    }
    r = steps.next(value);
  }
  return r.value;
}

/** runSync with asynchronous file operations. */
export async function runAsync<T>(steps: FileSteps<T>): Promise<T> {
  let r = steps.next();
  while (!r.done) {
    let value: unknown;
    try {
      value = await doAsync(r.value);
    } catch (e) {
      r = steps.throw(e);
      continue;
    }
    r = steps.next(value);
  }
  return r.value;
}

/** A path argument: a non-empty string, else a TypeError naming the argument. */
export function checkPathArg(name: string, p: unknown, expected = 'a non-empty string'): string {
  if (typeof p !== 'string' || p.length === 0) throw typeError(name, expected, p);
  return p;
}

/** The message of a failed read: 'no such file' for ENOENT, else the error's code or message. */
export function readFailure(e: unknown): string {
  const er = e as NodeJS.ErrnoException;
  return er?.code === 'ENOENT' ? 'no such file' : er?.message ?? String(e);
}

/** What a loader of one whole file needs: its argument's name, a parser and its read error. */
export interface WholeFileLoader<T> {
  /** The path argument's name in TypeErrors ('file', 'path'). */
  arg: string;
  /** What the argument should be, in TypeErrors (default 'a non-empty string'). */
  expected?: string;
  parse: (bytes: Buffer, file: string) => T;
  /** The loader's error for a file that cannot be read (missing, not a regular file, too large). */
  readError: (file: string, e: unknown) => Error;
}

/** The steps of a loader that reads one file whole and parses it: the path checked, read, parsed. */
export function* wholeFileSteps<T>(file: unknown, l: WholeFileLoader<T>): FileSteps<T> {
  const f = checkPathArg(l.arg, file, l.expected);
  let bytes: Buffer;
  try {
    bytes = yield* readStep(f);
  } catch (e) {
    throw l.readError(f, e);
  }
  return l.parse(bytes, f);
}
