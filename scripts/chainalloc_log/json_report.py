"""The `--json` objects. Every verb prints one shape, for one file or many:

    {"schema": "chainalloc-log/1", "verb": VERB, "files": [one object per file],
     "combined": {the files taken together}}

(`plot` adds "output"). schema.json beside this file is the JSON Schema of it; LOG-FORMAT.md
describes the keys."""

import json

from .figures import combine

SCHEMA = 'chainalloc-log/1'

# `leaks --json` is the summary's leak part only.
LEAKS_KEYS = ('file', 'program', 'argv', 'command', 'pid', 'complete', 'has_footer', 'sample',
              'sampling', 'estimated', 'leaked_bytes', 'leaked_blocks', 'program_leaked_bytes',
              'program_leaked_blocks', 'runtime_leaked_bytes', 'runtime_leaked_blocks',
              'leaks', 'runtime_leaks')
COMBINED_LEAKS_KEYS = ('processes', 'complete', 'children', 'leaked_bytes', 'leaked_blocks',
                       'program_leaked_bytes', 'program_leaked_blocks', 'runtime_leaked_bytes',
                       'runtime_leaked_blocks', 'leaks', 'runtime_leaks')
IDENTITY_KEYS = ('file', 'program', 'argv', 'command', 'pid')


def envelope(verb, files, combined, **extra):
    return dict({'schema': SCHEMA, 'verb': verb, 'files': files, 'combined': combined}, **extra)


def leaks_object(d):
    return {k: d[k] for k in LEAKS_KEYS}


def combined_leaks(files):
    c = combine(files)
    return {k: c[k] for k in COMBINED_LEAKS_KEYS}


def suggest_file_object(d, res):
    """One file's own suggestion (null when it made no request the classes could serve)."""
    return dict({k: d[k] for k in IDENTITY_KEYS}, suggestion=res)


def write_json(obj, out):
    json.dump(obj, out, indent=1)
    out.write('\n')
