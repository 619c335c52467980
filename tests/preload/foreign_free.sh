#!/bin/bash
# free()/realloc() of addresses no allocator made (foreign_free.c) abort with one line that
# names chainalloc, the call and the pointer, under every chain. glibc itself aborts (or
# crashes) on them too, with messages of its own: the point is that a user sees who spoke.
#
# Usage: foreign_free.sh CHAINALLOC_SO FOREIGN_FREE_EXE
# Prints one line per failed check, then "N passed, M failed"; exits 1 on any failure.
set -u
so=${1:?usage: foreign_free.sh CHAINALLOC_SO EXE}
exe=${2:?usage: foreign_free.sh CHAINALLOC_SO EXE}
ulimit -c 0  # aborts on purpose: no core files

passed=0
failed=0
for chain in "" "system" "freelist > jemalloc" "proxy(log=/dev/null) > freelist > system" "freelist(max=64M) > null"; do
    for kind in stack global mmap mmap-inner unaligned realloc; do
        call=free
        [ "$kind" = realloc ] && call=realloc
        preload=$so
        [[ $chain == *jemalloc* ]] && preload="$so ${so%/*}/libchainalloc-jemalloc.so"
        err=$(CHAINALLOC_CHAIN=$chain LD_PRELOAD=$preload "$exe" "$kind" 2>&1 >/dev/null)
        rc=$?
        if [ $rc -eq 134 ] && grep -Eq "^chainalloc: $call\(0x[0-9a-f]+\): .*no layer of the chain owns it$" <<< "$err" \
            && [ "$(grep -c . <<< "$err")" -eq 1 ]; then
            passed=$((passed + 1))
        else
            echo "FAIL chain '$chain', $kind: rc $rc, stderr: $(head -c 300 <<< "$err")"
            failed=$((failed + 1))
        fi
    done
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
