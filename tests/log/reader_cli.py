"""Runs the log reader's command line (scripts/chainalloc_log.py) for the tests."""

import json
import os
import subprocess
import sys

READER = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts',
                      'chainalloc_log.py')


def run(*args, expect=0):
    """The reader with args; fails the test unless it exits with `expect`."""
    p = subprocess.run([sys.executable, READER] + [str(a) for a in args],
                       capture_output=True, text=True)
    if p.returncode != expect:
        raise AssertionError('reader exit %d (want %d) for %s\n%s%s' % (
            p.returncode, expect, args, p.stdout, p.stderr))
    return p


def run_json(*args, expect=0):
    return json.loads(run(*args, '--json', expect=expect).stdout)
