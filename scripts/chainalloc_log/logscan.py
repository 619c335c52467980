"""The compiled pass: chainalloc-logscan (reader/ in the source tree) reads a log as
_scan_events does and prints the Scan as JSON, built here into the same Scan object, about
nine times faster and in memory bounded by the live blocks (LOG-FORMAT.md, Memory and speed).

Which scanner runs: CHAINALLOC_LOG_SCANNER=python forces the Python pass; =PATH names the
program. Otherwise the program the launcher knows (its `log_scanner` part), else the one
beside this package when installed (libexec/chainalloc/) or in build/reader/ of the source
tree; none found: the Python pass. =check (or check:PATH), for the tests, runs both and
fails on any difference between their Scans (differences())."""

import collections
import fcntl
import json
import os
import subprocess
import sys
import threading
import zlib
from urllib.parse import unquote_to_bytes

from .header import LogError, layer_names, parse_footer, read_header
from .parse import CHUNK, Progress, Scan, open_log, sampling_of

FORMAT = 1                    # the JSON shape this reader expects (reader/scan_json.cpp)
SCANNED_VERSIONS = (1, 2, 3)  # the log formats the scanner reads: text lines, compact, packed records
COMPACT_VERSION = 2
PACKED_VERSION = 3
PROGRAM = 'chainalloc-logscan'
_hint = None                  # the launcher's finder: () -> path or None


def set_hint(finder):
    global _hint
    _hint = finder


def find_scanner():
    choice = os.environ.get('CHAINALLOC_LOG_SCANNER', '')
    if choice == 'python':
        return None
    if choice.startswith('check:'):
        return choice[len('check:'):]
    if choice and choice != 'check':
        return choice
    if _hint is not None:
        found = _hint()
        if found:
            return found
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for cand in (os.path.join(here, PROGRAM),                                  # installed
                 os.path.join(os.path.dirname(here), 'build', 'reader', PROGRAM)):  # source tree
        if os.access(cand, os.X_OK):
            return cand
    return None


def scan_compiled(scanner, path, timeline):
    choice = os.environ.get('CHAINALLOC_LOG_SCANNER', '')
    if choice == 'check' or choice.startswith('check:'):
        return _scan_checked(scanner, path, timeline)
    raw = open_log(path)
    try:
        try:
            first, head = read_header(raw)
        except (EOFError, zlib.error) as e:   # as scan_log_python: a gzip log cut or corrupted
            raise LogError('bad gzip data: %s' % e)
        mean, weighted = sampling_of(head)
        # The scanner reads text lines (version 1) and compact records (version 2, decoded
        # into the same lines). A sample of 2^53 or more goes to the Python pass: the
        # weights would round differently from Python's int division.
        if head.get('version') not in SCANNED_VERSIONS or mean >= 1 << 53:
            from .parse import scan_log_python
            return scan_log_python(path, timeline)
        args = [scanner, '--layers', str(len(layer_names(head))), '--sample', str(mean)]
        if weighted:
            args.append('--weighted')
        if timeline:
            args.append('--timeline')
        if head.get('version') == COMPACT_VERSION:
            args.append('--compact')
        elif head.get('version') == PACKED_VERSION:
            args.append('--packed')
        try:
            if _plain_file(path, raw):                 # the scanner reads it
                if Progress.wanted():
                    always = os.environ.get('CHAINALLOC_LOG_PROGRESS', '') == 'always'
                    args += ['--progress', os.path.basename(path),
                             '--progress-delay', '0' if always else str(Progress.DELAY)]
                out = _run(args + ['--offset', str(len(first)), path], None)
            else:                                      # gzip, stdin, a FIFO: through a pipe
                if head.get('version') == COMPACT_VERSION:   # where the chunks start
                    args += ['--offset', str(len(first))]
                out = _run(args + ['-'], raw, path)
        except _Inexact:
            if path == '-' or not os.path.isfile(path):   # read once, cannot be read again
                raise LogError('the log holds numbers beyond 64 bits: read it from a file, '
                               'or with CHAINALLOC_LOG_SCANNER=python')
            from .parse import scan_log_python
            return scan_log_python(path, timeline)
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()
    d = json.loads(out)
    if d.get('format') != FORMAT:
        raise LogError('%s speaks format %r, this reader reads %d: rebuild it, or set '
                       'CHAINALLOC_LOG_SCANNER=python' % (scanner, d.get('format'), FORMAT))
    return _scan_from(d, head)


def _plain_file(path, raw):
    """A regular file read as it is (not stdin, gzip nor zstd): the scanner opens it itself."""
    return path != '-' and not hasattr(raw, 'fileobj') and os.path.isfile(path)


EXIT_INEXACT = 3   # the log holds numbers beyond 64 bits: only the Python pass adds them up


class _Inexact(Exception):
    pass


