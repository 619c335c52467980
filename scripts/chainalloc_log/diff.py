"""`diff`: what grew or shrank between two runs, by call site.

Each side (one or several logs) is reduced to its sites, merged by symbolized stack
(sites.stack_key: function, file and line of each frame, or module and offset when a frame
has no symbol), so the same code matches across runs even though ASLR moved its addresses.
A site then has its figures before and after, and for each a delta and a ratio."""

from .figures import combine
from .sites import SITE_FIGURES, merge_sites, stack_key

# The figures compared, in report order: (key, words).
DIFF_FIGURES = (('allocations', 'allocations'), ('bytes', 'bytes allocated'),
                ('peak_bytes', 'live at the peak'), ('leaked_bytes', 'leaked bytes'),
                ('leaked_blocks', 'leaked blocks'))
DIFF_KEYS = tuple(k for k, _ in DIFF_FIGURES)
# --sort names -> figure keys.
SORT_KEYS = {'bytes': 'bytes', 'allocations': 'allocations', 'peak': 'peak_bytes',
             'leaked': 'leaked_bytes'}


def change(before, after):
    """{before, after, delta, ratio}: ratio is after / before, null when before is 0."""
    return {'before': before, 'after': after, 'delta': after - before,
            'ratio': round(after / before, 4) if before else None}


def side_sites(files):
    """The sites of a side's files merged by stack (every file already has 'sites')."""
    return merge_sites([d['sites'] for d in files], SITE_FIGURES)


def side_totals(files):
    """A side's whole figures, from the files (not the sum of the sites: allocations made
    without a stack count too). The peak is the sum of the per-process peaks."""
    c = combine(files)
    return {'allocations': c['requests'], 'bytes': c['requested_bytes'],
            'peak_bytes': c['peak_bytes'], 'leaked_bytes': c['program_leaked_bytes'],
            'leaked_blocks': c['program_leaked_blocks']}


def diff_sites(before, after, by='bytes'):
    """Rows {site, stack, status, allocations: {before, after, delta, ratio}, ...}, the
    largest absolute change of `by` first (then of the other figures). status: `new` (only
    after), `gone` (only before), `changed` or `same`."""
    zero = dict.fromkeys(DIFF_KEYS, 0)
    index = {}
    for which, rows in ((0, before), (1, after)):
        for r in rows:
            slot = index.setdefault(stack_key(r['stack']), [None, None])
            slot[which] = r
    out = []
    for b, a in index.values():
        shown = a if a is not None else b
        row = {'site': shown['site'], 'stack': shown['stack']}
        for k in DIFF_KEYS:
            row[k] = change((b or zero)[k], (a or zero)[k])
        if b is None:
            row['status'] = 'new'
        elif a is None:
            row['status'] = 'gone'
        else:
            row['status'] = 'changed' if any(row[k]['delta'] for k in DIFF_KEYS) else 'same'
        out.append(row)
    order = (by,) + tuple(k for k in DIFF_KEYS if k != by)
    out.sort(key=lambda r: tuple(-abs(r[k]['delta']) for k in order) + (r['site'],))
    return out


def diff_object(before_files, after_files, by='bytes'):
    """The `combined` part of `diff --json`."""
    tb, ta = side_totals(before_files), side_totals(after_files)
    return {
        'sort': by,
        'before': {'processes': len(before_files),
                   'stacks': any(d['stacks'] for d in before_files)},
        'after': {'processes': len(after_files),
                  'stacks': any(d['stacks'] for d in after_files)},
        'totals': {k: change(tb[k], ta[k]) for k in DIFF_KEYS},
        'sites': diff_sites(side_sites(before_files), side_sites(after_files), by),
    }
