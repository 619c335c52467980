#!/usr/bin/env python3
"""Writes the committed seed inputs of fuzz_config and fuzz_alloc (corpus/config, corpus/alloc).
Run from anywhere; rerun after changing an input format. The log reader's seeds are real logs
made by tests/log/gen_log.py (see fuzz_log_reader.py --make-seeds)."""
import glob
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def config_seeds():
    """Values of CHAINALLOC_CHAIN, _PRESET, _LOG, _STATS, _STRICT joined by NUL bytes."""
    seeds = []
    for path in sorted(glob.glob(os.path.join(ROOT, 'config', 'presets', '*.chain'))):
        text = ''.join(line for line in open(path) if not line.startswith('#'))
        seeds.append([text])                                     # the chain text, newlines and all
        seeds.append(['', os.path.basename(path)[:-len('.chain')]])  # by name
    seeds += [
        ['freelist(classes=16..512/16, cache=128) > jemalloc'],      # README examples
        ['freelist(max=512M) > system'],
        ['freelist(max=64M) > null', '', '', '1', '1'],
        ['proxy(log=trace.%e.%p.log, events=summary, sample=10) > freelist > system'],
        ['proxy(log=-) > system'],
        ['', '', 'trace.%e.%p.log', '1'],
        ['freelist(classes=16,32,48K, max=1G, cache=0) > freelist(classes=64K..1M/64K) > system'],
        ['freelist(classes=16..128/16,160..256/32,320..512/64,640..1024/128,1280..2048/256,'
         '2560..4096/512,5120..8192/1024,10240..16384/2048,20480..32768/4096,max=0,cache=512,'
         'decay=1s)'
         ' > system'],                                              # format_chain's own output
        ['  freelist ( classes = 16 .. 64 / 16 ) >system  '],
        ['null'],
        ['jemalloc', '', '', '0', '0'],
        # bad values, one per kind of error
        ['freelist > system', 'fast'],                             # chain and preset together
        ['fre > system'],                                          # unknown layer
        ['freelist(classes=17) > system'],                         # not a multiple of 16
        ['freelist(classes=256M) > system'],                       # class too large
        ['freelist(classes=16..4096/16) > system'],                # more than 64 classes
        ['freelist(max=12Q) > system'],
        ['freelist(cache=99999999999999999999) > system'],
        ['freelist > proxy > freelist > proxy > freelist > proxy > freelist > system', '', 'x.log'],
        ['system > freelist'],                                     # terminal first
        ['proxy(log=a\tb) > system'],
        ['freelist(\x01\xff) > null'],
        ['', 'nope', '', '2', 'yes'],
        ['', '', 'bad,path'],
        # appended, so the seeds above keep their file names
        ['freelist(decay=250ms) > freelist(decay=0, classes=64K..1M/64K) > system'],
        ['freelist(decay=2h) > system'],                           # not a unit
        ['freelist(decay=3601s) > system'],                        # past one hour
    ]
    for i, values in enumerate(seeds):
        write('config', 'c%02d' % i, b'\0'.join(v.encode('latin-1') for v in values))


# fuzz_alloc's ops (see its LLVMFuzzerTestOneInput): op % 10 is malloc, calloc, realloc,
# reallocarray, free, aligned, new, usable, free-all, foreign; then a slot byte, then arguments.
# A size is 0..63 (one byte < 0x40), 0x40|hi lo (up to 16 KiB), 0x80|hi mid lo (up to 4 MiB),
# or 0xC0|k, the k-th size of kInteresting (33 = PTRDIFF_MAX, 34.. past it).
def sz(n):
    if n < 64:
        return [n]
    if n < 1 << 14:
        return [0x40 | n >> 8, n & 255]
    return [0x80 | n >> 16, (n >> 8) & 255, n & 255]


def alloc_seeds():
    M, C, R, RA, F, A, N, U, FA, FO = range(10)
    seeds = {
        'malloc_free': [M, 0] + sz(10) + [M, 1] + sz(256) + [M, 2] + sz(100000) + [F, 0, F, 1, F, 2],
        'calloc': [C, 0, 3, 32, C, 1, 0xC5, 0xC5, C, 2, 0xC0 + 37, 0xC0 + 37],
        'realloc_grow_shrink': [M, 0] + sz(20) + [R, 0] + sz(256) + [R, 0] + sz(5) +
                               [R, 0] + sz(1 << 20) + [R, 0, 0],
        'realloc_null': [R, 3] + sz(40) + [R, 4, 0xC0] + [R, 5, 0xC0 + 35],
        'realloc_cross_class': [M, 0] + sz(16) + [R, 0] + sz(17) + [R, 0] + sz(4000) +
                               [R, 0] + sz(40000) + [R, 0] + sz(16) + [R, 0, 0],
        'reallocarray': [RA, 0] + sz(256) + [2, RA, 0, 0xC0 + 37, 3, RA, 1, 16, 0],
        'aligned': [A, 0, 0, 6] + sz(100) + [A, 1, 1, 12] + sz(256) + [A, 2, 2, 3] + sz(64) +
                   [A, 3, 3, 0] + sz(10) + [A, 4, 0, 230] + sz(10) + [A, 5, 2, 226] + sz(8) +
                   [A, 6, 1, 20] + sz(1 << 20) + [A, 7, 4, 0] + sz(5000) + [A, 8, 4, 0, 0],
        'new_delete': [N, 0, 0] + sz(40) + [0, N, 1, 1] + sz(300) + [0, N, 2, 2] + sz(600) + [3] +
                      [F, 0, F, 1, F, 2],
        'usable': [M, 0, 1, U, 0, M, 1] + sz(70000) + [U, 1, U, 5],
        'big': [M, 0] + sz((4 << 20) - 1) + [M, 1] + sz(1 << 20) + [R, 0] + sz(2 << 20) + [FA, 0],
        'impossible': [M, 0, 0xC0 + 33, M, 1, 0xC0 + 34, M, 2, 0xC0 + 37,
                       C, 3, 0xC0 + 37, 0xC0 + 16, A, 4, 0, 230, 0xC0 + 36],
        'foreign': [FO, 0] + sz(100) + [FO, 1] + sz(200000) + [U, 0, R, 0] + sz(300) +
                   [R, 1] + sz(50) + [F, 0, F, 1],
        'churn': sum(([M, i % 16] + sz((i * 7) % 64) for i in range(48)), []) + [FA, 0],
        'classes': sum(([M, i % 16] + sz(s) for i, s in
                        enumerate([128, 160, 256, 320, 512, 1024, 2048, 4096, 8192, 16383,
                                   20480, 32768, 32769]) ), []),
    }
    for name, ops in seeds.items():
        write('alloc', name, bytes(ops))


if __name__ == '__main__':
    config_seeds()
    alloc_seeds()
