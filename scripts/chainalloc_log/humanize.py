"""Numbers as a person reads them: sizes, durations, text bars."""

import re


def human(n):
    n = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(n) < 1024 or unit == 'TiB':
            return ('%d %s' % (n, unit)) if unit == 'B' else ('%.1f %s' % (n, unit))
        n /= 1024


def sampling_note(d):
    """How a sampled log's figures were estimated, in words ('' when nothing is)."""
    if not d.get('estimated'):
        return ''
    if d.get('sampling') == 'bytes':
        return ('estimated: one sample per %s allocated on average, each sampled block '
                'weighted by 1/(1-exp(-size/%d))' % (human(d['sample']), d['sample']))
    return 'estimated: 1-in-%d sample by address, counts scaled by %d' % (d['sample'], d['sample'])


def short_size(n):
    for unit, div in (('G', 1 << 30), ('M', 1 << 20), ('K', 1 << 10)):
        if n >= div and n % div == 0:
            return '%d%s' % (n // div, unit)
    return str(n)


def secs(ns):
    for unit, div in (('s', 1e9), ('ms', 1e6), ('us', 1e3)):
        if abs(ns) >= div:
            return '%.3f %s' % (ns / div, unit)
    return '%d ns' % ns


def bar(value, top, width):
    if top <= 0 or value <= 0:
        return ''
    return '#' * max(1, round(width * value / top))



_SIZE = re.compile(r'(\d+)\s*([kmgt]?)(i?b)?', re.IGNORECASE)


def parse_size(text):
    """'64K', '1M', '4096', '2GiB' -> bytes, as the chain parser reads sizes (K = 1024).
    Raises ValueError on anything else."""
    m = _SIZE.fullmatch(text.strip())
    if not m or (m.group(3) and m.group(3).lower() == 'ib' and not m.group(2)):
        raise ValueError('bad size %r (accepted: a number with optional K, M, G or T '
                         'suffix)' % text)
    shift = {'': 0, 'k': 10, 'm': 20, 'g': 30, 't': 40}[m.group(2).lower()]
    return int(m.group(1)) << shift
