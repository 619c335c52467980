#!/usr/bin/env python3
"""chainalloc log reader: turns a proxy log (format in scripts/LOG-FORMAT.md) into
what a person wants to know.

    chainalloc_log.py summary FILE... [--json]
    chainalloc_log.py leaks FILE [--fail-on-leak] [--json]
    chainalloc_log.py plot FILE -o report.html
    chainalloc_log.py suggest FILE [--max-classes N] [--json]

Python 3 standard library only. One streaming pass per file; memory grows with the
number of distinct live addresses, not with the file size.
"""

import argparse
import bisect
import collections
import gzip
import html
import json
import sys
import time

FORMAT_VERSION = 1
CHUNK = 1 << 22          # bytes read per call: big reads keep the per-line cost minimal
TEMP_WINDOW = 8          # a block freed <= this many events (of its thread) later is temporary
TIMELINE_POINTS = 3000   # downsampled live-bytes points kept for `plot`
TOMBSTONE_SLACK = 1 << 18  # freed addresses remembered beyond the live ones (double frees)

EXIT_OK, EXIT_LEAK, EXIT_ERROR = 0, 1, 2


class LogError(Exception):
    """The file is not a chainalloc log this reader can read."""


# --------------------------------------------------------------------------------------
# Header and footer


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
    head = {'version': version, 'chain': chain}
    for tok in tokens[1:]:
        key, sep, value = tok.partition('=')
        if sep:
            head[key] = value   # unknown keys are kept and ignored: forward compatible
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


def open_log(path):
    if path == '-':
        return sys.stdin.buffer
    with open(path, 'rb') as probe:
        magic = probe.read(2)
    if magic == b'\x1f\x8b':
        return gzip.open(path, 'rb')
    return open(path, 'rb')


# --------------------------------------------------------------------------------------
# The streaming pass


class Scan:
    """Raw results of one pass over a log; figures are as logged (not yet scaled by the
    sampling factor). `live` maps pointer (bytes) -> block record or None (a tombstone:
    freed, remembered to tell a double free from a free of an unknown pointer).
    A block record is (size, t_ns bytes, thread state, thread event index, event index, op)."""


