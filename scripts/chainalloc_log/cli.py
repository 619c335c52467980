"""Command line: argument parsing and one function per subcommand."""

import argparse
import sys

from .figures import combine, summarize
from .header import LogError
from .html_report import render_html
from .json_report import leaks_object, summary_object, write_json
from .suggest import suggest
from .text_report import print_combined, print_leaks, print_suggestion, print_summary

EXIT_OK, EXIT_LEAK, EXIT_ERROR = 0, 1, 2


def load(path, timeline=False):
    try:
        return summarize(path, timeline)
    except (OSError, LogError) as e:
        sys.stderr.write('chainalloc log: %s: %s\n' % (path, e))
        sys.exit(EXIT_ERROR)


def cmd_summary(args):
    files = [load(p) for p in args.files]
    if args.json:
        write_json(summary_object(files), sys.stdout)
        return EXIT_OK
    for d in files:
        print_summary(d, sys.stdout)
    if len(files) > 1:
        print_combined(combine(files), sys.stdout)
    return EXIT_OK


def cmd_leaks(args):
    d = load(args.file)
    if args.json:
        write_json(leaks_object(d), sys.stdout)
    else:
        print_leaks(d, sys.stdout)
    return EXIT_LEAK if (args.fail_on_leak and d['leaks']) else EXIT_OK


def cmd_plot(args):
    d = load(args.file, timeline=True)
    with open(args.output, 'w', encoding='utf-8') as f:
        f.write(render_html(d))
    sys.stderr.write('wrote %s\n' % args.output)
    return EXIT_OK


def cmd_suggest(args):
    if not 1 <= args.max_classes <= 64:
        sys.stderr.write('chainalloc log: --max-classes must be 1..64\n')
        return EXIT_ERROR
    d = load(args.file)
    res = suggest(d, args.max_classes, args.coverage, args.max_size)
    if res is None:
        sys.stderr.write('chainalloc log: %s: no allocation requests to learn from\n'
                         % args.file)
        return EXIT_ERROR
    if args.json:
        write_json(res, sys.stdout)
    else:
        print_suggestion(res, args.file, sys.stdout)
    return EXIT_OK


def main(argv=None):
    ap = argparse.ArgumentParser(prog='chainalloc log',
                                 description='Read chainalloc proxy logs.')
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('summary', help='what happened, per process')
    p.add_argument('files', nargs='+', metavar='FILE')
    p.add_argument('--json', action='store_true')
    p.set_defaults(run=cmd_summary)
    p = sub.add_parser('leaks', help='blocks live at exit, by size')
    p.add_argument('file', metavar='FILE')
    p.add_argument('--fail-on-leak', action='store_true',
                   help="exit 1 if the program's own leaks are not empty")
    p.add_argument('--json', action='store_true')
    p.set_defaults(run=cmd_leaks)
    p = sub.add_parser('plot', help='self-contained HTML report')
    p.add_argument('file', metavar='FILE')
    p.add_argument('-o', '--output', required=True)
    p.set_defaults(run=cmd_plot)
    p = sub.add_parser('suggest', help='freelist size classes for this program')
    p.add_argument('file', metavar='FILE')
    p.add_argument('--max-classes', type=int, default=40)
    p.add_argument('--coverage', type=float, default=0.999,
                   help='share of requests the classes must cover (rarest large sizes '
                        'beyond it go to the backend)')
    p.add_argument('--max-size', type=int, default=32768,
                   help='largest request worth a class')
    p.add_argument('--json', action='store_true')
    p.set_defaults(run=cmd_suggest)
    args = ap.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        return EXIT_OK

