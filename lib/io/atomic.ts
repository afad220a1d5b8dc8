// Atomic file replacement, used by every writer (saveSafetensors, and so saveModel and the CLI).
//
// A new file is written to a temporary file next to the target, created with O_EXCL ('wx'),
// fsynced, given the target's permission bits (and owner and group where the process may), then
// renamed over the target, and the folder fsynced. Readers see the old file or the new one, never
// a part; `kill -9` at any moment leaves the old file intact.
//
// The temporary file's name says who made it:
//   .<target name>.<pid>.<start>.<host>.<random>.quantkit-tmp
// <pid> and <start> (the process's start time in clock ticks since boot, from /proc/<pid>/stat;
// 'x' where there is no /proc) identify the writing process, <host> is a hash of the host name
// and the pid namespace (the pids of another machine or container mean nothing here), <random> 16
// hex digits. A target name too long for that is cut and given a hash of the whole name.
//
// Before writing, the temporary files of the same target left by writers that died (kill -9, a
// crash, a power cut) are removed, and only those: a name of exactly this form for this target
// and this host, a regular file (not a symlink, folder or a file with other hard links) owned by
// this user, whose writer is gone (no such pid, a zombie, or the pid now belongs to a process
// started at another time). A temp file of this process (another thread may be writing it) or of
// any live process is kept. On failure a save removes its own temp file and nothing else: a file
// already at a temp name is never touched (a fresh random name is tried instead).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const TEMP_SUFFIX = '.quantkit-tmp';

/** Test hooks: the random part of temp names. */
export const atomicHooks = { random: (): string => crypto.randomBytes(8).toString('hex') };

/** Attempts at a fresh temp name when one exists already. */
const NAME_TRIES = 8;

/** Start time of a process in clock ticks since boot (Linux /proc), or null when unknown. */
export function processStartToken(pid: number): string | null {
  const st = procStat(pid);
  return st ? st.start : null;
}

function procStat(pid: number): { state: string; start: string } | null {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // "pid (comm) state ppid ..."; comm may hold spaces and parentheses: fields after the last ')'.
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  const start = rest[19]; // field 22, starttime
  if (!rest[0] || !start || !/^\d+$/.test(start)) return null;
  return { state: rest[0], start };
}

let ownStart: string | undefined;
function ownStartToken(): string {
  if (ownStart === undefined) ownStart = processStartToken(process.pid) ?? 'x';
  return ownStart;
}

let ownHost: string | undefined;
/** 8 hex digits naming this host and pid namespace. */
function hostHash(): string {
  if (ownHost === undefined) {
    let h = '';
    try { h = os.hostname(); } catch { /* unknown: '' */ }
    let ns = '';
    try { ns = fs.readlinkSync('/proc/self/ns/pid'); } catch { /* no /proc: the host alone */ }
    ownHost = crypto.createHash('sha256').update(`${h}\0${ns}`).digest('hex').slice(0, 8);
  }
  return ownHost;
}

/** The part of temp names that names the target: '.<name>' (cut, plus a hash, when too long). */
function stem(base: string): string {
  if (Buffer.byteLength(base) <= 160) return `.${base}`;
  const hash = crypto.createHash('sha256').update(base).digest('hex').slice(0, 16);
  let cut = base.slice(0, 100);
  while (Buffer.byteLength(cut) > 100) cut = cut.slice(0, -1);
  return `.${cut}~${hash}`;
}

/** The temp file name for a target (a full path); the defaults are this process and a random part. */
export function tempFileName(target: string, id: { pid?: number; start?: string; host?: string; rand?: string } = {}): string {
  const pid = id.pid ?? process.pid;
  const start = id.start ?? (pid === process.pid ? ownStartToken() : 'x');
  const rand = id.rand ?? atomicHooks.random();
  return path.join(path.dirname(target), `${stem(path.basename(target))}.${pid}.${start}.${id.host ?? hostHash()}.${rand}${TEMP_SUFFIX}`);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether the process that wrote a temp file with this pid and start token is gone. */
function writerGone(pid: number, start: string): boolean {
  if (pid === process.pid) {
    // This process, or an earlier one that had the same pid (known only from the start time).
    const own = ownStartToken();
    return own !== 'x' && start !== 'x' && start !== own;
  }
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: alive, someone else's
  }
  const st = procStat(pid);
  if (!st) return false; // alive as far as we can tell
  if (st.state === 'Z' || st.state === 'X') return true; // exited, not yet reaped: writes nothing more
  return start !== 'x' && st.start !== start; // the pid was reused
}

/**
 * Removes the temp files of `target` left by writers that are gone (see the file comment for the
 * exact rule); returns the paths removed. Errors are ignored: cleaning up is best effort.
 */
