"""Command line: argument parsing and one function per subcommand.

Each subcommand reads its files, decides its exit code, and returns it with a function
that prints the result: the code is known before anything is written, so a reader that
closes the pipe early (`| head`) cannot change it."""

import argparse
import collections
import glob
import gzip
import os
import sys
import zlib

from .diff import SORT_KEYS, diff_object
from .evaluate import EvaluationError, evaluate_program, find_library
from .cliparse import Parser, add_verb, add_verbs, parse_or_usage, positive_int
from .figures import combine, public, summarize
from .header import LogError
from .html_report import render_html
from . import packed
from .humanize import human, parse_size
from .json_report import (combined_leaks, combined_sites, diff_file_object, envelope,
                          leaks_object, sites_object, suggest_file_object, write_json)
from .sites import has_stacks, leak_sites, site_table
from .suggest import add_prediction, suggest
from .symbolize import Symbolizer
from .text_report import (print_combined, print_combined_leaks, print_diff, print_evaluation,
                          print_leaks, print_sites, print_suggestion, print_summary)

EXIT_OK, EXIT_LEAK, EXIT_ERROR = 0, 1, 2
PROG = 'chainalloc log'
GLOB_CHARS = '*?['
# `diff A... -- B...`: argparse drops a `--`, so main() marks the one between the sides
# first. No argument can hold a NUL byte: the mark is never a file name.
SIDE_MARK = '\0--'
# The launcher's way to find libchainalloc.so (for `suggest --evaluate`); main() sets it.
LIBRARY_HINT = None


class Failed(Exception):
    """A file could not be read or written: one line per problem, then exit 2."""


def expand(patterns):
    """FILE arguments -> (paths, problems). Globs are expanded here too, for shells (and callers such
    as subprocess) that pass them through; a file given twice is read once."""
    paths, problems = [], []
    for pat in patterns:
        if pat == '-' or os.path.exists(pat) or not any(c in pat for c in GLOB_CHARS):
            found = [pat]
        else:
            found = sorted(glob.glob(pat))
            if not found:
                problems.append('%s: no file matches' % pat)
        paths += [p for p in found if p not in paths]
    return paths, problems


def reason(err):
    """An exception as the few words a user needs, without '[Errno 2]' and the repr."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    if isinstance(err, (gzip.BadGzipFile, EOFError, zlib.error)):
        return 'damaged compressed file (%s)' % err
    return str(err)


def load_all(patterns, timeline=False):
    """Every file's figures; every unreadable file named before giving up."""
    files = []
    paths, problems = expand(patterns)
    for path in paths:
        try:
            files.append(summarize(path, timeline))
        except (OSError, EOFError, zlib.error, LogError) as err:
            problems.append('%s: %s' % (path, reason(err)))
    if problems:
        raise Failed(*problems)
    return files


def cmd_summary(args):
    files = load_all(args.files)
    if args.json:
        obj = envelope('summary', [public(d) for d in files], combine(files))
        return EXIT_OK, lambda out: write_json(obj, out)

    def emit(out):
        if len(files) > 1:
            print_combined(combine(files), out, args.top)
        for d in files:
            print_summary(d, out, args.top)
    return EXIT_OK, emit


def add_sites(files, what):
    """Symbolizes the files' stacks (one Symbolizer: shared modules are read once) and
    adds `what` (leak_sites or sites) to each file."""
    symbolizer = Symbolizer()
    for d in files:
        d['stacks'] = has_stacks(d)
        d[what] = (leak_sites if what == 'leak_sites' else site_table)(d, symbolizer)
        d['symbol_warnings'] = d.get('_symbol_warnings', [])


def cmd_leaks(args):
    files = load_all(args.files)
    add_sites(files, 'leak_sites')
    found = any(d['leaks'] for d in files)
    code = EXIT_LEAK if (args.fail_on_leak and found) else EXIT_OK
    if args.json:
        obj = envelope('leaks', [leaks_object(d) for d in files], combined_leaks(files))
        return code, lambda out: write_json(obj, out)

    def emit(out):
        if len(files) > 1:
            print_combined_leaks(combined_leaks(files), out, args.top, args.frames)
        for d in files:
            print_leaks(d, out, args.top, args.frames)
    return code, emit


def cmd_sites(args):
    files = load_all(args.files)
    add_sites(files, 'sites')
    if args.json:
        obj = envelope('sites', [sites_object(d) for d in files], combined_sites(files))
        return EXIT_OK, lambda out: write_json(obj, out)

    def emit(out):
        if len(files) > 1:
            print_sites(combined_sites(files), out, args.top, args.frames)
        for d in files:
            print_sites(d, out, args.top, args.frames)
    return EXIT_OK, emit


