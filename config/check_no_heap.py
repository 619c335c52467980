#!/usr/bin/env python3
"""Fails if the config static library could allocate, throw or print.

The parser runs inside the first malloc of a process, so its objects must not reference the
heap, C++ exceptions or stdio. Also checks that the library's own functions are hidden, so
linking it into libchainalloc.so exports nothing.
Usage: check_no_heap.py NM READELF LIBRARY.a
"""
import re
import subprocess
import sys

FORBIDDEN = [
    # heap
    r'malloc', r'calloc', r'realloc', r'reallocarray', r'free', r'posix_memalign',
    r'aligned_alloc', r'memalign', r'valloc', r'strdup', r'strndup', r'asprintf', r'vasprintf',
    r'_Zn[wa].*', r'_Zd[la].*',  # operator new / delete, every overload
    # exceptions and the runtime support that implies them
    r'__cxa_throw', r'__cxa_allocate_exception', r'__cxa_begin_catch', r'_Unwind_Resume',
    r'__cxa_guard_acquire',  # a function-local static with a dynamic initializer
    r'_ZSt\d+__throw_.*',    # std::__throw_length_error and friends
    # stdio
    r'(v?f|v?s|v?sn|v?d)?printf', r'__\w*printf_chk', r'puts', r'fputs', r'putc', r'fputc',
    r'putchar', r'fwrite', r'write', r'perror', r'getenv', r'secure_getenv',
]
FORBIDDEN_RE = re.compile(r'(' + '|'.join(FORBIDDEN) + r')(@.*)?')


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main():
    nm, readelf, lib = sys.argv[1:4]
    undefined = set()
    for line in run(nm, '--undefined-only', '--format=posix', lib).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in ('U', 'w'):
            undefined.add(parts[0])
    bad = sorted(s for s in undefined if FORBIDDEN_RE.fullmatch(s))

    defined = [line.split()[0] for line in
               run(nm, '--defined-only', '--format=posix', lib).splitlines() if line.strip()]
    if not any('parse_chain' in s for s in defined):
        print(f'{lib}: parse_chain is not defined here; wrong library?')
        return 1

    # Global functions in our namespace must be hidden: readelf -s shows the visibility.
    exported = []
    for line in run(readelf, '-sW', lib).splitlines():
        f = line.split()
        if len(f) >= 8 and f[4] == 'GLOBAL' and f[6] != 'UND' and \
                'chainalloc' in f[7] and f[5] != 'HIDDEN':
            exported.append(f[7])

    for s in bad:
        print(f'{lib}: references forbidden symbol {s}')
    for s in exported:
        print(f'{lib}: symbol {s} is not hidden')
    if bad or exported:
        return 1
    print(f'{lib}: {len(undefined)} undefined symbols, none forbidden: '
          + ', '.join(sorted(undefined)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
