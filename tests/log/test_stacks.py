#!/usr/bin/env python3
"""Call stacks in the allocation log (proxy key stacks=N; LOG-FORMAT.md, Call stacks):
leaks made at known functions and lines (stacks_program.c, marked `LEAK: name`) must be
reported at that function and file:line, in the main program, in a library dlopen'ed after
start, in threads and in a forked child, and merged across processes in the report's flame
graph of all of them; logs without stacks (stacks=0, format 1 logs made
before stacks) and cut logs still read.

    python3 tests/log/test_stacks.py --so build/preload/libchainalloc.so \\
        --program build/tests/log/stacks_program --lib build/tests/log/stacks_lib.so \\
        --lib2 build/tests/log/stacks_lib2.so

Standard library only."""

import html
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True   # keep tests/ and scripts/ free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from reader_cli import run as reader, run_json as reader_json_all  # noqa: E402
from reader_cli import run_json_one as reader_json  # noqa: E402
from logtext import log_text  # noqa: E402

PATHS = {}
SOURCE = os.path.join(HERE, 'stacks_program.c')
LIB_SOURCE = os.path.join(HERE, 'stacks_lib.c')
LIB2_SOURCE = os.path.join(HERE, 'stacks_lib2.c')
OLD_LOG = os.path.join(HERE, '..', 'fuzz', 'corpus', 'log_reader', 'leaky.log')


def marked_line(path, name):
    """The line number of the `LEAK: name` marker in a source file."""
    with open(path) as f:
        for number, text in enumerate(f, 1):
            if re.search(r'LEAK: %s\b' % re.escape(name), text):
                return number
    raise AssertionError('no LEAK: %s in %s' % (name, path))


def has_frame(site, function, path, line):
    """A leak site or site row whose stack has function at path:line (inlined or not)."""
    return any(f['function'] == function and f['file'] and os.path.samefile(f['file'], path)
               and f['line'] == line for f in site['stack'])


class StacksCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self._dir = tempfile.TemporaryDirectory(prefix='chainalloc-stacks-')
        self.dir = self._dir.name

    def tearDown(self):
        self._dir.cleanup()

    def run_logged(self, args, opts='', prefix='run'):
        """stacks_program ARGS under the proxy; the sorted list of logs it made."""
        env = dict(os.environ)
        for var in ('CHAINALLOC_LOG', 'CHAINALLOC_CHAIN', 'CHAINALLOC_PRESET'):
            env.pop(var, None)
        log = 'log=%s/%s.%%p.log' % (self.dir, prefix) + (',' + opts if opts else '')
        env.update(LD_PRELOAD=PATHS['so'], CHAINALLOC_CHAIN='proxy(%s) > freelist > system' % log)
        p = subprocess.run([PATHS['program']] + args, env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, '')
        return sorted(os.path.join(self.dir, n) for n in os.listdir(self.dir)
                      if n.startswith(prefix + '.'))

    def lines(self, path, kind):
        text = log_text(path).decode()
        return [ln for ln in text.split('\n') if ln.startswith(kind)]

    def assert_leak_at(self, d, function, path, line, count, size):
        """The file's leak sites hold `count` blocks of `size` made at function, path:line,
        and that site is named by its first frame."""
        sites = [s for s in d['leak_sites'] if has_frame(s, function, path, line)]
        self.assertEqual(len(sites), 1, d['leak_sites'])
        self.assertEqual((sites[0]['count'], sites[0]['bytes'], sites[0]['sizes']),
                         (count, count * size, [size]))
        first = sites[0]['stack'][0]
        self.assertEqual((first['function'], first['line']), (function, line), sites[0]['stack'])
        self.assertIn('%s at ' % function, sites[0]['site'])
        self.assertTrue(sites[0]['site'].endswith('%s:%d' % (os.path.basename(path), line)),
                        sites[0]['site'])
        return sites[0]