def diff_sides(args):
    """The FILE arguments of `diff` as (before, after): `A B`, or `A... -- B...`."""
    files = args.files
    if SIDE_MARK in files:
        i = files.index(SIDE_MARK)
        before, after = files[:i], files[i + 1:]
        if SIDE_MARK in after:
            raise argparse.ArgumentError(None, "one '--' between the two sides, not more")
    elif len(files) == 2:
        before, after = files[:1], files[1:]
    else:
        raise argparse.ArgumentError(None, "give two logs (or quoted globs), or "
                                           "FILE... -- FILE... for several on a side")
    if not before or not after:
        raise argparse.ArgumentError(None, "a side is empty: FILE... -- FILE...")
    return before, after


def cmd_diff(args):
    before_args, after_args = diff_sides(args)
    problems = []
    sides = []
    for patterns in (before_args, after_args):
        try:
            sides.append(load_all(patterns))
        except Failed as err:
            problems += err.args
    if problems:
        raise Failed(*problems)
    before, after = sides
    symbolizer = Symbolizer()
    for d in before + after:
        d['stacks'] = has_stacks(d)
        d['sites'] = site_table(d, symbolizer)
        d['symbol_warnings'] = d.get('_symbol_warnings', [])
    obj = diff_object(before, after, SORT_KEYS[args.sort])
    if args.json:
        files = [dict(diff_file_object(d), side='before') for d in before] + \
                [dict(diff_file_object(d), side='after') for d in after]
        answer = envelope('diff', files, obj)
        return EXIT_OK, lambda out: write_json(answer, out)
    return EXIT_OK, lambda out: print_diff(obj, before, after, out, args.top, args.frames)


def cmd_pack(args):
    from . import logscan
    scanner = logscan.find_scanner()
    if scanner is None:
        raise Failed('pack needs the compiled scanner (chainalloc-logscan), which is built '
                     'and installed with chainalloc')
    paths, problems = expand(args.files)
    if args.output and len(paths) > 1 and not os.path.isdir(args.output):
        raise argparse.ArgumentError(None, '-o names one file: give a directory for several logs')
    done = []
    for path in paths:
        dest = args.output or (path + '.zst' if path != '-' else None)
        if dest is None:
            problems.append('-: say where the pack goes (-o FILE)')
            continue
        if os.path.isdir(dest):
            dest = os.path.join(dest, packed.pack_name(path))
        try:
            logscan.pack(scanner, path, dest, args.level)
            done.append((path, dest))
        except (OSError, LogError) as err:
            problems.append('%s: %s' % (path, reason(err)))
    if problems:
        raise Failed(*problems)

    def emit(out):
        for path, dest in done:
            size = os.path.getsize(path) if path != '-' else 0
            packed_size = os.path.getsize(dest)
            out.write('%s -> %s: %s%s\n' % (path, dest, human(packed_size),
                                            ' (%.1f%%)' % (100.0 * packed_size / size) if size else ''))
    return EXIT_OK, emit


def cmd_plot(args):
    if args.output is None and not args.json:
        raise argparse.ArgumentError(None, 'say where the report goes: -o report.html '
                                           '(or --json for its figures)')
    files = load_all(args.files, timeline=True)
    if args.output is not None:
        symbolizer = Symbolizer()
        for d in files:   # for the report only: plot's JSON keeps the summary's shape
            d['_leak_sites'] = leak_sites(d, symbolizer)
            d['_sites'] = site_table(d, symbolizer)
        write_report(args.output, render_html(files))
    if args.json:
        obj = envelope('plot', [public(d) for d in files], combine(files), output=args.output)
        return EXIT_OK, lambda out: write_json(obj, out)
    return EXIT_OK, lambda out: sys.stderr.write('wrote %s\n' % args.output)


def write_report(path, text):
    try:
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
    except OSError as err:
        raise Failed('cannot write %s: %s' % (path, reason(err)))


def merged_sizes(files):
    """The request sizes of all files as if one process made them (one chain serves them
    all when the launcher runs a program and its children)."""
    sizes, aligned = collections.Counter(), collections.Counter()
    for d in files:
        sizes.update(d['_sizes'])
        aligned.update(d['_aligned_over16'])
    return {'_sizes': sizes, '_aligned_over16': aligned}


