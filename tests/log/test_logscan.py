#!/usr/bin/env python3
"""The compiled scanner (chainalloc-logscan) against the Python pass: every field of the Scan
must be the same, types included (3 and 3.0 differ), with and without the timeline, for
handmade logs of every edge the format has, random ones, a large one (tombstones forgotten,
timeline halved), gzip and stdin, and the logs of real programs under the proxy.

  test_logscan.py --scanner PATH [--so LIB --threads P --sampled P --fork P --exec P]

The logs that the other log tests make are compared too: meson runs them again with
CHAINALLOC_LOG_SCANNER=check (the `_check` tests)."""

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, '..', '..', 'scripts')
sys.path.insert(0, SCRIPTS)

from chainalloc_log import logscan, parse   # noqa: E402

ARGS = None
HEADER = ('# chainalloc-log 1 pid=4242 ppid=1 program=prog page=4096 '
          'start_unix_ns=1764060000000000000 sample=%s%s events=all stacks=24 '
          'layers=proxy,freelist,system chain=proxy(log=x.log) > freelist > system\n')


def header(sample=1, sampling=None):
    return HEADER % (sample, ' sampling=%s' % sampling if sampling else '')


# Every odd line the format allows or a broken writer leaves, one per line.
EDGES = b'''\
100 4242 m 100 10040 1 1
110 4242 c 200 10080 2 2
120 4300 a 64 1000 100c0 2 1
121 4300 a 8 1000 100d0 2
130 4242 m 5 0 -
131 4242 m 5 0
140 4242 r 10080 5000 10100 1 2
150 4242 f 10040
160 4242 f 10040
170 4300 f dead0
180 4242 r 10100 1125899906842624 0 -
190 4300 r 0 48 10140 1 3
200 4300 r 10140 0 0 -
201 4300 r 0 0 0 -
202 4300 r 0 0 10150 1
203 4300 r 10150 64 10150 1
204 4300 r - 64 10160 1
205 4300 r 10160 64 - 1
206 4300 r - 0 0 -
207 4300 r 10170 10 0 -
208 4300 r 10040 10 10180 1
209 4300 r 00 0 0
210 4300 f 100c0
211 4242 f 0
212 4242 f -
213 4242 m 7 - 1
214 4242 f -
215 4242 m 7 ABC 1
216 4242 m 7 0abc 1
217 4242 f abc
218 4242 f ABC
219 4242 m 9 10200 1
220 4242 m 9 10200 1
221 +4242 m 3 10210 1
222 04242 m 3 10220 1 07
223 4242 m 1_0 10230 1 x
224 4242 m -5 10240 1
225 4242 m 100000000000000000000000 0 -
226 4242 m 10 10250 01
227 4242 m 10 10260 3
228 4242 m 10 10270
229 4242 q 1 2 3
230 x m 1 2 0
231 4242 m x 10280 1
232 4242 f
233 4242
garbage
   
\t
  234 4242 m 11 10290 1
235\t4242\tm\t12\t102a0\t1\r
abc 4242 m 13 102b0 1
007 4242 m 14 102c0 1
99999999999999999999999 4242 m 15 102d0 1
236 4243 m 16 102e0 1
237 4243 f 102e0
238 4243 m 1 102f0 1
239 4243 m 1 10300 1
240 4243 m 1 10310 1
241 4243 m 1 10320 1
242 4243 m 1 10330 1
243 4243 m 1 10340 1
244 4243 m 1 10350 1
245 4243 f 102f0
246 4243 f 10300
247 4242 f 10310
# a comment
#S 1 401000 401100
#S 2 0x1f _2
#S x 1
#S 3
#S 01 1f
#S 1 402000
#S 4 1F +a 0x_2
#S
#M 0 400000 500000 abcdef /usr/bin/prog
#M 7f00 7f000 7f100 - /lib/libc%20x.so.6
#M 1 2 3 \xff /bad
#M 1 2 3 - trailing  
#M g 2 3 - /bad
#M 1 2 3 -
248 4242 m 17 10360 1 4
# end t_ns=5 events=3 malloc=1
249 4242 f 10360
# end
250 4242 \xff\xfe
# endx
# end t_ns=x events=y
251 4244 m 18 10370 1
'''


