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



# -- The footprint model -------------------------------------------------------------------
# What the free-list core (docs/DESIGN.md §4.8) holds for a class table, from the live blocks
# by size at the log's peak, the requests by size and the threads seen. Its constants are the
# core's: 64 KiB slices, spans of at least four blocks (at most 63 slices), blocks carved on
# demand (untouched memory is not resident), a thread cache per class of at most `cache`
# blocks and cache x 256 bytes, whose first refill carves 8 blocks.
SLICE = 64 << 10
SEGMENT = 4 << 20
PAGE = 4096
MIN_BLOCKS_PER_SPAN = 4
MAX_SPAN_SLICES = SEGMENT // SLICE - 1
FIRST_BATCH = 8
DEFAULT_CACHE = 512
SEGMENT_HEADER = 2 * PAGE    # the touched part of a segment's header slice (Slice + Span entries)
GLIBC_MMAP_THRESHOLD = 128 << 10


def _page_round(n):
    return -(-n // PAGE) * PAGE


def span_bytes(block):
    """Bytes of one span of a class of `block` bytes: enough 64 KiB slices for four blocks."""
    slices = min(-(-MIN_BLOCKS_PER_SPAN * block // SLICE), MAX_SPAN_SLICES)
    return max(1, slices) * SLICE


def cache_blocks(block, cache=DEFAULT_CACHE):
    """Blocks one thread's cache may hold of a class: at most `cache` and cache x 256 bytes."""
    return max(1, min(cache, cache * 256 // block))


def glibc_chunk(size):
    """What glibc takes for a request: an 8-byte header, 16-byte steps, 32 bytes at least;
    a mapping of its own (whole pages) from the mmap threshold up."""
    if size >= GLIBC_MMAP_THRESHOLD:
        return _page_round(size + 16)
    return max(32, -(-(size + 8) // 16) * 16)


def class_footprint(block, live, requests, threads, cache=DEFAULT_CACHE):
    """One class's resident bytes, split into its terms:
    - live: the blocks with the program at the peak, `block` bytes each (rounding included);
    - cache: blocks idle in thread caches: per thread seen (at most one per request), up to
      half of cache_blocks(block): a refill takes at most half the limit and an overflow gives
      back down to half, so a bin at a peak (the program allocating, the bin draining) holds
      at most half; they come from frees (requests - live) and from refill batches (the
      first carves min(8, half the limit) blocks);
    - spans: the partly used spans: a class in use holds at least one span; blocks are carved
      on demand, so a span is resident up to its last carved page; once blocks were freed
      (requests > live) the live ones are spread over the spans, each counted whole."""
    threads = max(1, min(threads, int(requests) or 1))
    cap = cache_blocks(block, cache)
    freed = max(0.0, requests - live)
    batch = min(FIRST_BATCH, max(1, cap // 2))
    cached = min(threads * max(1, cap // 2), freed + threads * batch)
    cached = min(cached, max(0.0, requests + threads * batch - live))
    held = live + cached
    sbytes = span_bytes(block)
    per_span = max(1, sbytes // block)
    spans = max(1, -(-int(round(held)) // per_span))
    if freed > 0 and spans > 1:
        resident = spans * _page_round(per_span * block)
    else:
        full, rest = divmod(int(round(held)), per_span)
        resident = full * _page_round(per_span * block) + _page_round(rest * block)
    resident = max(resident, _page_round(int(round(held * block))))
    return {'size': block, 'live_blocks': round(live), 'cached_blocks': round(cached),
            'spans': spans, 'span_bytes': sbytes,
            'live_bytes': round(live * block), 'cache_bytes': round(cached * block),
            'span_overhead_bytes': max(0, resident - round(held * block)),
            'resident_bytes': resident}


def footprint(classes, peak_sizes, sizes, threads, cache=DEFAULT_CACHE):
    """Predicted heap footprint of `freelist(classes=...) > system` for one process: the
    freelist's classes (class_footprint), the headers of the segments their spans fill, and
    glibc's chunks for the live blocks no class takes. Sizes are {size: count}; peak_sizes the
    live blocks by size at the peak."""
    classes = sorted(classes)
    top = classes[-1] if classes else 0
    live_by_class = collections.defaultdict(float)
    req_by_class = collections.defaultdict(float)
    system = requested = rounding = 0
    for size, cnt in peak_sizes.items():
        requested += size * cnt
        if size <= top:
            c = classes[bisect.bisect_left(classes, max(size, 1))]
            live_by_class[c] += cnt
            rounding += (c - size) * cnt
        else:
            system += glibc_chunk(size) * cnt
    for size, cnt in sizes.items():
        if size <= top:
            req_by_class[classes[bisect.bisect_left(classes, max(size, 1))]] += cnt
    rows = [class_footprint(c, live_by_class[c], req_by_class[c], threads, cache)
            for c in classes if req_by_class[c] > 0]
    span_total = sum(r['spans'] * r['span_bytes'] for r in rows)
    segments = -(-span_total // (SEGMENT - SLICE)) if rows else 0
    out = {'live_requested_bytes': round(requested),
           'live_bytes': sum(r['live_bytes'] for r in rows),
           'rounding_bytes': round(rounding),
           'cache_bytes': sum(r['cache_bytes'] for r in rows),
           'span_overhead_bytes': sum(r['span_overhead_bytes'] for r in rows),
           'segment_header_bytes': segments * SEGMENT_HEADER,
           'system_bytes': round(system),
           'classes_in_use': len(rows), 'spans': sum(r['spans'] for r in rows),
           'threads': threads}
    out['freelist_bytes'] = sum(r['resident_bytes'] for r in rows)
    out['total_bytes'] = out['freelist_bytes'] + out['segment_header_bytes'] + out['system_bytes']
    out['_rows'] = rows
    return out


def sum_footprints(parts):
    """Processes run side by side, each with its own chain: their footprints add up."""
    keys = ('live_requested_bytes', 'live_bytes', 'rounding_bytes', 'cache_bytes', 'span_overhead_bytes',
            'segment_header_bytes', 'system_bytes', 'freelist_bytes', 'total_bytes',
            'classes_in_use', 'spans', 'threads')
    out = {k: sum(p[k] for p in parts) for k in keys}
    out['processes'] = len(parts)
    return out


def predict(classes, files, cache=DEFAULT_CACHE):
    """The footprint of a class table over the processes of these logs (figures from
    figures.summarize): each process's own threads, sizes and live blocks at its peak.
    Figures of sampled logs are scaled to estimates."""
    parts = []
    for d in files:
        scale = d.get('_scale', 1)
        sizes = {k: v * scale for k, v in d['_sizes'].items()}
        peak = {k: v * scale for k, v in d.get('_peak_sizes', {}).items()}
        parts.append(footprint(classes, peak, sizes, max(1, len(d.get('threads') or [])), cache))
    return sum_footprints(parts)


NOISE = 0.03     # ratios within 3% of 1 are no difference (run-to-run noise)

FOOTPRINT_KEYS = ('total_bytes', 'live_requested_bytes', 'live_bytes', 'rounding_bytes',
                  'cache_bytes',
                  'span_overhead_bytes', 'segment_header_bytes', 'system_bytes',
                  'freelist_bytes', 'classes_in_use', 'spans', 'threads', 'processes')


def add_prediction(res, files):
    """Adds the model's footprint of the suggestion and of the default table (summed over
    the processes of `files`) to a suggestion, and what it predicts: `gain` is false when the
    suggestion's footprint is not NOISE smaller and its hit rate not higher."""
    if res is None:
        return None
    mine = predict(res['classes'], files)
    base = predict(default_classes(), files)
    res['predicted'] = {k: mine[k] for k in FOOTPRINT_KEYS}
    res['default']['predicted'] = {k: base[k] for k in FOOTPRINT_KEYS}
    ratio = mine['total_bytes'] / base['total_bytes'] if base['total_bytes'] else None
    res['predicted_ratio'] = ratio
    res['same_as_default'] = res['classes'] == default_classes()
    res['predicted_gain'] = (not res['same_as_default'] and (
        (ratio is not None and ratio < 1 - NOISE) or
        res['hit_rate'] > res['default']['hit_rate'] + NOISE))
    return res
