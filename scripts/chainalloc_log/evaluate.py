"""`suggest --evaluate -- PROGRAM ARGS...`: the suggestion measured on the program.

The program runs N times under the default chain and N times under the suggested one,
interleaved (default first in even rounds, suggested first in odd ones, so a machine that
warms up or slows down favours neither), each time with LD_PRELOAD=libchainalloc.so, no
proxy, CHAINALLOC_STRICT=1 (a chain the preload would refuse stops the evaluation instead of
quietly measuring the default) and CHAINALLOC_STATS writing JSON (`chainalloc-stats/1`) to a
file per process. Per run: wall time, CPU time (os.wait4's rusage) and peak RSS of the
program's process, the requests that fell through the freelist to glibc and the peak of the
layers' live bytes (summed over the run's processes).

Peak RSS is /usr/bin/time's (GNU time, `%M`), which forks the program from its own small
process. os.wait4's ru_maxrss cannot be used from here: a process keeps the largest RSS it
had across exec, and a child forked (or vforked) from this Python process starts with the
reader's own RSS (tens of MiB after reading a log). Without /usr/bin/time the evaluation
falls back to ru_maxrss and says so (`rss_source`). The report gives the
medians, the ratios suggested/default and a verdict: the suggestion is worth following only
when RSS or time is lower by more than the noise (3%, and every run of one chain beyond
every run of the other) and neither is higher by as much."""

import glob
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from .suggest import NOISE

DEFAULT_CHAIN = 'freelist > system'
MEASURES = ('rss_bytes', 'wall_seconds', 'cpu_seconds', 'fell_through', 'peak_live_bytes')
TIME = '/usr/bin/time'
ENV = '/usr/bin/env'


class EvaluationError(Exception):
    """The program could not be measured (it failed, or the library is missing)."""


def find_library(hint=None):
    """libchainalloc.so: CHAINALLOC_LIB, else what the launcher found (`hint`, a function),
    else a build tree beside the reader's scripts/ directory."""
    if os.environ.get('CHAINALLOC_LIB'):
        return os.environ['CHAINALLOC_LIB']
    if hint is not None:
        return hint()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    found = sorted(glob.glob(os.path.join(here, 'build*', 'preload', 'libchainalloc.so')))
    if found:
        return found[0]
    raise EvaluationError('cannot find libchainalloc.so: run `chainalloc log suggest ... '
                          '--evaluate` through the launcher, or set CHAINALLOC_LIB')


def base_env():
    """Our environment without the settings the evaluation makes itself."""
    return {k: v for k, v in os.environ.items()
            if k not in ('CHAINALLOC_CHAIN', 'CHAINALLOC_PRESET', 'CHAINALLOC_LOG',
                         'CHAINALLOC_STATS', 'CHAINALLOC_VERBOSE', 'CHAINALLOC_STRICT')}


def chain_settings(lib, chain, stats_pattern):
    """The variables the program gets: the library, the chain, statistics, strictness."""
    out = {'LD_PRELOAD': lib + (':' + os.environ['LD_PRELOAD']
                                if os.environ.get('LD_PRELOAD') else ''),
           'CHAINALLOC_STATS': stats_pattern, 'CHAINALLOC_STRICT': '1'}
    if chain != DEFAULT_CHAIN:
        out['CHAINALLOC_CHAIN'] = chain
    return out


def rss_source():
    return 'time' if os.access(TIME, os.X_OK) and os.access(ENV, os.X_OK) else 'wait4'


def read_stats(directory):
    """Sums of the run's statistics files (one per process): requests that fell through
    the layers before the last, and what freelist layers took from the system."""
    fell = peak = 0
    chains = []
    for path in sorted(glob.glob(os.path.join(directory, 'stats.*.json'))):
        try:
            with open(path, encoding='utf-8') as f:
                obj = json.load(f)
        except (OSError, ValueError):
            continue          # a process killed while writing it
        chains.append(obj.get('chain', ''))
        layers = obj.get('layers', [])
        for layer in layers[:-1]:
            fell += layer.get('fell_through', 0)
        for layer in layers:
            peak += max(0, layer.get('peak_live_bytes', 0))
    return fell, peak, chains