def _run(args, feed, path=None, out=None):
    """The scanner's stdout. With `feed`, a file object whose bytes (after the header,
    already read) go to the scanner's stdin, through the progress line when wanted. With
    `out`, a file the scanner writes to instead (nothing is returned)."""
    try:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                                stdout=out or subprocess.PIPE)
    except OSError as e:
        raise LogError('cannot run the log scanner %s: %s (CHAINALLOC_LOG_SCANNER=python '
                       'reads without it)' % (args[0], e.strerror))
    errors = []
    feeder = None
    if feed is not None:
        f = Progress(feed, path) if Progress.wanted() else feed
        try:   # a larger pipe: fewer hand-offs while both sides work (decompress / scan)
            fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        except (OSError, AttributeError):
            pass

        def pump():
            try:
                while True:
                    chunk = f.read(CHUNK)
                    if not chunk:
                        break
                    proc.stdin.write(chunk)
            except (EOFError, zlib.error) as e:   # a gzip log cut short or corrupted
                errors.append(LogError('bad gzip data: %s' % e))
                proc.kill()
            except BrokenPipeError:
                pass
            except OSError as e:
                errors.append(LogError(str(e)))
                proc.kill()
            finally:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
                if f is not feed:
                    f.finish()
        feeder = threading.Thread(target=pump, daemon=True)
        feeder.start()
    if out is None:
        with proc.stdout:
            out = proc.stdout.read()
    else:
        out = None
    proc.wait()
    if feeder is not None:
        feeder.join()
    if errors:
        raise errors[0]
    if proc.returncode == EXIT_INEXACT:
        raise _Inexact()
    if proc.returncode != 0:
        raise LogError('the log scanner %s failed (exit %d); CHAINALLOC_LOG_SCANNER=python '
                       'reads without it' % (args[0], proc.returncode))
    return out


def _b(text):
    """The log's bytes back from the scanner's JSON text (one code point per byte)."""
    return text.encode('latin-1')


def _hex(v):
    return v if type(v) is int else int(v, 16)


def _scan_from(d, head):
    """The Scan that _scan_events would have built (parse.py documents its fields)."""
    s = Scan()
    s.head = head
    _, s.weighted = sampling_of(head)
    s.tombstones_dropped = d['tombstones_dropped']
    s.layer_names = layer_names(head)
    s.layers = {str(i).encode(): list(row) for i, row in enumerate(d['layers'])}
    threads = {}
    by_index = []
    for tid, events, nbytes, first, calls in d['threads']:
        tid = _b(tid)
        th = threads[tid] = [events, nbytes, first, tid, calls]
        by_index.append(th)
    s.threads = threads
    s.sizes = collections.defaultdict(int, d['sizes'])
    s.aligned_over16 = collections.defaultdict(int, d['aligned_over16'])
    s.peak_sizes = dict(d['peak_sizes'])
    ops = {'m': b'm', 'c': b'c', 'a': b'a', 'r': b'r'}
    s.live = {_b(ptr): (size, _b(t), by_index[ti], te, n, ops[op], w,
                        None if sid is None else _b(sid))
              for ptr, size, t, ti, te, n, op, w, sid in d['live']}
    s.live_bytes, s.live_blocks = d['live_bytes'], d['live_blocks']
    s.peak, s.peak_t = d['peak'], d['peak_t']
    m, c, r, a, f, failed = d['counts']
    s.counts = {'malloc': m, 'calloc': c, 'realloc': r, 'aligned': a, 'free': f,
                'failed': failed}
    s.temp_blocks, s.temp_bytes = d['temp_blocks'], d['temp_bytes']
    s.unknown_frees, s.double_frees = d['unknown'], d['double']
    s.bad_reallocs, s.reused_live = d['bad_realloc'], d['reused']
    s.malformed = d['malformed']
    s.anomalies = [(kind, line, _b(t), _b(tid), _b(ptr))
                   for kind, line, t, tid, ptr in d['anomalies']]
    s.footer = None if d['footer'] is None else parse_footer(_b(d['footer']))
    s.after_footer = (d['events'] - d['footer_at']) if s.footer is not None else 0
    s.events = d['events']
    s.cut_line, s.cut_text = d['cut_line'], _b(d['cut_text'])
    s.last_t = d['last_t']
    s.points = [tuple(p) for p in d['points']]
    s.stacks, s.stack_modules = {}, {}
    for sid, frames, modules in d['stacks']:
        sid = _b(sid)
        s.stacks[sid] = tuple(_hex(x) for x in frames)
        s.stack_modules[sid] = modules
    s.modules = [(_hex(base), _hex(lo), _hex(hi), build_id,
                  unquote_to_bytes(_b(path)).decode('utf-8', 'surrogateescape'))
                 for base, lo, hi, build_id, path in d['modules']]
    s.sites = {_b(row[0]): list(row[1:]) for row in d['sites']}
    s.peak_sites = {_b(sid): v for sid, v in d['peak_sites']}
    return s


class ScanMismatch(AssertionError):
    """CHAINALLOC_LOG_SCANNER=check found the two passes disagreeing: a bug, not a bad log
    (so not a LogError: the fuzzer and the tests see it as a failure)."""


