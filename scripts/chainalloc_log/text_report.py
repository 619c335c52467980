"""Terminal output of `summary`, `leaks` and `sites`."""

import os

from .diff import DIFF_FIGURES
from .sites import frame_text
from .humanize import bar, human, sampling_note, secs, short_size


CALL_KINDS = ('malloc', 'calloc', 'realloc', 'aligned', 'free', 'failed')


def command_line(d, width=100):
    """The process as a person typed it: argv when the log has it, else the program."""
    text = ' '.join(d['argv']) if d.get('argv') else d['program']
    return text if len(text) <= width else text[:width - 3] + '...'


def _ppid(d):
    return '?' if d['ppid'] is None else d['ppid']


def print_summary(d, out, top=10):
    w = out.write
    est = ' (%s)' % sampling_note(d) if d['estimated'] else ''
    w('== %s: %s (pid %s, parent %s)%s\n' % (d['file'], command_line(d), d['pid'], _ppid(d),
                                            est))
    w('chain: %s\n' % d['chain'])
    w('runtime %s, %s\n' % (secs(d['runtime_ns']),
                            'complete' if d['complete'] else
                            'INCOMPLETE: ' + '; '.join(d['incomplete_reasons'])))
    for warn in d['warnings']:
        w('warning: %s\n' % warn)
    _calls_table(d, w)
    if d['events_logged'] == 'summary':
        w('\nlive at exit  %d blocks\n' % d['leaked_blocks'])
        w('(a summary-only log, proxy(events=summary): the totals above are all it holds)\n\n')
        return
    _figures(d, w)
    _threads(d, w, top)
    _sizes(d, w, top)
    _layers(d, w)
    w('\n')


def _calls_table(d, w):
    w('\n%-9s %12s %12s\n' % ('calls', 'count', 'per second'))
    for k in CALL_KINDS:
        rate = d['calls_per_second'][k]
        w('%-9s %12d %12s\n' % (k, d['calls'][k], '-' if rate is None else '%.0f' % rate))


def _figures(d, w):
    w('\nrequested  %s in %d allocations\n' % (human(d['requested_bytes']), d['requests']))
    w('peak live  %s at %s\n' % (human(d['peak_bytes']), secs(d['peak_t_ns'])))
    w('%s %s in %d blocks (program: %s in %d, runtime: %s in %d)\n' % (
        'leaked     ' if d['has_footer'] else 'live at end',
        human(d['leaked_bytes']), d['leaked_blocks'],
        human(d['program_leaked_bytes']), d['program_leaked_blocks'],
        human(d['runtime_leaked_bytes']), d['runtime_leaked_blocks']))
    tmp = d['temporary']
    share = 100.0 * tmp['blocks'] / d['requests'] if d['requests'] else 0.0
    w('temporary  %d blocks (%.1f%% of allocations), %s, freed within %d calls of their '
      'thread\n' % (tmp['blocks'], share, human(tmp['bytes']), tmp['window_events']))
    w('bad frees  %d of pointers never allocated here, %d double; %d reallocs of pointers '
      'not allocated\n' % (d['unknown_frees'], d['double_frees'], d['unknown_reallocs']))
    for a in d['anomalies'][:5]:
        w('           line %d: %s %s (tid %s)\n' % (a['line'], a['kind'], a['ptr'], a['tid']))


def _more(w, rows, top, what):
    if len(rows) > top:
        w('... %d more %s (--top N shows more)\n' % (len(rows) - top, what))


def _threads(d, w, top):
    w('\n%-10s %12s %12s\n' % ('thread', 'calls', 'bytes'))
    for r in d['threads'][:top]:
        w('%-10s %12d %12s\n' % (str(r['tid']) + (' main' if r['main'] else ''),
                                 r['calls'], human(r['bytes'])))
    _more(w, d['threads'], top, 'threads')


