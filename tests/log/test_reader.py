#!/usr/bin/env python3
"""Tests of scripts/chainalloc_log.py: logs with known truth go in, every reported figure
is checked through --json. Run: python3 tests/log/test_reader.py"""

import itertools
import math
import os
import random
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True   # keep scripts/ and tests/ free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
READER = os.path.join(HERE, '..', '..', 'scripts', 'chainalloc_log.py')
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', '..', 'scripts'))

import gen_log                 # noqa: E402
import chainalloc_log          # noqa: E402
from reader_cli import run, run_json, run_json_one  # noqa: E402

MAIN = 4242




class Case(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def leaks_of(self, rows):
        return {r['size']: r['count'] for r in rows}


class KnownTruth(Case):
    def scripted(self):
        """A small hand-made log whose every figure is worked out below."""
        w = gen_log.LogWriter(self.path('s.log'), pid=MAIN)
        a = w.malloc(MAIN, 100)              # t=100
        b = w.calloc(MAIN, 200, layer=2)     # t=200, live 300
        c = w.aligned(4300, 64, 1000)        # t=300, live 1300 (thread 4300)
        w.malloc(MAIN, 5, fail=True)         # t=400 failed
        b = w.realloc(MAIN, b, 5000)         # t=500, live 6100 = peak
        w.free(MAIN, a)                      # t=600, live 6000
        w.free(MAIN, a)                      # double free
        w.free(4300, 0xdead0)                # unknown pointer
        w.realloc(MAIN, b, 1 << 50, fail=True)
        d = w.realloc(4300, 0, 48)           # realloc(NULL, 48): live 6048
        w.realloc(4300, d, 0)                # realloc(d, 0) frees: live 6000
        w.free(4300, c)                      # live 5000: b leaks
        w.close()
        return w

    def test_scripted_figures(self):
        w = self.scripted()
        d = run_json_one('summary', self.path('s.log'))
        self.assertEqual(d['calls'], dict(malloc=2, calloc=1, realloc=4, aligned=1, free=4,
                                          failed=2))
        self.assertEqual(d['counted_calls'], d['calls'])
        self.assertEqual(d['peak_bytes'], 6100)
        self.assertEqual(d['peak_t_ns'], 500)
        self.assertEqual(d['leaked_bytes'], 5000)
        self.assertEqual(d['leaked_blocks'], 1)
        self.assertEqual(d['leaks'], [{'size': 5000, 'count': 1, 'bytes': 5000,
                                       'first_t_ns': 500, 'first_tid': MAIN}])
        self.assertEqual(d['runtime_leaks'], [])
        self.assertEqual(d['double_frees'], 1)
        self.assertEqual(d['unknown_frees'], 1)
        self.assertTrue(d['complete'])
        self.assertEqual(d['runtime_ns'], w.t + 50)
        self.assertEqual(d['program'], 'prog')
        self.assertEqual((d['pid'], d['ppid']), (MAIN, 4200))
        threads = {r['tid']: (r['calls'], r['bytes']) for r in d['threads']}
        self.assertEqual(threads, {MAIN: (7, 5300), 4300: (5, 1048)})
        # free(a) came 4 events of its thread after malloc(a): temporary. c was freed by
        # its own thread 4 events later: temporary too.
        self.assertEqual(d['temporary']['blocks'], 2)
        self.assertEqual(d['temporary']['bytes'], 1100)
        layers = {r['name']: (r['requests'], r['bytes']) for r in d['layer_split']}
        self.assertEqual(layers, {'proxy': (0, 0), 'freelist': (3, 5148),
                                  'system': (2, 1200)})
        hist = {h['le']: h['count'] for h in d['histogram']}
        self.assertEqual(hist, {64: 1, 128: 1, 256: 1, 1024: 1, 8192: 1})

    def test_random_workload_matches_truth(self):
        for seed in (1, 2, 3):
            w = gen_log.LogWriter(self.path('r.log'), pid=MAIN)
            gen_log.random_workload(w, 20000, seed, threads=(MAIN, 4243, 4244),
                                    leak_every=37)
            w.free(4243, 0xbad00)
            some = next(iter(w.freed))
            w.free(4244, some)
            w.close()
            d = run_json_one('summary', self.path('r.log'))
            self.assertEqual(d['calls'], w.calls)
            self.assertEqual(d['counted_calls'], w.calls)
            self.assertEqual(d['peak_bytes'], w.peak)
            self.assertEqual(d['peak_t_ns'], w.peak_t)
            self.assertEqual(d['leaked_bytes'], w.live_bytes)
            self.assertEqual(d['leaked_blocks'], len(w.live))
            got = self.leaks_of(d['leaks'])
            for size, count in self.leaks_of(d['runtime_leaks']).items():
                got[size] = got.get(size, 0) + count
            self.assertEqual(got, w.leaks_by_size())
            self.assertEqual(d['unknown_frees'], w.unknown_frees)
            self.assertEqual(d['double_frees'], w.double_frees)
            self.assertEqual(d['temporary']['blocks'], w.temp_blocks)
            self.assertEqual(d['temporary']['bytes'], w.temp_bytes)
            self.assertEqual({r['tid']: [r['calls'], r['bytes']] for r in d['threads']},
                             w.threads)
            self.assertEqual({r['index']: [r['requests'], r['bytes']]
                              for r in d['layer_split'] if r['requests']},
                             w.layer_requests)
            top = {r['size']: r['count'] for r in d['top_sizes']}
            for size, count in top.items():
                self.assertEqual(w.sizes[size], count)
            self.assertEqual(sum(h['count'] for h in d['histogram']), sum(w.sizes.values()))
            self.assertEqual(d['warnings'], [])
            bytes_total = sum(k * v for k, v in w.sizes.items())
            self.assertEqual(d['requested_bytes'], bytes_total)

    def test_leaks_sorted_largest_total_first(self):
        w = gen_log.LogWriter(self.path('l.log'), pid=MAIN)
        for _ in range(10):
            w.malloc(MAIN, 10)                # 100 bytes in total
        w.malloc(MAIN, 99)
        for _ in range(3):
            w.malloc(MAIN, 1000)              # 3000
        w.close()
        d = run_json_one('leaks', self.path('l.log'))
        self.assertEqual([(r['size'], r['count']) for r in d['leaks']],
                         [(1000, 3), (10, 10), (99, 1)])

    def test_text_output(self):
        self.scripted()
        out = run('summary', self.path('s.log')).stdout
        for word in ('calls', 'peak live', 'leaked', 'temporary', 'thread', 'top size',
                     'size histogram', 'layer', 'double'):
            self.assertIn(word, out)
        for line in out.splitlines():
            if line.startswith('<='):
                self.assertLessEqual(len(line), 80, line)
        out = run('leaks', self.path('s.log')).stdout
        self.assertIn('5000', out)


class Incomplete(Case):
    def test_no_footer_cut_line(self):
        w = gen_log.LogWriter(self.path('c.log'), pid=MAIN)
        a = w.malloc(MAIN, 64)
        w.malloc(MAIN, 32)
        w.free(MAIN, a)
        w.close(footer=False, cut_line='700 4242 m 12')
        d = run_json_one('summary', self.path('c.log'))
        self.assertFalse(d['complete'])
        self.assertFalse(d['has_footer'])
        self.assertTrue(d['cut_line'])
        self.assertEqual(len(d['incomplete_reasons']), 2)
        self.assertEqual(d['calls']['malloc'], 2)
        self.assertEqual(d['calls']['free'], 1)
        self.assertEqual(d['leaked_bytes'], 32)
        self.assertEqual(d['peak_bytes'], 96)
        self.assertEqual(d['runtime_ns'], 300)
        out = run('summary', self.path('c.log')).stdout
        self.assertIn('INCOMPLETE', out)
        self.assertIn('cut', out)

    def test_footer_but_cut(self):
        w = gen_log.LogWriter(self.path('c2.log'), pid=MAIN)
        w.malloc(MAIN, 64)
        w.close(footer=True, cut_line='7')
        d = run_json_one('summary', self.path('c2.log'))
        self.assertFalse(d['complete'])
        self.assertTrue(d['has_footer'])

    def test_malformed_and_comment_lines(self):
        w = gen_log.LogWriter(self.path('m.log'), pid=MAIN)
        w.malloc(MAIN, 64)
        w.comment('a note the reader ignores')
        w.f.write('garbage here\n\n123 4242 q 1 2\n')
        w.malloc(MAIN, 64)
        w.close()
        d = run_json_one('summary', self.path('m.log'))
        self.assertEqual(d['malformed_lines'], 2)
        self.assertEqual(d['calls']['malloc'], 2)
        self.assertEqual(d['leaked_bytes'], 128)
        self.assertTrue(any('malformed' in x for x in d['warnings']))
        # Header, malloc, comment, then 'garbage here' on line 4 and the bad op on line 6.
        self.assertEqual([x['line'] for x in d['anomalies']], [4, 6])

    def test_not_a_log(self):
        with open(self.path('x.txt'), 'w') as f:
            f.write('hello\n')
        self.assertIn('not a chainalloc log', run('summary', self.path('x.txt'),
                                                   expect=2).stderr)
        with open(self.path('v.log'), 'w') as f:
            f.write('# chainalloc-log 4 pid=1\n')   # 1, 2 and 3 are read; a later one is refused
        self.assertIn('version', run('summary', self.path('v.log'), expect=2).stderr)
        run('summary', self.path('missing.log'), expect=2)


class MultiFile(Case):
    def test_fork(self):
        parent = gen_log.LogWriter(self.path('p.log'), pid=500, ppid=1, program='srv')
        shared = parent.malloc(500, 1000)
        parent.malloc(500, 10)
        parent.close()
        child = gen_log.LogWriter(self.path('c.log'), pid=501, ppid=500, program='srv')
        child.free(501, shared)                  # inherited block: unknown to the child
        child.malloc(501, 20)
        child.close()
        answer = run_json('summary', self.path('p.log'), self.path('c.log'))
        d = answer['combined']
        self.assertEqual(d['processes'], 2)
        self.assertEqual(d['calls']['malloc'], 3)
        self.assertEqual(d['calls']['free'], 1)
        self.assertEqual(d['leaked_bytes'], 1030)
        self.assertEqual(d['peak_bytes'], 1010 + 20)
        self.assertEqual(d['unknown_frees'], 1)
        self.assertEqual(d['children'], [501])
        self.assertEqual([f['pid'] for f in answer['files']], [500, 501])
        self.assertTrue(d['complete'])
        self.assertEqual(self.leaks_of(d['leaks']), {1000: 1, 10: 1, 20: 1})
        out = run('summary', self.path('p.log'), self.path('c.log')).stdout
        self.assertTrue(out.startswith('== 2 processes, all complete'), out)


class Sampled(Case):
    def test_scaling(self):
        w = gen_log.LogWriter(self.path('s.log'), pid=MAIN, sample=4)
        blocks = [w.malloc(MAIN, 100) for _ in range(5)]
        for b in blocks[:3]:
            w.free(MAIN, b)
        # The process made 4x the calls; the footer holds the exact totals.
        w.calls = dict(malloc=21, calloc=0, realloc=0, aligned=0, free=13, failed=0)
        exact_live = w.live_bytes * 4 + 100
        w.live_bytes, blocks_live = exact_live, 9
        w.live = {i: (0, 0, 0, 'm', 0) for i in range(9)}
        w.close()
        d = run_json_one('summary', self.path('s.log'))
        self.assertTrue(d['estimated'])
        self.assertEqual(d['sample'], 4)
        self.assertEqual(d['calls']['malloc'], 21)        # exact, from the footer
        self.assertEqual(d['counted_calls']['malloc'], 20)  # 5 sampled x 4
        self.assertEqual(d['peak_bytes'], 2000)
        self.assertEqual(d['leaked_bytes'], exact_live)
        self.assertEqual(d['leaked_blocks'], blocks_live)
        self.assertEqual(d['leaks'][0]['count'], 8)          # 2 sampled blocks x 4
        self.assertIn('sample', run('summary', self.path('s.log')).stdout)

    def test_unsampled_side_of_realloc(self):
        w = gen_log.LogWriter(self.path('u.log'), pid=MAIN, sample=2)
        w.f.write('10 4242 m 64 a0 1\n20 4242 r a0 128 - 1\n30 4242 r - 32 b0 1\n')
        w.close(footer=False)
        d = run_json_one('summary', self.path('u.log'))
        self.assertEqual(d['leaked_bytes'], 64)           # only b0 (32 x 2)
        self.assertEqual(d['unknown_reallocs'], 0)


    def test_weights_of_sampling_by_bytes(self):
        # sampling=bytes: a block of s bytes stands for 1 / (1 - exp(-s/N)) requests.
        with open(self.path('b.log'), 'w') as f:
            f.write('# chainalloc-log 1 pid=%d ppid=1 program=p page=4096 start_unix_ns=1 '
                    'sample=1000 sampling=bytes layers=proxy,system chain=proxy > system\n' % MAIN)
            f.write('10 %d m 100 a0 1\n20 %d m 100 b0 1\n30 %d f a0\n' % (MAIN, MAIN, MAIN))
            f.write('40 %d m 1000000 c0 1\n50 %d r c0 10 - 1\n60 %d r - 100 d0 1\n'
                    % (MAIN, MAIN, MAIN))
            f.write('70 %d m 99999999999 0 -\n' % MAIN)
        w100 = 1 / -math.expm1(-100 / 1000)
        d = run_json_one('summary', self.path('b.log'))
        self.assertEqual((d['sample'], d['sampling'], d['estimated']), (1000, 'bytes', True))
        self.assertEqual(d['counted_calls'], {'malloc': round(2 * w100 + 2), 'calloc': 0,
                                              'realloc': round(w100), 'aligned': 0,
                                              'free': round(w100), 'failed': 1})
        self.assertEqual(d['requested_bytes'], round(300 * w100 + 1000000))
        self.assertEqual(d['peak_bytes'], round(100 * w100 + 1000000))
        self.assertEqual(d['leaked_bytes'], round(200 * w100))
        self.assertEqual(d['leaks'], [dict(d['leaks'][0], size=100, count=round(2 * w100),
                                           bytes=round(200 * w100))])
        self.assertEqual(d['unknown_reallocs'], 0)
        self.assertIn('one sample per', run('summary', self.path('b.log')).stdout)


class RuntimeLeaks(Case):
    def write(self, extra_program_leak):
        w = gen_log.LogWriter(self.path('rt.log'), pid=MAIN)
        w.malloc(MAIN, 72704)                 # libstdc++ emergency pool, before main
        tmp = w.malloc(MAIN, 8)
        w.free(MAIN, tmp)
        for k in range(3):                    # pthread_create: dtv calloc, then the thread
            w.calloc(MAIN, 19 * 16)
            t = w.malloc(5000 + k, 40)
            w.free(5000 + k, t)
        w.calloc(MAIN, 19 * 16)               # no thread follows: the program's own
        w.malloc(MAIN, 4096)                  # stdout buffer
        for _ in range(100):
            w.free(MAIN, w.malloc(MAIN, 50))
        w.malloc(MAIN, 72704)                 # same size, long after start: program's
        if extra_program_leak:
            w.malloc(MAIN, 333)
        w.close()

    def test_classifier(self):
        self.write(True)
        d = run_json_one('leaks', self.path('rt.log'))
        kinds = {(r['size'], r['kind']): r['count'] for r in d['runtime_leaks']}
        self.assertEqual(kinds, {(72704, 'libstdc++ emergency exception pool'): 1,
                                 (304, 'ld.so thread DTV'): 3,
                                 (4096, 'stdio buffer'): 1})
        self.assertEqual(self.leaks_of(d['leaks']), {72704: 1, 304: 1, 333: 1})
        self.assertEqual(d['leaked_blocks'], 8)
        self.assertEqual(d['runtime_leaked_bytes'], 72704 + 3 * 304 + 4096)
        self.assertEqual(d['program_leaked_bytes'], 72704 + 304 + 333)
        self.assertEqual(d['runtime_leaks'][0]['first_tid'], MAIN)
        run('leaks', self.path('rt.log'), '--fail-on-leak', expect=1)

    def test_fail_on_leak_ignores_runtime(self):
        w = gen_log.LogWriter(self.path('ok.log'), pid=MAIN)
        w.malloc(MAIN, 72704)
        w.free(MAIN, w.malloc(MAIN, 10))
        w.calloc(MAIN, 304)
        w.free(7000, w.malloc(7000, 40))
        w.close()
        d = run_json_one('leaks', self.path('ok.log'))
        self.assertEqual(d['leaks'], [])
        self.assertEqual(len(d['runtime_leaks']), 2)
        run('leaks', self.path('ok.log'), '--fail-on-leak', expect=0)

    def test_many_page_sized_leaks_are_program(self):
        w = gen_log.LogWriter(self.path('pg.log'), pid=MAIN)
        for _ in range(4):
            w.malloc(MAIN, 4096)
        w.close()
        d = run_json_one('leaks', self.path('pg.log'))
        self.assertEqual(d['runtime_leaks'], [])
        self.assertEqual(self.leaks_of(d['leaks']), {4096: 4})

    def test_big_calloc_is_not_a_dtv(self):
        w = gen_log.LogWriter(self.path('bc.log'), pid=MAIN)
        w.calloc(MAIN, 4000)
        w.free(4300, w.malloc(4300, 8))
        w.close()
        d = run_json_one('leaks', self.path('bc.log'))
        self.assertEqual(self.leaks_of(d['leaks']), {4000: 1})

    def test_pool_on_other_thread_is_program(self):
        w = gen_log.LogWriter(self.path('o.log'), pid=MAIN)
        w.malloc(4999, 72704)
        w.close()
        d = run_json_one('leaks', self.path('o.log'))
        self.assertEqual(self.leaks_of(d['leaks']), {72704: 1})


class Suggest(Case):
    def test_obvious_classes(self):
        w = gen_log.LogWriter(self.path('g.log'), pid=MAIN)
        for size, count in ((24, 500), (40, 300), (100, 150), (1000, 50)):
            for _ in range(count):
                w.free(MAIN, w.malloc(MAIN, size))
        w.close()
        d = run_json('suggest', self.path('g.log'), '--max-classes', 4)['combined']
        self.assertEqual(d['classes'], [32, 48, 112, 1008])
        self.assertEqual(d['hit_rate'], 1.0)
        waste = (8 * 500 + 8 * 300 + 12 * 150 + 8 * 50) / (32 * 500 + 48 * 300 + 112 * 150
                                                             + 1008 * 50)
        self.assertAlmostEqual(d['waste'], waste)
        self.assertLess(d['waste'], d['default']['waste'])
        self.assertIn("freelist(classes=32,48,112,1008) > system", d['chain'])
        d = run_json('suggest', self.path('g.log'), '--max-classes', 3)['combined']
        # Dropping 32 costs 500 x 16 bytes, less than dropping 48 (300 x 64) or 112.
        self.assertEqual(d['classes'], [48, 112, 1008])
        out = run('suggest', self.path('g.log')).stdout
        self.assertIn("CHAINALLOC_CHAIN='freelist(classes=", out)
        self.assertIn('default', out)

    def test_dp_is_optimal(self):
        rng = random.Random(5)
        for _ in range(30):
            units = sorted(rng.sample(range(1, 60), rng.randint(2, 9)))
            counts = [rng.randint(1, 50) for _ in units]
            k = rng.randint(1, len(units))
            got = chainalloc_log.optimal_classes(units, counts, k)

            def waste(cls):
                return sum(c * (min(x for x in cls if x >= u) - u)
                           for u, c in zip(units, counts))
            best = min(waste(list(comb) + [units[-1]])
                       for comb in itertools.combinations(units[:-1], k - 1))
            self.assertEqual(len(got), k)
            self.assertEqual(waste(got), best)

    def test_rare_huge_sizes_left_to_backend(self):
        w = gen_log.LogWriter(self.path('h.log'), pid=MAIN)
        for _ in range(5000):
            w.free(MAIN, w.malloc(MAIN, 64))
        w.free(MAIN, w.malloc(MAIN, 30000))
        w.close()
        d = run_json('suggest', self.path('h.log'))['combined']
        self.assertEqual(d['classes'], [64])
        self.assertAlmostEqual(d['hit_rate'], 5000 / 5001)

    def test_range_syntax(self):
        self.assertEqual(chainalloc_log.format_classes([16, 32, 48, 64, 100, 200]),
                         '16..64/16,100,200')
        self.assertEqual(chainalloc_log.format_classes(chainalloc_log.default_classes()),
                         '16..128/16,160..256/32,320..512/64,640..1024/128,1280..2048/256,'
                         '2560..4096/512,5120..8192/1024,10240..16384/2048,'
                         '20480..32768/4096')


class Plot(Case):
    def test_self_contained_html(self):
        w = gen_log.LogWriter(self.path('p.log'), pid=MAIN)
        gen_log.random_workload(w, 30000, 7, leak_every=11)
        w.close()
        run('plot', self.path('p.log'), '-o', self.path('r.html'))
        with open(self.path('r.html')) as f:
            page = f.read()
        self.assertTrue('<svg' in page or '<canvas' in page)
        self.assertNotIn('http://', page)
        self.assertNotIn('https://', page)
        self.assertNotIn('src=', page)
        self.assertIn('polyline', page)
        d = chainalloc_log.summarize(self.path('p.log'), timeline=True)
        self.assertLessEqual(len(d['timeline']), 2 * chainalloc_log.TIMELINE_POINTS)
        self.assertEqual(max(p['max'] for p in d['timeline']), w.peak)


class Speed(unittest.TestCase):
    def test_two_million_events(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'big.log')
            n = gen_log.fast_log(path, 2_000_000)
            t0 = time.perf_counter()
            d = run_json_one('summary', path)
            wall = time.perf_counter() - t0
            self.assertEqual(d['events'], n)
            self.assertEqual(d['calls']['malloc'] + d['calls']['free'], n)
            sys.stderr.write('\n[speed] %d events: %.2f s wall, %.0f events/s in the '
                             'reading pass (%.1f MB)\n' % (
                                 n, wall, d['events_per_second'],
                                 os.path.getsize(path) / 1e6))
            # A loose floor: catches a quadratic slip, not a busy machine.
            self.assertGreater(n / wall, 50_000)


if __name__ == '__main__':
    unittest.main(verbosity=2)
