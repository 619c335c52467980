"""The log's first line ('# chainalloc-log 1 ...') and its footer ('# end ...')."""

from urllib.parse import unquote

FORMAT_VERSION = 1


class LogError(Exception):
    """The file is not a chainalloc log this reader can read."""


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
    if version != FORMAT_VERSION:
        raise LogError('log format version %d, this reader reads version %d'
                       % (version, FORMAT_VERSION))
    # The program's name and the chain are percent-encoded where they hold bytes that would
    # break the line (a space or newline in a program's name).
    head = {'version': version, 'chain': unquote(chain)}
    for tok in tokens[1:]:
        key, sep, value = tok.partition('=')
        if sep:
            head[key] = value   # unknown keys are kept and ignored: forward compatible
    if 'program' in head:
        head['program'] = unquote(head['program'])
    return head


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