def scan_log(path, timeline=False):
    f = open_log(path)
    try:
        first = f.readline()
        if not first:
            raise LogError('empty file')
        if not first.endswith(b'\n'):
            raise LogError('header line is cut (log holds no complete line)')
        head = parse_header(first)
        return _scan_events(f, head, timeline)
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def _scan_events(f, head, timeline):
    s = Scan()
    s.head = head
    s.tombstones_dropped = False
    layer_names = [x for x in head.get('layers', '').split(',') if x]
    # Layer index (as bytes, as it appears in the log) -> [requests, bytes].
    layers = {str(i).encode(): [0, 0] for i in range(len(layer_names))}
    threads = {}                             # tid bytes -> [events, bytes, first event index, tid]
    sizes = collections.defaultdict(int)     # requested size -> allocation requests
    aligned_over16 = collections.defaultdict(int)  # size -> aligned requests with align > 16
    live = {}
    lbytes = lblocks = 0
    peak = 0
    peak_t = b'0'
    nm = nc = na = nr = nf = failed = 0
    tmp_blocks = tmp_bytes = 0
    unknown = double = bad_realloc = reused = malformed = 0
    anomalies = []                           # first few (kind, line number, t, tid, ptr)
    footer = None
    footer_at = 0
    skipped = 0                              # comment and blank lines (for line numbers)
    n = 0                                    # event (line) index, 1-based after the header
    temp_window = TEMP_WINDOW

    # Timeline: one point per `step` lines: (t of last line, live at end, max, min).
    points = []
    step = 1 if timeline else (1 << 62)
    step_left = step
    bmax = bmin = 0
    last_t = b'0'

    tail = b''
    lget = live.get
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        lines = (tail + chunk).split(b'\n') if tail else chunk.split(b'\n')
        tail = lines.pop()
        nlines = len(lines)
        i = 0
        while i < nlines:
            j = i + step_left
            if j > nlines:
                j = nlines
            batch = lines if (i == 0 and j == nlines) else lines[i:j]
            for line in batch:
                n += 1
                try:
                    if line[0] == 35:   # '#': a comment, the footer; handled below
                        raise ValueError
                    p = line.split()
                    op = p[2]
                    tid = p[1]
                    try:
                        th = threads[tid]
                    except KeyError:
                        int(tid)        # validates a new thread id once
                        th = threads[tid] = [0, 0, n, tid]
                    th[0] += 1
                    if op == b'f':
                        ptr = p[3]
                        nf += 1
                        rec = lget(ptr)
                        if rec is not None:
                            live[ptr] = None
                            size = rec[0]
                            lbytes -= size
                            lblocks -= 1
                            if lbytes < bmin:
                                bmin = lbytes
                            if rec[2] is th and th[0] - rec[3] <= temp_window:
                                tmp_blocks += 1
                                tmp_bytes += size
                        elif ptr in live:
                            double += 1
                            if len(anomalies) < 20:
                                anomalies.append(('double free', n + skipped, p[0], tid, ptr))
                        else:
                            unknown += 1
                            if len(anomalies) < 20:
                                anomalies.append(('free of unknown pointer', n + skipped, p[0], tid, ptr))
                        continue
                    if op == b'm' or op == b'c':
                        size = int(p[3])
                        ptr = p[4]
                        lay = None if ptr == b'0' else layers[p[5]]
                        if op == b'm':
                            nm += 1
                        else:
                            nc += 1
                        if lay is None:
                            failed += 1
                            continue
                    elif op == b'r':
                        old = p[3]
                        size = int(p[4])
                        ptr = p[5]
                        if ptr != b'0' and ptr != b'-':
                            lay = layers[p[6]]
                        nr += 1
                        if ptr == b'0' and (size != 0 or old == b'0'):
                            failed += 1      # the old block is untouched
                            continue
                        if old != b'0' and old != b'-':
                            rec = lget(old)
                            if rec is not None:
                                live[old] = None
                                lbytes -= rec[0]
                                lblocks -= 1
                                if lbytes < bmin:
                                    bmin = lbytes
                            else:
                                bad_realloc += 1
                                if len(anomalies) < 20:
                                    anomalies.append(('realloc of a pointer that is not live',
                                                      n + skipped, p[0], tid, old))
                        if ptr == b'0' or ptr == b'-':
                            continue         # realloc(p, 0) freed p / new block not sampled
                    elif op == b'a':
                        align = int(p[3])
                        size = int(p[4])
                        ptr = p[5]
                        lay = None if ptr == b'0' else layers[p[6]]
                        na += 1
                        if lay is None:
                            failed += 1
                            continue
                        if align > 16:
                            aligned_over16[size] += 1
                    else:
                        raise ValueError
                    # A new block of `size` bytes at `ptr`, served by layer `lay`.
                    sizes[size] += 1
                    lay[0] += 1
                    lay[1] += size
                    th[1] += size
                    rec = lget(ptr)
                    if rec is not None:      # allocated again while live: a free was lost
                        reused += 1
                        lbytes -= rec[0]
                        lblocks -= 1
                        if len(anomalies) < 20:
                            anomalies.append(('allocation of a live pointer', n + skipped, p[0], tid, ptr))
                    live[ptr] = (size, p[0], th, th[0], n, op)
                    lbytes += size
                    lblocks += 1
                    if lbytes > bmax:
                        bmax = lbytes
                        if lbytes > peak:
                            peak = lbytes
                            peak_t = p[0]
                except (IndexError, ValueError, KeyError):
                    n -= 1
                    if line.startswith(b'# end ') or line == b'# end':
                        footer = parse_footer(line)
                        footer_at = n
                        skipped += 1
                    elif line.startswith(b'#') or not line.strip():
                        skipped += 1     # comments and blank lines carry no events
                    else:
                        n += 1
                        malformed += 1
                        if len(anomalies) < 20:
                            anomalies.append(('malformed line', n + skipped, b'?', b'?',
                                              line[:60]))
                    continue
            step_left -= j - i
            i = j
            if step_left == 0:
                # Timeline bucket complete (only reachable when timeline is on).
                lt = _last_time(lines, j, last_t)
                last_t = lt
                points.append((lt, lbytes, bmax, bmin))
                bmax = bmin = lbytes
                if len(points) >= 2 * TIMELINE_POINTS:
                    points = _halve(points)
                    step *= 2
                step_left = step
        last_t = _last_time(lines, nlines, last_t)
        # Forget tombstones when they outgrow the live set (bounded memory on huge logs).
        if len(live) > 2 * lblocks + TOMBSTONE_SLACK:
            live = {k: v for k, v in live.items() if v is not None}
            lget = live.get
            s.tombstones_dropped = True

    # A log whose process never reached exit (exec, crash, kill) ends in the NUL bytes of its
    # last, partly written window: not a line.
    tail = tail.rstrip(b"\0")
    s.cut_line = bool(tail.strip())
    s.cut_text = tail[:60]
    if timeline and step_left != step:
        points.append((last_t, lbytes, bmax, bmin))
    s.layer_names = layer_names
    s.layers = layers
    s.threads = threads
    s.sizes = sizes
    s.aligned_over16 = aligned_over16
    s.live = {k: v for k, v in live.items() if v is not None}
    s.live_bytes, s.live_blocks = lbytes, lblocks
    s.peak, s.peak_t = peak, int(peak_t)
    s.counts = {'malloc': nm, 'calloc': nc, 'realloc': nr, 'aligned': na, 'free': nf,
                'failed': failed}
    s.temp_blocks, s.temp_bytes = tmp_blocks, tmp_bytes
    s.unknown_frees, s.double_frees = unknown, double
    s.bad_reallocs, s.reused_live = bad_realloc, reused
    s.malformed = malformed
    s.anomalies = anomalies
    s.footer = footer
    s.after_footer = (n - footer_at) if footer is not None else 0
    s.events = n
    s.last_t = int(last_t)
    s.points = [(int(t), a, b, c) for (t, a, b, c) in points]
    return s


