#!/bin/bash
# A chain that ends in jemalloc with only libchainalloc.so preloaded: jemalloc's plugin must be
# preloaded too (its thread-locals are initial-exec). Either one line says so and `system` ends
# the chain (what the verbose line then shows), or, where they happen to fit after start-up,
# the plugin is loaded from next to the preload and jemalloc runs. Usage: jemalloc_unpreloaded.sh SO
so=${1:?usage: jemalloc_unpreloaded.sh CHAINALLOC_SO}
out=$(CHAINALLOC_VERBOSE=1 CHAINALLOC_CHAIN="freelist > jemalloc" LD_PRELOAD=$so /bin/true 2>&1) || {
    echo "FAIL: exit $?: $out"; exit 1; }
if grep -q "needs libchainalloc-jemalloc.so preloaded after libchainalloc.so" <<<"$out"; then
    grep -q "> system;" <<<"$out" || { echo "FAIL: no fallback to system shown: $out"; exit 1; }
else
    grep -q "> jemalloc;" <<<"$out" || { echo "FAIL: neither jemalloc nor the line: $out"; exit 1; }
fi
echo "ok: $out"
