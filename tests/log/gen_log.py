"""Writes chainalloc proxy logs (format version 1, scripts/LOG-FORMAT.md) whose truth is
known: every call goes through LogWriter, which records what a correct reader must report.
The truth is kept the plain way (a dict of live blocks, a set of freed pointers) so it
checks the reader rather than repeats it."""

import random


class LogWriter:
    def __init__(self, path, pid=4242, ppid=4200, program='prog', sample=1,
                 layers=('proxy', 'freelist', 'system'), t_step=100):
        self.f = open(path, 'w')
        self.pid = pid
        self.sample = sample
        self.layers = layers
        self.t = 0
        self.t_step = t_step
        self.next_ptr = 0x10000
        self.events = 0
        # Truth.
        self.calls = dict(malloc=0, calloc=0, realloc=0, aligned=0, free=0, failed=0)
        self.live = {}              # ptr -> (size, t, tid, kind, thread event index)
        self.temp_blocks = 0        # freed by free() on the same thread <= 8 events later
        self.temp_bytes = 0
        self.freed = set()          # pointers freed and not handed out again
        self.live_bytes = 0
        self.peak = 0
        self.peak_t = 0
        self.unknown_frees = 0
        self.double_frees = 0
        self.threads = {}           # tid -> [calls, bytes]
        self.layer_requests = {}    # layer index -> [requests, bytes]
        self.sizes = {}             # size -> requests
        self.f.write('# chainalloc-log 1 pid=%d ppid=%d program=%s page=4096 '
                     'start_unix_ns=1764060000000000000 sample=%d layers=%s '
                     'chain=proxy(log=x.log) > %s\n'
                     % (pid, ppid, program, sample, ','.join(layers), ' > '.join(layers[1:])))

    # -- helpers -------------------------------------------------------------------
    def fresh(self):
        self.next_ptr += 0x40
        return self.next_ptr

    def _event(self, tid, text):
        self.t += self.t_step
        self.events += 1
        th = self.threads.setdefault(tid, [0, 0])
        th[0] += 1
        self.f.write('%d %d %s\n' % (self.t, tid, text))

    def _add(self, tid, ptr, size, layer, kind):
        assert ptr not in self.live
        self.live[ptr] = (size, self.t, tid, kind, self.threads[tid][0])
        self.freed.discard(ptr)
        self.live_bytes += size
        if self.live_bytes > self.peak:
            self.peak, self.peak_t = self.live_bytes, self.t
        self.threads[tid][1] += size
        lr = self.layer_requests.setdefault(layer, [0, 0])
        lr[0] += 1
        lr[1] += size
        self.sizes[size] = self.sizes.get(size, 0) + 1

    def _drop(self, ptr):
        size = self.live.pop(ptr)[0]
        self.freed.add(ptr)
        self.live_bytes -= size

    # -- the calls -----------------------------------------------------------------
    def malloc(self, tid, size, layer=1, ptr=None, fail=False, op='m'):
        self.calls['malloc' if op == 'm' else 'calloc'] += 1
        if fail:
            self.calls['failed'] += 1
            self._event(tid, '%s %d 0 -' % (op, size))
            return 0
        ptr = ptr or self.fresh()
        self._event(tid, '%s %d %x %d' % (op, size, ptr, layer))
        self._add(tid, ptr, size, layer, op)
        return ptr

    def calloc(self, tid, size, **kw):
        return self.malloc(tid, size, op='c', **kw)

    def aligned(self, tid, align, size, layer=2, ptr=None, fail=False):
        self.calls['aligned'] += 1
        if fail:
            self.calls['failed'] += 1
            self._event(tid, 'a %d %d 0 -' % (align, size))
            return 0
        ptr = ptr or self.fresh()
        self._event(tid, 'a %d %d %x %d' % (align, size, ptr, layer))
        self._add(tid, ptr, size, layer, 'a')
        return ptr

    def realloc(self, tid, old, size, layer=1, new=None, fail=False):
        self.calls['realloc'] += 1
        if fail:
            self.calls['failed'] += 1
            self._event(tid, 'r %x %d 0 -' % (old, size))
            return 0
        if size == 0 and old:
            self._event(tid, 'r %x 0 0 -' % old)
            self._drop(old)
            return 0
        new = new or self.fresh()
        self._event(tid, 'r %x %d %x %d' % (old, size, new, layer))
        if old:
            self._drop(old)
        self._add(tid, new, size, layer, 'r')
        return new

    def free(self, tid, ptr):
        self.calls['free'] += 1
        self._event(tid, 'f %x' % ptr)
        if ptr in self.live:
            size, _, a_tid, _, idx = self.live[ptr]
            if a_tid == tid and self.threads[tid][0] - idx <= 8:
                self.temp_blocks += 1
                self.temp_bytes += size
            self._drop(ptr)
        elif ptr in self.freed:
            self.double_frees += 1
        else:
            self.unknown_frees += 1

    def comment(self, text):
        self.f.write('# %s\n' % text)

    def close(self, footer=True, cut_line=None):
        if footer:
            self.f.write('# end t_ns=%d events=%d malloc=%d calloc=%d realloc=%d aligned=%d '
                         'free=%d failed=%d live_bytes=%d live_blocks=%d\n' % (
                             self.t + 50, self.events, self.calls['malloc'],
                             self.calls['calloc'], self.calls['realloc'],
                             self.calls['aligned'], self.calls['free'],
                             self.calls['failed'], self.live_bytes, len(self.live)))
        if cut_line is not None:
            self.f.write(cut_line)          # no newline: a line cut mid-write
        self.f.close()

    def leaks_by_size(self, kinds=None):
        """{size: count} of the live blocks (optionally only those of the given kinds)."""
        out = {}
        for size, _, _, kind, _ in self.live.values():
            if kinds is None or kind in kinds:
                out[size] = out.get(size, 0) + 1
        return out