def _last_time(lines, end, default):
    """t_ns of the last event line before index `end` (for runtime and timeline)."""
    k = end - 1
    while k >= 0:
        line = lines[k]
        if line and line[0] != 35:
            tok = line.split(None, 1)
            if tok and tok[0].isdigit():
                return tok[0]
        k -= 1
    return default


def _halve(points):
    """Merge neighbouring timeline points, keeping the envelope (max of max, min of min)."""
    out = []
    for k in range(0, len(points) - 1, 2):
        a, b = points[k], points[k + 1]
        out.append((b[0], b[1], max(a[2], b[2]), min(a[3], b[3])))
    if len(points) % 2:
        out.append(points[-1])
    return out


# --------------------------------------------------------------------------------------
# Runtime-leak classifier


# Blocks the C/C++ runtime allocates on the program's behalf and never frees. A leaked
# block is "runtime" only if it matches one of these signatures; every rule is narrow
# on purpose (a real leak shown as runtime is worse than a runtime block shown as a leak).
EH_POOL_MIN, EH_POOL_MAX = 70 * 1024, 76 * 1024   # libstdc++ emergency pool (72704 in GCC 12)
EH_POOL_WINDOW = 64                                # ... allocated before main
DTV_MIN, DTV_MAX = 17 * 16, 80 * 16                # ld.so dtv: calloc(modules + 16, 16)
STDIO_SIZES = {1 << k for k in range(10, 17)}      # stdio buffers: st_blksize, 1 KiB..64 KiB
STDIO_MAX_BLOCKS = 3                               # stdin, stdout, stderr


