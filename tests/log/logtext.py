"""A log's content as version 1 text lines, whichever form the proxy wrote: tests that look at
the events themselves read compact logs through the reader's own decoder (merged by time)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts'))
from chainalloc_log.compact import decode_lines  # noqa: E402

V2 = b'# chainalloc-log 2 '


def log_text(path):
    """The log as a version 1 text log: a compact log's header says version 1 and its records
    become lines; a text log loses the NUL tail of a process that never reached exit."""
    with open(path, 'rb') as f:
        data = f.read()
    first = data.split(b'\n', 1)[0]
    if not first.startswith(V2):
        return data.rstrip(b'\0')
    body = b'\n'.join(decode_lines(data, len(first) + 1))
    return b'# chainalloc-log 1 ' + first[len(V2):] + b'\n' + body + (b'\n' if body else b'')


def is_compact(path):
    with open(path, 'rb') as f:
        return f.read(len(V2)) == V2
