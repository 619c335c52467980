"""Allocation-heavy Python for `scripts/bench --programs` (run with PYTHONMALLOC=malloc, so
every object goes through the allocator under test): dicts of lists, strings, tuples, a JSON
round trip, sorting, and dropping half of everything midway. Prints a digest that must be the
same under every allocator."""
import hashlib
import json
import sys

n = int(float(sys.argv[1]) * 100000) if len(sys.argv) > 1 else 100000
table = {}
for i in range(n):
    table["k%07d" % i] = [i, str(i) * 3, (i, i * 7 % 1000), {"v": i & 255}]
for i in range(0, n, 2):
    del table["k%07d" % i]
text = json.dumps(table, sort_keys=True)
back = json.loads(text)
words = sorted((v[1] for v in back.values()), key=lambda s: (len(s), s[::-1]))
rows = [" ".join(words[i:i + 8]) for i in range(0, len(words), 8)]
digest = hashlib.sha256("\n".join(rows).encode() + text[:100000].encode()).hexdigest()
print(len(back), len(rows), digest)
