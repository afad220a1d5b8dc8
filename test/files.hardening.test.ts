// Files under attack: atomic writes (permissions kept, temp files of this call and of dead writers
// removed, nothing else ever unlinked, kill -9 mid-save), JSON nesting and tensor-count limits in
// every reader, symlinks that leave a tfjs model folder, and `quantkit info` on huge or hostile
// files (no argument spread, control characters escaped).
// The child processes run dist/ (as test/cli.test.ts does): `npm run build:ts` first (npm test does).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atomicHooks, processStartToken, tempFileName, writeFileAtomicSync } from '../lib/io/atomic';
import { JSON_MAX_DEPTH, MAX_RANK, MAX_TENSORS } from '../lib/io/json';
import { loadSafetensors, parseSafetensors, saveSafetensors } from '../lib/io/safetensors';
import { loadTfjsWeights, loadTfjsWeightsSync, WeightFileError } from '../lib/io/tfjs';
import { Linear, manualSeed, ReLU, Sequential } from '../lib/nn/index';
import { GRAPH_KEY, loadModel, saveModel } from '../lib/ptq/file';

const root = path.resolve(__dirname, '..');
const DIST = path.join(root, 'dist', 'cjs', 'index.js');
const BIN = path.join(root, 'bin', 'quantkit.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-files-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let caseNo = 0;
const freshDir = () => { const d = path.join(tmp, `c${caseNo++}`); fs.mkdirSync(d); return d; };
const U8 = (v: number[]) => ({ dtype: 'U8' as const, shape: [v.length], data: Uint8Array.from(v) });
const LINUX = fs.existsSync('/proc/self/stat');
const ROOT_USER = typeof process.getuid === 'function' && process.getuid() === 0;

beforeAll(() => {
  if (!fs.existsSync(path.join(root, 'dist/cjs/io/atomic.js'))) {
    throw new Error('dist/cjs/io/atomic.js is missing: run `npm run build:ts` first (npm test does)');
  }
});

/** A pid that was alive a moment ago and is not any more (its process exited and was reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  expect(r.status).toBe(0);
  return r.pid as number;
}

// ---- atomic writes -------------------------------------------------------------------------------

describe('atomic writes: permissions, owner, temp names', () => {
  it('overwriting a 0600 file keeps 0600 (and 0640, 0444 stay as they were)', () => {
    const d = freshDir();
    for (const mode of [0o600, 0o640, 0o444, 0o755]) {
      const p = path.join(d, `m${mode.toString(8)}.safetensors`);
      fs.writeFileSync(p, 'old');
      fs.chmodSync(p, mode);
      saveSafetensors(p, { x: U8([1]) });
      expect((fs.statSync(p).mode & 0o777).toString(8)).toBe(mode.toString(8));
      expect(Array.from(loadSafetensors(p).tensors.x.data)).toEqual([1]);
    }
    // saveModel writes through the same helper.
    const m = path.join(d, 'model.safetensors');
    fs.writeFileSync(m, 'old');
    fs.chmodSync(m, 0o600);
    saveModel(m, new Sequential(new Linear(2, 2)));
    expect(fs.statSync(m).mode & 0o777).toBe(0o600);
  });

  it('a new file gets the mode a plain write would give it (0666 less the umask)', () => {
    const d = freshDir();
    const plain = path.join(d, 'plain');
    fs.writeFileSync(plain, '');
    const p = path.join(d, 'new.safetensors');
    saveSafetensors(p, { x: U8([1]) });
    expect(fs.statSync(p).mode & 0o777).toBe(fs.statSync(plain).mode & 0o777);
  });

  it.skipIf(!ROOT_USER)('keeps the owner and group of the file it replaces (when allowed to)', () => {
    const d = freshDir();
    const p = path.join(d, 'owned.safetensors');
    fs.writeFileSync(p, 'old');
    fs.chownSync(p, 4321, 4322);
    fs.chmodSync(p, 0o640);
    saveSafetensors(p, { x: U8([2]) });
    const st = fs.statSync(p);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([4321, 4322, 0o640]);
  });

  it('temp files are named after the target, this pid, and end in .quantkit-tmp', () => {
    const t = tempFileName('/some/dir/m.safetensors');
    expect(path.dirname(t)).toBe('/some/dir');
    expect(path.basename(t)).toMatch(new RegExp(`^\\.m\\.safetensors\\.${process.pid}\\.(\\d+|x)\\.[0-9a-f]{8}\\.[0-9a-f]{16}\\.quantkit-tmp$`));
    // A very long target name still gives a name the file system accepts.
    const long = 'n'.repeat(250);
    expect(Buffer.byteLength(path.basename(tempFileName(`/d/${long}`)))).toBeLessThanOrEqual(255);
    expect(path.basename(tempFileName(`/d/${long}`))).not.toBe(path.basename(tempFileName(`/d/${long.slice(1)}x`)));
  });

  it('a file already at the temp name is refused and never unlinked', () => {
    const d = freshDir();
    const p = path.join(d, 'm.safetensors');
    saveSafetensors(p, { x: U8([1]) });
    const before = fs.readFileSync(p);
    const saved = atomicHooks.random;
    try {
      atomicHooks.random = () => 'feedfacefeedface';
      const theirs = tempFileName(p, { rand: 'feedfacefeedface' });
      fs.writeFileSync(theirs, 'not quantkit\'s');
      expect(() => saveSafetensors(p, { x: U8([2]) })).toThrow(`${p}: cannot write it: the temporary file ${theirs} exists (left alone; not created by this save)`);
      expect(fs.readFileSync(theirs, 'utf8')).toBe('not quantkit\'s');
      expect(fs.readFileSync(p).equals(before)).toBe(true);
      // A symlink there is refused the same way (O_EXCL never follows it).
      fs.unlinkSync(theirs);
      const victim = path.join(d, 'victim');
      fs.writeFileSync(victim, 'victim');
      fs.symlinkSync(victim, theirs);
      expect(() => saveSafetensors(p, { x: U8([2]) })).toThrow('exists (left alone; not created by this save)');
      expect(fs.lstatSync(theirs).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(victim, 'utf8')).toBe('victim');
      // A collision once: the next random name is used, the other file stays.
      let n = 0;
      atomicHooks.random = () => (n++ === 0 ? 'feedfacefeedface' : '0123456789abcdef');
      saveSafetensors(p, { x: U8([3]) });
      expect(Array.from(loadSafetensors(p).tensors.x.data)).toEqual([3]);
      expect(fs.lstatSync(theirs).isSymbolicLink()).toBe(true);
      expect(fs.readdirSync(d).sort()).toEqual(['m.safetensors', path.basename(theirs), 'victim'].sort());
    } finally {
      atomicHooks.random = saved;
    }
  });

  it('a failing write removes its own temp file and leaves the target as it was', () => {
    const d = freshDir();
    const p = path.join(d, 'm.safetensors');
    fs.writeFileSync(p, 'previous');
    expect(() => writeFileAtomicSync(p, (put) => {
      put(new Uint8Array(4096));
      expect(fs.readdirSync(d).length).toBe(2); // the temp file is there while writing
      throw new Error('boom');
    })).toThrow('boom');
    expect(fs.readdirSync(d)).toEqual(['m.safetensors']);
    expect(fs.readFileSync(p, 'utf8')).toBe('previous');
  });

  it('a write that fails in the kernel (EFBIG under ulimit -f) leaves no temp file', () => {
    const d = freshDir();
    const p = path.join(d, 'm.safetensors');
    fs.writeFileSync(p, 'previous');
    const js = `const q=require(${JSON.stringify(DIST)});try{q.saveSafetensors(${JSON.stringify(p)},{x:{dtype:'U8',shape:[1<<20],data:new Uint8Array(1<<20)}})}catch(e){console.log(e.message);process.exit(3)}`;
    const r = spawnSync('bash', ['-c', `ulimit -f 64; exec "$0" -e "$1"`, process.execPath, js], { encoding: 'utf8' });
    expect(r.stdout).toBe(`${p}: cannot write it (EFBIG)\n`);
    expect(r.status).toBe(3);
    expect(fs.readdirSync(d)).toEqual(['m.safetensors']);
    expect(fs.readFileSync(p, 'utf8')).toBe('previous');
  });
});

describe('stale temp files of dead writers', () => {
  it('a temp file of a dead pid is removed by the next save of the same target', () => {
    const d = freshDir();
    const p = path.join(d, 'm.safetensors');
    const stale = tempFileName(p, { pid: deadPid(), start: '12345' });
    fs.writeFileSync(stale, Buffer.alloc(1 << 16));
    saveSafetensors(p, { x: U8([1]) });
    expect(fs.readdirSync(d)).toEqual(['m.safetensors']);
  });

  it('keeps temp files of live writers: this process, and another live process', async () => {
    const d = freshDir();
    const p = path.join(d, 'm.safetensors');
    const mine = tempFileName(p, { rand: '00000000000000aa' });
    fs.writeFileSync(mine, 'this process (another thread may be writing it)');
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      await new Promise((res) => child.once('spawn', res));
      const pid = child.pid as number;
      const theirs = tempFileName(p, { pid, start: processStartToken(pid) ?? 'x' });
      fs.writeFileSync(theirs, 'a live writer');
      saveSafetensors(p, { x: U8([1]) });
      expect(fs.readdirSync(d).sort()).toEqual([path.basename(mine), path.basename(theirs), 'm.safetensors'].sort());
      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      saveSafetensors(p, { x: U8([2]) });
      expect(fs.readdirSync(d).sort()).toEqual([path.basename(mine), 'm.safetensors'].sort());
    } finally {
      child.kill('SIGKILL');
    }
  });

  it.skipIf(!LINUX)('a temp file of an earlier process that had this pid is stale (start time differs)', () => {
    const d = freshDir();
    const p = path.join(d, 'm.safetensors');
    const own = processStartToken(process.pid);
    expect(own).toMatch(/^\d+$/);
    const earlier = tempFileName(p, { start: String(Number(own) + 1) });
    fs.writeFileSync(earlier, 'old');
    saveSafetensors(p, { x: U8([1]) });
    expect(fs.readdirSync(d)).toEqual(['m.safetensors']);
  });

  it('leaves alone what only looks like a stale temp file: a symlink, a folder, a hard link, another target, another host', () => {
    const d = freshDir();
    const p = path.join(d, 'm.safetensors');
    const pid = deadPid();
    const victim = path.join(d, 'victim');
    fs.writeFileSync(victim, 'victim');
    const link = tempFileName(p, { pid, rand: '000000000000000a' });
    fs.symlinkSync(victim, link);
    const folder = tempFileName(p, { pid, rand: '000000000000000b' });
    fs.mkdirSync(folder);
    const hard = tempFileName(p, { pid, rand: '000000000000000c' });
    fs.linkSync(victim, hard);
    const other = tempFileName(path.join(d, 'other.safetensors'), { pid });
    fs.writeFileSync(other, 'another target');
    const host = tempFileName(p, { pid, host: '0badc0de' });
    fs.writeFileSync(host, 'another host: its pid means nothing here');
    const odd = path.join(d, `.m.safetensors.${pid}.tmp`);
    fs.writeFileSync(odd, 'not our naming');
    const before = fs.readdirSync(d).sort();
    saveSafetensors(p, { x: U8([1]) });
    expect(fs.readdirSync(d).sort()).toEqual([...before, 'm.safetensors'].sort());
    expect(fs.readFileSync(victim, 'utf8')).toBe('victim');
  });

  it('kill -9 in the middle of a large saveModel: the previous file intact, the next save leaves no temp files', async () => {
    const d = freshDir();
    const p = path.join(d, 'm.safetensors');
    manualSeed(3);
    saveModel(p, new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2)));
    const previous = fs.readFileSync(p);
    // The child builds a 64 MiB model, says 'ready', then saves it over p.
    const js = `const q=require(process.argv[1]);const L=[];for(let i=0;i<16;i++)L.push(new q.nn.Linear(1024,1024));` +
      `const m=new q.nn.Sequential(...L);process.stdout.write('ready\\n');q.saveModel(process.argv[2],m);process.stdout.write('saved\\n');`;
    const isTemp = (n: string) => n.startsWith('.m.safetensors.') && n.endsWith('.quantkit-tmp');
    let killedMidWrite = false;
    for (let attempt = 0; attempt < 30 && !killedMidWrite; attempt++) {
      const child = spawn(process.execPath, ['-e', js, DIST, p], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((res, rej) => {
        let out = '';
        child.stdout.on('data', (b) => { out += b; if (out.includes('ready')) res(); });
        child.once('exit', () => rej(new Error(`the writer exited early: ${out}`)));
      });
      // Poll (yielding to the event loop each time) until its temp file holds over 8 of its
      // 64 MiB, then kill -9.
      const t0 = Date.now();
      while (Date.now() - t0 < 20000) {
        if (fs.statSync(p).size !== previous.length) break; // too late: renamed already
        const temp = fs.readdirSync(d).find(isTemp);
        if (temp) {
          try { if (fs.statSync(path.join(d, temp)).size > 8 << 20) break; } catch { /* renamed meanwhile */ }
        }
        await new Promise((res) => setImmediate(res));
      }
      child.kill('SIGKILL');
      await new Promise((res) => (child.exitCode !== null || child.signalCode !== null ? res(null) : child.once('exit', res)));
      const left = fs.readdirSync(d).filter(isTemp);
      if (left.length === 1) {
        killedMidWrite = true;
        expect(left[0].startsWith(`.m.safetensors.${child.pid}.`)).toBe(true);
        expect(fs.readFileSync(p).equals(previous)).toBe(true);
        expect(loadModel(p)).toBeInstanceOf(Sequential);
      } else {
        // Killed before the temp file was created or after the rename: the target is one of the
        // two complete files. Put the previous one back and try again.
        expect(left).toEqual([]);
        const now = fs.readFileSync(p);
        expect(now.equals(previous) || loadModel(p) instanceof Sequential).toBe(true);
        fs.writeFileSync(p, previous);
      }
    }
    expect(killedMidWrite).toBe(true);
    // The next save removes the dead writer's temp file; nothing else is left.
    saveModel(p, new Sequential(new Linear(2, 2)));
    expect(fs.readdirSync(d)).toEqual(['m.safetensors']);
    expect(loadModel(p)).toBeInstanceOf(Sequential);
  }, 120000);
});

