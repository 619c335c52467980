"""argparse as both commands use it (`chainalloc` and `chainalloc log`): a usage error is
one line and exit 2, and a command without its verb shows the verbs instead of argparse's
"the following arguments are required"."""

import argparse
import sys

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line that says where the help is."""

    def error(self, message):
        self.exit(EXIT_USAGE, '%s: %s (see %s --help)\n' % (self.prog, message, self.prog))


def add_verbs(parser):
    """The subcommands of `parser`, shown as VERB in its usage. `listing` keeps (name, help)
    for the short usage."""
    verbs = parser.add_subparsers(dest='verb', metavar='VERB', parser_class=Parser)
    verbs.listing = []
    return verbs


def add_verb(verbs, name, summary, **kwargs):
    """A subcommand with its own --help; `summary` is its line in the verb listings."""
    verbs.listing.append((name, summary))
    return verbs.add_parser(name, help=summary, description=summary[0].upper() + summary[1:],
                            **kwargs)


def verb_usage(parser, verbs, out=None):
    """A short usage: the command line shape, then one line per verb."""
    out = out or sys.stderr
    out.write('usage: %s VERB [ARGS...]\n\n' % parser.prog)
    for name, summary in verbs.listing:
        out.write('  %-9s %s\n' % (name, summary))
    out.write("\n'%s VERB --help' describes a verb.\n" % parser.prog)


def parse_or_usage(parser, verbs, argv):
    """Parses argv; with no verb, prints the short usage and exits 2."""
    args = parser.parse_args(argv)
    if args.verb is None:
        verb_usage(parser, verbs)
        sys.exit(EXIT_USAGE)
    return args


def positive_int(lo, hi):
    """An argparse type: an integer in lo..hi, else a usage error that says so."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError('%r is not an integer in %d..%d' % (text, lo, hi))
        return value
    return parse
