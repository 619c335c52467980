"""Call stacks to function, file:line and inlined frames (LOG-FORMAT.md, Call stacks).

A log lists its modules (`#M base lo hi build-id path`) and its stacks as run-time
addresses. Each address is mapped to the module that covered it when the stack was written,
and each module's addresses are symbolized in one batch by binutils' addr2line
(`addr2line -a -f -i -C -e MODULE`, addresses on stdin): function names come from the
debug info, or from the symbol tables of a module without it. Results are cached per module
(path and build id) for the whole run of the reader.

Before symbolizing a module, its file's build id (ELF note NT_GNU_BUILD_ID) is compared with
the log's: a file that changed since the run, or is gone, is not used, and a warning says so.
"""

import bisect
import os
import shutil
import struct
import subprocess

ADDR2LINE = 'addr2line'
NM = 'nm'
NT_GNU_BUILD_ID = 3
PT_NOTE = 4


def file_build_id(path):
    """The GNU build id of an ELF file as lowercase hex, None if it has none, or raises
    OSError / ValueError for a file that cannot be read as ELF."""
    with open(path, 'rb') as f:
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b'\x7fELF':
            raise ValueError('not an ELF file')
        is64 = ident[4] == 2
        end = '<' if ident[5] == 1 else '>'
        if is64:
            phoff, = struct.unpack_from(end + 'Q', ident, 32)
            phentsize, phnum = struct.unpack_from(end + 'HH', ident, 54)
        else:
            phoff, = struct.unpack_from(end + 'I', ident, 28)
            phentsize, phnum = struct.unpack_from(end + 'HH', ident, 42)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        for i in range(phnum):
            ph = table[i * phentsize:(i + 1) * phentsize]
            if len(ph) < phentsize:
                break
            if is64:
                p_type, _, p_offset, _, _, p_filesz, _, p_align = struct.unpack_from(
                    end + 'IIQQQQQQ', ph)
            else:
                p_type, p_offset, _, _, p_filesz, _, _, p_align = struct.unpack_from(
                    end + 'IIIIIIII', ph)
            if p_type != PT_NOTE:
                continue
            f.seek(p_offset)
            found = _build_id_in_notes(f.read(p_filesz), end, 8 if p_align == 8 else 4)
            if found is not None:
                return found
    return None


def _build_id_in_notes(data, end, align):
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(end + 'III', data, pos)
        name_at = pos + 12
        desc_at = name_at + (namesz + align - 1) // align * align
        nxt = desc_at + (descsz + align - 1) // align * align
        if nxt > len(data) + align:
            break
        if ntype == NT_GNU_BUILD_ID and data[name_at:name_at + namesz].rstrip(b'\0') == b'GNU':
            return data[desc_at:desc_at + descsz].hex()
        pos = nxt
    return None


_found = {}


def _tool(name=ADDR2LINE):
    """A binutils tool's path (None when it is missing), looked up once."""
    if name not in _found:
        _found[name] = shutil.which(name)
    return _found[name]


def function_symbols(path):
    """The module's functions from its symbol table (.symtab, else .dynsym), sorted:
    ([start], [(start, size, name)]). Without debug info, addr2line names an address after
    the nearest symbol before it, however far: in a stripped program that is often an
    exported function next to the static one that really holds the address. The sizes tell."""
    tool = _tool(NM)
    rows = []
    for extra in ([], ['-D']):
        if tool is None:
            break
        try:
            out = subprocess.run([tool, '--defined-only', '-S', '-C'] + extra + [path],
                                 capture_output=True, text=True, errors='replace',
                                 check=False).stdout
        except OSError:
            break
        for ln in out.split('\n'):
            p = ln.split(None, 3)
            if len(p) == 4 and p[2] in 'TtWwi':
                try:
                    rows.append((int(p[0], 16), int(p[1], 16), p[3]))
                except ValueError:
                    pass
        if rows:
            break
    rows.sort()
    return [r[0] for r in rows], rows


class Frame:
    """One frame of a symbolized stack. Inlined frames of one address come first, the
    function that holds them last (as addr2line -i prints them)."""
    __slots__ = ('function', 'file', 'line', 'module', 'address', 'inlined', 'offset')

    def __init__(self, function, file, line, module, address, inlined=False, offset=None):
        self.function, self.file, self.line = function, file, line
        self.module, self.address, self.inlined = module, address, inlined
        self.offset = offset   # address - the module's base: the same in every run (no ASLR)

    def location(self):
        if self.file:
            return '%s:%d' % (self.file, self.line) if self.line else self.file
        return os.path.basename(self.module) if self.module else '?'

    def label(self):
        """'function at file:line', 'function in module', or 'module+0xoffset' for a frame
        without a name (the offset into the module is the same in every run; ASLR moves
        the address)."""
        if not self.function and self.module and self.offset is not None:
            return '%s+0x%x' % (os.path.basename(self.module), self.offset)
        fn = self.function or '0x%x' % self.address
        if self.file:
            return '%s at %s' % (fn, self.location())
        return '%s in %s' % (fn, self.location())

    def as_json(self):
        return {'function': self.function, 'file': self.file, 'line': self.line,
                'module': self.module, 'address': '0x%x' % self.address,
                'offset': None if self.offset is None else '0x%x' % self.offset,
                'inlined': self.inlined}