// ---- JSON nesting and counts ---------------------------------------------------------------------

/** A safetensors file by hand: u64 LE header length, the header padded to 8, then data. */
function handFile(header: string, data: Uint8Array = new Uint8Array(0)): Buffer {
  const h = Buffer.from(header + ' '.repeat((8 - (Buffer.byteLength(header) % 8)) % 8), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('JSON nesting and tensor counts are bounded before anything is built', () => {
  it(`a safetensors header nested 10,000 deep is a WeightFileError naming the file and the field (limit ${JSON_MAX_DEPTH})`, () => {
    const e = errorOf(() => parseSafetensors(handFile(`{"__metadata__":{"k":${deep(10000)}}}`), 'deep.st'));
    expect(e).toBeInstanceOf(WeightFileError);
    expect(e.message).toMatch(/^deep\.st: header\.__metadata__\['k'\]\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]\.\.\.: nested more than 128 levels deep \(at byte \d+\); the limit is 128$/);
    expect((e as WeightFileError).field).toBe("header.__metadata__['k'][0][0][0][0][0][0]...");
    const e2 = errorOf(() => parseSafetensors(handFile(`{"a":{"dtype":"U8","shape":${deep(200)},"data_offsets":[0,0]}}`), 'deep.st'));
    expect(e2.message).toMatch(/^deep\.st: header\.tensors\['a'\]\.shape\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]\.\.\.: nested more than 128 levels deep/);
    // 128 levels are fine as far as nesting goes (then the header's own checks apply).
    const ok = errorOf(() => parseSafetensors(handFile(`{"__metadata__":{"k":${deep(126)}}}`), 'ok.st'));
    expect(ok.message).toBe(`ok.st: header.__metadata__['k']: expected a string but found ${'['.repeat(60)}...`);
  });

  it('brackets and quotes inside strings do not count as nesting', () => {
    const name = '[{"[' + '['.repeat(500) + '\\"{';
    const f = parseSafetensors(handFile(`{${JSON.stringify(name)}:{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, Uint8Array.of(9)));
    expect(Object.keys(f.tensors)).toEqual([name]);
  });

  it('a tfjs model.json nested 10,000 deep is a WeightFileError (both loaders)', async () => {
    const d = freshDir();
    const file = path.join(d, 'model.json');
    fs.writeFileSync(file, `{"modelTopology":{"config":${deep(10000)}},"weightsManifest":[]}`);
    const se = errorOf(() => loadTfjsWeightsSync(file));
    expect(se).toBeInstanceOf(WeightFileError);
    expect(se.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: modelTopology\\.config\\[0\\]\\[0\\]\\[0\\]\\[0\\]\\[0\\]\\[0\\]\\.\\.\\.: nested more than 128 levels deep \\(at byte \\d+\\); the limit is 128$`));
    await expect(loadTfjsWeights(file)).rejects.toThrow(se.message);
  });

  it('a model graph nested 10,000 deep is a WeightFileError from loadModel', () => {
    const d = freshDir();
    const p = path.join(d, 'm.safetensors');
    saveSafetensors(p, {}, { [GRAPH_KEY]: `{"version":1,"kind":"float","layers":[{"name":"0","layer":${deep(10000)}}]}` });
    const e = errorOf(() => loadModel(p));
    expect(e).toBeInstanceOf(WeightFileError);
    expect(e.message).toMatch(/: __metadata__\['quantkit\.graph'\]\.layers\[0\]\.layer\[0\]\[0\]\[0\]\[0\]\[0\]\.\.\.: nested more than 128 levels deep \(at byte \d+\); the limit is 128$/);
    expect(e.message.startsWith(`${p}: `)).toBe(true);
  });

  it(`more than ${MAX_TENSORS} tensors are refused while scanning the header (1.5M empty tensors too, quickly)`, () => {
    const entry = (i: number) => `"t${i}":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`;
    const many = (n: number) => handFile(`{${Array.from({ length: n }, (_, i) => entry(i)).join(',')}}`);
    const over = many(MAX_TENSORS + 1);
    expect(() => parseSafetensors(over, 'many.st')).toThrow(`many.st: header: more than ${MAX_TENSORS} tensors (the limit)`);
    const huge = many(1_500_000);
    const t0 = performance.now();
    const e = errorOf(() => parseSafetensors(huge, 'huge.st'));
    expect(e).toBeInstanceOf(WeightFileError);
    expect(e.message).toBe(`huge.st: header: more than ${MAX_TENSORS} tensors (the limit)`);
    expect(performance.now() - t0).toBeLessThan(5000);
    // With __metadata__ the limit is still MAX_TENSORS tensors.
    const withMeta = handFile(`{"__metadata__":{},${Array.from({ length: MAX_TENSORS }, (_, i) => entry(i)).join(',')}}`);
    expect(Object.keys(parseSafetensors(withMeta).tensors).length).toBe(MAX_TENSORS);
  }, 60000);

  it(`tensor rank is at most ${MAX_RANK} (safetensors and tfjs)`, () => {
    const shape = JSON.stringify(new Array(MAX_RANK + 1).fill(1));
    expect(() => parseSafetensors(handFile(`{"w":{"dtype":"U8","shape":${shape},"data_offsets":[0,1]}}`, Uint8Array.of(1)), 'r.st'))
      .toThrow(`r.st: header.tensors['w'].shape: ${MAX_RANK + 1} dimensions is more than the ${MAX_RANK} allowed`);
    const okShape = JSON.stringify(new Array(MAX_RANK).fill(1));
    expect(parseSafetensors(handFile(`{"w":{"dtype":"U8","shape":${okShape},"data_offsets":[0,1]}}`, Uint8Array.of(1))).tensors.w.shape.length).toBe(MAX_RANK);
    const d = freshDir();
    const file = path.join(d, 'model.json');
    fs.writeFileSync(file, JSON.stringify({ weightsManifest: [{ paths: [], weights: [{ name: 'w', shape: new Array(MAX_RANK + 1).fill(0), dtype: 'float32' }] }] }));
    expect(() => loadTfjsWeightsSync(file)).toThrow(`${file}: weightsManifest[0].weights[0].shape: expected at most ${MAX_RANK} dimensions but received ${MAX_RANK + 1}`);
  });

  it(`a tfjs manifest with more than ${MAX_TENSORS} weights, groups or shard files is refused before any shard is read`, () => {
    const d = freshDir();
    const file = path.join(d, 'model.json');
    const weights = Array.from({ length: MAX_TENSORS + 1 }, (_, i) => ({ name: `w${i}`, shape: [0], dtype: 'float32' }));
    fs.writeFileSync(file, JSON.stringify({ weightsManifest: [{ paths: ['missing.bin'], weights }] }));
    expect(() => loadTfjsWeightsSync(file)).toThrow(`${file}: weightsManifest: more than ${MAX_TENSORS} weights (the limit)`);
    const groups = Array.from({ length: MAX_TENSORS + 1 }, () => ({ paths: [], weights: [] }));
    fs.writeFileSync(file, JSON.stringify({ weightsManifest: groups }));
    expect(() => loadTfjsWeightsSync(file)).toThrow(`${file}: weightsManifest: more than ${MAX_TENSORS} weight groups (the limit)`);
    const shards = Array.from({ length: MAX_TENSORS + 1 }, (_, i) => `s${i}.bin`);
    fs.writeFileSync(file, JSON.stringify({ weightsManifest: [{ paths: shards, weights: [] }] }));
    expect(() => loadTfjsWeightsSync(file)).toThrow(`${file}: weightsManifest: more than ${MAX_TENSORS} shard files (the limit)`);
  });

  it('a model.json over 100 MB is refused before it is read', () => {
    const d = freshDir();
    const file = path.join(d, 'model.json');
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 100_000_001);
    expect(() => loadTfjsWeightsSync(file)).toThrow(`${file}: cannot read the model file: larger than 100000000 bytes`);
  });
});

