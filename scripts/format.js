#!/usr/bin/env node
// clang-format over the C++ sources in native/ (the .def tables keep their hand-aligned columns).
//   node scripts/format.js          rewrite in place   (npm run format)
//   node scripts/format.js --check  list files that differ and exit 1 (npm run format:check, CI)
// Style: .clang-format at the root, pinned to clang-format 14 (Debian bookworm's `clang-format`);
// other major versions format a few constructs differently, so CI installs that one.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const check = process.argv.includes('--check');
const bin = process.env.CLANG_FORMAT || 'clang-format';

const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  console.error(`quantkit: ${bin} not found (apt-get install clang-format, or set CLANG_FORMAT)`);
  process.exit(1);
}

function walk(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.(cc|h)$/.test(e.name)) out.push(p);
  }
  return out;
}

const files = walk(path.join(root, 'native'), []).sort();
const differ = [];
for (const f of files) {
  const src = fs.readFileSync(f, 'utf8');
  const r = spawnSync(bin, [`--assume-filename=${f}`], { input: src, encoding: 'utf8', cwd: root,
    maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    console.error(`quantkit: ${bin} failed on ${path.relative(root, f)}: ${r.stderr}`);
    process.exit(1);
  }
  if (r.stdout === src) continue;
  differ.push(path.relative(root, f));
  if (!check) fs.writeFileSync(f, r.stdout);
}
if (check && differ.length) {
  console.error(`quantkit: ${differ.length} file(s) not formatted (${probe.stdout.trim()}); run npm run format:`);
  for (const f of differ) console.error(`  ${f}`);
  process.exit(1);
}
console.log(`${check ? 'checked' : 'formatted'} ${files.length} files${check ? '' : `, ${differ.length} changed`}`);