def random_log(seed, lines=3000, sample=1, sampling=None):
    """Random events on a few threads, a share of them broken in one of the ways above."""
    rng = random.Random(seed)
    out = [header(sample, sampling).encode()]
    live, freed = [], []
    t = 0
    for _ in range(lines):
        t += rng.randrange(0, 50)
        tid = rng.choice((4242, 4243, 4244, 4245))
        r = rng.random()
        size = rng.choice((0, 1, 16, 24, 100, 4096, 70000, rng.randrange(1, 1 << 20)))
        sid = ' %d' % rng.randrange(1, 6) if rng.random() < 0.7 else ''
        if r < 0.35 or not live:
            p = rng.randrange(1, 1 << 12) * 16
            live.append(p)
            op = rng.choice(('m', 'c', 'a'))
            extra = '%d ' % rng.choice((8, 16, 64, 4096)) if op == 'a' else ''
            line = '%d %d %s %s%d %x %d%s' % (t, tid, op, extra, size, p, rng.randrange(3), sid)
        elif r < 0.65:
            p = live.pop(rng.randrange(len(live)))
            freed.append(p)
            line = '%d %d f %x' % (t, tid, p)
        elif r < 0.8:
            old = live.pop(rng.randrange(len(live)))
            new = rng.randrange(1, 1 << 12) * 16
            new_t = rng.choice(('%x' % new, '-', '0'))
            old_t = rng.choice(('%x' % old, '-', '0', '%x' % old))
            if new_t not in ('-', '0'):
                live.append(new)
            size = rng.choice((size, 0))
            line = '%d %d r %s %d %s %s%s' % (t, tid, old_t, size, new_t,
                                              rng.choice(('1', '-')), sid)
        elif r < 0.9 and freed:
            line = '%d %d f %x' % (t, tid, rng.choice(freed))      # double free
        elif r < 0.95:
            line = '%d %d m %d 0 -' % (t, tid, size)                # failed
        else:
            line = rng.choice(('#S %d %x %x' % (rng.randrange(1, 6), t, t + 1), '# note', '',
                               '%d %d m zz 10 1' % (t, tid), 'junk', '%d %d f' % (t, tid)))
        out.append(line.encode() + b'\n')
    out.append(b'# end t_ns=%d events=%d\n' % (t, lines))
    return b''.join(out)


def big_log():
    """Over 4 MiB of lines: 300000 blocks each freed at once leave more tombstones than
    2 x live + 262144, so the scan forgets them at a 4 MiB boundary; frees of the first
    blocks again are double frees before and unknown frees after. With the timeline, the
    points are halved several times."""
    out = [header().encode()]
    t = 0
    for i in range(300000):
        t += 3
        out.append(b'%d 4242 m 32 %x 1\n%d 4242 f %x\n' % (t, 0x100000 + 16 * i, t + 1,
                                                         0x100000 + 16 * i))
        if i % 50000 == 0:
            for k in range(20):
                out.append(b'%d 4243 f %x\n' % (t, 0x100000 + 16 * k))
    out.append(b'%d 4242 m 64 10 1\n' % (t + 9))
    return b''.join(out)


