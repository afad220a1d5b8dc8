#!/usr/bin/env node
'use strict';
// The quantkit command line (lib/cli/main.ts): quantkit --help.
require('../dist/cjs/cli/main.js').main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => { process.stderr.write(`quantkit: ${e && e.stack ? e.stack : e}\n`); process.exitCode = 1; },
);