export function removeStaleTempFiles(target: string): string[] {
  const dir = path.dirname(target);
  const re = new RegExp(`^${escapeRe(stem(path.basename(target)))}\\.(\\d{1,10})\\.(\\d{1,20}|x)\\.${hostHash()}\\.[0-9a-f]{16}${escapeRe(TEMP_SUFFIX)}$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  const removed: string[] = [];
  for (const name of names) {
    const m = re.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!Number.isSafeInteger(pid) || pid < 1) continue;
    const p = path.join(dir, name);
    try {
      const st = fs.lstatSync(p);
      if (!st.isFile() || st.nlink !== 1 || (uid !== null && st.uid !== uid)) continue;
      if (!writerGone(pid, m[2])) continue;
      fs.unlinkSync(p);
      removed.push(p);
    } catch { /* gone meanwhile, or not ours to remove */ }
  }
  return removed;
}

/**
 * The path to rename the new file onto: `file`, or the file a symlink points to. Refuses a
 * directory, a device, a FIFO or a socket (an atomic rename would replace it), and a folder that
 * does not exist. Returns the target's stats when it exists.
 */
function writableTarget(file: string): { target: string; st: fs.Stats | null } {
  let target = path.resolve(file);
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(target);
    target = fs.realpathSync(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${file}: cannot write it (${(e as NodeJS.ErrnoException).code})`, { cause: e });
    st = null;
  }
  if (st && st.isDirectory()) throw new Error(`${file}: cannot write it: it is a directory`);
  if (st && !st.isFile()) throw new Error(`${file}: cannot write it: it exists and is not a regular file (a device, FIFO or socket is never replaced)`);
  const dir = path.dirname(target);
  let ds: fs.Stats;
  try {
    ds = fs.statSync(dir);
  } catch {
    throw new Error(`${file}: cannot write it: the folder ${dir} does not exist`);
  }
  if (!ds.isDirectory()) throw new Error(`${file}: cannot write it: ${dir} is not a folder`);
  return { target, st };
}

/** An error of this module: thrown as it is (it names the file already). */
class WriteError extends Error {}

/**
 * Writes `file` atomically. `write` is called once with `put`, which appends bytes; an error that
 * `write` throws is rethrown as it is, after the temp file is removed. File system errors become
 * "<file>: cannot write it (<code>)". On success the target has the new bytes and, when it
 * existed, its permission bits (and, where allowed, its owner and group).
 */
export function writeFileAtomicSync(file: string, write: (put: (b: Uint8Array) => void) => void): void {
  const { target, st } = writableTarget(file);
  const dir = path.dirname(target);
  removeStaleTempFiles(target);
  const fsError = (e: unknown, what = ''): WriteError => {
    const er = e as NodeJS.ErrnoException;
    return new WriteError(`${file}: cannot write it${what} (${er.code ?? er.message})`, { cause: e });
  };
  // Create the temp file: O_EXCL never opens (or follows) anything already there.
  let tmp = '';
  let fd: number | null = null;
  for (let i = 0; fd === null; i++) {
    tmp = tempFileName(target);
    try {
      // 0600 while writing when it replaces a file (its mode is set before the rename), else the
      // mode a plain write would give (0666 less the umask).
      fd = fs.openSync(tmp, 'wx', st ? 0o600 : 0o666);
    } catch (e) {
      const er = e as NodeJS.ErrnoException;
      if (er.code !== 'EEXIST') throw fsError(e, `: cannot create a file in ${dir}`);
      if (i + 1 >= NAME_TRIES) throw new WriteError(`${file}: cannot write it: the temporary file ${tmp} exists (left alone; not created by this save)`, { cause: e });
    }
  }
  let renamed = false;
  try {
    const put = (b: Uint8Array): void => {
      let off = 0;
      try {
        while (off < b.length) off += fs.writeSync(fd as number, b, off, Math.min(b.length - off, 1 << 30));
      } catch (e) {
        throw fsError(e);
      }
    };
    write(put);
    try {
      if (st) {
        const uid = typeof process.getuid === 'function' ? process.getuid() : null;
        const gid = typeof process.getgid === 'function' ? process.getgid() : null;
        if ((uid !== null && st.uid !== uid) || (gid !== null && st.gid !== gid)) {
          try {
            fs.fchownSync(fd, st.uid, st.gid);
          } catch {
            try { fs.fchownSync(fd, -1, st.gid); } catch { /* not allowed: the file becomes ours */ }
          }
        }
        // Best effort: a file system without modes keeps the temp file's 0600, never more.
        try { fs.fchmodSync(fd, st.mode & 0o777); } catch { /* see above */ }
      }
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = null;
      fs.renameSync(tmp, target);
      renamed = true;
    } catch (e) {
      throw fsError(e);
    }
  } finally {
    if (fd !== null) {
      try { fs.closeSync(fd); } catch { /* already failing */ }
    }
    if (!renamed) {
      try { fs.unlinkSync(tmp); } catch { /* already gone */ }
    }
  }
  try {
    // Make the rename durable too (not possible everywhere, e.g. on Windows).
    const dfd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  } catch { /* best effort */ }
}