class CallSites(StacksCase):
    def test_leak_at_known_function_and_line(self):
        [path] = self.run_logged(['leak'])
        head = self.lines(path, '# chainalloc-log ')[0]
        self.assertIn(' stacks=24 ', head)       # on by default, at the default depth
        d = reader_json('leaks', path)
        site = self.assert_leak_at(d, 'leak_one', SOURCE, marked_line(SOURCE, 'leak_one'), 3, 1111)
        # The caller is next: main, then the C runtime; no frame of chainalloc itself.
        self.assertEqual(site['stack'][1]['function'], 'main')
        for f in site['stack']:
            self.assertNotIn('chainalloc', os.path.basename(f['module'] or ''), site['stack'])
        self.assertEqual(d['symbol_warnings'], [])
        # The text report shows it, top site first.
        out = reader('leaks', path).stdout
        first = out.split('program leaks by call site')[1]
        self.assertRegex(first.split('\n')[1], r'from leak_one at \S*/stacks_program\.c:%d$'
                         % marked_line(SOURCE, 'leak_one'))
        # ... and so does the HTML report, whose JSON keeps the summary's shape (schema).
        html = os.path.join(self.dir, 'report.html')
        reader_json_all('plot', path, '-o', html)
        with open(html) as f:
            page = f.read()
        self.assertIn('Leaks by call site', page)
        self.assertRegex(page, r'<summary>leak_one at \S*/stacks_program\.c:%d</summary>'
                         % marked_line(SOURCE, 'leak_one'))

    def test_each_stack_written_once(self):
        [path] = self.run_logged(['leak'])
        ids = [ln.split()[1] for ln in self.lines(path, '#S ')]
        self.assertEqual(len(ids), len(set(ids)))
        # The summary counts the distinct stacks (frames, not ids).
        frames = {tuple(ln.split()[2:]) for ln in self.lines(path, '#S ')}
        self.assertGreater(len(frames), 1)
        self.assertEqual(reader_json('summary', path)['distinct_stacks'], len(frames))
        modules = self.lines(path, '#M ')
        self.assertTrue(any(ln.endswith(PATHS['program']) for ln in modules), modules)
        ours = []
        for ln in modules:
            base, lo, hi, build_id, mod = ln.split(None, 5)[1:6]
            self.assertRegex(build_id, r'^([0-9a-f]{2})+$|^-$')
            self.assertLessEqual(int(lo, 16), int(hi, 16))
            if os.path.basename(mod).startswith(('libchainalloc', 'libunwind')):
                ours.append((int(lo, 16), int(hi, 16)))
        self.assertEqual(len(ours), 3, modules)    # the preload, the log plugin, libunwind
        # No frame of chainalloc in any stack: its entry points are dropped, and what the
        # logger (spdlog, libunwind) allocates is never logged, so no stack starts there.
        for ln in self.lines(path, '#S '):
            for pc in ln.split()[2:]:
                self.assertFalse(any(lo <= int(pc, 16) < hi for lo, hi in ours), ln)

    def test_sites_report(self):
        [path] = self.run_logged(['leak'])
        answer = reader_json_all('sites', path)
        d = answer['files'][0]
        self.assertTrue(d['stacks'])
        line = marked_line(SOURCE, 'churn')
        churn = [s for s in d['sites'] if has_frame(s, 'churn', SOURCE, line)]
        self.assertEqual(len(churn), 1, d['sites'])
        self.assertEqual((churn[0]['allocations'], churn[0]['bytes']), (100, 6400))
        self.assertEqual((churn[0]['temporary_blocks'], churn[0]['leaked_blocks']), (100, 0))
        line = marked_line(SOURCE, 'leak_one')
        leak = [s for s in d['sites'] if has_frame(s, 'leak_one', SOURCE, line)]
        self.assertEqual((leak[0]['allocations'], leak[0]['leaked_bytes'], leak[0]['peak_bytes']),
                         (3, 3333, 3333))
        self.assertEqual(answer['combined']['processes'], 1)
        out = reader('sites', path).stdout
        self.assertIn('most temporary allocations', out)
        self.assertRegex(out, r'churn at \S*/stacks_program\.c:%d\n' % marked_line(SOURCE, 'churn'))

    def test_library_dlopened_after_start(self):
        [path] = self.run_logged(['dlopen', PATHS['lib']])
        modules = [ln.split(None, 5)[5] for ln in self.lines(path, '#M ')]
        self.assertIn(PATHS['lib'], modules)
        # The library's line comes after the first stack: it was loaded later.
        text = log_text(path).decode(errors='replace')
        self.assertLess(text.index('\n#S '), text.index(' %s\n' % PATHS['lib']))
        d = reader_json('leaks', path)
        site = self.assert_leak_at(d, 'lib_leak_here', LIB_SOURCE,
                                   marked_line(LIB_SOURCE, 'lib_leak_here'), 2, 2222)
        self.assertEqual(site['stack'][1]['function'], 'stacks_lib_leak')
        self.assertEqual(site['stack'][2]['function'], 'main')

    def test_library_unloaded_and_another_loaded(self):
        """dlclose, then dlopen of another library (the loader most often reuses the range):
        each leak is named in its own library, by the module line that covered its address
        when its stack was written."""
        [path] = self.run_logged(['reload', PATHS['lib'], PATHS['lib2']])
        modules = {}
        for ln in self.lines(path, '#M '):
            p = ln.split(None, 5)
            modules[p[5]] = (int(p[2], 16), int(p[3], 16))
        self.assertIn(PATHS['lib'], modules)
        self.assertIn(PATHS['lib2'], modules)
        d = reader_json('leaks', path)
        self.assert_leak_at(d, 'lib_leak_here', LIB_SOURCE, marked_line(LIB_SOURCE, 'lib_leak_here'),
                            1, 2222)
        site = self.assert_leak_at(d, 'other_leak_here', LIB2_SOURCE,
                                   marked_line(LIB2_SOURCE, 'other_leak_here'), 1, 3030)
        self.assertEqual(site['stack'][1]['function'], 'other_leak_there')
        self.assertEqual(d['symbol_warnings'], [])

    def test_threads(self):
        [path] = self.run_logged(['threads'])
        d = reader_json('leaks', path)
        site = self.assert_leak_at(d, 'thread_leak', SOURCE, marked_line(SOURCE, 'thread_leak'),
                                   3, 3333)
        self.assertIn('start_thread', [f['function'] for f in site['stack']])

    def test_forked_child(self):
        files = self.run_logged(['fork'])
        self.assertEqual(len(files), 2, files)
        child = [f for f in files if reader_json('summary', f)['ppid'] in
                 [reader_json('summary', g)['pid'] for g in files]]
        self.assertEqual(len(child), 1)
        # The child's file lists the modules again (its own copy of the table) and its stacks.
        self.assertTrue(any(ln.endswith(PATHS['program']) for ln in self.lines(child[0], '#M ')))
        d = reader_json('leaks', child[0])
        self.assertTrue(d['complete'])
        self.assertEqual(d['leak_sites'][0]['count'], 1)
        self.assert_leak_at(d, 'child_leak', SOURCE, marked_line(SOURCE, 'child_leak'), 1, 4444)
        # Together: one site per leaking function, the child's among them.
        both = reader_json_all('leaks', *files)['combined']['leak_sites']
        self.assertTrue(any(has_frame(s, 'child_leak', SOURCE, marked_line(SOURCE, 'child_leak'))
                            for s in both))