def _scan_checked(scanner, path, timeline):
    """CHAINALLOC_LOG_SCANNER=check: both passes, which must agree (stdin is read once,
    into a temporary file)."""
    import tempfile
    from . import parse
    if path == '-':
        with tempfile.NamedTemporaryFile(prefix='chainalloc-stdin.', suffix='.log') as tmp:
            tmp.write(sys.stdin.buffer.read())
            tmp.flush()
            return _scan_checked(scanner, tmp.name, timeline)
    choice = os.environ['CHAINALLOC_LOG_SCANNER']
    os.environ['CHAINALLOC_LOG_SCANNER'] = scanner   # for the compiled pass, just this once
    try:
        fast = scan_compiled(scanner, path, timeline)
    finally:
        os.environ['CHAINALLOC_LOG_SCANNER'] = choice
    slow = parse.scan_log_python(path, timeline)
    diff = differences(fast, slow)
    if diff:
        raise ScanMismatch('the compiled and the Python scans of %s differ:\n  %s'
                           % (path, '\n  '.join(diff[:20])))
    return fast


SCAN_FIELDS = ('head', 'weighted', 'tombstones_dropped', 'cut_line', 'cut_text', 'stacks',
               'stack_modules', 'modules', 'sites', 'peak_sites', 'peak_sizes', 'layer_names',
               'layers', 'threads', 'sizes', 'aligned_over16', 'live', 'live_bytes',
               'live_blocks', 'peak', 'peak_t', 'counts', 'temp_blocks', 'temp_bytes',
               'unknown_frees', 'double_frees', 'bad_reallocs', 'reused_live', 'malformed',
               'anomalies', 'footer', 'after_footer', 'events', 'last_t', 'points')


def _exact(v):
    """A value with its types spelt out (3 and 3.0 differ; dicts in their order)."""
    if isinstance(v, bool) or v is None or isinstance(v, (bytes, str)):
        return v
    if isinstance(v, int):
        return ('int', v)
    if isinstance(v, float):
        return ('float', v.hex())
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, [_exact(x) for x in v])
    if isinstance(v, dict):
        return (type(v).__name__, [(_exact(k), _exact(x)) for k, x in v.items()])
    raise TypeError('unexpected %s in a Scan' % type(v).__name__)


def differences(a, b):
    """What differs between two Scans, field by field; [] when they are the same. `live` is
    compared as a mapping (its order is not kept: every user sorts it), each block's thread
    by its id, which must be that scan's own thread record."""
    out = []
    for name in SCAN_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if name == 'live':
            for scan, live in ((a, x), (b, y)):
                for rec in live.values():
                    if scan.threads.get(rec[2][3]) is not rec[2]:
                        out.append('live: a block\'s thread is not in its scan\'s threads')
                        break
            x = sorted((k, _exact(r[:2] + (r[2][3],) + r[3:])) for k, r in x.items())
            y = sorted((k, _exact(r[:2] + (r[2][3],) + r[3:])) for k, r in y.items())
        else:
            x, y = _exact(x), _exact(y)
        if x != y:
            out.append('%s: %s\n    vs %s' % (name, _short(x), _short(y)))
    return out


def _short(v):
    text = repr(v)
    return text if len(text) < 400 else text[:400] + '...'


def pack(scanner, path, dest, level):
    """Writes `path`'s log packed (version 3, zstd-compressed) to `dest`, which must not exist:
    the scanner writes the records, the `zstd` program compresses them."""
    from .packed import pack_header
    raw = open_log(path)
    try:
        first, head = read_header(raw)
        if head['version'] not in (1, COMPACT_VERSION):
            raise LogError('already packed')
        args = [scanner, '--pack', '--layers', str(len(layer_names(head)))]
        if head['version'] == COMPACT_VERSION:   # from a pipe too: where the chunks start
            args += ['--compact', '--offset', str(len(first))]
        # As private as the source: a log holds the command line and the program's paths.
        mode = os.stat(path).st_mode & 0o777 if path != '-' else 0o600
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            with os.fdopen(fd, 'wb') as f:
                zstd = subprocess.Popen(['zstd', '-q', '-%d' % level, '-c'], stdin=subprocess.PIPE,
                                        stdout=f)
                try:
                    zstd.stdin.write(pack_header(first, head['version']))
                    zstd.stdin.flush()
                    if _plain_file(path, raw):
                        if head['version'] != COMPACT_VERSION:
                            args += ['--offset', str(len(first))]
                        _run(args + [path], None, out=zstd.stdin)
                    else:
                        _run(args + ['-'], raw, path, out=zstd.stdin)
                finally:
                    zstd.stdin.close()
                    if zstd.wait() != 0:
                        raise LogError('zstd failed (exit %d)' % zstd.returncode)
        except BaseException:
            os.unlink(dest)
            raise
    except OSError as e:
        raise LogError('%s%s' % (e.strerror, ': ' + e.filename if e.filename else ''))
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()
