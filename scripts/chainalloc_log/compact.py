"""Compact logs (format version 2, LOG-FORMAT.md): the per-thread chunks decoded and merged by
time into the text lines of version 1, so that every verb reads both. This is the portable
path; the compiled scanner reads version 2 itself, much faster."""

import heapq
import io
import mmap

PAGE = 4096
CHUNK_MAGIC = 0x6b6e6863
CHUNK_HEADER = 32
FAILED_LAYER = 15
OP_NAMES = {1: b'm', 2: b'c', 3: b'a', 4: b'r', 5: b'f'}
META = 6
META_MODULE, META_STACK, META_TEXT = 1, 2, 3
NULL_CODE, UNSAMPLED_CODE = 2, 3
MASK = (1 << 64) - 1


class Damaged(Exception):
    """A record runs past its chunk: the rest of that chunk is skipped."""


def body_offset(header_len):
    """The first chunk: the first multiple of the page past the header line (newline included)."""
    return (header_len + PAGE) & ~(PAGE - 1)


def chunks(data, start):
    """([(offset, size, tid, t_base, ptr_base) of every chunk, in file order], cut). A page
    that does not start a chunk (reserved but never written: the process died first) is
    skipped. `cut`: the file ends inside a chunk or a page, which no writer leaves (a whole
    file is pages, each chunk whole): it was cut short, and may have lost any thread's end."""
    out = []
    cut = len(data) % PAGE != 0
    off = start
    end = len(data)
    while off + CHUNK_HEADER <= end:
        magic = int.from_bytes(data[off:off + 4], 'little')
        size = int.from_bytes(data[off + 4:off + 8], 'little')
        if magic != CHUNK_MAGIC or size < PAGE or size % PAGE:
            off += PAGE
            continue
        tid = int.from_bytes(data[off + 8:off + 12], 'little')
        t_base = int.from_bytes(data[off + 16:off + 24], 'little')
        ptr_base = int.from_bytes(data[off + 24:off + 32], 'little')
        if off + size > end:
            cut = True
            size = end - off
        out.append((off, size, tid, t_base, ptr_base))
        off += size
    return out, cut


def _records(data, off, size, tid, t, prev):
    """(t_ns, kind, fields) of one chunk's records: kind is an op byte for events, or 'M', 'S',
    'T' for a module, a stack, a text line."""
    p = off + CHUNK_HEADER
    end = off + size
    tid_text = str(tid).encode()

    def var():
        """An unsigned LEB128 of at most 64 bits (a longer one is damage, as in the writer's
        and the compiled reader's decoders)."""
        nonlocal p
        v = shift = 0
        while True:
            if p >= end or shift > 63:
                raise Damaged
            b = data[p]
            p += 1
            if shift == 63 and b > 1:
                raise Damaged
            v |= (b & 0x7f) << shift
            if b < 0x80:
                return v
            shift += 7

    def pointer():
        nonlocal prev
        c = var()
        if c == NULL_CODE:
            return b'0'
        if c == UNSAMPLED_CODE:
            return b'-'
        z = c >> 2
        d = (z >> 1) ^ -(z & 1)
        if c & 3 == 0:
            d *= 16
        elif c & 3 != 1:
            raise Damaged
        prev = (prev + d) & MASK
        return b'%x' % prev

    def blob():
        nonlocal p
        n = var()
        if p + n > end:
            raise Damaged
        b = bytes(data[p:p + n])
        p += n
        return b

    try:
        while p < end:
            tag = data[p]
            if tag == 0:
                return
            p += 1
            t = (t + var()) & MASK       # 64-bit arithmetic, as the writer's
            op = tag & 7
            if op == META:
                kind = var()
                if kind == META_MODULE:
                    yield t, 'M', (var(), var(), var(), var(), blob(), blob())
                elif kind == META_STACK:
                    sid, known, depth = var(), var(), var()
                    frames, f = [], 0
                    for _ in range(depth):
                        z = var()
                        f = (f + ((z >> 1) ^ -(z & 1))) & MASK
                        frames.append(f)
                    yield t, 'S', (sid, known, frames)
                elif kind == META_TEXT:
                    yield t, 'T', blob()
                else:
                    return
                continue
            name = OP_NAMES.get(op)
            if name is None:
                return
            layer = (tag >> 3) & 15
            lay = b'-' if layer == FAILED_LAYER else str(layer).encode()
            ts = str(t).encode()
            if op == 5:
                yield t, 'E', b'%s %s f %s' % (ts, tid_text, pointer())
                continue
            if op == 3:
                fields = [str(var()).encode(), str(var()).encode(), pointer()]
            elif op == 4:
                old = pointer()
                fields = [old, str(var()).encode(), pointer()]
            else:
                fields = [str(var()).encode(), pointer()]
            fields.append(lay)
            if tag & 0x80:
                fields.append(str(var()).encode())
            yield t, 'E', ts + b' ' + tid_text + b' ' + name + b' ' + b' '.join(fields)
    except Damaged:
        return


