#!/usr/bin/env node
// Builds and runs the C++ kernel tests (ctest): natively, and for arm64 under qemu when the
// cross compiler and qemu-aarch64-static are installed (.ci/run installs them; set
// QK_REQUIRE_ARM64=1 to make their absence an error). QK_EXPECT_PATHS lists the paths that must
// be usable (defaults: what this CPU supports is simply all exercised).
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const jobs = String(Math.max(1, require('node:os').availableParallelism?.() ?? 2));

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd, args, env) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
}

function buildAndTest(dir, extraArgs, env) {
  run('cmake', ['-S', '.', '-B', dir, '-DQK_BUILD_TESTS=ON', '-DQK_BUILD_ADDON=OFF',
    '-DCMAKE_BUILD_TYPE=Release', ...extraArgs]);
  run('cmake', ['--build', dir, '-j', jobs]);
  run('ctest', ['--test-dir', dir, '--output-on-failure'], env);
}

if (!have('cmake')) {
  console.error('quantkit: cmake is required to build the native tests (apt-get install cmake)');
  process.exit(1);
}

buildAndTest('build-tests', [], {});

const cross = have('aarch64-linux-gnu-g++') && (have('qemu-aarch64-static') || have('qemu-aarch64'));
if (cross) {
  buildAndTest('build-tests-arm64', [`-DCMAKE_TOOLCHAIN_FILE=${path.join(root, 'cmake/aarch64-linux-gnu.cmake')}`],
    { QK_EXPECT_PATHS: process.env.QK_EXPECT_PATHS_ARM64 ?? 'neon,neon-dotprod' });
} else if (process.env.QK_REQUIRE_ARM64 === '1') {
  console.error('quantkit: QK_REQUIRE_ARM64=1 but g++-aarch64-linux-gnu or qemu-user-static is missing');
  process.exit(1);
} else {
  console.log('(skipping the arm64 build: install g++-aarch64-linux-gnu and qemu-user-static to run it under qemu)');
}
