// Errors of the file readers: each names the file (as given) and the field in it that is wrong.

/** A problem in a file: `file` is the path as given, `field` the place in it ('' for the whole file). */
export class FileFieldError extends Error {
  readonly file: string;
  readonly field: string;
  constructor(file: string, field: string, message: string, options?: { cause?: unknown }) {
    super(field ? `${file}: ${field}: ${message}` : `${file}: ${message}`, options);
    this.name = new.target.name;
    this.file = file;
    this.field = field;
  }
}

/** A problem in a weight or model file (safetensors, tfjs, gnubg, quantkit's model files). */
export class WeightFileError extends FileFieldError {}

/** Short description of a value read from a file, for error messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return `'${v.length > 60 ? v.slice(0, 60) + '...' : v}'`;
  if (typeof v === 'number') return String(v);
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? s.slice(0, 60) + '...' : s;
}

/** A reader's error for a file that cannot be read: "<file>: cannot read the file (<code or message>)". */
export function cannotReadFile(Err: new (file: string, field: string, message: string, options?: { cause?: unknown }) => FileFieldError) {
  return (file: string, e: unknown): FileFieldError => {
    const er = e as NodeJS.ErrnoException;
    return new Err(file, '', `cannot read the file (${er?.code ?? er?.message ?? String(e)})`, { cause: e });
  };
}