def _sizes(d, w, top):
    w('\n%-10s %12s %12s\n' % ('top size', 'count', 'bytes'))
    for r in d['top_sizes'][:top]:
        w('%-10d %12d %12s\n' % (r['size'], r['count'], human(r['bytes'])))
    w('\nsize histogram (requests per power-of-two bucket)\n')
    most = max([h['count'] for h in d['histogram']] or [0])
    total = sum(h['count'] for h in d['histogram']) or 1
    for h in d['histogram']:
        w('<=%-7s %11d %5.1f%% %s\n' % (short_size(h['le']), h['count'],
                                         100.0 * h['count'] / total, bar(h['count'], most, 46)))


def _layers(d, w):
    # A layer that served nothing (a proxy only forwards) would be a row of zeros.
    rows = [r for r in d['layer_split'] if r['requests']]
    if not rows:
        return
    w('\n%-18s %12s %6s %12s %6s\n' % ('served by layer', 'requests', '%', 'bytes', '%'))
    req = sum(r['requests'] for r in rows) or 1
    byt = sum(r['bytes'] for r in rows) or 1
    for r in rows:
        w('%-18s %12d %5.1f%% %12s %5.1f%%\n' % (
            '%d %s' % (r['index'], r['name']), r['requests'], 100.0 * r['requests'] / req,
            human(r['bytes']), 100.0 * r['bytes'] / byt))


def print_combined(c, out, top=10):
    """All processes of a run together, before each one's own section."""
    w = out.write
    k = c['calls']
    w('== %d processes, %s\n' % (c['processes'], 'all complete' if c['complete'] else
                                  'some INCOMPLETE (see their sections)'))
    w('calls      %d: %s\n' % (sum(k.values()),
                               ', '.join('%s %d' % (n, k[n]) for n in CALL_KINDS)))
    w('requested  %s in %d allocations\n' % (human(c['requested_bytes']), c['requests']))
    w('peak live  at most %s (the sum of each process\'s peak)\n' % human(c['peak_bytes']))
    w('leaked     %s in %d blocks (program: %s in %d, runtime: %s in %d)\n' % (
        human(c['leaked_bytes']), c['leaked_blocks'],
        human(c['program_leaked_bytes']), c['program_leaked_blocks'],
        human(c['runtime_leaked_bytes']), c['runtime_leaked_blocks']))
    w('bad frees  %d of pointers never allocated in that process, %d double\n'
      % (c['unknown_frees'], c['double_frees']))
    if c['children']:
        n = len(c['children'])
        w('           (%s: %s frees of blocks inherited from the parent count as never '
          'allocated)\n' % ('pid %s is a child of another process here' % c['children'][0]
                             if n == 1 else '%d processes are children of others here (pids '
                             '%s)' % (n, ', '.join(map(str, c['children'][:top]))),
                             'its' if n == 1 else 'their'))
    w('\n%-30s %9s %12s %12s %12s %12s\n' % ('program', 'processes', 'calls', 'requested',
                                              'max peak', 'leaked'))
    for r in c['programs'][:top]:
        w('%-30s %9d %12d %12s %12s %12s\n' % (
            r['command'][:30], r['processes'], r['calls'], human(r['requested_bytes']),
            human(r['peak_bytes']), human(r['leaked_bytes'])))
    _more(w, c['programs'], top, 'programs')
    w('\n')


def print_leaks(d, out, top=50, frames=8):
    w = out.write
    what = 'leaked at exit' if d['has_footer'] else 'live at end of an INCOMPLETE log'
    est = ' (%s)' % sampling_note(d) if d['estimated'] else ''
    w('== %s: %s (pid %s): %s in %d blocks %s%s\n' % (
        d['file'], command_line(d), d['pid'], human(d['leaked_bytes']), d['leaked_blocks'],
        what, est))
    if d['events_logged'] == 'summary':
        w('(a summary-only log, proxy(events=summary): the footer counts the blocks; their '
          'sizes were not logged)\n\n')
        return
    _leak_sites(d, w, top, frames)
    _leak_lists(d, w, top)
    _symbol_warnings(d, w)
    w('\n')


