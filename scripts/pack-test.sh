#!/usr/bin/env bash
# `npm run test:pack`: what a user gets from the published package.
#
#   1. npm run prebuild (prebuilds/linux-x64 + prebuilds/linux-arm64) and npm pack;
#   2. the tarball holds both prebuilds, dist/ (CJS + ESM), the install script and the sources;
#   3. installed into an empty project by an npm whose PATH holds only node, npm, sh, env (no
#      compiler, no cmake, no make): the prebuilt binary is used, and require(), import and a
#      quantizeLinear call work;
#   4. the same tarball without prebuilds/ (a platform with no prebuilt binary) fails to install
#      with the "what to install" message from scripts/install.js, not a stack trace; and so does
#      a prebuilt binary that exists but cannot load, and QUANTKIT_BUILD_FROM_SOURCE=1.
#
# QK_PACK_KEEP=1 keeps the temp dir. Dependencies come from the npm cache or registry.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$SECONDS

work="$(mktemp -d "${TMPDIR:-/tmp}/quantkit-pack.XXXXXX")"
cleanup() {
  if [ "${QK_PACK_KEEP:-}" = 1 ]; then echo "pack-test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
  echo "" >&2
  echo "pack-test: FAIL: $*" >&2
  exit 1
}
step() { echo "== [$((SECONDS - start))s] $*"; }

arch="$(node -p process.arch)"
[ "$(node -p process.platform)" = linux ] || fail "runs on Linux only"

# ---------------------------------------------------------------------------------------------
step "prebuild"
node scripts/prebuild.js >"$work/prebuild.log" 2>&1 || { tail -40 "$work/prebuild.log" >&2; fail "npm run prebuild failed (log above)"; }
sed -n '/^prebuild: done/,$p' "$work/prebuild.log"

step "npm pack"
mkdir "$work/pack"
npm pack --pack-destination "$work/pack" >"$work/pack.log" 2>&1 || { tail -40 "$work/pack.log" >&2; fail "npm pack failed (log above)"; }
shopt -s nullglob
tgzs=("$work"/pack/quantkit-*.tgz)
[ ${#tgzs[@]} = 1 ] || fail "npm pack produced ${#tgzs[@]} tarballs"
tgz="${tgzs[0]}"
echo "$(basename "$tgz"): $(du -k "$tgz" | cut -f1) KiB, $(tar tzf "$tgz" | wc -l) files"

step "tarball contents"
tar tzf "$tgz" | sort >"$work/contents.txt"
for f in \
  package/package.json \
  package/prebuilds/linux-x64/node.napi.glibc.node \
  package/prebuilds/linux-arm64/node.napi.glibc.node \
  package/dist/cjs/index.js \
  package/dist/cjs/index.d.ts \
  package/dist/esm/index.mjs \
  package/scripts/install.js \
  package/CMakeLists.txt \
  package/cmake/aarch64-linux-gnu.cmake \
  package/native/napi/addon.cc; do
  grep -qx "$f" "$work/contents.txt" || fail "the tarball lacks $f"
done
if grep -E '^package/(build|build-[^/]*|node_modules|test|bench)/' "$work/contents.txt" | head -3 | grep .; then
  fail "the tarball contains build outputs, node_modules, tests or benchmarks (above)"
fi
tar xzf "$tgz" -C "$work" package/prebuilds package/package.json
# cmake-js builds against node-api-headers (no header download) only while this is set.
node -e "const p = require(process.argv[1]); if (!(p.binary && p.binary.napi_versions && p.binary.napi_versions.length)) process.exit(1)" \
  "$work/package/package.json" || fail "package.json lacks binary.napi_versions (cmake-js would download Node headers)"
machine() { readelf -h "$work/package/prebuilds/$1/node.napi.glibc.node" | sed -n 's/^ *Machine: *//p'; }
[ "$(machine linux-arm64)" = AArch64 ] || fail "prebuilds/linux-arm64 is not an AArch64 ELF ($(machine linux-arm64))"
[ "$(machine linux-x64)" = "Advanced Micro Devices X86-64" ] || fail "prebuilds/linux-x64 is not an x86-64 ELF ($(machine linux-x64))"
echo "ok: prebuilds/linux-x64, prebuilds/linux-arm64, dist/cjs, dist/esm, sources"

# ---------------------------------------------------------------------------------------------
# A PATH with no compiler, cmake, make or ninja: only links to node, npm, sh and env.
bin="$work/bin"
mkdir "$bin"
ln -s "$(readlink -f "$(command -v node)")" "$bin/node"
ln -s "$(readlink -f "$(command -v npm)")" "$bin/npm"
ln -s "$(readlink -f "$(command -v sh)")" "$bin/sh"
ln -s "$(readlink -f "$(command -v env)")" "$bin/env"
for tool in cmake make ninja g++ c++ cc gcc clang++; do
  if PATH="$bin" command -v "$tool" >/dev/null 2>&1; then fail "$tool is reachable on the restricted PATH"; fi
done

# The test installs get the restricted PATH and none of: the npm_* variables of an enclosing
# `npm run` (npm_config_local_prefix would point npm back at the repository) except the cache,
# registry and userconfig; CC/CXX (absolute compiler paths); quantkit's own switches.
unset_args=()
while IFS= read -r v; do
  case "$v" in
    npm_config_cache | npm_config_registry | npm_config_userconfig) ;;
    npm_* | NPM_* | CC | CXX | QUANTKIT_* | PREBUILDS_ONLY | LIBC) unset_args+=(-u "$v") ;;
  esac
