#!/usr/bin/env node
// quantkit install step (package.json "install"; runs on `npm install` in the repository and when
// the published package is installed).
//
//   1. If node-gyp-build resolves a binary for this machine (build/Release/*.node, or
//      prebuilds/<platform>-<arch>/node.napi.glibc.node) and it loads, use it and stop.
//   2. Otherwise build from source with cmake-js into build/ (never node-gyp). Before building,
//      check for cmake, make/ninja and a working C++ compiler, and fail with what to install.
//
// QUANTKIT_BUILD_FROM_SOURCE=1 (or `npm install --build-from-source`) skips step 1. Needs nothing from dist/ (npm runs `install` before
// `prepare`). Self-contained on purpose: only this file of scripts/ is published.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const CMAKE_MIN = [3, 18];
const PREBUILT = 'linux-x64 and linux-arm64 (glibc)';

class InstallError extends Error {}

function log(msg) {
  console.log(`quantkit: ${msg}`);
}

// `which` without a shell: the first executable named `name` on PATH (PATHEXT on Windows).
function which(name) {
  if (!name) return null;
  if (name.includes('/') || name.includes('\\')) return isExecutable(name) ? path.resolve(name) : null;
  const exts = process.platform === 'win32' ? ['', ...(process.env.PATHEXT || '.EXE;.CMD;.BAT').split(';')] : [''];
  for (const dir of (process.env.PATH || process.env.Path || '').split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const p = path.join(dir, name + ext);
      if (isExecutable(p)) return p;
    }
  }
  return null;
}

