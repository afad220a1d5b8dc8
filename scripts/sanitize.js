#!/usr/bin/env node
// ASan + UBSan: builds the C++ kernel tests and the addon with -fsanitize=address,undefined (no
// recovery: the first finding aborts), runs the kernel tests, then a representative part of the
// vitest suite against the sanitized addon (node itself is not instrumented: libasan is
// preloaded, leak detection is off because V8 keeps memory until exit). Any finding fails the run.
//   node scripts/sanitize.js            both
//   node scripts/sanitize.js --native   kernel tests only
//   node scripts/sanitize.js --js       vitest part only
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const jobs = String(Math.max(1, os.availableParallelism?.() ?? 2));
const only = process.argv[2];
const SAN = 'address,undefined';
// The vitest files that exercise the native surface hardest: every op and path, the async calls
// and hostile callers, observers' native histograms, and files.
const JS_TESTS = [
  'test/hardening.test.ts', 'test/api.test.ts', 'test/golden.test.ts', 'test/gemm.test.ts', 'test/sgemm.test.ts',
  'test/paths.test.ts', 'test/observers.hardening.test.ts', 'test/files.hardening.test.ts', 'test/fuzz.test.ts',
];
const SAN_ENV = {
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
};

function run(cmd, args, env = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
}

function compilerRuntime(name) {
  const cxx = process.env.CXX || 'g++';
  return execFileSync(cxx, [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
}

if (only !== '--js') {
  const dir = 'build-asan-tests';
  run('cmake', ['-S', '.', '-B', dir, '-DQK_BUILD_TESTS=ON', '-DQK_BUILD_ADDON=OFF', '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
    `-DQK_SANITIZE=${SAN}`]);
  run('cmake', ['--build', dir, '-j', jobs]);
  run('ctest', ['--test-dir', dir, '--output-on-failure'], SAN_ENV);
}

if (only !== '--native') {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  run(process.execPath, [cmakeJs, 'compile', '--out', 'build-asan', '--directory', root, '--config', 'RelWithDebInfo',
    `--CDQK_SANITIZE=${SAN}`, '--CDCMAKE_BUILD_TYPE=RelWithDebInfo']);
  const addon = ['build-asan/RelWithDebInfo/quantkit.node', 'build-asan/Release/quantkit.node']
    .map((p) => path.join(root, p)).find((p) => fs.existsSync(p));
  if (!addon) throw new Error('the sanitized addon was not built (build-asan/*/quantkit.node)');
  const preload = [compilerRuntime('libasan.so'), compilerRuntime('libubsan.so')].filter((p) => path.isAbsolute(p));
  if (!fs.existsSync(path.join(root, 'dist/cjs/index.js'))) run('npm', ['run', 'build:ts']);
  const tests = JS_TESTS.filter((t) => fs.existsSync(path.join(root, t)));
  run(process.execPath, [require.resolve('vitest/vitest.mjs', { paths: [root] }), 'run', ...tests], {
    ...SAN_ENV,
    QUANTKIT_ADDON: addon,
    QK_SANITIZED: '1',
    LD_PRELOAD: preload.join(' '),
  });
}
console.log('quantkit: sanitizers found nothing');
