#!/usr/bin/env python3
"""An independent safetensors reader (standard library only), to check the files quantkit writes.

Usage: python3 scripts/check_safetensors.py FILE

Applies the format's rules as the reference implementation (huggingface/safetensors, Rust)
enforces them:
  - 8 bytes: N, the header length, a little-endian u64, N <= 100_000_000;
  - N bytes: a UTF-8 JSON object (the first byte '{'); no duplicate keys;
  - the optional key "__metadata__": an object of string -> string (or null);
  - every other key, a tensor: exactly {"dtype", "shape", "data_offsets"}, a known dtype, the shape
    a list of non-negative integers, data_offsets [begin, end] with
    end - begin == prod(shape) * bits(dtype) / 8 (a whole number of bytes);
  - sorted by offsets, the tensors tile the data section (the rest of the file) from 0 to its
    end: no gap, no overlap, no trailing bytes.

On success prints one line per tensor, sorted by name:
    name dtype [d0,d1] sha256-of-its-bytes
then one line per metadata entry, sorted by key:
    metadata key=value
(a backslash, newline or carriage return in a name, key or value is written as \\\\, \\n, \\r),
and exits 0. On a violation prints 'error: ...' to stderr and exits 1 (2 for a usage mistake).
"""
import hashlib
import json
import struct
import sys

MAX_HEADER = 100_000_000
U64_MAX = 2**64 - 1

# Bits per element of every dtype of the format (safetensors' Dtype::bitsize).
DTYPE_BITS = {
    'BOOL': 8,
    'F4': 4,
    'F6_E2M3': 6,
    'F6_E3M2': 6,
    'U8': 8,
    'I8': 8,
    'F8_E5M2': 8,
    'F8_E4M3': 8,
    'F8_E8M0': 8,
    'I16': 16,
    'U16': 16,
    'F16': 16,
    'BF16': 16,
    'I32': 32,
    'U32': 32,
    'F32': 32,
    'F64': 64,
    'I64': 64,
    'U64': 64,
    'C64': 64,
}


class FormatError(Exception):
    pass


def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise FormatError('duplicate key %s in the header' % json.dumps(k))
        obj[k] = v
    return obj


def _no_constant(name):
    raise FormatError('%s is not valid JSON' % name)


def _check_text(s, what):
    # json accepts lone surrogates in \\u escapes; they are not valid UTF-8 (serde_json rejects them).
    try:
        s.encode('utf-8')
    except UnicodeEncodeError:
        raise FormatError('%s %s is not valid Unicode (lone surrogate)' % (what, json.dumps(s)))


def _is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= U64_MAX


def _esc(s):
    return s.replace('\\', '\\\\').replace('\n', '\\n').replace('\r', '\\r')