done < <(compgen -e)
npm_env() {
  env "${unset_args[@]}" PATH="$bin" "$@"
}
new_app() {
  mkdir -p "$1"
  printf '{ "name": "%s", "version": "1.0.0", "private": true }\n' "$(basename "$1")" >"$1/package.json"
}
npm_install() { # dir tarball [env...]
  local dir="$1" tarball="$2"
  shift 2
  (cd "$dir" && npm_env "$@" npm install --no-audit --no-fund --prefer-offline --foreground-scripts --loglevel=error "$tarball")
}

step "install the tarball with no compiler and no cmake on PATH ($arch)"
app="$work/app"
new_app "$app"
if ! npm_install "$app" "$tgz" >"$work/install.log" 2>&1; then
  cat "$work/install.log" >&2
  fail "npm install of the tarball failed without a compiler (log above)"
fi
grep -q "quantkit: using prebuilds/linux-$arch/node.napi.glibc.node" "$work/install.log" ||
  { cat "$work/install.log" >&2; fail "the install did not report using the prebuilt binary"; }
grep 'quantkit:' "$work/install.log"
[ ! -e "$app/node_modules/quantkit/build" ] || fail "the install created node_modules/quantkit/build (it compiled?)"

step "use it: require, import, quantizeLinear"
run_node() { (cd "$app" && npm_env node "$@"); }
out="$(run_node -e "
  const path = require('node:path');
  const bin = require('node-gyp-build').path(path.dirname(require.resolve('quantkit/package.json')));
  if (!bin.includes(path.join('prebuilds', 'linux-$arch'))) throw new Error('loads ' + bin);
  const q = require('quantkit');
  const info = q.cpuInfo();
  if (!info || typeof info !== 'object') throw new Error('cpuInfo() returned ' + info);
  const codes = Array.from(q.quantizeLinear(new Float32Array([0, 1.5, -2.5, 300]), 1, 0, { dtype: 'int8' }));
  if (codes.join(',') !== '0,2,-2,127') throw new Error('quantizeLinear gave ' + codes);
  console.log('cjs ok: ' + path.relative(process.cwd(), bin) + ', cpuInfo().arch=' + info.arch + ', quantizeLinear -> [' + codes + ']');
" 2>&1)" || fail "require('quantkit') failed: $out"
echo "$out"
out="$(run_node --input-type=module -e "
  import { quantizeLinear, cpuInfo } from 'quantkit';
  import q from 'quantkit';
  const codes = Array.from(quantizeLinear(new Float32Array([0, 1.5, -2.5, 300]), 1, 0, { dtype: 'int8' }));
  if (codes.join(',') !== '0,2,-2,127') throw new Error('quantizeLinear gave ' + codes);
  if (typeof cpuInfo().arch !== 'string' || q.cpuInfo !== cpuInfo) throw new Error('cpuInfo/default export mismatch');
  console.log('esm ok: quantizeLinear -> [' + codes + ']');
" 2>&1)" || fail "import from 'quantkit' failed: $out"
echo "$out"

step "the installed CLI: quantkit --version, and quantize a tiny model"
[ -x "$app/node_modules/.bin/quantkit" ] || fail "npm did not link node_modules/.bin/quantkit"
ver="$(cd "$app" && npm_env node_modules/.bin/quantkit --version 2>&1)" || fail "quantkit --version failed: $ver"
[ "$ver" = "$(node -p "require('$root/package.json').version")" ] || fail "quantkit --version printed '$ver'"
out="$(run_node -e "
  const q = require('quantkit');
  q.nn.manualSeed(1);
  q.saveModel('tiny.safetensors', new q.nn.Sequential(new q.nn.Linear(8, 4), new q.nn.ReLU(), new q.nn.Linear(4, 2)));
