"""`plot`: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched).
With several logs it starts with the run as a whole: the processes on one time axis, a
row per program and a flame graph of all processes, then a section per process."""

from .figures import combine
from .flame import FLAME_STYLE, flame_section, run_flame_section
from .humanize import human, sampling_note, secs, short_size
from .sites import frame_text
from .svg import bar_columns, esc, live_chart, process_lanes

STYLE = '''
body{font-family:system-ui,sans-serif;margin:24px auto;color:#222;max-width:1100px;padding:0 12px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:36px;border-bottom:2px solid #ddd}
h3{font-size:16px;margin:24px 0 6px}p.note{color:#555;font-size:13px;margin:2px 0 8px}
table{border-collapse:collapse;margin-bottom:12px}
th,td{text-align:left;padding:3px 10px;border-bottom:1px solid #e5e5e5;font-size:14px;
overflow-wrap:anywhere;vertical-align:top}
th{white-space:nowrap;overflow-wrap:normal}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00}.hover{fill:transparent}.hover:hover{fill:rgba(0,0,0,.08)}
g.row:hover text{font-weight:bold}nav a{margin-right:14px}
details summary{cursor:pointer}details div{font-family:monospace;font-size:12px;color:#444}
''' + FLAME_STYLE

COUNT = ('requests', lambda v: '{:,}'.format(v))
BYTES = ('bytes', human)


def table(rows, head=None, numeric=()):
    """An HTML table; `numeric` lists the columns aligned right."""
    def cells(tag, values):
        return ''.join('<%s%s>%s</%s>' % (tag, ' class="n"' if i in numeric else '', esc(v), tag)
                       for i, v in enumerate(values))
    out = ['<table>']
    if head:
        out.append('<tr>%s</tr>' % cells('th', head))
    out += ['<tr>%s</tr>' % cells('td', r) for r in rows]
    out.append('</table>')
    return ''.join(out)


def facts_table(rows):
    """Label/value rows: the label is a heading cell, so it never wraps."""
    return '<table>%s</table>' % ''.join('<tr><th>%s</th><td>%s</td></tr>' % (esc(k), esc(v))
                                         for k, v in rows)


def facts(d):
    """The per-process key figures, as label/value rows."""
    rows = [
        ('command', ' '.join(d['argv']) if d.get('argv') else d['program']),
        ('process', 'pid %s, parent %s' % (d['pid'], d['ppid'])),
        ('chain', d['chain']),
        ('status', 'complete' if d['complete'] else
         'INCOMPLETE: ' + '; '.join(d['incomplete_reasons'])),
        ('runtime', secs(d['runtime_ns'])),
        ('calls', ', '.join('%s %s' % (k, '{:,}'.format(v)) for k, v in d['calls'].items())),
        ('requested', '%s in %s allocations' % (human(d['requested_bytes']),
                                                '{:,}'.format(d['requests']))),
        ('peak live', '%s at %s' % (human(d['peak_bytes']), secs(d['peak_t_ns']))),
        ('leaked at exit' if d['has_footer'] else 'live at end of log',
         '%s in %d blocks (program %s, runtime %s)' % (
             human(d['leaked_bytes']), d['leaked_blocks'], human(d['program_leaked_bytes']),
             human(d['runtime_leaked_bytes']))),
        ('bad frees', '%d of pointers never allocated here, %d double'
         % (d['unknown_frees'], d['double_frees'])),
    ]
    if d['estimated']:
        rows.append(('sampling', sampling_note(d)))
    rows += [('warning', w) for w in d['warnings']]
    return rows


def temporaries(d):
    tmp = d['temporary']
    rest = d['requests'] - tmp['blocks']
    return ('<p class="note">Blocks freed by their own thread within %d of its calls '
            'after being allocated: candidates for the stack or a scoped arena.</p>'
            % tmp['window_events'] +
            bar_columns([('temporary', 'freed soon after allocation',
                          (tmp['blocks'], tmp['bytes'])),
                         ('other', 'kept longer, or never freed',
                          (rest, max(d['requested_bytes'] - tmp['bytes'], 0)))],
                        [COUNT, BYTES], 'blocks'))


def leaks_table(d):
    groups = (d['leaks'] + d['runtime_leaks'])[:30]
    if not groups:
        return '<p>None.</p>'
    return table([(g['size'], g['count'], human(g['bytes']), secs(g['first_t_ns']),
                   g['first_tid'], g.get('kind', 'program')) for g in groups],
                 ('size', 'blocks', 'bytes', 'first at', 'thread', 'left by'), (0, 1, 2))


def leak_sites_section(d):
    """The program's leaks by call site, each stack folded under its first frame."""
    rows = d.get('_leak_sites', d.get('leak_sites')) or []
    if not rows:
        return ''
    out = ['<h3>Leaks by call site</h3>',
           '<p class="note">Most bytes first; open a row for its call stack, innermost frame '
           'first.</p><table><tr><th class="n">bytes</th><th class="n">blocks</th>'
           '<th>allocated at</th></tr>']
    for r in rows[:30]:
        frames = ''.join('<div>%s</div>' % esc(frame_text(f)) for f in r['stack'][:24])
        out.append('<tr><td class="n">%s</td><td class="n">%d</td><td><details><summary>%s'
                   '</summary>%s</details></td></tr>' % (esc(human(r['bytes'])), r['count'],
                                                         esc(r['site']), frames))
    out.append('</table>')
    if len(rows) > 30:
        out.append('<p class="note">%d more sites: chainalloc log leaks.</p>' % (len(rows) - 30))
    return ''.join(out)


