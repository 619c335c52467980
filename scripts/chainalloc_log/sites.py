"""Figures by call site: a site is a distinct call stack (LOG-FORMAT.md, Call stacks).
Stacks the proxy wrote twice under two ids (two threads adding the same one at once) are
one site. `leaks` groups the program's leaks by site; `sites` ranks sites by allocations,
bytes, live bytes at the peak, temporary allocations and leaks."""

import os

from .parse import SITE_ALLOCS, SITE_BYTES, SITE_TMP_BLOCKS, SITE_TMP_BYTES

NO_STACK = ()   # blocks whose line carries no stack id (stacks=0, a full stack table)
SITE_FIGURES = ('allocations', 'bytes', 'peak_bytes', 'temporary_blocks', 'temporary_bytes',
                'leaked_blocks', 'leaked_bytes')


def has_stacks(d):
    return bool(d['_stacks'].stacks)


def _site_of(scan):
    """stack id -> site key (the frames; one key for ids with the same frames)."""
    return {sid: frames for sid, frames in scan.stacks.items()}


def _symbols(d, symbolizer):
    """{site key: [Frame]} for a file, symbolized once and kept in d."""
    if '_symbols' not in d:
        scan = d['_stacks']
        by_id = symbolizer.symbolize(scan)
        d['_symbols'] = {scan.stacks[sid]: frames for sid, frames in by_id.items()}
        d['_symbol_warnings'] = list(symbolizer.warnings)
    return d['_symbols']


def _stack_json(frames):
    return [f.as_json() for f in frames]


def _label(frames):
    return frames[0].label() if frames else '(no call stack)'


def leak_sites(d, symbolizer):
    """The program's leaks by site, largest bytes first: count, bytes, sizes, the stack."""
    if not has_stacks(d):
        return []
    scale = d['_scale']
    site_of = _site_of(d['_stacks'])
    groups = {}
    for _, rec, _ in d['_program_leaks']:
        key = site_of.get(rec[7], NO_STACK) if rec[7] is not None else NO_STACK
        g = groups.setdefault(key, [0, 0, set()])
        g[0] += rec[6]
        g[1] += rec[0] * rec[6]
        g[2].add(rec[0])
    syms = _symbols(d, symbolizer)
    out = []
    for key, (count, nbytes, sizes) in groups.items():
        frames = syms.get(key, [])
        out.append({'count': round(count * scale), 'bytes': round(nbytes * scale),
                    'sizes': sorted(sizes), 'site': _label(frames),
                    'stack': _stack_json(frames)})
    return merge_sites([out], ('count', 'bytes'))


def site_table(d, symbolizer):
    """Every site of a file with its figures, most bytes first."""
    if not has_stacks(d):
        return []
    scan = d['_stacks']
    scale = d['_scale']
    site_of = _site_of(scan)
    rows = {}

    def row(key):
        r = rows.get(key)
        if r is None:
            r = rows[key] = {'allocations': 0, 'bytes': 0, 'peak_bytes': 0,
                             'temporary_blocks': 0, 'temporary_bytes': 0,
                             'leaked_blocks': 0, 'leaked_bytes': 0}
        return r
    for sid, fig in scan.sites.items():
        r = row(site_of.get(sid, NO_STACK))
        r['allocations'] += fig[SITE_ALLOCS]
        r['bytes'] += fig[SITE_BYTES]
        r['temporary_blocks'] += fig[SITE_TMP_BLOCKS]
        r['temporary_bytes'] += fig[SITE_TMP_BYTES]
    for sid, live in scan.peak_sites.items():
        row(site_of.get(sid, NO_STACK))['peak_bytes'] += live
    for _, rec, _ in d['_program_leaks']:
        if rec[7] is None:
            continue
        r = row(site_of.get(rec[7], NO_STACK))
        r['leaked_blocks'] += rec[6]
        r['leaked_bytes'] += rec[0] * rec[6]
    syms = _symbols(d, symbolizer)
    out = []
    for key, r in rows.items():
        frames = syms.get(key, [])
        r = {k: round(v * scale) for k, v in r.items()}
        r['site'] = _label(frames)
        r['stack'] = _stack_json(frames)
        out.append(r)
    return merge_sites([out], SITE_FIGURES)


def frame_key(f):
    """What names a frame (JSON shape) the same way in every run: function, file and line
    when symbolized, else its module and offset into it (ASLR moves the address, not the
    offset), else (a frame in no listed module) its address."""
    if f['function'] or f['file']:
        return (f['function'], f['file'], f['line'])
    if f.get('offset') is not None:
        return (f['module'], f['offset'])
    return (f['module'], f['address'])


def frame_text(f):
    """One frame (JSON shape) as a line: 'function  file:line', or 'module+0xoffset' for a
    frame without a symbol; '(inlined) ' first for an inlined frame."""
    fn = f['function']
    if f['file']:
        where = '%s:%d' % (f['file'], f['line']) if f['line'] else f['file']
    elif fn:
        where = os.path.basename(f['module']) if f['module'] else '?'
    else:
        fn, where = ('%s+%s' % (os.path.basename(f['module']), f['offset']), '') \
            if f['module'] and f.get('offset') else (f['address'], '?')
    return ('%s%s  %s' % ('(inlined) ' if f['inlined'] else '', fn, where)).rstrip()


def stack_key(stack):
    """A site's identity across processes and runs: its frames' keys."""
    return tuple(frame_key(f) for f in stack)


def merge_sites(lists, keys):
    """Rows of several files merged by their symbolized stack (stack_key): the same code in
    several processes or runs, or two return addresses of one line (an unrolled loop), is
    one site."""
    merged = {}
    for rows in lists:
        for r in rows:
            k = stack_key(r['stack'])
            m = merged.get(k)
            if m is None:
                merged[k] = dict(r, sizes=list(r['sizes'])) if 'sizes' in r else dict(r)
                continue
            for key in keys:
                m[key] += r[key]
            if 'sizes' in r:
                m['sizes'] = sorted(set(m['sizes']) | set(r['sizes']))
    return sorted(merged.values(), key=lambda r: (-r['bytes'], r['site']))