" 2>&1)" || fail "saveModel failed: $out"
out="$(cd "$app" && npm_env node_modules/.bin/quantkit quantize tiny.safetensors -o tiny-int8.safetensors 2>&1)" || fail "quantkit quantize failed: $out"
echo "$out"
out="$(run_node -e "
  const q = require('quantkit');
  const m = q.loadModel('tiny-int8.safetensors');
  if (!(m instanceof q.QuantizedModel) || m.mode !== 'dynamic') throw new Error('loaded ' + m);
  console.log('cli ok: ' + m.summary().map((r) => r.name + ':' + r.mode).join(' '));
" 2>&1)" || fail "loading the CLI's output failed: $out"
echo "$out"

# ---------------------------------------------------------------------------------------------
check_no_toolchain_failure() { # log what
  local log="$1" what="$2"
  for want in "cannot build the native addon from source" "cmake was not found on PATH" \
    "Prebuilt binaries are included for linux-x64 and linux-arm64"; do
    grep -qF "$want" "$log" || { cat "$log" >&2; fail "$what: the install error lacks \"$want\""; }
  done
  grep -qE 'apt-get install|dnf install|apk add|pacman -S|zypper install' "$log" ||
    { cat "$log" >&2; fail "$what: the install error does not say what to install"; }
  if grep -E '^\s+at .*(\(|/)[^ ]*:[0-9]+:[0-9]+\)?$' "$log" | head -3 | grep .; then
    fail "$what: the install printed a stack trace (above)"
  fi
  echo "ok: $what fails with the install hint"
  [ -n "${hint_shown:-}" ] || sed -n '/cannot build the native addon/,/Prebuilt binaries/p' "$log" | sed 's/^/    /'
  hint_shown=1
}

step "no prebuilt binary and no cmake: the install must fail with what to install"
mkdir "$work/noprebuilds"
tar xzf "$tgz" -C "$work/noprebuilds"
rm -rf "$work/noprebuilds/package/prebuilds"
tgz2="$work/noprebuilds/quantkit-noprebuilds.tgz"
tar czf "$tgz2" -C "$work/noprebuilds" package
app2="$work/app-noprebuilds"
new_app "$app2"
if npm_install "$app2" "$tgz2" >"$work/install2.log" 2>&1; then
  cat "$work/install2.log" >&2
  fail "installing without prebuilds and without cmake succeeded?"
fi
check_no_toolchain_failure "$work/install2.log" "no prebuilds"

step "a prebuilt binary that does not load (arm64 code as linux-$arch) and no cmake: must fail with what to install"
other=arm64; [ "$arch" = arm64 ] && other=x64
mkdir "$work/broken"
tar xzf "$tgz" -C "$work/broken"
cp "$work/broken/package/prebuilds/linux-$other/node.napi.glibc.node" "$work/broken/package/prebuilds/linux-$arch/node.napi.glibc.node"
tgz4="$work/broken/quantkit-broken.tgz"
tar czf "$tgz4" -C "$work/broken" package
app4="$work/app-broken"
new_app "$app4"
if npm_install "$app4" "$tgz4" >"$work/install4.log" 2>&1; then
  cat "$work/install4.log" >&2
  fail "installing with a prebuilt binary that cannot load, and without cmake, succeeded?"
fi
grep -q "node.napi.glibc.node does not load here" "$work/install4.log" ||
  { cat "$work/install4.log" >&2; fail "the install did not notice that the prebuilt binary does not load"; }
grep "does not load here" "$work/install4.log" | cut -c1-200
check_no_toolchain_failure "$work/install4.log" "unloadable prebuild"

step "QUANTKIT_BUILD_FROM_SOURCE=1 and no cmake: the install must fail with what to install"
app3="$work/app-fromsource"
new_app "$app3"
if npm_install "$app3" "$tgz" QUANTKIT_BUILD_FROM_SOURCE=1 >"$work/install3.log" 2>&1; then
  cat "$work/install3.log" >&2
  fail "QUANTKIT_BUILD_FROM_SOURCE=1 without cmake succeeded?"
fi
check_no_toolchain_failure "$work/install3.log" "QUANTKIT_BUILD_FROM_SOURCE=1"

step "pack-test: all checks passed"
