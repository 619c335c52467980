"""chainalloc log reader: turns a proxy log (format in scripts/LOG-FORMAT.md) into
what a person wants to know.

    chainalloc_log.py summary FILE... [--top N] [--json]
    chainalloc_log.py leaks FILE... [--fail-on-leak] [--top N] [--json]
    chainalloc_log.py plot FILE... -o report.html [--json]
    chainalloc_log.py suggest FILE... [--max-classes N] [--max-size SIZE] [--json]

FILE may be a glob; --json prints {"schema", "verb", "files", "combined"} (schema.json).

Python 3 standard library only. One streaming pass per file (parse.py), made by the
compiled chainalloc-logscan when it is found (logscan.py, reader/) and else in Python; the figures
(figures.py) feed the text, JSON and HTML (html_report.py, svg.py) reports and the class-table search (suggest.py).
"""

# The names a caller (or a test) uses without knowing the module layout.
from .cli import EXIT_ERROR, EXIT_LEAK, EXIT_OK, main
from .figures import combine, public, summarize
from .header import FORMAT_VERSIONS, LogError, parse_footer, parse_header
from .parse import TEMP_WINDOW, TIMELINE_POINTS, scan_log
from .suggest import default_classes, evaluate, format_classes, optimal_classes, suggest
