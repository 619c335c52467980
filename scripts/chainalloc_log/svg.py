"""Inline SVG charts for the HTML report: round axis ticks, axis titles, and a <title> on
every mark, which browsers show as a tooltip. No script, no external file."""

import html
import math

from .humanize import human

FONT = 'font-size="12"'
BAND, LINE, BAR, BAR2, GRID, AXIS = '#9ecae1', '#08519c', '#3182bd', '#e6550d', '#e5e5e5', '#555'
BYTE_UNITS = ((1 << 30, 'GiB'), (1 << 20, 'MiB'), (1 << 10, 'KiB'), (1, 'B'))
TIME_UNITS = ((1e9, 's'), (1e6, 'ms'), (1e3, 'us'), (1, 'ns'))


def esc(text):
    return html.escape(str(text), quote=True)


def nice_step(span, target=5):
    """A step of 1, 2 or 5 times a power of ten that cuts `span` into about `target` parts."""
    raw = max(span, 1e-12) / target
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * 0.999)


def ticks(top, units):
    """Round ticks from 0 to at least `top` in the largest unit `top` reaches.
    Returns ([(value, label)], axis end)."""
    top = max(top, 1)
    div, name = next((d, n) for d, n in units if top >= d or d == units[-1][0])
    step = nice_step(top / div)
    decimals = max(0, -math.floor(math.log10(step)))
    count = int(math.ceil(top / div / step - 1e-9))
    out = [(k * step * div, '%.*f %s' % (decimals, k * step, name)) for k in range(count + 1)]
    return out, out[-1][0]


def _svg(width, height, body):
    return ('<svg width="%d" height="%d" viewBox="0 0 %d %d" role="img">%s</svg>'
            % (width, height, width, height, ''.join(body)))


def _text(x, y, text, anchor='start', extra=''):
    return '<text x="%.1f" y="%.1f" text-anchor="%s" %s %s>%s</text>' % (
        x, y, anchor, FONT, extra, esc(text))


def rebucket(points, columns):
    """Timeline points merged into at most `columns` time slots, keeping the envelope: each
    slot's min and max cover its points, and its live value is its last point's."""
    if not points:
        return []
    t1 = max(p['t_ns'] for p in points) or 1
    slots = {}
    clamp = 0
    for p in points:
        clamp = max(clamp, p['t_ns'])   # threads may step back slightly: file order wins
        k = min(columns - 1, int(columns * clamp / t1))
        s = slots.get(k)
        if s is None:
            slots[k] = dict(p, t_ns=clamp)
        else:
            s.update(t_ns=clamp, live=p['live'], max=max(s['max'], p['max']),
                     min=min(s['min'], p['min']))
    return [slots[k] for k in sorted(slots)]


def live_chart(points, peak, peak_t, width=1080, height=300):
    """Live bytes over time: the min..max band of each slot, the live line, the peak."""
    if not points:
        return '<p>No events.</p>'
    pad_l, pad_r, pad_t, pad_b = 84, 24, 14, 46
    iw, ih = width - pad_l - pad_r, height - pad_t - pad_b
    cols = rebucket(points, iw // 3)
    yt, ytop = ticks(max(max(c['max'] for c in cols), peak), BYTE_UNITS)
    xt, xtop = ticks(max(c['t_ns'] for c in cols), TIME_UNITS)

    def x(t):
        return pad_l + iw * t / xtop

    def y(v):
        return pad_t + ih * (1 - v / ytop)
    body = []
    for v, label in yt:
        body.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/>'
                    % (pad_l, pad_l + iw, y(v), y(v), GRID))
        body.append(_text(pad_l - 6, y(v) + 4, label, 'end'))
    for t, label in xt:
        body.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s"/>'
                    % (x(t), x(t), pad_t + ih, pad_t + ih + 4, AXIS))
        body.append(_text(x(t), pad_t + ih + 17, label, 'middle'))
    # Each slot is drawn from its start, so a slot's band spans its own time.
    starts = [0] + [c['t_ns'] for c in cols[:-1]]
    upper = ' '.join('%.1f,%.1f %.1f,%.1f' % (x(s), y(c['max']), x(c['t_ns']), y(c['max']))
                     for s, c in zip(starts, cols))
    lower = ' '.join('%.1f,%.1f %.1f,%.1f' % (x(c['t_ns']), y(c['min']), x(s), y(c['min']))
                     for s, c in reversed(list(zip(starts, cols))))
    body.append('<polygon points="%s %s" fill="%s" stroke="%s" stroke-width="0.6">'
                '<title>min..max of live bytes within each time slot</title></polygon>'
                % (upper, lower, BAND, BAND))
    line = ' '.join('%.1f,%.1f' % (x(c['t_ns']), y(c['live'])) for c in cols)
    body.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>'
                % (line, LINE))
    for s, c in zip(starts, cols):
        body.append('<rect class="hover" x="%.1f" y="%d" width="%.1f" height="%d">'
                    '<title>%s .. %s\nlive %s (min %s, max %s)</title></rect>' % (
                        x(s), pad_t, max(x(c['t_ns']) - x(s), 1), ih,
                        esc(_time(s)), esc(_time(c['t_ns'])), esc(human(c['live'])),
                        esc(human(c['min'])), esc(human(c['max']))))
    body.append('<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>peak %s at %s</title>'
                '</circle>' % (x(peak_t), y(peak), BAR2, esc(human(peak)), esc(_time(peak_t))))
    body += _axes(pad_l, pad_t, iw, ih)
    body.append(_text(pad_l + iw / 2, height - 6, 'time since the process started', 'middle',
                      'font-weight="bold"'))
    body.append(_text(14, pad_t + ih / 2, 'live bytes', 'middle',
                      'font-weight="bold" transform="rotate(-90 14 %.1f)"' % (pad_t + ih / 2)))
    return _svg(width, height, body)