def process_section(d, anchor):
    layers = [r for r in d['layer_split'] if r['requests']]   # a proxy only forwards
    threads = d['threads'][:20]
    return ''.join([
        '<h2 id="%s">%s <small>pid %s</small></h2>' % (anchor, esc(d['command']), d['pid']),
        '<p class="note">%s</p>' % esc(d['file']),
        facts_table(facts(d)),
        '<h3>Live bytes over time</h3>',
        '<p class="note">Line: bytes allocated and not yet freed. Band: the lowest and '
        'highest value within each time slot. Dot: the peak. Hover for values.</p>',
        live_chart(d.get('timeline', []), d['peak_bytes'], d['peak_t_ns']),
        '<h3>Request sizes</h3>',
        '<p class="note">Power-of-two buckets: "&le; 64" holds sizes 33..64.</p>',
        bar_columns([('<= ' + short_size(h['le']), 'sizes up to %d bytes' % h['le'],
                      (h['count'], h['bytes'])) for h in d['histogram']],
                    [COUNT, BYTES], 'size'),
        '<h3>Most requested sizes</h3>',
        bar_columns([('%d bytes' % r['size'], '%d bytes' % r['size'], (r['count'], r['bytes']))
                     for r in d['top_sizes']], [COUNT, BYTES], 'size'),
        '<h3>Temporary blocks</h3>', temporaries(d),
        '<h3>Threads</h3>',
        bar_columns([('%d%s' % (r['tid'], ' (main)' if r['main'] else ''),
                      'thread %d' % r['tid'], (r['calls'], r['bytes'])) for r in threads],
                    [('calls', '{:,}'.format), ('bytes requested', human)], 'thread'),
        '<p class="note">%d more threads not shown.</p>' % (len(d['threads']) - len(threads))
        if len(d['threads']) > len(threads) else '',
        '<h3>Served by layer</h3>',
        bar_columns([('%d %s' % (r['index'], r['name']), 'layer %d of the chain' % r['index'],
                      (r['requests'], r['bytes'])) for r in layers], [COUNT, BYTES], 'layer'),
        leak_sites_section(d),
        flame_section(d.get('_sites') or [], 'fg-' + anchor),
        '<h3>Leaks by size</h3>', leaks_table(d),
    ])


def run_section(files):
    """Several processes: the run as a whole."""
    c = combine(files)
    k = c['calls']
    rows = [('processes', '%d%s' % (c['processes'], '' if c['complete'] else
                                    ' (some INCOMPLETE)')),
            ('calls', '{:,} ({})'.format(sum(k.values()),
                                         ', '.join('%s %s' % (n, '{:,}'.format(v))
                                                   for n, v in k.items()))),
            ('requested', '%s in %s allocations' % (human(c['requested_bytes']),
                                                    '{:,}'.format(c['requests']))),
            ('peak live', 'at most %s (the sum of each process\'s peak)'
             % human(c['peak_bytes'])),
            ('leaked', '%s in %d blocks (program %s, runtime %s)' % (
                human(c['leaked_bytes']), c['leaked_blocks'], human(c['program_leaked_bytes']),
                human(c['runtime_leaked_bytes'])))]
    programs = table([(r['command'], r['processes'], '{:,}'.format(r['calls']),
                       human(r['requested_bytes']), human(r['peak_bytes']),
                       human(r['leaked_bytes'])) for r in c['programs']],
                     ('program', 'processes', 'calls', 'requested', 'largest peak', 'leaked'),
                     (1, 2, 3, 4, 5))
    return ''.join([
        '<h2 id="run">The run: %d processes</h2>' % len(files), facts_table(rows),
        '<h3>Processes over time</h3>',
        '<p class="note">One bar per process, from its start to its exit (orange: the log is '
        'incomplete). Hover for its figures.</p>',
        process_lanes(files),
        '<h3>Per program</h3>', programs,
        run_flame_section(files),
    ])


def render_html(files):
    many = len(files) > 1
    title = ('%d processes' % len(files)) if many else files[0]['command']
    anchors = ['p%d' % i for i in range(len(files))]
    nav = ''
    if many:
        nav = '<nav>%s</nav>' % ''.join('<a href="#%s">%s (%s)</a>' % (a, esc(d['command']),
                                                                       d['pid'])
                                        for a, d in zip(anchors, files))
    return ''.join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<title>chainalloc report: %s</title><style>%s</style></head><body>' % (esc(title),
                                                                               STYLE),
        '<h1>chainalloc report: %s</h1>' % esc(title),
        nav,
        run_section(files) if many else '',
        ''.join(process_section(d, a) for d, a in zip(files, anchors)),
        '</body></html>\n'])
