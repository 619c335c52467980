#!/usr/bin/env python3
"""Fuzzer for the log reader (scripts/chainalloc_log): any bytes must give a report or a clean
error (the reader's message and exit code 2), never a Python traceback.

Why a fuzzer of our own: libFuzzer cannot drive Python without atheris, which Debian 12 does
not package. This is a mutation fuzzer in the libFuzzer style, in-process, without coverage
feedback: it mutates the committed seed logs (bit flips, byte inserts/deletes, interesting
numbers, token swaps, line duplication/deletion, splices, truncation, NUL tails, gzip) and
keeps an input as a new parent when it gives an outcome not seen before (a new set of
warnings, anomalies or error message). Each input is written to a file and run through the
reader's real entry point, cli.main, for summary, leaks, suggest (text and --json) and,
for some, plot: exit 0/1, or exit 2 with a message, is fine; any exception is a finding,
saved with its traceback in the findings directory.

    fuzz_log_reader.py [--seconds N] [--seed S] [--out DIR] [--corpus DIR]
    fuzz_log_reader.py FILE...        # run these inputs once (reproduce a finding)
    fuzz_log_reader.py --make-seeds   # rewrite corpus/log_reader from tests/log/gen_log.py
"""
import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'log'))

import chainalloc_log as reader  # noqa: E402
from chainalloc_log import cli  # noqa: E402
from chainalloc_log.html_report import render_html  # noqa: E402
from chainalloc_log.json_report import (combined_leaks, combined_sites,  # noqa: E402
                                        envelope, leaks_object, sites_object, write_json)
from chainalloc_log.text_report import (print_combined, print_combined_leaks,  # noqa: E402
                                        print_diff, print_leaks, print_sites,
                                        print_suggestion, print_summary)
from chainalloc_log.diff import diff_object  # noqa: E402

SEEDS = os.path.join(HERE, 'corpus', 'log_reader')
MAX_LEN = 16384  # bytes; small inputs run fast and still hold every kind of line

# ---- running one input ----------------------------------------------------------------------

# One of these runs through the real entry point (cli.main, argparse and exit codes included)
# for every CLI_EVERY-th input; every input also goes through the report code directly, which
# is twenty times faster than a pass through argparse.
SAME = object()   # the input again: `diff` compares it with itself
COMMANDS = [['summary'], ['summary', '--json'], ['leaks', '--fail-on-leak'], ['leaks', '--json'],
            ['suggest'], ['suggest', '--json', '--max-classes', '3'], ['plot', '-o', None],
            ['diff', SAME, '--json'], ['diff', '--', SAME, '--sort', 'leaked']]
CLI_EVERY = 4


TIMEOUT = 10  # seconds for one input; the inputs are at most MAX_LEN bytes


class Finding(Exception):
    pass


