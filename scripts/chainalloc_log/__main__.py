"""`python3 scripts/chainalloc_log ARGS` (or `python3 -m chainalloc_log ARGS`)."""

import os
import sys

if not __package__:
    # Run as a directory: only the package's own folder is on sys.path, so make its
    # parent importable to reach the package by name.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from chainalloc_log.cli import main  # noqa: E402

sys.exit(main())
