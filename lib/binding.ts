// Loads the native addon: a prebuilt binary from prebuilds/<platform>-<arch>/ or the one built
// from source into build/Release (node-gyp-build's resolution).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Binding } from '../binding';

function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'quantkit') return dir;
      } catch {
        // keep looking
      }
    }
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..');
}

function load(): Binding {
  // QUANTKIT_ADDON: an addon built elsewhere (the sanitizer build of scripts/sanitize.js).
  const override = process.env.QUANTKIT_ADDON;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (override) return require(path.resolve(override)) as Binding;
  const root = packageRoot();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  return nodeGypBuild(root) as Binding;
}

export const native: Binding = load();
