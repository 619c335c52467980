#!/bin/bash
# Death tests for misuse of the free-list layer's blocks (misuse.c): each mode must end in
# SIGABRT with one line on stderr that names the misuse, the pointer and the class; the
# correct-use mode must run clean. attacker_global may also finish normally, as long as malloc
# never returned the global.
#
# Usage: misuse.sh CHAINALLOC_SO MISUSE_EXE CHAIN
# Prints one line per failed check, then "N passed, M failed"; exits 1 on any failure.
set -u
so=${1:?usage: misuse.sh CHAINALLOC_SO EXE CHAIN}
exe=${2:?usage: misuse.sh CHAINALLOC_SO EXE CHAIN}
chain=${3:?usage: misuse.sh CHAINALLOC_SO EXE CHAIN}
ulimit -c 0  # aborts on purpose: no core files

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
out=$scratch/out.txt
err=$scratch/err.txt

passed=0
failed=0
fail() {
    echo "FAIL [$chain] $*"
    failed=$((failed + 1))
}

# run MODE: runs the program (a hang is a failure too), sets rc.
run() {
    # The group's own stderr is dropped: bash's "Aborted" notice, not the program's.
    { timeout -s KILL 60 env CHAINALLOC_CHAIN="$chain" LD_PRELOAD="$so" "$exe" "$1" > "$out" 2> "$err"; } 2> /dev/null
    rc=$?
}

# The value printed by the program for WHAT ("block 0x...").
printed() { sed -n "s/^$1 \(0x[0-9a-f]*\)$/\1/p" "$out" | head -n 1; }

# same_address A B: equal as numbers (the message may pad with zeros, %p does not).
same_address() { [ -n "$1" ] && [ -n "$2" ] && [ $(($1)) -eq $(($2)) ]; }

details() { echo "rc $rc; stdout: $(head -c 300 "$out" | tr '\n' '|'); stderr: $(head -c 300 "$err" | tr '\n' '|')"; }

# expect_abort MODE REGEX WHAT: SIGABRT (134), a stderr line matching REGEX whose first
# address is the one printed as WHAT (no address check if WHAT is empty).
expect_abort() {
    local mode=$1 regex=$2 what=$3
    run "$mode"
    if [ $rc -ne 134 ]; then
        fail "$mode: want SIGABRT (rc 134); $(details)"
        return
    fi
    local line
    line=$(grep -E -m 1 "$regex" "$err")
    if [ -z "$line" ]; then
        fail "$mode: no stderr line matching '$regex'; $(details)"
        return
    fi
    if [ -n "$what" ]; then
        local want got
        want=$(printed "$what")
        got=$(grep -Eo '0x[0-9a-f]+' <<< "$line" | head -n 1)
        if ! same_address "$want" "$got"; then
            fail "$mode: message names $got, the program's $what is $want: $line"
            return
        fi
    fi
    passed=$((passed + 1))
}

run clean
if [ $rc -eq 0 ] && [ ! -s "$err" ]; then
    passed=$((passed + 1))
else
    fail "clean: correct use must exit 0 with empty stderr; $(details)"
fi

run mark_lookalike
if [ $rc -eq 0 ] && [ ! -s "$err" ]; then
    passed=$((passed + 1))
else
    fail "mark_lookalike: live blocks that look free must be freed quietly; $(details)"
fi

expect_abort double_free '^chainalloc: double free of 0x[0-9a-f]+ \(class 64 B\)$' block
expect_abort double_free_later '^chainalloc: double free of 0x[0-9a-f]+ \(class 64 B\)$' block
expect_abort interior_free \
    '^chainalloc: free of 0x[0-9a-f]+, which is not the start of a block \(class 64 B\)$' freed
corrupted='^chainalloc: free list corrupted at 0x[0-9a-f]+ \(class 32 B\): a freed block was written to$'
expect_abort overwrite_freed "$corrupted" ""
expect_abort overflow_byte "$corrupted" ""

# attacker_global: an abort with the corruption line, or exit 0 (the global never returned).
run attacker_global
if [ $rc -eq 134 ] && grep -Eq "$corrupted" "$err"; then
    passed=$((passed + 1))
elif [ $rc -eq 0 ] && ! grep -q 'RETURNED GLOBAL' "$out"; then
    passed=$((passed + 1))
else
    fail "attacker_global: want SIGABRT with the corruption line, or exit 0; $(details)"
fi

# What only check=full sees: a write past the list words, a double free after the mark was wiped.
if [[ $chain == *check=full* ]]; then
    expect_abort write_after_free \
        '^chainalloc: free list corrupted at 0x[0-9a-f]+ \(class 64 B\): a freed block was written to$' block
    expect_abort double_free_wiped '^chainalloc: double free of 0x[0-9a-f]+ \(class 64 B\)$' block
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