def _axes(pad_l, pad_t, iw, ih):
    return ['<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s"/>'
            % (pad_l, pad_l + iw, pad_t + ih, pad_t + ih, AXIS),
            '<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s"/>'
            % (pad_l, pad_l, pad_t, pad_t + ih, AXIS)]


def _time(ns):
    for div, name in TIME_UNITS:
        if abs(ns) >= div or div == 1:
            return '%.3g %s' % (ns / div, name)


def bar_columns(rows, columns, title, label_w=170, width=1080, bar_h=20):
    """Horizontal bars, one row per item and one panel per column (say, requests and
    bytes), each panel scaled to its own largest value. rows: [(label, tooltip, values)];
    columns: [(heading, format)]. Every bar's tooltip holds the whole row."""
    if not rows:
        return '<p>None.</p>'
    panel = (width - label_w) / len(columns)
    height = bar_h * len(rows) + 26
    tops = [max(r[2][i] for r in rows) or 1 for i in range(len(columns))]
    totals = [sum(r[2][i] for r in rows) or 1 for i in range(len(columns))]
    body = [_text(6, 14, title, 'start', 'font-weight="bold"')]
    for i, (heading, _) in enumerate(columns):
        body.append(_text(label_w + i * panel, 14, heading + ' (share)', 'start',
                          'font-weight="bold"'))
    for k, (label, tip, values) in enumerate(rows):
        y0 = 22 + k * bar_h
        shares = ['%s: %s (%.1f%%)' % (h, f(v), 100.0 * v / t)
                  for (h, f), v, t in zip(columns, values, totals)]
        tooltip = esc('%s\n%s' % (tip, '\n'.join(shares)))
        body.append('<g class="row"><title>%s</title>' % tooltip)
        body.append(_text(label_w - 8, y0 + bar_h - 6, label, 'end'))
        for i, ((heading, fmt), v) in enumerate(zip(columns, values)):
            x0 = label_w + i * panel
            w = (panel - 150) * v / tops[i]
            body.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>'
                        % (x0, y0 + 3, max(w, 0.5), bar_h - 6, BAR if i == 0 else BAR2))
            body.append(_text(x0 + w + 5, y0 + bar_h - 6, '%s (%.1f%%)'
                              % (fmt(v), 100.0 * v / totals[i])))
        body.append('</g>')
    return _svg(width, height, body)


def process_lanes(files, width=1080, lane_h=22):
    """The processes of one run on one time axis: a bar from each one's start to its end."""
    known = [d for d in files if d.get('start_unix_ns')]
    if not known:
        return '<p>The logs do not say when the processes started.</p>'
    pad_l, pad_r, pad_t = 230, 24, 8
    iw = width - pad_l - pad_r
    t0 = min(d['start_unix_ns'] for d in known)
    end = max(d['start_unix_ns'] - t0 + d['runtime_ns'] for d in known)
    xt, xtop = ticks(end, TIME_UNITS)
    ih = lane_h * len(known)
    height = pad_t + ih + 46

    def x(t):
        return pad_l + iw * t / xtop
    body = []
    for t, label in xt:
        body.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s"/>'
                    % (x(t), x(t), pad_t, pad_t + ih, GRID))
        body.append(_text(x(t), pad_t + ih + 17, label, 'middle'))
    for k, d in enumerate(sorted(known, key=lambda d: d['start_unix_ns'])):
        y0 = pad_t + k * lane_h
        start = d['start_unix_ns'] - t0
        tip = '%s (pid %s, parent %s)\nstarts at %s, runs %s\n%d calls, peak %s, leaked %s%s' % (
            d['command'], d['pid'], d['ppid'], _time(start), _time(d['runtime_ns']),
            sum(d['calls'].values()), human(d['peak_bytes']), human(d['leaked_bytes']),
            '' if d['complete'] else '\nINCOMPLETE: ' + '; '.join(d['incomplete_reasons']))
        body.append('<g class="row"><title>%s</title>' % esc(tip))
        body.append(_text(pad_l - 8, y0 + lane_h - 7, '%s  %s' % (d['pid'], d['command'][:26]),
                          'end'))
        body.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>' % (
            x(start), y0 + 4, max(x(start + d['runtime_ns']) - x(start), 2), lane_h - 8,
            BAR if d['complete'] else BAR2))
        body.append('</g>')
    body += _axes(pad_l, pad_t, iw, ih)
    body.append(_text(pad_l + iw / 2, height - 6, 'time since the first process started',
                      'middle', 'font-weight="bold"'))
    return _svg(width, height, body)
