#!/usr/bin/env python3
"""Entry point of `chainalloc log`; the reader is the chainalloc_log package beside this file."""

import os
import sys

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    from chainalloc_log.cli import main
    sys.exit(main())