def classify_leaks(s):
    """Split the leaked blocks into (program, runtime): lists of (ptr, record, kind)."""
    pid = s.head.get('pid', '').encode()
    runtime = {}
    blocks = sorted(s.live.items(), key=lambda kv: kv[1][4])   # by event index
    # 1. libstdc++'s emergency exception pool: one malloc by the main thread before main.
    for ptr, rec in blocks:
        size, _, th, _, idx, op = rec
        if (op == b'm' and EH_POOL_MIN <= size <= EH_POOL_MAX and idx <= EH_POOL_WINDOW
                and th[3] == pid):
            runtime[ptr] = 'libstdc++ emergency exception pool'
            break
    # 2. ld.so's dtv for a new thread: calloc'd by the creating thread, kept with the cached
    #    stack after the thread ends. Each candidate must be followed by a thread that first
    #    appears in the log after it, one thread per candidate.
    starts = sorted(th[2] for tid, th in s.threads.items() if tid != pid)
    cands = [(rec[4], ptr) for ptr, rec in blocks
             if rec[5] == b'c' and DTV_MIN <= rec[0] <= DTV_MAX and rec[0] % 16 == 0
             and ptr not in runtime]
    k = 0
    pending = []
    for start in starts:
        while k < len(cands) and cands[k][0] < start:
            pending.append(cands[k][1])
            k += 1
        if pending:
            runtime[pending.pop(0)] = 'ld.so thread DTV'
    # 3. stdio buffers: a malloc of st_blksize bytes, at most one per standard stream.
    #    More leaked blocks of that size than streams means the program leaks that size.
    stdio = [(ptr, rec) for ptr, rec in blocks
             if rec[5] == b'm' and rec[0] in STDIO_SIZES and ptr not in runtime]
    if len(stdio) <= STDIO_MAX_BLOCKS:
        for ptr, _ in stdio:
            runtime[ptr] = 'stdio buffer'
    program = [(p, r, None) for p, r in blocks if p not in runtime]
    rt = [(p, r, runtime[p]) for p, r in blocks if p in runtime]
    return program, rt


def group_leaks(entries, scale):
    """Group (ptr, record, kind) by size -> list of dicts, largest total first."""
    groups = {}
    for _, rec, kind in entries:
        size, t, th, _, idx, _ = rec
        g = groups.get((size, kind))
        if g is None:
            groups[(size, kind)] = g = {'size': size, 'count': 0, 'bytes': 0,
                                        'first_t_ns': int(t), 'first_tid': int(th[3]),
                                        '_idx': idx}
            if kind:
                g['kind'] = kind
        g['count'] += 1
        if idx < g['_idx']:
            g['_idx'], g['first_t_ns'], g['first_tid'] = idx, int(t), int(th[3])
    out = []
    for g in groups.values():
        del g['_idx']
        g['count'] *= scale
        g['bytes'] = g['size'] * g['count']
        out.append(g)
    out.sort(key=lambda g: (-g['bytes'], -g['size']))
    return out


# --------------------------------------------------------------------------------------
# From a scan to the reported figures


def size_bucket(size):
    """Power-of-two bucket: the bucket's upper bound `le` (size <= le, size > le/2)."""
    return 0 if size == 0 else 1 << (size - 1).bit_length()


