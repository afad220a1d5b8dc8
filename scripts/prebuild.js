#!/usr/bin/env node
// `npm run prebuild`: builds the binaries shipped in the package (prebuildify cannot drive
// cmake-js, so this does what `prebuildify --napi --tag-libc` would):
//
//   prebuilds/linux-x64/node.napi.glibc.node     native build   (build dir: build-prebuild-x64)
//   prebuilds/linux-arm64/node.napi.glibc.node   cross build with cmake/aarch64-linux-gnu.cmake
//                                                (build dir: build-prebuild-arm64)
//
// node-gyp-build picks these by tags: "node" + "napi" (any Node.js with N-API 8) + "glibc" (never
// chosen on Alpine/musl, where scripts/install.js builds from source instead).
//
// Each binary is stripped (--strip-unneeded, as prebuildify does) and checked before it is copied
// to prebuilds/: ELF machine (readelf, `file`), NEEDED libraries (the libc family, libgcc_s.so.1 at
// most; never libstdc++, which is linked statically), no GLIBCXX_/CXXABI_ versions, the highest
// GLIBC_ version it needs (printed, with the symbols that need it), that it exports
// napi_register_module_v1; then x64 is loaded in node (cpuInfo() called) and arm64 is dlopen()ed
// under qemu-aarch64.
//
// Options: --only=x64|arm64  build one of them; --clean  rebuild from scratch;
//          QK_MAX_GLIBC=2.34  fail if a binary needs a newer glibc than this.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { which, tryLoad } = require('./install.js');

const root = path.resolve(__dirname, '..');
const NAME = 'node.napi.glibc.node';
// The C library family, plus libgcc_s.so.1 (the unwinder; every glibc system that runs the
// official Node.js binaries has it, since node itself needs it). Never libstdc++.
const ALLOWED_NEEDED = /^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libgcc_s\.so\.1|ld-linux[-\w.]*\.so\.\d+)$/;
const COMPAT_SRC = path.join(root, 'cmake', 'glibc_compat.cc');

const argv = process.argv.slice(2);
const only = (argv.find((a) => a.startsWith('--only=')) || '').slice(7);
const clean = argv.includes('--clean');

const targets = [
  {
    arch: 'x64',
    machine: 'Advanced Micro Devices X86-64',
    fileRe: /ELF 64-bit LSB shared object, x86-64/,
    out: 'build-prebuild-x64',
    args: [],
    strip: 'strip',
    tools: [],
  },
  {
    arch: 'arm64',
    machine: 'AArch64',
    fileRe: /ELF 64-bit LSB shared object, ARM aarch64/,
    out: 'build-prebuild-arm64',
    args: [
      '--arch', 'arm64',
      '--cc', 'aarch64-linux-gnu-gcc', '--cxx', 'aarch64-linux-gnu-g++',
      `--CDCMAKE_TOOLCHAIN_FILE=${path.join(root, 'cmake', 'aarch64-linux-gnu.cmake')}`,
    ],
    strip: 'aarch64-linux-gnu-strip',
    tools: [['aarch64-linux-gnu-g++', 'g++-aarch64-linux-gnu'], ['aarch64-linux-gnu-strip', 'binutils-aarch64-linux-gnu']],
  },
].filter((t) => !only || t.arch === only);
if (!targets.length) {
  console.error(`prebuild: --only=${only}: expected x64 or arm64`);
  process.exit(1);
}