def flame_graphs(page):
    """The report's flame graphs: {measure: (total, [(value, depth, title, x, width)])}."""
    out = {}
    for m in re.finditer(r'<svg class="flamesvg" [^>]*data-measure="(\w+)" data-total="(\d+)">'
                         r'(.*?)</svg>', page, re.S):
        nodes = [(int(v), int(d), html.unescape(t), float(x), float(w)) for v, d, t, x, w in
                 re.findall(r'<g class="fgn" data-value="(\d+)" data-depth="(\d+)"><title>'
                            r'(.*?)</title><rect x="([\d.]+)" y="\d+" width="([\d.]+)"',
                            m.group(3), re.S)]
        out[m.group(1)] = (int(m.group(2)), nodes)
    return out


class Diff(StacksCase):
    """`log diff`: two runs of one program, leak_one called 3 then 7 times."""

    def leak_site(self, rows):
        line = marked_line(SOURCE, 'leak_one')
        found = [r for r in rows if has_frame(r, 'leak_one', SOURCE, line)]
        self.assertEqual(len(found), 1, rows)
        return found[0]

    def test_the_leaking_site_grows(self):
        [before] = self.run_logged(['leak', '3'], prefix='before')
        [after] = self.run_logged(['leak', '7'], prefix='after')
        answer = reader_json_all('diff', before, after)
        self.assertEqual([(d['file'], d['side']) for d in answer['files']],
                         [(before, 'before'), (after, 'after')])
        c = answer['combined']
        site = self.leak_site(c['sites'])
        self.assertIs(site, c['sites'][0])            # the largest change comes first
        self.assertEqual(site['status'], 'changed')
        self.assertEqual(site['leaked_blocks'], {'before': 3, 'after': 7, 'delta': 4,
                                                 'ratio': round(7 / 3, 4)})
        self.assertEqual(site['leaked_bytes']['delta'], 4 * 1111)
        self.assertEqual((site['allocations']['delta'], site['bytes']['delta'],
                          site['peak_bytes']['delta']), (4, 4 * 1111, 4 * 1111))
        churn = [r for r in c['sites'] if has_frame(r, 'churn', SOURCE, marked_line(SOURCE, 'churn'))]
        self.assertEqual(len(churn), 1, c['sites'])
        self.assertEqual((churn[0]['status'], churn[0]['allocations']['after'],
                          churn[0]['bytes']['ratio']), ('same', 100, 1.0))
        self.assertEqual(c['totals']['leaked_bytes']['delta'], 4 * 1111)
        self.assertEqual(c['totals']['allocations']['delta'], 4)
        # Run the other way: it shrinks; the text names it first.
        back = reader_json_all('diff', after, before)['combined']
        self.assertEqual(self.leak_site(back['sites'])['leaked_bytes']['delta'], -4 * 1111)
        out = reader('diff', before, after).stdout
        first = out.split('sites that changed')[1].split('\n')[1]
        self.assertRegex(first, r'^\s+\+4\.3 KiB\s+x2\.33  leak_one at \S*/stacks_program\.c:%d$'
                         % marked_line(SOURCE, 'leak_one'))
        self.assertIn('1 of 2 sites', out)

    def shifted(self, path, name, delta):
        """A copy of a log whose program is unsymbolized (its build id changed) and loaded
        `delta` bytes higher (another ASLR draw): its #M line and its frames move."""
        lines = log_text(path).split(b'\n')
        prog = PATHS['program'].encode()
        lo = hi = None
        for i, ln in enumerate(lines):
            if ln.startswith(b'#M ') and ln.endswith(prog):
                p = ln.split(b' ')
                lo, hi = int(p[2], 16), int(p[3], 16)
                p[1:4] = [b'%x' % (int(x, 16) + delta) for x in p[1:4]]
                p[4] = b'00' * 20
                lines[i] = b' '.join(p)
        self.assertIsNotNone(lo)
        for i, ln in enumerate(lines):
            if ln.startswith(b'#S '):
                p = ln.split(b' ')
                p[2:] = [b'%x' % (int(x, 16) + delta) if lo <= int(x, 16) < hi else x
                         for x in p[2:]]
                lines[i] = b' '.join(p)
        out = os.path.join(self.dir, name)
        with open(out, 'wb') as f:
            f.write(b'\n'.join(lines))
        return out

    def test_unsymbolized_sites_match_by_module_and_offset(self):
        [before] = self.run_logged(['leak', '3'], prefix='before')
        [after] = self.run_logged(['leak', '7'], prefix='after')
        a = self.shifted(before, 'a.log', 0)
        b = self.shifted(after, 'b.log', 0x12340000)
        c = reader_json_all('diff', a, b)['combined']
        self.assertEqual([r['status'] for r in c['sites']], ['changed', 'same'], c['sites'])
        site = c['sites'][0]
        self.assertEqual((site['leaked_blocks']['delta'], site['leaked_bytes']['delta']),
                         (4, 4444))
        first = site['stack'][0]
        self.assertEqual((first['function'], first['module']), (None, PATHS['program']))
        self.assertEqual(site['site'], '%s+%s' % (os.path.basename(PATHS['program']),
                                                  first['offset']))
        # Same offsets on both sides, though the addresses differ.
        lines = {}
        for path in (a, b):
            rows = reader_json('leaks', path)['leak_sites']
            lines[path] = [(f['offset'], f['address']) for f in rows[0]['stack'][:2]]
        self.assertEqual([o for o, _ in lines[a]], [o for o, _ in lines[b]])
        self.assertNotEqual([x for _, x in lines[a]], [x for _, x in lines[b]])

    def test_flame_graph_in_the_report(self):
        [path] = self.run_logged(['leak', '7'])
        out = os.path.join(self.dir, 'flame.html')
        reader('plot', path, '-o', out)
        with open(out) as f:
            page = f.read()
        graphs = flame_graphs(page)
        self.assertEqual(sorted(graphs), ['bytes', 'leaked_bytes', 'peak_bytes'])
        leak_line = marked_line(SOURCE, 'leak_one')
        churn_line = marked_line(SOURCE, 'churn')

        def node(measure, function, line):
            total, nodes = graphs[measure]
            found = [n for n in nodes if re.match(r'%s at \S*stacks_program\.c:%d\n' %
                                                  (function, line), n[2])]
            self.assertEqual(len(found), 1, [n[2].split('\n')[0] for n in nodes])
            return total, found[0]
        # Leaked: leak_one's 7 blocks are all of it, its box the whole width; the root is
        # at depth 0 and the stack runs from the C runtime up to main, then leak_one.
        total, (value, depth, title, x, width) = node('leaked_bytes', 'leak_one', leak_line)
        self.assertEqual((total, value, round(width, 2)), (7 * 1111, 7 * 1111, 1080.0))
        stack = title.split('\n\n')[1].split('\n')
        self.assertTrue(stack[0].startswith('leak_one at '), title)
        self.assertTrue(stack[1].startswith('main at '), title)
        self.assertEqual(depth, len(stack))
        self.assertEqual(graphs['leaked_bytes'][1][0][:2], (7 * 1111, 0))   # 'all'
        # Allocated: leak_one and churn side by side, widths by their bytes.
        total, leak = node('bytes', 'leak_one', leak_line)
        _, churn = node('bytes', 'churn', churn_line)
        self.assertEqual((leak[0], churn[0]), (7 * 1111, 100 * 64))
        self.assertGreaterEqual(total, leak[0] + churn[0])
        for n in (leak, churn):
            self.assertAlmostEqual(n[4], 1080 * n[0] / total, places=1)
        self.assertTrue(leak[3] >= churn[3] + churn[4] - 0.01 or churn[3] >= leak[3] + leak[4] - 0.01)
        # Peak: leak_one's 7 blocks are live at the end, which is the peak.
        self.assertEqual(node('peak_bytes', 'leak_one', leak_line)[1][0], 7 * 1111)
        # The switch: one radio button per measure, the first checked.
        self.assertEqual(len(re.findall(r'<input type="radio" class="m\d"', page)), 3)