def check(data):
    """Validates a whole file held in bytes; returns (tensors, metadata).

    tensors: name -> (dtype, shape, bytes); metadata: dict (empty when absent).
    """
    if len(data) < 8:
        raise FormatError('the file has %d bytes, too short for the 8-byte header length' % len(data))
    (n,) = struct.unpack('<Q', data[:8])
    if n > MAX_HEADER:
        raise FormatError('header length %d is more than %d' % (n, MAX_HEADER))
    if 8 + n > len(data):
        raise FormatError('header length %d but only %d bytes follow the length' % (n, len(data) - 8))
    raw = data[8:8 + n]
    try:
        text = raw.decode('utf-8', errors='strict')
    except UnicodeDecodeError as e:
        raise FormatError('the header is not valid UTF-8 (%s)' % e)
    if not text.startswith('{'):
        raise FormatError("the header does not start with '{'")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except FormatError:
        raise
    except ValueError as e:
        raise FormatError('the header is not valid JSON (%s)' % e)
    if not isinstance(header, dict):
        raise FormatError('the header is not a JSON object')

    metadata = {}
    entries = []
    for name, info in header.items():
        _check_text(name, 'key')
        if name == '__metadata__':
            if info is None:
                continue
            if not isinstance(info, dict):
                raise FormatError('__metadata__ is not an object of strings')
            for k, v in info.items():
                _check_text(k, '__metadata__ key')
                if not isinstance(v, str):
                    raise FormatError('__metadata__[%s] is not a string' % json.dumps(k))
                _check_text(v, '__metadata__ value')
                metadata[k] = v
            continue
        where = 'tensor %s' % json.dumps(name)
        if not isinstance(info, dict):
            raise FormatError('%s: not an object {dtype, shape, data_offsets}' % where)
        fields = set(info.keys())
        if fields != {'dtype', 'shape', 'data_offsets'}:
            missing = sorted({'dtype', 'shape', 'data_offsets'} - fields)
            extra = sorted(fields - {'dtype', 'shape', 'data_offsets'})
            raise FormatError('%s: fields missing %s, unknown %s' % (where, missing, extra))
        dtype = info['dtype']
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            raise FormatError('%s: unknown dtype %s' % (where, json.dumps(dtype)))
        shape = info['shape']
        if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
            raise FormatError('%s: shape %s is not a list of non-negative integers' % (where, json.dumps(shape)))
        offs = info['data_offsets']
        if not isinstance(offs, list) or len(offs) != 2 or not all(_is_uint(d) for d in offs):
            raise FormatError('%s: data_offsets %s is not [begin, end]' % (where, json.dumps(offs)))
        numel = 1
        for d in shape:
            numel *= d
        nbits = numel * DTYPE_BITS[dtype]
        if nbits > U64_MAX:
            raise FormatError('%s: shape %s overflows' % (where, shape))
        if nbits % 8 != 0:
            raise FormatError('%s: %d elements of %s are not a whole number of bytes' % (where, numel, dtype))
        begin, end = offs
        if end < begin:
            raise FormatError('%s: data_offsets [%d, %d] end before begin' % (where, begin, end))
        if end - begin != nbits // 8:
            raise FormatError('%s: data_offsets [%d, %d] hold %d bytes but shape %s of %s needs %d'
                              % (where, begin, end, end - begin, shape, dtype, nbits // 8))
        entries.append((begin, end, name, dtype, shape))

    data_len = len(data) - 8 - n
    at = 0
    for begin, end, name, _, _ in sorted(entries, key=lambda e: (e[0], e[1])):
        if begin != at:
            kind = 'overlaps the previous tensor' if begin < at else 'leaves a hole [%d, %d)' % (at, begin)
            raise FormatError('tensor %s: data_offsets [%d, %d] %s' % (json.dumps(name), begin, end, kind))
        at = end
    if at != data_len:
        raise FormatError('the tensors cover %d bytes but the data section has %d' % (at, data_len))

    base = 8 + n
    tensors = {name: (dtype, shape, data[base + b:base + e]) for b, e, name, dtype, shape in entries}
    return tensors, metadata


def main(argv):
    if len(argv) != 2:
        sys.stderr.write('usage: check_safetensors.py FILE\n')
        return 2
    try:
        with open(argv[1], 'rb') as f:
            data = f.read()
    except OSError as e:
        sys.stderr.write('error: %s: cannot read (%s)\n' % (argv[1], e.strerror or e))
        return 1
    try:
        tensors, metadata = check(data)
    except FormatError as e:
        sys.stderr.write('error: %s: %s\n' % (argv[1], e))
        return 1
    lines = []
    for name in sorted(tensors):
        dtype, shape, b = tensors[name]
        lines.append('%s %s [%s] %s' % (_esc(name), dtype, ','.join(str(d) for d in shape), hashlib.sha256(b).hexdigest()))
    for k in sorted(metadata):
        lines.append('metadata %s=%s' % (_esc(k), _esc(metadata[k])))
    out = ''.join(line + '\n' for line in lines)
    sys.stdout.buffer.write(out.encode('utf-8'))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