def print_combined_leaks(c, out, top=50, frames=8):
    w = out.write
    w('== %d processes: %s in %d blocks leaked\n' % (c['processes'], human(c['leaked_bytes']),
                                                      c['leaked_blocks']))
    _leak_sites(c, w, top, frames)
    _leak_lists(c, w, top)
    w('\n')


def _stack_lines(w, stack, frames, indent='      '):
    """Up to `frames` frames of a symbolized stack, innermost first."""
    for f in stack[:frames]:
        w('%s%s\n' % (indent, frame_text(f)))
    if len(stack) > frames:
        w('%s... %d more frames (--frames N)\n' % (indent, len(stack) - frames))


def _leak_sites(d, w, top, frames):
    rows = d.get('leak_sites') or []
    if not rows:
        return
    w('\nprogram leaks by call site: %d site%s, top first\n'
      % (len(rows), '' if len(rows) == 1 else 's'))
    for r in rows[:top]:
        sizes = ', '.join(str(x) for x in r['sizes'][:6]) + (', ...' if len(r['sizes']) > 6 else '')
        w('  %s in %d block%s (size %s) from %s\n' % (
            human(r['bytes']), r['count'], '' if r['count'] == 1 else 's', sizes, r['site']))
        _stack_lines(w, r['stack'], frames)
    _more(w, rows, top, 'sites')


def _symbol_warnings(d, w):
    for text in d.get('symbol_warnings') or []:
        w('note: %s\n' % text)


SITE_TABLES = (
    ('most allocations', 'allocations', lambda r: '%d' % r['allocations']),
    ('most bytes allocated', 'bytes', lambda r: human(r['bytes'])),
    ('most bytes live at the peak', 'peak_bytes', lambda r: human(r['peak_bytes'])),
    ('most temporary allocations (freed within 8 calls of their thread)', 'temporary_blocks',
     lambda r: '%d' % r['temporary_blocks']),
    ('most bytes leaked', 'leaked_bytes', lambda r: human(r['leaked_bytes'])),
)


def print_sites(d, out, top=10, frames=3):
    """Top sites of a file (or of files combined, `d` with 'sites' only)."""
    w = out.write
    if 'file' in d:
        w('== %s: %s (pid %s)\n' % (d['file'], command_line(d), d['pid']))
        if d['estimated']:
            w('(%s)\n' % sampling_note(d))
    else:
        w('== %d processes, sites merged by symbolized stack\n' % d['processes'])
    if not d['sites']:
        w('no call stacks in this log (proxy(stacks=0), or a log made before stacks)\n\n')
        return
    for title, key, fmt in SITE_TABLES:
        rows = sorted((r for r in d['sites'] if r[key] > 0), key=lambda r: (-r[key], r['site']))
        if not rows:
            continue
        w('\n%s\n' % title)
        for r in rows[:top]:
            w('%12s  %s\n' % (fmt(r), r['site']))
            _stack_lines(w, r['stack'][1:], frames - 1, indent='              ')
        _more(w, rows, top, 'sites')
    _symbol_warnings(d, w)
    w('\n')


def _leak_lists(d, w, top):
    for title, rows in (('program leaks', d['leaks']),
                        ('runtime leaks (left by the C/C++ runtime, not the program)',
                         d['runtime_leaks'])):
        w('\n%s: %d blocks, %s\n' % (title, sum(r['count'] for r in rows),
                                      human(sum(r['bytes'] for r in rows))))
        if not rows:
            continue
        w('%10s %8s %12s %14s %10s  %s\n' % ('size', 'count', 'bytes', 'first at', 'thread',
                                             'kind' if rows is d['runtime_leaks'] else ''))
        for r in rows[:top]:
            w('%10d %8d %12s %14s %10d  %s\n' % (r['size'], r['count'], human(r['bytes']),
                                                 secs(r['first_t_ns']), r['first_tid'],
                                                 r.get('kind', '')))
        _more(w, rows, top, 'sizes')


