"""The streaming pass: one read of a log into a Scan. Memory grows with the number of
distinct live addresses, not with the file size."""

import collections
import gzip
import math
import os
import sys
import time
import zlib
from urllib.parse import unquote_to_bytes

from .compact import TextView
from .packed import ZSTD_MAGIC, PackedView, Zstd
from .header import LogError, layer_names, parse_footer, read_header

CHUNK = 1 << 22          # bytes read per call: big reads keep the per-line cost minimal
TEMP_WINDOW = 8          # a block freed <= this many events (of its thread) later is temporary
TIMELINE_POINTS = 3000   # downsampled live-bytes points kept for `plot`
TOMBSTONE_SLACK = 1 << 18  # freed addresses remembered beyond the live ones (double frees)


def open_log(path):
    if path == '-':
        return sys.stdin.buffer
    with open(path, 'rb') as probe:
        magic = probe.read(2)
    if magic == b'\x1f\x8b':
        return gzip.open(path, 'rb')
    if magic == ZSTD_MAGIC[:2]:
        with open(path, 'rb') as probe:
            if probe.read(4) == ZSTD_MAGIC:   # a packed log, or any log compressed by zstd
                return Zstd(path)
    return open(path, 'rb')


class Scan:
    """Raw results of one pass over a log. With sampling by bytes (`weighted`), every figure
    is already an estimate: each sampled block counts for its weight. With the old address
    hash sampling, figures are as logged, not yet scaled by the factor. `live` maps pointer
    (bytes) -> block record or None (a tombstone: freed, remembered to tell a double free
    from a free of an unknown pointer). A block record is (size, t_ns bytes, thread state,
    thread event index, event index, op, weight, stack id bytes or None).

    Call stacks (LOG-FORMAT.md, Call stacks): `stacks` maps a stack id (bytes) to its frames
    (ints), `stack_modules` to how many `#M` lines preceded it, `modules` lists the `#M`
    lines in file order, and `sites` maps a stack id to its figures (SITE_* indexes);
    `peak_sites` is {stack id: live bytes} at the peak (within 1%, see _scan_events), and
    `peak_sizes` {request size: live blocks} at the same moment (for `suggest`'s model)."""


# Per-site figures, indexes into a `sites` row.
SITE_ALLOCS, SITE_BYTES, SITE_LIVE, SITE_TMP_BLOCKS, SITE_TMP_BYTES = range(5)
PEAK_SNAPSHOT_STEP = 1.01   # live-by-site (and by size) is copied when the peak grew by 1% since the last copy


class Weights(dict):
    """size -> how many requests a sampled block of that size stands for. Sampling by bytes
    (LOG-FORMAT.md, Sampling) takes a request of s bytes with probability 1 - exp(-s/N):
    its weight is the inverse, which makes the sums unbiased. Size 0 is sampled as 1 byte.
    Without byte sampling every weight is 1 (an int: unsampled figures stay exact)."""

    def __init__(self, mean):
        super().__init__()
        self.mean = mean

    def __missing__(self, size):
        w = 1 if self.mean <= 1 else 1.0 / -math.expm1(-max(size, 1) / self.mean)
        self[size] = w
        return w


def sampling_of(head):
    """(N, by_bytes): the header's sampling factor, and whether it samples by bytes (else
    by address hash, the format's first scheme, or not at all when N is 1)."""
    try:
        n = max(1, int(head.get('sample', '1')))
    except ValueError:
        n = 1
    return n, n > 1 and head.get('sampling') == 'bytes'