def run_once(command, lib, chain, workdir, source):
    """One run: its measures, or EvaluationError when the program failed."""
    stats_dir = tempfile.mkdtemp(prefix='run.', dir=workdir)
    settings = chain_settings(lib, chain, os.path.join(stats_dir, 'stats.%p.json'))
    err_path = os.path.join(stats_dir, 'stderr')
    rss_path = os.path.join(stats_dir, 'rss')
    env = base_env()
    if source == 'time':
        # time runs env, which sets the variables and execs the program: neither time nor
        # env is preloaded, and the program is forked from time's small process.
        argv = [TIME, '-q', '-f', '%M', '-o', rss_path, ENV] + \
               ['%s=%s' % kv for kv in settings.items()] + list(command)
    else:
        argv = list(command)
        env.update(settings)
    with open(err_path, 'wb') as err:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err)
        except OSError as e:
            raise EvaluationError('%s: %s' % (argv[0], e.strerror or e))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        with open(err_path, 'rb') as f:
            tail = f.read()[-600:].decode('utf-8', 'replace').strip().splitlines()[-3:]
        how = ('killed by signal %d' % -proc.returncode if proc.returncode < 0
               else 'exit status %d' % proc.returncode)
        raise EvaluationError('%s failed under %s (%s)%s' % (
            command[0], chain, how, ''.join('\n  ' + line for line in tail)))
    rss = usage.ru_maxrss * 1024
    if source == 'time':
        try:
            with open(rss_path, encoding='utf-8') as f:
                rss = int(f.read().split()[-1]) * 1024
        except (OSError, ValueError, IndexError):
            raise EvaluationError('%s gave no peak RSS for %s' % (TIME, command[0]))
    fell, peak, chains = read_stats(stats_dir)
    shutil.rmtree(stats_dir, ignore_errors=True)
    if not chains:
        raise EvaluationError('%s wrote no statistics under %s: is it a dynamically linked '
                              'program that exits normally?' % (command[0], chain))
    return {'rss_bytes': rss, 'wall_seconds': wall,
            'cpu_seconds': usage.ru_utime + usage.ru_stime,
            'fell_through': fell, 'peak_live_bytes': peak, 'stats_files': len(chains),
            'chain_seen': chains[0]}


def _ratio(a, b):
    return a / b if b else None


def differs(mine, theirs):
    """-1 when the suggested chain's samples are lower than the default's, 1 when higher,
    0 when not told apart: the medians must differ by more than NOISE and the samples must
    not overlap (every run of one below every run of the other), so that one slow run of a
    short program is not a verdict."""
    a, b = statistics.median(mine), statistics.median(theirs)
    if not b:
        return 0
    if a < b * (1 - NOISE) and max(mine) < min(theirs):
        return -1
    if a > b * (1 + NOISE) and min(mine) > max(theirs):
        return 1
    return 0


def verdict(default, suggested, same):
    """(verdict, recommended chain, why) from the samples of both chains."""
    if same:
        return 'same', 'default', 'the suggestion is the default table'
    moves = [(name, differs(suggested[key], default[key]))
             for name, key in (('RSS', 'rss_bytes'), ('time', 'wall_seconds'))]
    better = [name for name, m in moves if m < 0]
    worse = [name for name, m in moves if m > 0]
    if better and not worse:
        return 'better', 'suggested', '%s lower by more than %d%%' % (
            ' and '.join(better), round(100 * NOISE))
    if worse and not better:
        return 'worse', 'default', '%s higher by more than %d%%' % (
            ' and '.join(worse), round(100 * NOISE))
    if worse and better:
        return 'mixed', 'default', '%s lower but %s higher by more than %d%%' % (
            ' and '.join(better), ' and '.join(worse), round(100 * NOISE))
    return 'no gain', 'default', ('RSS and time within %d%% of the default, or within the '
                                  'runs\' spread' % round(100 * NOISE))


def evaluate_program(command, res, runs, lib, progress=None):
    """Runs `command` under both chains and compares them (the `evaluation` object)."""
    chains = {'default': DEFAULT_CHAIN,
              'suggested': res['chain'].split('=', 1)[1].strip("'")}
    samples = {name: [] for name in chains}
    source = rss_source()
    workdir = tempfile.mkdtemp(prefix='chainalloc-evaluate.')
    try:
        for i in range(runs):
            order = ('default', 'suggested') if i % 2 == 0 else ('suggested', 'default')
            for name in order:
                if progress:
                    progress('run %d/%d, %s chain' % (i + 1, runs, name))
                samples[name].append(run_once(command, lib, chains[name], workdir, source))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out = {'command': list(command), 'runs': runs, 'noise': NOISE, 'rss_source': source,
           'chains': {}}
    for name, chain in chains.items():
        rows = samples[name]
        out['chains'][name] = {
            'chain': chain,
            'chain_seen': rows[0]['chain_seen'],
            'stats_files': rows[0]['stats_files'],
            'samples': {k: [r[k] for r in rows] for k in MEASURES},
            'median': {k: statistics.median(r[k] for r in rows) for k in MEASURES},
            'predicted_bytes': (res['predicted'] if name == 'suggested'
                                else res['default']['predicted'])['total_bytes'],
        }
    d, s = out['chains']['default'], out['chains']['suggested']
    out['ratio'] = {k: _ratio(s['median'][k], d['median'][k]) for k in MEASURES}
    out['predicted_ratio'] = res.get('predicted_ratio')
    out['predicted_change_bytes'] = s['predicted_bytes'] - d['predicted_bytes']
    out['measured_change_bytes'] = s['median']['rss_bytes'] - d['median']['rss_bytes']
    out['verdict'], out['recommend'], out['why'] = verdict(
        d['samples'], s['samples'], res.get('same_as_default', False))
    return out
