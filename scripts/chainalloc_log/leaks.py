"""Blocks live at the end of a log: which the C/C++ runtime left (not the program's
fault), and the leaks grouped by size."""

from .parse import event_time


# Blocks the C/C++ runtime allocates on the program's behalf and never frees. A leaked
# block is "runtime" only if it matches one of these signatures; every rule is narrow
# on purpose (a real leak shown as runtime is worse than a runtime block shown as a leak).
EH_POOL_MIN, EH_POOL_MAX = 70 * 1024, 76 * 1024   # libstdc++ emergency pool (72704 in GCC 12)
EH_POOL_WINDOW = 64                                # ... allocated before main
DTV_MIN, DTV_MAX = 17 * 16, 80 * 16                # ld.so dtv: calloc(modules + 16, 16)
STDIO_SIZES = {1 << k for k in range(10, 17)}      # stdio buffers: st_blksize, 1 KiB..64 KiB
STDIO_MAX_BLOCKS = 3                               # stdin, stdout, stderr


def classify_leaks(s):
    """Split the leaked blocks into (program, runtime): lists of (ptr, record, kind)."""
    pid = s.head.get('pid', '').encode()
    runtime = {}
    blocks = sorted(s.live.items(), key=lambda kv: kv[1][4])   # by event index
    # 1. libstdc++'s emergency exception pool: one malloc by the main thread before main.
    for ptr, rec in blocks:
        size, _, th, _, idx, op, _, _ = rec
        if (op == b'm' and EH_POOL_MIN <= size <= EH_POOL_MAX and idx <= EH_POOL_WINDOW
                and th[3] == pid):
            runtime[ptr] = 'libstdc++ emergency exception pool'
            break
    # 2. ld.so's dtv for a new thread: calloc'd by the creating thread, kept with the cached
    #    stack after the thread ends. Each candidate must be followed by a thread that first
    #    appears in the log after it, one thread per candidate.
    starts = sorted(th[2] for tid, th in s.threads.items() if tid != pid)
    cands = [(rec[4], ptr) for ptr, rec in blocks
             if rec[5] == b'c' and DTV_MIN <= rec[0] <= DTV_MAX and rec[0] % 16 == 0
             and ptr not in runtime]
    k = 0
    pending = []
    for start in starts:
        while k < len(cands) and cands[k][0] < start:
            pending.append(cands[k][1])
            k += 1
        if pending:
            runtime[pending.pop(0)] = 'ld.so thread DTV'
    # 3. stdio buffers: a malloc of st_blksize bytes, at most one per standard stream.
    #    More leaked blocks of that size than streams means the program leaks that size.
    stdio = [(ptr, rec) for ptr, rec in blocks
             if rec[5] == b'm' and rec[0] in STDIO_SIZES and ptr not in runtime]
    if len(stdio) <= STDIO_MAX_BLOCKS:
        for ptr, _ in stdio:
            runtime[ptr] = 'stdio buffer'
    program = [(p, r, None) for p, r in blocks if p not in runtime]
    rt = [(p, r, runtime[p]) for p, r in blocks if p in runtime]
    return program, rt


def group_leaks(entries, scale):
    """Group (ptr, record, kind) by size -> list of dicts, largest total first."""
    groups = {}
    for _, rec, kind in entries:
        size, t, th, _, idx, _, w, _ = rec
        g = groups.get((size, kind))
        if g is None:
            groups[(size, kind)] = g = {'size': size, 'count': 0, 'bytes': 0,
                                        'first_t_ns': event_time(t), 'first_tid': int(th[3]),
                                        '_idx': idx}
            if kind:
                g['kind'] = kind
        g['count'] += w           # 1, or a sampled block's weight (parse.Weights)
        if idx < g['_idx']:
            g['_idx'], g['first_t_ns'], g['first_tid'] = idx, event_time(t), int(th[3])
    out = []
    for g in groups.values():
        del g['_idx']
        g['count'] *= scale
        g['bytes'] = round(g['size'] * g['count'])
        g['count'] = round(g['count'])
        out.append(g)
    out.sort(key=lambda g: (-g['bytes'], -g['size']))
    return out