class Progress:
    """A file read through it shows how far the read has got, on stderr, when stderr is a
    terminal and the read takes more than a second (CHAINALLOC_LOG_PROGRESS=always: at once,
    terminal or not; =never: not at all). One line, rewritten in place, then cleared."""

    DELAY = 1.0      # seconds before the first line: quick reads stay quiet
    EVERY = 0.25     # seconds between updates

    def __init__(self, f, path):
        self.f = f
        self.name = os.path.basename(path)
        self.raw = getattr(f, 'fileobj', None) or f      # a gzip log: where its compressed bytes are
        try:
            self.total = os.fstat(self.raw.fileno()).st_size
        except (OSError, AttributeError, ValueError):
            self.total = 0
        mode = os.environ.get('CHAINALLOC_LOG_PROGRESS', '')
        self.start = time.monotonic()
        self.next = self.start + (0 if mode == 'always' else self.DELAY)
        self.shown = False

    @staticmethod
    def wanted():
        mode = os.environ.get('CHAINALLOC_LOG_PROGRESS', '')
        return mode == 'always' or (mode != 'never' and sys.stderr.isatty())

    def readline(self):
        return self.f.readline()

    def read(self, n):
        data = self.f.read(n)
        now = time.monotonic()
        if now >= self.next:
            self.next = now + self.EVERY
            self.show(now)
        return data

    def show(self, now):
        try:
            at = self.raw.tell()
        except (OSError, AttributeError, ValueError):
            at = 0
        mb = at / 1e6
        rate = mb / max(now - self.start, 1e-6)
        if self.total:
            text = 'reading %s: %3d%% (%.0f of %.0f MB, %.0f MB/s)' % (
                self.name, 100 * at // self.total, mb, self.total / 1e6, rate)
        else:
            text = 'reading %s: %.0f MB (%.0f MB/s)' % (self.name, mb, rate)
        sys.stderr.write('\r' + text + '\x1b[K')
        sys.stderr.flush()
        self.shown = True

    def finish(self):
        if self.shown:
            sys.stderr.write('\r\x1b[K')
            sys.stderr.flush()


def scan_log(path, timeline=False):
    """One pass over the log at `path` ('-': stdin) into a Scan: by the compiled scanner
    (chainalloc-logscan, logscan.py) when it is found, else by _scan_events below."""
    from . import logscan
    scanner = logscan.find_scanner()
    if scanner is None and os.environ.get('CHAINALLOC_LOG_SCANNER', '').startswith('check'):
        raise LogError('CHAINALLOC_LOG_SCANNER=check: no compiled scanner found to check')
    if scanner is not None:
        return logscan.scan_compiled(scanner, path, timeline)
    return scan_log_python(path, timeline)


def scan_log_python(path, timeline=False):
    raw = open_log(path)
    f = Progress(raw, path) if Progress.wanted() else raw
    try:
        first, head = read_header(f)
        if head['version'] in (2, 3):      # compact or packed records: decoded into v1 lines
            view = TextView(raw, first) if head['version'] == 2 else PackedView(raw)
            s = _scan_events(view, head, timeline)
            if view.cut and view.cut[0]:   # a packed log says how its source ended
                s.cut_line = True
                s.cut_text = view.cut[1] if len(view.cut) > 1 else \
                    b'(the file ends inside a chunk of records)'
            return s
        return _scan_events(f, head, timeline)
    except (EOFError, zlib.error) as e:   # a gzip log cut short or corrupted
        raise LogError('bad gzip data: %s' % e)
    finally:
        if f is not raw:
            f.finish()
        if raw is not sys.stdin.buffer:
            raw.close()


def _scan_events(f, head, timeline):
    s = Scan()
    s.head = head
    mean, s.weighted = sampling_of(head)
    W = Weights(mean if s.weighted else 1)
    # realloc's unsampled side (`-`): by hash, the line was one call; by bytes, a call is
    # counted through its new block only, whose weight is known when it was sampled.
    dash_w = 0 if s.weighted else 1
    s.tombstones_dropped = False
    names = layer_names(head)
    # Layer index (as bytes, as it appears in the log) -> [requests, bytes].
    layers = {str(i).encode(): [0, 0] for i in range(len(names))}
    threads = {}                             # tid bytes -> [events, bytes, first event index, tid, calls]
    sizes = collections.defaultdict(int)     # requested size -> allocation requests
    aligned_over16 = collections.defaultdict(int)  # size -> aligned requests with align > 16
    sfreed = collections.defaultdict(int)    # size -> blocks freed (live by size: sizes - sfreed)
    peak_sizes = {}
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
    stacks = {}                              # stack id bytes -> tuple of frame addresses
    stack_modules = {}                       # stack id bytes -> modules known when it came
    modules = []                             # (base, lo, hi, build id, path) per `#M` line
    sites = {}                               # stack id bytes -> [SITE_* figures]
    sget = sites.get
    peak_sites = {}
    peak_pending = False                     # a new peak since the last copy of live by site
    snap_peak = 0

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
                        th = threads[tid] = [0, 0, n, tid, 0]
                    th[0] += 1
                    if op == b'f':
                        ptr = p[3]
                        rec = lget(ptr)
                        if rec is not None:
                            live[ptr] = None
                            size = rec[0]
                            w = rec[6]
                            nf += w
                            th[4] += w
                            if peak_pending:
                                if lbytes >= snap_peak * PEAK_SNAPSHOT_STEP:
                                    snap_peak = lbytes
                                    peak_sites = _live_by_site(sites)
                                    peak_sizes = _live_by_size(sizes, sfreed)
                                peak_pending = False
                            lbytes -= size * w
                            lblocks -= w
                            sfreed[size] += w
                            if lbytes < bmin:
                                bmin = lbytes
                            site = rec[7]
                            if site is not None:
                                site = sites[site]
                                site[2] -= size * w
                            if rec[2] is th and th[0] - rec[3] <= temp_window:
                                tmp_blocks += w
                                tmp_bytes += size * w
                                if site is not None:
                                    site[3] += w
                                    site[4] += size * w
                            continue
                        nf += 1
                        th[4] += 1
                        if ptr in live:
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
                        sid = p[6] if len(p) > 6 else None
                        w = 1 if lay is None else W[size]    # failures: all logged
                        if op == b'm':
                            nm += w
                        else:
                            nc += w
                        th[4] += w
                        if lay is None:
                            failed += 1
                            continue
                    elif op == b'r':
                        old = p[3]
                        size = int(p[4])
                        ptr = p[5]
                        sid = p[7] if len(p) > 7 else None
                        if ptr != b'0' and ptr != b'-':
                            lay = layers[p[6]]
                            w = W[size]
                        else:
                            w = dash_w
                        if ptr == b'0' and (size != 0 or old == b'0'):
                            nr += 1
                            th[4] += 1
                            failed += 1      # the old block is untouched
                            continue
                        if old != b'0' and old != b'-':
                            rec = lget(old)
                            if rec is not None:
                                live[old] = None
                                if ptr == b'0':
                                    w = rec[6]   # realloc(p, 0): counted through p
                                if peak_pending:
                                    if lbytes >= snap_peak * PEAK_SNAPSHOT_STEP:
                                        snap_peak = lbytes
                                        peak_sites = _live_by_site(sites)
                                        peak_sizes = _live_by_size(sizes, sfreed)
                                    peak_pending = False
                                lbytes -= rec[0] * rec[6]
                                lblocks -= rec[6]
                                sfreed[rec[0]] += rec[6]
                                if rec[7] is not None:
                                    sites[rec[7]][2] -= rec[0] * rec[6]
                                if lbytes < bmin:
                                    bmin = lbytes
                            else:
                                bad_realloc += 1
                                if len(anomalies) < 20:
                                    anomalies.append(('realloc of a pointer that is not live',
                                                      n + skipped, p[0], tid, old))
                        nr += w
                        th[4] += w
                        if ptr == b'0' or ptr == b'-':
                            continue         # realloc(p, 0) freed p / new block not sampled
                    elif op == b'a':
                        align = int(p[3])
                        size = int(p[4])
                        ptr = p[5]
                        lay = None if ptr == b'0' else layers[p[6]]
                        sid = p[7] if len(p) > 7 else None
                        w = 1 if lay is None else W[size]
                        na += w
                        th[4] += w
                        if lay is None:
                            failed += 1
                            continue
                        if align > 16:
                            aligned_over16[size] += w
                    else:
                        raise ValueError
                    # A new block of `size` bytes at `ptr`, served by layer `lay`.
                    sizes[size] += w
                    lay[0] += w
                    lay[1] += size * w
                    th[1] += size * w
                    rec = lget(ptr)
                    if rec is not None:      # allocated again while live: a free was lost
                        reused += 1
                        lbytes -= rec[0] * rec[6]
                        lblocks -= rec[6]
                        sfreed[rec[0]] += rec[6]
                        if rec[7] is not None:
                            sites[rec[7]][2] -= rec[0] * rec[6]
                        if len(anomalies) < 20:
                            anomalies.append(('allocation of a live pointer', n + skipped, p[0], tid, ptr))
                    if sid is not None:
                        site = sget(sid)
                        if site is None:
                            site = sites[sid] = [0, 0, 0, 0, 0]
                        site[0] += w
                        site[1] += size * w
                        site[2] += size * w
                    live[ptr] = (size, p[0], th, th[0], n, op, w, sid)
                    lbytes += size * w
                    lblocks += w
                    if lbytes > bmax:
                        bmax = lbytes
                        if lbytes > peak:
                            peak = lbytes
                            peak_t = p[0]
                            peak_pending = True
                except (IndexError, ValueError, KeyError):
                    n -= 1
                    if line.startswith(b'# end ') or line == b'# end':
                        footer = parse_footer(line)
                        footer_at = n
                        skipped += 1
                    elif line.startswith(b'#S ') and _stack_line(line, stacks):
                        stack_modules[line.split(None, 2)[1]] = len(modules)
                        skipped += 1
                    elif line.startswith(b'#M ') and _module_line(line, modules):
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
    if peak_pending:
        peak_sites = _live_by_site(sites)   # the log ended at its peak
        peak_sizes = _live_by_size(sizes, sfreed)
    s.stacks, s.stack_modules, s.modules = stacks, stack_modules, modules
    s.sites, s.peak_sites = sites, peak_sites
    s.peak_sizes = peak_sizes
    s.layer_names = names
    s.layers = layers
    s.threads = threads
    s.sizes = sizes
    s.aligned_over16 = aligned_over16
    s.live = {k: v for k, v in live.items() if v is not None}
    s.live_bytes, s.live_blocks = lbytes, lblocks
    s.peak, s.peak_t = peak, event_time(peak_t)
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


def _live_by_site(sites):
    return {k: v[SITE_LIVE] for k, v in sites.items() if v[SITE_LIVE] > 0}


def _live_by_size(sizes, freed):
    """Live blocks by size: requests minus frees (one count per free keeps the hot loop's
    allocation path as it was)."""
    out = {}
    for k, v in sizes.items():
        v -= freed.get(k, 0)
        if v > 0:
            out[k] = v
    return out


def _stack_line(line, stacks):
    """'#S id frame...' (hex frames, innermost first) into stacks; False if malformed."""
    p = line.split()
    try:
        int(p[1])
        stacks[p[1]] = tuple(int(x, 16) for x in p[2:])
    except (IndexError, ValueError):
        return False
    return True


def _module_line(line, modules):
    """'#M base lo hi build-id path' (path percent-encoded) into modules."""
    p = line.split(None, 5)
    try:
        base, lo, hi = int(p[1], 16), int(p[2], 16), int(p[3], 16)
        build_id = None if p[4] == b'-' else p[4].decode('ascii')
        path = unquote_to_bytes(p[5]).decode('utf-8', 'surrogateescape')
    except (IndexError, ValueError, UnicodeDecodeError):
        return False
    modules.append((base, lo, hi, build_id, path))
    return True


def event_time(t):
    """An event's t_ns; 0 if it is not a number (times are not checked per line: speed)."""
    return int(t) if t.isdigit() else 0


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