def print_suggestion(res, path, out):
    w = out.write
    base = res['default']
    w('%d requests in %s\n' % (res['requests'], path))
    w('suggested  %2d classes: hit rate %6.2f%%, waste %5.2f%%\n' % (
        res['count'], 100 * res['hit_rate'], 100 * res['waste']))
    w('default    %2d classes: hit rate %6.2f%%, waste %5.2f%%\n' % (
        base['count'], 100 * base['hit_rate'], 100 * base['waste']))
    w('(hit rate: requests the freelist serves; waste: share of its bytes lost to '
      'rounding up)\n')
    if 'predicted' in res:
        mine, theirs = res['predicted'], base['predicted']
        ratio = res['predicted_ratio']
        w('predicted heap at the peak: suggested %s, default %s%s\n' % (
            human(mine['total_bytes']), human(theirs['total_bytes']),
            ' (x%.2f)' % ratio if ratio is not None else ''))
        for name, p in (('suggested', mine), ('default', theirs)):
            w('  %-9s live %s at the peak; freelist %s (rounding %s, thread caches %s, '
              'partly used spans %s, segment headers %s); glibc %s\n' % (
                  name, human(p['live_requested_bytes']),
                  human(p['freelist_bytes'] + p['segment_header_bytes']),
                  human(p['rounding_bytes']), human(p['cache_bytes']),
                  human(p['span_overhead_bytes']), human(p['segment_header_bytes']),
                  human(p['system_bytes'])))
        if res['same_as_default']:
            w('the suggestion is the default table: keep the default chain\n')
        elif not res['predicted_gain'] and ratio is not None and ratio > 1.03:
            w('the model predicts a larger heap than the default\'s: keep the default '
              'chain, or measure with --evaluate\n')
        elif not res['predicted_gain']:
            w('the model predicts no gain over the default (within 3%): keep the default '
              'chain, or measure with --evaluate\n')
    w(res['chain'] + '\n')


def print_evaluation(ev, out):
    """`suggest --evaluate`: both chains measured, medians and ratios, and the verdict."""
    w = out.write
    d, s = ev['chains']['default'], ev['chains']['suggested']
    w('\nmeasured: %s, %d run%s per chain, interleaved (medians)\n' % (
        ' '.join(ev['command']), ev['runs'], '' if ev['runs'] == 1 else 's'))
    w('%-22s %14s %14s %9s\n' % ('', 'default', 'suggested', 'ratio'))

    def ratio(key):
        r = ev['ratio'][key]
        return '-' if r is None else 'x%.3f' % r
    rows = (('peak RSS', 'rss_bytes', human),
            ('wall time', 'wall_seconds', lambda v: '%.3f s' % v),
            ('CPU time', 'cpu_seconds', lambda v: '%.3f s' % v),
            ('fell through', 'fell_through', lambda v: '{:,}'.format(round(v))),
            ('peak live (stats)', 'peak_live_bytes', human))
    for words, key, fmt in rows:
        w('%-22s %14s %14s %9s\n' % (words, fmt(d['median'][key]), fmt(s['median'][key]),
                                      ratio(key)))
    pr = ev['predicted_ratio']
    w('%-22s %14s %14s %9s\n' % ('predicted heap', human(d['predicted_bytes']),
                                  human(s['predicted_bytes']),
                                  '-' if pr is None else 'x%.3f' % pr))
    procs = max(d['stats_files'], s['stats_files'])
    if procs > 1:
        w('(%d processes a run: peak RSS is the largest of the program and the children it '
          'waited for; fell through and peak live add up over them)\n' % procs)
    w('RSS change: predicted %s, measured %s%s\n' % (
        _signed(ev['predicted_change_bytes'], human), _signed(ev['measured_change_bytes'], human),
        '' if ev['rss_source'] == 'time' else
        ' (RSS from wait4: without /usr/bin/time it includes the reader\'s own peak)'))
    if ev['recommend'] == 'suggested':
        w('verdict: better (%s): use %s\n' % (ev['why'], "CHAINALLOC_CHAIN='%s'" % s['chain']))
    else:
        w('verdict: %s (%s): keep the default chain (%s)\n' % (ev['verdict'], ev['why'],
                                                               d['chain']))