def cmd_suggest(args):
    files = load_all(args.files)

    def learn(d, procs):
        return add_prediction(suggest(d, args.max_classes, args.coverage, args.max_size), procs)
    res = learn(merged_sizes(files), files)
    if res is None:
        raise Failed('%s: no allocation requests to learn from' % ', '.join(args.files))
    command = getattr(args, 'command', None)
    if command and not args.evaluate:
        raise argparse.ArgumentError(None, "a program after '--' is for --evaluate: "
                                           "suggest LOGS --evaluate -- PROGRAM [ARGS...]")
    if args.runs is not None and not args.evaluate:
        raise argparse.ArgumentError(None, '--runs is for --evaluate')
    evaluation = None
    if args.evaluate:
        if not command:
            raise argparse.ArgumentError(None, "--evaluate needs the program: "
                                               "suggest LOGS --evaluate -- PROGRAM [ARGS...]")
        try:
            evaluation = evaluate_program(command, res, args.runs or 3, find_library(LIBRARY_HINT),
                                          progress=None if args.json else _progress)
        except EvaluationError as err:
            raise Failed('--evaluate: %s' % err)
        finally:
            _progress(None)
    if args.json:
        extra = {} if evaluation is None else {'evaluation': evaluation}
        obj = envelope('suggest', [suggest_file_object(d, learn(d, [d])) for d in files], res,
                       **extra)
        return EXIT_OK, lambda out: write_json(obj, out)
    where = files[0]['file'] if len(files) == 1 else '%d files' % len(files)

    def emit(out):
        print_suggestion(res, where, out)
        if evaluation is not None:
            print_evaluation(evaluation, out)
    return EXIT_OK, emit


def _progress(text):
    """One line on a terminal's stderr, rewritten in place; None clears it."""
    if not sys.stderr.isatty():
        return
    sys.stderr.write('\r\x1b[K' + ('chainalloc log suggest --evaluate: %s' % text if text else ''))
    sys.stderr.flush()


def coverage(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError('%r is not a share in (0, 1], e.g. 0.999' % text)
    return value


def size(text):
    try:
        return parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err))


def add_files(p):
    p.add_argument('files', nargs='+', metavar='FILE',
                   help="logs; globs such as 'trace.*.log' are expanded, '-' is stdin, "
                        ".gz is read directly")


def add_top(p, default, rows='rows per list'):
    p.add_argument('--top', type=positive_int(1, 1000000), default=default, metavar='N',
                   help='%s; default %d' % (rows, default))


def add_frames(p, default, whose="each site's"):
    p.add_argument('--frames', type=positive_int(1, 1000), default=default, metavar='N',
                   help="frames shown of %s call stack; default %d" % (whose, default))


def add_json(p, what='print the figures as JSON (shape: scripts/LOG-FORMAT.md)'):
    p.add_argument('--json', action='store_true', help=what)


