#!/usr/bin/env python3
"""End-to-end tests of the allocation log: programs with known allocation behaviour run
under libchainalloc.so's proxy layer; the log it writes and what scripts/chainalloc_log.py
reports from it must match the programs' known truth.

    python3 tests/log/test_end_to_end.py --so build/preload/libchainalloc.so \\
        --known K --threads T --fork F --exec E --loop L [unittest options]

Each program path may also come from the environment (CHAINALLOC_SO, or CHAINALLOC_LOG_BIN:
the directory that holds known_program, threads_program, ...). CHAINALLOC_BIG_LOG=1 adds
the 10-million-event speed test. Standard library only."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True   # keep tests/ and scripts/ free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from reader_cli import READER, run as reader, run_json as reader_json_all  # noqa: E402
from reader_cli import run_json_one as reader_json  # noqa: E402
from logtext import is_compact, log_text  # noqa: E402

PROGRAMS = ('known', 'threads', 'fork', 'exec', 'loop', 'sampled', 'handoff')
PATHS = {}      # 'so' and the program names -> absolute paths (filled by main())

OPS = ('malloc', 'calloc', 'realloc', 'aligned', 'free', 'failed')

# known_program's calls, counted from its source (see the comments there). realloc(NULL, n)
# is one realloc call (served as malloc, logged `r 0 n new`); realloc(p, 0) is a free: that
# is how the preload serves them (libc_api.hpp).
KNOWN_LEAK = {'malloc': 61, 'calloc': 20, 'realloc': 7, 'aligned': 4, 'free': 80, 'failed': 2}
KNOWN_CLEAN = dict(KNOWN_LEAK, free=85)
KNOWN_LEAKS = [{'size': 5000, 'count': 2, 'bytes': 10000},
               {'size': 1000, 'count': 3, 'bytes': 3000}]
KNOWN_LEAKED_BYTES = 13000
KNOWN_PEAK_BLOCK = 1 << 20
HUGE = 1 << 62          # known_program's failing malloc and realloc

THREADS = 4
THREAD_K = 2000         # threads_program's allocations per thread (even)
HANDOFFS = 100000       # handoff_program's blocks

# fork_program's calls (see its source).
FORK_PARENT = {'malloc': 15, 'free': 15}
FORK_CHILD = {'malloc': 7, 'free': 8}

EXEC_CALLS = {'malloc': 5, 'free': 2}

BIG_PAIRS = 5_000_000   # loop_program pairs in the speed test: 10 million events


def chain(log_opts):
    return 'proxy(%s) > freelist > system' % log_opts


def run_program(argv, env_extra, check=True, **kw):
    env = dict(os.environ)
    env.pop('CHAINALLOC_LOG', None)
    env.pop('CHAINALLOC_CHAIN', None)
    env.pop('CHAINALLOC_PRESET', None)
    env.update(env_extra)
    p = subprocess.run(argv, env=env, capture_output=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError('%s exited %d\n%s' % (argv, p.returncode, p.stderr))
    return p




def read_lines(path):
    """The log's lines as text (a compact log's records decoded), without the NUL tail of a
    log that never reached exit."""
    return log_text(path).decode().split('\n')


def header_of(path):
    with open(path, 'rb') as f:
        first = f.readline().decode()
    if not first.startswith(('# chainalloc-log 1 ', '# chainalloc-log 2 ')):
        raise AssertionError('%s: first line is not a header: %r' % (path, first[:80]))
    before_chain = first.split(' chain=', 1)[0]
    return dict(tok.split('=', 1) for tok in before_chain.split()[3:] if '=' in tok)


# Fields of an event line before its stack id (LOG-FORMAT.md, Call stacks).
EVENT_FIELDS = {'m': 6, 'c': 6, 'a': 7, 'r': 7, 'f': 4}


def events_of(path):
    """Event lines split into fields (header, footer, stack, module and comment lines left
    out), without the trailing stack id of an allocation: events_and_stacks_of has those."""
    return [e for e, _ in events_and_stacks_of(path)]


def events_and_stacks_of(path):
    """(fields, stack id or None) per event line. Checks the line kinds as it goes: every
    stack id refers to a `#S` line written before it, and only allocations carry one."""
    out = []
    stacks = set()
    for line in read_lines(path):
        if line.startswith('#S '):
            stacks.add(line.split()[1])
        if not line or line.startswith('#'):
            continue
        e = line.split()
        n = EVENT_FIELDS[e[2]]
        if len(e) == n + 1 and e[2] != 'f':
            if e[n] not in stacks:
                raise AssertionError('stack id %s before its #S line: %s' % (e[n], line))
            out.append((e[:n], e[n]))
        elif len(e) == n:
            out.append((e, None))
        else:
            raise AssertionError('event line with %d fields: %s' % (len(e), line))
    return out


def footer_of(path):
    ends = [line for line in read_lines(path) if line.startswith('# end ')]
    if len(ends) != 1:
        return None
    return {k: int(v) for k, v in (tok.split('=', 1) for tok in ends[0].split()[2:])}


def plus(*dicts):
    out = {k: 0 for k in OPS}
    for d in dicts:
        for k, v in d.items():
            out[k] += v
    return out


def leak_rows(rows):
    return [{k: r[k] for k in ('size', 'count', 'bytes')} for r in rows]


class LogCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self._dir = tempfile.TemporaryDirectory(prefix='chainalloc-log-')
        self.dir = self._dir.name

    def tearDown(self):
        self._dir.cleanup()

    def logs(self, prefix):
        return sorted(os.path.join(self.dir, n) for n in os.listdir(self.dir)
                      if n.startswith(prefix + '.'))

    def run_logged(self, name, args, log_opts='', prefix='run', env=None, **kw):
        """Runs program `name` under the proxy logging to DIR/prefix.%p.log; returns
        (completed process, sorted list of the log files it made)."""
        opts = 'log=%s/%s.%%p.log' % (self.dir, prefix) + (',' + log_opts if log_opts else '')
        extra = {'LD_PRELOAD': PATHS['so'], 'CHAINALLOC_CHAIN': chain(opts)}
        extra.update(env or {})
        p = run_program([PATHS[name]] + [str(a) for a in args], extra, **kw)
        return p, self.logs(prefix)

    def one_log(self, name, args, log_opts='', prefix='run'):
        _, files = self.run_logged(name, args, log_opts, prefix)
        self.assertEqual(len(files), 1, files)
        return files[0]

    def assert_consistent(self, d, path):
        """A complete, unsampled log whose events, footer and reader figures agree."""
        self.assertTrue(d['complete'], d['incomplete_reasons'])
        self.assertTrue(d['has_footer'])
        self.assertFalse(d['estimated'])
        self.assertEqual(d['warnings'], [])
        self.assertEqual(d['malformed_lines'], 0)
        self.assertEqual(d['calls'], d['counted_calls'])
        self.assertEqual(d['unknown_frees'], 0, d['anomalies'])
        self.assertEqual(d['double_frees'], 0, d['anomalies'])
        self.assertEqual(d['unknown_reallocs'], 0, d['anomalies'])
        foot = footer_of(path)
        self.assertIsNotNone(foot, 'no single footer line')
        events = events_of(path)
        self.assertEqual(foot['events'], len(events))
        self.assertEqual(d['events'], len(events))
        c = d['calls']
        # One line per call, failures included.
        self.assertEqual(len(events), sum(c[k] for k in OPS if k != 'failed'))
        self.assertEqual(foot['live_blocks'], d['leaked_blocks'])


class Baselines:
    """What the runtime alone puts in a log (libstdc++'s pool, thread DTVs): each test's
    truth is the baseline plus the program's own calls, so the counts stay exact."""
    cache = {}

    @classmethod
    def get(cls, name, args):
        key = (name, tuple(args))
        if key not in cls.cache:
            with tempfile.TemporaryDirectory(prefix='chainalloc-base-') as d:
                opts = 'log=%s/base.%%p.log' % d
                run_program([PATHS[name]] + list(args),
                            {'LD_PRELOAD': PATHS['so'], 'CHAINALLOC_CHAIN': chain(opts)})
                files = os.listdir(d)
                if len(files) != 1:
                    raise AssertionError('baseline %s: %s' % (key, files))
                cls.cache[key] = reader_json('summary', os.path.join(d, files[0]))
        return cls.cache[key]


# --------------------------------------------------------------------------------------
# 1. A program with known behaviour


class KnownProgram(LogCase):
    def setUp(self):
        super().setUp()
        self.base = Baselines.get('known', ['none'])

    def test_baseline_is_runtime_only(self):
        b = self.base
        self.assertTrue(b['complete'])
        self.assertEqual(b['leaks'], [], 'the runtime alone must not show program leaks')
        self.assertLessEqual(b['events'], 16, 'the runtime allocates more than expected')
        self.assertEqual(b['calls']['failed'], 0)

    def test_calls_leaks_peak(self):
        path = self.one_log('known', ['leak'], prefix='known')
        d = reader_json('summary', path)
        self.assert_consistent(d, path)
        self.assertEqual(d['calls'], plus(self.base['calls'], KNOWN_LEAK))
        self.assertEqual(leak_rows(d['leaks']), KNOWN_LEAKS)
        self.assertEqual(d['program_leaked_bytes'], KNOWN_LEAKED_BYTES)
        self.assertEqual(d['program_leaked_blocks'], 5)
        self.assertEqual(leak_rows(d['runtime_leaks']), leak_rows(self.base['runtime_leaks']))
        self.assertEqual(d['leaked_blocks'], 5 + self.base['leaked_blocks'])
        self.assertEqual(d['leaked_bytes'], KNOWN_LEAKED_BYTES + self.base['leaked_bytes'])
        # Peak: the 1 MiB block over the leaked ones and what the runtime holds.
        low = KNOWN_PEAK_BLOCK + KNOWN_LEAKED_BYTES
        self.assertGreaterEqual(d['peak_bytes'], low)
        self.assertLessEqual(d['peak_bytes'], low + self.base['peak_bytes'])
        big = [e for e in events_of(path) if e[2] == 'm' and e[3] == str(KNOWN_PEAK_BLOCK)]
        self.assertEqual(len(big), 1)
        self.assertEqual(d['peak_t_ns'], int(big[0][0]))
        self.assertEqual(d['pid'], int(header_of(path)['pid']))
        self.assertEqual(d['program'], 'known_program')
        self.assertEqual(d['layers'], ['proxy', 'freelist', 'system'])

    def test_event_lines(self):
        """The lines themselves: aligned sizes, failures, the main thread's tid."""
        path = self.one_log('known', ['leak'], prefix='known')
        head = header_of(path)
        events = events_of(path)
        for e in events:
            self.assertEqual(e[1], head['pid'], 'single-threaded: tid = pid')
            self.assertRegex(e[0], r'^\d+$')
        aligned = sorted((int(e[3]), int(e[4])) for e in events if e[2] == 'a')
        self.assertEqual(aligned, [(64, 200), (64, 640), (4096, 1000), (4096, 8192)])
        for e in events:
            if e[2] == 'a':
                self.assertEqual(int(e[5], 16) % int(e[3]), 0, 'logged pointer misaligned')
        failed_m = [e for e in events if e[2] == 'm' and e[4] == '0']
        self.assertEqual(failed_m, [[failed_m[0][0], head['pid'], 'm', str(HUGE), '0', '-']])
        failed_r = [e for e in events if e[2] == 'r' and e[5] == '0']
        self.assertEqual(len(failed_r), 1)
        self.assertEqual(failed_r[0][4:], [str(HUGE), '0', '-'])
        # Each successful allocation names a layer of the chain; hex pointers are lowercase.
        for e in events:
            if e[2] in 'mca' and e[-2] != '0':
                self.assertIn(e[-1], ('1', '2'))
                self.assertRegex(e[-2], r'^[0-9a-f]+$')
        # posix_memalign/aligned_alloc with alignment 16 are plain mallocs of 48 and 32.
        sizes = [int(e[3]) for e in events if e[2] == 'm']
        self.assertIn(48, sizes)

    def test_file_name_and_footer_fields(self):
        opts = 'log=%s/%%e.%%p.log' % self.dir
        run_program([PATHS['known'], 'leak'],
                    {'LD_PRELOAD': PATHS['so'], 'CHAINALLOC_CHAIN': chain(opts)})
        files = os.listdir(self.dir)
        self.assertEqual(len(files), 1, files)
        path = os.path.join(self.dir, files[0])
        head = header_of(path)
        self.assertEqual(files[0], 'known_program.%s.log' % head['pid'])
        for key in ('pid', 'ppid', 'program', 'page', 'start_unix_ns', 'sample', 'layers'):
            self.assertIn(key, head)
        self.assertEqual(head['ppid'], str(os.getpid()))
        foot = footer_of(path)
        truth = plus(self.base['calls'], KNOWN_LEAK)
        for k in OPS:
            self.assertEqual(foot[k], truth[k], k)
        self.assertEqual(foot['live_blocks'], 5 + self.base['leaked_blocks'])

    def test_existing_name_gets_suffix(self):
        taken = os.path.join(self.dir, 'fixed.log')
        with open(taken, 'w') as f:
            f.write('not a log\n')
        opts = 'log=%s' % taken
        for _ in range(2):
            run_program([PATHS['known'], 'leak'],
                        {'LD_PRELOAD': PATHS['so'], 'CHAINALLOC_CHAIN': chain(opts)})
        with open(taken) as f:
            self.assertEqual(f.read(), 'not a log\n')
        self.assertEqual(sorted(os.listdir(self.dir)), ['fixed.log', 'fixed.log.1', 'fixed.log.2'])
        for n in ('fixed.log.1', 'fixed.log.2'):
            d = reader_json('summary', os.path.join(self.dir, n))
            self.assertEqual(d['calls'], plus(self.base['calls'], KNOWN_LEAK))

    def test_log_variable(self):
        """CHAINALLOC_LOG=PATH puts a proxy in front of the default chain."""
        env = {'LD_PRELOAD': PATHS['so'],
               'CHAINALLOC_LOG': os.path.join(self.dir, 'var.%p.log')}
        run_program([PATHS['known'], 'leak'], env)
        files = self.logs('var')
        self.assertEqual(len(files), 1)
        d = reader_json('summary', files[0])
        self.assertTrue(d['complete'])
        self.assertEqual(d['layers'][0], 'proxy')
        self.assertEqual(d['calls'], plus(self.base['calls'], KNOWN_LEAK))
        self.assertEqual(leak_rows(d['leaks']), KNOWN_LEAKS)

    def test_fail_on_leak(self):
        leaky = self.one_log('known', ['leak'], prefix='leak')
        clean = self.one_log('known', ['clean'], prefix='clean')
        reader('leaks', leaky, '--fail-on-leak', expect=1)
        reader('leaks', clean, '--fail-on-leak', expect=0)
        d = reader_json('leaks', leaky)
        self.assertEqual(leak_rows(d['leaks']), KNOWN_LEAKS)
        c = reader_json('summary', clean)
        self.assert_consistent(c, clean)
        self.assertEqual(c['calls'], plus(self.base['calls'], KNOWN_CLEAN))
        self.assertEqual(c['leaks'], [])
        self.assertEqual(c['program_leaked_bytes'], 0)


# --------------------------------------------------------------------------------------
# 2. Threads


class Threads(LogCase):
    def test_four_threads(self):
        base = Baselines.get('threads', ['0'])
        path = self.one_log('threads', [THREAD_K], prefix='threads')
        d = reader_json('summary', path)
        self.assert_consistent(d, path)
        k = THREADS * THREAD_K
        self.assertEqual(d['calls'], plus(base['calls'], {'malloc': k, 'free': k}))
        # Nothing of the program's leaks; each worker's ld.so DTV is the runtime's. (In the
        # baseline the workers never allocate, so LOG-FORMAT counts their DTVs as the program's.)
        self.assertEqual(d['leaks'], [])
        dtv = [r for r in d['runtime_leaks'] if r['kind'] == 'ld.so thread DTV']
        self.assertEqual(sum(r['count'] for r in dtv), THREADS, d['runtime_leaks'])
        self.assertEqual(d['leaked_blocks'], base['leaked_blocks'])
        # The per-thread table: the main thread and four workers with 2K events each.
        pid = d['pid']
        workers = [t for t in d['threads'] if t['tid'] != pid]
        self.assertEqual(len(workers), THREADS, d['threads'])
        for t in workers:
            self.assertFalse(t['main'])
            self.assertEqual(t['calls'], 2 * THREAD_K)
        self.assertTrue(any(t['main'] and t['tid'] == pid for t in d['threads']))
        # Independent of the reader: half of the frees are of another thread's blocks.
        owner = {}
        cross = 0
        for e in events_of(path):
            if e[2] == 'm':
                owner[e[4]] = e[1]
            elif e[2] == 'f':
                if owner.pop(e[3]) != e[1]:
                    cross += 1
        self.assertEqual(cross, THREADS * THREAD_K // 2)

    def test_handoffs_in_time_order(self):
        """Blocks passed between two threads microseconds apart: the compact log's records,
        merged by time, keep every malloc before its free and every free before the malloc
        that gets the block back, in either thread (one clock for all threads:
        preload/tsc_clock.hpp). handoff_program.c says what it catches."""
        path = self.one_log('handoff', [HANDOFFS], prefix='handoff')
        self.assertTrue(is_compact(path))
        d = reader_json('summary', path)
        self.assert_consistent(d, path)
        self.assertEqual(d['anomalies'], [])
        # Independent of the reader, on the merged records: both directions were exercised.
        live, freed_by = {}, {}
        passed = returned = 0
        for e in events_of(path):
            if e[2] in 'mc':
                self.assertNotIn(e[4], live, 'allocation of a live block: %s' % e)
                live[e[4]] = e[1]
                returned += freed_by.get(e[4], e[1]) != e[1]
            elif e[2] == 'f':
                self.assertIn(e[3], live, 'free of a block not live: %s' % e)
                passed += live.pop(e[3]) != e[1]
                freed_by[e[3]] = e[1]
        self.assertEqual(passed, HANDOFFS)
        self.assertGreater(returned, HANDOFFS // 10)


# --------------------------------------------------------------------------------------
# 3. fork


class Fork(LogCase):
    def test_parent_and_child(self):
        base = Baselines.get('fork', ['none'])
        p, files = self.run_logged('fork', [], prefix='fork')
        child_pid = int(p.stdout.decode().strip())
        self.assertEqual(len(files), 2, files)
        heads = {f: header_of(f) for f in files}
        by_pid = {int(h['pid']): f for f, h in heads.items()}
        self.assertIn(child_pid, by_pid)
        child = by_pid.pop(child_pid)
        (parent_pid, parent), = by_pid.items()
        self.assertEqual(int(heads[child]['ppid']), parent_pid)
        self.assertEqual(int(heads[parent]['ppid']), os.getpid())

        dp = reader_json('summary', parent)
        self.assert_consistent(dp, parent)
        self.assertEqual(dp['calls'], plus(base['calls'], FORK_PARENT))
        self.assertEqual(leak_rows(dp['leaks']), [])
        for e in events_of(parent):
            self.assertEqual(int(e[1]), parent_pid, "an event of another thread or process "
                             "in the parent's log")

        dc = reader_json('summary', child)
        self.assertTrue(dc['complete'], dc['incomplete_reasons'])
        self.assertEqual(dc['calls'], plus(FORK_CHILD), "the child's footer counts only "
                         "the child's calls")
        self.assertEqual(dc['counted_calls'], plus(FORK_CHILD))
        self.assertEqual(dc['warnings'], [])
        # The free of a block inherited from the parent is unknown in the child's log.
        self.assertEqual(dc['unknown_frees'], 1)
        self.assertEqual(dc['double_frees'], 0)
        self.assertEqual(footer_of(child)['events'], len(events_of(child)))
        for e in events_of(child):
            self.assertEqual(int(e[1]), child_pid)
        # t_ns counts from the header's start_unix_ns: the child's own, not the parent's
        # (the parent slept 0.3 s before forking; the child's first event opens its log).
        self.assertLess(int(events_of(child)[0][0]), 200 * 10**6)

        both = reader_json_all('summary', parent, child)['combined']
        self.assertEqual(both['processes'], 2)
        self.assertEqual(both['children'], [child_pid])
        self.assertTrue(both['complete'])


# --------------------------------------------------------------------------------------
# 4. Sampling, 5. events=summary


class SampleAndSummary(LogCase):
    def setUp(self):
        super().setUp()
        self.base = Baselines.get('known', ['none'])

    def test_sample_by_bytes(self):
        # sample=N means one sample per N bytes on average (it meant 1 block in N by address
        # hash before): known_program's small blocks are mostly left out, its 1 MiB block in.
        path = self.one_log('known', ['leak'], 'sample=4096', prefix='sample')
        d = reader_json('summary', path)
        self.assertTrue(d['complete'], d['incomplete_reasons'])
        self.assertTrue(d['estimated'])
        self.assertEqual((d['sample'], d['sampling']), (4096, 'bytes'))
        self.assertEqual(d['calls'], plus(self.base['calls'], KNOWN_LEAK))
        head = header_of(path)
        self.assertEqual((head['sample'], head['sampling']), ('4096', 'bytes'))
        foot = footer_of(path)
        self.assertEqual(foot['sample_dropped'], 0)
        events = events_of(path)
        self.assertEqual(foot['events'], len(events))
        total = sum(d['calls'][k] for k in OPS if k != 'failed')
        self.assertLess(len(events), total // 2, 'sample=4096 logged most events')
        # Both failures are logged whatever the sampling: there is no block to weigh.
        self.assertEqual(sum(1 for e in events if e[-2] == '0' and e[-1] == '-'), 2)
        # A free is logged exactly when its block's allocation was.
        self.assertEqual(d['unknown_frees'], 0, d['anomalies'])
        self.assertEqual(d['double_frees'], 0, d['anomalies'])
        self.assertEqual(d['leaked_blocks'], 5 + self.base['leaked_blocks'])   # the footer's

    def test_realloc_of_null_is_a_realloc(self):
        path = self.one_log('known', ['leak'], prefix='rnull')
        events = events_of(path)
        # ... and counted as one: KNOWN_LEAK (test_calls_leaks_peak) has it among the reallocs.
        self.assertEqual(len([e for e in events if e[2:5] == ['r', '0', '64']]), 1)

    def test_events_summary(self):
        path = self.one_log('known', ['leak'], 'events=summary', prefix='summ')
        lines = [line for line in read_lines(path) if line]
        self.assertEqual(len(lines), 2, lines[:5])
        self.assertTrue(lines[0].startswith('# chainalloc-log 1 '))
        self.assertTrue(lines[1].startswith('# end '))
        d = reader_json('summary', path)
        self.assertTrue(d['complete'], d['incomplete_reasons'])
        self.assertEqual(d['events'], 0)
        self.assertEqual(d['calls'], plus(self.base['calls'], KNOWN_LEAK))
        self.assertEqual(footer_of(path)['events'], 0)
        self.assertEqual(footer_of(path)['live_blocks'], 5 + self.base['leaked_blocks'])


# --------------------------------------------------------------------------------------
# 6. A truncated log, 7. exec


class SamplingTellsTheTruth(LogCase):
    """sampled_program run 10 times with sample=64 KiB (a few thousand samples a run): the
    estimated requested bytes, peak and leaked bytes of every run stay within 10% of the
    truth, read from an unsampled run."""
    RUNS = 10
    MEAN = 64 << 10
    KEYS = ('requested_bytes', 'peak_bytes', 'leaked_bytes')

    def test_ten_runs_within_10_percent(self):
        truth = reader_json('summary', self.one_log('sampled', [], prefix='truth'))
        self.assertFalse(truth['estimated'])
        spread = {k: [] for k in self.KEYS}
        for i in range(self.RUNS):
            path = self.one_log('sampled', [], 'sample=%d' % self.MEAN, prefix='s%d' % i)
            d = reader_json('summary', path)
            self.assertEqual(d['sampling'], 'bytes')
            self.assertEqual(d['calls'], truth['calls'])      # the footer's, exact
            self.assertEqual((d['unknown_frees'], d['double_frees']), (0, 0), d['anomalies'])
            self.assertLess(len(events_of(path)), 10000, 'more samples than a few thousand')
            for k in self.KEYS:
                spread[k].append(d[k] / truth[k] - 1)
        report = '; '.join('%s %s: %+.1f%% .. %+.1f%%' % (k, truth[k], 100 * min(v), 100 * max(v))
                           for k, v in spread.items())
        sys.stderr.write('sampling spread over %d runs: %s\n' % (self.RUNS, report))
        for k, v in spread.items():
            self.assertLess(max(abs(x) for x in v), 0.10, report)


class Incomplete(LogCase):
    def test_cut_mid_line(self):
        """A text log (format=text) cut inside a line, as a crash mid-write leaves it."""
        path = self.one_log('known', ['leak'], 'format=text', prefix='known')
        with open(path, 'rb') as f:
            data = f.read()
        nl = data.index(b'\n', len(data) // 2)
        cut = nl + 6                      # inside the next event line
        self.assertNotEqual(data[cut - 1:cut], b'\n')
        # Event lines only: the header, `#M` and `#S` lines are not events.
        whole_events = sum(1 for line in data[:nl + 1].split(b'\n') if line and not line.startswith(b'#'))
        cut_path = os.path.join(self.dir, 'cut.log')
        with open(cut_path, 'wb') as f:
            f.write(data[:cut])
        d = reader_json('summary', cut_path)
        self.assertFalse(d['complete'])
        self.assertFalse(d['has_footer'])
        self.assertTrue(d['cut_line'])
        self.assertEqual(len(d['incomplete_reasons']), 2)
        self.assertEqual(d['events'], whole_events)
        self.assertEqual(sum(d['calls'][k] for k in OPS if k != 'failed'), whole_events)
        self.assertEqual(d['malformed_lines'], 0)
        # The other subcommands cope as well.
        reader('leaks', cut_path)
        reader('suggest', cut_path)
        reader('plot', cut_path, '-o', os.path.join(self.dir, 'cut.html'))
        self.assertGreater(os.path.getsize(os.path.join(self.dir, 'cut.html')), 0)
        # Cut at a line boundary: no cut line, but still no footer.
        edge = os.path.join(self.dir, 'edge.log')
        with open(edge, 'wb') as f:
            f.write(data[:nl + 1])
        e = reader_json('summary', edge)
        self.assertFalse(e['complete'])
        self.assertFalse(e['cut_line'])
        self.assertEqual(e['events'], whole_events)

    def test_cut_compact(self):
        """A compact log cut anywhere (mid-record, mid-chunk, mid-header of a chunk): the reader
        reads the whole records before the cut, never a malformed one, and says the log is
        incomplete. Zeroed pages (chunks reserved but never written) are skipped."""
        path = self.one_log('threads', ['4'], prefix='compact')
        self.assertTrue(is_compact(path))
        full = reader_json('summary', path)
        self.assertTrue(full['complete'])
        with open(path, 'rb') as f:
            data = f.read()
        body = (data.index(b'\n') + 1 + 4096) & ~4095
        for at in (body + 5, body + 4096 + 33, (body + len(data)) // 2 + 7, len(data) - 3):
            cut_path = os.path.join(self.dir, 'cut%d.log' % at)
            with open(cut_path, 'wb') as f:
                f.write(data[:at])
            d = reader_json('summary', cut_path)
            self.assertFalse(d['complete'], at)   # even when the footer's chunk came before the cut
            self.assertTrue(d['cut_line'], at)
            self.assertEqual(d['malformed_lines'], 0, at)
            self.assertLessEqual(d['events'], full['events'], at)
            self.assertEqual(d['double_frees'], 0, at)
            reader('leaks', cut_path)
        # Pages of zeros between chunks (a process killed before writing its reserved chunks)
        # and after them (the file's reserved tail): the same events as the whole log.
        holed = os.path.join(self.dir, 'holed.log')
        with open(holed, 'wb') as f:
            f.write(data[:body] + bytes(2 * 4096) + data[body:] + bytes(3 * 4096))
        d = reader_json('summary', holed)
        self.assertEqual((d['events'], d['calls'], d['peak_bytes']), (full['events'], full['calls'], full['peak_bytes']))

    def test_exec(self):
        base = Baselines.get('known', ['none'])
        true = '/bin/true'
        _, files = self.run_logged('exec', [true], prefix='exec')
        # The exec'ing process's log, and /bin/true's (same pid, so the name gets ".1").
        self.assertEqual(len(files), 2, files)
        path = files[0]
        self.assertEqual(files[1], path + '.1')
        head = header_of(path)
        self.assertEqual(head['program'], 'exec_program')
        self.assertEqual(header_of(files[1])['program'], 'true')
        self.assertEqual(header_of(files[1])['pid'], head['pid'])
        d = reader_json('summary', path)
        self.assertFalse(d['complete'])
        self.assertFalse(d['has_footer'])
        self.assertEqual(d['malformed_lines'], 0)
        # event_log.hpp: lines go into a shared mapping, so exec loses none of them.
        self.assertEqual(d['calls'], plus(base['calls'], EXEC_CALLS))
        reader('leaks', path)
        self.assertTrue(reader_json('summary', files[1])['complete'])


# --------------------------------------------------------------------------------------
# 8. Real programs

SQL = """
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO t SELECT i, i % 37, printf('name-%05d', i * 7) FROM n;
CREATE INDEX t_grp ON t(grp, name);
SELECT grp, count(*), min(name), max(name) FROM t GROUP BY grp ORDER BY grp LIMIT 5;
SELECT sum(length(name)), group_concat(id % 10, '') FROM t WHERE id < 50;
DELETE FROM t WHERE id % 3 = 0;
SELECT count(*) FROM t;
"""

PYTHON = """
import json, hashlib, collections
d = collections.Counter('w%d' % (i * 7919 % 4099) for i in range(100000))
rows = [{'k': k, 'v': v, 's': k * (v % 7)} for k, v in sorted(d.items())]
text = json.dumps(rows)
print(len(d), len(text), hashlib.sha256(text.encode()).hexdigest())
print(sorted(json.loads(text), key=lambda r: -r['v'])[0])
"""


def find_real(name):
    for p in ('/usr/bin/' + name, '/bin/' + name):
        if os.access(p, os.X_OK):
            return p
    return None


class RealPrograms(LogCase):
    def check_program(self, argv, stdin, env=None):
        env = env or {}
        plain = run_program(argv, dict(env, LD_PRELOAD=''), input=stdin.encode(), check=False)
        opts = 'log=%s/real.%%p.log' % self.dir
        logged = run_program(argv, dict(env, LD_PRELOAD=PATHS['so'],
                                        CHAINALLOC_CHAIN=chain(opts)),
                             input=stdin.encode(), check=False)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertEqual((logged.returncode, logged.stdout, logged.stderr),
                         (plain.returncode, plain.stdout, plain.stderr))
        self.assertGreater(len(plain.stdout), 0)
        files = self.logs('real')
        self.assertEqual(len(files), 1, files)
        d = reader_json('summary', files[0])
        self.assertTrue(d['complete'], d['incomplete_reasons'])
        self.assertEqual(d['unknown_frees'], 0, d['anomalies'])
        self.assertEqual(d['double_frees'], 0, d['anomalies'])
        self.assertEqual(d['unknown_reallocs'], 0, d['anomalies'])
        self.assertEqual(d['malformed_lines'], 0)
        self.assertEqual(d['warnings'], [])
        self.assertGreater(d['calls']['malloc'], 100)
        return d

    def test_sqlite3(self):
        prog = find_real('sqlite3')
        if not prog:
            self.skipTest('sqlite3 is not installed')
        self.check_program([prog, ':memory:'], SQL)

    def test_python3(self):
        prog = find_real('python3')
        if not prog:
            self.skipTest('python3 is not installed')
        d = self.check_program([prog, '-'], PYTHON, {'PYTHONMALLOC': 'malloc'})
        self.assertGreater(d['calls']['realloc'], 0)


# --------------------------------------------------------------------------------------
# 9. Speed on a 10-million-event log (CHAINALLOC_BIG_LOG=1)


@unittest.skipUnless(os.environ.get('CHAINALLOC_BIG_LOG') == '1',
                     'set CHAINALLOC_BIG_LOG=1 for the 10-million-event speed test')
class BigLog(LogCase):
    def test_ten_million_events(self):
        base = Baselines.get('known', ['none'])
        t0 = time.perf_counter()
        path = self.one_log('loop', [BIG_PAIRS], prefix='big')
        logger_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        plain = run_program([PATHS['loop'], str(BIG_PAIRS)], {'LD_PRELOAD': PATHS['so'],
                            'CHAINALLOC_CHAIN': 'freelist > system'})
        plain_s = time.perf_counter() - t0
        self.assertEqual(plain.returncode, 0)
        size = os.path.getsize(path)
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, READER, 'summary', path, '--json'],
                           capture_output=True, text=True, timeout=300)
        reader_s = time.perf_counter() - t0
        self.assertEqual(p.returncode, 0, p.stderr)
        d = json.loads(p.stdout)['files'][0]
        self.assertTrue(d['complete'], d['incomplete_reasons'])
        self.assertEqual(d['calls'], plus(base['calls'],
                                          {'malloc': BIG_PAIRS, 'free': BIG_PAIRS}))
        self.assertEqual(d['calls'], d['counted_calls'])
        self.assertGreaterEqual(d['events'], 2 * BIG_PAIRS)
        self.assertLess(reader_s, 300)
        sys.stderr.write(
            '\nbig log: %d events, %.0f MB; logged run %.2f s (unlogged freelist > system '
            '%.2f s); reader summary %.2f s wall = %.0f events/s (its own pass: %.0f '
            'events/s)\n' % (d['events'], size / 1e6, logger_s, plain_s, reader_s,
                             d['events'] / reader_s, d['events_per_second']))


# --------------------------------------------------------------------------------------


def main():
    argv = [sys.argv[0]]
    args = sys.argv[1:]
    bindir = os.environ.get('CHAINALLOC_LOG_BIN')
    if os.environ.get('CHAINALLOC_SO'):
        PATHS['so'] = os.environ['CHAINALLOC_SO']
    if bindir:
        for name in PROGRAMS:
            PATHS[name] = os.path.join(bindir, name + '_program')
    i = 0
    while i < len(args):
        key = args[i][2:] if args[i].startswith('--') else None
        if key in ('so',) + PROGRAMS and i + 1 < len(args):
            PATHS[key] = args[i + 1]
            i += 2
        else:
            argv.append(args[i])
            i += 1
    missing = [k for k in ('so',) + PROGRAMS if not PATHS.get(k) or not os.path.exists(PATHS[k])]
    if missing:
        sys.stderr.write('test_end_to_end.py: missing or not found: %s (pass --so PATH, --%s '
                         'PATH ..., or set CHAINALLOC_SO and CHAINALLOC_LOG_BIN)\n'
                         % (', '.join(missing), PROGRAMS[0]))
        return 2
    for k in PATHS:
        PATHS[k] = os.path.abspath(PATHS[k])
    prog = unittest.main(argv=argv, exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main())