class Timeout(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` can swallow it."""


def on_alarm(signum, frame):
    raise Timeout()


def run_cli(args, path, html_path):
    args = [html_path if a is None else path if a is SAME else a for a in args]
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(args[:1] + [path] + args[1:])
    except SystemExit as e:
        code = e.code
    except Exception:
        raise Finding('chainalloc_log %s: traceback\n%s' % (' '.join(args), traceback.format_exc()))
    if code not in (0, 1, 2) or (code == 1 and '--fail-on-leak' not in args):
        raise Finding('chainalloc_log %s: exit code %r' % (' '.join(args), code))
    if code == 2 and not err.getvalue().startswith('chainalloc log: '):
        raise Finding('chainalloc_log %s: exit 2 without a message' % ' '.join(args))


def run_reports(path, with_html):
    """Parse, figures, text and JSON reports, leaks, suggest, as the subcommands do them.
    Returns an outcome signature (for novelty); the reader's own errors are part of it."""
    try:
        d = reader.summarize(path, timeline=with_html)
    except (OSError, reader.LogError) as e:   # what cli.load turns into exit code 2
        return ('error', re.sub(r"\d+|'[^']*'", '', str(e))[:40])
    sink = io.StringIO()
    write_json(envelope('summary', [cli.public(d)], reader.combine([d])), sink)
    print_summary(d, sink)
    print_combined(reader.combine([d, d]), sink)
    cli.add_sites([d], 'leak_sites')       # call stacks symbolized, as `leaks` does
    write_json(envelope('leaks', [leaks_object(d)], combined_leaks([d])), sink)
    print_leaks(d, sink)
    print_combined_leaks(combined_leaks([d, d]), sink)
    cli.add_sites([d], 'sites')
    write_json(envelope('sites', [sites_object(d)], combined_sites([d])), sink)
    print_sites(d, sink)
    print_sites(combined_sites([d, d]), sink)
    diff = diff_object([d], [d, d])          # `diff`: the log against itself, twice
    write_json(diff, sink)
    print_diff(diff, [d], [d, d], sink)
    d['_sites'] = d['sites']                # the flame graph's rows, as `plot` sets them
    res = reader.suggest(d, 3, 0.999, 32768)
    if res is not None:
        write_json(res, sink)
        print_suggestion(res, path, sink)
    if with_html:
        render_html([d, d])
    # What kind of log the reader saw: a cheap stand-in for coverage feedback.
    return (d['complete'], d['has_footer'], d['cut_line'], d['estimated'], d['events'] > 0,
            bool(d['leaks']), bool(d['runtime_leaks']), bool(d['malformed_lines']),
            bool(d['leak_sites']), bool(d['sites']), bool(d['symbol_warnings']),
            d['calls']['failed'] > 0, res is None,
            tuple(sorted({a['kind'] for a in d['anomalies']})),
            tuple(sorted({re.sub(r'[\d{}]+.*', '', w) for w in d['warnings']})))


def run_reader(path, html_path, n):
    """Input number n: the reports in-process, and every CLI_EVERY-th one subcommand via cli."""
    signal.alarm(TIMEOUT)
    try:
        try:
            sig = run_reports(path, with_html=n % 8 == 0)
        except Exception:
            raise Finding('reports: traceback\n%s' % traceback.format_exc())
        if n % CLI_EVERY == 0:
            run_cli(COMMANDS[(n // CLI_EVERY) % len(COMMANDS)], path, html_path)
    except Timeout:
        raise Finding('timeout: more than %d s on one input\n%s'
                      % (TIMEOUT, traceback.format_exc(limit=-5)))
    finally:
        signal.alarm(0)
    return sig


# ---- mutations ------------------------------------------------------------------------------

INTERESTING = [b'0', b'1', b'-1', b'-', b'16', b'4096', b'65536', b'2147483648',
               b'9223372036854775807', b'9223372036854775808', b'18446744073709551616',
               b'99999999999999999999999999', b'0x10', b'1e9', b'1_0', b'', b'nan', b'\xd9\xa0']
TOKENS = [b'm', b'c', b'r', b'a', b'f', b'x', b'#', b'# end', b'# chainalloc-log 1', b'-', b'0',
          b' ', b'\t', b'\n', b'\r\n', b'\0', b'=', b'sample=', b'layers=', b'pid=',
          b'chain=', b't_ns=', b'events=', b'live_bytes=', b'malloc=']


def mutate(data, corpus, rng):
    for _ in range(rng.randint(1, 6)):
        data = rng.choice(MUTATORS)(data, corpus, rng)
    if len(data) > MAX_LEN:
        data = data[:MAX_LEN]
    return data


def _pos(data, rng):
    return rng.randint(0, len(data))


def bit_flip(d, c, rng):
    if not d:
        return d
    i = rng.randrange(len(d))
    return d[:i] + bytes([d[i] ^ (1 << rng.randrange(8))]) + d[i + 1:]


def byte_set(d, c, rng):
    if not d:
        return d
    i = rng.randrange(len(d))
    return d[:i] + bytes([rng.choice(b'\0\n #-09fmx\xff\x1f\x8b')]) + d[i + 1:]


def byte_insert(d, c, rng):
    i = _pos(d, rng)
    return d[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))) + d[i:]


def byte_delete(d, c, rng):
    i = _pos(d, rng)
    return d[:i] + d[i + rng.randint(1, 16):]


def number(d, c, rng):
    """Replaces one run of digits (sizes, pointers, tids, times, footer totals)."""
    runs = list(re.finditer(rb'\d+', d))
    if not runs:
        return d
    m = rng.choice(runs)
    return d[:m.start()] + rng.choice(INTERESTING) + d[m.end():]


def token(d, c, rng):
    """Replaces or inserts one whitespace-separated token."""
    toks = list(re.finditer(rb'[^ \n]+', d))
    new = rng.choice(TOKENS)
    if toks and rng.random() < 0.7:
        m = rng.choice(toks)
        return d[:m.start()] + new + d[m.end():]
    i = _pos(d, rng)
    return d[:i] + new + d[i:]


def lines_op(d, c, rng):
    """Duplicates, deletes or swaps whole lines (double frees, lost frees, reordering)."""
    lines = d.split(b'\n')
    if len(lines) < 2:
        return d
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    k = rng.randrange(3)
    if k == 0:
        lines.insert(j, lines[i])
    elif k == 1:
        del lines[i]
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return b'\n'.join(lines)


def splice(d, c, rng):
    other = rng.choice(c)
    if rng.random() < 0.5:  # by lines: the header of one log, the events of another
        a, b = d.split(b'\n'), other.split(b'\n')
        return b'\n'.join(a[:rng.randint(0, len(a))] + b[rng.randint(0, len(b)):])
    return d[:_pos(d, rng)] + other[_pos(other, rng):]


def truncate(d, c, rng):
    return d[:_pos(d, rng)]


def nul_tail(d, c, rng):
    """A log whose process died: the rest of its mapped window is NUL bytes."""
    return d[:_pos(d, rng)] + b'\0' * rng.choice((1, 7, 4096))


def gzipped(d, c, rng):
    """The reader opens gzip logs by their magic: whole, cut short or corrupted."""
    z = gzip.compress(d)
    k = rng.randrange(3)
    if k == 1:
        z = z[:rng.randint(2, len(z))]
    elif k == 2:
        z = bit_flip(z[:10], c, rng) + bit_flip(z[10:], c, rng)
    return z


MUTATORS = [bit_flip, byte_set, byte_insert, byte_delete, number, number, token, token,
            lines_op, lines_op, splice, truncate, nul_tail, gzipped]


# ---- seeds ----------------------------------------------------------------------------------

def write_stacks_seed(path):
    """A log with call stacks (LOG-FORMAT.md, Call stacks) in a module that is not there."""
    with open(path, 'w') as f:
        f.write('# chainalloc-log 1 pid=4242 ppid=4200 program=prog page=4096 start_unix_ns='
                '1764060000000000000 sample=1 events=all stacks=24 layers=proxy,freelist,system '
                'chain=proxy(log=x.log) > freelist > system\n'
                '#M 400000 400000 500000 - /nonexistent/prog\n'
                '#M 7f0000000000 7f0000001000 7f0000100000 0123456789abcdef /nonexistent/lib%20x.so\n'
                '#S 1 401234 7f0000001234 402345\n#S 2 401111\n'
                '100 4242 m 64 10040 1 1\n200 4242 c 5000 10080 1 2\n300 4242 f 10040\n'
                '400 4242 a 64 128 100c0 1 1\n500 4242 r 100c0 256 10100 1 2\n'
                '# end t_ns=600 events=5 malloc=1 calloc=1 realloc=1 aligned=1 free=1 failed=0 '
                'live_blocks=2\n')


def make_seeds():
    """Short real logs, one per feature of the format, written with the tests' generator."""
    import gen_log
    os.makedirs(SEEDS, exist_ok=True)

    def log(name, **kw):
        return gen_log.LogWriter(os.path.join(SEEDS, name), **kw)

    w = log('random.log'); gen_log.random_workload(w, 60, seed=1); w.close()
    w = log('leaky.log'); gen_log.random_workload(w, 60, seed=2, leak_every=3); w.close()
    w = log('sampled.log', sample=4); gen_log.random_workload(w, 40, seed=3); w.close()
    w = log('no_footer.log'); gen_log.random_workload(w, 30, seed=4); w.close(footer=False)
    w = log('cut_line.log'); gen_log.random_workload(w, 30, seed=5)
    w.close(footer=False, cut_line='100 4242 m 1')
    w = log('anomalies.log', layers=('proxy', 'system'))
    p = w.malloc(1, 32, layer=1); w.free(1, p); w.free(1, p); w.free(1, 0xdead)
    w._event(1, 'r beef 64 10100 1')  # a realloc of a pointer never seen: the writer refuses it
    w.malloc(1, 16, ptr=0x10100); w.comment('a comment'); w.close()
    w = log('calls.log')
    a = w.aligned(7, 4096, 100); b = w.calloc(7, 48); w.realloc(7, b, 0)
    w.malloc(7, 1 << 40, fail=True); w.aligned(7, 64, 1 << 40, fail=True)
    c = w.realloc(7, 0, 20); w.realloc(7, c, 1 << 40, fail=True); w.free(7, a); w.close()
    w = log('empty_events.log'); w.close()
    write_stacks_seed(os.path.join(SEEDS, 'stacks.log'))
    with open(os.path.join(SEEDS, 'random.log'), 'rb') as f:
        data = f.read()
    with open(os.path.join(SEEDS, 'random.log.gz'), 'wb') as f:
        f.write(gzip.compress(data))
    with open(os.path.join(SEEDS, 'not_a_log.txt'), 'wb') as f:
        f.write(b'hello\n')


# ---- driver ---------------------------------------------------------------------------------

def save(out_dir, data, message):
    os.makedirs(out_dir, exist_ok=True)
    name = 'crash-' + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(out_dir, name), 'wb') as f:
        f.write(data)
    with open(os.path.join(out_dir, name + '.txt'), 'w') as f:
        f.write(message)
    return os.path.join(out_dir, name)


def where(message):
    """The last frame of a traceback: findings at the same place count once."""
    frames = re.findall(r'File "([^"]+)", line (\d+)', message)
    last = frames[-1] if frames else ('?', '?')
    return (os.path.basename(last[0]), last[1], message.strip().splitlines()[-1].split(':')[0])


def fuzz(args):
    corpus = []
    for d in args.corpus:
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), 'rb') as f:
                corpus.append(f.read()[:MAX_LEN])
    if not corpus:
        sys.exit('fuzz_log_reader: no seeds in %s' % args.corpus)
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix='fuzz_log_reader.', dir='/dev/shm' if os.path.isdir('/dev/shm') else None)
    path, html = os.path.join(work, 'input.log'), os.path.join(work, 'report.html')
    seen, findings = set(), {}
    execs = 0
    start = time.monotonic()
    deadline = start + args.seconds
    queue = list(corpus)  # the seeds run first, unmutated
    try:
        while queue or time.monotonic() < deadline:
            data = queue.pop() if queue else mutate(rng.choice(corpus), corpus, rng)
            with open(path, 'wb') as f:
                f.write(data)
            try:
                sig = run_reader(path, html, execs)
            except Finding as e:
                key = where(str(e))
                if key not in findings:
                    findings[key] = save(args.out, data, str(e))
                    print('FINDING %s:%s %s -> %s' % (key + (findings[key],)), flush=True)
                    print(str(e), flush=True)
                continue
            finally:
                execs += 1
            if sig not in seen:
                seen.add(sig)
                corpus.append(data)
    finally:
        for p in (path, html):
            if os.path.exists(p):
                os.unlink(p)
        os.rmdir(work)
    secs = time.monotonic() - start
    print('fuzz_log_reader: %d executions in %.1f s (%.0f exec/s), %d distinct outcomes, '
          'corpus %d, findings %d' % (execs, secs, execs / secs, len(seen), len(corpus),
                                      len(findings)))
    return 1 if findings else 0


def replay(files):
    """Each file through the reports and every subcommand."""
    bad = 0
    for name in files:
        try:
            sig = run_reader(name, os.devnull, 0)
            for k in range(len(COMMANDS)):
                run_cli(COMMANDS[k], name, os.devnull)
            print('%s: ok %s' % (name, sig))
        except Finding as e:
            print('%s: %s' % (name, e))
            bad += 1
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('files', nargs='*', help='inputs to run once instead of fuzzing')
    ap.add_argument('--seconds', type=float, default=30)
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--corpus', action='append', default=None,
                    help='seed directory (repeatable; default: the committed seeds)')
    ap.add_argument('--out', default=os.path.join(tempfile.gettempdir(), 'chainalloc-fuzz',
                                                  'log_reader'),
                    help='where findings are saved (scratch, not in git)')
    ap.add_argument('--make-seeds', action='store_true')
    args = ap.parse_args()
    signal.signal(signal.SIGALRM, on_alarm)
    if args.make_seeds:
        make_seeds()
        return 0
    if args.files:
        return replay(args.files)
    args.corpus = args.corpus or [SEEDS]
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), 'little')
    print('fuzz_log_reader: seed %d, %d s' % (args.seed, args.seconds), flush=True)
    return fuzz(args)


if __name__ == '__main__':
    sys.exit(main())
