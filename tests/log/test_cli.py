"""The command lines as a user meets them: `chainalloc` (scripts/chainalloc) and `chainalloc
log` (the reader). Every verb with --help, no arguments, bad arguments, a missing file,
several files and globs, and --json checked against scripts/chainalloc_log/schema.json.
Exit codes: 0 ok, 1 leaks with --fail-on-leak, 2 usage or unreadable file; never a traceback.

Run: python3 tests/log/test_cli.py (the launcher's run/check cases need `ninja -C build`)."""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LAUNCHER = os.path.join(ROOT, 'scripts', 'chainalloc')
SCHEMA = os.path.join(ROOT, 'scripts', 'chainalloc_log', 'schema.json')
BUILT = os.path.exists(os.path.join(ROOT, 'build', 'config', 'chainalloc-config'))
sys.path.insert(0, HERE)
import gen_log  # noqa: E402

try:
    import jsonschema
except ImportError:
    sys.exit('test_cli.py: python3-jsonschema is missing (scripts/setup installs it)')

VERBS = ('summary', 'leaks', 'sites', 'plot', 'suggest')


def chainalloc(*args, cwd=None, env=None):
    p = subprocess.run([sys.executable, LAUNCHER] + [str(a) for a in args], cwd=cwd,
                       env=env, capture_output=True, text=True, timeout=120)
    assert 'Traceback' not in p.stderr and 'Errno' not in p.stderr, p.stderr
    return p