class Differential(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, data):
        path = os.path.join(self.dir.name, name)
        with open(path, 'wb') as f:
            f.write(data)
        return path

    def same(self, path):
        for timeline in (False, True):
            fast = logscan.scan_compiled(ARGS.scanner, path, timeline)
            slow = parse.scan_log_python(path, timeline)
            diff = logscan.differences(fast, slow)
            self.assertEqual(diff, [], '%s (timeline=%s):\n%s' % (path, timeline, '\n'.join(diff)))
        return fast

    def test_edges(self):
        s = self.same(self.write('edges.log', header().encode() + EDGES))
        self.assertGreater(s.malformed, 5)
        self.assertGreater(s.after_footer, 0)
        self.assertTrue(s.stacks and s.modules and s.anomalies)

    def test_edges_sampled(self):
        self.same(self.write('edges-bytes.log', header(4096, 'bytes').encode() + EDGES))
        self.same(self.write('edges-hash.log', header(8).encode() + EDGES))

    def test_random(self):
        for seed in range(6):
            self.same(self.write('r%d.log' % seed, random_log(seed)))
            self.same(self.write('b%d.log' % seed, random_log(seed, sample=4096, sampling='bytes')))

    def test_cut_and_nul_tail(self):
        data = random_log(7)
        for cut in (len(data) - 5, len(data) // 2, len(data) // 3 + 1):
            self.same(self.write('cut.log', data[:cut]))
            s = self.same(self.write('nul.log', data[:cut] + b'\0' * 5000))
        self.same(self.write('nul-only.log', header().encode() + b'\0' * 100))
        self.same(self.write('blank-tail.log', header().encode() + b'1 2 m 3 10 1\n  \t'))
        self.assertFalse(s.footer)

    def test_beyond_64_bits(self):
        """Sizes and sums past int64, which Python adds up exactly: the program says so (exit
        3) and the Python pass reads the log, so the Scans still agree."""
        lines = (b'1 1 m 99999999999999999999999999 10 1\n2 1 m 9223372036854775807 20 1\n'
                 b'3 1 m 9223372036854775807 30 1\n4 1 f 20\n5 1 m 100000000000000000000 0 -\n')
        for head in (header(), header(4096, 'bytes')):
            path = self.write('huge.log', head.encode() + lines)
            s = self.same(path)
            self.assertGreater(s.peak, 1 << 64)
            p = subprocess.run([ARGS.scanner, '--layers', '3', path], capture_output=True)
            self.assertEqual(p.returncode, 3, p.stderr)
        # Failed requests of absurd sizes (known_program's) need no fallback.
        path = self.write('failed-huge.log', header().encode() + lines[-32:])
        self.assertEqual(subprocess.run([ARGS.scanner, '--layers', '3', path]).returncode, 0)

    def test_summary_only(self):
        s = self.same(self.write('summary.log', header().replace('events=all', 'events=summary')
                                 .encode() + b'# end t_ns=9 events=0 malloc=3 free=1\n'))
        self.assertEqual(s.events, 0)

    def test_big(self):
        s = self.same(self.write('big.log', big_log()))
        self.assertTrue(s.tombstones_dropped)
        self.assertGreater(s.double_frees, 0)
        self.assertGreater(s.unknown_frees, 0)

    def test_gzip(self):
        data = random_log(11, 20000)
        path = self.write('r.log.gz', gzip.compress(data))
        self.same(path)
        bad = self.write('bad.log.gz', gzip.compress(data)[:-100])
        for scan in (lambda: logscan.scan_compiled(ARGS.scanner, bad, False),
                     lambda: parse.scan_log_python(bad, False)):
            with self.assertRaises(parse.LogError):
                scan()

    def test_stdin(self):
        """'-' through the command line, both ways: the same JSON (timings aside)."""
        path = self.write('stdin.log', random_log(12))
        reader = os.path.join(SCRIPTS, 'chainalloc_log.py')
        outs = []
        for scanner in (ARGS.scanner, 'python'):
            with open(path, 'rb') as f:
                p = subprocess.run([sys.executable, reader, 'plot', '-', '--json'], stdin=f,
                                   capture_output=True,
                                   env=dict(os.environ, CHAINALLOC_LOG_SCANNER=scanner))
            self.assertEqual(p.returncode, 0, p.stderr)
            d = json.loads(p.stdout)
            for f in d['files']:
                del f['read_seconds'], f['events_per_second']
            outs.append(d)
        self.assertEqual(outs[0], outs[1])

    def run_logged(self, program, args, opts='', compact=False):
        """The program's logs, in text lines (version 1): a proxy that writes compact records
        by default is asked for format=text; one from before that key refuses it (and logs
        nothing), and writes text anyway. With `compact`, in compact records (version 2)."""
        name = os.path.basename(program)
        for fmt in ((',format=compact',) if compact else (',format=text', '')):
            prefix = os.path.join(self.dir.name, name + fmt.replace(',format=', '.'))
            env = dict(os.environ, LD_PRELOAD=ARGS.so,
                       CHAINALLOC_CHAIN='proxy(log=%s.%%p.log%s%s) > freelist > system'
                       % (prefix, ',' + opts if opts else '', fmt))
            env.pop('CHAINALLOC_PRESET', None)
            env.pop('CHAINALLOC_STRICT', None)
            subprocess.run([program] + args, env=env, check=True, capture_output=True)
            base = os.path.basename(prefix) + '.'
            logs = sorted(os.path.join(self.dir.name, n) for n in os.listdir(self.dir.name)
                          if n.startswith(base) and n[len(base):].split('.')[0].isdigit())
            if logs:
                break
        self.assertTrue(logs)
        for path in logs:
            with open(path, 'rb') as f:
                self.assertTrue(f.readline().startswith(b'# chainalloc-log %d ' % (2 if compact else 1)), path)
        return logs

    def test_programs(self):
        if not ARGS.so:
            self.skipTest('no --so: real programs not run')
        logs = self.run_logged(ARGS.threads, ['2000'])
        logs += self.run_logged(ARGS.sampled, [], 'sample=4096')
        logs += self.run_logged(ARGS.fork, [])
        logs += self.run_logged(ARGS.exec, ['/bin/true'])
        for path in logs:
            self.same(path)
        with open(logs[0], 'rb') as f:
            gz = self.write('threads.log.gz', gzip.compress(f.read()))
        self.same(gz)


class CompactDifferential(unittest.TestCase):
    """Compact logs (version 2): the scanner's decoder (reader/compact_source.cpp) against the
    Python one (compact.py) feeding the Python pass, on whole, cut and damaged logs."""
    setUp, tearDown = Differential.setUp, Differential.tearDown
    write, same, run_logged = Differential.write, Differential.same, Differential.run_logged

    def programs(self):
        if not ARGS.so:
            self.skipTest('no --so: real programs not run')
        logs = self.run_logged(ARGS.threads, ['2000'], compact=True)
        logs += self.run_logged(ARGS.sampled, [], 'sample=4096', compact=True)
        logs += self.run_logged(ARGS.fork, [], compact=True)
        logs += self.run_logged(ARGS.exec, ['/bin/true'], compact=True)
        return logs

    def test_programs_compact(self):
        logs = self.programs()
        for path in logs:
            self.same(path)
        with open(logs[0], 'rb') as f:
            data = f.read()
        self.same(self.write('threads.log.gz', gzip.compress(data)))
        # From a pipe: the scanner gets the bytes after the header.
        p = subprocess.run([sys.executable, os.path.join(SCRIPTS, 'chainalloc_log.py'), 'summary', '--json', '-'],
                           input=data, capture_output=True,
                           env=dict(os.environ, CHAINALLOC_LOG_SCANNER='check:' + ARGS.scanner))
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_cut_and_damaged_compact(self):
        """Cut anywhere, bytes flipped anywhere: both decoders agree on what is left (damage
        ends a chunk's records the same way in both)."""
        path = self.programs()[0]
        with open(path, 'rb') as f:
            data = f.read()
        rnd = random.Random(7)
        for k in range(12):
            at = rnd.randrange(len(data.split(b'\n', 1)[0]) + 1, len(data))
            self.same(self.write('cut%d.log' % k, data[:at]))
        body = (data.index(b'\n') + 1 + 4096) & ~4095
        for k in range(24):
            damaged = bytearray(data)
            for _ in range(1 + k % 4):
                damaged[rnd.randrange(body, len(data))] ^= 1 << rnd.randrange(8)
            self.same(self.write('flip%d.log' % k, bytes(damaged)))


class PackedLogs(unittest.TestCase):
    """`chainalloc log pack` (format version 3): a pack reads as its source in every report,
    except times (to the millisecond) and addresses; both decoders of a pack agree, on whole,
    cut and damaged packs."""
    maxDiff = None
    setUp, tearDown = Differential.setUp, Differential.tearDown
    write, same, run_logged = Differential.write, Differential.same, Differential.run_logged

    def reports(self, path):
        """summary, leaks and sites as JSON, without what a pack changes on purpose: times and
        what is figured from them, addresses, the file read."""
        out = []
        for verb in ('summary', 'leaks', 'sites'):
            p = subprocess.run([sys.executable, os.path.join(SCRIPTS, 'chainalloc_log.py'), verb,
                                '--json', path], capture_output=True,
                               env=dict(os.environ, CHAINALLOC_LOG_SCANNER=ARGS.scanner))
            self.assertIn(p.returncode, (0, 1), p.stderr)
            out.append(self.strip(json.loads(p.stdout)))
        return out

    def strip(self, v):
        if isinstance(v, dict):
            return {k: self.strip(x) for k, x in v.items()
                    if not k.endswith('_ns') and k not in (
                        'file', 'files_read', 'version', 'read_seconds', 'events_per_second', 'calls_per_second', 'ptr')}
        if isinstance(v, list):
            return [self.strip(x) for x in v]
        return v

    def pack(self, path):
        dest = path + '.zst'
        logscan.pack(ARGS.scanner, path, dest, 6)
        return dest

    def test_pack_keeps_reports(self):
        if not ARGS.so:
            self.skipTest('no --so: real programs not run')
        logs = self.run_logged(ARGS.threads, ['3000'], compact=True)
        logs += self.run_logged(ARGS.sampled, [], 'sample=4096', compact=True)
        logs += self.run_logged(ARGS.fork, [])
        logs += self.run_logged(ARGS.exec, ['/bin/true'], compact=True)
        for path in logs:
            packed = self.pack(path)
            self.assertEqual(self.reports(path), self.reports(packed), path)
            # Sampled and short logs repeat little: a pack is smaller, not always much.
            share = 0.2 if path == logs[0] else 1
            self.assertLess(os.path.getsize(packed), os.path.getsize(path) * share, path)
            with open(path, 'rb') as f:
                gz = self.write(os.path.basename(path) + '.gz', gzip.compress(f.read()))
            self.assertEqual(self.reports(self.pack(gz)), self.reports(path), gz)
            self.same(packed)
        # What the equal reports were about: threads, and temporaries (exact once packed).
        self.assertGreater(len(parse.scan_log_python(logs[0]).threads), 2)
        self.assertGreater(sum(parse.scan_log_python(p).temp_blocks for p in logs), 0)

    def test_cut_source(self):
        """A source cut short packs as it reads: the same events, and incomplete."""
        if not ARGS.so:
            self.skipTest('no --so: real programs not run')
        path = self.run_logged(ARGS.threads, ['3000'], compact=True)[0]
        with open(path, 'rb') as f:
            data = f.read()
        cut = self.write('cut.log', data[:len(data) * 2 // 3 + 100])
        a, b = parse.scan_log_python(cut), parse.scan_log_python(self.pack(cut))
        self.assertTrue(a.cut_line and b.cut_line)
        self.assertEqual(a.cut_text, b.cut_text)
        self.assertEqual((a.events, a.peak, a.temp_blocks), (b.events, b.peak, b.temp_blocks))

    def test_damaged_pack(self):
        """A pack's body cut or flipped anywhere: both decoders agree on what is left, and say
        the log is incomplete when it ends inside a record; a cut zstd stream is an error."""
        if not ARGS.so:
            self.skipTest('no --so: real programs not run')
        packed = self.pack(self.run_logged(ARGS.threads, ['1000'], compact=True)[0])
        data = subprocess.run(['zstd', '-dcq', packed], capture_output=True, check=True).stdout
        head = data.index(b'\n') + 1
        rnd = random.Random(11)
        for k in range(40):
            if k < 10:
                self.same(self.write('cut%d.log' % k, data[:rnd.randrange(head, len(data))]))
            damaged = bytearray(data)
            for _ in range(1 + k % 3):
                damaged[rnd.randrange(head, len(data))] ^= 1 << rnd.randrange(8)
            self.same(self.write('flip%d.log' % k, bytes(damaged)))
        s = self.same(self.write('mid.log', data[:-1]))
        self.assertTrue(s.cut_line)
        # A length beyond the stream (2^50 bytes of text): read as far as there is, no further.
        s = self.same(self.write('long.log', data[:head] + b'\x01\x80\x80\x80\x80\x80\x80\x80\x02abc'))
        self.assertTrue(s.cut_line)
        with open(packed, 'rb') as f:
            short = self.write('short.zst', f.read()[:-20])
        with self.assertRaisesRegex(parse.LogError, 'bad zstd data'):
            parse.scan_log_python(short)

    def test_blocks_of_one_kind_across_threads(self):
        """Blocks of one kind (size and stack) made and freed by different threads, in the
        orders where freeing "the oldest of the kind" instead of the real block would move a
        temporary from one block to another: the pack keeps the temporaries exact."""
        lines = [
            # Thread 2 makes q, thread 3 makes p; thread 1 frees p: the decoder must not free
            # q instead, since thread 2 then frees q at once (a temporary).
            '1 2 m 48 a000 1', '2 3 m 48 b000 1', '3 1 f b000', '4 2 f a000',
            # Thread 3 makes r, thread 2 makes s; thread 1 frees s at once; thread 3 frees r
            # at once after: r is a temporary, s is not (another thread freed it).
            '5 3 m 48 c000 1', '6 2 m 48 d000 1', '7 1 f d000', '8 3 f c000']
        # Ten more events in each thread between a making and a freeing: no temporary.
        for k in range(3):
            lines.append('%d 4 m 48 %x 1' % (10 + k, 0xe000 + k * 16))
        lines += ['%d 4 m 16 %x 1' % (20 + k, 0xf000 + k * 16) for k in range(10)]
        lines += ['40 4 f e010', '41 4 f e000', '42 4 f e020']
        path = self.write('kinds.log', (header() + '\n'.join(lines) + '\n').encode())
        a, b = parse.scan_log_python(path), parse.scan_log_python(self.pack(path))
        self.assertEqual(a.temp_blocks, 2)   # q and r; nothing of thread 4
        self.assertEqual((a.temp_blocks, a.temp_bytes, a.events, a.peak),
                         (b.temp_blocks, b.temp_bytes, b.events, b.peak))
        self.same(path + '.zst')

    def test_refusals(self):
        path = self.write('a.log', header().encode() + b'1 1 m 10 a0 0\n')
        packed = self.pack(path)
        with self.assertRaisesRegex(parse.LogError, 'already packed'):
            logscan.pack(ARGS.scanner, packed, packed + '.zst', 6)
        self.assertFalse(os.path.exists(packed + '.zst'))
        with self.assertRaises(parse.LogError):   # never over an existing file
            logscan.pack(ARGS.scanner, path, packed, 6)
        self.assertTrue(os.path.getsize(packed) > 0)
        cli = [sys.executable, os.path.join(SCRIPTS, 'chainalloc_log.py'), 'pack']
        env = dict(os.environ, CHAINALLOC_LOG_SCANNER=ARGS.scanner)
        p = subprocess.run(cli + ['-o', os.path.join(self.dir.name, 'b.zst'), path], capture_output=True, env=env, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('b.zst', p.stdout)
        p = subprocess.run(cli + [packed], capture_output=True, env=env, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn('already packed', p.stderr)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument('--scanner', required=True)
    for name in ('so', 'threads', 'sampled', 'fork', 'exec'):
        ap.add_argument('--' + name)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == '__main__':
    main()
