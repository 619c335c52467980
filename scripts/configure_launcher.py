#!/usr/bin/env python3
"""Writes a copy of the launcher (scripts/chainalloc) that knows where its parts are.

  configure_launcher.py INPUT OUTPUT key=path...

Replaces the launcher's one `LAYOUT = None` line with `LAYOUT = {key: path, ...}`. Run by
meson at configure time, so the copy follows the build dir's name and the install options
(libdir, libexecdir) instead of guessing them. Keys: library, config_tool, log_reader,
log_scanner, and bindir for the installed copy (the launcher then also finds a prefix that
was moved).
"""
import os
import stat
import sys


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    source, output, pairs = argv[0], argv[1], argv[2:]
    layout = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not value:
            sys.exit(f"configure_launcher: bad key=path argument {pair!r}")
        layout[key] = value
    with open(source, encoding="utf-8") as f:
        lines = f.read().split("\n")
    # Exactly one, so an edit of the launcher that loses or doubles the line fails the build
    # here rather than shipping a launcher that silently guesses.
    hits = [i for i, line in enumerate(lines) if line == "LAYOUT = None"]
    if len(hits) != 1:
        sys.exit(f"configure_launcher: {source}: expected one 'LAYOUT = None' line, "
                 f"found {len(hits)}")
    lines[hits[0]] = "LAYOUT = " + repr(dict(sorted(layout.items())))
    with open(output, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    mode = os.stat(output).st_mode
    os.chmod(output, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


if __name__ == "__main__":
    main(sys.argv[1:])