def header(pid, program, extra=''):
    return ('# chainalloc-log 1 pid=%d ppid=1 program=%s page=4096 start_unix_ns=1764060000'
            '000000000 sample=1 %slayers=proxy,freelist,system chain=proxy > freelist > '
            'system\n' % (pid, program, extra))


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='chainalloc-cli-')
        with open(SCHEMA) as f:
            cls.validator = jsonschema.Draft202012Validator(json.load(f))
        for pid in (101, 102):
            w = gen_log.LogWriter(cls.path('run.%d.log' % pid), pid=pid, program='prog')
            kept = [w.malloc(pid, 24 * k) for k in range(1, 20)]
            for p in kept[2:]:
                w.free(pid, p)
            w.close()
        # Call stacks in a module whose file is gone: sites by address, and a note.
        with open(cls.path('stacks.log'), 'w') as f:
            f.write(header(400, 'gone', 'events=all stacks=24 '))
            f.write('#M 400000 400000 500000 - /nonexistent/gone\n')
            f.write('#S 1 401234 402345\n#S 2 401111 402345\n')
            f.write('100 400 m 64 1000 1 1\n200 400 m 64 2000 1 1\n300 400 f 1000\n'
                    '400 400 m 5000 3000 1 2\n')
            f.write('# end t_ns=500 events=4 malloc=3 calloc=0 realloc=0 aligned=0 free=1 '
                    'failed=0 live_blocks=2\n')
        # The same two sites in runs loaded at other addresses (ASLR): `diff` matches them by
        # module and offset. Site 1 (offset 0x1234) allocates 1, 3 and 2 blocks of 64 bytes
        # in runs a, b and c, never freed; site 2 (0x1111) one block of 5000 in each.
        for name, base, n in (('a', 0x400000, 1), ('b', 0x7f0000, 3), ('c', 0x550000, 2)):
            with open(cls.path('diff-%s.log' % name), 'w') as f:
                f.write(header(600 + n, 'gone', 'events=all stacks=24 '))
                f.write('#M %x %x %x - /nonexistent/gone\n' % (base, base, base + 0x100000))
                f.write('#S 1 %x %x\n#S 2 %x %x\n' % (base + 0x1234, base + 0x2345,
                                                     base + 0x1111, base + 0x2345))
                for k in range(n):
                    f.write('%d 600 m 64 %x 1 1\n' % (100 + k, 0x1000 + 0x100 * k))
                f.write('200 600 m 5000 9000 1 2\n')
                f.write('# end t_ns=900 events=%d malloc=%d calloc=0 realloc=0 aligned=0 '
                        'free=0 failed=0 live_blocks=%d\n' % (n + 1, n + 1, n + 1))
        # A stack table that overflowed: the footer counts the allocations left without one.
        with open(cls.path('stacks-dropped.log'), 'w') as f:
            f.write(header(700, 'busy', 'events=all stacks=24 '))
            f.write('#M 400000 400000 500000 - /nonexistent/gone\n#S 1 401234\n')
            f.write('100 700 m 64 1000 1 1\n200 700 m 64 2000 1\n')
            f.write('# end t_ns=300 events=2 malloc=2 calloc=0 realloc=0 aligned=0 free=0 '
                    'failed=0 live_blocks=2 stacks_dropped=1\n')
        with open(cls.path('summary-only.log'), 'w') as f:
            f.write(header(300, 'daemon', 'events=summary '))
            f.write('# end t_ns=5000 events=0 malloc=10 calloc=0 realloc=0 aligned=0 '
                    'free=8 failed=0 live_blocks=2\n')
        with open(cls.path('argv.log'), 'w') as f:
            f.write(header(400, 'git', 'argv=git,pack-objects,--all,a%2Cb '))
            f.write('10 400 m 32 1000 1\n# end t_ns=20 events=1 malloc=1 calloc=0 realloc=0 '
                    'aligned=0 free=0 failed=0 live_blocks=1\n')

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def log(self, *args, expect=0):
        p = chainalloc('log', *args)
        self.assertEqual(p.returncode, expect, (args, p.stdout[-500:], p.stderr))
        return p

    def one_line_error(self, p, pattern):
        """Usage errors: exit 2, one line on stderr, nothing on stdout."""
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stdout, '')
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertRegex(p.stderr, pattern)

    def valid(self, text, verb, nfiles):
        obj = json.loads(text)
        errors = [e.message for e in self.validator.iter_errors(obj)]
        self.assertEqual(errors, [])
        self.assertEqual((obj['schema'], obj['verb'], len(obj['files'])),
                         ('chainalloc-log/1', verb, nfiles))
        return obj

    # -- chainalloc ---------------------------------------------------------------------
    def test_no_arguments_shows_the_verbs(self):
        for args in ([], ['log']):
            p = chainalloc(*args)
            self.assertEqual(p.returncode, 2)
            self.assertTrue(p.stderr.startswith('usage: chainalloc'), p.stderr)
            self.assertNotIn('required', p.stderr)
        self.assertRegex(chainalloc().stderr, r'(?s)run .*check .*presets .*log ')
        self.assertRegex(chainalloc('log').stderr,
                         r'(?s)summary .*leaks .*sites .*diff .*plot .*suggest ')

    def test_version(self):
        with open(os.path.join(ROOT, 'meson.build')) as f:
            want = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
        p = chainalloc('--version')
        self.assertEqual((p.returncode, p.stdout), (0, 'chainalloc %s\n' % want))

    def test_verb_help(self):
        for verb in ('run', 'check', 'presets'):
            p = chainalloc(verb, '--help')
            self.assertEqual(p.returncode, 0)
            self.assertTrue(p.stdout.startswith('usage: chainalloc %s' % verb), p.stdout)
        self.one_line_error(chainalloc('bogus'), r"invalid choice: 'bogus'")
        self.one_line_error(chainalloc('presets', 'x'), r'^chainalloc presets: ')
        self.one_line_error(chainalloc('run'), r'^chainalloc run: no program given')

    def test_check_arguments(self):
        self.one_line_error(chainalloc('check'), r"^chainalloc check: no chain given")
        self.one_line_error(chainalloc('check', 'freelist', '>', 'system'),
                            r"quote it: chainalloc check 'freelist > system'")

    @unittest.skipUnless(BUILT, 'needs build/config/chainalloc-config (ninja -C build)')
    def test_check_unquoted_chain(self):
        # `chainalloc check freelist > system`: the shell passes only `freelist`.
        p = chainalloc('check', 'freelist')
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("did you quote the chain? e.g. chainalloc check 'freelist > system'",
                      p.stderr)
        p = chainalloc('check', 'freelist(max=512M) > system')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(chainalloc('presets').returncode, 0)

    @unittest.skipUnless(BUILT, 'needs the build tree (ninja -C build)')
    def test_run_validates_before_starting(self):
        marker = self.path('started')
        for opts in (['--chain', 'fre > system'], ['--strict', '--chain', 'fre > system'],
                     ['--preset', 'nope'], ['--strict', '--log', 'a b']):
            p = chainalloc('run', *opts, '--', 'touch', marker)
            self.one_line_error(p, r'^chainalloc run: CHAINALLOC_\w+: .* touch not started$')
            self.assertFalse(os.path.exists(marker), opts)
        env = dict(os.environ, CHAINALLOC_STATS='maybe')   # the environment counts too
        self.one_line_error(chainalloc('run', '--', 'touch', marker, env=env),
                            r'CHAINALLOC_STATS')
        p = chainalloc('run', '--', 'no-such-program-here')
        self.assertEqual(p.returncode, 127, p.stderr)

    @unittest.skipUnless(BUILT, 'needs the build tree (ninja -C build)')
    def test_run_log_path_is_absolute(self):
        work = tempfile.mkdtemp(dir=self.dir)
        # The child runs after `cd /`: its log must still land where `run` started.
        p = chainalloc('run', '--log', 'cd.%e.%p.log', '--', 'sh', '-c', 'cd / && ls >/dev/null',
                       cwd=work)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(any(n.startswith('cd.ls.') for n in os.listdir(work)), os.listdir(work))

    @unittest.skipUnless(BUILT, 'needs the build tree (ninja -C build)')
    def test_run_pack(self):
        """--pack: the run's logs (a fork's too) become packs the reader reads, the program's
        exit status and stdout stay its own, and a log's privacy is kept."""
        work = tempfile.mkdtemp(dir=self.dir)
        p = chainalloc('run', '--log', 'p.%p.log', '--pack', '--', 'sh', '-c',
                       'ls / | cat >/dev/null; echo out; exit 3', cwd=work)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stdout, 'out\n')
        names = sorted(os.listdir(work))
        self.assertGreaterEqual(len(names), 3, names)   # sh, ls, cat (a fork that execs: .1)
        self.assertTrue(all(re.fullmatch(r'p\.\d+\.log(\.\d+)?\.zst', n) for n in names), names)
        for n in names:
            self.assertIn(n, p.stderr)
            self.assertEqual(os.stat(os.path.join(work, n)).st_mode & 0o777, 0o600)
        d = json.loads(self.log('summary', os.path.join(work, 'p.*.zst'), '--json').stdout)
        self.assertEqual(len(d['files']), len(names))
        self.assertTrue(all(f['version'] == 3 and f['events'] > 0 for f in d['files']))
        self.one_line_error(chainalloc('run', '--pack', '--', 'true'), r'--pack packs the log')

    # -- chainalloc log -----------------------------------------------------------------
    def test_every_verb(self):
        glob = self.path('run.*.log')            # quoted: the reader expands it
        for verb in VERBS:
            with self.subTest(verb=verb):
                self.assertTrue(self.log(verb, '--help').stdout.startswith(
                    'usage: chainalloc log %s' % verb))
                self.one_line_error(chainalloc('log', verb), r'required: FILE')
                self.one_line_error(chainalloc('log', verb, glob, '--bogus'),
                                    r'unrecognized arguments: --bogus')
                p = chainalloc('log', verb, self.path('missing.log'), '--json')
                self.one_line_error(p, r'missing\.log: No such file or directory$')
                self.one_line_error(chainalloc('log', verb, self.path('none.*.log'), '--json'),
                                    r'no file matches')
                extra = ['-o', self.path(verb + '.html')] if verb == 'plot' else []
                self.assertTrue(self.log(verb, glob, *extra).stderr.count('Traceback') == 0)
                self.valid(self.log(verb, glob, '--json', *extra).stdout, verb, 2)
                self.valid(self.log(verb, self.path('run.101.log'), self.path('run.102.log'),
                                    self.path('run.101.log'), '--json').stdout, verb, 2)
                self.valid(self.log(verb, self.path('run.101.log'), '--json').stdout, verb, 1)

    def test_stacks_in_a_missing_module(self):
        path = self.path('stacks.log')
        leaks = self.valid(self.log('leaks', path, '--json').stdout, 'leaks', 1)['files'][0]
        self.assertEqual([(g['count'], g['bytes']) for g in leaks['leak_sites']],
                         [(1, 5000), (1, 64)])
        frame = leaks['leak_sites'][0]['stack'][0]
        self.assertEqual((frame['function'], frame['module'], frame['address']),
                         (None, '/nonexistent/gone', '0x401111'))
        self.assertEqual(leaks['symbol_warnings'],
                         ['/nonexistent/gone: missing; its frames are shown as addresses'])
        sites = self.valid(self.log('sites', path, '--json').stdout, 'sites', 1)['files'][0]
        self.assertEqual(sorted((r['allocations'], r['bytes'], r['temporary_blocks'])
                                for r in sites['sites']), [(1, 5000, 0), (2, 128, 1)])
        text = self.log('leaks', path).stdout
        self.assertIn('program leaks by call site: 2 sites', text)
        self.assertIn('note: /nonexistent/gone: missing', text)

    def test_diff(self):
        a, b, c = (self.path('diff-%s.log' % n) for n in 'abc')
        self.assertTrue(self.log('diff', '--help').stdout.startswith('usage: chainalloc log diff'))
        self.one_line_error(chainalloc('log', 'diff'), r'required: FILE')
        self.one_line_error(chainalloc('log', 'diff', a), r'give two logs')
        self.one_line_error(chainalloc('log', 'diff', a, b, c), r'FILE\.\.\. -- FILE\.\.\.')
        self.one_line_error(chainalloc('log', 'diff', a, '--'), r'a side is empty')
        self.one_line_error(chainalloc('log', 'diff', a, '--', b, '--', c), r"one '--'")
        self.one_line_error(chainalloc('log', 'diff', a, self.path('missing.log')),
                            r'missing\.log: No such file or directory$')
        self.one_line_error(chainalloc('log', 'diff', a, b, '--sort', 'x'), r'--sort')
        obj = self.valid(self.log('diff', a, b, '--json').stdout, 'diff', 2)
        self.assertEqual([d['side'] for d in obj['files']], ['before', 'after'])
        sites = obj['combined']['sites']
        # Matched across base addresses: two sites, not four; the one that grew first.
        self.assertEqual([(r['site'], r['status']) for r in sites],
                         [('gone+0x1234', 'changed'), ('gone+0x1111', 'same')])
        self.assertEqual(sites[0]['allocations'], {'before': 1, 'after': 3, 'delta': 2,
                                                   'ratio': 3.0})
        self.assertEqual((sites[0]['bytes']['delta'], sites[0]['leaked_bytes']['delta'],
                          sites[0]['leaked_blocks']['delta'], sites[0]['peak_bytes']['delta']),
                         (128, 128, 2, 128))
        self.assertEqual([f['offset'] for f in sites[0]['stack']], ['0x1234', '0x2345'])
        self.assertEqual(obj['combined']['totals']['bytes'],
                         {'before': 5064, 'after': 5192, 'delta': 128,
                          'ratio': round(5192 / 5064, 4)})
        # Several logs a side, with globs: before a, after b and c together.
        glob = self.path('diff-[bc].log')
        for args in ((a, '--', b, c), (a, glob), (a, '--', glob, '--json')):
            obj = self.valid(self.log('diff', *args, '--json').stdout, 'diff', 3)
            self.assertEqual((obj['combined']['before']['processes'],
                              obj['combined']['after']['processes']), (1, 2))
            self.assertEqual([(r['site'], r['allocations']['after'], r['bytes']['delta'])
                              for r in obj['combined']['sites']],
                             [('gone+0x1111', 2, 5000), ('gone+0x1234', 5, 256)])
        # A site only on one side; --sort picks the figure that ranks the sites.
        with open(self.path('diff-d.log'), 'w') as f:
            f.write(header(700, 'gone', 'events=all stacks=24 '))
            f.write('#M 400000 400000 500000 - /nonexistent/gone\n#S 1 401111 402345\n')
            f.write('10 700 m 100 1000 1 1\n20 700 f 1000\n')
        obj = self.valid(self.log('diff', a, self.path('diff-d.log'), '--sort', 'leaked',
                                  '--json').stdout, 'diff', 2)['combined']
        self.assertEqual(obj['sort'], 'leaked_bytes')
        self.assertEqual([(r['site'], r['status'], r['leaked_bytes']['delta'], r['bytes']['ratio'])
                          for r in obj['sites']],
                         [('gone+0x1111', 'changed', -5000, 0.02),
                          ('gone+0x1234', 'gone', -64, 0.0)])
        out = self.log('diff', a, b, '--frames', '2').stdout
        self.assertRegex(out, r'\nbytes allocated +4\.9 KiB +5\.1 KiB +\+128 B +x1\.03\n')
        self.assertRegex(out, r'\n +\+128 B +x3\.00  gone\+0x1234\n')
        self.assertIn('1 of 2 sites', out)
        self.assertEqual(out.count('note: /nonexistent/gone: missing'), 1)
        # Logs without stacks: the totals only.
        out = self.log('diff', self.path('run.101.log'), self.path('run.102.log')).stdout
        self.assertIn('no call stacks in these logs', out)

    def test_fail_on_leak(self):
        self.log('leaks', self.path('run.101.log'), '--fail-on-leak', expect=1)
        self.assertEqual(json.loads(self.log('leaks', self.path('run.101.log'),
                                             '--json').stdout)['combined']['leaked_blocks'], 2)

    def test_fail_on_leak_closed_pipe(self):
        # Enough leaked sizes that the output overflows the pipe after `head -0` left.
        w = gen_log.LogWriter(self.path('many.log'), pid=500)
        for k in range(1, 3000):
            w.malloc(500, k)
        w.close()
        cmd = ('%s %s log leaks --top 100000 --fail-on-leak %s | head -0; exit ${PIPESTATUS[0]}'
               % (sys.executable, LAUNCHER, self.path('many.log')))
        p = subprocess.run(['bash', '-c', cmd], capture_output=True, text=True, timeout=120)
        self.assertEqual((p.returncode, p.stderr), (1, ''))

    def test_bad_values(self):
        f = self.path('run.101.log')
        self.one_line_error(chainalloc('log', 'suggest', f, '--max-size', '6Q'), r'bad size')
        self.one_line_error(chainalloc('log', 'suggest', f, '--max-classes', '0'), r'1\.\.64')
        self.one_line_error(chainalloc('log', 'summary', f, '--top', 'x'), r'--top')
        self.one_line_error(chainalloc('log', 'plot', f), r'-o report\.html')
        self.one_line_error(chainalloc('log', 'plot', f, '-o', self.path('no/dir/r.html')),
                            r'cannot write .*No such file or directory')
        for size in ('64K', '1M', '4096'):
            self.log('suggest', f, '--max-size', size)

    def test_summary_text(self):
        out = self.log('summary', self.path('run.*.log'), self.path('argv.log'),
                       '--top', '1').stdout
        self.assertTrue(out.startswith('== 3 processes, all complete\n'), out)
        self.assertLess(out.index('== 3 processes'), out.index('run.101.log'))
        self.assertIn('... 1 more programs', out)
        self.assertIn('git pack-objects --all a,b (pid 400', out)
        self.assertNotRegex(out, r'\n0 proxy ')
        self.assertNotIn('forgotten', out)

    def test_progress(self):
        """A read shows its progress on stderr (on a terminal after a second; `always` here),
        one line rewritten in place and cleared at the end; stdout is the report alone."""
        env = dict(os.environ, CHAINALLOC_LOG_PROGRESS='always')
        p = chainalloc('log', 'summary', self.path('run.101.log'), env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        # (text mode reads each \r as \n)
        self.assertRegex(p.stderr, r'^\nreading run\.101\.log: +\d+% \(\d+ of \d+ MB, \d+ MB/s\)\x1b\[K')
        self.assertTrue(p.stderr.endswith('\n\x1b[K'), repr(p.stderr))
        self.assertNotIn('reading', p.stdout)
        quiet = chainalloc('log', 'summary', self.path('run.101.log'),
                           env=dict(os.environ, CHAINALLOC_LOG_PROGRESS='never'))
        self.assertEqual(quiet.stderr, '')
        self.assertEqual(quiet.stdout, p.stdout)

    def test_stacks_dropped(self):
        """A full stack table is said: the footer's stacks_dropped becomes a warning."""
        out = self.log('summary', self.path('stacks-dropped.log')).stdout
        self.assertIn('1 allocations went without a call stack', out)
        d = self.valid(self.log('summary', self.path('stacks-dropped.log'), '--json').stdout,
                       'summary', 1)['files'][0]
        self.assertTrue(any('without a call stack' in w for w in d['warnings']), d['warnings'])

    def test_summary_only_log(self):
        p = self.log('summary', self.path('summary-only.log'))
        self.assertNotIn('lost', p.stdout)
        self.assertNotIn('{', p.stdout)
        self.assertIn('summary-only log', p.stdout)
        d = self.valid(self.log('summary', self.path('summary-only.log'), '--json').stdout,
                       'summary', 1)['files'][0]
        self.assertEqual((d['warnings'], d['calls']['malloc'], d['leaked_blocks']), ([], 10, 2))

    def test_plot_self_contained(self):
        out = self.path('r.html')
        self.log('plot', self.path('run.*.log'), '-o', out)
        with open(out) as f:
            page = f.read()
        for external in ('http://', 'https://', '<script', '<link', '@import', 'url('):
            self.assertNotIn(external, page)
        self.assertIn('The run: 2 processes', page)
        self.assertGreater(page.count('<title>'), 10)     # tooltips on the charts' marks


if __name__ == '__main__':
    unittest.main(verbosity=2)
