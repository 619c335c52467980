"""The `--json` objects: what each subcommand prints with --json, and how."""

import json

from .figures import combine, public

# `leaks --json` is the summary's leak part only.
LEAKS_KEYS = ('file', 'program', 'pid', 'complete', 'has_footer', 'sample', 'estimated',
              'leaked_bytes', 'leaked_blocks', 'program_leaked_bytes', 'program_leaked_blocks',
              'runtime_leaked_bytes', 'runtime_leaked_blocks', 'leaks', 'runtime_leaks')


def summary_object(files):
    """One log: its figures; several: their combination (which holds each one's)."""
    return public(files[0]) if len(files) == 1 else combine(files)


def leaks_object(d):
    return {k: d[k] for k in LEAKS_KEYS}


def write_json(obj, out):
    json.dump(obj, out, indent=1)
    out.write('\n')