def build_parser():
    ap = Parser(prog=PROG, description='Read chainalloc allocation logs (scripts/LOG-FORMAT.md).'
                ' Exit codes: 0 ok, 1 leaks found with --fail-on-leak, 2 bad arguments or '
                'a file that cannot be read.')
    verbs = add_verbs(ap)
    p = add_verb(verbs, 'summary', 'what happened: across processes, then per process')
    add_files(p)
    add_top(p, 10, 'rows per list (threads, sizes, programs)')
    add_json(p)
    p.set_defaults(run=cmd_summary)

    p = add_verb(verbs, 'leaks', 'blocks still allocated at exit, by call site and by size')
    add_files(p)
    p.add_argument('--fail-on-leak', action='store_true',
                   help="exit 1 when a program's own leaks are not empty (runtime blocks "
                        "such as stdio buffers do not count)")
    add_top(p, 50)
    add_frames(p, 8, "each leak site's")
    add_json(p)
    p.set_defaults(run=cmd_leaks)

    p = add_verb(verbs, 'sites', 'call sites that allocate the most: calls, bytes, live '
                                 'at the peak, temporary, leaked')
    add_files(p)
    add_top(p, 10)
    add_frames(p, 3)
    add_json(p)
    p.set_defaults(run=cmd_sites)

    p = add_verb(verbs, 'diff', 'what grew or shrank between two runs, by call site',
                 usage='%(prog)s [-h] [--sort {allocations,bytes,leaked,peak}] [--top N] '
                       '[--frames N] [--json]\n       BEFORE AFTER | FILE... -- FILE...',
                 epilog="Sides: 'diff BEFORE AFTER' (two logs, or two quoted globs such as "
                        "'a.*.log' 'b.*.log'), or 'diff A1 A2 -- B1 B2' for several logs on a "
                        "side. Sites are matched by symbolized stack (function, file and line "
                        "of each frame; module and offset for a frame without a symbol), not "
                        "by address, which ASLR moves. Each site: allocations, bytes "
                        "allocated, live at the peak, leaked bytes and blocks, before and "
                        "after, with the change and the ratio after/before.")
    p.add_argument('files', nargs='+', metavar='FILE',
                   help="the logs before, then after: 'A B', or 'A... -- B...'; globs are "
                        "expanded, '-' is stdin, .gz is read directly")
    p.add_argument('--sort', choices=sorted(SORT_KEYS), default='bytes',
                   help='the figure whose absolute change ranks the sites; default bytes '
                        '(allocated)')
    add_top(p, 10, 'sites shown')
    add_frames(p, 3)
    add_json(p)
    p.set_defaults(run=cmd_diff)

    p = add_verb(verbs, 'pack', 'a small copy of a log to keep or send: what reports by site '
                                'need, zstd-compressed (FILE.zst)',
                 epilog='A packed log reads as its source does in every verb, except that '
                        'addresses are made up, times are kept to the millisecond and a double '
                        'free reads as a free of an unknown pointer (scripts/LOG-FORMAT.md, '
                        'Packed logs). The source is kept.')
    add_files(p)
    p.add_argument('-o', '--output', metavar='PATH',
                   help='where the pack goes (a directory for several logs); default FILE.zst')
    p.add_argument('--level', type=positive_int(1, 19), default=6, metavar='N',
                   help='zstd level, 1..19; default 6')
    p.set_defaults(run=cmd_pack)

    p = add_verb(verbs, 'plot', 'a self-contained HTML report (no network needed)')
    add_files(p)
    p.add_argument('-o', '--output', metavar='HTML', help='where to write the report')
    add_json(p, 'print the figures the report is drawn from as JSON')
    p.set_defaults(run=cmd_plot)

    p = add_verb(verbs, 'suggest', 'freelist size classes fitted to these programs',
                 usage='%(prog)s [-h] [--max-classes N] [--coverage SHARE] [--max-size SIZE] '
                       '[--json]\n       FILE... [--evaluate [--runs N] -- PROGRAM [ARGS...]]',
                 epilog='--evaluate runs PROGRAM (with ARGS) --runs times under the default '
                        'chain and as many under the suggested one, interleaved, and reports '
                        'the medians of peak RSS, wall and CPU time, requests that fell '
                        'through to glibc, and the ratios suggested/default, next to the '
                        "model's prediction. Unless RSS or time is lower by more than 3%% and "
                        'neither higher by more, it recommends keeping the default chain.')
    add_files(p)
    p.add_argument('--max-classes', type=positive_int(1, 64), default=40, metavar='N',
                   help='at most N classes (1..64); default 40')
    p.add_argument('--coverage', type=coverage, default=0.999, metavar='SHARE',
                   help='share of requests the classes must cover (the rarest large sizes '
                        'beyond it go to the next layer); default 0.999')
    p.add_argument('--max-size', type=size, default=32768, metavar='SIZE',
                   help='largest request worth a class: 4096, 64K, 1M; default 32K')
    p.add_argument('--evaluate', action='store_true',
                   help='measure the suggestion: run the program given after -- under the '
                        'default chain and under the suggested one, interleaved, and compare '
                        'peak RSS, time and requests that fell through')
    p.add_argument('--runs', type=positive_int(1, 100), metavar='N',
                   help='runs per chain with --evaluate (medians are reported); default 3')
    add_json(p)
    p.set_defaults(run=cmd_suggest)
    return ap, verbs


def emit_to_stdout(emit):
    """Prints; a reader that went away (`| head -0`) ends the output, not the exit code."""
    try:
        emit(sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def mark_sides(argv):
    """`diff A -- B`: a `--` after the verb becomes SIDE_MARK, which argparse keeps (it
    would drop a `--`), so options may still follow it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['diff']:
        argv = [SIDE_MARK if a == '--' else a for a in argv]
    return argv


def split_command(argv):
    """`suggest LOGS --evaluate -- PROGRAM ARGS...`: the words after the first `--` are the
    program's, whatever they look like. (argv, command or None)."""
    if argv[:1] == ['suggest'] and '--' in argv:
        i = argv.index('--')
        return argv[:i], argv[i + 1:]
    return argv, None


def main(argv=None, library=None, log_scanner=None):
    """`library`: the launcher's function that finds libchainalloc.so (suggest --evaluate);
    `log_scanner` its function that finds the compiled scanner (logscan.py)."""
    global LIBRARY_HINT
    if library is not None:
        LIBRARY_HINT = library
    if log_scanner is not None:
        from . import logscan
        logscan.set_hint(log_scanner)
    ap, verbs = build_parser()
    argv = mark_sides(argv)
    argv, command = split_command(argv)
    args = parse_or_usage(ap, verbs, argv)
    if command is not None:
        args.command = command
    sub = verbs.choices[args.verb]
    try:
        code, emit = args.run(args)
    except argparse.ArgumentError as err:
        sub.error(err.message)
    except Failed as err:
        for problem in err.args:
            sys.stderr.write('%s: %s\n' % (PROG, problem))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as err:   # a bug of the reader's: one line rather than a traceback
        sys.stderr.write('%s: internal error (please report it): %s: %s\n'
                         % (PROG, type(err).__name__, err))
        return EXIT_ERROR
    emit_to_stdout(emit)
    return code