class Symbolizer:
    """Symbolizes the stacks of scans; one per reader run, so modules shared by several logs
    (libc, the same program's processes) are read once."""

    def __init__(self):
        self.cache = {}        # (path, build id) -> {file address: [Frame-like tuples]}
        self.status = {}       # (path, build id) -> None (usable) or the reason it is not
        self.warnings = []
        self.tool = _tool()

    def _usable(self, path, build_id):
        key = (path, build_id)
        if key in self.status:
            return self.status[key]
        why = None
        if not path or not os.path.isabs(path):
            why = 'not a file'               # the vDSO, or a module without a path
        elif not os.path.exists(path):
            why = 'missing'
        else:
            try:
                found = file_build_id(path)
                if build_id and found != build_id:
                    why = 'build id differs (file %s, log %s): rebuilt since the run?' % (
                        found or 'none', build_id)
            except (OSError, ValueError) as err:
                why = 'unreadable: %s' % err
        if why is None and self.tool is None:
            why = 'addr2line (binutils) is not installed'
        if why is not None and why != 'not a file':
            self.warnings.append('%s: %s; its frames are shown as addresses' % (path, why))
        self.status[key] = why
        return why

    def _run(self, path, build_id, addrs):
        """Symbolizes file addresses of one module (batch); fills the cache."""
        known = self.cache.setdefault((path, build_id), {})
        todo = sorted(a for a in addrs if a not in known)
        if not todo:
            return known
        text = ''.join('%x\n' % a for a in todo)
        try:
            out = subprocess.run([self.tool, '-a', '-f', '-i', '-C', '-e', path], input=text,
                                 capture_output=True, text=True, errors='replace',
                                 check=False).stdout
        except OSError as err:
            self.warnings.append('%s: addr2line failed: %s' % (path, err))
            out = ''
        _parse_addr2line(out, todo, known)
        for a in todo:
            known.setdefault(a, [])
        # Frames without a line (no debug info there): keep a name only if a symbol's extent
        # holds the address.
        bare = [a for a in todo if len(known[a]) == 1 and known[a][0][1] is None]
        if bare:
            starts, rows = function_symbols(path)
            for a in bare:
                i = bisect.bisect_right(starts, a) - 1
                inside = i >= 0 and a < rows[i][0] + max(rows[i][1], 1)
                known[a] = [(rows[i][2], None, 0)] if inside else []
        return known

    def symbolize(self, scan):
        """{stack id: [Frame]} for every stack of a scan."""
        modules = scan.modules
        # Each frame: which module covered it when its stack was written (latest first), else
        # any module of the log (a module line written after the stack).
        where = {}
        wanted = {}
        for sid, frames in scan.stacks.items():
            upto = scan.stack_modules.get(sid, len(modules))
            for pc in frames:
                if (pc, upto) in where:
                    continue
                m = _module_of(modules, pc, upto)
                where[(pc, upto)] = m
                if m is not None:
                    base, _, _, build_id, path = modules[m]
                    # A return address: the call is the byte before it.
                    wanted.setdefault((path, build_id), set()).add(pc - 1 - base)
        tables = {}
        for (path, build_id), addrs in wanted.items():
            if self._usable(path, build_id) is None:
                tables[(path, build_id)] = self._run(path, build_id, addrs)
        out = {}
        for sid, frames in scan.stacks.items():
            upto = scan.stack_modules.get(sid, len(modules))
            rows = []
            for pc in frames:
                m = where[(pc, upto)]
                if m is None:
                    rows.append(Frame(None, None, 0, None, pc))
                    continue
                base, _, _, build_id, path = modules[m]
                found = tables.get((path, build_id), {}).get(pc - 1 - base)
                if not found:
                    rows.append(Frame(None, None, 0, path, pc, offset=pc - base))
                    continue
                last = len(found) - 1
                for k, (fn, file, line) in enumerate(found):
                    rows.append(Frame(fn, file, line, path, pc, inlined=k < last,
                                      offset=pc - base))
            out[sid] = rows
        return out


def _module_of(modules, pc, upto):
    for i in range(min(upto, len(modules)) - 1, -1, -1):
        if modules[i][1] <= pc < modules[i][2]:
            return i
    for i in range(len(modules) - 1, upto - 1, -1):
        if modules[i][1] <= pc < modules[i][2]:
            return i
    return None


def _parse_addr2line(out, todo, known):
    """addr2line -a -f -i output: per address a line '0x...' then (function, file:line)
    pairs, the innermost inlined function first. '??' and '??:0' mean unknown."""
    lines = out.split('\n')
    expect = {('0x%016x' % a): a for a in todo}
    cur = None
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln in expect:
            cur = known.setdefault(expect[ln], [])
            i += 1
            continue
        if cur is None or i + 1 >= len(lines):
            i += 1
            continue
        fn, loc = ln, lines[i + 1]
        i += 2
        file, line = None, 0
        if loc and not loc.startswith('??'):
            path, _, rest = loc.rpartition(':')
            num = rest.split(' ', 1)[0]
            if path and num.isdigit():
                file, line = os.path.normpath(path), int(num)
            elif path:
                file = path
        cur.append((None if fn == '??' else fn, file, line))
    # An address whose only frame is all unknown has no symbol at all.
    for a in todo:
        frames = known.get(a)
        if frames and all(f[0] is None and f[1] is None for f in frames):
            known[a] = []
