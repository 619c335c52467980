#!/usr/bin/env python3
"""`chainalloc log suggest`: the footprint model on handmade logs of known sizes and threads
(each overhead term checked), and `--evaluate` on suggest_program, measured under the
default chain and the suggested one.

    python3 tests/log/test_suggest.py --so build/preload/libchainalloc.so \\
        --program build/tests/log/suggest_program [unittest options]

Standard library only (the schema is checked when python3-jsonschema is installed)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', '..', 'scripts'))
import gen_log  # noqa: E402
import json  # noqa: E402
from reader_cli import run, run_json, validate  # noqa: E402
from chainalloc_log.suggest import default_classes  # noqa: E402
from chainalloc_log.evaluate import verdict  # noqa: E402

PATHS = {}


def evaluate_json(log, *args):
    """`suggest LOG --json --evaluate ARGS...` (--json before the `--`: what follows is the
    program's)."""
    p = run('suggest', log, '--json', '--evaluate', *args)
    return validate(json.loads(p.stdout))
PAGE = 4096
SLICE = 64 << 10


def page_round(n):
    return -(-n // PAGE) * PAGE


class Model(unittest.TestCase):
    """The model's terms, worked out here by hand for logs whose truth is known."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='chainalloc-suggest-')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_one_thread_no_churn(self):
        # 1000 blocks of 1040 bytes live at once, then all freed: the suggestion is one
        # class of 1040; the default rounds each to 1280.
        w = gen_log.LogWriter(self.path('a.log'), pid=10)
        blocks = [w.malloc(10, 1040) for _ in range(1000)]
        for p in blocks:
            w.free(10, p)
        w.close()
        d = run_json('suggest', self.path('a.log'))['combined']
        self.assertEqual(d['classes'], [1040])
        m = d['predicted']
        # Thread cache: nothing was freed before the peak; the first refill carved 8.
        cached = 8
        held = 1000 + cached
        per_span = SLICE // 1040                     # one slice holds 63 blocks of 1040
        spans = -(-held // per_span)                 # 16
        resident = (held // per_span) * page_round(per_span * 1040) + \
            page_round(held % per_span * 1040)
        self.assertEqual(m['live_requested_bytes'], 1040 * 1000)
        self.assertEqual(m['live_bytes'], 1040 * 1000)
        self.assertEqual(m['rounding_bytes'], 0)
        self.assertEqual(m['cache_bytes'], cached * 1040)
        self.assertEqual(m['spans'], spans)
        self.assertEqual(m['span_overhead_bytes'], resident - held * 1040)
        self.assertEqual(m['segment_header_bytes'], 2 * PAGE)   # one segment
        self.assertEqual(m['system_bytes'], 0)
        self.assertEqual(m['threads'], 1)
        self.assertEqual(m['total_bytes'], resident + 2 * PAGE)
        base = d['default']['predicted']
        per_span = SLICE // 1280                     # 51
        resident = (held // per_span) * page_round(per_span * 1280) + \
            page_round(held % per_span * 1280)
        self.assertEqual(base['rounding_bytes'], 240 * 1000)
        self.assertEqual(base['live_bytes'], 1280 * 1000)
        self.assertEqual(base['cache_bytes'], cached * 1280)
        self.assertEqual(base['spans'], -(-held // per_span))
        self.assertEqual(base['total_bytes'], resident + 2 * PAGE)
        self.assertAlmostEqual(d['predicted_ratio'], m['total_bytes'] / base['total_bytes'])
        self.assertTrue(d['predicted_gain'])
        self.assertFalse(d['same_as_default'])
        out = run('suggest', self.path('a.log')).stdout
        self.assertRegex(out, r'predicted heap at the peak: suggested .*, default .* \(x0\.8\d\)')
        self.assertIn('thread caches 8.1 KiB', out)

    def test_threads_churn_and_glibc(self):
        # Two threads each churn 1000 blocks of 128 bytes, 5 of them live at a time; one
        # block of 200000 bytes (beyond every class) is live at the peak too.
        w = gen_log.LogWriter(self.path('b.log'), pid=20)
        big = w.malloc(20, 200000, layer=2)
        for tid in (20, 21):
            live = []
            for i in range(1000):
                live.append(w.malloc(tid, 128))
                if len(live) > 5:
                    w.free(tid, live.pop(0))
            for p in live:
                w.free(tid, p)
        w.free(20, big)
        w.close()
        d = run_json('suggest', self.path('b.log'))['combined']
        self.assertEqual(d['classes'], [128])
        m = d['predicted']
        self.assertEqual(m['threads'], 2)
        # The peak: the big block and 6 blocks of 128 live (first reached in thread 20).
        self.assertEqual(m['live_bytes'], 6 * 128)
        # Caches: per thread half of min(512, 512 x 256 / 128) = 256 blocks; the frees
        # (2000 requests - 6 live) and two first refills of 8 do not bound them.
        self.assertEqual(m['cache_bytes'], 2 * 256 * 128)
        held = 6 + 2 * 256                     # 518 blocks: more than a span's 512
        spans = -(-held // (SLICE // 128))
        self.assertEqual(spans, 2)
        # Blocks were freed, so the live ones are spread over the spans: each counts whole.
        self.assertEqual(m['spans'], spans)
        self.assertEqual(m['span_overhead_bytes'], spans * SLICE - held * 128)
        # glibc: a mapping of its own for 200000 bytes, whole pages.
        self.assertEqual(m['system_bytes'], page_round(200000 + 16))
        self.assertEqual(m['segment_header_bytes'], 2 * PAGE)
        self.assertEqual(m['total_bytes'], spans * SLICE + 2 * PAGE + page_round(200016))
        # 128 is a default class too: the same footprint, nothing to gain.
        self.assertEqual(d['predicted_ratio'], 1.0)
        self.assertFalse(d['predicted_gain'])
        out = run('suggest', self.path('b.log')).stdout
        self.assertIn('the model predicts no gain over the default (within 3%): keep the '
                      'default chain', out)
        # One thread only: half the cache, 262 blocks in one span, resident to its last page.
        w = gen_log.LogWriter(self.path('c.log'), pid=22)
        live = []
        for i in range(1000):
            live.append(w.malloc(22, 128))
            if len(live) > 5:
                w.free(22, live.pop(0))
        w.close()
        m = run_json('suggest', self.path('c.log'))['combined']['predicted']
        self.assertEqual(m['spans'], 1)
        self.assertEqual(m['span_overhead_bytes'], page_round(262 * 128) - 262 * 128)

    def test_two_processes_add_up(self):
        for pid in (31, 32):
            w = gen_log.LogWriter(self.path('p.%d.log' % pid), pid=pid)
            blocks = [w.malloc(pid, 1040) for _ in range(100)]
            for p in blocks:
                w.free(pid, p)
            w.close()
        both = run_json('suggest', self.path('p.*.log'))
        one = both['files'][0]['suggestion']['predicted']
        self.assertEqual(both['combined']['predicted']['processes'], 2)
        self.assertEqual(both['combined']['predicted']['total_bytes'], 2 * one['total_bytes'])

    def test_default_table_is_the_suggestion(self):
        # One request of each default class: 40 classes learned are the default table.
        w = gen_log.LogWriter(self.path('d.log'), pid=40)
        for size in default_classes():
            w.free(40, w.malloc(40, size))
        w.close()
        d = run_json('suggest', self.path('d.log'))['combined']
        self.assertTrue(d['same_as_default'])
        self.assertFalse(d['predicted_gain'])
        self.assertEqual(d['predicted_ratio'], 1.0)
        out = run('suggest', self.path('d.log')).stdout
        self.assertIn('the suggestion is the default table: keep the default chain', out)


class Verdict(unittest.TestCase):
    """The verdict from the runs' samples: a gain must clear the noise and the spread."""

    def check(self, rss, wall, want):
        default = {'rss_bytes': [100, 101, 99], 'wall_seconds': [1.0, 1.01, 0.99]}
        mine = {'rss_bytes': rss, 'wall_seconds': wall}
        self.assertEqual(verdict(default, mine, False)[:2], want)

    def test_cases(self):
        self.check([80, 81, 79], [1.0, 1.0, 1.0], ('better', 'suggested'))
        self.check([99, 100, 101], [1.0, 0.98, 1.02], ('no gain', 'default'))
        self.check([98, 98, 98], [1.0, 1.0, 1.0], ('no gain', 'default'))   # within 3%
        self.check([80, 100, 79], [1.0, 1.0, 1.0], ('no gain', 'default'))  # spread
        self.check([120, 121, 119], [1.0, 1.0, 1.0], ('worse', 'default'))
        self.check([80, 81, 79], [1.2, 1.2, 1.2], ('mixed', 'default'))
        default = {'rss_bytes': [1], 'wall_seconds': [1]}
        self.assertEqual(verdict(default, default, True)[:2], ('same', 'default'))


@unittest.skipUnless(os.access('/usr/bin/time', os.X_OK), 'needs /usr/bin/time (GNU time)')
class Evaluate(unittest.TestCase):
    """`suggest LOGS --evaluate -- suggest_program ...`, through the reader with
    CHAINALLOC_LIB pointing at the build's library."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='chainalloc-evaluate-')
        os.environ['CHAINALLOC_LIB'] = PATHS['so']

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def logged(self, name, *args):
        """Runs suggest_program under a proxy and returns its log."""
        log = os.path.join(self.dir, name + '.log')
        env = dict(os.environ, LD_PRELOAD=PATHS['so'], CHAINALLOC_LOG=log)
        env.pop('CHAINALLOC_CHAIN', None)
        subprocess.run([PATHS['program']] + [str(a) for a in args], env=env, check=True)
        return log

    def test_suggestion_that_saves_memory(self):
        args = (1040, 20000, 2)
        log = self.logged('gain', *args)
        answer = evaluate_json(log, '--runs', 3, '--', PATHS['program'], *args)
        ev = answer['evaluation']
        self.assertEqual(ev['runs'], 3)
        self.assertEqual(ev['rss_source'], 'time')
        d, s = ev['chains']['default'], ev['chains']['suggested']
        self.assertEqual(d['chain'], 'freelist > system')
        self.assertEqual(s['chain'], 'freelist(classes=1040) > system')
        self.assertIn('classes=1040', s['chain_seen'])      # the preload ran that chain
        for c in (d, s):
            self.assertEqual(len(c['samples']['rss_bytes']), 3)
            self.assertEqual(c['median']['fell_through'], 1)   # the calloc of the table
        # 20000 blocks of 1040 bytes: 1280 each under the default table, 1040 suggested.
        self.assertLess(ev['ratio']['rss_bytes'], 0.9)
        self.assertLess(ev['ratio']['peak_live_bytes'], 0.85)
        # The model's RSS change tracks the measured one (4.6 MiB of rounding).
        self.assertLess(abs(ev['predicted_change_bytes'] - ev['measured_change_bytes']),
                        0.15 * abs(ev['measured_change_bytes']))
        # Time is noise at this size: better, or better RSS against slower time (mixed).
        self.assertIn(ev['verdict'], ('better', 'mixed'))
        if ev['verdict'] == 'better':
            self.assertEqual(ev['recommend'], 'suggested')
        out = run('suggest', log, '--evaluate', '--runs', 1, '--', PATHS['program'], *args).stdout
        self.assertRegex(out, r'measured: .*suggest_program 1040 20000 2, 1 run per chain')
        self.assertRegex(out, r'peak RSS +\S+ MiB +\S+ MiB +x0\.\d+')
        self.assertRegex(out, r'RSS change: predicted -4\.\d MiB, measured -\d\.\d MiB')
        self.assertRegex(out, r'verdict: ')

    def test_default_table_keeps_the_default(self):
        # A log with one request of each default class: the suggestion is the default.
        log = os.path.join(self.dir, 'same.log')
        w = gen_log.LogWriter(log, pid=50)
        for size in default_classes():
            w.free(50, w.malloc(50, size))
        w.close()
        out = run('suggest', log, '--evaluate', '--runs', 1, '--',
                  PATHS['program'], 64, 1000, 1).stdout
        self.assertIn('verdict: same (the suggestion is the default table): keep the default '
                      'chain', out)
        ev = evaluate_json(log, '--runs', 1, '--', PATHS['program'], 64, 1000, 1)['evaluation']
        self.assertEqual((ev['verdict'], ev['recommend']), ('same', 'default'))

    def test_through_the_launcher(self):
        # The build's launcher finds its own libchainalloc.so (no CHAINALLOC_LIB).
        launcher = os.path.join(os.path.dirname(os.path.dirname(PATHS['so'])), 'chainalloc')
        if not os.path.exists(launcher):
            self.skipTest('no launcher beside the library (%s)' % launcher)
        log = self.logged('launched', 1040, 2000, 1)
        env = dict(os.environ)
        env.pop('CHAINALLOC_LIB')
        p = subprocess.run([sys.executable, launcher, 'log', 'suggest', log, '--json',
                            '--evaluate', '--runs', '1', '--', PATHS['program'], '1040',
                            '2000', '1'], env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        ev = validate(json.loads(p.stdout))['evaluation']
        self.assertEqual(ev['chains']['suggested']['chain'], 'freelist(classes=1040) > system')
        self.assertEqual(ev['chains']['default']['stats_files'], 1)

    def test_errors(self):
        log = os.path.join(self.dir, 'e.log')
        w = gen_log.LogWriter(log, pid=60)
        w.free(60, w.malloc(60, 100))
        w.close()
        for args, pattern in (
                (('--evaluate',), r'--evaluate needs the program'),
                (('--', PATHS['program']), r"after '--' is for --evaluate"),
                (('--runs', '2'), r'--runs is for --evaluate'),
                (('--evaluate', '--runs', '0', '--', PATHS['program']), r'1\.\.100'),
                (('--evaluate', '--', PATHS['program'], 'x'), r'failed under freelist > '
                                                              r'system \(exit status 2\)')):
            p = run('suggest', log, *args, expect=2)
            self.assertEqual(p.stdout, '')
            self.assertRegex(p.stderr, pattern)


def main():
    argv = [sys.argv[0]]
    it = iter(sys.argv[1:])
    for a in it:
        if a in ('--so', '--program'):
            PATHS[a[2:]] = os.path.abspath(next(it))
        else:
            argv.append(a)
    PATHS.setdefault('so', os.environ.get('CHAINALLOC_SO', ''))
    unittest.main(argv=argv)


if __name__ == '__main__':
    main()