function isExecutable(p) {
  try {
    if (!fs.statSync(p).isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// Loads `file` in a child process (a binary for the wrong libc or CPU must not take this process
// down) and calls cpuInfo(). Returns null when it works, else the reason.
function tryLoad(file) {
  const code =
    'const m = require(process.argv[1]);' +
    "if (typeof m.cpuInfo !== 'function') throw new Error('no cpuInfo export');" +
    'm.cpuInfo();';
  const r = spawnSync(process.execPath, ['-e', code, file], { encoding: 'utf8', timeout: 60000 });
  if (r.status === 0) return null;
  if (r.error) return r.error.message;
  const text = `${r.stderr || ''}`.split('\n').find((l) => /Error|error:|GLIBC|not found/.test(l));
  return (text || (r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`)).trim();
}

// The binary node-gyp-build would load at run time, or null (with the reason) if none resolves.
function resolveBinary() {
  try {
    const ngb = require('node-gyp-build');
    return { file: ngb.path(root) };
  } catch (e) {
    return { file: null, reason: String(e.message || e).split('\n')[0] };
  }
}

// True when npm is told to install for another platform/arch (then a binary cannot be test-loaded).
function isCrossInstall() {
  const arch = process.env.npm_config_arch;
  const plat = process.env.npm_config_platform;
  return (arch && arch !== os.arch()) || (plat && plat !== os.platform());
}

function installHint() {
  const lines = [];
  if (process.platform === 'darwin') {
    lines.push('  xcode-select --install        # the C++ compiler (clang++) and make');
    lines.push('  brew install cmake            # CMake >= 3.18 (or https://cmake.org/download/)');
  } else if (process.platform === 'win32') {
    lines.push('  Visual Studio 2022 Build Tools with "Desktop development with C++"');
    lines.push('  winget install Kitware.CMake  # CMake >= 3.18');
  } else {
    let ids = '';
    try {
      const osr = fs.readFileSync('/etc/os-release', 'utf8');
      ids = [...osr.matchAll(/^(ID|ID_LIKE)=(.*)$/gm)].map((m) => m[2].replace(/"/g, '')).join(' ');
    } catch { /* not every system has it */ }
    const has = (re) => re.test(ids);
    if (has(/\b(debian|ubuntu)\b/)) lines.push('  sudo apt-get install -y cmake g++ make');
    else if (has(/\b(fedora|rhel|centos|rocky|almalinux|amzn)\b/)) lines.push('  sudo dnf install -y cmake gcc-c++ make');
    else if (has(/\balpine\b/)) lines.push('  apk add cmake g++ make');
    else if (has(/\b(arch|manjaro)\b/)) lines.push('  sudo pacman -S --needed cmake gcc make');
    else if (has(/\b(suse|opensuse)\b/)) lines.push('  sudo zypper install cmake gcc-c++ make');
    else {
      lines.push('  Debian/Ubuntu:  sudo apt-get install -y cmake g++ make');
      lines.push('  Fedora/RHEL:    sudo dnf install -y cmake gcc-c++ make');
      lines.push('  Alpine:         apk add cmake g++ make');
    }
  }
  return lines.join('\n');
}

function parseVersion(text) {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text || '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] || 0)] : null;
}

// Checks cmake, a build tool and a C++ compiler; returns extra cmake-js arguments.
function checkToolchain() {
  const problems = [];
  const args = [];

  const cmake = which('cmake');
  if (!cmake) {
    problems.push('cmake was not found on PATH');
  } else {
    const r = spawnSync(cmake, ['--version'], { encoding: 'utf8' });
    const v = parseVersion(r.stdout);
    if (!v) problems.push(`could not run ${cmake} --version`);
    else if (v[0] < CMAKE_MIN[0] || (v[0] === CMAKE_MIN[0] && v[1] < CMAKE_MIN[1]))
      problems.push(`cmake ${v.join('.')} is too old (${CMAKE_MIN.join('.')} or newer is required)`);
  }

  if (process.platform !== 'win32') {
    if (!which('ninja') && !which('make')) problems.push('neither make nor ninja was found on PATH');

    // CMake honours $CXX; cmake-js, though, insists on g++ or clang++ on PATH unless it is given
    // the compilers explicitly.
    let cxx = null;
    let cxxArgs = [];
    const onPath = which('g++') || which('clang++');
    if (process.env.CXX) {
      const [cmd, ...rest] = process.env.CXX.trim().split(/\s+/);
      cxx = which(cmd);
      cxxArgs = rest;
      if (!cxx) problems.push(`CXX=${process.env.CXX}: ${cmd} was not found`);
      else if (!onPath && !rest.length) args.push('--cxx', cxx, '--cc', which(process.env.CC || 'cc') || 'cc');
      else if (!onPath) problems.push('cmake-js needs g++ or clang++ on PATH (or CXX naming a compiler without arguments)');
    } else {
      cxx = onPath;
      if (!cxx) problems.push('no C++ compiler (g++ or clang++) was found on PATH');
    }
    if (cxx) {
      // A compiler without its C++ library headers is as good as none: try one translation unit.
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantkit-cc-'));
      try {
        const src = path.join(tmp, 't.cc');
        fs.writeFileSync(src, '#include <vector>\n#include <thread>\nint main() { std::vector<int> v(1); return v[0]; }\n');
        const r = spawnSync(cxx, [...cxxArgs, '-std=c++17', '-c', src, '-o', path.join(tmp, 't.o')], { encoding: 'utf8' });
        if (r.status !== 0) {
          const first = (`${r.stderr || (r.error && r.error.message) || ''}`.trim() || `exit code ${r.status}`)
            .split('\n').slice(0, 3).join('\n    ');
          problems.push(`the C++ compiler ${cxx} cannot compile a C++17 file:\n    ${first}`);
        }
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
  }

  if (problems.length) {
    throw new InstallError(
      'cannot build the native addon from source:\n' +
      problems.map((p) => `  - ${p}`).join('\n') + '\n\n' +
      'Install a C++17 compiler, CMake >= 3.18 and make, then reinstall:\n' + installHint() + '\n\n' +
      `Prebuilt binaries are included for ${PREBUILT} on Node.js >= 20.17 (no compiler needed there)` +
      (forcedSourceBuild() ? `; drop ${forcedSourceBuild()} to use them.` : '.'));
  }
  return args;
}

function cmakeJsBin() {
  try {
    return require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    throw new InstallError('the cmake-js package is missing (it is a dependency of quantkit; reinstall it)');
  }
}

function buildFromSource() {
  const extra = checkToolchain();
  const args = [cmakeJsBin(), 'compile', '--out', 'build', '--directory', root, ...extra];
  const jobs = Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length);
  if (!which('ninja')) args.push('--parallel', String(jobs));
  log(`building from source: cmake-js ${args.slice(1).join(' ')}`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    throw new InstallError(
      `the source build failed (${r.error ? r.error.message : `cmake-js exit code ${r.status}`}); see the output above.\n` +
      `Prebuilt binaries are included for ${PREBUILT}.`);
  }
  const { file, reason } = resolveBinary();
  if (!file) throw new InstallError(`the build finished but no binary was found: ${reason}`);
  const err = tryLoad(file);
  if (err) throw new InstallError(`the freshly built ${path.relative(root, file)} does not load: ${err}`);
  log(`built ${path.relative(root, file)}`);
}

// QUANTKIT_BUILD_FROM_SOURCE=1, or npm's --build-from-source (for all packages, or =quantkit).
function forcedSourceBuild() {
  if (process.env.QUANTKIT_BUILD_FROM_SOURCE === '1') return 'QUANTKIT_BUILD_FROM_SOURCE=1';
  const npmFlag = process.env.npm_config_build_from_source;
  if (npmFlag === 'true' || (npmFlag && npmFlag.split(',').includes('quantkit'))) return '--build-from-source';
  return null;
}

function main() {
  const forced = forcedSourceBuild();
  if (forced) {
    log(`${forced}: building from source`);
    return buildFromSource();
  }
  const { file, reason } = resolveBinary();
  if (file) {
    const rel = path.relative(root, file);
    if (isCrossInstall()) return log(`using ${rel} (not test-loaded: installing for another platform)`);
    const err = tryLoad(file);
    if (!err) return log(`using ${rel}`);
    log(`${rel} does not load here (${err}); building from source`);
  } else {
    log(`no prebuilt binary for ${os.platform()}-${os.arch()} (${reason}); building from source`);
  }
  return buildFromSource();
}

if (require.main === module) {
  try {
    main();
  } catch (e) {
    if (!(e instanceof InstallError)) throw e;
    console.error(`\nquantkit: ${e.message}\n`);
    process.exit(1);
  }
}

module.exports = { which, tryLoad, resolveBinary, checkToolchain };