def random_workload(w, n_ops, seed, threads=(4242, 4243, 4244), leak_every=0):
    """Random mix of every call on several threads; the writer keeps the truth."""
    rng = random.Random(seed)
    mine = {tid: [] for tid in threads}
    sizes = [8, 16, 24, 32, 48, 64, 100, 128, 256, 1000, 4000, 70000]
    for k in range(n_ops):
        tid = rng.choice(threads)
        blocks = mine[tid]
        r = rng.random()
        if r < 0.35 or not blocks:
            if rng.random() < 0.03:
                w.malloc(tid, 1 << 40, fail=True)
            else:
                blocks.append(w.malloc(tid, rng.choice(sizes), layer=rng.choice((1, 2))))
        elif r < 0.42:
            blocks.append(w.calloc(tid, rng.choice(sizes), layer=1))
        elif r < 0.45:
            blocks.append(w.aligned(tid, rng.choice((16, 64, 4096)), rng.choice(sizes)))
        elif r < 0.55:
            i = rng.randrange(len(blocks))
            q = rng.random()
            if q < 0.1:
                w.realloc(tid, blocks[i], 1 << 40, fail=True)
            elif q < 0.2:
                w.realloc(tid, blocks.pop(i), 0)
            elif q < 0.3:
                blocks.append(w.realloc(tid, 0, rng.choice(sizes)))
            elif q < 0.6:
                blocks[i] = w.realloc(tid, blocks[i], rng.choice(sizes), new=blocks[i])
            else:
                blocks[i] = w.realloc(tid, blocks[i], rng.choice(sizes), layer=2)
        else:
            i = rng.randrange(len(blocks))
            if leak_every and k % leak_every == 0:
                continue
            w.free(tid, blocks.pop(i))


def fast_log(path, n_events, seed=1):
    """A big log written quickly (for the speed test): malloc/free churn on 4 threads
    with about 2000 live blocks. Returns the number of event lines."""
    rng = random.Random(seed)
    sizes = [16, 24, 32, 48, 64, 96, 128, 256, 512, 4096]
    live = []
    out = []
    t = 0
    ptr = 0x7f0000000000
    written = 0
    with open(path, 'w') as f:
        f.write('# chainalloc-log 1 pid=100 ppid=1 program=big page=4096 '
                'start_unix_ns=1 sample=1 layers=proxy,freelist,system '
                'chain=proxy(log=big.log) > freelist > system\n')
        while written < n_events:
            t += 37
            tid = 100 + (written & 3)
            if len(live) < 1000 or (len(live) < 3000 and rng.random() < 0.5):
                ptr += 0x30
                out.append('%d %d m %d %x 1\n' % (t, tid, sizes[written % 10], ptr))
                live.append(ptr)
            else:
                i = rng.randrange(len(live))
                live[i], live[-1] = live[-1], live[i]
                out.append('%d %d f %x\n' % (t, tid, live.pop()))
            written += 1
            if len(out) >= 100000:
                f.write(''.join(out))
                out = []
        f.write(''.join(out))
    return written
