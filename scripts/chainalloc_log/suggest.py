"""`suggest`: freelist size classes learned from the request distribution."""

import bisect
import collections


def default_classes():
    """The preload's default freelist table: 16..128/16, then four per doubling to 32768."""
    out = list(range(16, 129, 16))
    lo = 128
    while lo < 32768:
        out += [lo + lo // 4 * k for k in range(1, 5)]
        lo *= 2
    return out


def evaluate(classes, sizes, big_aligned):
    """Hit rate and waste of a class table over a size histogram {size: count}.
    A request hits if some class >= its size (and it needs no alignment above 16)."""
    classes = sorted(classes)
    total = sum(sizes.values())
    hits = wasted = given = 0
    for size, cnt in sizes.items():
        cnt_ok = cnt - big_aligned.get(size, 0)
        k = bisect.bisect_left(classes, max(size, 1))
        if k == len(classes) or cnt_ok <= 0:
            continue
        hits += cnt_ok
        given += classes[k] * cnt_ok
        wasted += (classes[k] - size) * cnt_ok
    return {'hit_rate': hits / total if total else 0.0,
            'waste': wasted / given if given else 0.0,
            'requests': total, 'hits': hits, 'wasted_bytes': wasted}


def optimal_classes(units, counts, k):
    """Class boundaries (in 16-byte units) minimising the rounding waste of requests
    grouped by 16-byte unit: units ascending, counts per unit. The top unit is always a
    class. Dynamic programming over prefixes, with the divide-and-conquer optimisation
    (the cost of a group is Monge, so the best split point is monotone)."""
    n = len(units)
    k = min(k, n)
    # Prefix sums so that the waste of grouping units[a..b] under class units[b] is O(1):
    # cost(a, b) = units[b] * C(a..b) - S(a..b), in units of 16 bytes.
    pc = [0] * (n + 1)
    ps = [0] * (n + 1)
    for i in range(n):
        pc[i + 1] = pc[i] + counts[i]
        ps[i + 1] = ps[i] + counts[i] * units[i]

    def cost(a, b):       # units a..b inclusive (0-based) under class units[b]
        return units[b] * (pc[b + 1] - pc[a]) - (ps[b + 1] - ps[a])

    inf = float('inf')
    prev = [cost(0, b) for b in range(n)]       # exactly one class, the top one units[b]
    choices = [[-1] * n]
    for _ in range(2, k + 1):
        cur = [inf] * n
        arg = [-1] * n
        # cur[b] = min over j < b of prev[j] + cost(j + 1, b); the best j never decreases
        # as b grows, so solve the middle b first and split the search range.
        stack = [(0, n - 1, 0, n - 1)]
        while stack:
            lo, hi, olo, ohi = stack.pop()
            if lo > hi:
                continue
            mid = (lo + hi) // 2
            best, bestj = inf, olo
            cm, pcm, psm = units[mid], pc[mid + 1], ps[mid + 1]
            for j in range(olo, min(mid - 1, ohi) + 1):
                v = prev[j] + cm * (pcm - pc[j + 1]) - (psm - ps[j + 1])
                if v < best:
                    best, bestj = v, j
            cur[mid] = best
            arg[mid] = bestj if best < inf else -1
            stack.append((lo, mid - 1, olo, bestj))
            stack.append((mid + 1, hi, bestj, ohi))
        prev = cur
        choices.append(arg)
    out = []
    b = n - 1
    for level in range(k, 0, -1):
        out.append(units[b])
        b = choices[level - 1][b]
    return sorted(out)


def format_classes(classes):
    """Compress runs of at least three equally spaced classes as N..M/S."""
    out = []
    i = 0
    while i < len(classes):
        j = i + 1
        if j < len(classes):
            step = classes[j] - classes[i]
            while j + 1 < len(classes) and classes[j + 1] - classes[j] == step:
                j += 1
            if j - i >= 2:
                out.append('%d..%d/%d' % (classes[i], classes[j], step))
                i = j + 1
                continue
        out.append(str(classes[i]))
        i += 1
    return ','.join(out)


def suggest(d, max_classes, coverage, max_size):
    sizes = d['_sizes']
    big_aligned = d['_aligned_over16']
    # Requests the freelist can serve, by 16-byte unit (malloc(0) takes a 16-byte block).
    per_unit = collections.defaultdict(int)
    eligible = 0
    for size, cnt in sizes.items():
        cnt -= big_aligned.get(size, 0)
        if cnt > 0 and size <= max_size:
            per_unit[max(1, -(-size // 16))] += cnt
            eligible += cnt
    units = sorted(per_unit)
    # Leave the rarest top sizes to the backend: drop the largest units while what they
    # carry stays within (1 - coverage) of all requests.
    total = sum(sizes.values())
    budget = (1.0 - coverage) * total
    while len(units) > 1 and per_unit[units[-1]] <= budget:
        budget -= per_unit[units[-1]]
        units.pop()
    if not units:
        return None
    counts = [per_unit[u] for u in units]
    classes = [16 * u for u in optimal_classes(units, counts, max_classes)]
    mine = evaluate(classes, sizes, big_aligned)
    base = evaluate(default_classes(), sizes, big_aligned)
    text = format_classes(classes)
    return {'classes': classes, 'classes_text': text, 'count': len(classes),
            'hit_rate': mine['hit_rate'], 'waste': mine['waste'],
            'default': {'classes_text': format_classes(default_classes()),
                        'count': len(default_classes()),
                        'hit_rate': base['hit_rate'], 'waste': base['waste']},
            'requests': mine['requests'],
            'chain': "CHAINALLOC_CHAIN='freelist(classes=%s) > system'" % text}

