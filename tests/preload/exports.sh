#!/bin/bash
# Checks the built preload's ELF interface:
#  - it defines and exports the whole malloc family (docs/DESIGN.md §4), as functions;
#  - it exports nothing else but linker-made symbols, version nodes and a few allowed extras
#    (a stray export, e.g. a weak std:: template instance, interposes on every program);
#  - its dynamic section has the STATIC_TLS flag (initial-exec TLS, so no TLS access ever
#    calls the allocator);
#  - it is not linked with -Bsymbolic (no DT_SYMBOLIC, no SYMBOLIC flag);
#  - it needs libc and the loader alone: every process it is preloaded into pays for each
#    library it pulls in (libm and libgcc_s cost /bin/true ~370 KB of RSS).
# Usage: exports.sh CHAINALLOC_SO. Prints one line per failed check, then "N passed, M failed".
set -u

so=${1:?usage: exports.sh CHAINALLOC_SO}
if [ ! -r "$so" ]; then
    echo "exports.sh: $so: no such file" >&2
    exit 2
fi
for tool in nm readelf; do
    if ! command -v "$tool" > /dev/null; then
        echo "exports.sh: $tool not found (binutils)" >&2
        exit 77  # meson's "skipped"
    fi
done

family=(malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc
        pvalloc malloc_usable_size free_sized free_aligned_sized malloc_trim)

# Also allowed: symbols the linker adds, and a "chainalloc_" C API should the project document
# one. operator new/delete are allowed too: replacing them is legitimate for a malloc; and
# __register_atfork, through which fork.cpp keeps jemalloc's fork handlers in its lock order.
allowed_extra='^(_init|_fini|_edata|_end|__bss_start|__register_atfork|chainalloc_[A-Za-z0-9_]+|_Zn[wa][jm].*|_Zd[la]Pv.*)$'

passed=0
failed=0
check() {  # check CONDITION-STATUS MESSAGE
    if [ "$1" -eq 0 ]; then
        passed=$((passed + 1))
    else
        echo "FAIL $2"
        failed=$((failed + 1))
    fi
}

# "TYPE NAME" per defined dynamic symbol, version suffixes (@@V, @V) stripped.
exports=$(nm -D --defined-only "$so" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $2, $3 }')
check $? "nm -D $so failed"

for name in "${family[@]}"; do
    type=$(awk -v n="$name" '$2 == n { print $1; exit }' <<< "$exports")
    case $type in
        T | W | i) check 0 "" ;;  # a function: strong, weak or ifunc
        "") check 1 "$name is not exported" ;;
        *) check 1 "$name is exported as type '$type', not as a function" ;;
    esac
done

extra=$(awk '{ print $1, $2 }' <<< "$exports" | while read -r type name; do
    skip=0
    for f in "${family[@]}"; do [ "$name" = "$f" ] && skip=1; done
    [ "$type" = A ] && skip=1  # version definitions (a version script's nodes)
    [[ $name =~ $allowed_extra ]] && skip=1
    [ $skip = 1 ] || echo "$name"
done)
count=$(grep -c . <<< "$extra")
check "$count" "$count unexpected exported symbols (a version script with 'local: *;' hides them): $(head -n 8 <<< "$extra" | c++filt | paste -sd ' ' -)$([ "$count" -gt 8 ] && echo ' ...')"

dynamic=$(readelf -d "$so")
check $? "readelf -d $so failed"
flags=$(awk '/\(FLAGS\)/ { $1 = $2 = ""; print }' <<< "$dynamic")
[[ $flags == *STATIC_TLS* ]]
check $? "dynamic section FLAGS '${flags# }' lack STATIC_TLS (no initial-exec TLS?)"
! grep -q '(SYMBOLIC)' <<< "$dynamic" && [[ $flags != *SYMBOLIC* ]]
check $? "linked with -Bsymbolic (DT_SYMBOLIC or the SYMBOLIC flag is set)"

needed=$(awk '/\(NEEDED\)/ { gsub(/[][]/, "", $NF); print $NF }' <<< "$dynamic" | grep -Ev '^(libc\.so\.6|ld-linux-x86-64\.so\.2)$' | paste -sd ' ' -)
[ -z "$needed" ]
check $? "needs more than libc: $needed"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
