// GNU Backgammon's binary neural-net weights (gnubg.wd; the Debian package gnubg installs one,
// the caller names the file), as written by gnubg's NeuralNetSaveBinary after a 2-float header:
//
//   float32 magic 472.3782, float32 version 1.0
//   6 nets (contact, race, crashed, pruning-contact, pruning-crashed, pruning-race), each:
//     int32 cInput, cHidden, cOutput, nTrained; float32 betaHidden, betaOutput;
//     float32 hidden weights [cInput * cHidden], input-major (weight of input i to unit j at i*cHidden + j)
//     float32 output weights [cOutput * cHidden], output-major
//     float32 hidden bias (gnubg: arHiddenThreshold) [cHidden]
//     float32 output bias (arOutputThreshold) [cOutput]
//
// gnubg writes the file with fwrite in the byte order of the machine that built it. The byte order
// is taken from the magic number: little-endian files (x86, arm64) and big-endian ones both load.
// Everything is checked: the header, the counts (1..65536 units per layer), positive finite betas,
// finite weights, and that the file holds exactly the bytes the net headers imply.
import { readFailure, runAsync, runSync, wholeFileSteps, WholeFileLoader } from './read';
import { typeError } from '../errors';
import { WeightFileError } from './errors';

/** The nets of gnubg.wd, in file order (gnubg's nnContact, nnRace, nnCrashed, nnpContact, nnpCrashed, nnpRace). */
export const GNUBG_NET_NAMES = ['contact', 'race', 'crashed', 'pruning-contact', 'pruning-crashed', 'pruning-race'] as const;
export const GNUBG_MAGIC = Math.fround(472.3782);
export const GNUBG_VERSION = 1;
/** Largest accepted cInput / cHidden / cOutput. */
export const GNUBG_MAX_UNITS = 65536;

export interface GnubgMatrix {
  data: Float32Array;
  shape: [number, number];
}

export interface GnubgNet {
  name: string;
  cIn: number;
  cHid: number;
  cOut: number;
  /** The header's nTrained field (gnubg ignores it on load). */
  nTrained: number;
  betaH: number;
  betaO: number;
  /** Input-to-hidden weights, shape [cIn, cHid] (row i: the weights from input i). */
  hidden: GnubgMatrix;
  /** Hidden-to-output weights, shape [cOut, cHid] (row k: the weights into output k). */
  output: GnubgMatrix;
  hiddenBias: Float32Array;
  outputBias: Float32Array;
  /** Byte order of the file the net came from. */
  littleEndian: boolean;
}

const HEADER_BYTES = 8;
const NET_HEADER_BYTES = 24;

/**
 * Parse the bytes of a gnubg.wd file. `file` names the source in error messages.
 * Throws WeightFileError ("<file>: <field>: expected ... but received ...") on any problem.
 */
export function parseGnubgWeights(bytes: Uint8Array, file = '<buffer>'): GnubgNet[] {
  if (!(bytes instanceof Uint8Array)) throw typeError('bytes', 'a Uint8Array or Buffer', bytes);
  if (typeof file !== 'string') throw typeError('file', 'a string', file);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = bytes.byteLength;
  if (size < HEADER_BYTES) {
    throw new WeightFileError(file, 'header', `expected ${HEADER_BYTES} bytes (magic and version, 2 float32) but received a file of ${size} bytes`);
  }
  let le: boolean;
  if (dv.getFloat32(0, true) === GNUBG_MAGIC) le = true;
  else if (dv.getFloat32(0, false) === GNUBG_MAGIC) le = false;
  else {
    throw new WeightFileError(file, 'header.magic',
      `expected the float32 472.3782 (in either byte order) but received ${dv.getFloat32(0, true)} ` +
      `(bytes ${Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ')})`);
  }
  const version = dv.getFloat32(4, le);
  if (version !== GNUBG_VERSION) {
    throw new WeightFileError(file, 'header.version', `expected ${GNUBG_VERSION} but received ${version}`);
  }
  let at = HEADER_BYTES;
  const nets: GnubgNet[] = [];
  GNUBG_NET_NAMES.forEach((name, k) => {
    const nf = `nets[${k}] (${name})`;
    if (size - at < NET_HEADER_BYTES) {
      throw new WeightFileError(file, nf,
        `expected a ${NET_HEADER_BYTES}-byte net header at byte ${at} but received ${size - at} bytes (the file ends after ${k} of ${GNUBG_NET_NAMES.length} nets)`);
    }
    const count = (field: string, off: number): number => {
      const v = dv.getInt32(at + off, le);
      if (v < 1 || v > GNUBG_MAX_UNITS) throw new WeightFileError(file, `${nf}.${field}`, `expected an integer between 1 and ${GNUBG_MAX_UNITS} but received ${v}`);
      return v;
    };
    const cIn = count('cIn', 0);
    const cHid = count('cHid', 4);
    const cOut = count('cOut', 8);
    const nTrained = dv.getInt32(at + 12, le);
    const beta = (field: string, off: number): number => {
      const v = dv.getFloat32(at + off, le);
      if (!(v > 0) || !Number.isFinite(v)) throw new WeightFileError(file, `${nf}.${field}`, `expected a positive finite float32 but received ${v}`);
      return v;
    };
    const betaH = beta('betaH', 16);
    const betaO = beta('betaO', 20);
    at += NET_HEADER_BYTES;
    const floats = cIn * cHid + cOut * cHid + cHid + cOut;
    if (size - at < 4 * floats) {
      throw new WeightFileError(file, nf,
        `expected ${4 * floats} bytes of weights at byte ${at} (cIn ${cIn}, cHid ${cHid}, cOut ${cOut}) but received ${size - at} bytes`);
    }
    const read = (field: string, n: number): Float32Array => {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getFloat32(at + 4 * i, le);
        if (!Number.isFinite(v)) throw new WeightFileError(file, `${nf}.${field}[${i}]`, `expected a finite float32 but received ${v}`);
        out[i] = v;
      }
      at += 4 * n;
      return out;
    };
    const hidden = read('hidden', cIn * cHid);
    const output = read('output', cOut * cHid);
    const hiddenBias = read('hiddenBias', cHid);
    const outputBias = read('outputBias', cOut);
    nets.push({
      name, cIn, cHid, cOut, nTrained, betaH, betaO,
      hidden: { data: hidden, shape: [cIn, cHid] },
      output: { data: output, shape: [cOut, cHid] },
      hiddenBias, outputBias, littleEndian: le,
    });
  });
  if (at !== size) {
    throw new WeightFileError(file, '',
      `expected exactly ${at} bytes (the header and ${GNUBG_NET_NAMES.length} nets) but received a file of ${size} bytes (${size - at} bytes after the last net)`);
  }
  return nets;
}

const GNUBG_LOADER: WholeFileLoader<GnubgNet[]> = {
  arg: 'path',
  parse: (bytes, file) => parseGnubgWeights(bytes, file),
  readError: (file, e) => new WeightFileError(file, '', `cannot read the weights file: ${readFailure(e)}`, { cause: e }),
};

/** Load gnubg's six nets from a gnubg.wd file. */
export function loadGnubgWeights(path: string): Promise<GnubgNet[]> {
  return runAsync(wholeFileSteps(path, GNUBG_LOADER));
}

/** Synchronous loadGnubgWeights. */
export function loadGnubgWeightsSync(path: string): GnubgNet[] {
  return runSync(wholeFileSteps(path, GNUBG_LOADER));
}