def _signed(value, fmt):
    return ('+' if value > 0 else '-' if value < 0 else '') + fmt(abs(value))


def _ratio(c):
    if c['ratio'] is None:
        return 'new' if c['after'] else ''
    return 'x%.2f' % c['ratio']


def _count(n):
    return '{:,}'.format(n)


DIFF_FORMATS = {'allocations': _count, 'bytes': human, 'peak_bytes': human,
                'leaked_bytes': human, 'leaked_blocks': _count}


def print_diff(obj, before, after, out, top=10, frames=3):
    """`diff`: the totals of both sides, then the sites that changed most."""
    w = out.write

    def side(files):
        return files[0]['file'] if len(files) == 1 else '%d processes' % len(files)
    w('== before: %s\n== after:  %s\n' % (side(before), side(after)))
    for d in before + after:
        if d['estimated']:
            w('(%s: %s)\n' % (d['file'], sampling_note(d)))
    w('\n%-18s %14s %14s %14s %8s\n' % ('totals', 'before', 'after', 'change', 'ratio'))
    for key, words in DIFF_FIGURES:
        c, fmt = obj['totals'][key], DIFF_FORMATS[key]
        w('%-18s %14s %14s %14s %8s\n' % (words, fmt(c['before']), fmt(c['after']),
                                           _signed(c['delta'], fmt), _ratio(c)))
    if not (obj['before']['stacks'] or obj['after']['stacks']):
        w('\nno call stacks in these logs (proxy(stacks=0), or logs made before stacks): '
          'no sites to compare\n')
        return
    if obj['before']['stacks'] != obj['after']['stacks']:
        w('\nnote: only the %s side has call stacks\n'
          % ('before' if obj['before']['stacks'] else 'after'))
    sort = obj['sort']
    words = dict(DIFF_FIGURES)[sort]
    rows = [r for r in obj['sites'] if r['status'] != 'same']
    w('\nsites that changed, by change in %s: %d of %d sites (matched by symbolized stack)\n'
      % (words, len(rows), len(obj['sites'])))
    for r in rows[:top]:
        c = r[sort]
        w('%14s %8s  %s%s\n' % (_signed(c['delta'], DIFF_FORMATS[sort]), _ratio(c), r['site'],
                                '  (new)' if r['status'] == 'new' else
                                '  (gone)' if r['status'] == 'gone' else ''))
        parts = []
        for key, name in (('allocations', 'allocations'), ('bytes', 'bytes'),
                          ('peak_bytes', 'peak'), ('leaked_bytes', 'leaked')):
            c = r[key]
            if c['before'] or c['after']:
                fmt = DIFF_FORMATS[key]
                parts.append('%s %s -> %s' % (name, fmt(c['before']), fmt(c['after'])))
                if key == 'leaked_bytes':
                    c = r['leaked_blocks']
                    parts[-1] += ' in %s -> %s blocks' % (_count(c['before']), _count(c['after']))
        w('%25s%s\n' % ('', '; '.join(parts)))
        _stack_lines(w, r['stack'][1:], frames - 1, indent=' ' * 25)
    _more(w, rows, top, 'sites')
    seen = set()
    for d in before + after:
        for text in d.get('symbol_warnings') or []:
            if text not in seen:
                seen.add(text)
                w('note: %s\n' % text)