class AcrossProcesses(StacksCase):
    """The report of several logs: one flame graph per measure of all processes, a box per
    program at the bottom, stacks merged by their symbolized frames (stacks_program tree:
    a parent and a forked child, which then execs `stacks_program leak 2`)."""

    def report(self):
        files = self.run_logged(['tree'])
        self.assertEqual(len(files), 3, files)      # parent, child, the child after exec
        out = os.path.join(self.dir, 'tree.html')
        reader('plot', *files, '-o', out)
        with open(out) as f:
            page = f.read()
        # The run's section comes first, then a section per process (<h2 id="pN">).
        run, *processes = re.split(r'<h2 id="p\d+">', page)
        return page, flame_graphs(run), [flame_graphs(p) for p in processes]

    def nodes(self, graph, function, line):
        """The boxes of `function` at stacks_program.c:line: (value, depth, stack), the
        stack innermost first, the program's box last."""
        found = []
        for value, depth, title, _, _ in graph[1]:
            if re.match(r'%s at \S*stacks_program\.c:%d\n' % (function, line), title):
                found.append((value, depth, title.split('\n\n')[1].split('\n')))
        return found

    def test_flame_graph_of_all_processes(self):
        page, run, processes = self.report()
        self.assertIn('Flame graph of all processes', page)
        self.assertIn("sum of each process's peak", page)
        self.assertEqual(sorted(run), ['bytes', 'leaked_bytes', 'peak_bytes'])
        # Each total is the sum of the processes' own graphs.
        for measure, (total, _) in run.items():
            self.assertEqual(total, sum(g[measure][0] for g in processes if measure in g),
                             measure)
        # A box per program above the root; the forked child is the parent's program.
        programs = sorted((n[2].split('\n')[0], n[0]) for n in run['bytes'][1] if n[1] == 1)
        self.assertEqual([p for p, _ in programs],
                         ['stacks_program leak (1 process)', 'stacks_program tree (2 processes)'])
        self.assertEqual(sum(v for _, v in programs), run['bytes'][0])
        tree = 'stacks_program tree (2 processes)'
        # both_leak, in the parent and in the child: one box with the bytes of both.
        for measure in ('bytes', 'leaked_bytes', 'peak_bytes'):
            [(value, depth, stack)] = self.nodes(run[measure], 'both_leak',
                                                 marked_line(SOURCE, 'both_leak'))
            self.assertEqual(value, 2 * 5555, measure)
            self.assertEqual(stack[-1], tree)
            self.assertTrue(stack[1].startswith('main at '), stack)
            self.assertEqual(depth, len(stack))
        # child_leak, in the child only; churn, in the parent and in the exec'd program: a
        # box under each program; leak_one, in the exec'd program only.
        [(value, _, stack)] = self.nodes(run['leaked_bytes'], 'child_leak',
                                         marked_line(SOURCE, 'child_leak'))
        self.assertEqual((value, stack[-1]), (4444, tree))
        churn = self.nodes(run['bytes'], 'churn', marked_line(SOURCE, 'churn'))
        self.assertEqual(sorted((v, s[-1]) for v, _, s in churn),
                         [(6400, 'stacks_program leak (1 process)'), (6400, tree)])
        self.assertEqual(self.nodes(run['leaked_bytes'], 'churn', marked_line(SOURCE, 'churn')),
                         [])
        [(value, _, stack)] = self.nodes(run['leaked_bytes'], 'leak_one',
                                         marked_line(SOURCE, 'leak_one'))
        self.assertEqual((value, stack[-1]), (2 * 1111, 'stacks_program leak (1 process)'))
        # The per-process graphs stay: both_leak once in each process of the tree.
        per_process = [self.nodes(g['leaked_bytes'], 'both_leak', marked_line(SOURCE, 'both_leak'))
                       for g in processes]
        self.assertEqual(sorted(n[0][0] for n in per_process if n), [5555, 5555])
        # One radio group per graph: the run's and each process's.
        self.assertEqual(len(re.findall(r'<input type="radio" class="m\d"', page)), 3 * 4)

    def test_one_log_has_no_run_graph(self):
        [path] = self.run_logged(['leak'])
        out = os.path.join(self.dir, 'one.html')
        reader('plot', path, '-o', out)
        with open(out) as f:
            self.assertNotIn('Flame graph of all processes', f.read())


