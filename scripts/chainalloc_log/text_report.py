"""Terminal output of `summary` and `leaks`."""

from .humanize import bar, human, secs, short_size


def print_summary(d, out):
    w = out.write
    est = ' (estimated: 1-in-%d sample, counts scaled by %d)' % (d['sample'], d['sample']) \
        if d['estimated'] else ''
    w('== %s  %s pid %s (parent %s)%s\n' % (d['file'], d['program'], d['pid'], d['ppid'], est))
    w('chain: %s\n' % d['chain'])
    w('runtime %s, %s\n' % (secs(d['runtime_ns']),
                            'complete' if d['complete'] else
                            'INCOMPLETE: ' + '; '.join(d['incomplete_reasons'])))
    for warn in d['warnings']:
        w('warning: %s\n' % warn)
    w('\n%-9s %12s %12s\n' % ('calls', 'count', 'per second'))
    for k in ('malloc', 'calloc', 'realloc', 'aligned', 'free', 'failed'):
        rate = d['calls_per_second'][k]
        w('%-9s %12d %12s\n' % (k, d['calls'][k], '-' if rate is None else '%.0f' % rate))
    w('\nrequested  %s in %d allocations\n' % (human(d['requested_bytes']), d['requests']))
    w('peak live  %s at %s\n' % (human(d['peak_bytes']), secs(d['peak_t_ns'])))
    w('%s %s in %d blocks (program: %s in %d, runtime: %s in %d)\n' % (
        'leaked     ' if d['has_footer'] else 'live at end',
        human(d['leaked_bytes']), d['leaked_blocks'],
        human(d['program_leaked_bytes']), d['program_leaked_blocks'],
        human(d['runtime_leaked_bytes']), d['runtime_leaked_blocks']))
    tmp = d['temporary']
    share = 100.0 * tmp['blocks'] / d['requests'] if d['requests'] else 0.0
    w('temporary  %d blocks (%.1f%% of allocations), %s, freed within %d events of their '
      'thread\n' % (tmp['blocks'], share, human(tmp['bytes']), tmp['window_events']))
    w('bad frees  %d of unknown pointers, %d double; %d reallocs of pointers not live\n' % (
        d['unknown_frees'], d['double_frees'], d['unknown_reallocs']))
    for a in d['anomalies'][:5]:
        w('           line %d: %s %s (tid %s)\n' % (a['line'], a['kind'], a['ptr'], a['tid']))

    w('\n%-10s %12s %12s\n' % ('thread', 'calls', 'bytes'))
    for r in d['threads'][:16]:
        w('%-10s %12d %12s\n' % (str(r['tid']) + (' main' if r['main'] else ''),
                                 r['calls'], human(r['bytes'])))
    if len(d['threads']) > 16:
        w('... %d more threads\n' % (len(d['threads']) - 16))

    w('\n%-10s %12s %12s\n' % ('top size', 'count', 'bytes'))
    for r in d['top_sizes'][:10]:
        w('%-10d %12d %12s\n' % (r['size'], r['count'], human(r['bytes'])))

    w('\nsize histogram (requests per power-of-two bucket)\n')
    top = max([h['count'] for h in d['histogram']] or [0])
    total = sum(h['count'] for h in d['histogram']) or 1
    for h in d['histogram']:
        w('<=%-7s %11d %5.1f%% %s\n' % (short_size(h['le']), h['count'],
                                         100.0 * h['count'] / total, bar(h['count'], top, 46)))

    w('\n%-18s %12s %6s %12s %6s\n' % ('layer', 'requests', '%', 'bytes', '%'))
    req = sum(r['requests'] for r in d['layer_split']) or 1
    byt = sum(r['bytes'] for r in d['layer_split']) or 1
    for r in d['layer_split']:
        w('%-18s %12d %5.1f%% %12s %5.1f%%\n' % (
            '%d %s' % (r['index'], r['name']), r['requests'], 100.0 * r['requests'] / req,
            human(r['bytes']), 100.0 * r['bytes'] / byt))
    w('\n')


def print_combined(c, out):
    k = c['calls']
    out.write('== combined: %d processes%s; calls malloc %d calloc %d realloc %d aligned %d '
              'free %d failed %d; peak (sum) %s; leaked %s in %d blocks; %s\n' % (
                  c['processes'],
                  (' (children: %s; their frees of inherited blocks count as unknown frees)'
                   % ', '.join(map(str, c['children']))) if c['children'] else '',
                  k['malloc'], k['calloc'], k['realloc'], k['aligned'], k['free'], k['failed'],
                  human(c['peak_bytes']), human(c['leaked_bytes']), c['leaked_blocks'],
                  'all complete' if c['complete'] else 'some incomplete'))


def print_leaks(d, out):
    w = out.write
    what = 'leaked at exit' if d['has_footer'] else 'live at end of an INCOMPLETE log'
    est = ' (estimated from a 1-in-%d sample)' % d['sample'] if d['estimated'] else ''
    w('%s pid %s: %s in %d blocks %s%s\n' % (d['program'], d['pid'], human(d['leaked_bytes']),
                                             d['leaked_blocks'], what, est))
    for title, rows in (('program leaks', d['leaks']), ('runtime leaks (C/C++ runtime, '
                                                          'not the program)', d['runtime_leaks'])):
        w('\n%s: %d blocks, %s\n' % (title, sum(r['count'] for r in rows),
                                    human(sum(r['bytes'] for r in rows))))
        if not rows:
            continue
        w('%10s %8s %12s %14s %10s  %s\n' % ('size', 'count', 'bytes', 'first at', 'thread',
                                             'kind' if rows is d['runtime_leaks'] else ''))
        for r in rows[:50]:
            w('%10d %8d %12s %14s %10d  %s\n' % (r['size'], r['count'], human(r['bytes']),
                                                 secs(r['first_t_ns']), r['first_tid'],
                                                 r.get('kind', '')))
        if len(rows) > 50:
            w('... %d more sizes\n' % (len(rows) - 50))



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
    w(res['chain'] + '\n')
