"""Packed logs (format version 3, LOG-FORMAT.md "Packed logs"): `chainalloc log pack` keeps what
reports by site need, zstd-compressed. Decoded here into the lines of version 1, as
reader/packed_source.cpp does for the compiled scanner: the lines are byte for byte the same,
so both passes give one answer."""

import collections
import os
import subprocess

from .compact import LinesView
from .header import LogError

VERSION = 3
TIME_STEP_NS = 1000000
ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'
TEXT, TIME, THREAD, KIND, ALLOC, FREE, REALLOC, CUT = range(1, 9)
OPS = (b'm', b'c', b'a', b'r')
OLD_NULL, OLD_DASH, OLD_UNKNOWN, OLD_OLDEST, OLD_NEWEST = range(5)   # OLD_NEWEST + j: j-th newest
NEW_NULL, NEW_DASH, NEW_BLOCK, NEW_IN_PLACE = range(4)
READ = 1 << 16


class Damaged(Exception):
    """A record the packer never writes, or the stream ends inside one."""


class _Input:
    def __init__(self, f):
        self.f, self.buf, self.pos = f, b'', 0

    def fill(self, n):
        """Reads by READ bytes, never by what a length promises: a damaged one may say 2^60."""
        while len(self.buf) - self.pos < n:
            more = self.f.read(READ)
            if not more:
                return False
            self.buf = self.buf[self.pos:] + more
            self.pos = 0
        return True

    def byte(self):
        if not self.fill(1):
            return None
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def var(self):
        out = shift = 0
        while shift < 64:
            b = self.byte()
            if b is None:
                raise Damaged()
            out |= (b & 0x7f) << shift
            if not b & 0x80:
                return out
            shift += 7
        raise Damaged()

    def bytes(self, n):
        if not self.fill(n):
            raise Damaged()
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out


def decode_lines(f, cut):
    """The body's lines (without newlines). `cut` gets [True, text] when the log ended cut
    short: the pack says so (a cut line or chunk), or the stream ends inside a record."""
    src = _Input(f)
    kinds = []      # [op, layer+1, size, align, stack+1, live addresses oldest first]
    free = []       # addresses of freed blocks, newest last: reused newest first
    step = tid = serial = unknown = 0
    cut_text = None

    def old_ref():
        code = src.var()
        return (code, src.var()) if code >= OLD_OLDEST else (code, 0)

    def take(ref, release):
        """(text, address or None) of the block an event takes; the caller frees the address."""
        nonlocal unknown
        code, kind = ref
        if code == OLD_NULL:
            return b'0', None
        if code == OLD_DASH:
            return b'-', None
        if code == OLD_UNKNOWN:     # an address no block of this log has: above them all
            unknown += 1
            return b'%x' % ((1 << 60) + (unknown << 4)), None
        if kind >= len(kinds):
            raise Damaged()
        live = kinds[kind][5]
        j = code - OLD_NEWEST    # the place from the newest
        if not live or (code != OLD_OLDEST and j >= len(live)):
            raise Damaged()
        at = 0 if code == OLD_OLDEST else len(live) - 1 - j
        a = live[at]
        if release:
            del live[at]
        return b'%x' % a, a

    def made(k, code, in_place):
        nonlocal serial
        if code == NEW_NULL:
            return b'0'
        if code == NEW_DASH:
            return b'-'
        if code == NEW_IN_PLACE:
            a = in_place
        elif free:
            a = free.pop()
        else:
            serial += 1
            a = serial << 4
        k[5].append(a)
        return b'%x' % a

    def event(k, old, ptr):
        parts = [b'%d %d %s' % (step * TIME_STEP_NS, tid, OPS[k[0]])]
        if k[0] == 2:
            parts.append(b'%d' % k[3])
        if old is not None:
            parts.append(old)
        parts += [b'%d' % k[2], ptr, b'%d' % (k[1] - 1) if k[1] else b'-']
        if k[4]:
            parts.append(b'%d' % (k[4] - 1))
        return b' '.join(parts)

    try:
        while True:
            tag = src.byte()
            if tag is None:
                break
            if tag in (TEXT, CUT):
                text = src.bytes(src.var())
                if tag == CUT:
                    cut_text = text
                else:
                    yield text
            elif tag == TIME:
                step += src.var()
            elif tag == THREAD:
                tid = src.var()
            elif tag == KIND:
                k = [src.var() for _ in range(5)] + [collections.deque()]
                if k[0] > 3:
                    raise Damaged()
                kinds.append(k)
            elif tag == ALLOC:
                i, code = src.var(), src.var()
                if i >= len(kinds) or kinds[i][0] > 2 or code > NEW_BLOCK:
                    raise Damaged()
                yield event(kinds[i], None, made(kinds[i], code, None))
            elif tag == FREE:
                old, addr = take(old_ref(), True)
                if addr is not None:
                    free.append(addr)
                yield b'%d %d f %s' % (step * TIME_STEP_NS, tid, old)
            elif tag == REALLOC:
                i, ref, code = src.var(), old_ref(), src.var()
                if i >= len(kinds) or kinds[i][0] != 3 or code > NEW_IN_PLACE:
                    raise Damaged()
                k = kinds[i]
                release = code != NEW_NULL or k[2] == 0
                old, addr = take(ref, release)
                if code == NEW_IN_PLACE and (addr is None or not release):
                    raise Damaged()
                ptr = made(k, code, addr)
                if addr is not None and release and code != NEW_IN_PLACE:
                    free.append(addr)   # only now: a moved block never gets its old address
                yield event(k, old, ptr)
            else:
                raise Damaged()
    except Damaged:
        if cut_text is None:
            cut_text = b'(the packed log ends inside a record)'
    if cut_text is not None:
        cut[:] = [True, cut_text[:60]]


class PackedView(LinesView):
    """A packed log read as a version 1 body."""

    def __init__(self, f):
        """`f`: the decompressed log, its first line already read."""
        self.cut = []
        self.lines = decode_lines(f, self.cut)


class Zstd:
    """A zstd-compressed log read through the `zstd` program, as a file object. `fileobj`
    marks it, as gzip's, as a stream that is read, never mapped nor sought."""

    def __init__(self, path):
        try:
            self.proc = subprocess.Popen(['zstd', '-dcq', '--', path], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
        except OSError as e:
            raise LogError('%s is zstd-compressed and cannot be read without the zstd '
                           'program: %s' % (path, e.strerror))
        self.fileobj = self.proc.stdout
        self.path = path

    def read(self, n=-1):
        data = self.proc.stdout.read(n)
        if not data and n != 0:
            self._check()
        return data

    def readline(self):
        line = self.proc.stdout.readline()
        if not line.endswith(b'\n'):
            self._check()
        return line

    def _check(self):
        if self.proc.wait() != 0:
            why = self.proc.stderr.read().decode(errors='replace').strip().splitlines()
            raise LogError('bad zstd data in %s: %s' % (self.path, why[-1] if why else 'zstd failed'))

    def close(self):
        self.proc.stdout.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()


def pack_header(first, version):
    """The packed log's header: the log's own, version 3, with what the pack is of."""
    rest = first[first.index(b' chainalloc-log ') + len(b' chainalloc-log '):].split(b' ', 1)
    return b'# chainalloc-log %d packed_from=%d time_step_ns=%d %s' % (
        VERSION, version, TIME_STEP_NS, rest[1] if len(rest) > 1 else b'\n')


def pack_name(path):
    return os.path.basename(path) + '.zst' if path != '-' else 'stdin.log.zst'