class WithoutStacks(StacksCase):
    def test_stacks_zero(self):
        [path] = self.run_logged(['leak'], 'stacks=0')
        self.assertEqual(self.lines(path, '#S '), [])
        self.assertEqual(self.lines(path, '#M '), [])
        d = reader_json('leaks', path)
        self.assertEqual(d['leak_sites'], [])
        self.assertEqual([(g['size'], g['count']) for g in d['leaks']], [(1111, 3)])
        s = reader_json('sites', path)
        self.assertEqual((s['stacks'], s['sites']), (False, []))
        # No flame graph without stacks; diff gives the totals and no sites.
        html_path = os.path.join(self.dir, 'nostacks.html')
        reader('plot', path, '-o', html_path)
        with open(html_path) as f:
            self.assertNotIn('Flame graph', f.read())
        c = reader_json_all('diff', path, path)['combined']
        self.assertEqual((c['sites'], c['before']['stacks'], c['totals']['leaked_bytes']['delta'],
                          c['totals']['leaked_blocks']['after']), ([], False, 0, 3))
        self.assertIn('no call stacks', reader('diff', path, path).stdout)
        self.assertIn('no call stacks', reader('sites', path).stdout)
        # The same figures as with stacks.
        [with_stacks] = self.run_logged(['leak'], prefix='with')
        a, b = reader_json('summary', path), reader_json('summary', with_stacks)
        for key in ('calls', 'requests', 'requested_bytes', 'leaked_bytes', 'peak_bytes'):
            self.assertEqual(a[key], b[key], key)

    def test_format_1_log_without_stacks(self):
        d = reader_json('leaks', OLD_LOG)
        self.assertEqual(d['leak_sites'], [])
        self.assertTrue(d['leaks'])
        self.assertEqual(reader_json('sites', OLD_LOG)['sites'], [])
        reader('summary', OLD_LOG)

    def test_cut_log(self):
        [path] = self.run_logged(['dlopen', PATHS['lib']])
        data = log_text(path)   # cut as text: a crash mid-line (test_end_to_end cuts compact logs)
        cut_at = {
            'inside a module line': data.index(b'#M ') + 10,
            'inside a stack line': data.index(b'#S ') + 6,
            'at the last event': data.rindex(b'# end'),
        }
        for what, at in cut_at.items():
            cut = os.path.join(self.dir, 'cut.log')
            with open(cut, 'wb') as f:
                f.write(data[:at])
            d = reader_json('leaks', cut)
            self.assertFalse(d['complete'], what)
            self.assertIsInstance(d['leak_sites'], list, what)
            reader('sites', cut)
        # Cut just before the footer: every leak is there, at its site.
        self.assert_leak_at(d, 'lib_leak_here', LIB_SOURCE,
                            marked_line(LIB_SOURCE, 'lib_leak_here'), 2, 2222)

    def test_module_file_changed(self):
        """A module rebuilt since the run is not used (its build id differs): a warning, and
        its frames shown as addresses, never as wrong lines."""
        [path] = self.run_logged(['leak'])
        data = log_text(path)
        prog = PATHS['program'].encode()
        lines = data.split(b'\n')
        for i, ln in enumerate(lines):
            if ln.startswith(b'#M ') and ln.endswith(prog):
                p = ln.split(b' ')
                p[4] = b'00' * 20
                lines[i] = b' '.join(p)
        changed = os.path.join(self.dir, 'changed.log')
        with open(changed, 'wb') as f:
            f.write(b'\n'.join(lines))
        d = reader_json('leaks', changed)
        self.assertTrue(any('build id differs' in w for w in d['symbol_warnings']),
                        d['symbol_warnings'])
        first = d['leak_sites'][0]['stack'][0]
        self.assertEqual((first['function'], first['file']), (None, None))
        self.assertEqual(first['module'], PATHS['program'])


def main():
    args = sys.argv[1:]
    rest = []
    while args:
        a = args.pop(0)
        if a in ('--so', '--program', '--lib', '--lib2'):
            PATHS[a[2:]] = os.path.abspath(args.pop(0))
        else:
            rest.append(a)
    for key in ('so', 'program', 'lib', 'lib2'):
        if key not in PATHS:
            sys.exit('test_stacks.py: --%s PATH is required' % key)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == '__main__':
    main()
