"""The log's first line ('# chainalloc-log 1 ...') and its footer ('# end ...')."""

import os
from urllib.parse import unquote

FORMAT_VERSIONS = (1, 2, 3)   # text lines; compact records; packed (the body differs, the header is alike)


class LogError(Exception):
    """The file is not a chainalloc log this reader can read."""


def read_header(f):
    """(first line, parse_header of it) of the log open as `f`; LogError when the file is empty
    or its first line is not whole."""
    first = f.readline()
    if not first:
        raise LogError('empty file')
    if not first.endswith(b'\n'):
        raise LogError('header line is cut (log holds no complete line)')
    return first, parse_header(first)


def layer_names(head):
    """The header's layers=, outermost first."""
    return [x for x in head.get('layers', '').split(',') if x]


def parse_header(line):
    """'# chainalloc-log 1 k=v ... chain=<rest of line>' -> dict (values are strings)."""
    text = line.decode('utf-8', 'replace').rstrip('\r\n')
    prefix = '# chainalloc-log '
    if not text.startswith(prefix):
        raise LogError('not a chainalloc log (first line does not start with %r)' % prefix)
    rest = text[len(prefix):]
    chain = ''
    cut = rest.find(' chain=')
    if cut >= 0:
        chain = rest[cut + len(' chain='):]
        rest = rest[:cut]
    tokens = rest.split()
    if not tokens:
        raise LogError('header has no format version')
    try:
        version = int(tokens[0])
    except ValueError:
        raise LogError('header format version %r is not a number' % tokens[0])
    if version not in FORMAT_VERSIONS:
        raise LogError('log format version %d, this reader reads versions %s'
                       % (version, ', '.join(map(str, FORMAT_VERSIONS))))
    # The program's name and the chain are percent-encoded where they hold bytes that would
    # break the line (a space or newline in a program's name).
    head = {'version': version, 'chain': unquote(chain)}
    for tok in tokens[1:]:
        key, sep, value = tok.partition('=')
        if sep:
            head[key] = value   # unknown keys are kept and ignored: forward compatible
    if 'program' in head:
        head['program'] = unquote(head['program'])
    if 'argv' in head:
        # Comma-separated; each argument percent-encoded, so a ',' inside one is '%2C'.
        head['argv'] = [unquote(a) for a in head['argv'].split(',')] if head['argv'] else []
    return head


def command_label(program, argv):
    """A short name for the process: the program and its first argument that is not an
    option ('git pack-objects', 'python3 build.py'), which tells apart the processes of one
    run that share a program. Just the program when the log has no argv."""
    words = [program]
    for arg in (argv or [])[1:]:
        if not arg.startswith('-'):
            words.append(os.path.basename(arg) if '/' in arg else arg)
            break
    return ' '.join(words)


def parse_footer(line):
    """'# end k=v ...' -> dict of ints (non-numeric values are kept as strings)."""
    out = {}
    for tok in line.decode('utf-8', 'replace').split()[2:]:
        key, sep, value = tok.partition('=')
        if sep:
            try:
                out[key] = int(value)
            except ValueError:
                out[key] = value
    return out