function fail(msg) {
  console.error(`\nprebuild: ${msg}\n`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  console.log(`$ ${[cmd, ...args].map((a) => (a.startsWith(root + path.sep) ? path.relative(root, a) : a)).join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) fail(`${path.basename(cmd)} failed (${r.error ? r.error.message : `exit code ${r.status}`})`);
}

function capture(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return r.stdout;
}

function cmpVersion(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d) return d;
  }
  return 0;
}

// Static checks with binutils (they read any ELF, so they work on the cross-built binary too).
function inspect(file, t) {
  const header = capture('readelf', ['-h', file]);
  const machine = (/Machine:\s*(.*)/.exec(header) || [])[1];
  if (machine !== t.machine) fail(`${file}: machine is "${machine}", expected "${t.machine}"`);
  if (which('file')) {
    const desc = capture('file', ['-b', file]).trim();
    if (!t.fileRe.test(desc)) fail(`${file}: \`file\` says "${desc}"`);
  }

  const dyn = capture('readelf', ['-d', file]);
  const needed = [...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const bad = needed.filter((n) => !ALLOWED_NEEDED.test(n));
  if (bad.length) fail(`${file} needs ${bad.join(', ')} (only the libc family and libgcc_s.so.1 are allowed; link libstdc++ statically)`);

  const versions = capture('readelf', ['-V', file]);
  const glibc = [...new Set([...versions.matchAll(/Name: GLIBC_([\d.]+)/g)].map((m) => m[1]))].sort(cmpVersion);
  const maxGlibc = glibc[glibc.length - 1] || 'none';
  const cxx = [...new Set([...versions.matchAll(/Name: ((?:GLIBCXX|CXXABI)_[\d.]+)/g)].map((m) => m[1]))];
  if (cxx.length) fail(`${file} needs ${cxx.join(', ')} from a shared libstdc++ (link it statically)`);
  const gcc = [...new Set([...versions.matchAll(/Name: GCC_([\d.]+)/g)].map((m) => m[1]))].sort(cmpVersion);
  if (gcc.length && cmpVersion(gcc[gcc.length - 1], '4.3') > 0)
    fail(`${file} needs GCC_${gcc[gcc.length - 1]} from libgcc_s.so.1 (only GCC <= 4.3 symbol versions are allowed)`);
  if (process.env.QK_MAX_GLIBC && maxGlibc !== 'none' && cmpVersion(maxGlibc, process.env.QK_MAX_GLIBC) > 0)
    fail(`${file} needs GLIBC_${maxGlibc}, newer than QK_MAX_GLIBC=${process.env.QK_MAX_GLIBC}`);

  // Which symbols pull in the newest glibc version (useful when trying to lower it).
  const dynsyms = capture('readelf', ['--dyn-syms', '-W', file]);
  const newest = [...new Set([...dynsyms.matchAll(/ UND (\S+)@GLIBC_([\d.]+)/g)]
    .filter((m) => m[2] === maxGlibc).map((m) => m[1]))];
  if (!/\bnapi_register_module_v1\b/.test(dynsyms.split('\n').filter((l) => !/ UND /.test(l)).join('\n')))
    fail(`${file} does not export napi_register_module_v1`);
  // Weak undefined C++ symbols (the _ZGTt* transactional-memory clones of libstdc++) are fine.
  const undefCxx = [...dynsyms.matchAll(/ GLOBAL +DEFAULT +UND (_Z\S+)/g)].map((m) => m[1]);
  if (undefCxx.length) fail(`${file} has undefined C++ symbols: ${undefCxx.slice(0, 5).join(' ')}`);

  return { needed, maxGlibc, newest, gcc: gcc.map((v) => `GCC_${v}`), size: fs.statSync(file).size };
}

// No arm64 node here, so: dlopen the arm64 binary under qemu from a small host program that
// defines every napi_* function it imports (as aborting stubs). That proves the dynamic loader
// accepts it (NEEDED libraries, symbol versions against the cross sysroot's glibc) and that its
// static initializers run; napi_register_module_v1 is looked up, not called.
function dlopenUnderQemu(file, t) {
  const qemu = which('qemu-aarch64-static') || which('qemu-aarch64');
  const cc = which('aarch64-linux-gnu-gcc');
  if (t.arch !== 'arm64' || !qemu || !cc) return 'not loaded (no qemu-aarch64 / aarch64-linux-gnu-gcc)';
  const dynsyms = capture('readelf', ['--dyn-syms', '-W', file]);
  const napi = [...new Set([...dynsyms.matchAll(/ UND (napi_\w+|node_api_\w+)$/gm)].map((m) => m[1]))];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qk-dlopen-'));
  try {
    const src = path.join(tmp, 'load.c');
    fs.writeFileSync(src, [
      '#include <dlfcn.h>', '#include <stdio.h>', '#include <stdlib.h>',
      ...napi.map((n) => `void ${n}(void) { abort(); }`),
      'int main(int argc, char** argv) {',
      '  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);',
      '  if (!h) { fprintf(stderr, "%s\\n", dlerror()); return 1; }',
      '  if (!dlsym(h, "napi_register_module_v1")) { fprintf(stderr, "no napi_register_module_v1\\n"); return 2; }',
      '  return 0;', '}', ''].join('\n'));
    const exe = path.join(tmp, 'load');
    const c = spawnSync(cc, ['-O1', '-rdynamic', '-o', exe, src, '-ldl'], { encoding: 'utf8' });
    if (c.status !== 0) fail(`compiling the arm64 dlopen check failed: ${c.stderr}`);
    const r = spawnSync(qemu, ['-L', '/usr/aarch64-linux-gnu', exe, file], { encoding: 'utf8', timeout: 60000 });
    if (r.status !== 0) fail(`${file} does not dlopen under qemu: ${(r.stderr || r.error || `exit ${r.status}`).toString().trim()}`);
    return `dlopen ok under ${path.basename(qemu)} (RTLD_NOW, ${napi.length} napi_* stubs)`;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function buildTarget(t) {
  for (const [tool, pkg] of t.tools) {
    if (!which(tool)) fail(`${tool} is missing: apt-get install ${pkg}`);
  }
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  const out = path.join(root, t.out);
  const dest = path.join(root, 'prebuilds', `linux-${t.arch}`, NAME);
  fs.rmSync(dest, { force: true }); // never leave a stale binary behind a failed build
  if (clean) fs.rmSync(out, { recursive: true, force: true });
  // cmake/glibc_compat.cc keeps the required glibc down (see there). Until CMakeLists.txt adds it
  // to the addon itself, it rides in CMAKE_JS_SRC (empty on Linux; the last -D wins).
  const compat = /glibc_compat/.test(fs.readFileSync(path.join(root, 'CMakeLists.txt'), 'utf8'))
    ? [] : [`--CDCMAKE_JS_SRC=${COMPAT_SRC}`];
  const jobs = String(Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length));
  // Configure every time (cmake-js `compile` would keep a stale cache and ignore changed -D
  // options), then build incrementally. --prefer-make: one generator for these build dirs.
  const common = ['--directory', root, '--out', out, '--prefer-make', '--log-level', 'warn'];
  run(process.execPath, [cmakeJs, 'configure', ...common, ...compat, ...t.args]);
  run(process.execPath, [cmakeJs, 'build', ...common, '--parallel', jobs, ...t.args]);
  const built = path.join(out, 'Release', 'quantkit.node');
  if (!fs.existsSync(built)) fail(`${built} was not produced`);

  const stripped = path.join(out, 'Release', NAME);
  run(which(t.strip) || t.strip, ['--strip-unneeded', '-o', stripped, built]);
  const info = inspect(stripped, t);
  if (t.arch === os.arch()) {
    const err = tryLoad(stripped);
    if (err) fail(`${stripped} does not load: ${err}`);
    info.loaded = 'loads in node, cpuInfo() ok';
  } else {
    info.loaded = dlopenUnderQemu(stripped, t);
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(stripped, dest);
  return { dest, ...info };
}

if (os.platform() !== 'linux' || os.arch() !== 'x64')
  fail('the prebuilt binaries are built on a Linux x64 host (arm64 is cross-compiled)');
const results = targets.map(buildTarget);
console.log('\nprebuild: done');
for (const r of results) {
  console.log(`  ${path.relative(root, r.dest)}  ${(r.size / 1024).toFixed(0)} KiB`);
  console.log(`    NEEDED: ${r.needed.join(', ') || '(none)'}${r.gcc.length ? ` (libgcc_s: ${r.gcc.join(', ')})` : ''}`);
  console.log(`    max GLIBC_${r.maxGlibc}${r.newest.length ? ` (for ${r.newest.join(', ')})` : ''}`);
  console.log(`    ${r.loaded}`);
}
