"""`plot`: a self-contained HTML report with inline SVG (no scripts, no external files)."""

import html

from .humanize import human, secs, short_size


def svg_line_chart(points, width=1100, height=320):
    if not points:
        return '<p>No events.</p>'
    pad_l, pad_r, pad_t, pad_b = 80, 60, 20, 40
    t0 = 0
    t1 = max(p['t_ns'] for p in points) or 1
    ymax = max(p['max'] for p in points) or 1
    iw, ih = width - pad_l - pad_r, height - pad_t - pad_b

    def x(t):
        return pad_l + iw * (t - t0) / (t1 - t0)

    def y(v):
        return pad_t + ih * (1 - v / ymax)

    # Timestamps may step back slightly across threads: plot in file order, clamped.
    tt, seq = 0, []
    for p in points:
        tt = max(tt, p['t_ns'])
        seq.append((tt, p))
    upper = ' '.join('%.1f,%.1f' % (x(t), y(p['max'])) for t, p in seq)
    lower = ' '.join('%.1f,%.1f' % (x(t), y(p['min'])) for t, p in reversed(seq))
    line = ' '.join('%.1f,%.1f' % (x(t), y(p['live'])) for t, p in seq)
    parts = ['<svg width="%d" height="%d" '
             'viewBox="0 0 %d %d" role="img">' % (width, height, width, height)]
    for k in range(5):
        v = ymax * k / 4
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                     % (pad_l, width - pad_r, y(v), y(v)))
        parts.append('<text x="%d" y="%.1f" text-anchor="end" font-size="12">%s</text>'
                     % (pad_l - 6, y(v) + 4, html.escape(human(v))))
    for k in range(6):
        t = t0 + (t1 - t0) * k / 5
        parts.append('<text x="%.1f" y="%d" text-anchor="middle" font-size="12">%s</text>'
                     % (x(t), height - pad_b + 18, html.escape(secs(t))))
    parts.append('<polygon points="%s %s" fill="#9ecae1" stroke="none"/>' % (upper, lower))
    parts.append('<polyline points="%s" fill="none" stroke="#08519c" stroke-width="1.2"/>'
                 % line)
    parts.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>'
                 % (pad_l, width - pad_r, pad_t + ih, pad_t + ih))
    parts.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>'
                 % (pad_l, pad_l, pad_t, pad_t + ih))
    parts.append('<text x="%d" y="%d" text-anchor="middle" font-size="12">time since start'
                 '</text>' % (pad_l + iw // 2, height - 4))
    parts.append('</svg>')
    return ''.join(parts)


def svg_bars(rows, label_key, value_key, fmt_label, fmt_value=str, width=1100, bar_h=18):
    if not rows:
        return '<p>No requests.</p>'
    pad_l, pad_r = 110, 200
    top = max(r[value_key] for r in rows) or 1
    total = sum(r[value_key] for r in rows) or 1
    height = bar_h * len(rows) + 10
    iw = width - pad_l - pad_r
    parts = ['<svg width="%d" height="%d" '
             'viewBox="0 0 %d %d" role="img">' % (width, height, width, height)]
    for k, r in enumerate(rows):
        y0 = 5 + k * bar_h
        wbar = iw * r[value_key] / top
        parts.append('<text x="%d" y="%d" text-anchor="end" font-size="12">%s</text>'
                     % (pad_l - 6, y0 + bar_h - 5, html.escape(fmt_label(r[label_key]))))
        parts.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="#3182bd"/>'
                     % (pad_l, y0 + 2, max(wbar, 0.5), bar_h - 4))
        parts.append('<text x="%.1f" y="%d" font-size="12">%s (%.1f%%)</text>'
                     % (pad_l + wbar + 6, y0 + bar_h - 5, html.escape(fmt_value(r[value_key])),
                        100.0 * r[value_key] / total))
    parts.append('</svg>')
    return ''.join(parts)


def render_html(d):
    esc = html.escape
    rows = [
        ('program', '%s (pid %s, parent %s)' % (d['program'], d['pid'], d['ppid'])),
        ('chain', d['chain']),
        ('status', 'complete' if d['complete'] else
         'INCOMPLETE: ' + '; '.join(d['incomplete_reasons'])),
        ('runtime', secs(d['runtime_ns'])),
        ('calls', ', '.join('%s %d' % kv for kv in d['calls'].items())),
        ('peak live bytes', '%s at %s' % (human(d['peak_bytes']), secs(d['peak_t_ns']))),
        ('leaked at exit' if d['has_footer'] else 'live at end of log',
         '%s in %d blocks (program %s, runtime %s)' % (
             human(d['leaked_bytes']), d['leaked_blocks'], human(d['program_leaked_bytes']),
             human(d['runtime_leaked_bytes']))),
        ('temporary blocks', '%d (%s)' % (d['temporary']['blocks'],
                                         human(d['temporary']['bytes']))),
        ('bad frees', '%d unknown, %d double' % (d['unknown_frees'], d['double_frees'])),
    ]
    if d['estimated']:
        rows.append(('sampling', '1 in %d: counts are estimates' % d['sample']))
    for warn in d['warnings']:
        rows.append(('warning', warn))
    table = ''.join('<tr><th>%s</th><td>%s</td></tr>' % (esc(k), esc(str(v)))
                    for k, v in rows)
    layers = [dict(r, label='%d %s' % (r['index'], r['name'])) for r in d['layer_split']]
    leak_rows = ''.join('<tr><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
        g['size'], g['count'], esc(human(g['bytes'])), esc(secs(g['first_t_ns'])),
        esc(g.get('kind', 'program'))) for g in (d['leaks'] + d['runtime_leaks'])[:30])
    return ''.join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<title>chainalloc report: %s</title>' % esc(d['program']),
        '<style>body{font-family:sans-serif;margin:24px;color:#222;max-width:1150px}',
        'table{border-collapse:collapse;margin-bottom:16px}th,td{text-align:left;',
        'padding:3px 10px;border-bottom:1px solid #ddd;font-size:14px;overflow-wrap:anywhere}',
        'h2{font-size:18px;margin-top:28px}</style></head><body>',
        '<h1>chainalloc report: %s</h1>' % esc(d['program']),
        '<table>%s</table>' % table,
        '<h2>Live bytes over time (band: min..max within each interval)</h2>',
        svg_line_chart(d.get('timeline', [])),
        '<h2>Request sizes (power-of-two buckets)</h2>',
        svg_bars(d['histogram'], 'le', 'count', lambda le: '<= ' + short_size(le)),
        '<h2>Requests per layer</h2>',
        svg_bars(layers, 'label', 'requests', str),
        '<h2>Bytes per layer</h2>',
        svg_bars(layers, 'label', 'bytes', str, human),
        '<h2>Leaks by size</h2>',
        ('<table><tr><th>size</th><th>count</th><th>bytes</th><th>first at</th>'
         '<th>kind</th></tr>%s</table>' % leak_rows) if leak_rows else '<p>None.</p>',
        '</body></html>\n'])

