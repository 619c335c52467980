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


SCHEMA = os.path.join(os.path.dirname(READER), 'chainalloc_log', 'schema.json')


def validate(obj):
    """Checks a --json answer against the documented schema (when python3-jsonschema is
    installed; test_cli.py requires it)."""
    try:
        import jsonschema
    except ImportError:
        return obj
    with open(SCHEMA) as f:
        jsonschema.validate(obj, json.load(f), cls=jsonschema.Draft202012Validator)
    return obj


def run_json(*args, expect=0):
    """The whole --json answer: {schema, verb, files, combined}."""
    return validate(json.loads(run(*args, '--json', expect=expect).stdout))


def run_json_one(*args, expect=0):
    """The answer's one file object, for a command given one log."""
    answer = run_json(*args, expect=expect)
    assert len(answer['files']) == 1, answer['files']
    return answer['files'][0]