// ---- tfjs symlinks ---------------------------------------------------------------------------------

describe('tfjs: weight files must stay inside the model folder, symlinks resolved', () => {
  function model(d: string, paths: string[], bytes: number): string {
    const file = path.join(d, 'model.json');
    fs.writeFileSync(file, JSON.stringify({ weightsManifest: [{ paths, weights: [{ name: 'w', shape: [bytes], dtype: 'uint8' }] }] }));
    return file;
  }

  it('a symlink inside the folder to a file outside it is refused, naming the file', async () => {
    const d = freshDir();
    const outside = path.join(tmp, `secret-${caseNo}`);
    fs.writeFileSync(outside, 'secret!!');
    fs.symlinkSync(outside, path.join(d, 'shard.bin'));
    const file = model(d, ['shard.bin'], 8);
    const msg = `${file}: weightsManifest[0].paths[0]: expected a weight file inside the model folder ${fs.realpathSync(d)} but 'shard.bin' resolves to ${fs.realpathSync(outside)} (a symlink out of the folder)`;
    expect(() => loadTfjsWeightsSync(file)).toThrow(msg);
    await expect(loadTfjsWeights(file)).rejects.toThrow(msg);
    // An absolute symlink to /etc/passwd, and a symlinked sub-folder leading out, likewise.
    fs.symlinkSync('/etc/passwd', path.join(d, 'passwd.bin'));
    expect(() => loadTfjsWeightsSync(model(d, ['passwd.bin'], 1))).toThrow(/'passwd\.bin' resolves to \/etc\/passwd \(a symlink out of the folder\)$/);
    fs.symlinkSync(tmp, path.join(d, 'up'));
    expect(() => loadTfjsWeightsSync(model(d, [`up/${path.basename(outside)}`], 8))).toThrow(/\(a symlink out of the folder\)$/);
  });

  it('symlinks that stay inside the folder load, and so does a model folder reached through a symlink', async () => {
    const real = freshDir();
    fs.mkdirSync(path.join(real, 'sub'));
    fs.writeFileSync(path.join(real, 'sub', 'data.bin'), Uint8Array.of(1, 2, 3));
    fs.symlinkSync('sub/data.bin', path.join(real, 'shard.bin'));
    const file = model(real, ['shard.bin'], 3);
    expect(Array.from(loadTfjsWeightsSync(file)[0].data)).toEqual([1, 2, 3]);
    const via = path.join(tmp, `via-${caseNo++}`);
    fs.symlinkSync(real, via);
    expect(Array.from((await loadTfjsWeights(path.join(via, 'model.json')))[0].data)).toEqual([1, 2, 3]);
  });

  it('a dangling symlink is reported as a missing shard', () => {
    const d = freshDir();
    fs.symlinkSync(path.join(d, 'nowhere'), path.join(d, 'shard.bin'));
    const file = model(d, ['shard.bin'], 1);
    expect(() => loadTfjsWeightsSync(file)).toThrow(`${file}: weightsManifest[0].paths[0]: cannot read shard '${path.join(d, 'shard.bin')}': no such file`);
  });
});