def summarize(path, timeline=False):
    t0 = time.perf_counter()
    s = scan_log(path, timeline)
    elapsed = time.perf_counter() - t0
    head = s.head
    try:
        scale = max(1, int(head.get('sample', '1')))
    except ValueError:
        scale = 1
    foot = s.footer or {}
    reasons = []
    if s.footer is None:
        reasons.append('no footer: the process did not exit normally '
                       '(crash, _exit, killed) or the log is still being written')
    if s.cut_line:
        reasons.append('last line cut mid-write (ignored)')
    warnings = []
    if s.after_footer:
        warnings.append('%d events after the footer' % s.after_footer)
    if s.malformed:
        warnings.append('%d malformed lines ignored' % s.malformed)
    if s.reused_live:
        warnings.append('%d allocations returned a pointer that was still live '
                        '(a free is missing from the log)' % s.reused_live)
    if s.tombstones_dropped:
        warnings.append('freed addresses were forgotten to bound memory: some double frees '
                        'may be counted as frees of unknown pointers')

    counted = {k: v * scale for k, v in s.counts.items()}
    calls = dict(counted)
    if s.footer is not None:
        for k in calls:
            if isinstance(foot.get(k), int):
                calls[k] = foot[k]
        if scale == 1 and calls != counted:
            warnings.append('footer totals %s differ from the events in the log %s '
                            '(events lost?)' % (calls, counted))
        if scale == 1 and isinstance(foot.get('events'), int) and foot['events'] != s.events:
            warnings.append('footer says %d events, the log holds %d'
                            % (foot['events'], s.events))

    runtime_ns = foot.get('t_ns') if isinstance(foot.get('t_ns'), int) else s.last_t
    runtime_ns = max(runtime_ns, s.last_t)
    secs = runtime_ns / 1e9
    program, rt = classify_leaks(s)
    leaks = group_leaks(program, scale)
    runtime_leaks = group_leaks(rt, scale)
    prog_bytes = sum(g['bytes'] for g in leaks)
    rt_bytes = sum(g['bytes'] for g in runtime_leaks)
    leaked_bytes = s.live_bytes * scale
    leaked_blocks = s.live_blocks * scale
    if s.footer is not None and scale > 1:
        # The footer's totals are exact; the sampled blocks only estimate them.
        leaked_bytes = foot.get('live_bytes', leaked_bytes)
        leaked_blocks = foot.get('live_blocks', leaked_blocks)

    requests = sum(s.sizes.values())
    requested_bytes = sum(k * v for k, v in s.sizes.items())
    pid = head.get('pid', '')
    threads = sorted(
        ({'tid': int(th[3]), 'calls': th[0] * scale, 'bytes': th[1] * scale,
          'main': th[3].decode() == pid} for th in s.threads.values()),
        key=lambda r: (-r['calls'], r['tid']))
    top = sorted(s.sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
    hist = collections.defaultdict(lambda: [0, 0])
    for size, cnt in s.sizes.items():
        h = hist[size_bucket(size)]
        h[0] += cnt
        h[1] += cnt * size
    layer_rows = []
    for key, (cnt, nbytes) in sorted(s.layers.items(), key=lambda kv: int(kv[0])):
        i = int(key)
        layer_rows.append({'index': i,
                           'name': s.layer_names[i] if i < len(s.layer_names) else '?',
                           'requests': cnt * scale, 'bytes': nbytes * scale})
    out = {
        'file': path,
        'program': head.get('program', '?'),
        'pid': _int(pid), 'ppid': _int(head.get('ppid')),
        'version': head['version'], 'chain': head.get('chain', ''),
        'layers': s.layer_names, 'sample': scale, 'estimated': scale > 1,
        'start_unix_ns': _int(head.get('start_unix_ns')),
        'complete': not reasons, 'incomplete_reasons': reasons,
        'has_footer': s.footer is not None, 'cut_line': s.cut_line,
        'events': s.events, 'runtime_ns': runtime_ns,
        'calls': calls, 'counted_calls': counted,
        'calls_per_second': {k: (v / secs if secs > 0 else None) for k, v in calls.items()},
        'requests': requests * scale, 'requested_bytes': requested_bytes * scale,
        'peak_bytes': s.peak * scale, 'peak_t_ns': s.peak_t,
        'leaked_bytes': leaked_bytes, 'leaked_blocks': leaked_blocks,
        'program_leaked_bytes': prog_bytes,
        'program_leaked_blocks': sum(g['count'] for g in leaks),
        'runtime_leaked_bytes': rt_bytes,
        'runtime_leaked_blocks': sum(g['count'] for g in runtime_leaks),
        'leaks': leaks, 'runtime_leaks': runtime_leaks,
        'temporary': {'window_events': TEMP_WINDOW, 'blocks': s.temp_blocks * scale,
                      'bytes': s.temp_bytes * scale},
        'unknown_frees': s.unknown_frees * scale, 'double_frees': s.double_frees * scale,
        'unknown_reallocs': s.bad_reallocs * scale,
        # a[1] counts lines after the header: the file line is one more.
        'anomalies': [{'kind': a[0], 'line': a[1] + 1,
                       't_ns': _int(a[2].decode('ascii', 'replace')),
                       'tid': _int(a[3].decode('ascii', 'replace')),
                       'ptr': a[4].decode('ascii', 'replace')} for a in s.anomalies],
        'threads': threads,
        'top_sizes': [{'size': k, 'count': v * scale, 'bytes': k * v * scale} for k, v in top],
        'histogram': [{'le': le, 'count': c * scale, 'bytes': b * scale}
                      for le, (c, b) in sorted(hist.items())],
        'layer_split': layer_rows,
        'malformed_lines': s.malformed,
        'warnings': warnings,
        'read_seconds': elapsed,
        'events_per_second': (s.events / elapsed) if elapsed > 0 else None,
    }
    if timeline:
        out['timeline'] = [{'t_ns': t, 'live': a * scale, 'max': b * scale, 'min': c * scale}
                           for (t, a, b, c) in s.points]
    out['_sizes'] = s.sizes            # for `suggest`; removed before JSON output
    out['_aligned_over16'] = s.aligned_over16
    return out


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def public(d):
    return {k: v for k, v in d.items() if not k.startswith('_')}


def combine(files):
    calls = collections.Counter()
    for d in files:
        calls.update(d['calls'])
    merged = {}
    for key in ('leaks', 'runtime_leaks'):
        groups = {}
        for d in files:
            for g in d[key]:
                k = (g['size'], g.get('kind'))
                if k in groups:
                    groups[k]['count'] += g['count']
                    groups[k]['bytes'] += g['bytes']
                else:
                    groups[k] = dict(g, pid=d['pid'])
        merged[key] = sorted(groups.values(), key=lambda g: (-g['bytes'], -g['size']))
    pids = {d['pid'] for d in files}
    return {
        'processes': len(files),
        'calls': {k: calls[k] for k in ('malloc', 'calloc', 'realloc', 'aligned', 'free',
                                        'failed')},
        # Processes run side by side: the sum of their peaks bounds the combined peak.
        'peak_bytes': sum(d['peak_bytes'] for d in files),
        'leaked_bytes': sum(d['leaked_bytes'] for d in files),
        'leaked_blocks': sum(d['leaked_blocks'] for d in files),
        'leaks': merged['leaks'], 'runtime_leaks': merged['runtime_leaks'],
        'unknown_frees': sum(d['unknown_frees'] for d in files),
        'double_frees': sum(d['double_frees'] for d in files),
        'complete': all(d['complete'] for d in files),
        'children': [d['pid'] for d in files if d['ppid'] in pids],
        'files': [public(d) for d in files],
    }


# --------------------------------------------------------------------------------------
# Terminal output


def human(n):
    n = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(n) < 1024 or unit == 'TiB':
            return ('%d %s' % (n, unit)) if unit == 'B' else ('%.1f %s' % (n, unit))
        n /= 1024


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


# --------------------------------------------------------------------------------------
# suggest: size classes from the request distribution


def default_classes():
    """The preload's default freelist table: 16..128/16, then four per doubling to 32768."""
    out = list(range(16, 129, 16))
    lo = 128
    while lo < 32768:
        out += [lo + lo // 4 * k for k in range(1, 5)]
        lo *= 2
    return out


def evaluate(classes, sizes, big_aligned):
    """Hit rate and waste of a class table over a size histogram {size: count}.
    A request hits if some class >= its size (and it needs no alignment above 16)."""
    classes = sorted(classes)
    total = sum(sizes.values())
    hits = wasted = given = 0
    for size, cnt in sizes.items():
        cnt_ok = cnt - big_aligned.get(size, 0)
        k = bisect.bisect_left(classes, max(size, 1))
        if k == len(classes) or cnt_ok <= 0:
            continue
        hits += cnt_ok
        given += classes[k] * cnt_ok
        wasted += (classes[k] - size) * cnt_ok
    return {'hit_rate': hits / total if total else 0.0,
            'waste': wasted / given if given else 0.0,
            'requests': total, 'hits': hits, 'wasted_bytes': wasted}


def optimal_classes(units, counts, k):
    """Class boundaries (in 16-byte units) minimising the rounding waste of requests
    grouped by 16-byte unit: units ascending, counts per unit. The top unit is always a
    class. Dynamic programming over prefixes, with the divide-and-conquer optimisation
    (the cost of a group is Monge, so the best split point is monotone)."""
    n = len(units)
    k = min(k, n)
    # Prefix sums so that the waste of grouping units[a..b] under class units[b] is O(1):
    # cost(a, b) = units[b] * C(a..b) - S(a..b), in units of 16 bytes.
    pc = [0] * (n + 1)
    ps = [0] * (n + 1)
    for i in range(n):
        pc[i + 1] = pc[i] + counts[i]
        ps[i + 1] = ps[i] + counts[i] * units[i]

    def cost(a, b):       # units a..b inclusive (0-based) under class units[b]
        return units[b] * (pc[b + 1] - pc[a]) - (ps[b + 1] - ps[a])

    inf = float('inf')
    prev = [cost(0, b) for b in range(n)]       # exactly one class, the top one units[b]
    choices = [[-1] * n]
    for _ in range(2, k + 1):
        cur = [inf] * n
        arg = [-1] * n
        # cur[b] = min over j < b of prev[j] + cost(j + 1, b); the best j never decreases
        # as b grows, so solve the middle b first and split the search range.
        stack = [(0, n - 1, 0, n - 1)]
        while stack:
            lo, hi, olo, ohi = stack.pop()
            if lo > hi:
                continue
            mid = (lo + hi) // 2
            best, bestj = inf, olo
            cm, pcm, psm = units[mid], pc[mid + 1], ps[mid + 1]
            for j in range(olo, min(mid - 1, ohi) + 1):
                v = prev[j] + cm * (pcm - pc[j + 1]) - (psm - ps[j + 1])
                if v < best:
                    best, bestj = v, j
            cur[mid] = best
            arg[mid] = bestj if best < inf else -1
            stack.append((lo, mid - 1, olo, bestj))
            stack.append((mid + 1, hi, bestj, ohi))
        prev = cur
        choices.append(arg)
    out = []
    b = n - 1
    for level in range(k, 0, -1):
        out.append(units[b])
        b = choices[level - 1][b]
    return sorted(out)


def format_classes(classes):
    """Compress runs of at least three equally spaced classes as N..M/S."""
    out = []
    i = 0
    while i < len(classes):
        j = i + 1
        if j < len(classes):
            step = classes[j] - classes[i]
            while j + 1 < len(classes) and classes[j + 1] - classes[j] == step:
                j += 1
            if j - i >= 2:
                out.append('%d..%d/%d' % (classes[i], classes[j], step))
                i = j + 1
                continue
        out.append(str(classes[i]))
        i += 1
    return ','.join(out)


def suggest(d, max_classes, coverage, max_size):
    sizes = d['_sizes']
    big_aligned = d['_aligned_over16']
    # Requests the freelist can serve, by 16-byte unit (malloc(0) takes a 16-byte block).
    per_unit = collections.defaultdict(int)
    eligible = 0
    for size, cnt in sizes.items():
        cnt -= big_aligned.get(size, 0)
        if cnt > 0 and size <= max_size:
            per_unit[max(1, -(-size // 16))] += cnt
            eligible += cnt
    units = sorted(per_unit)
    # Leave the rarest top sizes to the backend: drop the largest units while what they
    # carry stays within (1 - coverage) of all requests.
    total = sum(sizes.values())
    budget = (1.0 - coverage) * total
    while len(units) > 1 and per_unit[units[-1]] <= budget:
        budget -= per_unit[units[-1]]
        units.pop()
    if not units:
        return None
    counts = [per_unit[u] for u in units]
    classes = [16 * u for u in optimal_classes(units, counts, max_classes)]
    mine = evaluate(classes, sizes, big_aligned)
    base = evaluate(default_classes(), sizes, big_aligned)
    text = format_classes(classes)
    return {'classes': classes, 'classes_text': text, 'count': len(classes),
            'hit_rate': mine['hit_rate'], 'waste': mine['waste'],
            'default': {'classes_text': format_classes(default_classes()),
                        'count': len(default_classes()),
                        'hit_rate': base['hit_rate'], 'waste': base['waste']},
            'requests': mine['requests'],
            'chain': "CHAINALLOC_CHAIN='freelist(classes=%s) > system'" % text}


# --------------------------------------------------------------------------------------
# plot: a self-contained HTML report with inline SVG


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


# --------------------------------------------------------------------------------------
# Command line


def load(path, timeline=False):
    try:
        return summarize(path, timeline)
    except (OSError, LogError) as e:
        sys.stderr.write('chainalloc log: %s: %s\n' % (path, e))
        sys.exit(EXIT_ERROR)


def cmd_summary(args):
    files = [load(p) for p in args.files]
    if args.json:
        obj = public(files[0]) if len(files) == 1 else combine(files)
        json.dump(obj, sys.stdout, indent=1)
        sys.stdout.write('\n')
        return EXIT_OK
    for d in files:
        print_summary(d, sys.stdout)
    if len(files) > 1:
        print_combined(combine(files), sys.stdout)
    return EXIT_OK


def cmd_leaks(args):
    d = load(args.file)
    if args.json:
        json.dump({k: d[k] for k in ('file', 'program', 'pid', 'complete', 'has_footer',
                                     'sample', 'estimated', 'leaked_bytes', 'leaked_blocks',
                                     'program_leaked_bytes', 'program_leaked_blocks',
                                     'runtime_leaked_bytes', 'runtime_leaked_blocks',
                                     'leaks', 'runtime_leaks')},
                  sys.stdout, indent=1)
        sys.stdout.write('\n')
    else:
        print_leaks(d, sys.stdout)
    return EXIT_LEAK if (args.fail_on_leak and d['leaks']) else EXIT_OK


def cmd_plot(args):
    d = load(args.file, timeline=True)
    with open(args.output, 'w', encoding='utf-8') as f:
        f.write(render_html(d))
    sys.stderr.write('wrote %s\n' % args.output)
    return EXIT_OK


def cmd_suggest(args):
    if not 1 <= args.max_classes <= 64:
        sys.stderr.write('chainalloc log: --max-classes must be 1..64\n')
        return EXIT_ERROR
    d = load(args.file)
    res = suggest(d, args.max_classes, args.coverage, args.max_size)
    if res is None:
        sys.stderr.write('chainalloc log: %s: no allocation requests to learn from\n'
                         % args.file)
        return EXIT_ERROR
    if args.json:
        json.dump(res, sys.stdout, indent=1)
        sys.stdout.write('\n')
        return EXIT_OK
    base = res['default']
    print('%d requests in %s' % (res['requests'], args.file))
    print('suggested  %2d classes: hit rate %6.2f%%, waste %5.2f%%' % (
        res['count'], 100 * res['hit_rate'], 100 * res['waste']))
    print('default    %2d classes: hit rate %6.2f%%, waste %5.2f%%' % (
        base['count'], 100 * base['hit_rate'], 100 * base['waste']))
    print('(hit rate: requests the freelist serves; waste: share of its bytes lost to '
          'rounding up)')
    print(res['chain'])
    return EXIT_OK


def main(argv=None):
    ap = argparse.ArgumentParser(prog='chainalloc log',
                                 description='Read chainalloc proxy logs.')
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('summary', help='what happened, per process')
    p.add_argument('files', nargs='+', metavar='FILE')
    p.add_argument('--json', action='store_true')
    p.set_defaults(run=cmd_summary)
    p = sub.add_parser('leaks', help='blocks live at exit, by size')
    p.add_argument('file', metavar='FILE')
    p.add_argument('--fail-on-leak', action='store_true',
                   help="exit 1 if the program's own leaks are not empty")
    p.add_argument('--json', action='store_true')
    p.set_defaults(run=cmd_leaks)
    p = sub.add_parser('plot', help='self-contained HTML report')
    p.add_argument('file', metavar='FILE')
    p.add_argument('-o', '--output', required=True)
    p.set_defaults(run=cmd_plot)
    p = sub.add_parser('suggest', help='freelist size classes for this program')
    p.add_argument('file', metavar='FILE')
    p.add_argument('--max-classes', type=int, default=40)
    p.add_argument('--coverage', type=float, default=0.999,
                   help='share of requests the classes must cover (rarest large sizes '
                        'beyond it go to the backend)')
    p.add_argument('--max-size', type=int, default=32768,
                   help='largest request worth a class')
    p.add_argument('--json', action='store_true')
    p.set_defaults(run=cmd_suggest)
    args = ap.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
