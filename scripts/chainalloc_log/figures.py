"""From a scan to the reported figures: one dict per log (its keys are the `--json`
keys), and the combination of several logs."""

import collections
import time

from .header import command_label
from .leaks import classify_leaks, group_leaks
from .parse import TEMP_WINDOW, sampling_of, scan_log


def size_bucket(size):
    """Power-of-two bucket: the bucket's upper bound `le` (size <= le, size > le/2)."""
    return 0 if size == 0 else 1 << (size - 1).bit_length()


def summarize(path, timeline=False):
    t0 = time.perf_counter()
    s = scan_log(path, timeline)
    elapsed = time.perf_counter() - t0
    head = s.head
    sample, weighted = sampling_of(head)
    # Address-hash sampling (older logs) keeps 1 block in `sample`: figures are scaled by it.
    # Sampling by bytes weighs each block in the scan already: figures are rounded estimates.
    scale = 1 if weighted else sample
    estimated = sample > 1
    foot = s.footer or {}
    reasons = []
    if s.footer is None:
        reasons.append('no footer: the process did not exit normally '
                       '(crash, _exit, killed) or the log is still being written')
    if s.cut_line:
        reasons.append('last line cut mid-write (ignored)')
    warnings = []
    if s.after_footer:
        warnings.append('%d events after the footer' % s.after_footer)
    if s.malformed:
        warnings.append('%d malformed lines ignored' % s.malformed)
    if s.reused_live:
        warnings.append('%d allocations returned a pointer that was still live '
                        '(a free is missing from the log)' % s.reused_live)
    if isinstance(foot.get('sample_dropped'), int) and foot['sample_dropped']:
        warnings.append('%d sampled blocks were not logged (the proxy\'s table of sampled '
                        'blocks was full): estimates are low' % foot['sample_dropped'])
    if isinstance(foot.get('stacks_dropped'), int) and foot['stacks_dropped']:
        warnings.append('%d allocations went without a call stack (the proxy\'s stack table '
                        'was full): reports by site miss them' % foot['stacks_dropped'])
    if s.tombstones_dropped:
        warnings.append('the log is large, so the reader stopped remembering old freed '
                        'addresses to save memory: a few double frees may be counted as '
                        'frees of unknown pointers')
    # proxy(events=summary) writes the header and the footer only: the footer is all there is.
    summary_only = head.get('events') == 'summary'

    counted = {k: round(v * scale) for k, v in s.counts.items()}
    calls = dict(counted)
    if s.footer is not None:
        for k in calls:
            if isinstance(foot.get(k), int):
                calls[k] = foot[k]
        if not estimated and calls != counted and not summary_only:
            warnings.append(_mismatch(calls, counted))
        if (not estimated and isinstance(foot.get('events'), int) and foot['events'] != s.events
                and not summary_only):
            warnings.append('footer says %d events, the log holds %d'
                            % (foot['events'], s.events))

    runtime_ns = foot.get('t_ns') if isinstance(foot.get('t_ns'), int) else s.last_t
    runtime_ns = max(runtime_ns, s.last_t)
    secs = runtime_ns / 1e9
    program, rt = classify_leaks(s)
    leaks = group_leaks(program, scale)
    runtime_leaks = group_leaks(rt, scale)
    prog_bytes = sum(g['bytes'] for g in leaks)
    rt_bytes = sum(g['bytes'] for g in runtime_leaks)
    leaked_bytes = round(s.live_bytes * scale)
    leaked_blocks = round(s.live_blocks * scale)
    if s.footer is not None and (estimated or summary_only):
        # The footer's totals are exact; the sampled blocks only estimate them.
        if isinstance(foot.get('live_bytes'), int):
            leaked_bytes = foot['live_bytes']
        if isinstance(foot.get('live_blocks'), int):
            leaked_blocks = foot['live_blocks']

    requests = round(sum(s.sizes.values()) * scale)
    requested_bytes = round(sum(k * v for k, v in s.sizes.items()) * scale)
    pid = head.get('pid', '')
    threads = sorted(
        ({'tid': int(th[3]), 'calls': round(th[4] * scale), 'bytes': round(th[1] * scale),
          'main': th[3].decode() == pid} for th in s.threads.values()),
        key=lambda r: (-r['calls'], r['tid']))
    top = sorted(s.sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
    hist = collections.defaultdict(lambda: [0, 0])
    for size, cnt in s.sizes.items():
        h = hist[size_bucket(size)]
        h[0] += cnt
        h[1] += cnt * size
    layer_rows = []
    for key, (cnt, nbytes) in sorted(s.layers.items(), key=lambda kv: int(kv[0])):
        i = int(key)
        layer_rows.append({'index': i,
                           'name': s.layer_names[i] if i < len(s.layer_names) else '?',
                           'requests': round(cnt * scale), 'bytes': round(nbytes * scale)})
    out = {
        'file': path,
        'program': head.get('program', '?'),
        'argv': head.get('argv'),
        'command': command_label(head.get('program', '?'), head.get('argv')),
        'events_logged': 'summary' if summary_only else 'all',
        'pid': _int(pid), 'ppid': _int(head.get('ppid')),
        'version': head['version'], 'chain': head.get('chain', ''),
        'layers': s.layer_names, 'sample': sample, 'estimated': estimated,
        'sampling': 'bytes' if weighted else 'address' if estimated else None,
        'start_unix_ns': _int(head.get('start_unix_ns')),
        'complete': not reasons, 'incomplete_reasons': reasons,
        'has_footer': s.footer is not None, 'cut_line': s.cut_line,
        'events': s.events, 'runtime_ns': runtime_ns,
        'calls': calls, 'counted_calls': counted,
        'calls_per_second': {k: (v / secs if secs > 0 else None) for k, v in calls.items()},
        'requests': requests, 'requested_bytes': requested_bytes,
        'peak_bytes': round(s.peak * scale), 'peak_t_ns': s.peak_t,
        'leaked_bytes': leaked_bytes, 'leaked_blocks': leaked_blocks,
        'program_leaked_bytes': prog_bytes,
        'program_leaked_blocks': sum(g['count'] for g in leaks),
        'runtime_leaked_bytes': rt_bytes,
        'runtime_leaked_blocks': sum(g['count'] for g in runtime_leaks),
        'leaks': leaks, 'runtime_leaks': runtime_leaks,
        'temporary': {'window_events': TEMP_WINDOW, 'blocks': round(s.temp_blocks * scale),
                      'bytes': round(s.temp_bytes * scale)},
        'unknown_frees': s.unknown_frees * scale, 'double_frees': s.double_frees * scale,
        'unknown_reallocs': s.bad_reallocs * scale,
        # a[1] counts lines after the header: the file line is one more.
        'anomalies': [{'kind': a[0], 'line': a[1] + 1,
                       't_ns': _int(a[2].decode('ascii', 'replace')),
                       'tid': _int(a[3].decode('ascii', 'replace')),
                       'ptr': a[4].decode('ascii', 'replace')} for a in s.anomalies],
        'threads': threads,
        'top_sizes': [{'size': k, 'count': round(v * scale), 'bytes': round(k * v * scale)}
                      for k, v in top],
        'histogram': [{'le': le, 'count': round(c * scale), 'bytes': round(b * scale)}
                      for le, (c, b) in sorted(hist.items())],
        'layer_split': layer_rows,
        'distinct_stacks': len(set(s.stacks.values())),   # two ids of one stack count once
        'malformed_lines': s.malformed,
        'warnings': warnings,
        'read_seconds': elapsed,
        'events_per_second': (s.events / elapsed) if elapsed > 0 else None,
    }
    if timeline:
        out['timeline'] = [{'t_ns': t, 'live': round(a * scale), 'max': round(b * scale),
                            'min': round(c * scale)}
                           for (t, a, b, c) in s.points]
    out['_sizes'] = s.sizes            # for `suggest`; removed before JSON output
    out['_stacks'] = s                 # call stacks and figures by site (sites.py)
    out['_scale'] = scale
    out['_program_leaks'] = program
    out['_aligned_over16'] = s.aligned_over16
    out['_peak_sizes'] = s.peak_sizes  # live blocks by size at the peak (suggest's model)
    return out


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def public(d):
    return {k: v for k, v in d.items() if not k.startswith('_')}


def _mismatch(footer, counted):
    """The footer's totals against the events read, naming only the calls that differ."""
    diff = ', '.join('%s %d vs %d' % (k, footer[k], counted[k])
                     for k in footer if footer[k] != counted.get(k))
    return ('the footer counts more calls than the log holds (%s: footer vs log); '
            'events were lost' % diff)


CALL_KINDS = ('malloc', 'calloc', 'realloc', 'aligned', 'free', 'failed')
# Figures that add up across processes.
SUMMED = ('requests', 'requested_bytes', 'leaked_bytes', 'leaked_blocks',
          'program_leaked_bytes', 'program_leaked_blocks', 'runtime_leaked_bytes',
          'runtime_leaked_blocks', 'unknown_frees', 'double_frees')


def _merge_leaks(files, key):
    """Leak groups of all files, by (size, kind); each keeps the pid that first had it."""
    groups = {}
    for d in files:
        for g in d[key]:
            k = (g['size'], g.get('kind'))
            if k in groups:
                groups[k]['count'] += g['count']
                groups[k]['bytes'] += g['bytes']
            else:
                groups[k] = dict(g, pid=d['pid'])
    return sorted(groups.values(), key=lambda g: (-g['bytes'], -g['size']))


def program_rows(files):
    """One row per command (program and first argument): how many processes ran it and
    their totals. Busiest first."""
    rows = {}
    for d in files:
        r = rows.setdefault(d['command'], {'command': d['command'], 'processes': 0,
                                           'calls': 0, 'requested_bytes': 0,
                                           'peak_bytes': 0, 'leaked_bytes': 0})
        r['processes'] += 1
        r['calls'] += sum(d['calls'].values())
        r['requested_bytes'] += d['requested_bytes']
        r['peak_bytes'] = max(r['peak_bytes'], d['peak_bytes'])   # largest single process
        r['leaked_bytes'] += d['leaked_bytes']
    return sorted(rows.values(), key=lambda r: (-r['calls'], r['command']))


def combine(files):
    """The figures of several logs (the processes of one run) taken together."""
    calls = collections.Counter()
    for d in files:
        calls.update(d['calls'])
    pids = {d['pid'] for d in files}
    out = {'processes': len(files), 'calls': {k: calls[k] for k in CALL_KINDS}}
    out.update({k: sum(d[k] for d in files) for k in SUMMED})
    out.update({
        # Processes run side by side: the sum of their peaks bounds the combined peak.
        'peak_bytes': sum(d['peak_bytes'] for d in files),
        'leaks': _merge_leaks(files, 'leaks'),
        'runtime_leaks': _merge_leaks(files, 'runtime_leaks'),
        'complete': all(d['complete'] for d in files),
        'children': [d['pid'] for d in files if d['ppid'] in pids],
        'programs': program_rows(files),
    })
    return out