// ---- quantkit info -------------------------------------------------------------------------------

function cli(cwd: string, ...args: string[]) {
  const env = { ...process.env };
  delete env.QUANTKIT_DEBUG;
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env, encoding: 'utf8', timeout: 120000, maxBuffer: 1 << 28 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Control characters that must never reach the terminal raw: C0 but \n, DEL, C1.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('quantkit info', () => {
  // Math.max(...column) overflowed from about 125k rows; 200k is well past that, under MAX_TENSORS.
  it('a file of 200,000 tensors prints them all (no argument spread)', () => {
    const N = 200_000;
    const d = freshDir();
    const t: Record<string, ReturnType<typeof U8>> = {};
    for (let i = 0; i < N; i++) t[`layer.${i}.weight`] = U8([i & 255]);
    saveSafetensors(path.join(d, 'many.safetensors'), t);
    const r = cli(d, 'info', 'many.safetensors');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.length).toBe(2 + N + 1); // head, rule, the rows, '' after the final \n
    expect(lines[0]).toBe('tensor               dtype  shape  bytes');
    expect(lines).toContain('layer.99999.weight   U8     [1]        1');
    expect(lines).toContain('layer.199999.weight  U8     [1]        1');
  }, 120000);

  it('escapes control characters in tensor names and metadata (no terminal escape injection)', () => {
    const d = freshDir();
    const evil = '\x1b]0;owned\x07\x1b[2J\r\u009b31m\x7f\u202eevil';
    saveSafetensors(path.join(d, 'evil.safetensors'), { [evil]: U8([1]), plain: U8([2]) }, { ['k\x1b[1m']: 'v\x1b[31mred\nline2\x00', fine: 'ok \\x1b stays' });
    const r = cli(d, 'info', 'evil.safetensors');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    const name = '\\x1b]0;owned\\x07\\x1b[2J\\r\\u009b31m\\x7f\\u202eevil';
    expect(r.stdout).toContain(`\n${name}  U8     [1]        1\n`);
    expect(r.stdout).toContain('\n  k\\x1b[1m: v\\x1b[31mred\\nline2\\x00\n');
    expect(r.stdout).toContain('\n  fine: ok \\x1b stays\n');
  });

  it('escapes control characters in error messages too', () => {
    const d = freshDir();
    fs.writeFileSync(path.join(d, 'bad.safetensors'), handFile('{"\\u001b[2Jw":{"dtype":"X\\u009b","shape":[1],"data_offsets":[0,1]}}', Uint8Array.of(1)));
    const r = cli(d, 'info', 'bad.safetensors');
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(RAW_CONTROL);
    expect(r.stderr).toBe("quantkit: bad.safetensors: header.tensors['\\x1b[2Jw'].dtype: 'X\\u009b' is not a safetensors dtype (supported: F32, I8, U8, I32)\n");
  });

  it('a deeply nested header through the CLI: exit 1 with the file error, no stack overflow', () => {
    const d = freshDir();
    fs.writeFileSync(path.join(d, 'deep.safetensors'), handFile(`{"__metadata__":{"k":${deep(10000)}}}`));
    const r = cli(d, 'info', 'deep.safetensors');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^quantkit: deep\.safetensors: header\.__metadata__\['k'\]\[0\].*: nested more than 128 levels deep/);
    expect(r.stderr).not.toContain('RangeError');
  });
});
