"""The `--json` objects. Every verb prints one shape, for one file or many:

    {"schema": "chainalloc-log/1", "verb": VERB, "files": [one object per file],
     "combined": {the files taken together}}

(`plot` adds "output"). schema.json beside this file is the JSON Schema of it; LOG-FORMAT.md
describes the keys."""

import json

from .figures import combine
from .sites import SITE_FIGURES, merge_sites

SCHEMA = 'chainalloc-log/1'

# `leaks --json` is the summary's leak part only.
LEAKS_KEYS = ('file', 'program', 'argv', 'command', 'pid', 'complete', 'has_footer', 'sample',
              'sampling', 'estimated', 'leaked_bytes', 'leaked_blocks', 'program_leaked_bytes',
              'program_leaked_blocks', 'runtime_leaked_bytes', 'runtime_leaked_blocks',
              'leaks', 'runtime_leaks', 'leak_sites', 'symbol_warnings')
COMBINED_LEAKS_KEYS = ('processes', 'complete', 'children', 'leaked_bytes', 'leaked_blocks',
                       'program_leaked_bytes', 'program_leaked_blocks', 'runtime_leaked_bytes',
                       'runtime_leaked_blocks', 'leaks', 'runtime_leaks')
IDENTITY_KEYS = ('file', 'program', 'argv', 'command', 'pid')
SITES_KEYS = IDENTITY_KEYS + ('complete', 'sample', 'estimated', 'stacks', 'sites',
                              'symbol_warnings')



def envelope(verb, files, combined, **extra):
    return dict({'schema': SCHEMA, 'verb': verb, 'files': files, 'combined': combined}, **extra)


def leaks_object(d):
    return {k: d[k] for k in LEAKS_KEYS}


def combined_leaks(files):
    c = combine(files)
    out = {k: c[k] for k in COMBINED_LEAKS_KEYS}
    out['leak_sites'] = merge_sites([d['leak_sites'] for d in files], ('count', 'bytes'))
    return out


def sites_object(d):
    return {k: d[k] for k in SITES_KEYS}


def combined_sites(files):
    """Sites of all files, merged by symbolized stack; the peak figure is the sum of the
    per-process figures at their own peaks (an upper bound, as the combined peak is)."""
    return {'processes': len(files),
            'sites': merge_sites([d['sites'] for d in files], SITE_FIGURES)}


DIFF_FILE_KEYS = IDENTITY_KEYS + ('complete', 'sample', 'estimated', 'stacks', 'symbol_warnings')


def diff_file_object(d):
    """A file of `diff --json` (its side is added by the caller)."""
    return {k: d[k] for k in DIFF_FILE_KEYS}


def suggest_file_object(d, res):
    """One file's own suggestion (null when it made no request the classes could serve)."""
    return dict({k: d[k] for k in IDENTITY_KEYS}, suggestion=res)


def write_json(obj, out):
    json.dump(obj, out, indent=1)
    out.write('\n')