def _thread_records(data, chunk_list):
    for off, size, tid, t_base, ptr_base in chunk_list:
        yield from _records(data, off, size, tid, t_base, ptr_base)


def _keyed(k, records):
    """(t, k, i, kind, value): the merge's order, ties by stream, then within the stream."""
    for i, (t, kind, v) in enumerate(records):
        yield t, k, i, kind, v


def _stack_line(sid, frames):
    return b'#S %d %s' % (sid, b' '.join(b'%x' % f for f in frames))


def _pct(b):
    return b''.join(bytes([c]) if 0x20 < c < 0x7f and c not in b'%,' else b'%%%02X' % c for c in b)


def decode_lines(data, header_len, cut=None):
    """The log's body as version 1 lines (without newlines), merged by time across threads.
    Modules and stacks come as `#M` and `#S` lines: a stack after the modules it was written
    with (its record says how many), the footer as its text. `cut`, a list, gets whether the
    file was cut short (see chunks)."""
    by_thread = {}
    found, was_cut = chunks(data, body_offset(header_len))
    if cut is not None:
        cut.append(was_cut)
    for c in found:
        by_thread.setdefault(c[2], []).append(c)
    # Records of equal time come in the order of their threads' first chunks.
    streams = [_keyed(k, _thread_records(data, lst)) for k, lst in enumerate(by_thread.values())]
    modules = {}          # index -> #M line, until written
    written = 0           # modules written so far, in index order
    waiting = []          # stacks whose modules have not all come yet

    def write_modules(until):
        """Modules in index order, as far as they have come, up to (not including) `until`."""
        nonlocal written
        while written < until and written in modules:
            yield modules.pop(written)
            written += 1
    for t, k, i, kind, v in heapq.merge(*streams):
        if kind == 'E':
            yield v
        elif kind == 'M':
            idx, base, lo, hi, build_id, path = v
            modules[idx] = b'#M %x %x %x %s %s' % (base, lo, hi, build_id.hex().encode() or b'-', _pct(path))
        elif kind == 'S':
            waiting.append(v)
        else:
            yield v
        if waiting:
            still = []
            for sid, known, frames in waiting:
                yield from write_modules(known)
                if written >= known:
                    yield _stack_line(sid, frames)
                else:
                    still.append((sid, known, frames))
            waiting = still
    for sid, known, frames in waiting:
        yield from write_modules(float('inf'))
        yield _stack_line(sid, frames)
    for idx in sorted(modules):
        yield modules[idx]


class LinesView:
    """Decoded lines read as a version 1 body: `read(n)` returns whole lines, as a text log's
    file object would return its bytes. `lines` is set by the subclass."""

    done = False

    def read(self, n):
        if self.done:
            return b''
        out = []
        size = 0
        for line in self.lines:
            out.append(line)
            size += len(line) + 1
            if size >= n:
                break
        else:
            self.done = True
        return b'\n'.join(out) + b'\n' if out else b''

    def readline(self):
        return self.read(1)


class TextView(LinesView):
    """A compact log read as a version 1 body."""

    def __init__(self, f, first_line):
        """`f`: the log, its first line already read (a file, a gzip stream or a pipe)."""
        try:
            if not hasattr(f, 'fileobj'):   # gzip streams are read, not mapped
                self.data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass
        if not hasattr(self, 'data'):
            self.data = first_line + f.read()
        self.cut = []
        self.lines = decode_lines(self.data, len(first_line), self.cut)
