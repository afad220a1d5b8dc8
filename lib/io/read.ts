// Reading a model or data file whole, after checking that it is a regular file of a sane size: a
// device (/dev/zero), a FIFO or a directory would otherwise hang the reader or exhaust memory.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';

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
